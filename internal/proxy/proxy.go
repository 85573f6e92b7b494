package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by Apply after Close or Drain.
var ErrClosed = errors.New("proxy is closed")

// Proxy is one sidecar proxy: listeners, upstreams and their state. It is
// safe for concurrent use; Apply, Drain and Close serialize.
type Proxy struct {
	log    *slog.Logger
	ctx    context.Context // ends at Close: dials, drains, the sweeper
	cancel context.CancelFunc

	mu           sync.Mutex
	closed       bool
	listeners    map[string]*listener // by address
	upstreams    map[string]*upstream // by name; ingresses by "ingress " + listener address
	drainTimeout time.Duration
	alog         *accessLogger // one for the proxy's lifetime; routes point to it when enabled
	retired      []*endpoint   // removed endpoints with requests possibly still in flight
	sweepEvery   chan time.Duration

	statsMu sync.Mutex
	stats   map[statsKey]*stats
	meta    atomic.Pointer[meta]

	wg       sync.WaitGroup // accept loops, connections, drains, the sweeper
	handlers handlerGroup   // HTTP/2 handlers, run by net/http
}

// New returns a proxy with no listeners; Apply gives it its configuration.
// A nil logger discards.
func New(logger *slog.Logger) *Proxy {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		log:        logger,
		ctx:        ctx,
		cancel:     cancel,
		listeners:  make(map[string]*listener),
		upstreams:  make(map[string]*upstream),
		stats:      make(map[statsKey]*stats),
		alog:       &accessLogger{},
		sweepEvery: make(chan time.Duration, 1),
	}
	p.meta.Store(&meta{})
	p.wg.Add(1)
	go p.sweep()
	return p
}

// Apply makes cfg the proxy's configuration, live: it opens the listeners
// that are new, drains and closes those that are gone (within
// cfg.DrainTimeout), and swaps upstream settings and endpoint sets without
// disturbing requests in flight. Connections to endpoints that stay are
// kept; those to endpoints that go are closed once idle. Apply is atomic:
// when it fails (an invalid config, an address that cannot be listened on)
// nothing changed.
func (p *Proxy) Apply(cfg Config) error {
	if err := validate(&cfg); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}

	// Build every new state first; publish nothing yet.
	type staged struct {
		up *upstream
		st *upstreamState
	}
	var stage []staged
	keep := make(map[string]bool)
	for i := range cfg.Upstreams {
		u := &cfg.Upstreams[i]
		up, ok := p.upstreams[u.Name]
		if !ok {
			up = &upstream{name: u.Name}
		}
		s := p.statsFor(false, u.Name, normProtocol(u.Protocol))
		stage = append(stage, staged{up, buildState(up.state.Load(), u, cfg.Zone, s, false)})
		keep[u.Name] = true
	}
	for _, l := range cfg.Listeners {
		if l.Ingress == nil {
			continue
		}
		key := "ingress " + l.Address
		up, ok := p.upstreams[key]
		if !ok {
			up = &upstream{name: l.Ingress.AppAddress}
		}
		name := l.Ingress.DiscoveryName
		if name == "" {
			name = cfg.DiscoveryName
		}
		u := ingressUpstream(l.Ingress)
		s := p.statsFor(true, name, normProtocol(u.Protocol))
		stage = append(stage, staged{up, buildState(up.state.Load(), &u, "", s, true)})
		keep[key] = true
	}

	// Open the new listeners.
	var opened []*listener
	for _, l := range cfg.Listeners {
		if p.listeners[l.Address] != nil {
			continue
		}
		ln, err := net.Listen("tcp", l.Address)
		if err != nil {
			for _, o := range opened {
				o.ln.Close()
			}
			return fmt.Errorf("listen on %s: %w; free the address or choose another port", l.Address, err)
		}
		opened = append(opened, newListener(p, l.Address, ln))
	}

	// Commit.
	if cfg.AccessLog != nil {
		p.alog.configure(cfg.AccessLog)
	}
	for _, s := range stage {
		p.retired = append(p.retired, retireRemoved(s.up.state.Swap(s.st), s.st)...)
	}
	ups := make(map[string]*upstream, len(stage))
	for i, u := range cfg.Upstreams {
		ups[u.Name] = stage[i].up
	}
	j := len(cfg.Upstreams)
	for _, l := range cfg.Listeners {
		if l.Ingress != nil {
			ups["ingress "+l.Address] = stage[j].up
			j++
		}
	}
	for name, up := range p.upstreams {
		if ups[name] == nil {
			p.retired = append(p.retired, retireRemoved(up.state.Load(), nil)...)
		}
	}
	p.upstreams = ups

	for _, o := range opened {
		p.listeners[o.addr] = o
	}
	var alog *accessLogger
	if cfg.AccessLog != nil {
		alog = p.alog
	}
	for _, l := range cfg.Listeners {
		rt := &route{log: alog}
		if l.Ingress != nil {
			rt.up = ups["ingress "+l.Address]
			rt.ingress = true
			rt.protocol = normProtocol(l.Ingress.Protocol)
			rt.tls = serverTLSConfig(l.Ingress.TLS, rt.protocol)
		} else {
			rt.up = ups[l.Upstream]
			rt.protocol = normProtocol(rt.up.state.Load().protocol)
		}
		rt.stats = rt.up.state.Load().stats
		p.listeners[l.Address].route.Store(rt)
	}
	for _, o := range opened {
		p.wg.Add(1)
		go o.serve()
	}

	drain := cfg.DrainTimeout
	if drain == 0 {
		drain = DefaultDrainTimeout
	}
	p.drainTimeout = drain
	want := make(map[string]bool, len(cfg.Listeners))
	for _, l := range cfg.Listeners {
		want[l.Address] = true
	}
	for addr, l := range p.listeners {
		if want[addr] {
			continue
		}
		delete(p.listeners, addr)
		l.stop() // stop accepting now; drain the rest in the background
		p.log.Info("listener removed; draining it", "listener", addr, "drain_timeout", drain)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			ctx, cancel := context.WithTimeout(p.ctx, drain)
			defer cancel()
			if err := l.drain(ctx); err != nil {
				p.log.Info("listener drain ran out of time; connections closed", "listener", addr)
			}
		}()
	}

	p.meta.Store(&meta{serviceName: cfg.ServiceName, clusterName: cfg.ClusterName})
	select {
	case <-p.sweepEvery:
	default:
	}
	p.sweepEvery <- sweepInterval(ups)
	return nil
}

