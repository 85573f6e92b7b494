package dns

import (
	"testing"

	"github.com/miekg/dns"
)

// BenchmarkServe measures the handler alone: unpacking a query, answering
// it from the index and packing the answer, as the server does per packet.
func BenchmarkServe(b *testing.B) {
	s := memoryServer(b)
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"web.example.local.", dns.TypeA},
		{"many.example.local.", dns.TypeA},
		{"web.example.local.", dns.TypeSRV},
		{"i-1.web.example.local.", dns.TypeA},
		{"nope.example.local.", dns.TypeA},
	} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		raw, err := m.Pack()
		if err != nil {
			b.Fatal(err)
		}
		b.Run(q.name+"/"+dns.TypeToString[q.qtype], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := new(dns.Msg)
				if err := req.Unpack(raw); err != nil {
					b.Fatal(err)
				}
				w := &fakeWriter{}
				handler{s}.ServeDNS(w, req)
				if _, err := w.msg.Pack(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
