package proxy

import (
	"bufio"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// stats are the counters of one traffic direction of one service: an
// ingress (labelled DiscoveryName) or an upstream as seen by callers
// (labelled TargetDiscoveryName). They live as long as the proxy, across
// Apply calls, so counters never go back.
type stats struct {
	ingress  bool
	name     string
	protocol atomic.Pointer[string] // as of the last Apply

	newConns    atomic.Int64
	activeConns atomic.Int64
	bytes       atomic.Int64 // ProcessedBytes: received plus sent, heads included
	requests    atomic.Int64
	grpc        atomic.Int64
	codes       [4]atomic.Int64 // target responses 2xx, 3xx, 4xx, 5xx
	tlsErrors   atomic.Int64    // Client (ingress) / Target (egress) TLS negotiation errors
	rt          histogram       // TargetResponseTime

	retries   atomic.Int64
	ejections atomic.Int64
	local     [len(localCodes)]atomic.Int64 // replies the proxy made itself
}

// localCodes are the statuses the proxy answers with itself.
var localCodes = [...]int{400, 431, 502, 503, 504}

func (s *stats) countLocal(code int) {
	for i, c := range localCodes {
		if c == code {
			s.local[i].Add(1)
			return
		}
	}
}

func (s *stats) countTarget(code int) {
	if i := code/100 - 2; i >= 0 && i < len(s.codes) {
		s.codes[i].Add(1)
	}
}

// bucketsMs are TargetResponseTime's histogram bounds in milliseconds (the
// CloudWatch metric's unit).
var bucketsMs = [...]float64{0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000}

var bucketsNs = func() (b [len(bucketsMs)]int64) {
	for i, ms := range bucketsMs {
		b[i] = int64(ms * float64(time.Millisecond))
	}
	return b
}()

type histogram struct {
	counts [len(bucketsMs) + 1]atomic.Int64
	sumNs  atomic.Int64
}

func (h *histogram) observe(d time.Duration) {
	ns := int64(d)
	i := 0
	for i < len(bucketsNs) && ns > bucketsNs[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNs.Add(ns)
}

type statsKey struct {
	ingress bool
	name    string
}

// statsFor returns the stats of a direction and name, creating them.
func (p *Proxy) statsFor(ingress bool, name, protocol string) *stats {
	p.statsMu.Lock()
	defer p.statsMu.Unlock()
	k := statsKey{ingress, name}
	s := p.stats[k]
	if s == nil {
		s = &stats{ingress: ingress, name: name}
		p.stats[k] = s
	}
	s.protocol.Store(&protocol)
	return s
}

// Metrics serves the proxy's metrics in the Prometheus text format, with
// ECS Service Connect's metric names and dimensions as labels: inbound
// series carry DiscoveryName, outbound series TargetDiscoveryName, both
// ServiceName and ClusterName (the calling service for outbound series).
// ECS publishes each metric with {DiscoveryName} and {DiscoveryName,
// ServiceName, ClusterName}; both are sums over these series.
func (p *Proxy) Metrics() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		p.WriteMetrics(w)
	})
}

// WriteMetrics writes what Metrics serves.
func (p *Proxy) WriteMetrics(w io.Writer) error {
	bw := bufio.NewWriter(w)
	p.writeMetrics(bw)
	return bw.Flush()
}

type family struct {
	name, typ, help string
	ingress, egress bool
	l7, grpc        bool // only for HTTP/gRPC (grpc: gRPC only) services
	value           func(s *stats) int64
	extra           string // extra label, e.g. code
	hist            bool
	perLocal        bool
}

var families = []family{
	{name: "RequestCount", typ: "counter", help: "Requests processed by the proxy.", ingress: true, egress: true, l7: true,
		value: func(s *stats) int64 { return s.requests.Load() }},
	{name: "GrpcRequestCount", typ: "counter", help: "gRPC requests processed by the proxy.", ingress: true, egress: true, grpc: true,
		value: func(s *stats) int64 { return s.grpc.Load() }},
	{name: "NewConnectionCount", typ: "counter", help: "Connections accepted by the proxy's listeners.", ingress: true, egress: true,
		value: func(s *stats) int64 { return s.newConns.Load() }},
	{name: "ActiveConnectionCount", typ: "gauge", help: "Connections open on the proxy's listeners.", ingress: true, egress: true,
		value: func(s *stats) int64 { return s.activeConns.Load() }},
	{name: "ProcessedBytes", typ: "counter", help: "Bytes received and sent by the proxy's listeners, heads included.", ingress: true, egress: true,
		value: func(s *stats) int64 { return s.bytes.Load() }},
	{name: "HTTPCode_Target_2XX_Count", typ: "counter", help: "Responses 200-299 from the targets.", egress: true, l7: true,
		value: func(s *stats) int64 { return s.codes[0].Load() }},
	{name: "HTTPCode_Target_3XX_Count", typ: "counter", help: "Responses 300-399 from the targets.", egress: true, l7: true,
		value: func(s *stats) int64 { return s.codes[1].Load() }},
	{name: "HTTPCode_Target_4XX_Count", typ: "counter", help: "Responses 400-499 from the targets.", egress: true, l7: true,
		value: func(s *stats) int64 { return s.codes[2].Load() }},
	{name: "HTTPCode_Target_5XX_Count", typ: "counter", help: "Responses 500-599 from the targets.", egress: true, l7: true,
		value: func(s *stats) int64 { return s.codes[3].Load() }},
	{name: "TargetResponseTime", typ: "histogram", help: "Milliseconds from sending a request to a target until its response head arrived.", egress: true, l7: true, hist: true},
	{name: "ClientTLSNegotiationErrorCount", typ: "counter", help: "Failed TLS handshakes with callers.", ingress: true,
		value: func(s *stats) int64 { return s.tlsErrors.Load() }},
	{name: "TargetTLSNegotiationErrorCount", typ: "counter", help: "Failed TLS handshakes with targets.", egress: true,
		value: func(s *stats) int64 { return s.tlsErrors.Load() }},
	{name: "wharf_proxy_retries_total", typ: "counter", help: "Requests or connections sent again after a failure.", egress: true,
		value: func(s *stats) int64 { return s.retries.Load() }},
	{name: "wharf_proxy_outlier_ejections_total", typ: "counter", help: "Endpoints ejected by outlier detection.", egress: true,
		value: func(s *stats) int64 { return s.ejections.Load() }},
	{name: "wharf_proxy_local_replies_total", typ: "counter", help: "Responses the proxy made itself, by status (503: no healthy endpoint or connection failure, 504: per-request timeout).", ingress: true, egress: true, l7: true, perLocal: true},
}

