package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestApplySwapsEndpointsUnderLoad changes the endpoint set again and again
// while requests flow: none fails, in flight or new.
func TestApplySwapsEndpointsUnderLoad(t *testing.T) {
	for _, protocol := range []string{ProtocolHTTP, ProtocolHTTP2} {
		t.Run(protocol, func(t *testing.T) {
			bs := []*backend{newBackend(t, "a", true, nil), newBackend(t, "b", true, nil), newBackend(t, "c", true, nil)}
			cfg := Config{
				Listeners: []Listener{{Address: "127.0.0.1:0", Upstream: "svc"}},
				Upstreams: []Upstream{{Name: "svc", Protocol: protocol, Endpoints: endpoints(bs[0], bs[1])}},
			}
			p := startProxy(t, cfg)
			url := "http://" + addr(t, p, "127.0.0.1:0") + "/"
			c := client(t, protocol)

			const workers, perWorker = 4, 300
			var done, failed atomic.Int64
			var firstErr atomic.Value
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for range perWorker {
						resp, err := c.Get(url)
						if err == nil {
							io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
							if resp.StatusCode != 200 {
								err = errors.New(resp.Status)
							}
						}
						if err != nil {
							failed.Add(1)
							firstErr.CompareAndSwap(nil, err)
						}
						done.Add(1)
					}
				})
			}
			applies := 0
			for i := 0; done.Load() < workers*perWorker; i++ {
				// Wait for some requests under this endpoint set, then
				// rotate: {a,b} -> {b,c} -> {c,a} -> ...
				mark := done.Load()
				for done.Load() < min(mark+25, workers*perWorker) {
					time.Sleep(100 * time.Microsecond)
				}
				cfg.Upstreams[0].Endpoints = endpoints(bs[(i+1)%3], bs[(i+2)%3])
				if err := p.Apply(cfg); err != nil {
					t.Fatal(err)
				}
				applies++
			}
			wg.Wait()
			if n := failed.Load(); n > 0 {
				t.Fatalf("%d of %d requests failed across %d applies; first: %v", n, workers*perWorker, applies, firstErr.Load())
			}
			for _, b := range bs {
				if b.hits.Load() == 0 {
					t.Errorf("backend %s got nothing", b.name)
				}
			}
			t.Logf("%d requests, %d applies, spread a=%d b=%d c=%d", workers*perWorker, applies, bs[0].hits.Load(), bs[1].hits.Load(), bs[2].hits.Load())
		})
	}
}

