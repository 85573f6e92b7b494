package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// HTTP/2 and gRPC go through net/http: its server (h2c with prior
// knowledge, or h2 over TLS) on the listener side and one http.Transport
// per endpoint on the other. The handler streams both bodies, so
// bidirectional gRPC streams pass through, and relays trailers.

// h2server is one http.Server fed with the connections of a listener.
type h2server struct {
	srv  *http.Server
	ln   *chanListener
	idle time.Duration
	tls  bool
}

func (s *h2server) shutdown(ctx context.Context) {
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
	}
}

func (s *h2server) close() { s.srv.Close() }

// chanListener hands accepted connections to an http.Server.
type chanListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

func (l *chanListener) deliver(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

// serveH2 hands the connection to the listener's HTTP/2 server for its
// idle timeout and TLS.
func (l *listener) serveH2(t *tracked, c net.Conn, rt *route) {
	idle := rt.up.state.Load().idle
	_, isTLS := c.(*tls.Conn)
	l.mu.Lock()
	var s *h2server
	for _, h := range l.h2 {
		if h.idle == idle && h.tls == isTLS {
			s = h
		}
	}
	var old []*h2server
	if s == nil && !l.draining.Load() {
		// The idle timeout changed (or first use): a new server; the old
		// one of the same kind finishes its connections and goes.
		keep := l.h2[:0]
		for _, h := range l.h2 {
			if h.tls == isTLS {
				old = append(old, h)
			} else {
				keep = append(keep, h)
			}
		}
		s = l.newH2Server(idle, isTLS)
		l.h2 = append(keep, s)
	}
	l.mu.Unlock()
	for _, h := range old {
		l.p.wg.Add(1)
		go func() {
			defer l.p.wg.Done()
			h.shutdown(l.p.ctx)
		}()
	}
	if s == nil || !s.ln.deliver(c) {
		c.Close()
	}
}

func (l *listener) newH2Server(idle time.Duration, isTLS bool) *h2server {
	var protos http.Protocols
	protos.SetHTTP1(true)
	if isTLS {
		protos.SetHTTP2(true)
	} else {
		protos.SetUnencryptedHTTP2(true)
	}
	s := &h2server{
		ln:   &chanListener{addr: l.ln.Addr(), ch: make(chan net.Conn), done: make(chan struct{})},
		idle: idle,
		tls:  isTLS,
	}
	s.srv = &http.Server{
		Handler:           l,
		Protocols:         &protos,
		IdleTimeout:       idle,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(l.p.log.Handler(), slog.LevelDebug),
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: 1000},
		BaseContext:       func(net.Listener) context.Context { return l.p.ctx },
	}
	if idle == 0 {
		s.srv.IdleTimeout = -1 // no idle timeout (0 would mean ReadTimeout)
	}
	l.p.wg.Add(1)
	go func() {
		defer l.p.wg.Done()
		s.srv.Serve(s.ln)
	}()
	return s
}

// hopRequestHeaders are never forwarded (HTTP/2 forbids them; TE is
// handled apart: only "trailers" passes).
var hopRequestHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Http2-Settings"}

// ServeHTTP forwards one HTTP/2 (or gRPC) request.
func (l *listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !l.p.handlers.enter() {
		http.Error(w, "proxy is shutting down", http.StatusServiceUnavailable)
		return
	}
	defer l.p.handlers.leave()
	rt := l.route.Load()
	st := rt.up.state.Load()
	if !isHTTP2(st.protocol) {
		rt.stats.countLocal(http.StatusServiceUnavailable)
		w.Header().Set("Connection", "close")
		http.Error(w, fmt.Sprintf("listener %s now speaks %s; reconnect", l.addr, st.protocol), http.StatusServiceUnavailable)
		return
	}
	f := h2forward{l: l, rt: rt, st: st, w: w, r: r, start: time.Now(), upstreamRT: -1}
	f.serve()
}

