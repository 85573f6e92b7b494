package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// serveTCP connects the caller to an endpoint and copies bytes both ways
// until both sides are done or the connection is idle for the idle
// timeout. Connection failures are retried on other endpoints and count
// for outlier detection.
func (l *listener) serveTCP(t *tracked, c net.Conn, rt *route) {
	defer t.Close()
	defer c.Close()
	st := rt.up.state.Load()
	start := time.Now()
	e := logEntry{start: start, upstreamTime: -1}
	defer func() {
		if rt.log != nil {
			e.duration = time.Since(start)
			rt.log.log(&e)
		}
	}()
	var tr tried
	var uc net.Conn
	var ep *endpoint
	for retries := 0; ; retries++ {
		ep = rt.up.pick(st, &tr, mono())
		if ep == nil {
			e.flags = flagNoHealthy
			l.p.log.Debug("no healthy endpoint", "listener", l.addr, "upstream", rt.up.name)
			return
		}
		tr.add(ep)
		if retries > 0 {
			rt.stats.retries.Add(1)
		}
		var err error
		uc, err = dial(l.p.ctx, st, ep, time.Time{}, nil)
		if err == nil {
			rt.up.report(st, ep, false)
			break
		}
		rt.up.report(st, ep, true)
		var de *dialError
		if errors.As(err, &de) && de.tls {
			rt.stats.tlsErrors.Add(1)
		}
		if retries >= st.retries {
			e.flags, e.upstreamHost = flagConnectFailure, ep.addr
			l.p.log.Debug("connecting to an endpoint failed", "listener", l.addr, "upstream", rt.up.name, "endpoint", ep.addr, "error", err)
			return
		}
	}
	e.upstreamHost = ep.addr
	ep.inflight.Add(1)
	defer ep.inflight.Add(-1)
	t.peer.Store(&upConn{c: uc, ep: ep})
	if t.closed.Load() {
		uc.Close()
		return
	}
	in, out, flags := pipe(c, uc, st.idle, rt.stats)
	uc.Close()
	e.received, e.sent, e.flags = in, out, flags
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

var errIdle = errors.New("idle timeout")

// pipe copies bytes between a and b both ways until both directions end
// (an end of stream is passed on as a half close) or one fails, or nothing
// moved either way for idle. It returns the bytes read from a and from b.
// The read deadline is set once per idle period and moved on when it
// passes early, rather than at every read.
func pipe(a, b net.Conn, idle time.Duration, s *stats) (fromA, fromB int64, flags string) {
	var lastA, lastB atomic.Int64
	now := mono()
	lastA.Store(now)
	lastB.Store(now)
	if idle > 0 {
		d := time.Now().Add(idle)
		a.SetReadDeadline(d)
		b.SetReadDeadline(d)
	} else {
		a.SetReadDeadline(time.Time{})
		b.SetReadDeadline(time.Time{})
	}
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := copyDir(b, a, &lastA, &lastB, idle, s)
		done <- result{n, err}
	}()
	nb, errB := copyDir(a, b, &lastB, &lastA, idle, s)
	if errB != nil {
		a.Close()
		b.Close()
	}
	ra := <-done
	fromA, fromB = ra.n, nb
	if isTLSAlert(errB) {
		s.tlsErrors.Add(1)
	}
	switch {
	case errors.Is(ra.err, errIdle) || errors.Is(errB, errIdle):
		flags = flagIdleTimeout
	case ra.err != nil:
		flags = flagDownstreamReset
	case errB != nil:
		flags = flagUpstreamReset
	}
	return fromA, fromB, flags
}

type closeWriter interface{ CloseWrite() error }

// copyDir copies src to dst; at src's end of stream it half-closes dst.
// On any other error it closes both, so the other direction ends too.
func copyDir(dst, src net.Conn, mine, other *atomic.Int64, idle time.Duration, s *stats) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var total int64
	for {
		n, err := src.Read(buf)
		if n > 0 {
			mine.Store(mono())
			s.bytes.Add(int64(n))
			total += int64(n)
			if _, werr := dst.Write(buf[:n]); werr != nil {
				src.Close()
				dst.Close()
				return total, werr
			}
		}
		if err == nil {
			continue
		}
		if errors.Is(err, io.EOF) {
			if cw, ok := dst.(closeWriter); ok {
				cw.CloseWrite()
			} else if t, ok := dst.(*tracked); ok {
				if cw, ok := t.Conn.(closeWriter); ok {
					cw.CloseWrite()
				}
			}
			return total, nil
		}
		if idle > 0 && isTimeout(err) {
			last := max(mine.Load(), other.Load())
			if left := int64(idle) - (mono() - last); left > 0 {
				src.SetReadDeadline(time.Now().Add(time.Duration(left)))
				continue
			}
			err = fmt.Errorf("%w: nothing moved for %s", errIdle, idle)
		}
		src.Close()
		dst.Close()
		return total, err
	}
}
