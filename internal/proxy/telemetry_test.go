package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"
)

// lockedBuffer is an access log sink the test can read while the proxy
// writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.TrimSuffix(l.b.String(), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestAccessLog(t *testing.T) {
	const ts = `\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\]`
	cases := []struct {
		name     string
		format   string
		query    bool
		protocol string
		path     string
		up       bool // an endpoint exists
		want     string
	}{
		{"text", AccessLogText, false, ProtocolHTTP, "/fruit?secret=1", true,
			`^` + ts + ` "GET /fruit HTTP/1.1" 200 - 0 6 \d+ \d+ "10\.0\.0\.1" "wharf-test" "req-7" "apple" "127\.0\.0\.1:\d+"$`},
		{"text with query", AccessLogText, true, ProtocolHTTP, "/fruit?secret=1", true,
			`^` + ts + ` "GET /fruit\?secret=1 HTTP/1.1" 200 - 0 6 \d+ \d+ "10\.0\.0\.1" "wharf-test" "req-7" "apple" "127\.0\.0\.1:\d+"$`},
		{"text, no endpoint", AccessLogText, false, ProtocolHTTP, "/", false,
			`^` + ts + ` "GET / HTTP/1.1" 503 UH 0 \d+ \d+ - "10\.0\.0\.1" "wharf-test" "req-7" "apple" "-"$`},
		{"text, HTTP/2", AccessLogText, false, ProtocolHTTP2, "/fruit", true,
			`^` + ts + ` "GET /fruit HTTP/2" 200 - 0 6 \d+ \d+ "10\.0\.0\.1" "wharf-test" "req-7" "apple" "127\.0\.0\.1:\d+"$`},
		{"json", AccessLogJSON, false, ProtocolHTTP, "/fruit?secret=1", true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackend(t, "apple", true, nil)
			up := Upstream{Name: "apple", Protocol: tc.protocol}
			if tc.up {
				up.Endpoints = endpoints(b)
			}
			var sink lockedBuffer
			p := startProxy(t, Config{
				Listeners: []Listener{{Address: "127.0.0.1:0", Upstream: "apple"}},
				Upstreams: []Upstream{up},
				AccessLog: &AccessLog{Format: tc.format, Writer: &sink, IncludeQueryParameters: tc.query},
			})
			req, _ := http.NewRequest("GET", "http://"+addr(t, p, "127.0.0.1:0")+tc.path, nil)
			req.Host = "apple"
			req.Header.Set("User-Agent", "wharf-test")
			req.Header.Set("X-Request-Id", "req-7")
			req.Header.Set("X-Forwarded-For", "10.0.0.1")
			resp, err := client(t, tc.protocol).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			waitFor(t, "an access log line", func() bool { return len(sink.lines()) == 1 })
			line := sink.lines()[0]
			if tc.format == AccessLogText {
				if !regexp.MustCompile(tc.want).MatchString(line) {
					t.Errorf("line\n  %s\ndoes not match\n  %s", line, tc.want)
				}
				return
			}
			var e map[string]any
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("line %q is not JSON: %v", line, err)
			}
			want := map[string]any{
				"method": "GET", "path": "/fruit", "protocol": "HTTP/1.1", "response_code": float64(200),
				"response_flags": "-", "bytes_received": float64(0), "bytes_sent": float64(6),
				"user_agent": "wharf-test", "request_id": "req-7", "authority": "apple", "x_forwarded_for": "10.0.0.1",
			}
			for k, v := range want {
				if e[k] != v {
					t.Errorf("%s = %v, want %v (line %s)", k, e[k], v, line)
				}
			}
			if _, err := time.Parse(time.RFC3339, e["start_time"].(string)); err != nil {
				t.Errorf("start_time: %v", err)
			}
			if !strings.HasPrefix(fmt.Sprint(e["upstream_host"]), "127.0.0.1:") {
				t.Errorf("upstream_host %v", e["upstream_host"])
			}
		})
	}
}

// TestMetrics drives the Service Connect path and reads both proxies'
// worth of series: egress labelled by TargetDiscoveryName, ingress by
// DiscoveryName, both with the calling service and cluster.
func TestMetrics(t *testing.T) {
	app := newBackend(t, "app", false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/missing":
			w.WriteHeader(404)
		case "/broken":
			w.WriteHeader(500)
		case "/moved":
			w.WriteHeader(302)
		}
		w.Write([]byte("body\n"))
	}))
	p, front := proxyPath(t, 2, ProtocolHTTP, app.addr, func(c *Config) { c.Upstreams[0].Retries = ptr(0) })
	c := client(t, ProtocolHTTP)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, path := range []string{"/", "/", "/", "/missing", "/broken", "/moved"} {
		get(t, c, "http://"+front+path)
	}
	m := scrape(t, p)
	out := `{TargetDiscoveryName="apple",ServiceName="front",ClusterName="prod"}`
	in := `{DiscoveryName="apple",ServiceName="front",ClusterName="prod"}`
	for _, want := range []string{
		"# TYPE RequestCount counter",
		"RequestCount" + out + " 6",
		"RequestCount" + in + " 6",
		"HTTPCode_Target_2XX_Count" + out + " 3",
		"HTTPCode_Target_3XX_Count" + out + " 1",
		"HTTPCode_Target_4XX_Count" + out + " 1",
		"HTTPCode_Target_5XX_Count" + out + " 1",
		"TargetResponseTime_count" + out + " 6",
		"# TYPE TargetResponseTime histogram",
		`TargetResponseTime_bucket{TargetDiscoveryName="apple",ServiceName="front",ClusterName="prod",le="+Inf"} 6`,
		"NewConnectionCount" + out + " 1",
		"NewConnectionCount" + in + " 1",
		"ActiveConnectionCount" + out + " 1",
		"# TYPE ActiveConnectionCount gauge",
		"ClientTLSNegotiationErrorCount" + in + " 0",
		"TargetTLSNegotiationErrorCount" + out + " 0",
	} {
		if !strings.Contains(m, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	for _, unwanted := range []string{"HTTPCode_Target_2XX_Count" + in, "ClientTLSNegotiationErrorCount" + out, "GrpcRequestCount"} {
		if strings.Contains(m, unwanted) {
			t.Errorf("metrics have %q", unwanted)
		}
	}
	if !regexp.MustCompile(`ProcessedBytes\{TargetDiscoveryName="apple",ServiceName="front",ClusterName="prod"\} [1-9]\d+\n`).MatchString(m) {
		t.Errorf("ProcessedBytes not counted:\n%s", m)
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", m)
	}
}

func TestMetricsGRPC(t *testing.T) {
	_, app := startGRPC(t)
	p, front := proxyPath(t, 2, ProtocolGRPC, app, nil)
	conn := dialGRPC(t, front)
	for range 2 {
		if err := conn.Invoke(ctxTimeout(t, 10*time.Second), "/wharf.test.Echo/Unary", wrapperspb.String("x"), new(wrapperspb.StringValue)); err != nil {
			t.Fatal(err)
		}
	}
	m := scrape(t, p)
	for _, want := range []string{
		`GrpcRequestCount{TargetDiscoveryName="apple",ServiceName="front",ClusterName="prod"} 2`,
		`GrpcRequestCount{DiscoveryName="apple",ServiceName="front",ClusterName="prod"} 2`,
		`HTTPCode_Target_2XX_Count{TargetDiscoveryName="apple",ServiceName="front",ClusterName="prod"} 2`,
	} {
		if !strings.Contains(m, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
}