type h2forward struct {
	l          *listener
	rt         *route
	st         *upstreamState
	w          http.ResponseWriter
	r          *http.Request
	start      time.Time
	code       int
	flags      string
	received   atomic.Int64
	sent       int64
	upstream   string
	upstreamRT time.Duration
	timedOut   atomic.Bool
}

func (f *h2forward) serve() {
	r, st, s := f.r, f.st, f.rt.stats
	s.requests.Add(1)
	grpc := st.protocol == ProtocolGRPC || isGRPCRequest(r)
	if grpc {
		s.grpc.Add(1)
	}
	defer f.finish()

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	var timer *time.Timer
	var armOnce sync.Once
	arm := func() {
		if st.perRequest <= 0 {
			return
		}
		armOnce.Do(func() {
			timer = time.AfterFunc(st.perRequest, func() {
				f.timedOut.Store(true)
				cancel()
			})
		})
	}
	defer func() {
		armOnce.Do(func() {}) // no arming after this
		if timer != nil {
			timer.Stop()
		}
	}()

	idem := idempotent([]byte(r.Method)) || r.Header.Get("Idempotency-Key") != "" || st.retryNonIdem
	header := r.Header.Clone()
	for _, h := range hopRequestHeaders {
		header.Del(h)
	}
	if te := header.Get("Te"); te != "" {
		header.Del("Te")
		if bytes.Contains(bytes.ToLower([]byte(te)), []byte("trailers")) {
			header.Set("Te", "trailers")
		}
	}

	// The body: none, kept (small, so it can be sent again) or streamed.
	var kept []byte
	var stream *h2body
	switch {
	case r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0:
		arm()
	case r.ContentLength > 0 && r.ContentLength <= maxReplayBody && idem:
		b, err := io.ReadAll(io.LimitReader(r.Body, r.ContentLength))
		if err != nil {
			f.flags = flagDownstreamReset
			return
		}
		kept = b
		f.received.Add(int64(len(b)))
		arm()
	default:
		stream = newH2Body(r.Body, idem && st.retries > 0, arm, &f.received)
	}

	var t tried
	for retries := 0; ; retries++ {
		ep := f.rt.up.pick(st, &t, mono())
		if ep == nil {
			f.local(http.StatusServiceUnavailable, flagNoHealthy, grpc,
				noEndpointMessage(f.rt.up.name))
			return
		}
		t.add(ep)
		if retries > 0 {
			s.retries.Add(1)
		}
		canRetry := retries < st.retries && !f.timedOut.Load()
		f.upstream = ep.addr

		scheme := "http"
		if st.tls != nil {
			scheme = "https"
		}
		out := &http.Request{
			Method:        r.Method,
			URL:           &url.URL{Scheme: scheme, Host: ep.addr, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery},
			Proto:         "HTTP/2.0",
			ProtoMajor:    2,
			Header:        header,
			Host:          r.Host,
			ContentLength: r.ContentLength,
		}
		switch {
		case kept != nil:
			out.Body = io.NopCloser(bytes.NewReader(kept))
		case stream != nil:
			out.Body = stream
		default:
			out.ContentLength = 0
		}
		out = out.WithContext(ctx)

		ep.inflight.Add(1)
		sentAt := time.Now()
		resp, err := ep.transport(st).RoundTrip(out)
		if err != nil {
			ep.inflight.Add(-1)
			if f.timedOut.Load() {
				f.rt.up.report(st, ep, true)
				f.local(http.StatusGatewayTimeout, flagTimeout, grpc,
					fmt.Sprintf("upstream %q: %s did not answer within the per-request timeout of %s", f.rt.up.name, ep.addr, st.perRequest))
				return
			}
			if r.Context().Err() != nil {
				f.flags = flagDownstreamReset
				return
			}
			var de *dialError
			dialFailed := errors.As(err, &de)
			if dialFailed && de.tls || isTLSAlert(err) || notEstablished(err) && st.tls != nil {
				s.tlsErrors.Add(1)
			}
			if notEstablished(err) || isTLSAlert(err) {
				dialFailed = true // the endpoint processed nothing
			}
			f.rt.up.report(st, ep, true)
			if canRetry && (dialFailed || idem) && (stream == nil || stream.seal(idem)) {
				if stream != nil {
					stream = stream.again()
				}
				continue
			}
			if dialFailed {
				f.local(http.StatusServiceUnavailable, flagConnectFailure, grpc,
					fmt.Sprintf("upstream %q: connecting to %s failed: %v", f.rt.up.name, ep.addr, err))
			} else {
				f.local(http.StatusServiceUnavailable, flagUpstreamReset, grpc,
					fmt.Sprintf("upstream %q: %s reset the request: %v", f.rt.up.name, ep.addr, err))
			}
			return
		}
		f.upstreamRT = time.Since(sentAt)
		grpcStatus := resp.Header.Get("Grpc-Status") // present: a trailers-only response
		unavailable := resp.StatusCode == http.StatusServiceUnavailable || grpcStatus == "14"
		if unavailable && canRetry && idem && (stream == nil || stream.seal(true)) {
			resp.Body.Close()
			ep.inflight.Add(-1)
			f.rt.up.report(st, ep, true)
			if stream != nil {
				stream = stream.again()
			}
			continue
		}
		if unavailable && retries > 0 {
			f.flags = flagRetriesExceeded
		}
		f.rt.up.report(st, ep, resp.StatusCode >= 500 || grpcStatus == "14")
		if !f.rt.ingress {
			s.rt.observe(f.upstreamRT)
			s.countTarget(resp.StatusCode)
		}
		f.code = resp.StatusCode
		err = f.relay(resp, grpcStatus != "")
		resp.Body.Close()
		ep.inflight.Add(-1)
		if ep.removed.Load() && ep.inflight.Load() == 0 {
			ep.closeH2()
		}
		if err != nil {
			switch {
			case f.timedOut.Load():
				f.flags = flagTimeout
				f.rt.up.report(st, ep, true)
			case r.Context().Err() != nil:
				f.flags = flagDownstreamReset
			default:
				f.flags = flagUpstreamReset
				f.rt.up.report(st, ep, true)
			}
			// Reset the caller's stream: the response is cut short.
			panic(http.ErrAbortHandler)
		}
		return
	}
}

