package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testLogger logs through t, at debug level when -v.
func testLogger(t *testing.T) *slog.Logger {
	level := slog.LevelWarn
	if testing.Verbose() {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: level}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// startProxy applies cfg to a new proxy that is closed, and checked for
// leaked goroutines, when the test ends.
func startProxy(t *testing.T, cfg Config) *Proxy {
	t.Helper()
	p := New(testLogger(t))
	if err := p.Apply(cfg); err != nil {
		p.Close()
		t.Fatalf("Apply: %v", err)
	}
	t.Cleanup(func() {
		p.Close()
		checkNoLeaks(t)
	})
	return p
}

// checkNoLeaks waits until no goroutine runs the proxy's code.
func checkNoLeaks(t *testing.T) {
	t.Helper()
	var last string
	ok := eventually(5*time.Second, func() bool {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		last = ""
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "checkNoLeaks") {
				continue
			}
			for _, line := range strings.Split(g, "\n") {
				if strings.Contains(line, "/internal/proxy/") && !strings.Contains(line, "_test.go") && strings.Contains(line, ".go:") {
					last += g + "\n\n"
					break
				}
			}
		}
		return last == ""
	})
	if !ok {
		t.Errorf("goroutines of the proxy still running after Close:\n%s", last)
	}
}

// eventually polls cond until it holds or d passes.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitFor fails the test when cond does not hold within 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !eventually(5*time.Second, cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// addr returns the address the proxy bound for a configured address.
func addr(t *testing.T, p *Proxy, configured string) string {
	t.Helper()
	a := p.Addr(configured)
	if a == nil {
		t.Fatalf("no listener %s", configured)
	}
	return a.String()
}

// backend is an in-process HTTP server on loopback that counts requests.
type backend struct {
	name   string
	srv    *httptest.Server
	hits   atomic.Int64
	h      http.Handler
	addr   string
	mu     sync.Mutex
	protos []string
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.hits.Add(1)
	b.mu.Lock()
	b.protos = append(b.protos, r.Proto)
	b.mu.Unlock()
	w.Header().Set("X-Backend", b.name)
	if b.h != nil {
		b.h.ServeHTTP(w, r)
		return
	}
	io.Copy(io.Discard, r.Body)
	fmt.Fprintf(w, "%s\n", b.name)
}

// newBackend starts a backend speaking HTTP/1.1, or h2c too with h2c.
func newBackend(t *testing.T, name string, h2c bool, h http.Handler) *backend {
	t.Helper()
	b := &backend{name: name, h: h}
	b.srv = httptest.NewUnstartedServer(b)
	if h2c {
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		b.srv.Config.Protocols = &p
	}
	b.srv.Start()
	b.addr = b.srv.Listener.Addr().String()
	t.Cleanup(b.srv.Close)
	return b
}

func endpoints(bs ...*backend) []Endpoint {
	var eps []Endpoint
	for _, b := range bs {
		eps = append(eps, Endpoint{Address: b.addr})
	}
	return eps
}

// client returns an HTTP client for protocol: HTTP/1.1 with keep-alive, or
// h2c with prior knowledge.
func client(t *testing.T, protocol string) *http.Client {
	t.Helper()
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64}
	if isHTTP2(protocol) {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		tr.Protocols = &p
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// get sends a GET and returns status and body.
func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	return do(t, c, http.MethodGet, url, "")
}

func do(t *testing.T, c *http.Client, method, url, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp.StatusCode, string(b)
}

func ptr[T any](v T) *T { return &v }

// rawRequest sends raw bytes on a new connection and returns what comes
// back until the connection closes or d passes.
func rawRequest(t *testing.T, address, raw string, d time.Duration) string {
	t.Helper()
	c, err := net.Dial("tcp", address)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(d))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(bufio.NewReader(c))
	return string(b)
}

// ctxTimeout is a context for the test's own waits.
func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// scrape returns the proxy's metrics text.
func scrape(t *testing.T, p *Proxy) string {
	t.Helper()
	rec := httptest.NewRecorder()
	p.Metrics().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}
