package sidecar

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharfhq/wharf/internal/proxy"
)

func ms(v int64) *int64 { return &v }

func TestConfigProxy(t *testing.T) {
	two := 2
	c := Config{
		ServiceName: "apple", ClusterName: "default", DiscoveryName: "apple", Zone: "us-east-1a",
		Listeners: []Listener{
			{Address: "127.255.0.1:80", Upstream: "banana"},
			{Address: "0.0.0.0:15000", Ingress: &Ingress{DiscoveryName: "apple", Protocol: "http", AppAddress: "127.0.0.1:8080", PerRequestTimeoutMs: ms(0), IdleTimeoutMs: ms(1500)}},
		},
		Upstreams: []Upstream{{Name: "banana", Protocol: "grpc", Endpoints: []Endpoint{{Address: "10.0.0.2:15000", Zone: "us-east-1b"}},
			Retries: &two, PerRequestTimeoutMs: ms(15000), Outlier: &Outlier{Consecutive: 3, BaseEjectionMs: 1000}}},
		AccessLog:      &AccessLog{Format: "JSON", IncludeQueryParameters: true},
		DrainTimeoutMs: ms(5000),
	}
	var logs bytes.Buffer
	p, err := c.Proxy(&logs, &Certificates{})
	if err != nil {
		t.Fatal(err)
	}
	if p.ServiceName != "apple" || p.Zone != "us-east-1a" || p.DrainTimeout != 5*time.Second || p.AccessLog == nil || p.AccessLog.Writer != &logs || !p.AccessLog.IncludeQueryParameters {
		t.Fatalf("config %+v", p)
	}
	in := p.Listeners[1].Ingress
	if in == nil || *in.PerRequestTimeout != 0 || *in.IdleTimeout != 1500*time.Millisecond || in.AppAddress != "127.0.0.1:8080" {
		t.Fatalf("ingress %+v", in)
	}
	u := p.Upstreams[0]
	if u.IdleTimeout != nil || *u.PerRequestTimeout != 15*time.Second || *u.Retries != 2 || u.Outlier.BaseEjection != time.Second || u.Endpoints[0].Zone != "us-east-1b" {
		t.Fatalf("upstream %+v", u)
	}
	if c.AccessLog = nil; must(c.Proxy(&logs, &Certificates{})).AccessLog != nil {
		t.Fatal("access log without a format in the document")
	}
}

func TestCaptured(t *testing.T) {
	cfg := proxy.Config{Listeners: []proxy.Listener{
		{Address: "127.255.0.1:80", Upstream: "a"},
		{Address: "127.255.0.1:81", Upstream: "a2"}, // a second port of one VIP stays direct
		{Address: "127.0.0.1:9000", Upstream: "b"},  // not an alias address
		{Address: "0.0.0.0:15000", Ingress: &proxy.Ingress{AppAddress: "127.0.0.1:8080"}},
	}}
	out, aliases := captured(cfg)
	got := []string{}
	for _, l := range out.Listeners {
		got = append(got, l.Address)
	}
	if strings.Join(got, " ") != "127.255.0.1:0 127.255.0.1:81 127.0.0.1:9000 0.0.0.0:15000" {
		t.Fatalf("listeners %v", got)
	}
	if len(aliases) != 1 || aliases["127.255.0.1:0"].String() != "127.255.0.1:80" {
		t.Fatalf("aliases %v", aliases)
	}
	if cfg.Listeners[0].Address != "127.255.0.1:80" {
		t.Fatal("captured changed its input")
	}
}

// configServer serves Documents as the agent does: ?index=N waits while N
// is the current index.
type configServer struct {
	mu      sync.Mutex
	doc     Document
	changed chan struct{}
	asked   []int64
}

func newConfigServer(doc Document) *configServer {
	return &configServer{doc: doc, changed: make(chan struct{})}
}

