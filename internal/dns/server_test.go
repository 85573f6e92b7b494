package dns

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	sd "github.com/wharfhq/wharf/internal/api/servicediscovery"
	"github.com/wharfhq/wharf/internal/cloudmap"
	"github.com/wharfhq/wharf/internal/store"
)

const (
	healthy   = sd.HealthStatusHealthy
	unhealthy = sd.HealthStatusUnhealthy
	unknown   = sd.HealthStatusUnknown
)

// longID is an instance id of n characters, for answers that do not fit
// 512 bytes.
func longID(n, i int) string { return fmt.Sprintf("%s-%02d", strings.Repeat("x", n-3), i) }

// seedExample writes the namespace "Example.Local" (SOA TTL 30) and its
// services, all in one transaction:
//
//	web     MULTIVALUE A 60, AAAA 70, SRV 80; i-1..i-3 healthy
//	api     WEIGHTED CNAME 90 → api.ext.test
//	many    MULTIVALUE A 10; 20 healthy instances
//	mixed   MULTIVALUE A 10; 2 healthy, 2 unhealthy, 1 unknown
//	sick    MULTIVALUE A 10; 3 unhealthy
//	sickw   WEIGHTED A 10; 2 unhealthy
//	one     WEIGHTED A 10; 5 healthy
//	_http._tcp.svc  MULTIVALUE SRV 10; 1 instance
//	empty   MULTIVALUE A; no instance
//	plain   type HTTP, no DnsConfig; 1 instance
//	long    MULTIVALUE SRV 10, A 10; 8 instances with 60-character ids
//	five    MULTIVALUE SRV 10, A 10, AAAA 10; 5 instances with 40-character ids
//	odd     MULTIVALUE SRV 10, A 10; instances "a.b" and "x@Y"
//
// and an HTTP namespace "http.local" with a service "h".
func seedExample(t testing.TB, st *store.Store) {
	t.Helper()
	write(t, st, func(tx *store.Tx) error {
		for _, kv := range exampleRecords() {
			if err := tx.Put(kv.key, kv.value); err != nil {
				return err
			}
		}
		return nil
	})
}

type record struct {
	key   string
	value any
}

