package proxy

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"time"
)

// upConn is a kept-alive HTTP/1.1 connection to an endpoint.
type upConn struct {
	c         net.Conn
	r         connReader // with c's read deadline managed by r.setDeadline
	ep        *endpoint
	idleSince int64 // mono time it went back to the pool
	reused    bool
}

func newUpConn(c net.Conn, ep *endpoint) *upConn {
	uc := &upConn{c: c, ep: ep}
	uc.r.reset(c, readBufSize)
	uc.r.conn = c
	return uc
}

// connPool keeps an endpoint's idle HTTP/1.1 connections, most recently
// used first (so surplus connections age out).
type connPool struct {
	mu     sync.Mutex
	idle   []*upConn
	closed bool
}

// get returns an idle connection, or nil; connections idle longer than
// idle are closed on the way. now is the mono time.
func (p *connPool) get(idle time.Duration, now int64) *upConn {
	p.mu.Lock()
	for n := len(p.idle); n > 0; n = len(p.idle) {
		uc := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		if idle > 0 && now-uc.idleSince > int64(idle) {
			p.mu.Unlock()
			uc.c.Close()
			p.mu.Lock()
			continue
		}
		p.mu.Unlock()
		return uc
	}
	p.mu.Unlock()
	return nil
}

// put returns a connection for reuse at mono time now; it is closed when
// the pool is.
func (p *connPool) put(uc *upConn, now int64) {
	uc.idleSince = now
	uc.reused = true
	p.mu.Lock()
	if p.closed || uc.ep.removed.Load() {
		p.mu.Unlock()
		uc.c.Close()
		return
	}
	p.idle = append(p.idle, uc)
	p.mu.Unlock()
}

// sweep closes connections idle for longer than idle.
func (p *connPool) sweep(idle time.Duration) {
	if idle <= 0 {
		return
	}
	now := mono()
	var old []*upConn
	p.mu.Lock()
	keep := p.idle[:0]
	for _, uc := range p.idle {
		if now-uc.idleSince > int64(idle) {
			old = append(old, uc)
		} else {
			keep = append(keep, uc)
		}
	}
	clear(p.idle[len(keep):])
	p.idle = keep
	p.mu.Unlock()
	for _, uc := range old {
		uc.c.Close()
	}
}

// close closes the idle connections; with final, later puts close theirs.
func (p *connPool) close(final bool) {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	if final {
		p.closed = true
	}
	p.mu.Unlock()
	for _, uc := range idle {
		uc.c.Close()
	}
}

// dialError marks a failure to connect (TCP or TLS): nothing reached the
// endpoint, so any request may be retried.
type dialError struct {
	err error
	tls bool // the TLS handshake failed
}

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// dial connects to ep, with TLS when the upstream has it, giving up at
// deadline (zero: connectTimeout from now). wrap, when set, wraps the TCP
// connection (under TLS).
func dial(ctx context.Context, st *upstreamState, ep *endpoint, deadline time.Time, wrap func(net.Conn) net.Conn) (net.Conn, error) {
	limit := time.Now().Add(connectTimeout)
	if !deadline.IsZero() && deadline.Before(limit) {
		limit = deadline
	}
	ctx, cancel := context.WithDeadline(ctx, limit)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", ep.addr)
	if err != nil {
		return nil, &dialError{err: err}
	}
	c = fastConn(c)
	if wrap != nil {
		c = wrap(c)
	}
	if st.tls == nil {
		return c, nil
	}
	cfg := st.tls
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		cfg.ServerName, _, _ = net.SplitHostPort(ep.addr)
	}
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, &dialError{err: err, tls: true}
	}
	return tc, nil
}
