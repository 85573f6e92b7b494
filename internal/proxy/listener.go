package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// route is what a listener does with a connection, as of the last Apply:
// the upstream (or the application, for an ingress) and how to speak.
type route struct {
	up       *upstream
	stats    *stats
	ingress  bool
	protocol string
	tls      *tls.Config // server side TLS (ingress), nil: cleartext
	log      *accessLogger
}

// listener accepts connections on one address. Its route can change under
// it: each connection follows the route it was accepted with, each HTTP
// request the route current when it arrives.
type listener struct {
	p        *Proxy
	addr     string
	ln       net.Listener
	route    atomic.Pointer[route]
	draining atomic.Bool

	mu    sync.Mutex
	conns map[*tracked]struct{}
	empty chan struct{} // closed once draining and without connections
	h2    []*h2server   // HTTP/2 servers, by idle timeout and TLS
}

// Connection states, for draining HTTP/1.1 connections between requests.
const (
	connActive int32 = iota
	connIdle
	connClosing
)

// tracked is an accepted connection the listener can find again to drain
// or close it.
type tracked struct {
	net.Conn
	l      *listener
	stats  *stats
	once   sync.Once
	closed atomic.Bool
	state  atomic.Int32
	peer   atomic.Pointer[upConn] // connection to the endpoint being used
}

// Close closes the connection once and forgets it.
func (t *tracked) Close() error {
	err := net.ErrClosed
	t.closed.Store(true)
	t.once.Do(func() {
		err = t.Conn.Close()
		t.stats.activeConns.Add(-1)
		t.l.forget(t)
	})
	return err
}

// abort closes the connection and the endpoint connection it is using, so
// that its goroutine returns. The goroutine stores a new endpoint
// connection before checking closed, abort sets closed before loading it:
// one of them closes it.
func (t *tracked) abort() {
	t.Close()
	if uc := t.peer.Load(); uc != nil {
		uc.c.Close()
	}
}

// setIdle marks an HTTP/1.1 connection as waiting for a request; false if
// draining has claimed it.
func (t *tracked) setIdle() bool {
	return t.state.CompareAndSwap(connActive, connIdle)
}

// setActive marks an HTTP/1.1 connection as serving a request; false if
// draining claimed it while it waited.
func (t *tracked) setActive() bool {
	return t.state.CompareAndSwap(connIdle, connActive)
}

func newListener(p *Proxy, addr string, ln net.Listener) *listener {
	return &listener{p: p, addr: addr, ln: ln, conns: make(map[*tracked]struct{})}
}

// track registers an accepted connection; nil when the listener drains.
func (l *listener) track(c net.Conn, s *stats) *tracked {
	t := &tracked{Conn: c, l: l, stats: s}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.draining.Load() {
		return nil
	}
	l.conns[t] = struct{}{}
	s.newConns.Add(1)
	s.activeConns.Add(1)
	return t
}

func (l *listener) forget(t *tracked) {
	l.mu.Lock()
	delete(l.conns, t)
	if len(l.conns) == 0 && l.empty != nil {
		close(l.empty)
		l.empty = nil
	}
	l.mu.Unlock()
}

// serve is the accept loop; it returns when the listener is closed.
func (l *listener) serve() {
	defer l.p.wg.Done()
	backoff := 5 * time.Millisecond
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait, as net/http does.
			l.p.log.Warn("accept failed; retrying", "listener", l.addr, "error", err, "backoff", backoff)
			select {
			case <-time.After(backoff):
			case <-l.p.ctx.Done():
				return
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		rt := l.route.Load()
		t := l.track(fastConn(c), rt.stats)
		if t == nil {
			c.Close()
			continue
		}
		l.p.wg.Add(1)
		go l.serveConn(t, rt)
	}
}

func (l *listener) serveConn(t *tracked, rt *route) {
	defer l.p.wg.Done()
	var c net.Conn = t
	if rt.tls != nil {
		tc := tls.Server(t, rt.tls)
		ctx, cancel := context.WithTimeout(l.p.ctx, tlsHandshakeTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			rt.stats.tlsErrors.Add(1)
			l.p.log.Debug("TLS handshake with a caller failed", "listener", l.addr, "remote", t.RemoteAddr().String(), "error", err)
			t.Close()
			return
		}
		c = tc
	}
	switch {
	case rt.protocol == ProtocolTCP:
		l.serveTCP(t, c, rt)
	case isHTTP2(rt.protocol):
		l.serveH2(t, c, rt)
	default:
		l.serveHTTP1(t, c)
	}
}

// stop closes the listening socket: no new connections.
func (l *listener) stop() {
	l.ln.Close()
}

// drain stops accepting and lets the connections finish: idle HTTP/1.1
// connections are closed now, busy ones after their current request (whose
// response says Connection: close), HTTP/2 connections get a GOAWAY, TCP
// connections run until they end. When ctx ends first, whatever is left is
// closed and ctx's error returned.
func (l *listener) drain(ctx context.Context) error {
	l.mu.Lock()
	l.draining.Store(true)
	l.ln.Close()
	var empty chan struct{}
	if len(l.conns) > 0 {
		if l.empty == nil {
			l.empty = make(chan struct{})
		}
		empty = l.empty
	}
	idle := make([]*tracked, 0, len(l.conns))
	for t := range l.conns {
		if t.state.CompareAndSwap(connIdle, connClosing) {
			idle = append(idle, t)
		}
	}
	servers := l.h2
	l.mu.Unlock()

	for _, t := range idle {
		// Wake the goroutine reading the next request; it sees connClosing
		// and closes the connection.
		t.SetReadDeadline(time.Unix(1, 0))
	}
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Go(func() { s.shutdown(ctx) })
	}
	defer wg.Wait()
	if empty == nil {
		return nil
	}
	select {
	case <-empty:
		return nil
	case <-ctx.Done():
		l.closeAll()
		return ctx.Err()
	}
}

// closeAll closes the listener and every connection at once.
func (l *listener) closeAll() {
	l.mu.Lock()
	l.draining.Store(true)
	l.ln.Close()
	conns := make([]*tracked, 0, len(l.conns))
	for t := range l.conns {
		conns = append(conns, t)
	}
	servers := l.h2
	l.mu.Unlock()
	for _, s := range servers {
		s.close()
	}
	for _, t := range conns {
		t.abort()
	}
}