// exampleRecords are the records seedExample writes.
func exampleRecords() []record {
	var out []record
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	put := func(key string, v any) { out = append(out, record{key, v}) }
	put(cloudmap.NamespaceKey(region, "ns-example"), namespaceRecord("ns-example", "Example.Local", sd.NamespaceTypeDnsPrivate, 30, created))
	put(cloudmap.NamespaceKey(region, "ns-http"), namespaceRecord("ns-http", "http.local", sd.NamespaceTypeHttp, 0, created))
	svc := func(id, name string, policy sd.RoutingPolicy, recs ...sd.DnsRecord) {
		put(cloudmap.ServiceKey(region, id), serviceRecord(id, "ns-example", name, policy, recs...))
	}
	inst := func(srv, id string, h sd.HealthStatus, attrs map[string]string) {
		put(cloudmap.InstanceKey(region, srv, id), instanceRecord(srv, id, h, attrs))
	}
	svc("srv-web", "web", sd.RoutingPolicyMultivalue, rec(sd.RecordTypeA, 60), rec(sd.RecordTypeAaaa, 70), rec(sd.RecordTypeSrv, 80))
	for i := 1; i <= 3; i++ {
		inst("srv-web", fmt.Sprintf("i-%d", i), healthy, map[string]string{
			"AWS_INSTANCE_IPV4": fmt.Sprintf("10.0.0.%d", i),
			"AWS_INSTANCE_IPV6": fmt.Sprintf("fd00::%d", i),
			"AWS_INSTANCE_PORT": fmt.Sprint(8080 + i),
		})
	}
	svc("srv-api", "api", sd.RoutingPolicyWeighted, rec(sd.RecordTypeCname, 90))
	inst("srv-api", "c-1", healthy, map[string]string{"AWS_INSTANCE_CNAME": "api.ext.test"})
	svc("srv-many", "many", sd.RoutingPolicyMultivalue, rec(sd.RecordTypeA, 10))
	for i := 1; i <= 20; i++ {
		inst("srv-many", fmt.Sprintf("m-%d", i), healthy, ipv4(fmt.Sprintf("10.1.0.%d", i)))
	}
	svc("srv-mixed", "mixed", sd.RoutingPolicyMultivalue, rec(sd.RecordTypeA, 10))
	inst("srv-mixed", "h-1", healthy, ipv4("10.2.0.1"))
	inst("srv-mixed", "h-2", healthy, ipv4("10.2.0.2"))
	inst("srv-mixed", "u-1", unhealthy, ipv4("10.2.0.3"))
	inst("srv-mixed", "u-2", unhealthy, ipv4("10.2.0.4"))
	inst("srv-mixed", "k-1", unknown, ipv4("10.2.0.5"))
	svc("srv-sick", "sick", sd.RoutingPolicyMultivalue, rec(sd.RecordTypeA, 10))
	for i := 1; i <= 3; i++ {
		inst("srv-sick", fmt.Sprintf("s-%d", i), unhealthy, ipv4(fmt.Sprintf("10.3.0.%d", i)))
	}
	svc("srv-sickw", "sickw", sd.RoutingPolicyWeighted, rec(sd.RecordTypeA, 10))
	inst("srv-sickw", "w-1", unhealthy, ipv4("10.4.0.1"))
	inst("srv-sickw", "w-2", unhealthy, ipv4("10.4.0.2"))
	svc("srv-one", "one", sd.RoutingPolicyWeighted, rec(sd.RecordTypeA, 10))
	for i := 1; i <= 5; i++ {
		inst("srv-one", fmt.Sprintf("o-%d", i), healthy, ipv4(fmt.Sprintf("10.5.0.%d", i)))
	}
	svc("srv-tcp", "_http._tcp.svc", sd.RoutingPolicyMultivalue, rec(sd.RecordTypeSrv, 10))
	inst("srv-tcp", "t-1", healthy, map[string]string{"AWS_INSTANCE_IPV4": "10.6.0.1", "AWS_INSTANCE_PORT": "80"})
	svc("srv-empty", "empty", sd.RoutingPolicyMultivalue, rec(sd.RecordTypeA, 10))
	put(cloudmap.ServiceKey(region, "srv-plain"), cloudmap.ServiceRecord{Service: sd.Service{Id: "srv-plain", NamespaceId: "ns-example", Name: "plain", Type: sd.ServiceTypeHttp}})
	inst("srv-plain", "p-1", healthy, ipv4("10.7.0.1"))
	svc("srv-long", "long", sd.RoutingPolicyMultivalue, rec(sd.RecordTypeSrv, 10), rec(sd.RecordTypeA, 10))
	for i := 1; i <= 8; i++ {
		inst("srv-long", longID(60, i), healthy, map[string]string{"AWS_INSTANCE_IPV4": fmt.Sprintf("10.8.0.%d", i), "AWS_INSTANCE_PORT": "9000"})
	}
	svc("srv-five", "five", sd.RoutingPolicyMultivalue, rec(sd.RecordTypeSrv, 10), rec(sd.RecordTypeA, 10), rec(sd.RecordTypeAaaa, 10))
	for i := 1; i <= 5; i++ {
		inst("srv-five", longID(40, i), healthy, map[string]string{
			"AWS_INSTANCE_IPV4": fmt.Sprintf("10.9.0.%d", i), "AWS_INSTANCE_IPV6": fmt.Sprintf("fd00:9::%d", i), "AWS_INSTANCE_PORT": "9000",
		})
	}
	svc("srv-odd", "odd", sd.RoutingPolicyMultivalue, rec(sd.RecordTypeSrv, 10), rec(sd.RecordTypeA, 10))
	inst("srv-odd", "a.b", healthy, map[string]string{"AWS_INSTANCE_IPV4": "10.11.0.1", "AWS_INSTANCE_PORT": "1"})
	inst("srv-odd", "x@Y", healthy, map[string]string{"AWS_INSTANCE_IPV4": "10.11.0.2", "AWS_INSTANCE_PORT": "2"})
	put(cloudmap.ServiceKey(region, "srv-h"), cloudmap.ServiceRecord{Service: sd.Service{Id: "srv-h", NamespaceId: "ns-http", Name: "h", Type: sd.ServiceTypeHttp}})
	inst("srv-h", "h-1", healthy, ipv4("10.10.0.1"))
	return out
}