func (p *Proxy) writeMetrics(w *bufio.Writer) {
	p.statsMu.Lock()
	all := make([]*stats, 0, len(p.stats))
	for _, s := range p.stats {
		all = append(all, s)
	}
	p.statsMu.Unlock()
	slices.SortFunc(all, func(a, b *stats) int {
		if a.ingress != b.ingress {
			if a.ingress {
				return -1
			}
			return 1
		}
		return strings.Compare(a.name, b.name)
	})
	meta := p.meta.Load()
	var buf []byte
	for _, f := range families {
		header := false
		for _, s := range all {
			if s.ingress && !f.ingress || !s.ingress && !f.egress {
				continue
			}
			proto := *s.protocol.Load()
			if f.l7 && proto == ProtocolTCP || f.grpc && proto != ProtocolGRPC {
				continue
			}
			if !header {
				buf = append(buf[:0], "# HELP "...)
				buf = append(buf, f.name...)
				buf = append(buf, ' ')
				buf = append(buf, f.help...)
				buf = append(buf, "\n# TYPE "...)
				buf = append(buf, f.name...)
				buf = append(buf, ' ')
				buf = append(buf, f.typ...)
				buf = append(buf, '\n')
				w.Write(buf)
				header = true
			}
			labels := appendLabels(nil, s, meta)
			switch {
			case f.hist:
				var cum int64
				for i := range s.rt.counts {
					cum += s.rt.counts[i].Load()
					le := "+Inf"
					if i < len(bucketsMs) {
						le = strconv.FormatFloat(bucketsMs[i], 'g', -1, 64)
					}
					buf = append(buf[:0], f.name...)
					buf = append(buf, "_bucket{"...)
					buf = append(buf, labels...)
					buf = append(buf, `,le="`...)
					buf = append(buf, le...)
					buf = append(buf, "\"} "...)
					buf = strconv.AppendInt(buf, cum, 10)
					buf = append(buf, '\n')
					w.Write(buf)
				}
				buf = append(buf[:0], f.name...)
				buf = append(buf, "_sum{"...)
				buf = append(buf, labels...)
				buf = append(buf, "} "...)
				buf = strconv.AppendFloat(buf, float64(s.rt.sumNs.Load())/float64(time.Millisecond), 'f', -1, 64)
				buf = append(buf, '\n')
				buf = append(buf, f.name...)
				buf = append(buf, "_count{"...)
				buf = append(buf, labels...)
				buf = append(buf, "} "...)
				buf = strconv.AppendInt(buf, cum, 10)
				buf = append(buf, '\n')
				w.Write(buf)
			case f.perLocal:
				for i, code := range localCodes {
					buf = append(buf[:0], f.name...)
					buf = append(buf, '{')
					buf = append(buf, labels...)
					buf = append(buf, `,code="`...)
					buf = strconv.AppendInt(buf, int64(code), 10)
					buf = append(buf, "\"} "...)
					buf = strconv.AppendInt(buf, s.local[i].Load(), 10)
					buf = append(buf, '\n')
					w.Write(buf)
				}
			default:
				buf = append(buf[:0], f.name...)
				buf = append(buf, '{')
				buf = append(buf, labels...)
				buf = append(buf, "} "...)
				buf = strconv.AppendInt(buf, f.value(s), 10)
				buf = append(buf, '\n')
				w.Write(buf)
			}
		}
	}
}

// meta is the proxy's identity for metric labels.
type meta struct {
	serviceName, clusterName string
}

func appendLabels(b []byte, s *stats, m *meta) []byte {
	if s.ingress {
		b = append(b, "DiscoveryName="...)
	} else {
		b = append(b, "TargetDiscoveryName="...)
	}
	b = appendLabelValue(b, s.name)
	b = append(b, ",ServiceName="...)
	b = appendLabelValue(b, m.serviceName)
	b = append(b, ",ClusterName="...)
	b = appendLabelValue(b, m.clusterName)
	return b
}

func appendLabelValue(b []byte, v string) []byte {
	b = append(b, '"')
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			b = append(b, `\\`...)
		case '"':
			b = append(b, `\"`...)
		case '\n':
			b = append(b, `\n`...)
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
