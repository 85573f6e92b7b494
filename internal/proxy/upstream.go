package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// epoch anchors mono, a monotonic clock in nanoseconds that fits an atomic.
var epoch = time.Now()

func mono() int64 { return int64(time.Since(epoch)) }

// endpoint is one address of an upstream, with the state that outlives
// Apply calls: its connection pool, its requests in flight and its outlier
// record. An Apply keeps the endpoint object for an address still listed.
type endpoint struct {
	addr string
	zone string

	inflight atomic.Int32 // requests (HTTP) or connections (TCP) in flight

	// outlier record
	consecFail   atomic.Int32
	ejectedUntil atomic.Int64 // mono time; 0 or past: not ejected
	ejections    atomic.Int32 // times ejected, decayed while healthy
	removed      atomic.Bool  // no longer in the upstream: drain and close

	pool    *connPool       // HTTP/1.1 connections
	h2      *http.Transport // HTTP/2 connections (lazily, for http2 and grpc)
	h2conns map[*h2conn]struct{}
	h2mu    sync.Mutex
}

func (e *endpoint) healthy(now int64) bool { return e.ejectedUntil.Load() <= now }

// upstreamState is one immutable version of an upstream's settings and
// endpoint set; Apply publishes a new one, requests load it once.
type upstreamState struct {
	name         string
	protocol     string
	eps          []*endpoint
	local        []*endpoint // endpoints in the proxy's zone, when zone-aware
	leastRequest bool
	retries      int
	retryNonIdem bool
	perRequest   time.Duration
	idle         time.Duration
	consecutive  int32 // 0: outlier detection off
	baseEjection time.Duration
	maxEjectPct  int
	tls          *tls.Config // nil: cleartext
	transportKey transportKey
	ingress      bool
	stats        *stats // the callers' side (egress) or the ingress's
}

// transportKey says whether pooled connections can be kept across an
// Apply: endpoints keep their pools only when it does not change.
type transportKey struct {
	protocol   string
	tls        bool
	serverName string
	roots      *x509.CertPool // compared with Equal
	idle       time.Duration  // baked into HTTP/2 transports
}

func (k transportKey) same(o transportKey) bool {
	if k.protocol != o.protocol || k.tls != o.tls || k.serverName != o.serverName || k.idle != o.idle {
		return false
	}
	if !k.tls {
		return true
	}
	return certPoolsEqual(k.roots, o.roots)
}

// upstream is the long-lived object behind an Upstream name (or an
// ingress's application).
type upstream struct {
	name    string
	state   atomic.Pointer[upstreamState]
	rr      atomic.Uint32
	ejectMu sync.Mutex // serializes ejection decisions
}

// tried remembers the endpoints a request already went to, so that retries
// go elsewhere when they can.
type tried struct {
	n   int
	eps [maxRetries + 1]*endpoint
}

func (t *tried) add(e *endpoint) {
	if t.n < len(t.eps) {
		t.eps[t.n] = e
		t.n++
	}
}

func (t *tried) has(e *endpoint) bool {
	for i := 0; i < t.n; i++ {
		if t.eps[i] == e {
			return true
		}
	}
	return false
}

// pick chooses an endpoint for a new request or connection, or nil when the
// upstream has none; now is the mono time. Preference order:
//  1. zone-aware: a healthy endpoint of the proxy's zone not yet tried;
//  2. a healthy endpoint not yet tried;
//  3. a healthy endpoint;
//  4. panic mode: every endpoint is ejected, so any endpoint not yet
//     tried, then any.
func (u *upstream) pick(st *upstreamState, t *tried, now int64) *endpoint {
	if len(st.eps) == 0 {
		return nil
	}
	if len(st.local) > 0 {
		if e := u.choose(st, st.local, t, now, true); e != nil {
			return e
		}
	}
	if e := u.choose(st, st.eps, t, now, true); e != nil {
		return e
	}
	if t.n > 0 {
		if e := u.choose(st, st.eps, nil, now, true); e != nil {
			return e
		}
	}
	if e := u.choose(st, st.eps, t, now, false); e != nil {
		return e
	}
	return u.choose(st, st.eps, nil, now, false)
}

func usable(e *endpoint, t *tried, now int64, needHealthy bool) bool {
	if needHealthy && !e.healthy(now) {
		return false
	}
	return t == nil || !t.has(e)
}

func (u *upstream) choose(st *upstreamState, eps []*endpoint, t *tried, now int64, needHealthy bool) *endpoint {
	n := len(eps)
	if n == 1 {
		if usable(eps[0], t, now, needHealthy) {
			return eps[0]
		}
		return nil
	}
	if st.leastRequest {
		// Power of two choices: two distinct random endpoints, the one with
		// fewer requests in flight wins.
		a := rand.IntN(n)
		b := rand.IntN(n - 1)
		if b >= a {
			b++
		}
		ea, eb := eps[a], eps[b]
		oka, okb := usable(ea, t, now, needHealthy), usable(eb, t, now, needHealthy)
		switch {
		case oka && okb:
			if eb.inflight.Load() < ea.inflight.Load() {
				return eb
			}
			return ea
		case oka:
			return ea
		case okb:
			return eb
		}
		// Both unusable: the least loaded of the usable ones.
		var best *endpoint
		for _, e := range eps {
			if usable(e, t, now, needHealthy) && (best == nil || e.inflight.Load() < best.inflight.Load()) {
				best = e
			}
		}
		return best
	}
	start := int(u.rr.Add(1) % uint32(n))
	for i := 0; i < n; i++ {
		e := eps[(start+i)%n]
		if usable(e, t, now, needHealthy) {
			return e
		}
	}
	return nil
}

// report records the outcome of one attempt on e for outlier detection.
func (u *upstream) report(st *upstreamState, e *endpoint, failed bool) {
	if st.consecutive == 0 {
		return
	}
	if !failed {
		if e.consecFail.Load() != 0 {
			e.consecFail.Store(0)
		}
		return
	}
	if e.consecFail.Add(1) < st.consecutive {
		return
	}
	u.eject(st, e)
}

// eject takes e out of rotation unless that would eject more than the
// allowed share of the endpoints. The allowed share is at least one
// endpoint (Envoy's historical rule), so small upstreams still eject.
func (u *upstream) eject(st *upstreamState, e *endpoint) {
	u.ejectMu.Lock()
	defer u.ejectMu.Unlock()
	now := mono()
	if !e.healthy(now) {
		return
	}
	ejected := 0
	for _, o := range st.eps {
		if !o.healthy(now) {
			ejected++
		}
	}
	allowed := len(st.eps) * st.maxEjectPct / 100
	if allowed < 1 {
		allowed = 1
	}
	e.consecFail.Store(0)
	if ejected+1 > allowed {
		return
	}
	// The multiplier decays by one for every base ejection time spent
	// healthy since the last ejection ended.
	n := e.ejections.Load()
	if until := e.ejectedUntil.Load(); until > 0 && st.baseEjection > 0 {
		n -= int32((now - until) / int64(st.baseEjection))
		if n < 0 {
			n = 0
		}
	}
	n++
	e.ejections.Store(n)
	d := time.Duration(n) * st.baseEjection
	if max := max(maxEjection, st.baseEjection); d > max {
		d = max
	}
	e.ejectedUntil.Store(now + int64(d))
	st.stats.ejections.Add(1)
}

// noEndpointMessage is the body of the 503 answered when an upstream has
// no endpoint at all.
func noEndpointMessage(name string) string {
	return fmt.Sprintf("no endpoint for %q: the service has no running task registered in the namespace; check its tasks with `aws ecs list-tasks`", name)
}
