package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// The HTTP/1.1 data path does not use net/http: it forwards request and
// response heads as bytes, parsing only what framing, connection handling,
// retries and logs need, and reuses every buffer. This file has the wire
// format: a buffered reader whose buffer can be inspected, head parsing and
// body copying.

var (
	errHeadTooLarge = errors.New("head too large")
	errLineTooLong  = errors.New("line too long")
	errMalformed    = errors.New("malformed message")
)

// connReader buffers reads from a connection and exposes the buffer, so
// heads are parsed in place and bodies copied from it without a second
// buffer.
type connReader struct {
	rd   io.Reader
	buf  []byte
	r, w int

	// With conn set, the reader enforces a read deadline of its own (see
	// setDeadline) and moves conn's deadline only when needed: once per
	// timeout period rather than once per request.
	conn net.Conn
	soft atomic.Int64 // mono time reads fail after; 0: never
	hard atomic.Int64 // mono time of conn's read deadline; 0: none
}

// setDeadline makes reads fail after mono time at (0: never). conn's own
// deadline is moved only when it would fire too late; when it fires early
// fill moves it on.
func (b *connReader) setDeadline(at int64) {
	b.soft.Store(at)
	if at == 0 {
		return // a pending deadline fires, and fill clears it
	}
	if h := b.hard.Load(); h == 0 || h > at {
		b.conn.SetReadDeadline(time.Now().Add(time.Duration(at - mono())))
		b.hard.Store(at)
	}
}

// rearm handles an expired deadline of conn: true if the reader's own
// deadline has not passed, so the read goes on.
func (b *connReader) rearm() bool {
	soft := b.soft.Load()
	if soft == 0 {
		b.conn.SetReadDeadline(time.Time{})
		b.hard.Store(0)
		return true
	}
	if left := soft - mono(); left > 0 {
		b.conn.SetReadDeadline(time.Now().Add(time.Duration(left)))
		b.hard.Store(soft)
		return true
	}
	return false
}

func (b *connReader) reset(rd io.Reader, size int) {
	b.rd = rd
	if cap(b.buf) < size {
		b.buf = make([]byte, size)
	}
	b.buf = b.buf[:cap(b.buf)]
	b.r, b.w = 0, 0
}

func (b *connReader) buffered() int { return b.w - b.r }

func (b *connReader) bytes() []byte { return b.buf[b.r:b.w] }

// fill reads once more from the connection, making room first.
func (b *connReader) fill() error {
	if b.r == b.w {
		b.r, b.w = 0, 0
	} else if b.w == len(b.buf) && b.r > 0 {
		b.w = copy(b.buf, b.buf[b.r:b.w])
		b.r = 0
	}
	if b.w == len(b.buf) {
		return errHeadTooLarge
	}
	for range 100 {
		n, err := b.rd.Read(b.buf[b.w:])
		b.w += n
		if n > 0 {
			return nil
		}
		if err != nil {
			if b.conn != nil && isTimeout(err) && b.rearm() {
				continue
			}
			return err
		}
	}
	return io.ErrNoProgress
}

// grow makes room for a head or line longer than the buffer, up to max.
func (b *connReader) grow(limit int) error {
	if b.w-b.r >= limit {
		return errHeadTooLarge
	}
	if b.r > 0 {
		b.w = copy(b.buf, b.buf[b.r:b.w])
		b.r = 0
		return nil
	}
	if b.w < len(b.buf) {
		return nil
	}
	n := min(2*len(b.buf), limit+4)
	nb := make([]byte, n)
	copy(nb, b.buf[:b.w])
	b.buf = nb
	return nil
}

