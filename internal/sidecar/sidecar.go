// Package sidecar is the process of Wharf's Service Connect proxy
// container (`wharf proxy`): it long-polls its configuration from the node
// agent (a Document, the JSON form of a proxy.Config), applies each new one
// to an internal/proxy.Proxy, optionally captures the task's connections to
// alias addresses with nftables, serves the proxy's Prometheus metrics and
// its readiness, and drains on stop. The agent builds the Documents; this
// package defines their shape, so that both ends share it.
package sidecar

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/wharfhq/wharf/internal/proxy"
)

// Ways to receive the task's connections to alias addresses.
const (
	// CaptureNone listens on every alias address and port itself, which
	// fails when an application of the task listens on that port on every
	// address (0.0.0.0:80 and 127.255.0.2:80 cannot both be bound).
	CaptureNone = "none"
	// CaptureNFTables listens on a free port of each alias address and
	// installs nat rules in the task's network namespace sending the
	// alias's port there, as ECS does with iptables. It needs
	// CAP_NET_ADMIN; when the rules cannot be installed the proxy falls
	// back to CaptureNone.
	CaptureNFTables = "nftables"
)

// DefaultAdminAddress is where the proxy serves /metrics and /ready.
const DefaultAdminAddress = "0.0.0.0:15090"

// Options configure Run.
type Options struct {
	// ConfigURI is the agent's configuration endpoint
	// (WHARF_PROXY_CONFIG_URI).
	ConfigURI string
	// AdminAddress serves GET /metrics (Prometheus text) and GET /ready
	// (200 once a configuration is applied, 503 before and while
	// draining). Default DefaultAdminAddress.
	AdminAddress string
	// DrainTimeout bounds draining on stop. Default 20 s.
	DrainTimeout time.Duration
	// Capture is CaptureNone ("" too) or CaptureNFTables.
	Capture string
	// AccessLog receives access log lines when the configuration asks for
	// them (the container's standard output).
	AccessLog io.Writer
	Logger    *slog.Logger
	// Client fetches the configuration; nil means a client with a timeout
	// longer than the agent's long-poll.
	Client *http.Client
}

type capturer interface {
	// set makes rules the task's whole set of captured aliases.
	set(rules []redirect) error
}

// Run runs the proxy until ctx ends, then drains it (within DrainTimeout)
// and returns nil. It returns an error only when it cannot start.
func Run(ctx context.Context, o Options) error {
	if o.ConfigURI == "" {
		return errors.New("no configuration URI; set WHARF_PROXY_CONFIG_URI (the agent sets it in the proxy container)")
	}
	if _, err := url.Parse(o.ConfigURI); err != nil {
		return fmt.Errorf("configuration URI %q: %w", o.ConfigURI, err)
	}
	o.AdminAddress = cmp.Or(o.AdminAddress, DefaultAdminAddress)
	o.DrainTimeout = cmp.Or(o.DrainTimeout, proxy.DefaultDrainTimeout)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 60 * time.Second}
	}
	s := &sidecar{o: o, log: o.Logger, p: proxy.New(o.Logger)}
	switch o.Capture {
	case "", CaptureNone:
	case CaptureNFTables:
		s.capture = newCapture()
	default:
		return fmt.Errorf("capture %q: use %s or %s", o.Capture, CaptureNone, CaptureNFTables)
	}
	ln, err := net.Listen("tcp", o.AdminAddress)
	if err != nil {
		s.p.Close()
		return fmt.Errorf("listen for metrics on %s: %w", o.AdminAddress, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.p.Metrics())
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, r *http.Request) {
		if s.ready.Load() {
			io.WriteString(w, "ready\n")
			return
		}
		http.Error(w, "not configured yet", http.StatusServiceUnavailable)
	})
	admin := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		admin.Serve(ln)
	}()
	s.log.Info("proxy starting", "config_uri", o.ConfigURI, "admin", ln.Addr().String(), "capture", cmp.Or(o.Capture, CaptureNone))

	s.follow(ctx)

	s.ready.Store(false)
	s.log.Info("draining", "timeout", o.DrainTimeout)
	dctx, cancel := context.WithTimeout(context.Background(), o.DrainTimeout)
	if err := s.p.Drain(dctx); err != nil {
		s.log.Warn("drain ran out of time; remaining connections closed", "err", err)
	}
	cancel()
	admin.Close()
	<-served
	s.log.Info("proxy stopped")
	return nil
}