// relay writes the response: head, body (flushed as it comes, for
// streams) and trailers.
func (f *h2forward) relay(resp *http.Response, trailersOnly bool) error {
	h := f.w.Header()
	for k, vv := range resp.Header {
		switch k {
		case "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade":
			continue
		}
		h[k] = vv
	}
	f.w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(f.w)
	if !trailersOnly {
		// Send the head now: a stream may not send data for a while. A
		// trailers-only gRPC response must go out as one HEADERS frame
		// with END_STREAM, so it is not flushed early.
		rc.Flush()
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := f.w.Write(buf[:n]); werr != nil {
				return werr
			}
			f.sent += int64(n)
			if ferr := rc.Flush(); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	for k, vv := range resp.Trailer {
		h[http.TrailerPrefix+k] = vv
	}
	return nil
}

// local answers from the proxy: for gRPC as a trailers-only response with
// a gRPC status (UNAVAILABLE for 503, DEADLINE_EXCEEDED for 504), as
// Envoy does, so that gRPC clients see the reason.
func (f *h2forward) local(code int, flags string, grpc bool, msg string) {
	f.code, f.flags = code, flags
	f.rt.stats.countLocal(code)
	h := f.w.Header()
	h.Set("X-Wharf-Proxy", "local-reply")
	if grpc {
		gs := "14" // UNAVAILABLE
		if code == http.StatusGatewayTimeout {
			gs = "4" // DEADLINE_EXCEEDED
		}
		h.Set("Content-Type", "application/grpc")
		h.Set("Grpc-Status", gs)
		h.Set("Grpc-Message", url.PathEscape(msg))
		f.w.WriteHeader(http.StatusOK)
		f.code = http.StatusOK
		return
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(msg)+1))
	f.w.WriteHeader(code)
	io.WriteString(f.w, msg+"\n")
}