func TestAnswers(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	seedExample(t, st)
	s := startServer(t, st)
	addr := s.Addr()

	type check func(t *testing.T, r *dns.Msg)
	rcode := func(want int) check {
		return func(t *testing.T, r *dns.Msg) {
			if r.Rcode != want {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[want])
			}
		}
	}
	aa := func(want bool) check {
		return func(t *testing.T, r *dns.Msg) {
			if r.Authoritative != want {
				t.Errorf("AA %v, want %v", r.Authoritative, want)
			}
		}
	}
	answer := func(want ...string) check {
		return func(t *testing.T, r *dns.Msg) {
			if got := values(r.Answer); !sameSet(got, want...) {
				t.Errorf("answer %q, want %q", got, want)
			}
		}
	}
	answerCount := func(n int) check {
		return func(t *testing.T, r *dns.Msg) {
			if len(r.Answer) != n {
				t.Errorf("%d answers, want %d: %v", len(r.Answer), n, r.Answer)
			}
		}
	}
	answerFrom := func(pool ...string) check {
		return func(t *testing.T, r *dns.Msg) {
			for _, v := range values(r.Answer) {
				if !slices.Contains(pool, v) {
					t.Errorf("answer %q not among %q", v, pool)
				}
			}
		}
	}
	ttl := func(want uint32) check {
		return func(t *testing.T, r *dns.Msg) {
			for _, rr := range r.Answer {
				if rr.Header().Ttl != want {
					t.Errorf("TTL of %v is %d, want %d", rr, rr.Header().Ttl, want)
				}
			}
		}
	}
	soaInAuthority := func(t *testing.T, r *dns.Msg) {
		if len(r.Ns) != 1 {
			t.Fatalf("authority %v, want the SOA", r.Ns)
		}
		soa, ok := r.Ns[0].(*dns.SOA)
		if !ok || soa.Hdr.Name != "example.local." || soa.Hdr.Ttl != 30 || soa.Minttl != 30 {
			t.Errorf("authority %v, want the SOA of example.local. with TTL and minimum 30", r.Ns[0])
		}
	}
	noAnswer := answerCount(0)
	extra := func(want ...string) check {
		return func(t *testing.T, r *dns.Msg) {
			var got []string
			for _, rr := range r.Extra {
				if rr.Header().Rrtype != dns.TypeOPT {
					got = append(got, fmt.Sprintf("%s %d %s", rr.Header().Name, rr.Header().Ttl, rdata(rr)))
				}
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("additional %q, want %q", got, want)
			}
		}
	}
	owner := func(want string) check {
		return func(t *testing.T, r *dns.Msg) {
			for _, rr := range r.Answer {
				if rr.Header().Name != want {
					t.Errorf("owner %q, want %q", rr.Header().Name, want)
				}
			}
		}
	}

	tests := []struct {
		name   string
		qname  string
		qtype  uint16
		checks []check
	}{
		{"A of a multivalue service", "web.example.local.", dns.TypeA,
			[]check{rcode(dns.RcodeSuccess), aa(true), answer("10.0.0.1", "10.0.0.2", "10.0.0.3"), ttl(60)}},
		{"AAAA", "web.example.local.", dns.TypeAAAA,
			[]check{rcode(dns.RcodeSuccess), answer("fd00::1", "fd00::2", "fd00::3"), ttl(70)}},
		{"SRV with targets in the additional section", "web.example.local.", dns.TypeSRV,
			[]check{rcode(dns.RcodeSuccess), aa(true), ttl(80), answer(
				"1 1 8081 i-1.web.example.local.", "1 1 8082 i-2.web.example.local.", "1 1 8083 i-3.web.example.local."),
				extra("i-1.web.example.local. 60 10.0.0.1", "i-2.web.example.local. 60 10.0.0.2", "i-3.web.example.local. 60 10.0.0.3",
					"i-1.web.example.local. 70 fd00::1", "i-2.web.example.local. 70 fd00::2", "i-3.web.example.local. 70 fd00::3")}},
		{"SRV target A", "i-2.web.example.local.", dns.TypeA,
			[]check{rcode(dns.RcodeSuccess), aa(true), answer("10.0.0.2"), ttl(60)}},
		{"SRV target AAAA", "i-2.web.example.local.", dns.TypeAAAA,
			[]check{answer("fd00::2"), ttl(70)}},
		{"SRV target, other type: NODATA", "i-2.web.example.local.", dns.TypeTXT,
			[]check{rcode(dns.RcodeSuccess), aa(true), noAnswer, soaInAuthority}},
		{"no target names for services without SRV", "m-1.many.example.local.", dns.TypeA,
			[]check{rcode(dns.RcodeNameError), soaInAuthority}},
		{"CNAME", "api.example.local.", dns.TypeCNAME,
			[]check{rcode(dns.RcodeSuccess), aa(true), answer("api.ext.test."), ttl(90)}},
		{"CNAME for A, target outside without forwarders", "api.example.local.", dns.TypeA,
			[]check{rcode(dns.RcodeSuccess), answer("api.ext.test."), ttl(90)}},
		{"apex SOA", "example.local.", dns.TypeSOA,
			[]check{rcode(dns.RcodeSuccess), aa(true), answerCount(1), ttl(30), func(t *testing.T, r *dns.Msg) {
				soa := r.Answer[0].(*dns.SOA)
				if soa.Ns != "ns1.example.local." || soa.Mbox != "hostmaster.example.local." || soa.Serial == 0 ||
					soa.Minttl != 30 || soa.Refresh != soaRefresh || soa.Retry != soaRetry || soa.Expire != soaExpire {
					t.Errorf("SOA %v", soa)
				}
			}}},
		{"apex NS with glue", "example.local.", dns.TypeNS,
			[]check{rcode(dns.RcodeSuccess), aa(true), answer("ns1.example.local."), ttl(30), extra("ns1.example.local. 30 127.0.0.1")}},
		{"name server address", "ns1.example.local.", dns.TypeA,
			[]check{rcode(dns.RcodeSuccess), aa(true), answer("127.0.0.1")}},
		{"apex A: NODATA", "example.local.", dns.TypeA,
			[]check{rcode(dns.RcodeSuccess), aa(true), noAnswer, soaInAuthority}},
		{"NXDOMAIN", "nope.example.local.", dns.TypeA,
			[]check{rcode(dns.RcodeNameError), aa(true), noAnswer, soaInAuthority}},
		{"NXDOMAIN below a service", "x.web.example.local.", dns.TypeA,
			[]check{rcode(dns.RcodeNameError), soaInAuthority}},
		{"NODATA: name exists, type does not", "web.example.local.", dns.TypeTXT,
			[]check{rcode(dns.RcodeSuccess), aa(true), noAnswer, soaInAuthority}},
		{"NODATA: A of an SRV-only service", "_http._tcp.svc.example.local.", dns.TypeA,
			[]check{rcode(dns.RcodeSuccess), noAnswer, soaInAuthority}},
		{"SRV of a dotted service name", "_http._tcp.svc.example.local.", dns.TypeSRV,
			[]check{rcode(dns.RcodeSuccess), answer("1 1 80 t-1._http._tcp.svc.example.local.")}},
		{"NODATA: empty non-terminal", "_tcp.svc.example.local.", dns.TypeA,
			[]check{rcode(dns.RcodeSuccess), aa(true), noAnswer, soaInAuthority}},
		{"service without instances: NXDOMAIN", "empty.example.local.", dns.TypeA,
			[]check{rcode(dns.RcodeNameError), soaInAuthority}},
		{"HTTP service: NXDOMAIN", "plain.example.local.", dns.TypeA,
			[]check{rcode(dns.RcodeNameError), soaInAuthority}},
		{"HTTP namespace: no zone", "h.http.local.", dns.TypeA,
			[]check{rcode(dns.RcodeRefused), aa(false), noAnswer}},
		{"case-insensitive; question echoed, records under their canonical name", "WeB.ExAmPlE.LoCaL.", dns.TypeA,
			[]check{rcode(dns.RcodeSuccess), aa(true), answer("10.0.0.1", "10.0.0.2", "10.0.0.3"), owner("web.example.local.")}},
		{"case-insensitive target", "I-2.WEB.example.LOCAL.", dns.TypeA,
			[]check{answer("10.0.0.2")}},
		{"outside the zones: REFUSED", "example.com.", dns.TypeA,
			[]check{rcode(dns.RcodeRefused), aa(false), noAnswer}},
		{"ANY: RFC 8482 HINFO", "web.example.local.", dns.TypeANY,
			[]check{rcode(dns.RcodeSuccess), aa(true), answer(`"RFC8482" ""`)}},
		{"ANY of a missing name", "nope.example.local.", dns.TypeANY,
			[]check{rcode(dns.RcodeNameError), soaInAuthority}},
		{"multivalue: at most 8", "many.example.local.", dns.TypeA,
			[]check{answerCount(8), answerFrom(ips("10.1.0.", 1, 20)...), ttl(10)}},
		{"health: only healthy instances", "mixed.example.local.", dns.TypeA,
			[]check{answer("10.2.0.1", "10.2.0.2")}},
		{"health: none healthy, multivalue answers all", "sick.example.local.", dns.TypeA,
			[]check{answer("10.3.0.1", "10.3.0.2", "10.3.0.3")}},
		{"health: none healthy, weighted answers one of all", "sickw.example.local.", dns.TypeA,
			[]check{answerCount(1), answerFrom("10.4.0.1", "10.4.0.2")}},
		{"weighted: one record", "one.example.local.", dns.TypeA,
			[]check{answerCount(1), answerFrom(ips("10.5.0.", 1, 5)...)}},
		{"dotted instance id", "a.b.odd.example.local.", dns.TypeA,
			[]check{answer("10.11.0.1")}},
		{"dotted instance id: empty non-terminal", "b.odd.example.local.", dns.TypeA,
			[]check{rcode(dns.RcodeSuccess), noAnswer, soaInAuthority}},
		{"instance id with a special character", `X\@y.odd.example.local.`, dns.TypeA,
			[]check{answer("10.11.0.2")}},
		{"SRV targets of odd ids", "odd.example.local.", dns.TypeSRV,
			[]check{answer("1 1 1 a.b.odd.example.local.", `1 1 2 x\@y.odd.example.local.`)}},
		{"zone transfer refused", "example.local.", dns.TypeAXFR,
			[]check{rcode(dns.RcodeRefused)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := query(t, addr, tc.qname, tc.qtype)
			if len(r.Question) != 1 || r.Question[0].Name != tc.qname {
				t.Errorf("question %v, want %s echoed", r.Question, tc.qname)
			}
			for _, c := range tc.checks {
				c(t, r)
			}
		})
	}
}

