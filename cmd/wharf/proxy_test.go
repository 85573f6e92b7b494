package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wharfhq/wharf/internal/sidecar"
)

// agentStub serves a proxy's configuration as the agent does: ?index=N
// waits while N is the current index.
type agentStub struct {
	mu      sync.Mutex
	doc     sidecar.Document
	changed chan struct{}
}

func (s *agentStub) set(cfg sidecar.Config) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.doc.Index++
	s.doc.Config = cfg
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *agentStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	idx, _ := strconv.ParseInt(r.URL.Query().Get("index"), 10, 64)
	s.mu.Lock()
	doc, changed := s.doc, s.changed
	s.mu.Unlock()
	if idx == doc.Index {
		select {
		case <-changed:
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
			return
		}
		s.mu.Lock()
		doc = s.doc
		s.mu.Unlock()
	}
	json.NewEncoder(w).Encode(doc)
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func get(url string) (int, string) {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestProxyCommand(t *testing.T) {
	backend := func(body string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }))
		t.Cleanup(srv.Close)
		return strings.TrimPrefix(srv.URL, "http://")
	}
	apple, banana := backend("apple"), backend("banana")
	egress, egress2, admin := freePort(t), freePort(t), freePort(t)
	stub := &agentStub{changed: make(chan struct{}), doc: sidecar.Document{Index: 1, Config: sidecar.Config{
		ServiceName: "front", ClusterName: "default",
		Listeners: []sidecar.Listener{{Address: egress, Upstream: "apple"}},
		Upstreams: []sidecar.Upstream{{Name: "apple", Protocol: "http", Endpoints: []sidecar.Endpoint{{Address: apple}}}},
		AccessLog: &sidecar.AccessLog{Format: "JSON"},
	}}}
	cfgSrv := httptest.NewServer(stub)
	defer cfgSrv.Close()

	check := func() error {
		return exec.Command(wharfBin, "proxy", "--check", "--admin-listen", admin).Run()
	}
	if check() == nil {
		t.Fatal("--check succeeded without a proxy")
	}
	cmd := exec.Command(wharfBin, "proxy", "--admin-listen", admin)
	cmd.Env = append(os.Environ(), "WHARF_PROXY_CONFIG_URI="+cfgSrv.URL+"/wharf/proxy/token")
	var stdout strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })

	waitFor(t, "wharf proxy --check to pass", 10*time.Second, func() bool { return check() == nil })
	if code, body := get("http://" + egress + "/fruit"); code != 200 || body != "apple" {
		t.Fatalf("through the egress listener: %d %q", code, body)
	}
	if _, m := get("http://" + admin + "/metrics"); !strings.Contains(m, `TargetDiscoveryName="apple"`) {
		t.Fatalf("metrics:\n%s", m)
	}

	// A new service reaches the running proxy through the long-poll.
	stub.set(sidecar.Config{
		Listeners: []sidecar.Listener{{Address: egress, Upstream: "apple"}, {Address: egress2, Upstream: "banana"}},
		Upstreams: []sidecar.Upstream{{Name: "apple", Protocol: "http", Endpoints: []sidecar.Endpoint{{Address: apple}}}, {Name: "banana", Protocol: "http", Endpoints: []sidecar.Endpoint{{Address: banana}}}},
	})
	start := time.Now()
	waitFor(t, "the new service's listener", 2*time.Second, func() bool { code, body := get("http://" + egress2 + "/"); return code == 200 && body == "banana" })
	t.Logf("new service served %v after the change", time.Since(start))

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("wharf proxy exited with %v after SIGTERM", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("wharf proxy did not exit within 10 s of SIGTERM")
	}
	if !strings.Contains(stdout.String(), `"path":"/fruit"`) {
		t.Fatalf("no JSON access log line on stdout: %q", stdout.String())
	}
}