func (f *h2forward) finish() {
	s := f.rt.stats
	s.bytes.Add(f.received.Load() + f.sent)
	if f.rt.log == nil {
		return
	}
	r := f.r
	e := logEntry{
		start: f.start, method: []byte(r.Method), path: []byte(r.URL.RequestURI()), protocol: protoLabel(r),
		code: f.code, flags: f.flags, received: f.received.Load(), sent: f.sent, duration: time.Since(f.start),
		upstreamTime: f.upstreamRT, xff: []byte(r.Header.Get("X-Forwarded-For")), userAgent: []byte(r.UserAgent()),
		requestID: []byte(r.Header.Get("X-Request-Id")), authority: []byte(r.Host), upstreamHost: f.upstream,
	}
	f.rt.log.log(&e)
}

// notEstablished reports net/http's error for an HTTP/2 connection that
// failed before the server's SETTINGS arrived: no request went out on it.
// Over TLS 1.3 this is how a rejected client certificate shows (the alert
// comes after the client's side of the handshake). net/http exports no
// value for it, hence the text.
func notEstablished(err error) bool {
	return err != nil && strings.Contains(err.Error(), "http2: client conn could not be established")
}

// protoLabel spells the protocol as Envoy's access log does.
func protoLabel(r *http.Request) string {
	if r.ProtoMajor == 2 {
		return "HTTP/2"
	}
	return r.Proto
}

func isGRPCRequest(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	return len(ct) >= 16 && ct[:16] == "application/grpc"
}

// h2source is a streamed request body shared by the attempts of one
// request. With keep, it keeps what it read (up to maxReplayBody) so that a
// retry can send it again and read on from the caller. Reads from the
// caller never hold the lock, so sealing an attempt never waits for the
// caller: data an old attempt is still waiting for is kept for the next.
type h2source struct {
	mu       sync.Mutex
	cond     sync.Cond
	rc       io.ReadCloser
	keep     bool
	kept     []byte
	total    int64 // bytes read from the caller
	overflow bool  // more than maxReplayBody: cannot replay
	reading  bool  // a read from the caller is under way
	err      error // the caller's body's end (io.EOF) or failure
	onEOF    func()
	n        *atomic.Int64 // bytes read from the caller, for logs and metrics
}

// h2body is one attempt's view of the body.
type h2body struct {
	src    *h2source
	pos    int64
	sealed bool // under src.mu
}

var errBodySealed = errors.New("request body handed to another attempt")

func newH2Body(rc io.ReadCloser, keep bool, onEOF func(), n *atomic.Int64) *h2body {
	s := &h2source{rc: rc, keep: keep, onEOF: onEOF, n: n}
	s.cond.L = &s.mu
	return &h2body{src: s}
}

func (b *h2body) Read(p []byte) (int, error) {
	s := b.src
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if b.sealed {
			return 0, errBodySealed
		}
		if b.pos < s.total {
			// Behind: replay what an earlier attempt read.
			if b.pos >= int64(len(s.kept)) {
				return 0, errBodySealed // no longer kept (cannot happen: seal checks)
			}
			n := copy(p, s.kept[b.pos:])
			b.pos += int64(n)
			return n, nil
		}
		if s.err != nil {
			return 0, s.err
		}
		if !s.reading {
			break
		}
		s.cond.Wait()
	}
	s.reading = true
	s.mu.Unlock()
	n, err := s.rc.Read(p)
	s.mu.Lock()
	s.reading = false
	s.cond.Broadcast()
	if n > 0 {
		s.n.Add(int64(n))
		s.total += int64(n)
		if s.keep && !s.overflow {
			if len(s.kept)+n > maxReplayBody {
				s.overflow, s.kept = true, nil
			} else {
				s.kept = append(s.kept, p[:n]...)
			}
		}
	}
	if err != nil {
		s.err = err
		if err == io.EOF && s.onEOF != nil {
			s.onEOF()
		}
	}
	if b.sealed {
		return 0, errBodySealed // kept for the next attempt
	}
	b.pos += int64(n)
	if n > 0 {
		return n, nil
	}
	return 0, err
}