func (s *configServer) set(c Config) {
	s.mu.Lock()
	s.doc.Index++
	s.doc.Config = c
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

func (s *configServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	idx, _ := strconv.ParseInt(r.URL.Query().Get("index"), 10, 64)
	s.mu.Lock()
	s.asked = append(s.asked, idx)
	doc, changed := s.doc, s.changed
	s.mu.Unlock()
	if idx == doc.Index {
		select {
		case <-changed:
		case <-r.Context().Done():
			return
		case <-time.After(2 * time.Second):
		}
		s.mu.Lock()
		doc = s.doc
		s.mu.Unlock()
	}
	json.NewEncoder(w).Encode(doc)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func httpGet(url string) (int, string) {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRun(t *testing.T) {
	backend := func(body string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }))
		t.Cleanup(srv.Close)
		return strings.TrimPrefix(srv.URL, "http://")
	}
	apple, banana := backend("apple"), backend("banana")
	egress1, egress2, admin := freeAddr(t), freeAddr(t), freeAddr(t)
	cs := newConfigServer(Document{Index: 7, Config: Config{
		ServiceName: "front", ClusterName: "default",
		Listeners: []Listener{{Address: egress1, Upstream: "apple"}},
		Upstreams: []Upstream{{Name: "apple", Protocol: "http", Endpoints: []Endpoint{{Address: apple}}}},
		AccessLog: &AccessLog{Format: "TEXT"},
	}})
	srv := httptest.NewServer(cs)
	defer srv.Close()

	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{ConfigURI: srv.URL + "/proxy/tok/config", AdminAddress: admin, AccessLog: &logs, DrainTimeout: 2 * time.Second})
	}()
	eventually(t, "the proxy to be ready", 5*time.Second, func() bool { return Check(context.Background(), admin) == nil })
	if code, body := httpGet("http://" + egress1 + "/"); code != 200 || body != "apple" {
		t.Fatalf("through the egress listener: %d %q", code, body)
	}
	eventually(t, "an access log line", 2*time.Second, func() bool { return strings.Contains(logs.String(), `"GET / HTTP/1.1" 200`) })
	if _, m := httpGet("http://" + admin + "/metrics"); !strings.Contains(m, "RequestCount") || !strings.Contains(m, `TargetDiscoveryName="apple"`) {
		t.Fatalf("metrics lack the request:\n%s", m)
	}
	// The proxy tells the server what it applied on its next long-poll.
	eventually(t, "a long-poll with the applied index", 2*time.Second, func() bool {
		cs.mu.Lock()
		defer cs.mu.Unlock()
		return len(cs.asked) > 1 && cs.asked[len(cs.asked)-1] == 7
	})

	// A live change: a new service with a new listener.
	start := time.Now()
	cs.set(Config{
		Listeners: []Listener{{Address: egress1, Upstream: "apple"}, {Address: egress2, Upstream: "banana"}},
		Upstreams: []Upstream{{Name: "apple", Protocol: "http", Endpoints: []Endpoint{{Address: apple}}}, {Name: "banana", Protocol: "tcp", Endpoints: []Endpoint{{Address: banana}}}},
	})
	eventually(t, "the new listener to answer", 2*time.Second, func() bool { code, body := httpGet("http://" + egress2 + "/"); return code == 200 && body == "banana" })
	t.Logf("new service reachable %v after the change", time.Since(start))

	// An invalid configuration is not applied; the old one keeps serving.
	cs.mu.Lock()
	applied, n := cs.doc.Index, len(cs.asked)
	cs.mu.Unlock()
	cs.set(Config{Listeners: []Listener{{Address: egress1, Upstream: "nowhere"}}})
	eventually(t, "the proxy to refuse the config and ask again with the index it has", 3*time.Second, func() bool {
		cs.mu.Lock()
		defer cs.mu.Unlock()
		// Two requests with the old index since the change: at least one
		// is a retry after the refusal.
		k := 0
		for _, i := range cs.asked[n:] {
			if i == applied {
				k++
			}
		}
		return k >= 2
	})
	if code, body := httpGet("http://" + egress1 + "/"); code != 200 || body != "apple" {
		t.Fatalf("after an invalid config: %d %q", code, body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if Check(context.Background(), admin) == nil {
		t.Fatal("the admin endpoint still answers after Run returned")
	}
}

func TestRunNeedsURI(t *testing.T) {
	if err := Run(context.Background(), Options{}); err == nil || !strings.Contains(err.Error(), "WHARF_PROXY_CONFIG_URI") {
		t.Fatalf("err %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
