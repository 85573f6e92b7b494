package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

func TestPerRequestTimeout(t *testing.T) {
	const timeout = 150 * time.Millisecond
	for _, protocol := range []string{ProtocolHTTP, ProtocolHTTP2} {
		t.Run(protocol, func(t *testing.T) {
			release := make(chan struct{})
			defer close(release)
			slow := newBackend(t, "slow", true, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}))
			p := startProxy(t, Config{
				Listeners: []Listener{{Address: "127.0.0.1:0", Upstream: "svc"}},
				Upstreams: []Upstream{{Name: "svc", Protocol: protocol, Endpoints: endpoints(slow), PerRequestTimeout: ptr(timeout)}},
			})
			start := time.Now()
			code, body := get(t, client(t, protocol), "http://"+addr(t, p, "127.0.0.1:0")+"/")
			took := time.Since(start)
			if code != http.StatusGatewayTimeout {
				t.Errorf("status %d (%q), want 504", code, body)
			}
			if took < timeout || took > timeout+time.Second {
				t.Errorf("answered after %s, want within [%s, %s]", took, timeout, timeout+time.Second)
			}
			if !strings.Contains(body, "per-request timeout") {
				t.Errorf("body %q does not say what happened", body)
			}
			if got := slow.hits.Load(); got != 1 {
				t.Errorf("a timed-out request was sent %d times, want once", got)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	cases := []struct {
		name           string
		up             Upstream
		wantPerRequest time.Duration
		wantIdle       time.Duration
		wantRetries    int
		wantConsec     int32
	}{
		{"http defaults", Upstream{Protocol: "http"}, 15 * time.Second, 300 * time.Second, 2, 5},
		{"grpc defaults", Upstream{Protocol: "grpc"}, 15 * time.Second, 300 * time.Second, 2, 5},
		{"tcp defaults", Upstream{}, 0, 3600 * time.Second, 2, 5},
		{"zero disables", Upstream{Protocol: "http", PerRequestTimeout: ptr(time.Duration(0)), IdleTimeout: ptr(time.Duration(0)), Retries: ptr(0)}, 0, 0, 0, 5},
		{"set", Upstream{Protocol: "http2", PerRequestTimeout: ptr(time.Second), IdleTimeout: ptr(time.Minute), Retries: ptr(5)}, time.Second, time.Minute, 5, 5},
		{"outlier off", Upstream{Protocol: "http", Outlier: Outlier{Consecutive: -1}}, 15 * time.Second, 300 * time.Second, 2, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := buildState(nil, &tc.up, "", &stats{}, false)
			if st.perRequest != tc.wantPerRequest || st.idle != tc.wantIdle || st.retries != tc.wantRetries || st.consecutive != tc.wantConsec {
				t.Errorf("perRequest %s idle %s retries %d consecutive %d, want %s %s %d %d",
					st.perRequest, st.idle, st.retries, st.consecutive, tc.wantPerRequest, tc.wantIdle, tc.wantRetries, tc.wantConsec)
			}
			if st.baseEjection != 30*time.Second || st.maxEjectPct != 10 {
				t.Errorf("outlier defaults %s %d%%, want 30s 10%%", st.baseEjection, st.maxEjectPct)
			}
		})
	}
}

// TestIdleTimeout: the proxy closes a caller connection that carried
// nothing for the idle timeout (HTTP: between requests; TCP: either way).
func TestIdleTimeout(t *testing.T) {
	const idle = 200 * time.Millisecond
	for _, protocol := range []string{ProtocolHTTP, ProtocolTCP} {
		t.Run(protocol, func(t *testing.T) {
			b := newBackend(t, "b", false, nil)
			p := startProxy(t, Config{
				Listeners: []Listener{{Address: "127.0.0.1:0", Upstream: "svc"}},
				Upstreams: []Upstream{{Name: "svc", Protocol: protocol, Endpoints: endpoints(b), IdleTimeout: ptr(idle)}},
			})
			c, err := net.Dial("tcp", addr(t, p, "127.0.0.1:0"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			br := bufio.NewReader(c)
			// Activity for longer than the idle timeout keeps the
			// connection open.
			start := time.Now()
			for time.Since(start) < 2*idle {
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: svc\r\n\r\n")
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("request after %s: %v", time.Since(start), err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				time.Sleep(idle / 4)
			}
			quiet := time.Now()
			_, err = br.ReadByte()
			took := time.Since(quiet)
			if !errors.Is(err, io.EOF) {
				t.Fatalf("read on the idle connection: %v, want EOF", err)
			}
			if took < idle-idle/4-10*time.Millisecond || took > idle+time.Second {
				t.Errorf("closed after %s of idleness, want about %s", took, idle)
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("the proxy never closed the connection")
			}
		})
	}
}

// TestIdleTimeoutClosesPooledConnections: an endpoint connection left in
// the pool closes after the idle timeout.
func TestIdleTimeoutClosesPooledConnections(t *testing.T) {
	const idle = 100 * time.Millisecond
	closed := make(chan time.Time, 1)
	b := &backend{name: "b"}
	b.srv = httptest.NewUnstartedServer(b)
	b.srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			select {
			case closed <- time.Now():
			default:
			}
		}
	}
	b.srv.Start()
	defer b.srv.Close()
	b.addr = b.srv.Listener.Addr().String()
	p := startProxy(t, Config{
		Listeners: []Listener{{Address: "127.0.0.1:0", Upstream: "svc"}},
		Upstreams: []Upstream{{Name: "svc", Protocol: ProtocolHTTP, Endpoints: endpoints(b), IdleTimeout: ptr(idle)}},
	})
	// Connection: close ends the caller's side at once; the endpoint
	// connection stays pooled.
	out := rawRequest(t, addr(t, p, "127.0.0.1:0"), "GET / HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n", 5*time.Second)
	done := time.Now()
	if !strings.HasPrefix(out, "HTTP/1.1 200") {
		t.Fatalf("got %q", out)
	}
	select {
	case at := <-closed:
		if took := at.Sub(done); took < idle-10*time.Millisecond || took > idle+time.Second {
			t.Errorf("pooled connection closed after %s idle, want about %s", took, idle)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the pooled endpoint connection was never closed")
	}
}
