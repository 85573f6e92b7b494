package proxy

import (
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Response flags, Envoy's spelling, in the access log.
const (
	flagNone            = ""
	flagNoHealthy       = "UH"  // no endpoint to send to
	flagConnectFailure  = "UF"  // connecting to the endpoint failed
	flagTimeout         = "UT"  // per-request timeout
	flagRetriesExceeded = "URX" // the last retry failed too
	flagUpstreamReset   = "UC"  // the endpoint closed or reset the connection
	flagDownstreamReset = "DC"  // the caller went away
	flagBadRequest      = "DPE" // the request could not be parsed
	flagUpstreamProto   = "UPE" // the response could not be parsed
	flagIdleTimeout     = "SI"  // stream idle timeout (TCP)
)

// accessLogger formats and writes access log lines; one per proxy config.
type accessLogger struct {
	mu    sync.Mutex
	w     io.Writer
	json  bool
	query bool
	buf   []byte
}

// configure takes a new configuration; lines already being written finish
// with the old one.
func (l *accessLogger) configure(a *AccessLog) {
	l.mu.Lock()
	l.w, l.json, l.query = a.Writer, a.Format == AccessLogJSON, a.IncludeQueryParameters
	l.mu.Unlock()
}

// logEntry is one request (or TCP connection). Byte slices point into
// buffers that stay valid until log returns.
type logEntry struct {
	start        time.Time
	method       []byte
	path         []byte
	protocol     string
	code         int
	flags        string
	received     int64 // body bytes received from the caller
	sent         int64 // body bytes sent to the caller
	duration     time.Duration
	upstreamTime time.Duration // -1: no upstream response
	xff          []byte
	userAgent    []byte
	requestID    []byte
	authority    []byte
	upstreamHost string
}

// log writes e. TEXT is Envoy's default format:
//
//	[START_TIME] "METHOD PATH PROTOCOL" CODE FLAGS RECEIVED SENT DURATION UPSTREAM_TIME "XFF" "USER-AGENT" "REQUEST-ID" "AUTHORITY" "UPSTREAM_HOST"
//
// JSON has the same fields under snake_case keys.
func (l *accessLogger) log(e *logEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	path := e.path
	if !l.query {
		for i, c := range path {
			if c == '?' {
				path = path[:i]
				break
			}
		}
	}
	b := l.buf[:0]
	if l.json {
		b = append(b, `{"start_time":"`...)
		b = e.start.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
		b = append(b, `","method":`...)
		b = appendJSONString(b, e.method)
		b = append(b, `,"path":`...)
		b = appendJSONString(b, path)
		b = append(b, `,"protocol":`...)
		b = appendJSONString(b, []byte(e.protocol))
		b = append(b, `,"response_code":`...)
		b = strconv.AppendInt(b, int64(e.code), 10)
		b = append(b, `,"response_flags":`...)
		b = appendJSONString(b, []byte(orDash(e.flags)))
		b = append(b, `,"bytes_received":`...)
		b = strconv.AppendInt(b, e.received, 10)
		b = append(b, `,"bytes_sent":`...)
		b = strconv.AppendInt(b, e.sent, 10)
		b = append(b, `,"duration":`...)
		b = strconv.AppendInt(b, e.duration.Milliseconds(), 10)
		b = append(b, `,"upstream_service_time":`...)
		if e.upstreamTime >= 0 {
			b = strconv.AppendInt(b, e.upstreamTime.Milliseconds(), 10)
		} else {
			b = append(b, "null"...)
		}
		b = append(b, `,"x_forwarded_for":`...)
		b = appendJSONString(b, e.xff)
		b = append(b, `,"user_agent":`...)
		b = appendJSONString(b, e.userAgent)
		b = append(b, `,"request_id":`...)
		b = appendJSONString(b, e.requestID)
		b = append(b, `,"authority":`...)
		b = appendJSONString(b, e.authority)
		b = append(b, `,"upstream_host":`...)
		b = appendJSONString(b, []byte(e.upstreamHost))
		b = append(b, "}\n"...)
	} else {
		b = append(b, '[')
		b = e.start.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
		b = append(b, `] "`...)
		b = appendText(b, e.method)
		b = append(b, ' ')
		b = appendText(b, path)
		b = append(b, ' ')
		b = append(b, orDash(e.protocol)...)
		b = append(b, `" `...)
		b = strconv.AppendInt(b, int64(e.code), 10)
		b = append(b, ' ')
		b = append(b, orDash(e.flags)...)
		b = append(b, ' ')
		b = strconv.AppendInt(b, e.received, 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, e.sent, 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, e.duration.Milliseconds(), 10)
		b = append(b, ' ')
		if e.upstreamTime >= 0 {
			b = strconv.AppendInt(b, e.upstreamTime.Milliseconds(), 10)
		} else {
			b = append(b, '-')
		}
		for _, v := range [...][]byte{e.xff, e.userAgent, e.requestID, e.authority, []byte(e.upstreamHost)} {
			b = append(b, ` "`...)
			b = appendText(b, v)
			b = append(b, '"')
		}
		b = append(b, '\n')
	}
	l.buf = b
	l.w.Write(b)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// appendText appends v for the text format: "-" when empty, control
// characters and quotes escaped so a line stays one line.
func appendText(b, v []byte) []byte {
	if len(v) == 0 {
		return append(b, '-')
	}
	for _, c := range v {
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c == 0x7f:
			b = append(b, `\x`...)
			b = append(b, hexDigits[c>>4], hexDigits[c&15])
		default:
			b = append(b, c)
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends v as a JSON string, null when empty.
func appendJSONString(b, v []byte) []byte {
	if len(v) == 0 {
		return append(b, "null"...)
	}
	b = append(b, '"')
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, `\u00`...)
				b = append(b, hexDigits[c>>4], hexDigits[c&15])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(v[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, v[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
