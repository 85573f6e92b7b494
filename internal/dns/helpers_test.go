package dns

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/wharfhq/wharf/internal/api"
	sd "github.com/wharfhq/wharf/internal/api/servicediscovery"
	"github.com/wharfhq/wharf/internal/cloudmap"
	"github.com/wharfhq/wharf/internal/store"
)

const region = "us-east-1"

func testLogger() *slog.Logger {
	if os.Getenv("WHARF_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// openStore starts an embedded etcd for the test.
func openStore(t testing.TB) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := store.Open(ctx, store.Config{DataDir: t.TempDir(), Logger: testLogger()})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// startServer runs a DNS server on a free loopback port over st until the
// test ends, and waits until it has loaded.
func startServer(t testing.TB, st *store.Store) *Server {
	t.Helper()
	return startServerWith(t, Config{Store: st}, nil)
}

// startServerWith is startServer with a configuration (Addr defaults to a
// free loopback port) and a hook that adjusts the server before Run.
func startServerWith(t testing.TB, cfg Config, hook func(*Server)) *Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger()
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("new dns server: %v", err)
	}
	if hook != nil {
		hook(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("dns server Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("dns server Run did not return within 10s of its context ending")
		}
	})
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("dns server ended before it was ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("dns server not ready within 30s")
	}
	return s
}

func write(t testing.TB, st *store.Store, fn func(tx *store.Tx) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := st.Update(ctx, fn); err != nil {
		t.Fatalf("store update: %v", err)
	}
}

// fixture writes Cloud Map records as the API would store them.
type fixture struct {
	t  testing.TB
	st *store.Store
}

func namespaceRecord(id, name string, typ sd.NamespaceType, soaTTL int64, created time.Time) cloudmap.NamespaceRecord {
	ns := cloudmap.NamespaceRecord{Namespace: sd.Namespace{
		Id: id, Name: name, Type: typ, CreateDate: api.NewTime(created),
		Arn: "arn:aws:servicediscovery:" + region + ":123456789012:namespace/" + id,
	}}
	if typ != sd.NamespaceTypeHttp {
		ns.Properties = &sd.NamespaceProperties{DnsProperties: &sd.DnsProperties{HostedZoneId: "Z" + id, SOA: &sd.SOA{TTL: soaTTL}}}
	}
	return ns
}

func (f fixture) namespace(reg, id, name string, soaTTL int64, created time.Time) {
	f.t.Helper()
	write(f.t, f.st, func(tx *store.Tx) error {
		return tx.Put(cloudmap.NamespaceKey(reg, id), namespaceRecord(id, name, sd.NamespaceTypeDnsPrivate, soaTTL, created))
	})
}

func serviceRecord(id, nsID, name string, policy sd.RoutingPolicy, recs ...sd.DnsRecord) cloudmap.ServiceRecord {
	return cloudmap.ServiceRecord{Service: sd.Service{
		Id: id, NamespaceId: nsID, Name: name, Type: sd.ServiceTypeDnsHttp,
		DnsConfig: &sd.DnsConfig{RoutingPolicy: policy, DnsRecords: recs},
	}}
}

func (f fixture) service(reg, id, nsID, name string, policy sd.RoutingPolicy, recs ...sd.DnsRecord) {
	f.t.Helper()
	write(f.t, f.st, func(tx *store.Tx) error {
		return tx.Put(cloudmap.ServiceKey(reg, id), serviceRecord(id, nsID, name, policy, recs...))
	})
}

func instanceRecord(srvID, id string, health sd.HealthStatus, attrs map[string]string) cloudmap.InstanceRecord {
	return cloudmap.InstanceRecord{
		Instance:  sd.Instance{Id: id, Attributes: attrs},
		ServiceID: srvID, Health: health, UpdatedAt: time.Now(),
	}
}

func (f fixture) instance(reg, srvID, id string, health sd.HealthStatus, attrs map[string]string) {
	f.t.Helper()
	write(f.t, f.st, func(tx *store.Tx) error {
		return tx.Put(cloudmap.InstanceKey(reg, srvID, id), instanceRecord(srvID, id, health, attrs))
	})
}

func (f fixture) delete(key string) {
	f.t.Helper()
	write(f.t, f.st, func(tx *store.Tx) error {
		tx.Delete(key)
		return nil
	})
}

func rec(typ sd.RecordType, ttl int64) sd.DnsRecord { return sd.DnsRecord{Type: typ, TTL: ttl} }

func ipv4(ip string) map[string]string { return map[string]string{"AWS_INSTANCE_IPV4": ip} }

// query asks the server one question over UDP (or TCP with tcp) and fails
// the test when no answer comes.
func query(t testing.TB, addr, name string, qtype uint16, opts ...func(*dns.Msg, *dns.Client)) *dns.Msg {
	t.Helper()
	r, err := exchange(addr, name, qtype, opts...)
	if err != nil {
		t.Fatalf("query %s %s: %v", name, dns.TypeToString[qtype], err)
	}
	return r
}

func exchange(addr, name string, qtype uint16, opts ...func(*dns.Msg, *dns.Client)) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	for _, o := range opts {
		o(m, c)
	}
	r, _, err := c.Exchange(m, addr)
	return r, err
}

func overTCP(_ *dns.Msg, c *dns.Client) { c.Net = "tcp" }

func withEDNS(size uint16) func(*dns.Msg, *dns.Client) {
	return func(m *dns.Msg, c *dns.Client) {
		m.SetEdns0(size, false)
		c.UDPSize = size
	}
}

func noRecursion(m *dns.Msg, _ *dns.Client) { m.RecursionDesired = false }

// values renders the answer records' data, sorted: "10.0.0.1",
// "1 1 8080 i-1.web.example.local.".
func values(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		out = append(out, rdata(rr))
	}
	sort.Strings(out)
	return out
}

func rdata(rr dns.RR) string {
	hdr := rr.Header().String()
	return strings.TrimPrefix(rr.String(), hdr)
}

// waitFor polls cond until it holds or the deadline passes, and returns
// how long it took.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if cond() {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// answers returns the answer values of a query, or nil when it fails.
func answers(addr, name string, qtype uint16) []string {
	r, err := exchange(addr, name, qtype)
	if err != nil || r.Rcode != dns.RcodeSuccess {
		return nil
	}
	return values(r.Answer)
}

func sameSet(got []string, want ...string) bool {
	w := slices.Clone(want)
	sort.Strings(w)
	return slices.Equal(got, w)
}

func ips(prefix string, from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

// udpAddr resolves the server's address for raw sockets.
func udpAddr(t testing.TB, s *Server) *net.UDPAddr {
	a, err := net.ResolveUDPAddr("udp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// rawExchange sends m over UDP and returns the answer and its size on the
// wire.
func rawExchange(t testing.TB, addr string, m *dns.Msg) (*dns.Msg, int) {
	t.Helper()
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(b); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 65535)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	r := new(dns.Msg)
	if err := r.Unpack(buf[:n]); err != nil {
		t.Fatalf("answer does not unpack: %v", err)
	}
	return r, n
}
