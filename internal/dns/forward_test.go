package dns

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// upstream is a resolver stand-in: a miekg/dns server on UDP and TCP.
type upstream struct {
	addr     string
	udp, tcp atomic.Int64 // queries seen per transport
}

// startUpstream serves ext.test (192.0.2.1), api.ext.test (192.0.2.2) and
// big.test (100 A records); every other name is NXDOMAIN.
func startUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	var pc net.PacketConn
	var l net.Listener
	for range 20 {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if l, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		pc = nil
	}
	if pc == nil {
		t.Fatal("no port free for both udp and tcp")
	}
	u.addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		_, tcp := w.RemoteAddr().(*net.TCPAddr)
		if tcp {
			u.tcp.Add(1)
		} else {
			u.udp.Add(1)
		}
		m := new(dns.Msg)
		m.SetReply(r)
		m.RecursionAvailable = true
		q := r.Question[0]
		a := func(name, ip string) dns.RR {
			return &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: net.ParseIP(ip)}
		}
		switch name := strings.ToLower(q.Name); {
		case q.Qtype != dns.TypeA:
		case name == "ext.test.":
			m.Answer = append(m.Answer, a(q.Name, "192.0.2.1"))
		case name == "api.ext.test.":
			m.Answer = append(m.Answer, a(q.Name, "192.0.2.2"))
		case name == "big.test.":
			for i := range 100 {
				m.Answer = append(m.Answer, a(q.Name, fmt.Sprintf("198.18.0.%d", i)))
			}
		default:
			m.Rcode = dns.RcodeNameError
		}
		if !tcp {
			size := dns.MinMsgSize
			if opt := r.IsEdns0(); opt != nil {
				size = int(opt.UDPSize())
				m.SetEdns0(opt.UDPSize(), false)
			}
			m.Truncate(size)
		}
		w.WriteMsg(m)
	})
	servers := []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: l, Handler: h}}
	for _, srv := range servers {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
	}
	t.Cleanup(func() {
		for _, srv := range servers {
			srv.Shutdown()
		}
	})
	return u
}

func TestForward(t *testing.T) {
	t.Parallel()
	up := startUpstream(t)
	st := openStore(t)
	seedExample(t, st)
	// A dead upstream first: the server must move on to the live one.
	dead, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.LocalAddr().String()
	dead.Close()
	s := startServerWith(t, Config{Store: st, Forward: []string{deadAddr, up.addr}}, nil)
	addr := s.Addr()

	t.Run("relayed answer", func(t *testing.T) {
		r := query(t, addr, "ext.test.", dns.TypeA)
		if r.Rcode != dns.RcodeSuccess || !sameSet(values(r.Answer), "192.0.2.1") {
			t.Fatalf("answer %v", r)
		}
		if r.Authoritative || !r.RecursionAvailable {
			t.Errorf("AA=%v RA=%v, want a non-authoritative answer with RA", r.Authoritative, r.RecursionAvailable)
		}
	})
	t.Run("relayed NXDOMAIN", func(t *testing.T) {
		if r := query(t, addr, "missing.test.", dns.TypeA); r.Rcode != dns.RcodeNameError {
			t.Errorf("rcode %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
		}
	})
	t.Run("without RD: REFUSED", func(t *testing.T) {
		before := up.udp.Load()
		if r := query(t, addr, "ext.test.", dns.TypeA, noRecursion); r.Rcode != dns.RcodeRefused {
			t.Errorf("rcode %s, want REFUSED", dns.RcodeToString[r.Rcode])
		}
		if up.udp.Load() != before {
			t.Error("the upstream was asked for a query without RD")
		}
	})
	t.Run("big answer: upstream over TCP, client truncated at 1232", func(t *testing.T) {
		beforeTCP := up.tcp.Load()
		m := new(dns.Msg)
		m.SetQuestion("big.test.", dns.TypeA)
		m.SetEdns0(4096, false)
		r, size := rawExchange(t, addr, m)
		if size > maxUDPSize || !r.Truncated {
			t.Errorf("%d bytes, TC=%v; want at most %d bytes and TC", size, r.Truncated, maxUDPSize)
		}
		if up.tcp.Load() == beforeTCP {
			t.Error("the truncated upstream answer was not asked again over TCP")
		}
		r = query(t, addr, "big.test.", dns.TypeA, overTCP)
		if len(r.Answer) != 100 {
			t.Errorf("over TCP: %d answers, want 100", len(r.Answer))
		}
	})
	t.Run("CNAME chased through the upstream", func(t *testing.T) {
		r := query(t, addr, "api.example.local.", dns.TypeA)
		if got := values(r.Answer); !sameSet(got, "api.ext.test.", "192.0.2.2") {
			t.Errorf("answer %q, want the CNAME and its target's address", got)
		}
		if !r.Authoritative {
			t.Error("answer starting in our zone without AA")
		}
	})
	t.Run("own zones are not forwarded", func(t *testing.T) {
		before := up.udp.Load() + up.tcp.Load()
		if r := query(t, addr, "nope.example.local.", dns.TypeA); r.Rcode != dns.RcodeNameError {
			t.Errorf("rcode %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
		}
		if up.udp.Load()+up.tcp.Load() != before {
			t.Error("a name of our zone went to the upstream")
		}
	})
}

func TestForwardAllUpstreamsDown(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	dead, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.LocalAddr().String()
	dead.Close()
	s := startServerWith(t, Config{Store: st, Forward: []string{deadAddr}}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m := new(dns.Msg)
	m.SetQuestion("ext.test.", dns.TypeA)
	r, _, err := (&dns.Client{Timeout: 8 * time.Second}).ExchangeContext(ctx, m, s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
}
