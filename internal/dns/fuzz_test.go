package dns

import (
	"encoding/binary"
	"encoding/json"
	"log/slog"
	"net"
	"testing"

	"github.com/miekg/dns"
)

// fakeWriter records what a handler writes.
type fakeWriter struct {
	tcp bool
	msg *dns.Msg
	n   int
}

func (w *fakeWriter) LocalAddr() net.Addr {
	if w.tcp {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
}

func (w *fakeWriter) RemoteAddr() net.Addr {
	if w.tcp {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 5353}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 5353}
}

func (w *fakeWriter) WriteMsg(m *dns.Msg) error   { w.msg = m; w.n++; return nil }
func (w *fakeWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *fakeWriter) Close() error                { return nil }
func (w *fakeWriter) TsigStatus() error           { return nil }
func (w *fakeWriter) TsigTimersOnly(bool)         {}
func (w *fakeWriter) Hijack()                     {}

// memoryServer is a Server holding the example records, without store or
// sockets.
func memoryServer(t testing.TB) *Server {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	s := &Server{log: log, ready: make(chan struct{}), glue: []net.IP{net.IPv4(127, 0, 0, 1)}}
	st := newState(log, s.glue)
	for _, r := range exampleRecords() {
		b, err := json.Marshal(r.value)
		if err != nil {
			t.Fatal(err)
		}
		st.apply(r.key, b, 7)
	}
	s.publish(st.rebuild())
	return s
}

// FuzzServeDNS feeds raw packets through what the server does with a
// datagram: the accept function, unpacking, the handler. Whatever it
// answers must pack, fit UDP, and unpack again.
func FuzzServeDNS(f *testing.F) {
	s := memoryServer(f)
	seed := func(name string, qtype uint16, edns uint16, tcp bool) {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		if edns > 0 {
			m.SetEdns0(edns, true)
		}
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, tcp)
	}
	for _, name := range []string{"web.example.local.", "example.local.", "many.example.local.", "long.example.local.",
		"i-1.web.example.local.", "api.example.local.", "nope.example.local.", "_tcp.svc.example.local.",
		"a.b.odd.example.local.", `x\@y.odd.example.local.`, "example.com.", "."} {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypeCNAME, dns.TypeSOA, dns.TypeNS, dns.TypeANY, dns.TypeTXT} {
			seed(name, qt, 0, false)
		}
	}
	seed("long.example.local.", dns.TypeSRV, 1232, false)
	seed("long.example.local.", dns.TypeSRV, 0, true)
	seed("five.example.local.", dns.TypeSRV, 600, false)
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1}, false) // compression loop
	f.Add([]byte{0, 1, 0x28, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1}, false)     // UPDATE

	f.Fuzz(func(t *testing.T, raw []byte, tcp bool) {
		if len(raw) < 12 {
			return // miekg/dns drops these before any handler
		}
		dh := dns.Header{
			Id:      binary.BigEndian.Uint16(raw[0:]),
			Bits:    binary.BigEndian.Uint16(raw[2:]),
			Qdcount: binary.BigEndian.Uint16(raw[4:]),
			Ancount: binary.BigEndian.Uint16(raw[6:]),
			Nscount: binary.BigEndian.Uint16(raw[8:]),
			Arcount: binary.BigEndian.Uint16(raw[10:]),
		}
		if accept(dh) != dns.MsgAccept {
			return // miekg/dns answers these itself, without the handler
		}
		req := new(dns.Msg)
		if err := req.Unpack(raw); err != nil {
			return // FORMERR from miekg/dns
		}
		w := &fakeWriter{tcp: tcp}
		handler{s}.ServeDNS(w, req)
		if w.msg == nil {
			t.Fatalf("no answer to an accepted query %v", req)
		}
		if w.n != 1 {
			t.Fatalf("%d answers to one query", w.n)
		}
		b, err := w.msg.Pack()
		if err != nil {
			t.Fatalf("answer does not pack: %v\n%v", err, w.msg)
		}
		if !tcp && len(b) > maxUDPSize {
			t.Fatalf("UDP answer of %d bytes", len(b))
		}
		back := new(dns.Msg)
		if err := back.Unpack(b); err != nil {
			t.Fatalf("answer does not unpack: %v", err)
		}
		if back.Id != req.Id || !back.Response {
			t.Fatalf("answer id %d QR=%v to query %d", back.Id, back.Response, req.Id)
		}
		if len(req.Question) == 1 && (len(back.Question) != 1 || back.Question[0] != req.Question[0]) {
			t.Fatalf("question %v answered as %v", req.Question, back.Question)
		}
	})
}
