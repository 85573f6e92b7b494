package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Protocols of an Upstream or an Ingress, as ECS's appProtocol spells them;
// "" means TCP, as an unset appProtocol does.
const (
	ProtocolHTTP  = "http"  // HTTP/1.1
	ProtocolHTTP2 = "http2" // HTTP/2 over cleartext (prior knowledge), or over TLS with ALPN h2
	ProtocolGRPC  = "grpc"  // HTTP/2 as ProtocolHTTP2, with gRPC status codes understood
	ProtocolTCP   = "tcp"   // raw byte stream
)

// Balancers of an Upstream.
const (
	BalancerRoundRobin   = "round_robin"
	BalancerLeastRequest = "least_request"
)

// Access log formats, as ECS's accessLogConfiguration spells them.
const (
	AccessLogText = "TEXT"
	AccessLogJSON = "JSON"
)

// Defaults. The timeouts and the retry count are ECS Service Connect's; the
// outlier detection figures are Envoy's defaults, which Service Connect runs
// with (see shared/research/service-connect.md, A4).
const (
	DefaultRetries            = 2
	DefaultPerRequestTimeout  = 15 * time.Second
	DefaultHTTPIdleTimeout    = 300 * time.Second
	DefaultTCPIdleTimeout     = 3600 * time.Second
	DefaultConsecutive        = 5
	DefaultBaseEjection       = 30 * time.Second
	DefaultMaxEjectionPercent = 10
	DefaultDrainTimeout       = 20 * time.Second

	// maxEjection caps the growing ejection time (Envoy's max_ejection_time).
	maxEjection = 300 * time.Second
	// maxRetries bounds Upstream.Retries.
	maxRetries = 10
	// connectTimeout bounds a connection attempt to an endpoint (Envoy's
	// cluster connect_timeout default), within the per-request timeout.
	connectTimeout = 5 * time.Second
	// tlsHandshakeTimeout bounds a TLS handshake on either side.
	tlsHandshakeTimeout = 10 * time.Second
	// maxReplayBody is the largest request body kept so that the request
	// can be sent again to another endpoint (Linkerd's figure).
	maxReplayBody = 64 << 10
	// maxHeadBytes bounds a request or response head (Envoy: 60 KiB).
	maxHeadBytes = 64 << 10
)

// Config is everything one proxy does: its listeners and the upstreams
// they forward to. Apply takes a whole Config each time; the proxy works
// out what changed.
type Config struct {
	// ServiceName, ClusterName and DiscoveryName are the ECS service the
	// proxy belongs to, its cluster and (for a client-server service) its
	// own discovery name: they label the metrics. Zone is the availability
	// zone the proxy runs in, for zone-aware upstreams.
	ServiceName, ClusterName, DiscoveryName, Zone string

	Listeners []Listener
	Upstreams []Upstream

	// AccessLog, when set, writes one line per HTTP request (per connection
	// for TCP) of every listener.
	AccessLog *AccessLog

	// DrainTimeout bounds how long a listener that Apply removes keeps
	// serving the requests and connections it already has; 0 means
	// DefaultDrainTimeout (ECS's LISTENER_DRAIN_WAIT_TIME_S).
	DrainTimeout time.Duration
}

// Listener is an address the proxy accepts connections on. Exactly one of
// Upstream (egress: a client-side alias) and Ingress (the server side of a
// client-server service) is set.
type Listener struct {
	// Address is host:port, e.g. 127.255.0.3:80 for an alias or
	// 0.0.0.0:15000 for an ingress.
	Address string
	// Upstream names the Upstream an egress listener forwards to; the
	// listener speaks that upstream's protocol.
	Upstream string
	// Ingress forwards to the local application instead.
	Ingress *Ingress
}

// Ingress is the server side of a client-server service: connections from
// other tasks' proxies go to the application on AppAddress. There are no
// retries and no outlier detection towards the application (the calling
// proxy retries on another task).
type Ingress struct {
	// DiscoveryName labels the ingress metrics (DiscoveryName); empty means
	// Config.DiscoveryName.
	DiscoveryName string
	// Protocol is one of the Protocol constants; "" means TCP.
	Protocol string
	// AppAddress is where the application listens, e.g. 127.0.0.1:8080.
	AppAddress string
	// TLS, when set, terminates TLS from the callers.
	TLS *ServerTLS
	// PerRequestTimeout (nil: 15 s; 0 disables; HTTP and gRPC only) and
	// IdleTimeout (nil: 300 s for HTTP, 3600 s for TCP; 0 disables).
	PerRequestTimeout, IdleTimeout *time.Duration
}