// TestApplyKeepsTCPConnections: an open TCP connection outlives an Apply
// that keeps its endpoint (and one that changes other settings).
func TestApplyKeepsTCPConnections(t *testing.T) {
	echo := echoTCP(t)
	other := echoTCP(t)
	cfg := Config{
		Listeners: []Listener{{Address: "127.0.0.1:0", Upstream: "db"}},
		Upstreams: []Upstream{{Name: "db", Protocol: ProtocolTCP, Endpoints: []Endpoint{{Address: echo}}}},
	}
	p := startProxy(t, cfg)
	c, err := net.Dial("tcp", addr(t, p, "127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	roundTrip := func(msg string) {
		t.Helper()
		io.WriteString(c, msg+"\n")
		if line, err := br.ReadString('\n'); err != nil || line != msg+"\n" {
			t.Fatalf("echo of %q: %q, %v", msg, line, err)
		}
	}
	roundTrip("one")
	cfg.Upstreams[0].Endpoints = []Endpoint{{Address: echo}, {Address: other}}
	cfg.Upstreams[0].Retries = ptr(1)
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	roundTrip("two")
}

// TestApplyRemovesListener: a removed listener stops accepting at once and
// the request it is serving completes.
func TestApplyRemovesListener(t *testing.T) {
	for _, protocol := range []string{ProtocolHTTP, ProtocolHTTP2} {
		t.Run(protocol, func(t *testing.T) {
			release := make(chan struct{})
			slow := newBackend(t, "slow", true, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				<-release
				w.Write([]byte("finished\n"))
			}))
			cfg := Config{
				Listeners: []Listener{{Address: "127.0.0.1:0", Upstream: "svc"}, {Address: "127.0.0.2:0", Upstream: "svc"}},
				Upstreams: []Upstream{{Name: "svc", Protocol: protocol, Endpoints: endpoints(slow)}},
			}
			p := startProxy(t, cfg)
			gone := addr(t, p, "127.0.0.1:0")
			type result struct {
				code int
				body string
				err  error
			}
			res := make(chan result, 1)
			go func() {
				resp, err := client(t, protocol).Get("http://" + gone + "/")
				if err != nil {
					res <- result{err: err}
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				res <- result{resp.StatusCode, string(b), err}
			}()
			waitFor(t, "the request to reach the backend", func() bool { return slow.hits.Load() == 1 })

			cfg.Listeners = cfg.Listeners[1:]
			if err := p.Apply(cfg); err != nil {
				t.Fatal(err)
			}
			if c, err := net.Dial("tcp", gone); err == nil {
				c.Close()
				t.Errorf("the removed listener still accepts connections")
			}
			close(release)
			r := <-res
			if r.err != nil || r.code != 200 || r.body != "finished\n" {
				t.Errorf("in-flight request: %d %q %v, want 200 finished", r.code, r.body, r.err)
			}
		})
	}
}

// TestApplyIsAtomic: a config that cannot be applied changes nothing.
func TestApplyIsAtomic(t *testing.T) {
	b := newBackend(t, "b", false, nil)
	cfg := Config{
		Listeners: []Listener{{Address: "127.0.0.1:0", Upstream: "svc"}},
		Upstreams: []Upstream{{Name: "svc", Protocol: ProtocolHTTP, Endpoints: endpoints(b)}},
	}
	p := startProxy(t, cfg)
	url := "http://" + addr(t, p, "127.0.0.1:0") + "/"
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	bad := cfg
	bad.Listeners = append([]Listener{}, cfg.Listeners...)
	bad.Listeners = append(bad.Listeners, Listener{Address: busy.Addr().String(), Upstream: "svc"})
	bad.Upstreams = []Upstream{{Name: "svc", Protocol: ProtocolHTTP, Endpoints: []Endpoint{{Address: "127.0.0.1:1"}}}}
	if err := p.Apply(bad); err == nil || !strings.Contains(err.Error(), "listen on") {
		t.Fatalf("Apply with a busy address: %v, want a listen error", err)
	}
	invalid := Config{Listeners: []Listener{{Address: "nowhere", Upstream: "x"}}, Upstreams: []Upstream{{Name: "svc", Protocol: "udp"}}}
	err = p.Apply(invalid)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Apply with an invalid config: %v, want a *ValidationError", err)
	}
	for _, want := range []string{`listeners[0].address: "nowhere" is not host:port`, `upstreams[0].protocol: "udp"`, `listeners[0].upstream: "x" names no upstream`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if code, body := get(t, client(t, ProtocolHTTP), url); code != 200 || body != "b\n" {
		t.Errorf("after failed applies: %d %q, want the old config's answer", code, body)
	}
}

// TestApplyReroutesListener: pointing a listener at another upstream
// takes effect for the next request on the same connection.
func TestApplyReroutesListener(t *testing.T) {
	a, b := newBackend(t, "a", false, nil), newBackend(t, "b", false, nil)
	cfg := Config{
		Listeners: []Listener{{Address: "127.0.0.1:0", Upstream: "one"}},
		Upstreams: []Upstream{
			{Name: "one", Protocol: ProtocolHTTP, Endpoints: endpoints(a)},
			{Name: "two", Protocol: ProtocolHTTP, Endpoints: endpoints(b)},
		},
	}
	p := startProxy(t, cfg)
	c := client(t, ProtocolHTTP)
	url := "http://" + addr(t, p, "127.0.0.1:0") + "/"
	if _, body := get(t, c, url); body != "a\n" {
		t.Fatalf("got %q before, want a", body)
	}
	cfg.Listeners[0].Upstream = "two"
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if _, body := get(t, c, url); body != "b\n" {
		t.Fatalf("got %q after, want b", body)
	}
}