func TestMultivalueIsRandom(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	seedExample(t, st)
	s := startServer(t, st)

	seen := map[string]bool{}
	orders := map[string]bool{}
	for range 50 {
		r := query(t, s.Addr(), "many.example.local.", dns.TypeA)
		got := values(r.Answer)
		if len(got) != 8 || len(slices.Compact(slices.Clone(got))) != 8 {
			t.Fatalf("answer %v, want 8 distinct records", got)
		}
		for _, v := range got {
			seen[v] = true
		}
		r = query(t, s.Addr(), "web.example.local.", dns.TypeA)
		var order []string
		for _, rr := range r.Answer {
			order = append(order, rdata(rr))
		}
		orders[strings.Join(order, ",")] = true
	}
	// 50 draws of 8 out of 20 miss a given record with probability 0.6^50.
	if len(seen) != 20 {
		t.Errorf("50 answers of 8 covered %d of the 20 instances, want all", len(seen))
	}
	// 3 records have 6 orders; 50 draws all in one order: 6^-49.
	if len(orders) < 2 {
		t.Errorf("50 answers of web came in %d order(s), want them shuffled", len(orders))
	}
	weighted := map[string]bool{}
	for range 50 {
		r := query(t, s.Addr(), "one.example.local.", dns.TypeA)
		weighted[rdata(r.Answer[0])] = true
	}
	if len(weighted) < 3 {
		t.Errorf("50 weighted answers chose %d distinct instances of 5, want them spread", len(weighted))
	}
}

