package sidecar

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/wharfhq/wharf/internal/proxy"
)

// Document is what the agent serves at WHARF_PROXY_CONFIG_URI: a proxy
// configuration and its index. GET URI?index=N answers at once when the
// agent's index differs from N, else when the configuration changes or
// after about 20 s, with the same index then.
type Document struct {
	// Index identifies the configuration; it changes with it. The proxy
	// passes the index it has applied to its next request, which also
	// tells the agent that it has.
	Index  int64  `json:"index"`
	Config Config `json:"config"`
}

// Config is the JSON form of a proxy.Config. Durations are in
// milliseconds; a null timeout means the proxy's default and 0 disables.
type Config struct {
	ServiceName   string `json:"serviceName,omitempty"`
	ClusterName   string `json:"clusterName,omitempty"`
	DiscoveryName string `json:"discoveryName,omitempty"`
	// Zone is the availability zone the task runs in.
	Zone      string     `json:"zone,omitempty"`
	Listeners []Listener `json:"listeners"`
	Upstreams []Upstream `json:"upstreams"`
	// AccessLog, when set, logs requests to the proxy's standard output.
	AccessLog      *AccessLog `json:"accessLog,omitempty"`
	DrainTimeoutMs *int64     `json:"drainTimeoutMs,omitempty"`
	// TLS is the task's certificate, for TLS ingresses and mutual TLS
	// upstreams; TrustBundle the PEM certificates peers are verified
	// against.
	TLS         *TLSMaterial `json:"tls,omitempty"`
	TrustBundle string       `json:"trustBundle,omitempty"`
}

// TLSMaterial is a certificate chain and its private key, PEM.
type TLSMaterial struct {
	Certificate string `json:"certificate"`
	Key         string `json:"key"`
}

// Listener is an address the proxy accepts connections on: an alias
// (egress: Upstream set, Address VIP:port) or a service's ingress.
type Listener struct {
	Address  string   `json:"address"`
	Upstream string   `json:"upstream,omitempty"`
	Ingress  *Ingress `json:"ingress,omitempty"`
}

// Ingress forwards callers to the application in the task.
type Ingress struct {
	DiscoveryName       string `json:"discoveryName,omitempty"`
	Protocol            string `json:"protocol,omitempty"`
	AppAddress          string `json:"appAddress"`
	PerRequestTimeoutMs *int64 `json:"perRequestTimeoutMs,omitempty"`
	IdleTimeoutMs       *int64 `json:"idleTimeoutMs,omitempty"`
	// TLS serves the task's certificate; Mutual requires callers to
	// present one the trust bundle verifies.
	TLS    bool `json:"tls,omitempty"`
	Mutual bool `json:"mutual,omitempty"`
}

// Upstream is a client-server service of the namespace and its endpoints.
type Upstream struct {
	Name                string     `json:"name"`
	Protocol            string     `json:"protocol,omitempty"`
	Endpoints           []Endpoint `json:"endpoints"`
	Balancer            string     `json:"balancer,omitempty"`
	ZoneAware           bool       `json:"zoneAware,omitempty"`
	Retries             *int       `json:"retries,omitempty"`
	RetryNonIdempotent  bool       `json:"retryNonIdempotent,omitempty"`
	PerRequestTimeoutMs *int64     `json:"perRequestTimeoutMs,omitempty"`
	IdleTimeoutMs       *int64     `json:"idleTimeoutMs,omitempty"`
	Outlier             *Outlier   `json:"outlier,omitempty"`
	// TLS verifies the endpoints' certificates for ServerName against the
	// trust bundle; Mutual presents the task's certificate.
	TLS        bool   `json:"tls,omitempty"`
	Mutual     bool   `json:"mutual,omitempty"`
	ServerName string `json:"serverName,omitempty"`
}

// Endpoint is one task of an upstream: its proxy's ingress address.
type Endpoint struct {
	Address string `json:"address"`
	Zone    string `json:"zone,omitempty"`
}

// Outlier tunes outlier detection; zero fields keep the defaults.
type Outlier struct {
	Consecutive        int   `json:"consecutive,omitempty"`
	BaseEjectionMs     int64 `json:"baseEjectionMs,omitempty"`
	MaxEjectionPercent int   `json:"maxEjectionPercent,omitempty"`
}

// AccessLog is "TEXT" or "JSON".
type AccessLog struct {
	Format                 string `json:"format"`
	IncludeQueryParameters bool   `json:"includeQueryParameters,omitempty"`
}

// Millis converts a duration in seconds, as ECS gives timeouts, to the
// document's milliseconds; nil stays nil.
func Millis(seconds *int32) *int64 {
	if seconds == nil {
		return nil
	}
	ms := int64(*seconds) * 1000
	return &ms
}

func duration(ms *int64) *time.Duration {
	if ms == nil {
		return nil
	}
	d := time.Duration(*ms) * time.Millisecond
	return &d
}

// Certificates keeps a proxy's TLS material across configurations: the
// proxy's TLS callbacks read the current certificate at each handshake, so
// a renewed one is used from the next connection on, and the trust pool
// stays the same object while the bundle does, so that connections to
// upstreams are kept. The zero value is ready to use.
type Certificates struct {
	cur   atomic.Pointer[tls.Certificate]
	pem   TLSMaterial
	pool  *x509.CertPool
	trust string
}

func (c *Certificates) update(m *TLSMaterial, trust string) error {
	if m != nil && *m != c.pem {
		cert, err := tls.X509KeyPair([]byte(m.Certificate), []byte(m.Key))
		if err != nil {
			return fmt.Errorf("the task's certificate: %w", err)
		}
		c.cur.Store(&cert)
		c.pem = *m
	}
	switch {
	case trust == "":
		c.pool, c.trust = nil, ""
	case trust != c.trust || c.pool == nil:
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(trust)) {
			return errors.New("the trust bundle holds no certificate")
		}
		c.pool, c.trust = pool, trust
	}
	return nil
}

