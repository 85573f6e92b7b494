package hostnet

import (
	"errors"
	"net"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// upstreamDNS runs a DNS server on an ephemeral loopback port (UDP and TCP)
// that answers every A query with answer; a name starting "many." gets 100
// records over TCP, and one with the truncation bit over UDP.
func upstreamDNS(t *testing.T, answer net.IP) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		pc.Close()
		t.Skipf("no TCP port beside the UDP one: %v", err)
	}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		resp := new(dns.Msg)
		resp.SetReply(q)
		n := 1
		if strings.HasPrefix(q.Question[0].Name, "many.") {
			n = 100
		}
		for i := range n {
			ip := answer
			if n > 1 {
				ip = net.IPv4(192, 0, 2, byte(i))
			}
			resp.Answer = append(resp.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5}, A: ip})
		}
		if _, udp := w.LocalAddr().(*net.UDPAddr); udp && n > 1 {
			// Over UDP, one record and the truncation bit.
			resp.Answer, resp.Truncated = resp.Answer[:1], true
		}
		w.WriteMsg(resp)
	})
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: handler}, {Listener: ln, Handler: handler}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		done := make(chan struct{})
		go func() { defer close(done); srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { srv.Shutdown(); <-done })
	}
	return pc.LocalAddr().String()
}

func lookup(proto, addr, name string) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeA)
	c := &dns.Client{Net: proto, Timeout: time.Second}
	resp, _, err := c.Exchange(q, addr)
	return resp, err
}

// relayIP is a loopback address nothing else of the tests listens on.
const relayIP = "127.0.0.163"

// relayGoroutines lists the goroutines of this package's relays and of the
// DNS servers they run.
func relayGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "hostnet.startRelay") {
			out = append(out, g)
		}
	}
	return out
}

// TestRelays: a relay on a gateway's port 53 forwards queries over UDP and
// TCP (a truncated UDP answer is asked again over TCP and cut to fit),
// takes a new upstream without restarting, and is gone, port and
// goroutines, after Close.
func TestRelays(t *testing.T) {
	first, second := upstreamDNS(t, net.IPv4(192, 0, 2, 1)), upstreamDNS(t, net.IPv4(192, 0, 2, 2))
	rs := NewRelays()
	defer rs.Close()
	started, err := rs.Ensure(relayIP, first)
	if errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EACCES) {
		t.Skipf("binding port 53 needs privileges this test lacks: %v", err)
	}
	if err != nil || !started {
		t.Fatalf("Ensure = %v, %v; want a relay started", started, err)
	}
	relay := net.JoinHostPort(relayIP, "53")
	for _, proto := range []string{"udp", "tcp"} {
		resp, err := lookup(proto, relay, "app.example")
		if err != nil || len(resp.Answer) != 1 || !resp.Answer[0].(*dns.A).A.Equal(net.IPv4(192, 0, 2, 1)) {
			t.Fatalf("query over %s: %v %v", proto, resp, err)
		}
	}
	// The upstream truncates over UDP; the relay asks it again over TCP
	// and answers as much as fits the client's UDP size.
	resp, err := lookup("udp", relay, "many.example")
	if err == nil {
		resp.Compress = true // as sent
	}
	if err != nil || len(resp.Answer) < 2 || len(must(resp.Pack())) > dns.MinMsgSize {
		t.Fatalf("a truncated answer was not completed over TCP and cut to 512 bytes: %v %v", resp, err)
	}

	started, err = rs.Ensure(relayIP, second)
	if err != nil || started {
		t.Fatalf("Ensure with a new upstream = %v, %v; want the running relay kept", started, err)
	}
	resp, err = lookup("udp", relay, "app.example")
	if err != nil || len(resp.Answer) != 1 || !resp.Answer[0].(*dns.A).A.Equal(net.IPv4(192, 0, 2, 2)) {
		t.Fatalf("query after the upstream changed: %v %v", resp, err)
	}

	rs.Close()
	if c, err := net.DialTimeout("tcp", relay, time.Second); err == nil {
		c.Close()
		t.Errorf("the relay still accepts TCP on %s after Close", relay)
	}
	if _, err := lookup("udp", relay, "app.example"); err == nil {
		t.Errorf("the relay still answers on %s after Close", relay)
	}
	// A server goroutine is done once it has called wg.Done, but it may
	// still be on its way out when Close returns: give it a moment.
	left := relayGoroutines()
	for deadline := time.Now().Add(time.Second); len(left) > 0 && time.Now().Before(deadline); left = relayGoroutines() {
		time.Sleep(10 * time.Millisecond)
	}
	if len(left) > 0 {
		t.Errorf("the relay's goroutines outlive Close:\n%s", strings.Join(left, "\n\n"))
	}
	if _, err := rs.Ensure(relayIP, first); !errors.Is(err, ErrClosed) {
		t.Errorf("Ensure after Close = %v, want ErrClosed", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestRelayUpstreamDown: a query the upstream does not answer gets
// SERVFAIL, not silence.
func TestRelayUpstreamDown(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().String()
	pc.Close()
	rs := NewRelays()
	defer rs.Close()
	if _, err := rs.Ensure(relayIP, dead); err != nil {
		if errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EACCES) {
			t.Skipf("binding port 53 needs privileges this test lacks: %v", err)
		}
		t.Fatal(err)
	}
	q := new(dns.Msg)
	q.SetQuestion("app.example.", dns.TypeA)
	resp, _, err := (&dns.Client{Net: "udp", Timeout: 10 * time.Second}).Exchange(q, net.JoinHostPort(relayIP, "53"))
	if err != nil || resp.Rcode != dns.RcodeServerFailure {
		t.Fatalf("answer with the upstream down: %v %v; want SERVFAIL", resp, err)
	}
}

// TestLinkNeedsInterfaces: networks this host has no interface for are not
// linked, and say so; no rule is touched.
func TestLinkNeedsInterfaces(t *testing.T) {
	_, _, err := Link("192.0.2.1", "198.51.100.1")
	if !errors.Is(err, ErrNoInterface) {
		t.Fatalf("Link of absent networks = %v, want ErrNoInterface", err)
	}
	if iface := interfaceWithAddr("127.0.0.1"); iface == "" {
		t.Error("no interface holds 127.0.0.1")
	}
}
