package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"time"
)

// h1conn is one caller connection speaking HTTP/1.1, with the buffers it
// reuses from request to request. The connection's goroutine does all the
// work: read a request head, pick an endpoint, write the head (and body)
// to a pooled endpoint connection, read the response head, write it and
// copy the body, and loop.
type h1conn struct {
	l    *listener
	t    *tracked
	c    net.Conn
	r    connReader
	w    *bufio.Writer
	head []byte // the current request head
	out  []byte // scratch: rewritten heads, request bytes to send
	body []byte // the current request body, when kept for retries
	req  request
	resp response
	x    exchange // the current request's progress

	lastActive int64 // mono time of the last request, for the idle timeout
	deadlineAt int64 // mono time of the read deadline set on c, 0: none
}

var h1conns = sync.Pool{New: func() any {
	return &h1conn{head: make([]byte, 0, 1024), out: make([]byte, 0, 4096)}
}}

const (
	readBufSize  = 4096
	writeBufSize = 4096
)

func (l *listener) serveHTTP1(t *tracked, c net.Conn) {
	hc := h1conns.Get().(*h1conn)
	hc.l, hc.t, hc.c = l, t, c
	hc.r.reset(c, readBufSize)
	if hc.w == nil {
		hc.w = bufio.NewWriterSize(c, writeBufSize)
	} else {
		hc.w.Reset(c)
	}
	hc.lastActive, hc.deadlineAt = mono(), 0
	defer func() {
		c.Close()
		t.Close()
		hc.l, hc.t, hc.c = nil, nil, nil
		hc.x = exchange{}
		hc.r.rd = nil
		hc.w.Reset(nil)
		if cap(hc.r.buf) > readBufSize {
			hc.r.buf = nil
		}
		if cap(hc.body) > maxReplayBody {
			hc.body = nil
		}
		h1conns.Put(hc)
	}()
	for {
		rt := l.route.Load()
		if rt.protocol != ProtocolHTTP {
			return // the listener changed protocol: the caller reconnects
		}
		st := rt.up.state.Load()
		if !t.setIdle() || l.draining.Load() && hc.r.buffered() == 0 {
			return
		}
		head, err := hc.readHead(st.idle)
		if err != nil {
			if errors.Is(err, errHeadTooLarge) && t.setActive() {
				hc.localReply(rt, st, nil, 431, flagBadRequest, "request head larger than 64 KiB")
			}
			return
		}
		if !t.setActive() {
			return
		}
		// The route as of this request's arrival.
		if rt = l.route.Load(); rt.protocol != ProtocolHTTP {
			return
		}
		st = rt.up.state.Load()
		hc.head = append(hc.head[:0], head...)
		hc.r.discard(len(head))
		if err := parseRequest(hc.head, &hc.req); err != nil {
			hc.req.close = true
			hc.localReply(rt, st, nil, 400, flagBadRequest, "malformed request")
			return
		}
		if !hc.serve(rt, st) {
			return
		}
		hc.lastActive = hc.x.end
	}
}

// readHead reads the next request head under the idle timeout. The read
// deadline is set at most once per idle period: when it passes early
// (requests came in the meantime) it is moved on from the last request.
func (hc *h1conn) readHead(idle time.Duration) ([]byte, error) {
	if idle <= 0 {
		if hc.deadlineAt != 0 {
			hc.c.SetReadDeadline(time.Time{})
			hc.deadlineAt = 0
		}
	} else if hc.deadlineAt == 0 {
		hc.armIdle(idle)
	}
	for {
		if hc.r.buffered() == 0 {
			runtime.Gosched()
		}
		head, err := hc.r.readHead(maxHeadBytes)
		if err == nil || idle <= 0 || !isTimeout(err) || hc.t.state.Load() == connClosing {
			return head, err
		}
		if mono()-hc.lastActive >= int64(idle) {
			return nil, err
		}
		hc.armIdle(idle)
	}
}

func (hc *h1conn) armIdle(idle time.Duration) {
	at := hc.lastActive + int64(idle)
	hc.c.SetReadDeadline(time.Now().Add(time.Duration(at - mono())))
	hc.deadlineAt = at
}

// setReadDeadline sets an explicit read deadline on the caller (while a
// request body streams); the idle logic re-arms afterwards.
func (hc *h1conn) setReadDeadline(d time.Duration) {
	if d > 0 {
		hc.c.SetReadDeadline(time.Now().Add(d))
	} else {
		hc.c.SetReadDeadline(time.Time{})
	}
	hc.deadlineAt = 0
}