func (c *Certificates) certificate() (*tls.Certificate, error) {
	if cert := c.cur.Load(); cert != nil {
		return cert, nil
	}
	return nil, errors.New("no certificate yet")
}

// Proxy converts c to the proxy's Config; access logs go to accessLog, and
// certs keeps the TLS material (pass the same one every time). The proxy
// validates the result when it is applied.
func (c *Config) Proxy(accessLog io.Writer, certs *Certificates) (proxy.Config, error) {
	if err := certs.update(c.TLS, c.TrustBundle); err != nil {
		return proxy.Config{}, err
	}
	out := proxy.Config{
		ServiceName:   c.ServiceName,
		ClusterName:   c.ClusterName,
		DiscoveryName: c.DiscoveryName,
		Zone:          c.Zone,
	}
	if c.DrainTimeoutMs != nil {
		out.DrainTimeout = time.Duration(*c.DrainTimeoutMs) * time.Millisecond
	}
	if c.AccessLog != nil && accessLog != nil {
		out.AccessLog = &proxy.AccessLog{Format: c.AccessLog.Format, Writer: accessLog, IncludeQueryParameters: c.AccessLog.IncludeQueryParameters}
	}
	for _, l := range c.Listeners {
		pl := proxy.Listener{Address: l.Address, Upstream: l.Upstream}
		if in := l.Ingress; in != nil {
			pl.Ingress = &proxy.Ingress{
				DiscoveryName:     in.DiscoveryName,
				Protocol:          in.Protocol,
				AppAddress:        in.AppAddress,
				PerRequestTimeout: duration(in.PerRequestTimeoutMs),
				IdleTimeout:       duration(in.IdleTimeoutMs),
			}
			if in.TLS {
				if c.TLS == nil {
					return proxy.Config{}, fmt.Errorf("ingress %s serves TLS and the configuration has no certificate", in.DiscoveryName)
				}
				pl.Ingress.TLS = &proxy.ServerTLS{Certificate: certs.certificate}
				if in.Mutual {
					if certs.pool == nil {
						return proxy.Config{}, fmt.Errorf("ingress %s requires mutual TLS and the configuration has no trust bundle", in.DiscoveryName)
					}
					pl.Ingress.TLS.ClientCAs = certs.pool
				}
			}
		}
		out.Listeners = append(out.Listeners, pl)
	}
	for _, u := range c.Upstreams {
		pu := proxy.Upstream{
			Name:               u.Name,
			Protocol:           u.Protocol,
			Balancer:           u.Balancer,
			ZoneAware:          u.ZoneAware,
			Retries:            u.Retries,
			RetryNonIdempotent: u.RetryNonIdempotent,
			PerRequestTimeout:  duration(u.PerRequestTimeoutMs),
			IdleTimeout:        duration(u.IdleTimeoutMs),
		}
		if o := u.Outlier; o != nil {
			pu.Outlier = proxy.Outlier{Consecutive: o.Consecutive, BaseEjection: time.Duration(o.BaseEjectionMs) * time.Millisecond, MaxEjectionPercent: o.MaxEjectionPercent}
		}
		for _, e := range u.Endpoints {
			pu.Endpoints = append(pu.Endpoints, proxy.Endpoint{Address: e.Address, Zone: e.Zone})
		}
		if u.TLS {
			if certs.pool == nil {
				return proxy.Config{}, fmt.Errorf("upstream %s uses TLS and the configuration has no trust bundle", u.Name)
			}
			pu.TLS = &proxy.ClientTLS{RootCAs: certs.pool, ServerName: u.ServerName}
			if u.Mutual {
				if c.TLS == nil {
					return proxy.Config{}, fmt.Errorf("upstream %s requires mutual TLS and the configuration has no certificate", u.Name)
				}
				pu.TLS.Certificate = certs.certificate
			}
		}
		out.Upstreams = append(out.Upstreams, pu)
	}
	return out, nil
}

// VIPPrefix is where Service Connect aliases get their addresses, as on
// ECS.
var VIPPrefix = netip.MustParsePrefix("127.255.0.0/16")

// redirect is one captured alias: connections the task makes to Alias are
// sent to the proxy's listener at Target.
type redirect struct {
	Alias  netip.AddrPort
	Target netip.AddrPort
}

// captured rewrites the egress listeners on alias addresses (VIP:port) to
// listen on VIP:0 instead, so that the kernel picks a free port and the
// listener never collides with an application listening on the alias's
// port on every address (0.0.0.0:8080 and 127.255.0.2:8080 cannot both be
// bound). It returns the rewritten config and, by listener address, the
// alias each rewritten listener stands for; the capture rules send the
// alias to the bound port. Only the first listener of a VIP is rewritten.
func captured(cfg proxy.Config) (proxy.Config, map[string]netip.AddrPort) {
	aliases := map[string]netip.AddrPort{}
	out := cfg
	out.Listeners = make([]proxy.Listener, len(cfg.Listeners))
	for i, l := range cfg.Listeners {
		out.Listeners[i] = l
		ap, err := netip.ParseAddrPort(l.Address)
		if l.Upstream == "" || err != nil || !VIPPrefix.Contains(ap.Addr()) {
			continue
		}
		addr := netip.AddrPortFrom(ap.Addr(), 0).String()
		if _, taken := aliases[addr]; taken {
			continue
		}
		aliases[addr] = ap
		out.Listeners[i].Address = addr
	}
	return out, aliases
}