func TestTruncation(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	seedExample(t, st)
	s := startServer(t, st)
	addr := s.Addr()
	const name = "long.example.local."

	full := query(t, addr, name, dns.TypeSRV, overTCP)
	if full.Truncated || len(full.Answer) != 8 || len(full.Extra) != 8 {
		t.Fatalf("over TCP: TC=%v, %d answers, %d additional; want everything: 8 and 8", full.Truncated, len(full.Answer), len(full.Extra))
	}
	wire, _ := full.Pack()
	if len(wire) <= 512 {
		t.Fatalf("the full answer has %d bytes; the test needs more than 512", len(wire))
	}

	tests := []struct {
		name       string
		opts       []func(*dns.Msg, *dns.Client)
		maxSize    int
		truncated  bool
		minAnswers int
	}{
		{"no EDNS: 512 bytes", nil, 512, true, 1},
		{"EDNS 600", []func(*dns.Msg, *dns.Client){withEDNS(600)}, 600, true, 1},
		{"EDNS 1232: all of it", []func(*dns.Msg, *dns.Client){withEDNS(1232)}, 1232, false, 8},
		{"EDNS 4096: all of it, within 1232", []func(*dns.Msg, *dns.Client){withEDNS(4096)}, 1232, false, 8},
		{"EDNS below 512 counts as 512", []func(*dns.Msg, *dns.Client){withEDNS(100)}, 512, true, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion(name, dns.TypeSRV)
			for _, o := range tc.opts {
				o(m, &dns.Client{})
			}
			r, size := rawExchange(t, addr, m)
			if size > tc.maxSize {
				t.Errorf("answer of %d bytes, want at most %d", size, tc.maxSize)
			}
			if r.Truncated != tc.truncated {
				t.Errorf("TC=%v, want %v", r.Truncated, tc.truncated)
			}
			if len(r.Answer) < tc.minAnswers {
				t.Errorf("%d answers, want at least %d", len(r.Answer), tc.minAnswers)
			}
			if opt := r.IsEdns0(); (opt != nil) != (len(tc.opts) > 0) || (opt != nil && opt.UDPSize() != maxUDPSize) {
				t.Errorf("OPT %v; want one advertising %d exactly when the query had one", opt, maxUDPSize)
			}
		})
	}

	t.Run("only additional records dropped: no TC", func(t *testing.T) {
		r := query(t, addr, "five.example.local.", dns.TypeSRV)
		if r.Truncated || len(r.Answer) != 5 {
			t.Errorf("TC=%v with %d answers; want all 5 answers and no TC", r.Truncated, len(r.Answer))
		}
		if len(r.Extra) >= 10 {
			t.Errorf("%d additional records in 512 bytes; the test expects some dropped", len(r.Extra))
		}
	})
}