// Check asks the proxy serving at adminAddress whether it is ready: the
// container's health check (`wharf proxy --check`).
func Check(ctx context.Context, adminAddress string) error {
	host, port, err := net.SplitHostPort(cmp.Or(adminAddress, DefaultAdminAddress))
	if err != nil {
		return err
	}
	if ip, err := netip.ParseAddr(host); host == "" || err == nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/ready", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("proxy not ready: %s", resp.Status)
	}
	return nil
}

type sidecar struct {
	o     Options
	log   *slog.Logger
	p     *proxy.Proxy
	ready atomic.Bool

	certs    Certificates
	capture  capturer // nil: listen on alias addresses directly
	captured bool     // the capture rules were installed once
	rules    []redirect
}

// follow fetches and applies configurations until ctx ends.
func (s *sidecar) follow(ctx context.Context) {
	var index int64 // of the configuration applied
	const minDelay, maxDelay = 200 * time.Millisecond, 5 * time.Second
	delay := minDelay
	wait := func() bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(delay):
		}
		delay = min(delay*2, maxDelay)
		return true
	}
	for ctx.Err() == nil {
		doc, err := s.fetch(ctx, index)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("fetching the configuration failed; retrying", "err", err, "retry_in", delay)
			if !wait() {
				return
			}
			continue
		}
		if doc.Index == index {
			delay = minDelay
			continue // the long-poll ended without a change
		}
		if err := s.apply(doc); err != nil {
			// The index stays, so the next fetch answers at once and the
			// configuration is tried again.
			s.log.Error("applying the configuration failed; retrying", "index", doc.Index, "err", err, "retry_in", delay)
			if !wait() {
				return
			}
			continue
		}
		delay = minDelay
		if !s.ready.Swap(true) {
			s.log.Info("configured; ready", "index", doc.Index, "listeners", len(doc.Config.Listeners), "upstreams", len(doc.Config.Upstreams))
		} else {
			s.log.Debug("configuration applied", "index", doc.Index)
		}
		index = doc.Index
	}
}

func (s *sidecar) fetch(ctx context.Context, index int64) (*Document, error) {
	u, err := url.Parse(s.o.ConfigURI)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	q.Set("index", strconv.FormatInt(index, 10))
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.o.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", resp.Status, truncate(string(body), 200))
	}
	doc := new(Document)
	if err := json.Unmarshal(body, doc); err != nil {
		return nil, fmt.Errorf("decode the configuration: %w", err)
	}
	return doc, nil
}

func (s *sidecar) apply(doc *Document) error {
	cfg, err := doc.Config.Proxy(s.o.AccessLog, &s.certs)
	if err != nil {
		return err
	}
	if s.capture == nil {
		return s.p.Apply(cfg)
	}
	ccfg, aliases := captured(cfg)
	if err := s.p.Apply(ccfg); err != nil {
		return err
	}
	rules := make([]redirect, 0, len(aliases))
	for addr, alias := range aliases {
		bound, ok := s.p.Addr(addr).(*net.TCPAddr)
		if !ok {
			return fmt.Errorf("listener %s has no address", addr)
		}
		rules = append(rules, redirect{Alias: alias, Target: netip.AddrPortFrom(alias.Addr(), uint16(bound.Port))})
	}
	slices.SortFunc(rules, func(a, b redirect) int { return a.Alias.Compare(b.Alias) })
	if slices.Equal(rules, s.rules) && s.captured {
		return nil
	}
	if err := s.capture.set(rules); err != nil {
		if s.captured {
			return err
		}
		s.log.Warn("cannot capture connections to alias addresses; listening on them directly instead, which fails for ports an application listens on on every address", "err", err)
		s.capture = nil
		return s.p.Apply(cfg)
	}
	s.captured, s.rules = true, rules
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
