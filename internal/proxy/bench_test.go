package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
)

// BenchmarkHTTP1 measures one keep-alive request through a one-hop proxy
// to an in-process backend; allocs/op is the proxy's and the client's
// (the raw client allocates nothing per request) plus the backend's.
// go run ./bench/proxy measures the proxy as its own process.
func BenchmarkHTTP1(b *testing.B) {
	for _, tc := range []struct {
		name string
		log  bool
	}{{"plain", false}, {"access-log", true}} {
		b.Run(tc.name, func(b *testing.B) {
			body := []byte("hello, world\n")
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header()["Content-Length"] = []string{"13"}
				w.Write(body)
			})}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			go srv.Serve(ln)
			defer srv.Close()
			cfg := Config{
				Listeners: []Listener{{Address: "127.0.0.1:0", Upstream: "app"}},
				Upstreams: []Upstream{{Name: "app", Protocol: ProtocolHTTP, Endpoints: []Endpoint{{Address: ln.Addr().String()}}}},
			}
			if tc.log {
				cfg.AccessLog = &AccessLog{Format: AccessLogText, Writer: io.Discard}
			}
			p := New(nil)
			if err := p.Apply(cfg); err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			c, err := net.Dial("tcp", p.Addr("127.0.0.1:0").String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			req := []byte("GET / HTTP/1.1\r\nHost: app\r\n\r\n")
			br := bufio.NewReader(c)
			buf := make([]byte, 4096)
			roundTrip := func() {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				// The response is small: read until the body's last byte.
				n := 0
				for n == 0 || buf[n-1] != '\n' || n < 20 {
					m, err := br.Read(buf[n:])
					if err != nil {
						b.Fatal(err)
					}
					n += m
				}
			}
			for range 100 {
				roundTrip()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				roundTrip()
			}
		})
	}
}
