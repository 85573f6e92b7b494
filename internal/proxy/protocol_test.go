package proxy

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestH2C: HTTP/2 with prior knowledge on both sides, trailers and a
// response streamed in pieces.
func TestH2C(t *testing.T) {
	for _, hops := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d hops", hops), func(t *testing.T) {
			app := newBackend(t, "app", true, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Trailer", "X-Sum")
				w.Header().Set("X-Proto", r.Proto)
				body, _ := io.ReadAll(r.Body)
				rc := http.NewResponseController(w)
				for i := range 3 {
					fmt.Fprintf(w, "part %d of %q\n", i, body)
					rc.Flush()
				}
				w.Header().Set("X-Sum", strconv.Itoa(len(body)))
			}))
			_, front := proxyPath(t, hops, ProtocolHTTP2, app.addr, nil)
			c := client(t, ProtocolHTTP2)
			resp, err := c.Post("http://"+front+"/x", "text/plain", strings.NewReader("hello"))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.ProtoMajor != 2 || resp.Header.Get("X-Proto") != "HTTP/2.0" {
				t.Errorf("caller got %s, app saw %s; want HTTP/2 on both sides", resp.Proto, resp.Header.Get("X-Proto"))
			}
			want := "part 0 of \"hello\"\npart 1 of \"hello\"\npart 2 of \"hello\"\n"
			if string(body) != want {
				t.Errorf("body %q, want %q", body, want)
			}
			if got := resp.Trailer.Get("X-Sum"); got != "5" {
				t.Errorf("trailer X-Sum %q, want 5", got)
			}
		})
	}
}

// echoTCP starts a TCP echo server that half-closes after the caller does.
func echoTCP(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	return ln.Addr().String()
}

func TestTCPEcho(t *testing.T) {
	for _, hops := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d hops", hops), func(t *testing.T) {
			p, front := proxyPath(t, hops, ProtocolTCP, echoTCP(t), nil)
			c, err := net.Dial("tcp", front)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			payload := make([]byte, 1<<20)
			rand.Read(payload)
			errc := make(chan error, 1)
			go func() {
				_, err := c.Write(payload)
				c.(*net.TCPConn).CloseWrite()
				errc <- err
			}()
			got, err := io.ReadAll(c)
			if err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, payload) {
				t.Fatalf("echoed %d bytes, not the %d sent", len(got), len(payload))
			}
			m := scrape(t, p)
			for _, want := range []string{
				`NewConnectionCount{TargetDiscoveryName="apple",ServiceName=`,
				`ProcessedBytes{TargetDiscoveryName="apple"`,
			} {
				if !strings.Contains(m, want) {
					t.Errorf("metrics lack %s", want)
				}
			}
			if strings.Contains(m, "RequestCount{") {
				t.Errorf("a TCP service has no RequestCount:\n%s", m)
			}
		})
	}
}