// Upstream is one client-server service of the namespace, as a caller sees
// it: a name and a set of endpoints (its tasks' ingress listeners).
type Upstream struct {
	// Name is the service's discovery name; it labels the egress metrics
	// (TargetDiscoveryName).
	Name string
	// Protocol is one of the Protocol constants; "" means TCP.
	Protocol  string
	Endpoints []Endpoint
	// Balancer is BalancerRoundRobin ("" too) or BalancerLeastRequest
	// (power of two choices on requests in flight).
	Balancer string
	// ZoneAware prefers endpoints in Config.Zone while at least one of
	// them is healthy.
	ZoneAware bool
	// Retries is how many times a failed request is sent again, to another
	// endpoint when there is one (nil: 2; 0: never). See the package
	// README for what is retried and when.
	Retries *int
	// RetryNonIdempotent lets requests with non-idempotent methods (POST,
	// PATCH, every gRPC call) be retried after they reached an endpoint.
	RetryNonIdempotent bool
	// PerRequestTimeout bounds a request from when it has been read until
	// its response is complete, retries included (nil: 15 s; 0 disables;
	// HTTP and gRPC only).
	PerRequestTimeout *time.Duration
	// IdleTimeout closes connections without traffic for that long (nil:
	// 300 s for HTTP, 3600 s for TCP; 0 disables).
	IdleTimeout *time.Duration
	// Outlier configures the ejection of failing endpoints; the zero value
	// means the defaults.
	Outlier Outlier
	// TLS, when set, makes connections to the endpoints TLS 1.3.
	TLS *ClientTLS
}

// Endpoint is one task of an upstream.
type Endpoint struct {
	Address string // host:port
	Zone    string // availability zone, for ZoneAware
}

// Outlier is passive health checking: an endpoint that fails Consecutive
// times in a row (5xx responses, gRPC UNAVAILABLE, connection failures,
// resets and timeouts) gets no traffic for BaseEjection times the number of
// times it has been ejected (at most 300 s), unless that would eject more
// than MaxEjectionPercent of the endpoints. Zero fields take the defaults
// (5, 30 s, 10 %); a negative Consecutive turns detection off.
type Outlier struct {
	Consecutive        int
	BaseEjection       time.Duration
	MaxEjectionPercent int
}

// ClientTLS is TLS towards an upstream: the endpoints' certificates are
// verified against RootCAs for ServerName, and Certificate, when set,
// supplies a client certificate (mutual TLS). Certificate is called at each
// handshake, so a rotated certificate is used from the next connection on.
type ClientTLS struct {
	RootCAs     *x509.CertPool
	ServerName  string
	Certificate func() (*tls.Certificate, error)
}

// ServerTLS is TLS on an ingress: Certificate is called at each handshake;
// a non-nil ClientCAs requires and verifies client certificates (mutual
// TLS).
type ServerTLS struct {
	Certificate func() (*tls.Certificate, error)
	ClientCAs   *x509.CertPool
}

// AccessLog writes one line per request to Writer, in Envoy's default text
// format (AccessLogText) or as a JSON object (AccessLogJSON). Query strings
// are cut from the logged path unless IncludeQueryParameters is set. Writes
// are serialized; Writer need not be safe for concurrent use.
type AccessLog struct {
	Format                 string
	Writer                 io.Writer
	IncludeQueryParameters bool
}

// ValidationError says what is wrong with a Config; Apply returns one per
// problem, joined.
type ValidationError struct {
	Field  string // e.g. upstreams[2].protocol
	Reason string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("invalid proxy config: %s: %s", e.Field, e.Reason)
}

func normProtocol(p string) string {
	if p == "" {
		return ProtocolTCP
	}
	return strings.ToLower(p)
}

func validProtocol(p string) bool {
	switch p {
	case ProtocolHTTP, ProtocolHTTP2, ProtocolGRPC, ProtocolTCP:
		return true
	}
	return false
}

func isHTTP2(p string) bool { return p == ProtocolHTTP2 || p == ProtocolGRPC }

func validHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if host == "" {
		return errors.New("no host")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("bad port %q", port)
	}
	return nil
}

