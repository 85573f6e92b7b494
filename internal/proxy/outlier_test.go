package proxy

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func failing(code int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(code)
		w.Write([]byte("failing\n"))
	})
}

// ejected counts the endpoints of an upstream that are ejected now.
func ejected(p *Proxy, name string) int {
	p.mu.Lock()
	up := p.upstreams[name]
	p.mu.Unlock()
	n := 0
	now := mono()
	for _, e := range up.state.Load().eps {
		if !e.healthy(now) {
			n++
		}
	}
	return n
}

// TestOutlierEjectionAndReturn: five 5xx in a row eject an endpoint for
// the base ejection time; it comes back after, and a second ejection lasts
// twice as long.
func TestOutlierEjectionAndReturn(t *testing.T) {
	for _, protocol := range []string{ProtocolHTTP, ProtocolHTTP2} {
		t.Run(protocol, func(t *testing.T) {
			const base = 300 * time.Millisecond
			good1 := newBackend(t, "good1", true, nil)
			good2 := newBackend(t, "good2", true, nil)
			bad := newBackend(t, "bad", true, failing(500))
			p := startProxy(t, Config{
				Listeners: []Listener{{Address: "127.0.0.1:0", Upstream: "svc"}},
				Upstreams: []Upstream{{Name: "svc", Protocol: protocol, Endpoints: endpoints(good1, bad, good2),
					Retries: ptr(0), Outlier: Outlier{BaseEjection: base}}},
			})
			c := client(t, protocol)
			url := "http://" + addr(t, p, "127.0.0.1:0") + "/"

			// start: the bad endpoint's hits before its current run of
			// failures (the request that finds it back counts in the next).
			var start int64
			for round, want := range []time.Duration{base, 2 * base} {
				if round > 0 {
					start += 5
				}
				for bad.hits.Load() < start+5 {
					get(t, c, url)
				}
				ejectedAt := time.Now()
				if n := ejected(p, "svc"); n != 1 {
					t.Fatalf("round %d: %d endpoints ejected after 5 consecutive 500s, want 1", round, n)
				}
				for {
					if time.Since(ejectedAt) > want+5*time.Second {
						t.Fatalf("round %d: the ejected endpoint never came back", round)
					}
					code, body := get(t, c, url)
					if bad.hits.Load() > start+5 {
						break // back in rotation
					}
					if code != 200 {
						t.Fatalf("round %d: status %d (%q) while the bad endpoint was ejected", round, code, body)
					}
				}
				if back := time.Since(ejectedAt); back < want-20*time.Millisecond {
					t.Errorf("round %d: endpoint back after %s, want at least %s", round, back, want)
				}
			}
			if m := scrape(t, p); !strings.Contains(m, `wharf_proxy_outlier_ejections_total{TargetDiscoveryName="svc",ServiceName="",ClusterName=""} 2`) {
				t.Errorf("metrics do not count 2 ejections:\n%s", m)
			}
		})
	}
}

func TestOutlierMaxEjectionPercent(t *testing.T) {
	cases := []struct {
		name        string
		percent     int
		endpoints   int
		wantEjected int
	}{
		{"half of 4", 50, 4, 2},
		{"default 10% still ejects one", 0, 4, 1},
		{"all", 100, 3, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var bs []*backend
			for i := range tc.endpoints {
				bs = append(bs, newBackend(t, string(rune('a'+i)), false, failing(503)))
			}
			p := startProxy(t, Config{
				Listeners: []Listener{{Address: "127.0.0.1:0", Upstream: "svc"}},
				Upstreams: []Upstream{{Name: "svc", Protocol: ProtocolHTTP, Endpoints: endpoints(bs...), Retries: ptr(0),
					Outlier: Outlier{Consecutive: 1, BaseEjection: time.Minute, MaxEjectionPercent: tc.percent}}},
			})
			c := client(t, ProtocolHTTP)
			url := "http://" + addr(t, p, "127.0.0.1:0") + "/"
			for range 4 * tc.endpoints {
				// Every endpoint fails, ejected or not (panic mode):
				// the proxy forwards the endpoints' 503s.
				if code, body := get(t, c, url); code != 503 || strings.TrimSpace(body) != "failing" {
					t.Fatalf("status %d %q, want the endpoints' 503", code, body)
				}
			}
			if n := ejected(p, "svc"); n != tc.wantEjected {
				t.Errorf("%d of %d endpoints ejected, want %d", n, tc.endpoints, tc.wantEjected)
			}
		})
	}
}

func TestZoneAware(t *testing.T) {
	cases := []struct {
		name      string
		zoneAware bool
		proxyZone string
		failLocal bool
		want      map[string]int // of 12 requests
	}{
		{"same zone preferred", true, "a", false, map[string]int{"a1": 6, "a2": 6}},
		{"falls back when the zone's endpoints are ejected", true, "a", true, map[string]int{"b1": 12}},
		{"no endpoint in the zone", true, "c", false, map[string]int{"a1": 4, "a2": 4, "b1": 4}},
		{"not zone aware", false, "a", false, map[string]int{"a1": 4, "a2": 4, "b1": 4}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var h http.Handler
			if tc.failLocal {
				h = failing(500)
			}
			a1 := newBackend(t, "a1", false, h)
			a2 := newBackend(t, "a2", false, h)
			b1 := newBackend(t, "b1", false, nil)
			p := startProxy(t, Config{
				Zone:      tc.proxyZone,
				Listeners: []Listener{{Address: "127.0.0.1:0", Upstream: "svc"}},
				Upstreams: []Upstream{{Name: "svc", Protocol: ProtocolHTTP, ZoneAware: tc.zoneAware, Retries: ptr(0),
					Outlier:   Outlier{Consecutive: 1, BaseEjection: time.Minute, MaxEjectionPercent: 100},
					Endpoints: []Endpoint{{a1.addr, "a"}, {a2.addr, "a"}, {b1.addr, "b"}}}},
			})
			c := client(t, ProtocolHTTP)
			url := "http://" + addr(t, p, "127.0.0.1:0") + "/"
			if tc.failLocal {
				// Each local endpoint fails once and is ejected.
				for range 2 {
					get(t, c, url)
				}
				a1.hits.Store(0)
				a2.hits.Store(0)
			}
			for range 12 {
				get(t, c, url)
			}
			got := map[string]int{}
			for _, b := range []*backend{a1, a2, b1} {
				if n := int(b.hits.Load()); n > 0 {
					got[b.name] = n
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("spread %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("spread %v, want %v", got, tc.want)
				}
			}
		})
	}
}