// ingressUpstream describes an ingress's application as an upstream of
// one endpoint, without retries or outlier detection.
func ingressUpstream(in *Ingress) Upstream {
	none := 0
	return Upstream{
		Name:              in.AppAddress,
		Protocol:          in.Protocol,
		Endpoints:         []Endpoint{{Address: in.AppAddress}},
		Retries:           &none,
		PerRequestTimeout: in.PerRequestTimeout,
		IdleTimeout:       in.IdleTimeout,
		Outlier:           Outlier{Consecutive: -1},
	}
}

// buildState makes an upstream's next state, keeping the endpoints (and
// their connections and outlier records) of old that remain, unless the
// way to connect to them changed.
func buildState(old *upstreamState, u *Upstream, zone string, s *stats, ingress bool) *upstreamState {
	proto := normProtocol(u.Protocol)
	st := &upstreamState{
		name:         u.Name,
		protocol:     proto,
		leastRequest: u.Balancer == BalancerLeastRequest,
		retries:      DefaultRetries,
		retryNonIdem: u.RetryNonIdempotent,
		perRequest:   durOr(u.PerRequestTimeout, DefaultPerRequestTimeout),
		idle:         durOr(u.IdleTimeout, defaultIdle(proto)),
		consecutive:  DefaultConsecutive,
		baseEjection: DefaultBaseEjection,
		maxEjectPct:  DefaultMaxEjectionPercent,
		stats:        s,
		ingress:      ingress,
	}
	if proto == ProtocolTCP {
		st.perRequest = 0
	}
	if u.Retries != nil {
		st.retries = *u.Retries
	}
	switch o := u.Outlier; {
	case o.Consecutive < 0:
		st.consecutive = 0
	case o.Consecutive > 0:
		st.consecutive = int32(o.Consecutive)
	}
	if u.Outlier.BaseEjection > 0 {
		st.baseEjection = u.Outlier.BaseEjection
	}
	if u.Outlier.MaxEjectionPercent > 0 {
		st.maxEjectPct = u.Outlier.MaxEjectionPercent
	}
	st.transportKey = transportKey{protocol: proto, tls: u.TLS != nil, idle: st.idle}
	if u.TLS != nil {
		st.transportKey.serverName = u.TLS.ServerName
		st.transportKey.roots = u.TLS.RootCAs
	}
	reuse := old != nil && old.transportKey.same(st.transportKey)
	if reuse && old.tls != nil {
		st.tls = old.tls // keeps the TLS session cache
	} else {
		st.tls = clientTLSConfig(u.TLS, proto)
	}
	prev := make(map[string]*endpoint)
	if reuse {
		for _, e := range old.eps {
			prev[e.addr] = e
		}
	}
	for _, ep := range u.Endpoints {
		e := prev[ep.Address]
		if e == nil || e.zone != ep.Zone {
			e = &endpoint{addr: ep.Address, zone: ep.Zone, pool: &connPool{}}
		}
		st.eps = append(st.eps, e)
	}
	if u.ZoneAware && zone != "" {
		for _, e := range st.eps {
			if e.zone == zone {
				st.local = append(st.local, e)
			}
		}
	}
	return st
}