// readHead returns the next message head, up to and including the empty
// line, as a slice of the buffer (valid until the next read); the caller
// consumes it with discard. Empty lines before the head are skipped.
func (b *connReader) readHead(limit int) ([]byte, error) {
	scan := 0
	for {
		if scan == 0 {
			for b.r < b.w && (b.buf[b.r] == '\r' || b.buf[b.r] == '\n') {
				b.r++
			}
		}
		p := b.buf[b.r:b.w]
		if end := headEnd(p, scan); end > 0 {
			return p[:end], nil
		}
		scan = max(0, len(p)-3)
		if len(p) >= limit {
			return nil, errHeadTooLarge
		}
		if b.w == len(b.buf) {
			if err := b.grow(limit); err != nil {
				return nil, err
			}
		}
		if err := b.fill(); err != nil {
			if err == io.EOF && b.w > b.r {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

// headEnd returns the length of the head at the start of p (through its
// empty line), or 0 when p does not hold a whole head yet.
func headEnd(p []byte, from int) int {
	for i := from; i < len(p); {
		j := bytes.IndexByte(p[i:], '\n')
		if j < 0 {
			return 0
		}
		i += j
		if i+1 < len(p) && p[i+1] == '\n' {
			return i + 2
		}
		if i+2 < len(p) && p[i+1] == '\r' && p[i+2] == '\n' {
			return i + 3
		}
		if i+2 >= len(p) {
			return 0
		}
		i++
	}
	return 0
}

// readLine returns the next line including its '\n', for chunk sizes and
// trailers.
func (b *connReader) readLine(limit int) ([]byte, error) {
	scan := 0
	for {
		p := b.buf[b.r:b.w]
		if i := bytes.IndexByte(p[scan:], '\n'); i >= 0 {
			return p[:scan+i+1], nil
		}
		scan = len(p)
		if len(p) >= limit {
			return nil, errLineTooLong
		}
		if b.w == len(b.buf) {
			if err := b.grow(limit); err != nil {
				return nil, errLineTooLong
			}
		}
		if err := b.fill(); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

func (b *connReader) discard(n int) { b.r += n }

// request is what the proxy needs to know of a request head. Slices point
// into the head they were parsed from.
type request struct {
	method, target []byte
	minor          byte  // HTTP/1.minor
	contentLength  int64 // -1: none
	chunked        bool
	close          bool // the caller wants the connection closed after
	keepAlive      bool // HTTP/1.0 caller asked for keep-alive
	upgrade        bool // Connection: upgrade with an Upgrade header
	expect         bool // Expect: 100-continue
	hop            bool // has hop-by-hop headers to remove before forwarding
	idempotencyKey bool
	host, ua, xff  []byte
	requestID      []byte
	connection     [4][]byte // Connection header values, for hop-by-hop removal
	nconn          int
}

// response is what the proxy needs to know of a response head.
type response struct {
	status        int
	minor         byte
	contentLength int64
	chunked       bool
	otherTE       bool // a transfer coding other than chunked last: body until close
	close         bool
	hop           bool
	connection    [4][]byte
	nconn         int
}

func isTokenChar(c byte) bool {
	return c > 0x20 && c < 0x7f && !bytes.ContainsRune([]byte(`"(),/:;<=>?@[\]{}`), rune(c))
}

// tokenTable marks RFC 9110 token characters.
var tokenTable = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = isTokenChar(byte(c))
	}
	return t
}()

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// equalFold reports whether b equals the lower-case ASCII s, ignoring case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if lower(b[i]) != s[i] {
			return false
		}
	}
	return true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// headerLine splits one header line (without its line ending) into name
// and value, rejecting what request smuggling relies on: whitespace before
// the colon, obsolete line folding, non-token names, control characters.
func headerLine(line []byte) (name, value []byte, err error) {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return nil, nil, errMalformed
	}
	name = line[:i]
	for _, c := range name {
		if !tokenTable[c] {
			return nil, nil, errMalformed
		}
	}
	value = trimOWS(line[i+1:])
	for _, c := range value {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return nil, nil, errMalformed
		}
	}
	return name, value, nil
}

// nextLine returns the first line of p without its line ending, and the
// rest.
func nextLine(p []byte) (line, rest []byte) {
	i := bytes.IndexByte(p, '\n')
	if i < 0 {
		return p, nil
	}
	line, rest = p[:i], p[i+1:]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, rest
}

func parseContentLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// lastCodingChunked reports whether a Transfer-Encoding value ends with
// chunked.
func lastCodingChunked(v []byte) bool {
	if i := bytes.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return equalFold(trimOWS(v), "chunked")
}

// forEachToken calls f with each comma-separated token of v.
func forEachToken(v []byte, f func(tok []byte)) {
	for len(v) > 0 {
		var tok []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			tok, v = v, nil
		}
		if tok = trimOWS(tok); len(tok) > 0 {
			f(tok)
		}
	}
}

// hopHeader reports whether a header is hop-by-hop: never forwarded as is.
// Transfer-Encoding is not among them here: bodies are forwarded with their
// framing, so it stays true.
func hopHeader(name []byte) bool {
	switch len(name) {
	case 2:
		return equalFold(name, "te")
	case 7:
		return equalFold(name, "trailer") || equalFold(name, "upgrade")
	case 10:
		return equalFold(name, "connection") || equalFold(name, "keep-alive")
	case 16:
		return equalFold(name, "proxy-connection")
	}
	return false
}

func parseVersion(v []byte) (minor byte, ok bool) {
	if len(v) != 8 || string(v[:7]) != "HTTP/1." || v[7] < '0' || v[7] > '9' {
		return 0, false
	}
	return v[7] - '0', true
}

// parseRequest parses a request head.
func parseRequest(head []byte, req *request) error {
	*req = request{contentLength: -1}
	line, rest := nextLine(head)
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return errMalformed
	}
	req.method = line[:sp1]
	for _, c := range req.method {
		if !tokenTable[c] {
			return errMalformed
		}
	}
	line = line[sp1+1:]
	sp2 := bytes.LastIndexByte(line, ' ')
	if sp2 <= 0 {
		return errMalformed
	}
	req.target = line[:sp2]
	if bytes.IndexByte(req.target, ' ') >= 0 {
		return errMalformed
	}
	minor, ok := parseVersion(line[sp2+1:])
	if !ok {
		return errMalformed
	}
	req.minor = minor
	var te []byte
	sawCL := false
	for len(rest) > 0 {
		line, rest = nextLine(rest)
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return errMalformed // obsolete line folding
		}
		name, value, err := headerLine(line)
		if err != nil {
			return err
		}
		switch len(name) {
		case 2:
			if equalFold(name, "te") {
				req.hop = true
			}
		case 4:
			if equalFold(name, "host") {
				req.host = value
			}
		case 6:
			if equalFold(name, "expect") && equalFold(value, "100-continue") {
				req.expect = true
			}
		case 7:
			if equalFold(name, "upgrade") {
				req.upgrade = true
				req.hop = true
			} else if equalFold(name, "trailer") {
				req.hop = true
			}
		case 10:
			if equalFold(name, "connection") {
				req.hop = true
				if req.nconn < len(req.connection) {
					req.connection[req.nconn] = value
					req.nconn++
				}
			} else if equalFold(name, "keep-alive") {
				req.hop = true
			} else if equalFold(name, "user-agent") {
				req.ua = value
			}
		case 12:
			if equalFold(name, "x-request-id") {
				req.requestID = value
			}
		case 14:
			if equalFold(name, "content-length") {
				n, ok := parseContentLength(value)
				if !ok || sawCL && n != req.contentLength {
					return errMalformed
				}
				req.contentLength, sawCL = n, true
			}
		case 15:
			if equalFold(name, "x-forwarded-for") {
				req.xff = value
			} else if equalFold(name, "idempotency-key") {
				req.idempotencyKey = true
			}
		case 16:
			if equalFold(name, "proxy-connection") {
				req.hop = true
			}
		case 17:
			if equalFold(name, "transfer-encoding") {
				if te != nil {
					return errMalformed
				}
				te = value
			}
		}
	}
	if te != nil {
		// RFC 9112 6.1: a request with a transfer coding other than chunked
		// last cannot be framed; with Content-Length too, it is smuggling.
		if sawCL || !lastCodingChunked(te) || req.minor == 0 {
			return errMalformed
		}
		req.chunked = true
	}
	upgradeToken := false
	for i := 0; i < req.nconn; i++ {
		forEachToken(req.connection[i], func(tok []byte) {
			switch {
			case equalFold(tok, "close"):
				req.close = true
			case equalFold(tok, "keep-alive"):
				req.keepAlive = true
			case equalFold(tok, "upgrade"):
				upgradeToken = true
			}
		})
	}
	req.upgrade = req.upgrade && upgradeToken
	if req.minor == 0 && !req.keepAlive {
		req.close = true
	}
	return nil
}