func idempotent(method []byte) bool {
	switch string(method) {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// exchange is one request's progress, shared by its attempts. Times are
// mono times (one clock read each), except start, the wall clock for the
// access log.
type exchange struct {
	rt         *route
	st         *upstreamState
	start      time.Time // only with an access log
	begin      int64     // the head arrived
	end        int64     // the response head arrived, or the answer was made
	deadline   int64     // 0: no per-request timeout
	stream     bool      // the body is streamed, not kept
	idem       bool      // may be sent again after it reached an endpoint
	received   int64     // request body bytes
	sent       int64     // response body bytes
	headIn     int64
	headOut    int64
	code       int
	flags      string
	upstream   string
	upstreamRT time.Duration
	bodyDone   chan error // streamed body copy, nil when none
}

// attempt results
const (
	attemptDone  = iota // answered (or failed past answering): stop
	attemptRetry        // failed in a way that may be retried elsewhere
)

// serve handles one request; it returns whether the connection stays open.
func (hc *h1conn) serve(rt *route, st *upstreamState) bool {
	req := &hc.req
	hc.x = exchange{rt: rt, st: st, begin: mono(), upstreamRT: -1, headIn: int64(len(hc.head))}
	x := &hc.x
	if rt.log != nil {
		x.start = time.Now()
	}
	rt.stats.requests.Add(1)
	hc.body = hc.body[:0]
	switch {
	case req.chunked || req.contentLength > maxReplayBody || req.expect && req.contentLength > 0:
		x.stream = true
	case req.contentLength > 0:
		if err := hc.readBody(req.contentLength, st.idle); err != nil {
			return false
		}
		x.received = req.contentLength
	}
	if st.perRequest > 0 && !x.stream {
		x.deadline = x.begin + int64(st.perRequest)
	}
	x.idem = idempotent(req.method) || req.idempotencyKey || st.retryNonIdem
	keep := hc.forward(x)
	if x.bodyDone != nil {
		keep = hc.finishBody(x) && keep
	}
	if x.end == 0 {
		x.end = mono()
	}
	rt.stats.bytes.Add(x.headIn + x.received + x.headOut + x.sent)
	if rt.log != nil {
		d := time.Since(x.start)
		e := logEntry{
			start: x.start, method: req.method, path: req.target, protocol: protoName(req.minor),
			code: x.code, flags: x.flags, received: x.received, sent: x.sent, duration: d,
			upstreamTime: x.upstreamRT, xff: req.xff, userAgent: req.ua, requestID: req.requestID,
			authority: req.host, upstreamHost: x.upstream,
		}
		rt.log.log(&e)
	}
	return keep
}

func protoName(minor byte) string {
	if minor == 0 {
		return "HTTP/1.0"
	}
	return "HTTP/1.1"
}

// readBody keeps a request body of n bytes in hc.body.
func (hc *h1conn) readBody(n int64, idle time.Duration) error {
	for int64(len(hc.body)) < n {
		if hc.r.buffered() == 0 {
			if hc.deadlineAt != 0 || idle > 0 {
				hc.setReadDeadline(idle)
			}
			if err := hc.r.fill(); err != nil {
				return err
			}
		}
		m := min(int64(hc.r.buffered()), n-int64(len(hc.body)))
		hc.body = append(hc.body, hc.r.buf[hc.r.r:hc.r.r+int(m)]...)
		hc.r.discard(int(m))
	}
	return nil
}

// forward sends the request to endpoints until one answers or retries run
// out.
func (hc *h1conn) forward(x *exchange) bool {
	var t tried
	now := x.begin
	for retries := 0; ; retries++ {
		if retries > 0 {
			now = mono()
		}
		ep := x.rt.up.pick(x.st, &t, now)
		if ep == nil {
			return hc.localReply(x.rt, x.st, x, 503, flagNoHealthy,
				noEndpointMessage(x.rt.up.name))
		}
		t.add(ep)
		if retries > 0 {
			x.rt.stats.retries.Add(1)
		}
		canRetry := retries < x.st.retries && (x.deadline == 0 || now < x.deadline)
		res, keep := hc.attempt(x, ep, canRetry)
		if res == attemptDone {
			if retries > 0 && x.flags == "" && x.code >= 500 {
				x.flags = flagRetriesExceeded
			}
			return keep
		}
	}
}

// attempt sends the request to ep and relays the answer. A failure that
// may be retried returns attemptRetry, but only when canRetry; otherwise
// the caller gets the final answer here.
func (hc *h1conn) attempt(x *exchange, ep *endpoint, canRetry bool) (int, bool) {
	st := x.st
	ep.inflight.Add(1)
	defer ep.inflight.Add(-1)

	fresh := false // dial instead of reusing: after a stale pooled connection
	for {
		uc, err := hc.connect(x, ep, fresh)
		if err != nil {
			x.rt.up.report(st, ep, true)
			var de *dialError
			if errors.As(err, &de) && de.tls {
				x.rt.stats.tlsErrors.Add(1)
			}
			if canRetry {
				return attemptRetry, false
			}
			x.upstream = ep.addr
			return attemptDone, hc.localReply(x.rt, st, x, 503, flagConnectFailure,
				fmt.Sprintf("upstream %q: connecting to %s failed: %v", x.rt.up.name, ep.addr, err))
		}
		hc.t.peer.Store(uc)
		if hc.t.closed.Load() {
			// The caller's connection was closed under us (a forced
			// drain or Close): start nothing more.
			uc.c.Close()
			hc.t.peer.Store(nil)
			x.flags = flagDownstreamReset
			return attemptDone, false
		}
		res, keep, stale := hc.exchangeOn(x, ep, uc, canRetry)
		hc.t.peer.Store(nil)
		if stale && !fresh {
			// The pooled connection had been closed by the endpoint before
			// the request reached it: send it again on a new connection,
			// without counting a retry.
			fresh = true
			continue
		}
		return res, keep
	}
}

// connect returns a pooled connection to ep or dials one.
func (hc *h1conn) connect(x *exchange, ep *endpoint, fresh bool) (*upConn, error) {
	if !fresh {
		for {
			uc := ep.pool.get(x.st.idle, x.begin)
			if uc == nil {
				break
			}
			// A request that cannot be sent twice must not go out on a
			// connection the endpoint may have closed meanwhile.
			if x.idem || alive(uc.c) {
				return uc, nil
			}
			uc.c.Close()
		}
	}
	var deadline time.Time
	if x.deadline != 0 {
		deadline = time.Now().Add(time.Duration(x.deadline - mono()))
	}
	c, err := dial(hc.l.p.ctx, x.st, ep, deadline, nil)
	if err != nil {
		return nil, err
	}
	return newUpConn(c, ep), nil
}

// exchangeOn runs the request on one endpoint connection. stale reports a
// pooled connection found closed before anything reached the endpoint.
func (hc *h1conn) exchangeOn(x *exchange, ep *endpoint, uc *upConn, canRetry bool) (res int, keep, stale bool) {
	req := &hc.req
	st := x.st
	up := x.rt.up
	x.upstream = ep.addr
	uc.r.setDeadline(x.deadline)

	out := hc.out[:0]
	if req.hop {
		out = rewriteHead(out, hc.head, req.connection[:req.nconn], req.upgrade, "")
	} else {
		out = append(out, hc.head...)
	}
	out = append(out, hc.body...)
	hc.out = out
	sentAt := mono()
	n, err := uc.c.Write(out)
	if err != nil {
		uc.c.Close()
		if n == 0 && uc.reused {
			return attemptRetry, false, true
		}
		up.report(st, ep, true)
		if canRetry && x.idem && !x.stream {
			return attemptRetry, false, false
		}
		return attemptDone, hc.localReply(x.rt, st, x, 503, flagUpstreamReset,
			fmt.Sprintf("upstream %q: sending to %s failed: %v", up.name, ep.addr, err)), false
	}
	if x.stream {
		x.bodyDone = make(chan error, 1)
		go hc.streamBody(x, uc)
	}

	// Response head, after any interim (1xx) responses.
	var head []byte
	for {
		if uc.r.buffered() == 0 {
			runtime.Gosched()
		}
		head, err = uc.r.readHead(maxHeadBytes)
		if err != nil {
			uc.c.Close()
			if x.bodyDone != nil {
				var berr error
				select {
				case berr = <-x.bodyDone:
				default:
					// Unblock the copy; the caller's connection will not
					// carry another request.
					hc.c.SetReadDeadline(time.Unix(1, 0))
					<-x.bodyDone
				}
				x.bodyDone = nil
				if berr != nil && isDownstream(berr) {
					x.flags = flagDownstreamReset
					x.code = 0
					return attemptDone, false, false
				}
			}
			if isTLSAlert(err) {
				// The endpoint refused the handshake (TLS 1.3 reports a
				// rejected client certificate after the client's side of
				// the handshake): nothing was processed.
				x.rt.stats.tlsErrors.Add(1)
				up.report(st, ep, true)
				if canRetry && !x.stream {
					return attemptRetry, false, false
				}
				return attemptDone, hc.localReply(x.rt, st, x, 503, flagConnectFailure,
					fmt.Sprintf("upstream %q: TLS with %s failed: %v", up.name, ep.addr, err)), false
			}
			if isTimeout(err) {
				up.report(st, ep, true)
				return attemptDone, hc.localReply(x.rt, st, x, 504, flagTimeout,
					fmt.Sprintf("upstream %q: %s did not answer within the per-request timeout of %s", up.name, ep.addr, st.perRequest)), false
			}
			if uc.reused && x.idem && !x.stream && uc.r.buffered() == 0 {
				return attemptRetry, false, true
			}
			up.report(st, ep, true)
			if canRetry && x.idem && !x.stream {
				return attemptRetry, false, false
			}
			return attemptDone, hc.localReply(x.rt, st, x, 503, flagUpstreamReset,
				fmt.Sprintf("upstream %q: %s closed the connection before answering: %v", up.name, ep.addr, err)), false
		}
		if err := parseResponse(head, &hc.resp); err != nil {
			uc.c.Close()
			up.report(st, ep, true)
			return attemptDone, hc.localReply(x.rt, st, x, 502, flagUpstreamProto,
				fmt.Sprintf("upstream %q: %s sent a malformed response", up.name, ep.addr)), false
		}
		uc.r.discard(len(head))
		if s := hc.resp.status; s >= 100 && s < 200 && s != 101 {
			// Interim response: relay it and read on.
			x.headOut += int64(len(head))
			if req.minor > 0 {
				hc.w.Write(head)
				if err := hc.w.Flush(); err != nil {
					uc.c.Close()
					x.flags = flagDownstreamReset
					return attemptDone, false, false
				}
			}
			continue
		}
		break
	}
	resp := &hc.resp
	x.end = mono()
	x.upstreamRT = time.Duration(x.end - sentAt)
	if resp.status == 503 && canRetry && x.idem && !x.stream {
		uc.c.Close()
		up.report(st, ep, true)
		return attemptRetry, false, false
	}
	up.report(st, ep, resp.status >= 500)
	if !x.rt.ingress {
		x.rt.stats.rt.observe(x.upstreamRT)
		x.rt.stats.countTarget(resp.status)
	}
	x.code = resp.status
	return attemptDone, hc.relay(x, ep, uc, head), false
}

// relay writes the response head and copies the body to the caller, then
// returns the endpoint connection to the pool when it can be reused.
func (hc *h1conn) relay(x *exchange, ep *endpoint, uc *upConn, head []byte) bool {
	req, resp := &hc.req, &hc.resp
	keep := !req.close && !hc.l.draining.Load()
	const (
		bodyNone = iota
		bodyLength
		bodyChunked
		bodyUntilEOF
	)
	mode := bodyLength
	strip := false
	switch {
	case resp.status == 101 && req.upgrade:
		return hc.tunnel(x, uc, head)
	case bodyless(req.method, resp.status):
		mode = bodyNone
	case resp.chunked:
		mode = bodyChunked
		if req.minor == 0 {
			strip, keep = true, false
		}
	case resp.otherTE || resp.contentLength < 0:
		mode = bodyUntilEOF
		keep = false
	}
	if x.bodyDone != nil {
		// A streamed body must have been read whole before the
		// connection can carry another request.
		select {
		case err := <-x.bodyDone:
			x.bodyDone = nil
			if err != nil {
				keep = false
			}
		default:
			keep = false
		}
	}
	if resp.hop || !keep || req.minor == 0 || strip {
		extra := ""
		switch {
		case !keep:
			extra = "Connection: close\r\n"
		case req.minor == 0:
			extra = "Connection: keep-alive\r\n"
		}
		out := rewriteHead(hc.out[:0], head, resp.connection[:resp.nconn], false, extra)
		if strip {
			out = dropHeader(out, "transfer-encoding")
		}
		hc.out = out
		hc.w.Write(out)
		x.headOut += int64(len(out))
	} else {
		hc.w.Write(head)
		x.headOut += int64(len(head))
	}
	var n int64
	var err error
	switch mode {
	case bodyLength:
		n, err = copyN(hc.w, &uc.r, resp.contentLength)
	case bodyChunked:
		n, err = copyChunked(hc.w, &uc.r, strip)
	case bodyUntilEOF:
		n, err = copyUntilEOF(hc.w, &uc.r)
	}
	x.sent = n
	if err == nil {
		if ferr := hc.w.Flush(); ferr != nil {
			err = downstreamError{ferr}
		}
	}
	if err != nil {
		uc.c.Close()
		switch {
		case isDownstream(err):
			x.flags = flagDownstreamReset
		case isTimeout(err):
			x.flags = flagTimeout
			x.rt.up.report(x.st, ep, true)
		default:
			x.flags = flagUpstreamReset
			x.rt.up.report(x.st, ep, true)
		}
		return false
	}
	if mode == bodyUntilEOF || resp.close || x.bodyDone != nil {
		uc.c.Close()
	} else {
		ep.pool.put(uc, x.end)
	}
	return keep
}

// streamBody copies a request body that is not kept (chunked, large or
// awaiting 100-continue) to the endpoint while the response is awaited;
// the per-request timeout starts when it is done, as in Envoy.
func (hc *h1conn) streamBody(x *exchange, uc *upConn) {
	hc.setReadDeadline(x.st.idle)
	w := bufio.NewWriterSize(uc.c, writeBufSize)
	var n int64
	var err error
	if hc.req.chunked {
		n, err = copyChunked(w, &hc.r, false)
	} else {
		n, err = copyN(w, &hc.r, hc.req.contentLength)
	}
	if err == nil {
		err = w.Flush()
	} else if de, ok := err.(downstreamError); ok {
		// copy* call a failed write a downstream error; here the writer is
		// the endpoint.
		err = de.err
	} else {
		// Reading from the caller failed.
		err = downstreamError{err}
	}
	x.received = n
	if err != nil {
		uc.c.Close()
	} else if x.st.perRequest > 0 {
		uc.r.setDeadline(mono() + int64(x.st.perRequest))
	}
	x.bodyDone <- err
}

// finishBody waits for a streamed body copy still running after the
// response: the endpoint answered without reading the whole body, so the
// rest cannot be read and the caller's connection is closed.
func (hc *h1conn) finishBody(x *exchange) bool {
	select {
	case <-x.bodyDone:
		x.bodyDone = nil
		return true
	default:
	}
	hc.c.SetReadDeadline(time.Unix(1, 0))
	<-x.bodyDone
	x.bodyDone = nil
	return false
}

func isDownstream(err error) bool {
	var de downstreamError
	return errors.As(err, &de)
}

// tunnel relays a protocol switch (101, e.g. WebSocket) as bytes.
func (hc *h1conn) tunnel(x *exchange, uc *upConn, head []byte) bool {
	hc.w.Write(head)
	x.headOut += int64(len(head))
	if err := hc.w.Flush(); err != nil {
		uc.c.Close()
		return false
	}
	if hc.r.buffered() > 0 {
		uc.c.Write(hc.r.bytes())
	}
	if uc.r.buffered() > 0 {
		hc.c.Write(uc.r.bytes())
	}
	hc.t.peer.Store(uc)
	in, out, _ := pipe(hc.c, uc.c, x.st.idle, x.rt.stats)
	x.received += in
	x.sent += out
	uc.c.Close()
	return false
}

// localReply answers the request from the proxy itself; it returns whether
// the connection stays open.
func (hc *h1conn) localReply(rt *route, st *upstreamState, x *exchange, code int, flags, msg string) bool {
	keep := !hc.req.close && !hc.l.draining.Load() && (x == nil || !x.stream)
	rt.stats.countLocal(code)
	if x != nil {
		x.code, x.flags = code, flags
	}
	out := hc.out[:0]
	out = append(out, "HTTP/1.1 "...)
	out = strconv.AppendInt(out, int64(code), 10)
	out = append(out, ' ')
	out = append(out, http.StatusText(code)...)
	out = append(out, "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	out = strconv.AppendInt(out, int64(len(msg)+1), 10)
	out = append(out, "\r\nX-Wharf-Proxy: local-reply\r\n"...)
	if !keep {
		out = append(out, "Connection: close\r\n"...)
	}
	out = append(out, "\r\n"...)
	out = append(out, msg...)
	out = append(out, '\n')
	hc.out = out
	if x != nil {
		x.headOut += int64(len(out))
	}
	hc.w.Write(out)
	if err := hc.w.Flush(); err != nil {
		return false
	}
	return keep
}

// dropHeader removes a header from a head built by rewriteHead.
func dropHeader(head []byte, name string) []byte {
	out := head[:0:0]
	rest := head
	first := true
	for len(rest) > 0 {
		line, r := nextLine(rest)
		rest = r
		if !first {
			if i := indexColon(line); i > 0 && equalFold(line[:i], name) {
				continue
			}
		}
		first = false
		out = append(out, line...)
		out = append(out, '\r', '\n')
	}
	return out
}

func indexColon(line []byte) int {
	for i, c := range line {
		if c == ':' {
			return i
		}
	}
	return -1
}