func TestMalformedPackets(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	seedExample(t, st)
	s := startServer(t, st)
	conn, err := net.DialUDP("udp", nil, udpAddr(t, s))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	good := func() *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion("web.example.local.", dns.TypeA)
		return m
	}
	pack := func(m *dns.Msg) []byte {
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// Compression pointer to itself right after the header.
	loop := pack(good())
	loop = append(loop[:12], 0xC0, 12, 0, 1, 0, 1)
	longLabel := pack(good())
	longLabel = append(longLabel[:12], append([]byte{64}, append([]byte(strings.Repeat("a", 64)), 0, 0, 1, 0, 1)...)...)

	tests := []struct {
		name  string
		raw   func() []byte
		rcode int // -1: no answer at all
	}{
		{"truncated header", func() []byte { return []byte{1, 2, 3} }, -1},
		{"response (QR=1) dropped", func() []byte { m := good(); m.Response = true; return pack(m) }, -1},
		{"no question", func() []byte { m := good(); m.Question = nil; return pack(m) }, dns.RcodeFormatError},
		{"two questions", func() []byte {
			m := good()
			m.Question = append(m.Question, dns.Question{Name: "a.example.local.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
			return pack(m)
		}, dns.RcodeFormatError},
		{"opcode UPDATE", func() []byte { m := good(); m.Opcode = dns.OpcodeUpdate; return pack(m) }, dns.RcodeNotImplemented},
		{"opcode NOTIFY", func() []byte { m := good(); m.Opcode = dns.OpcodeNotify; return pack(m) }, dns.RcodeNotImplemented},
		{"EDNS version 1", func() []byte {
			m := good()
			m.SetEdns0(1232, false)
			m.IsEdns0().SetVersion(1)
			return pack(m)
		}, dns.RcodeBadVers},
		{"two OPT records", func() []byte {
			m := good()
			m.SetEdns0(1232, false)
			m.SetEdns0(1232, false)
			return pack(m)
		}, dns.RcodeFormatError},
		{"compression loop", func() []byte { return loop }, dns.RcodeFormatError},
		{"label over 63 bytes", func() []byte { return longLabel }, dns.RcodeFormatError},
		{"cut in the question", func() []byte { b := pack(good()); return b[:len(b)-3] }, dns.RcodeFormatError},
		{"CHAOS class", func() []byte {
			m := good()
			m.Question[0] = dns.Question{Name: "version.bind.", Qtype: dns.TypeTXT, Qclass: dns.ClassCHAOS}
			return pack(m)
		}, dns.RcodeRefused},
		{"oversized datagram", func() []byte {
			m := good()
			m.SetEdns0(1232, false)
			m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_LOCAL{Code: 65001, Data: make([]byte, 8000)})
			return pack(m)
		}, dns.RcodeFormatError},
	}
	buf := make([]byte, 65535)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := conn.Write(tc.raw()); err != nil {
				t.Fatal(err)
			}
			wait := 2 * time.Second
			if tc.rcode < 0 {
				wait = 300 * time.Millisecond
			}
			conn.SetReadDeadline(time.Now().Add(wait))
			n, err := conn.Read(buf)
			if tc.rcode < 0 {
				if err == nil {
					t.Fatalf("got a %d-byte answer, want none", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			r := new(dns.Msg)
			if err := r.Unpack(buf[:n]); err != nil {
				t.Fatalf("answer does not unpack: %v", err)
			}
			if r.Rcode != tc.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
			}
			if !r.Response {
				t.Error("answer without QR")
			}
		})
	}
	// The server still answers.
	if r := query(t, s.Addr(), "web.example.local.", dns.TypeA); len(r.Answer) != 3 {
		t.Errorf("after the malformed packets: %v", r)
	}
}

func TestRunStops(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	s, err := New(Config{Store: st, Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	<-s.Ready()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of its context ending")
	}
	// Both sockets are closed: the port can be bound again.
	pc, err := net.ListenPacket("udp", s.Addr())
	if err != nil {
		t.Fatalf("udp port still held after Run: %v", err)
	}
	pc.Close()
	l, err := net.Listen("tcp", s.Addr())
	if err != nil {
		t.Fatalf("tcp port still held after Run: %v", err)
	}
	l.Close()
}

func TestNewRejectsForwardingToItself(t *testing.T) {
	st := openStore(t)
	// Find a free port, then ask for it and forwarding to it.
	s, err := New(Config{Store: st, Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	s.closeListeners()
	if _, err := New(Config{Store: st, Addr: addr, Forward: []string{addr}}); err == nil || !strings.Contains(err.Error(), "itself") {
		t.Errorf("New with Forward = its own address: %v, want an error", err)
	}
	if _, err := New(Config{Store: st, Addr: "127.0.0.1:0", Forward: []string{"8.8.8.8"}}); err == nil {
		t.Error("New with a forwarder without port: want an error")
	}
}