// retireRemoved closes the idle connections of old's endpoints that next
// no longer has, and returns those endpoints; busy connections close when
// their requests end (HTTP/1.1) or when the sweeper finds the endpoint
// without requests (HTTP/2).
func retireRemoved(old, next *upstreamState) []*endpoint {
	if old == nil {
		return nil
	}
	var gone []*endpoint
	for _, e := range old.eps {
		if next != nil && slices.Contains(next.eps, e) {
			continue
		}
		e.removed.Store(true)
		e.pool.close(false)
		e.closeH2()
		gone = append(gone, e)
	}
	return gone
}

// sweepInterval is how often idle endpoint connections are looked at: a
// quarter of the shortest idle timeout, between 50 ms and 5 s.
func sweepInterval(ups map[string]*upstream) time.Duration {
	every := 5 * time.Second
	for _, up := range ups {
		if idle := up.state.Load().idle; idle > 0 {
			every = min(every, idle/4)
		}
	}
	return max(every, 50*time.Millisecond)
}

func (p *Proxy) sweep() {
	defer p.wg.Done()
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case d := <-p.sweepEvery:
			t.Reset(d)
		case <-t.C:
			p.mu.Lock()
			states := make([]*upstreamState, 0, len(p.upstreams))
			for _, up := range p.upstreams {
				states = append(states, up.state.Load())
			}
			var done []*endpoint
			busy := p.retired[:0]
			for _, e := range p.retired {
				if e.inflight.Load() == 0 {
					done = append(done, e)
				} else {
					busy = append(busy, e)
				}
			}
			clear(p.retired[len(busy):])
			p.retired = busy
			p.mu.Unlock()
			for _, e := range done {
				e.closeAllH2()
			}
			for _, st := range states {
				for _, e := range st.eps {
					e.pool.sweep(st.idle)
				}
			}
		}
	}
}

// Drain stops accepting connections on every listener and lets requests
// and connections in flight finish, then closes the proxy. Idle HTTP/1.1
// connections close at once, busy ones after their response (which says
// Connection: close); HTTP/2 connections get a GOAWAY; TCP connections
// run to their end. When ctx ends first, what is left is closed and ctx's
// error returned.
func (p *Proxy) Drain(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	ls := make([]*listener, 0, len(p.listeners))
	for _, l := range p.listeners {
		ls = append(ls, l)
	}
	p.mu.Unlock()
	errs := make([]error, len(ls))
	var wg sync.WaitGroup
	for i, l := range ls {
		wg.Go(func() { errs[i] = l.drain(ctx) })
	}
	wg.Wait()
	p.Close()
	return errors.Join(errs...)
}

// Close closes every listener and connection at once and waits for the
// proxy's goroutines to end.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	ls := make([]*listener, 0, len(p.listeners))
	for _, l := range p.listeners {
		ls = append(ls, l)
	}
	ups := p.upstreams
	p.mu.Unlock()

	p.cancel()
	for _, l := range ls {
		l.closeAll()
	}
	<-p.handlers.close()
	p.wg.Wait()
	for _, e := range p.retired {
		e.closeAllH2()
	}
	for _, up := range ups {
		for _, e := range up.state.Load().eps {
			e.pool.close(true)
			e.closeAllH2()
		}
	}
	return nil
}

// Addr returns the address a listener is bound to, given the Address it
// was configured with (useful with port 0), or nil when there is no such
// listener.
func (p *Proxy) Addr(address string) net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	if l := p.listeners[address]; l != nil {
		return l.ln.Addr()
	}
	return nil
}
