package proxy

import (
	"net/http"
	"strings"
	"sync"
	"testing"
)

func TestRoundRobinSpreadsEvenly(t *testing.T) {
	for _, protocol := range []string{ProtocolHTTP, ProtocolHTTP2} {
		t.Run(protocol, func(t *testing.T) {
			bs := []*backend{
				newBackend(t, "a", true, nil),
				newBackend(t, "b", true, nil),
				newBackend(t, "c", true, nil),
			}
			p := startProxy(t, Config{
				Listeners: []Listener{{Address: "127.0.0.1:0", Upstream: "svc"}},
				Upstreams: []Upstream{{Name: "svc", Protocol: protocol, Endpoints: endpoints(bs...)}},
			})
			c := client(t, protocol)
			url := "http://" + addr(t, p, "127.0.0.1:0") + "/"
			got := map[string]int{}
			for range 30 {
				code, body := get(t, c, url)
				if code != http.StatusOK {
					t.Fatalf("status %d: %s", code, body)
				}
				got[strings.TrimSpace(body)]++
			}
			for _, b := range bs {
				if got[b.name] != 10 {
					t.Errorf("backend %s got %d of 30 requests, want 10 (all: %v)", b.name, got[b.name], got)
				}
				for _, proto := range b.protos {
					want := "HTTP/1.1"
					if isHTTP2(protocol) {
						want = "HTTP/2.0"
					}
					if proto != want {
						t.Errorf("backend %s saw %s, want %s", b.name, proto, want)
						break
					}
				}
			}
		})
	}
}

// TestLeastRequestPrefersIdle keeps three requests in flight on one
// endpoint, then adds an idle one: every new request goes to the idle one.
func TestLeastRequestPrefersIdle(t *testing.T) {
	for _, protocol := range []string{ProtocolHTTP, ProtocolGRPC} {
		t.Run(protocol, func(t *testing.T) {
			release := make(chan struct{})
			var held sync.WaitGroup
			busy := newBackend(t, "busy", true, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/hold" {
					<-release
				}
				w.Write([]byte("busy\n"))
			}))
			idle := newBackend(t, "idle", true, nil)
			up := Upstream{Name: "svc", Protocol: protocol, Balancer: BalancerLeastRequest, Endpoints: endpoints(busy)}
			cfg := Config{
				Listeners: []Listener{{Address: "127.0.0.1:0", Upstream: "svc"}},
				Upstreams: []Upstream{up},
			}
			p := startProxy(t, cfg)
			c := client(t, protocol)
			url := "http://" + addr(t, p, "127.0.0.1:0")
			for range 3 {
				held.Add(1)
				go func() {
					defer held.Done()
					resp, err := c.Get(url + "/hold")
					if err == nil {
						resp.Body.Close()
					}
				}()
			}
			defer held.Wait()
			defer close(release)
			waitFor(t, "3 requests held by the busy backend", func() bool { return busy.hits.Load() == 3 })

			cfg.Upstreams[0].Endpoints = endpoints(busy, idle)
			if err := p.Apply(cfg); err != nil {
				t.Fatal(err)
			}
			for range 20 {
				if code, body := get(t, c, url+"/"); code != http.StatusOK || strings.TrimSpace(body) != "idle" {
					t.Fatalf("got %d %q, want 200 from the idle backend", code, body)
				}
			}
		})
	}
}