func TestDrain(t *testing.T) {
	release := make(chan struct{})
	slow := newBackend(t, "slow", true, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		w.Write([]byte("done\n"))
	}))
	p := startProxy(t, Config{
		Listeners: []Listener{
			{Address: "127.0.0.1:0", Upstream: "h1"},
			{Address: "127.0.0.2:0", Upstream: "h2"},
		},
		Upstreams: []Upstream{
			{Name: "h1", Protocol: ProtocolHTTP, Endpoints: endpoints(slow)},
			{Name: "h2", Protocol: ProtocolHTTP2, Endpoints: endpoints(slow)},
		},
	})
	h1, h2 := addr(t, p, "127.0.0.1:0"), addr(t, p, "127.0.0.2:0")

	// An idle keep-alive connection.
	idle, err := net.Dial("tcp", h1)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	idle.SetDeadline(time.Now().Add(10 * time.Second))
	idleR := bufio.NewReader(idle)
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, err := http.ReadResponse(idleR, nil); err != nil {
		t.Fatal(err)
	} else {
		io.Copy(io.Discard, resp.Body)
	}

	// Requests in flight on both listeners.
	type result struct {
		resp *http.Response
		body string
		err  error
	}
	inflight := func(protocol, a string) chan result {
		ch := make(chan result, 1)
		go func() {
			resp, err := client(t, protocol).Get("http://" + a + "/slow")
			if err != nil {
				ch <- result{err: err}
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			ch <- result{resp, string(b), err}
		}()
		return ch
	}
	r1, r2 := inflight(ProtocolHTTP, h1), inflight(ProtocolHTTP2, h2)
	waitFor(t, "both requests to reach the backend", func() bool { return slow.hits.Load() == 3 })

	drained := make(chan error, 1)
	go func() { drained <- p.Drain(ctxTimeout(t, 10*time.Second)) }()

	if _, err := idleR.ReadByte(); err != io.EOF {
		t.Errorf("idle connection: read %v, want it closed (EOF)", err)
	}
	waitFor(t, "listeners to stop accepting", func() bool {
		c, err := net.Dial("tcp", h1)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case err := <-drained:
		t.Fatalf("Drain returned %v with requests in flight", err)
	default:
	}
	close(release)
	for _, r := range []result{<-r1, <-r2} {
		if r.err != nil || r.resp.StatusCode != 200 || r.body != "done\n" {
			t.Errorf("in-flight request: %v %q %v, want 200 done", r.resp, r.body, r.err)
		}
	}
	if err := <-drained; err != nil {
		t.Errorf("Drain: %v", err)
	}
}

func TestDrainDeadline(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	stuck := newBackend(t, "stuck", false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	p := startProxy(t, Config{
		Listeners: []Listener{{Address: "127.0.0.1:0", Upstream: "svc"}},
		Upstreams: []Upstream{{Name: "svc", Protocol: ProtocolHTTP, Endpoints: endpoints(stuck)}},
	})
	errc := make(chan error, 1)
	go func() {
		_, err := client(t, ProtocolHTTP).Get("http://" + addr(t, p, "127.0.0.1:0") + "/")
		errc <- err
	}()
	waitFor(t, "the request to reach the backend", func() bool { return stuck.hits.Load() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := p.Drain(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Drain: %v, want deadline exceeded", err)
	}
	if err := <-errc; err == nil {
		t.Errorf("the stuck request succeeded after a forced close")
	}
	if err := p.Apply(Config{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Apply after Drain: %v, want ErrClosed", err)
	}
}