// parseResponse parses a response head.
func parseResponse(head []byte, resp *response) error {
	*resp = response{contentLength: -1}
	line, rest := nextLine(head)
	if len(line) < 12 || line[8] != ' ' {
		return errMalformed
	}
	minor, ok := parseVersion(line[:8])
	if !ok {
		return errMalformed
	}
	resp.minor = minor
	code := line[9:12]
	if code[0] < '1' || code[0] > '5' || code[1] < '0' || code[1] > '9' || code[2] < '0' || code[2] > '9' || len(line) > 12 && line[12] != ' ' {
		return errMalformed
	}
	resp.status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	var te []byte
	sawCL := false
	for len(rest) > 0 {
		line, rest = nextLine(rest)
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return errMalformed
		}
		name, value, err := headerLine(line)
		if err != nil {
			return err
		}
		switch {
		case len(name) == 14 && equalFold(name, "content-length"):
			n, ok := parseContentLength(value)
			if !ok || sawCL && n != resp.contentLength {
				return errMalformed
			}
			resp.contentLength, sawCL = n, true
		case len(name) == 17 && equalFold(name, "transfer-encoding"):
			if te != nil {
				return errMalformed
			}
			te = value
		case len(name) == 10 && equalFold(name, "connection"):
			resp.hop = true
			if resp.nconn < len(resp.connection) {
				resp.connection[resp.nconn] = value
				resp.nconn++
			}
			forEachToken(value, func(tok []byte) {
				if equalFold(tok, "close") {
					resp.close = true
				}
			})
		case hopHeader(name):
			resp.hop = true
		}
	}
	if te != nil {
		// RFC 9112 6.3: Transfer-Encoding overrides Content-Length.
		resp.contentLength = -1
		if lastCodingChunked(te) {
			resp.chunked = true
		} else {
			resp.otherTE = true
		}
	}
	if resp.minor == 0 {
		resp.close = true
	}
	return nil
}

// bodyless reports whether a response to method with status has no body.
func bodyless(method []byte, status int) bool {
	return status < 200 || status == 204 || status == 304 || string(method) == "HEAD"
}

// rewriteHead appends head to dst without its hop-by-hop headers (and
// those the Connection header names); keepUpgrade keeps Connection and
// Upgrade for a protocol switch. extra is added before the empty line.
func rewriteHead(dst, head []byte, conn [][]byte, keepUpgrade bool, extra string) []byte {
	line, rest := nextLine(head)
	dst = append(dst, line...)
	dst = append(dst, '\r', '\n')
	for len(rest) > 0 {
		line, rest = nextLine(rest)
		if len(line) == 0 {
			break
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 {
			continue
		}
		name := line[:i]
		if hopHeader(name) {
			if !keepUpgrade || !(equalFold(name, "connection") || equalFold(name, "upgrade")) {
				continue
			}
		} else if namedIn(name, conn) {
			continue
		}
		dst = append(dst, line...)
		dst = append(dst, '\r', '\n')
	}
	dst = append(dst, extra...)
	return append(dst, '\r', '\n')
}

// namedIn reports whether a Connection header value lists name.
func namedIn(name []byte, conn [][]byte) bool {
	found := false
	for _, v := range conn {
		forEachToken(v, func(tok []byte) {
			if len(tok) == len(name) && bytes.EqualFold(tok, name) {
				found = true
			}
		})
	}
	return found
}

// copyN copies n body bytes from src to dst, flushing dst before it would
// wait for src.
func copyN(dst *bufio.Writer, src *connReader, n int64) (int64, error) {
	var done int64
	for done < n {
		if src.buffered() == 0 {
			if dst.Buffered() > 0 {
				if err := dst.Flush(); err != nil {
					return done, downstreamError{err}
				}
			}
			if err := src.fill(); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return done, err
			}
		}
		m := int64(src.buffered())
		if m > n-done {
			m = n - done
		}
		if _, err := dst.Write(src.buf[src.r : src.r+int(m)]); err != nil {
			return done, downstreamError{err}
		}
		src.r += int(m)
		done += m
	}
	return done, nil
}