// Close does not close the caller's body: the server does.
func (b *h2body) Close() error { return nil }

// seal reports whether the request can be sent again: nothing was read
// from the caller, or (replay allowed) all that was read is kept. If so it
// stops the body for the attempt that had it; if not it changes nothing.
func (b *h2body) seal(replay bool) bool {
	s := b.src
	s.mu.Lock()
	defer s.mu.Unlock()
	ok := s.total == 0 && !s.reading || replay && s.keep && !s.overflow
	if ok {
		b.sealed = true
		s.cond.Broadcast()
	}
	return ok
}

// again returns the body for the next attempt.
func (b *h2body) again() *h2body { return &h2body{src: b.src} }

// transport returns the endpoint's HTTP/2 transport, made on first use.
func (e *endpoint) transport(st *upstreamState) *http.Transport {
	e.h2mu.Lock()
	defer e.h2mu.Unlock()
	if e.h2 != nil {
		return e.h2
	}
	var protos http.Protocols
	if st.tls != nil {
		protos.SetHTTP2(true)
	} else {
		protos.SetUnencryptedHTTP2(true)
	}
	e.h2 = &http.Transport{
		Protocols: &protos,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dial(ctx, st, e, time.Time{}, e.trackH2)
		},
		DialTLSContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dial(ctx, st, e, time.Time{}, e.trackH2)
		},
		DisableCompression:  true,
		IdleConnTimeout:     st.idle,
		MaxIdleConnsPerHost: 16,
		HTTP2:               &http.HTTP2Config{MaxConcurrentStreams: 1000},
	}
	return e.h2
}

func (e *endpoint) closeH2() {
	e.h2mu.Lock()
	tr := e.h2
	e.h2mu.Unlock()
	if tr != nil {
		tr.CloseIdleConnections()
	}
}

// h2conn is a connection of an endpoint's HTTP/2 transport, known to the
// endpoint so that Close can close it even when net/http still counts a
// stream on it.
type h2conn struct {
	net.Conn
	e    *endpoint
	once sync.Once
}

func (c *h2conn) Close() error {
	c.once.Do(func() {
		c.e.h2mu.Lock()
		delete(c.e.h2conns, c)
		c.e.h2mu.Unlock()
	})
	return c.Conn.Close()
}

func (e *endpoint) trackH2(c net.Conn) net.Conn {
	hc := &h2conn{Conn: c, e: e}
	e.h2mu.Lock()
	if e.h2conns == nil {
		e.h2conns = make(map[*h2conn]struct{})
	}
	e.h2conns[hc] = struct{}{}
	e.h2mu.Unlock()
	return hc
}

// closeAllH2 closes every HTTP/2 connection of the endpoint, busy or not.
func (e *endpoint) closeAllH2() {
	e.closeH2()
	e.h2mu.Lock()
	conns := make([]*h2conn, 0, len(e.h2conns))
	for c := range e.h2conns {
		conns = append(conns, c)
	}
	e.h2mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// handlerGroup counts HTTP/2 handlers in flight; once closed it admits no
// more, so Close can wait for the last one.
type handlerGroup struct {
	mu     sync.Mutex
	n      int
	closed bool
	zero   chan struct{}
}

func (g *handlerGroup) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.n++
	return true
}

func (g *handlerGroup) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	if g.n == 0 && g.zero != nil {
		close(g.zero)
		g.zero = nil
	}
}

// close admits no more handlers and returns a channel closed when none is
// left.
func (g *handlerGroup) close() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	ch := make(chan struct{})
	if g.n == 0 {
		close(ch)
	} else {
		g.zero = ch
	}
	return ch
}
