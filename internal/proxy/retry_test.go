package proxy

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// flaky answers its first n requests with a failure: "reset" (the
// connection, or for HTTP/2 the stream, is reset) or "503".
func flaky(mode string, n int64) http.Handler {
	var seen atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if seen.Add(1) > n {
			w.Write([]byte("ok\n"))
			return
		}
		switch mode {
		case "503":
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("busy\n"))
		case "reset":
			if r.ProtoMajor == 2 {
				panic(http.ErrAbortHandler) // RST_STREAM
			}
			c, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				panic(err)
			}
			c.(*net.TCPConn).SetLinger(0) // RST, not FIN
			c.Close()
		}
	})
}

func TestRetries(t *testing.T) {
	const always = 1 << 30
	cases := []struct {
		name     string
		method   string
		header   string // extra request header name
		fail     string
		failures int64
		retries  *int
		nonIdem  bool
		wantCode int
		wantHits int64
	}{
		{name: "GET reset is retried", method: "GET", fail: "reset", failures: 1, wantCode: 200, wantHits: 2},
		{name: "GET 503 is retried", method: "GET", fail: "503", failures: 1, wantCode: 200, wantHits: 2},
		{name: "PUT 503 is retried", method: "PUT", fail: "503", failures: 1, wantCode: 200, wantHits: 2},
		{name: "POST reset is not retried", method: "POST", fail: "reset", failures: 1, wantCode: 503, wantHits: 1},
		{name: "POST 503 is not retried", method: "POST", fail: "503", failures: 1, wantCode: 503, wantHits: 1},
		{name: "POST reset with RetryNonIdempotent", method: "POST", fail: "reset", failures: 1, nonIdem: true, wantCode: 200, wantHits: 2},
		{name: "POST 503 with RetryNonIdempotent", method: "POST", fail: "503", failures: 1, nonIdem: true, wantCode: 200, wantHits: 2},
		{name: "POST with Idempotency-Key is retried", method: "POST", header: "Idempotency-Key", fail: "503", failures: 1, wantCode: 200, wantHits: 2},
		{name: "default is 2 retries", method: "GET", fail: "503", failures: always, wantCode: 503, wantHits: 3},
		{name: "Retries 1", method: "GET", fail: "503", failures: always, retries: ptr(1), wantCode: 503, wantHits: 2},
		{name: "Retries 0", method: "GET", fail: "503", failures: always, retries: ptr(0), wantCode: 503, wantHits: 1},
		{name: "Retries 4 on resets", method: "GET", fail: "reset", failures: always, retries: ptr(4), wantCode: 503, wantHits: 5},
	}
	for _, protocol := range []string{ProtocolHTTP, ProtocolHTTP2} {
		for _, tc := range cases {
			t.Run(protocol+"/"+tc.name, func(t *testing.T) {
				b := newBackend(t, "b", true, flaky(tc.fail, tc.failures))
				p := startProxy(t, Config{
					Listeners: []Listener{{Address: "127.0.0.1:0", Upstream: "svc"}},
					Upstreams: []Upstream{{Name: "svc", Protocol: protocol, Endpoints: endpoints(b),
						Retries: tc.retries, RetryNonIdempotent: tc.nonIdem}},
				})
				req, _ := http.NewRequest(tc.method, "http://"+addr(t, p, "127.0.0.1:0")+"/", strings.NewReader("payload"))
				if tc.header != "" {
					req.Header.Set(tc.header, "k1")
				}
				resp, err := client(t, protocol).Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.wantCode {
					t.Errorf("status %d (%q), want %d", resp.StatusCode, body, tc.wantCode)
				}
				if got := b.hits.Load(); got != tc.wantHits {
					t.Errorf("backend saw %d requests, want %d", got, tc.wantHits)
				}
			})
		}
	}
}

// TestRetryGoesElsewhere: connection failures are retried for any method
// (nothing reached the endpoint), on another endpoint.
func TestRetryGoesElsewhere(t *testing.T) {
	for _, protocol := range []string{ProtocolHTTP, ProtocolGRPC, ProtocolTCP} {
		t.Run(protocol, func(t *testing.T) {
			// Nothing listens on port 1 (tcpmux): connections are refused.
			const dead = "127.0.0.1:1"
			good := newBackend(t, "good", true, nil)
			p := startProxy(t, Config{
				Listeners: []Listener{{Address: "127.0.0.1:0", Upstream: "svc"}},
				Upstreams: []Upstream{{Name: "svc", Protocol: protocol,
					Endpoints: []Endpoint{{Address: dead}, {Address: good.addr}}}},
			})
			url := "http://" + addr(t, p, "127.0.0.1:0") + "/"
			c := client(t, protocol)
			if protocol == ProtocolTCP {
				c = client(t, ProtocolHTTP)
				c.Transport.(*http.Transport).DisableKeepAlives = true
			}
			// Round robin starts each request at the next endpoint, so one
			// of two requests meets the dead one first.
			for range 2 {
				if code, body := do(t, c, "POST", url, "x"); code != 200 {
					t.Fatalf("status %d: %s", code, body)
				}
			}
			if got := good.hits.Load(); got != 2 {
				t.Errorf("good backend got %d requests, want 2", got)
			}
		})
	}
}