// validate checks cfg and returns every problem, joined.
func validate(cfg *Config) error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	names := make(map[string]bool, len(cfg.Upstreams))
	for i, u := range cfg.Upstreams {
		f := fmt.Sprintf("upstreams[%d]", i)
		switch {
		case u.Name == "":
			bad(f+".name", "empty; set the service's discovery name")
		case names[u.Name]:
			bad(f+".name", "%q is used by another upstream", u.Name)
		}
		names[u.Name] = true
		p := normProtocol(u.Protocol)
		if !validProtocol(p) {
			bad(f+".protocol", "%q is not one of http, http2, grpc, tcp", u.Protocol)
		}
		switch u.Balancer {
		case "", BalancerRoundRobin, BalancerLeastRequest:
		default:
			bad(f+".balancer", "%q is not one of round_robin, least_request", u.Balancer)
		}
		if u.Retries != nil && (*u.Retries < 0 || *u.Retries > maxRetries) {
			bad(f+".retries", "%d is outside 0..%d", *u.Retries, maxRetries)
		}
		if u.PerRequestTimeout != nil && *u.PerRequestTimeout < 0 {
			bad(f+".perRequestTimeout", "negative")
		}
		if u.PerRequestTimeout != nil && *u.PerRequestTimeout > 0 && p == ProtocolTCP {
			bad(f+".perRequestTimeout", "only HTTP, HTTP/2 and gRPC upstreams have a per-request timeout")
		}
		if u.IdleTimeout != nil && *u.IdleTimeout < 0 {
			bad(f+".idleTimeout", "negative")
		}
		if u.Outlier.BaseEjection < 0 {
			bad(f+".outlier.baseEjection", "negative")
		}
		if u.Outlier.MaxEjectionPercent < 0 || u.Outlier.MaxEjectionPercent > 100 {
			bad(f+".outlier.maxEjectionPercent", "%d is outside 0..100", u.Outlier.MaxEjectionPercent)
		}
		if u.TLS != nil && u.TLS.RootCAs == nil {
			bad(f+".tls.rootCAs", "nil; give the certificate authority the endpoints' certificates chain to")
		}
		seen := make(map[string]bool, len(u.Endpoints))
		for j, e := range u.Endpoints {
			ef := fmt.Sprintf("%s.endpoints[%d].address", f, j)
			if err := validHostPort(e.Address); err != nil {
				bad(ef, "%q is not host:port: %v", e.Address, err)
			} else if seen[e.Address] {
				bad(ef, "%q is listed twice", e.Address)
			}
			seen[e.Address] = true
		}
	}
	addrs := make(map[string]bool, len(cfg.Listeners))
	for i, l := range cfg.Listeners {
		f := fmt.Sprintf("listeners[%d]", i)
		if err := validHostPort(l.Address); err != nil {
			bad(f+".address", "%q is not host:port: %v", l.Address, err)
		} else if addrs[l.Address] {
			bad(f+".address", "%q is used by another listener", l.Address)
		}
		addrs[l.Address] = true
		switch {
		case (l.Upstream == "") == (l.Ingress == nil):
			bad(f, "set exactly one of upstream and ingress")
		case l.Ingress != nil:
			in := l.Ingress
			p := normProtocol(in.Protocol)
			if !validProtocol(p) {
				bad(f+".ingress.protocol", "%q is not one of http, http2, grpc, tcp", in.Protocol)
			}
			if err := validHostPort(in.AppAddress); err != nil {
				bad(f+".ingress.appAddress", "%q is not host:port: %v", in.AppAddress, err)
			}
			if in.DiscoveryName == "" && cfg.DiscoveryName == "" {
				bad(f+".ingress.discoveryName", "empty, and so is the config's discoveryName")
			}
			if in.TLS != nil && in.TLS.Certificate == nil {
				bad(f+".ingress.tls.certificate", "nil; the ingress needs a certificate to serve")
			}
			if in.PerRequestTimeout != nil && *in.PerRequestTimeout < 0 {
				bad(f+".ingress.perRequestTimeout", "negative")
			}
			if in.IdleTimeout != nil && *in.IdleTimeout < 0 {
				bad(f+".ingress.idleTimeout", "negative")
			}
		default:
			if !names[l.Upstream] {
				bad(f+".upstream", "%q names no upstream of the config", l.Upstream)
			}
		}
	}
	if a := cfg.AccessLog; a != nil {
		switch {
		case a.Format != AccessLogText && a.Format != AccessLogJSON:
			bad("accessLog.format", "%q is not one of TEXT, JSON", a.Format)
		case a.Writer == nil:
			bad("accessLog.writer", "nil")
		}
	}
	if cfg.DrainTimeout < 0 {
		bad("drainTimeout", "negative")
	}
	return errors.Join(errs...)
}

func durOr(d *time.Duration, def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return *d
}

func defaultIdle(protocol string) time.Duration {
	if protocol == ProtocolTCP {
		return DefaultTCPIdleTimeout
	}
	return DefaultHTTPIdleTimeout
}