// copyUntilEOF copies a body delimited by the end of the connection.
func copyUntilEOF(dst *bufio.Writer, src *connReader) (int64, error) {
	var done int64
	for {
		if src.buffered() > 0 {
			n, err := dst.Write(src.bytes())
			src.r += n
			done += int64(n)
			if err != nil {
				return done, downstreamError{err}
			}
		}
		if dst.Buffered() > 0 {
			if err := dst.Flush(); err != nil {
				return done, downstreamError{err}
			}
		}
		if err := src.fill(); err != nil {
			if err == io.EOF {
				return done, nil
			}
			return done, err
		}
	}
}

// copyChunked copies a chunked body; with strip, only the data (for an
// HTTP/1.0 caller, who is sent a body delimited by the connection's end).
// It returns the data bytes copied.
func copyChunked(dst *bufio.Writer, src *connReader, strip bool) (int64, error) {
	var done int64
	for {
		if src.buffered() == 0 && dst.Buffered() > 0 {
			if err := dst.Flush(); err != nil {
				return done, downstreamError{err}
			}
		}
		line, err := src.readLine(4096)
		if err != nil {
			return done, err
		}
		size, ok := parseChunkSize(line)
		if !ok {
			return done, errMalformed
		}
		if !strip {
			if _, err := dst.Write(line); err != nil {
				return done, downstreamError{err}
			}
		}
		src.discard(len(line))
		if size == 0 {
			// Trailer section, up to an empty line.
			for {
				line, err := src.readLine(maxHeadBytes)
				if err != nil {
					return done, err
				}
				if !strip {
					if _, err := dst.Write(line); err != nil {
						return done, downstreamError{err}
					}
				}
				src.discard(len(line))
				if len(line) <= 2 && (len(line) == 1 || line[0] == '\r') {
					return done, nil
				}
			}
		}
		n, err := copyN(dst, src, size)
		done += n
		if err != nil {
			return done, err
		}
		line, err = src.readLine(16)
		if err != nil {
			return done, err
		}
		if !(len(line) == 1 || len(line) == 2 && line[0] == '\r') {
			return done, errMalformed
		}
		if !strip {
			if _, err := dst.Write(line); err != nil {
				return done, downstreamError{err}
			}
		}
		src.discard(len(line))
	}
}

func parseChunkSize(line []byte) (int64, bool) {
	var n int64
	digits := 0
	for _, c := range line {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		case c == ';' || c == ' ' || c == '\t' || c == '\r' || c == '\n':
			return n, digits > 0
		default:
			return 0, false
		}
		if digits == 15 {
			return 0, false
		}
		n = n<<4 | int64(d)
		digits++
	}
	return 0, false
}

// downstreamError marks a failure writing to the caller, so that it is not
// blamed on the endpoint.
type downstreamError struct{ err error }

func (e downstreamError) Error() string { return "write to caller: " + e.err.Error() }
func (e downstreamError) Unwrap() error { return e.err }

// isTimeout reports whether err is a deadline expiry.
func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
