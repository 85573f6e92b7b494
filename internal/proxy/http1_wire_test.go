package proxy

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestParseRequest(t *testing.T) {
	cases := []struct {
		name, head string
		ok         bool
		check      func(r *request) bool
	}{
		{"simple", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", true,
			func(r *request) bool {
				return string(r.method) == "GET" && r.contentLength == -1 && !r.close && !r.hop && string(r.host) == "a"
			}},
		{"LF only", "GET / HTTP/1.1\nHost: a\n\n", true, func(r *request) bool { return string(r.host) == "a" }},
		{"content length", "POST /x HTTP/1.1\r\nContent-Length: 12\r\n\r\n", true, func(r *request) bool { return r.contentLength == 12 }},
		{"same length twice", "POST /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", true, func(r *request) bool { return r.contentLength == 1 }},
		{"chunked", "POST /x HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", true, func(r *request) bool { return r.chunked }},
		{"close", "GET / HTTP/1.1\r\nConnection: Keep-Alive, close\r\n\r\n", true, func(r *request) bool { return r.close && r.hop }},
		{"1.0 closes", "GET / HTTP/1.0\r\n\r\n", true, func(r *request) bool { return r.close && r.minor == 0 }},
		{"1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true, func(r *request) bool { return !r.close }},
		{"upgrade", "GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", true, func(r *request) bool { return r.upgrade }},
		{"upgrade header alone", "GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", true, func(r *request) bool { return !r.upgrade && r.hop }},
		{"expect", "PUT / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n", true, func(r *request) bool { return r.expect }},
		{"log fields", "GET / HTTP/1.1\r\nUser-Agent: u\r\nX-Forwarded-For: 1.2.3.4\r\nX-Request-Id: r\r\n\r\n", true,
			func(r *request) bool {
				return string(r.ua) == "u" && string(r.xff) == "1.2.3.4" && string(r.requestID) == "r"
			}},
		{"idempotency key", "POST / HTTP/1.1\r\nIdempotency-Key: k\r\n\r\n", true, func(r *request) bool { return r.idempotencyKey }},
		{"CL and TE", "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", false, nil},
		{"two lengths", "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", false, nil},
		{"negative length", "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", false, nil},
		{"plus length", "POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n", false, nil},
		{"TE twice", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", false, nil},
		{"TE not last chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", false, nil},
		{"TE on 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", false, nil},
		{"space in name", "GET / HTTP/1.1\r\nHo st: a\r\n\r\n", false, nil},
		{"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", false, nil},
		{"folding", "GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", false, nil},
		{"control in value", "GET / HTTP/1.1\r\nA: b\x01c\r\n\r\n", false, nil},
		{"bare CR in value", "GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", false, nil},
		{"no colon", "GET / HTTP/1.1\r\nHost\r\n\r\n", false, nil},
		{"HTTP/2", "GET / HTTP/2.0\r\n\r\n", false, nil},
		{"no target", "GET HTTP/1.1\r\n\r\n", false, nil},
		{"space in target", "GET /a b HTTP/1.1\r\n\r\n", false, nil},
		{"bad method", "G(T / HTTP/1.1\r\n\r\n", false, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r request
			err := parseRequest([]byte(tc.head), &r)
			if (err == nil) != tc.ok {
				t.Fatalf("parse: %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && !tc.check(&r) {
				t.Errorf("parsed %+v", r)
			}
		})
	}
}

func TestParseResponse(t *testing.T) {
	cases := []struct {
		name, head string
		ok         bool
		check      func(r *response) bool
	}{
		{"ok", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, func(r *response) bool { return r.status == 200 && r.contentLength == 5 }},
		{"no reason", "HTTP/1.1 204\r\n\r\n", true, func(r *response) bool { return r.status == 204 }},
		{"chunked beats length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", true,
			func(r *response) bool { return r.chunked && r.contentLength == -1 }},
		{"other coding: until close", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", true, func(r *response) bool { return r.otherTE }},
		{"close", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", true, func(r *response) bool { return r.close && r.hop }},
		{"1.0 closes", "HTTP/1.0 200 OK\r\n\r\n", true, func(r *response) bool { return r.close }},
		{"bad status", "HTTP/1.1 2x0 OK\r\n\r\n", false, nil},
		{"status 600", "HTTP/1.1 600 X\r\n\r\n", false, nil},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", false, nil},
		{"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", false, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r response
			err := parseResponse([]byte(tc.head), &r)
			if (err == nil) != tc.ok {
				t.Fatalf("parse: %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && !tc.check(&r) {
				t.Errorf("parsed %+v", r)
			}
		})
	}
}

func TestReadHead(t *testing.T) {
	// A head split over many small reads, preceded by empty lines, and
	// followed by the next message.
	in := "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\nNEXT"
	var r connReader
	r.reset(iotestOneByte(strings.NewReader(in)), 8)
	head, err := r.readHead(1024)
	if err != nil {
		t.Fatal(err)
	}
	if string(head) != "GET / HTTP/1.1\r\nHost: a\r\n\r\n" {
		t.Fatalf("head %q", head)
	}
	r.discard(len(head))
	if _, err := r.readHead(1024); err != io.ErrUnexpectedEOF {
		t.Fatalf("after the head: %v, want unexpected EOF", err)
	}
	r.reset(strings.NewReader("GET / HTTP/1.1\r\nX: "+strings.Repeat("a", 100)+"\r\n\r\n"), 16)
	if _, err := r.readHead(64); err != errHeadTooLarge {
		t.Fatalf("long head: %v, want errHeadTooLarge", err)
	}
}

func TestCopyChunked(t *testing.T) {
	in := "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\nREST"
	for _, strip := range []bool{false, true} {
		var r connReader
		r.reset(iotestOneByte(strings.NewReader(in)), 16)
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		n, err := copyChunked(w, &r, strip)
		w.Flush()
		if err != nil || n != 11 {
			t.Fatalf("strip=%v: %d bytes, %v", strip, n, err)
		}
		want := strings.TrimSuffix(in, "REST")
		if strip {
			want = "hello world"
		}
		if out.String() != want {
			t.Errorf("strip=%v: copied %q, want %q", strip, out.String(), want)
		}
		if string(r.bytes()) != "R" && string(r.bytes()) != "" && !strings.HasPrefix("REST", string(r.bytes())) {
			t.Errorf("strip=%v: left %q buffered", strip, r.bytes())
		}
	}
	for _, bad := range []string{"x\r\n", "5\r\nhelloXX", "fffffffffffffffff\r\n"} {
		var r connReader
		r.reset(strings.NewReader(bad), 64)
		w := bufio.NewWriter(io.Discard)
		if _, err := copyChunked(w, &r, false); err == nil {
			t.Errorf("%q: copied without error", bad)
		}
	}
}

func TestRewriteHead(t *testing.T) {
	head := "GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-Private\r\nX-Private: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\nX-Keep: 2\r\n\r\n"
	var r request
	if err := parseRequest([]byte(head), &r); err != nil {
		t.Fatal(err)
	}
	got := string(rewriteHead(nil, []byte(head), r.connection[:r.nconn], false, "Connection: close\r\n"))
	want := "GET / HTTP/1.1\r\nHost: a\r\nX-Keep: 2\r\nConnection: close\r\n\r\n"
	if got != want {
		t.Errorf("rewritten\n%q\nwant\n%q", got, want)
	}
	if got := string(dropHeader([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nA: b\r\n\r\n"), "transfer-encoding")); got != "HTTP/1.1 200 OK\r\nA: b\r\n\r\n" {
		t.Errorf("dropHeader: %q", got)
	}
}

// oneByteReader returns one byte per Read, the worst case for parsers.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

func iotestOneByte(r io.Reader) io.Reader { return oneByteReader{r} }

func FuzzParseRequest(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
	f.Add([]byte("POST /x HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\nConnection: close, foo\r\n\r\n"))
	f.Add([]byte("\r\n\nGET / HTTP/1.0\nConnection: keep-alive\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r connReader
		r.reset(bytes.NewReader(data), 16)
		head, err := r.readHead(4096)
		if err != nil {
			return
		}
		var req request
		if parseRequest(head, &req) != nil {
			return
		}
		if req.chunked && req.contentLength >= 0 {
			t.Fatalf("both chunked and a length: %q", head)
		}
		out := rewriteHead(nil, head, req.connection[:req.nconn], req.upgrade, "")
		var again request
		if err := parseRequest(out, &again); err != nil {
			t.Fatalf("rewritten head does not parse: %v\n%q\n%q", err, head, out)
		}
		if again.contentLength != req.contentLength || again.chunked != req.chunked {
			t.Fatalf("rewriting changed the framing: %q -> %q", head, out)
		}
	})
}

func FuzzParseResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"))
	f.Add([]byte("HTTP/1.0 101 Switching\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r response
		if parseResponse(data, &r) == nil && (r.status < 100 || r.status > 599) {
			t.Fatalf("status %d from %q", r.status, data)
		}
	})
}

func FuzzCopyChunked(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\n"))
	f.Add([]byte("1;a=b\r\nx\r\n0\r\nT: 1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r connReader
		r.reset(iotestOneByte(bytes.NewReader(data)), 8)
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		n, err := copyChunked(w, &r, false)
		w.Flush()
		if err == nil && !bytes.HasPrefix(data, out.Bytes()) {
			t.Fatalf("verbatim copy differs: %q -> %q", data, out.Bytes())
		}
		if n < 0 || n > int64(len(data)) {
			t.Fatalf("%d data bytes from %d input bytes", n, len(data))
		}
	})
}
