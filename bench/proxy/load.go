package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"
)

// conn is a minimal HTTP/1.1 keep-alive client connection: it sends one
// fixed GET and reads the response, so the load generator's own cost is
// small and the same for every path.
type conn struct {
	c  net.Conn
	br *bufio.Reader
}

var request = []byte("GET / HTTP/1.1\r\nHost: app\r\nUser-Agent: wharf-bench\r\n\r\n")

func dialConn(addr string) (*conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &conn{c: c, br: bufio.NewReaderSize(c, 4096)}, nil
}

// get sends the request and reads the whole response.
func (c *conn) get() error {
	if _, err := c.c.Write(request); err != nil {
		return err
	}
	length := -1
	status := 0
	for first := true; ; first = false {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if first {
			if len(line) < 12 {
				return fmt.Errorf("bad status line %q", line)
			}
			status, _ = strconv.Atoi(string(line[9:12]))
			continue
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		if i := bytes.IndexByte(line, ':'); i > 0 && bytes.EqualFold(line[:i], []byte("content-length")) {
			length, _ = strconv.Atoi(string(bytes.TrimSpace(line[i+1:])))
		}
	}
	if length < 0 {
		return errors.New("response without Content-Length")
	}
	if _, err := c.br.Discard(length); err != nil {
		return err
	}
	if status != 200 {
		return fmt.Errorf("status %d", status)
	}
	return nil
}

func (c *conn) close() { c.c.Close() }

// pool is a set of keep-alive connections to one address.
type pool struct {
	conns []*conn
}

func newPool(addr string, n int) (*pool, error) {
	p := &pool{}
	for range n {
		c, err := dialConn(addr)
		if err != nil {
			p.close()
			return nil, err
		}
		p.conns = append(p.conns, c)
	}
	return p, nil
}

func (p *pool) close() {
	for _, c := range p.conns {
		c.close()
	}
}

// warm sends n requests spread over the connections.
func (p *pool) warm(n int) error {
	for i := range n {
		if err := p.conns[i%len(p.conns)].get(); err != nil {
			return err
		}
	}
	return nil
}

// openLoop sends rate requests per second for d, on schedule whatever the
// answers' pace: each request's latency runs from when it was due (taken
// when the pacer released it) to the end of its response, so time spent
// waiting for a free connection counts (no coordinated omission).
// The first request is due after offset.
func (p *pool) openLoop(rate int, d, offset time.Duration) (lat []time.Duration, errs int) {
	n := int(float64(rate) * d.Seconds())
	jobs := make(chan time.Time, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	lat = make([]time.Duration, 0, n)
	for _, c := range p.conns {
		wg.Go(func() {
			local := make([]time.Duration, 0, n/len(p.conns)+16)
			bad := 0
			for due := range jobs {
				if err := c.get(); err != nil {
					bad++
					continue
				}
				local = append(local, time.Since(due))
			}
			mu.Lock()
			lat = append(lat, local...)
			errs += bad
			mu.Unlock()
		})
	}
	interval := time.Second / time.Duration(rate)
	start := time.Now().Add(offset)
	for i := range n {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		jobs <- time.Now()
	}
	close(jobs)
	wg.Wait()
	return lat, errs
}

// percentiles of a sample, nearest rank.
type percentiles struct {
	n                         int
	p50, p90, p99, p999, pmax time.Duration
}

func summarize(lat []time.Duration) percentiles {
	if len(lat) == 0 {
		return percentiles{}
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	at := func(q float64) time.Duration {
		i := int(q*float64(len(s)) + 0.5)
		if i < 1 {
			i = 1
		}
		if i > len(s) {
			i = len(s)
		}
		return s[i-1]
	}
	return percentiles{n: len(s), p50: at(0.50), p90: at(0.90), p99: at(0.99), p999: at(0.999), pmax: s[len(s)-1]}
}