// TestHTTP1Semantics sends requests of every framing through the Service
// Connect path (two proxies' worth of hops) and checks what arrives.
func TestHTTP1Semantics(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 10000) // 160 kB: streamed, not kept
	app := newBackend(t, "app", false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Got", fmt.Sprintf("%s %s %d te=%v conn=%q", r.Method, r.URL.RequestURI(), len(body), r.TransferEncoding, r.Header.Get("Connection")))
		switch r.URL.Path {
		case "/chunked":
			w.Write([]byte("a"))
			w.(http.Flusher).Flush()
			w.Write([]byte("b"))
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
		case "/big":
			w.Write([]byte(big))
		case "/echo":
			w.Write(body)
		default:
			w.Write([]byte("ok"))
		}
	}))
	_, front := proxyPath(t, 2, ProtocolHTTP, app.addr, nil)
	cases := []struct {
		name, raw  string
		wantStatus string
		wantGot    string // X-Got from the app
		wantBody   string
	}{
		{"GET", "GET /a?b=c HTTP/1.1\r\nHost: apple\r\n\r\n", "200", "GET /a?b=c 0 te=[] conn=\"\"", "ok"},
		{"POST with a body", "POST /echo HTTP/1.1\r\nHost: apple\r\nContent-Length: 5\r\n\r\nhello", "200", "POST /echo 5", "hello"},
		{"chunked request", "POST /echo HTTP/1.1\r\nHost: apple\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", "200", "POST /echo 5 te=[chunked]", "abcde"},
		{"chunked response", "GET /chunked HTTP/1.1\r\nHost: apple\r\n\r\n", "200", "GET /chunked 0", "ab"},
		{"HEAD", "HEAD /big HTTP/1.1\r\nHost: apple\r\n\r\n", "200", "HEAD /big 0", ""},
		{"204", "GET /nocontent HTTP/1.1\r\nHost: apple\r\n\r\n", "204", "GET /nocontent 0", ""},
		{"large response", "GET /big HTTP/1.1\r\nHost: apple\r\n\r\n", "200", "GET /big 0", big},
		{"large request", "POST /echo HTTP/1.1\r\nHost: apple\r\nContent-Length: " + strconv.Itoa(len(big)) + "\r\n\r\n" + big, "200", "POST /echo 160000", big},
		{"hop-by-hop headers are not forwarded", "GET / HTTP/1.1\r\nHost: apple\r\nConnection: X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 5\r\n\r\n", "200", `GET / 0 te=[] conn=""`, "ok"},
		{"HTTP/1.0", "GET / HTTP/1.0\r\nHost: apple\r\n\r\n", "200", "GET / 0", "ok"},
		{"HTTP/1.0 chunked response is unchunked", "GET /chunked HTTP/1.0\r\n\r\n", "200", "GET /chunked 0", "ab"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", front)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(c)
			// Twice on one connection: keep-alive works and the framing
			// left nothing behind (HTTP/1.0: once).
			rounds := 2
			if strings.Contains(tc.raw, "HTTP/1.0") {
				rounds = 1
			}
			for round := range rounds {
				if _, err := io.WriteString(c, tc.raw); err != nil {
					t.Fatal(err)
				}
				method := strings.Fields(tc.raw)[0]
				resp, err := http.ReadResponse(br, &http.Request{Method: method})
				if err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatalf("round %d: body: %v", round, err)
				}
				if strconv.Itoa(resp.StatusCode) != tc.wantStatus {
					t.Errorf("round %d: status %d, want %s", round, resp.StatusCode, tc.wantStatus)
				}
				if got := resp.Header.Get("X-Got"); !strings.HasPrefix(got, tc.wantGot) {
					t.Errorf("round %d: app got %q, want %q", round, got, tc.wantGot)
				}
				if string(body) != tc.wantBody {
					t.Errorf("round %d: body %.40q (%d bytes), want %.40q (%d bytes)", round, body, len(body), tc.wantBody, len(tc.wantBody))
				}
				if resp.Header.Get("Keep-Alive") != "" || resp.Header.Get("X-Secret") != "" {
					t.Errorf("round %d: hop-by-hop headers reached the caller: %v", round, resp.Header)
				}
			}
		})
	}
}

// TestHTTP1BadRequests: malformed or smuggling-prone requests are refused
// by the proxy, not forwarded.
func TestHTTP1BadRequests(t *testing.T) {
	app := newBackend(t, "app", false, nil)
	_, front := proxyPath(t, 1, ProtocolHTTP, app.addr, nil)
	cases := []struct{ name, raw, want string }{
		{"CL and TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400"},
		{"two lengths", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", "400"},
		{"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", "400"},
		{"folded header", "GET / HTTP/1.1\r\nHost: a\r\n  b\r\n\r\n", "400"},
		{"TE not chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", "400"},
		{"bad version", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", "400"},
		{"head too large", "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", 70000) + "\r\n\r\n", "431"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := rawRequest(t, front, tc.raw, 5*time.Second)
			if !strings.HasPrefix(out, "HTTP/1.1 "+tc.want+" ") {
				t.Errorf("got %.60q, want %s", out, tc.want)
			}
		})
	}
	if n := app.hits.Load(); n != 0 {
		t.Errorf("%d bad requests reached the app", n)
	}
}

// TestExpectContinueAndUpgrade: 100-continue is relayed, and a protocol
// switch (101) turns the connection into a tunnel.
func TestExpectContinueAndUpgrade(t *testing.T) {
	app := newBackend(t, "app", false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "echo" {
			c, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				panic(err)
			}
			defer c.Close()
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
			brw.Flush()
			line, _ := brw.ReadString('\n')
			brw.WriteString("echo " + line)
			brw.Flush()
			return
		}
		body, _ := io.ReadAll(r.Body)
		w.Write(body)
	}))
	_, front := proxyPath(t, 2, ProtocolHTTP, app.addr, nil)

	t.Run("expect 100-continue", func(t *testing.T) {
		c, err := net.Dial("tcp", front)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
		line, err := br.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
			t.Fatalf("got %q, %v; want 100 Continue before the body is sent", line, err)
		}
		br.ReadString('\n') // end of the interim head
		io.WriteString(c, "hello")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != "hello" {
			t.Errorf("got %d %q", resp.StatusCode, body)
		}
	})

	t.Run("upgrade", func(t *testing.T) {
		c, err := net.Dial("tcp", front)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 101 {
			t.Fatalf("status %d, want 101", resp.StatusCode)
		}
		io.WriteString(c, "ping\n")
		line, err := br.ReadString('\n')
		if err != nil || line != "echo ping\n" {
			t.Errorf("through the tunnel: %q, %v", line, err)
		}
	})
}
