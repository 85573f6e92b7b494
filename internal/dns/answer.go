package dns

import (
	"context"
	"net"
	"runtime/debug"
	"slices"
	"time"

	"github.com/miekg/dns"
)

const (
	// maxUDPSize caps UDP answers whatever the client advertises (DNS Flag
	// Day 2020: no IP fragmentation).
	maxUDPSize = 1232
	// maxCNAMEHops bounds how far a CNAME chain is followed.
	maxCNAMEHops = 8
	// forwardBudget bounds the time spent on upstreams for one query.
	forwardBudget = 5 * time.Second
)

// handler serves queries for a Server.
type handler struct{ s *Server }

func (h handler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	_, tcp := w.RemoteAddr().(*net.TCPAddr)
	if m := h.s.respond(r, tcp); m != nil {
		w.WriteMsg(m)
	}
}

// recoverer answers SERVFAIL instead of letting a panic in the handler end
// the process: miekg/dns does not recover, and the DNS server shares its
// process with the control plane. The fuzz target calls handler directly,
// so that panics still show there.
type recoverer struct{ s *Server }

func (rc recoverer) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	defer func() {
		if v := recover(); v != nil {
			rc.s.log.Error("dns handler panicked; answered SERVFAIL", "panic", v, "question", r.Question, "stack", string(debug.Stack()))
			m := new(dns.Msg)
			m.SetRcode(r, dns.RcodeServerFailure)
			w.WriteMsg(m)
		}
	}()
	handler{rc.s}.ServeDNS(w, r)
}

// respond builds the answer to r, sized for UDP unless tcp; nil means send
// nothing.
func (s *Server) respond(r *dns.Msg, tcp bool) *dns.Msg {
	if r.Response {
		return nil
	}
	m := new(dns.Msg)
	m.SetReply(r)
	m.Compress = true
	m.RecursionAvailable = s.fwd != nil
	if r.Opcode != dns.OpcodeQuery {
		m.Opcode = r.Opcode
		m.Rcode = dns.RcodeNotImplemented
		return m
	}
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return m
	}
	var opt *dns.OPT
	for _, rr := range r.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			if opt != nil || o.Hdr.Name != "." {
				m.Rcode = dns.RcodeFormatError
				return m
			}
			opt = o
		}
	}
	size := dns.MinMsgSize
	do := false
	if opt != nil {
		size = min(max(int(opt.UDPSize()), dns.MinMsgSize), maxUDPSize)
		do = opt.Do()
		if opt.Version() != 0 {
			m.Rcode = dns.RcodeBadVers
			m.SetEdns0(maxUDPSize, do)
			return m
		}
	}
	s.answer(m, r, do)
	if opt != nil {
		m.SetEdns0(maxUDPSize, do)
	} else if m.Rcode > 0xF {
		// An extended rcode (from an upstream) needs an OPT to travel in.
		m.Rcode = dns.RcodeServerFailure
	}
	if !tcp {
		truncate(m, size)
	}
	return m
}

// answer fills m, a reply to the valid query r.
func (s *Server) answer(m, r *dns.Msg, do bool) {
	q := r.Question[0]
	if q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY {
		m.Rcode = dns.RcodeRefused
		return
	}
	switch q.Qtype {
	case dns.TypeAXFR, dns.TypeIXFR:
		m.Rcode = dns.RcodeRefused
		return
	case dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY:
		m.Rcode = dns.RcodeFormatError
		return
	case dns.TypeMAILA, dns.TypeMAILB:
		m.Rcode = dns.RcodeNotImplemented
		return
	}
	ix := s.idx.Load()
	if ix == nil {
		// Not loaded yet: we do not know which zones are ours.
		m.Rcode = dns.RcodeServerFailure
		return
	}
	qname := lowerASCII(q.Name)
	z := ix.zoneFor(qname)
	if z == nil {
		s.forward(m, r, do)
		return
	}
	m.Authoritative = true
	n := z.lookup(qname)
	if n.kind == nodeNone {
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{z.soa}
		return
	}
	if q.Qtype == dns.TypeANY {
		m.Answer = []dns.RR{&dns.HINFO{Hdr: header(q.Name, dns.TypeHINFO, z.soa.Hdr.Ttl), Cpu: "RFC8482"}}
		return
	}
	ans, extra, next := z.data(n, q.Qtype)
	if len(ans) == 0 {
		m.Ns = []dns.RR{z.soa}
		return
	}
	m.Answer, m.Extra = ans, extra
	for range maxCNAMEHops {
		if next == "" {
			return
		}
		lname := lowerASCII(next)
		nz := ix.zoneFor(lname)
		if nz == nil {
			if up := s.lookupUpstream(r, next, do); up != nil {
				m.Answer = append(m.Answer, up.Answer...)
			}
			return
		}
		ans, extra, next = nz.data(nz.lookup(lname), q.Qtype)
		m.Answer = append(m.Answer, ans...)
		m.Extra = append(m.Extra, extra...)
	}
}

// data returns the records of type qtype that n owns, and their
// additional records. For a service with a CNAME and qtype other than CNAME, it
// returns the CNAME and, in next, its target. The returned slices are the
// caller's; the records in them are shared and must not be changed.
func (z *zone) data(n node, qtype uint16) (ans, extra []dns.RR, next string) {
	switch n.kind {
	case nodeApex:
		switch qtype {
		case dns.TypeSOA:
			return []dns.RR{z.soa}, nil, ""
		case dns.TypeNS:
			return []dns.RR{z.ns}, slices.Clone(z.glue), ""
		}
	case nodeNS:
		for _, g := range z.glue {
			if g.Header().Rrtype == qtype {
				ans = append(ans, g)
			}
		}
		return ans, nil, ""
	case nodeTarget:
		return targetAddrs(nil, n.target, qtype), nil, ""
	case nodeService:
		return n.service.data(qtype)
	}
	return nil, nil, ""
}

func (s *service) data(qtype uint16) (ans, extra []dns.RR, next string) {
	if len(s.cname.all) > 0 {
		// One name has one CNAME, whatever the routing policy.
		c := pick(s.cname.candidates(), true)[0]
		if qtype != dns.TypeCNAME {
			next = c.Target
		}
		return []dns.RR{c}, nil, next
	}
	switch qtype {
	case dns.TypeA:
		return pick(s.a.candidates(), s.weighted), nil, ""
	case dns.TypeAAAA:
		return pick(s.aaaa.candidates(), s.weighted), nil, ""
	case dns.TypeSRV:
		targets := pick(s.srv.candidates(), s.weighted)
		ans = make([]dns.RR, 0, len(targets))
		extra = make([]dns.RR, 0, 2*len(targets))
		for _, t := range targets {
			ans = append(ans, t.srv)
			extra = targetAddrs(extra, t, dns.TypeA)
			extra = targetAddrs(extra, t, dns.TypeAAAA)
		}
		return ans, extra, ""
	}
	return nil, nil, ""
}

// targetAddrs appends t's address record of type qtype, if it has one.
func targetAddrs(to []dns.RR, t *target, qtype uint16) []dns.RR {
	switch {
	case qtype == dns.TypeA && t.a != nil:
		return append(to, t.a)
	case qtype == dns.TypeAAAA && t.aaaa != nil:
		return append(to, t.aaaa)
	}
	return to
}

func header(owner string, rrtype uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: owner, Rrtype: rrtype, Class: dns.ClassINET, Ttl: ttl}
}

// forward relays a question outside Wharf's zones to the upstreams, or
// refuses it.
func (s *Server) forward(m, r *dns.Msg, do bool) {
	if s.fwd == nil || !r.RecursionDesired {
		m.Rcode = dns.RcodeRefused
		return
	}
	up := s.lookupUpstream(r, r.Question[0].Name, do)
	if up == nil {
		m.Rcode = dns.RcodeServerFailure
		return
	}
	m.Rcode = up.Rcode
	m.Answer, m.Ns = up.Answer, up.Ns
	for _, rr := range up.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			m.Extra = append(m.Extra, rr)
		}
	}
	m.AuthenticatedData = up.AuthenticatedData && (do || r.AuthenticatedData)
}

// lookupUpstream asks the upstreams about name with r's type and class,
// when r asks for recursion and there are upstreams; nil when not, or
// when none answered.
func (s *Server) lookupUpstream(r *dns.Msg, name string, do bool) *dns.Msg {
	if s.fwd == nil || !r.RecursionDesired {
		return nil
	}
	base := context.Background()
	if p := s.runCtx.Load(); p != nil {
		base = *p
	}
	ctx, cancel := context.WithTimeout(base, forwardBudget)
	defer cancel()
	q := r.Question[0]
	q.Name = name
	up, err := s.fwd.resolve(ctx, q, r.CheckingDisabled, do)
	if err != nil {
		s.log.Debug("forward failed", "name", name, "error", err)
		return nil
	}
	return up
}

// truncate fits m into size bytes for UDP. Records that do not fit are
// dropped; TC is set when an answer or authority record had to go, not
// when only additional records did (RFC 2181 section 9).
func truncate(m *dns.Msg, size int) {
	an, ns, tc := len(m.Answer), len(m.Ns), m.Truncated
	m.Truncate(size)
	if len(m.Answer) == an && len(m.Ns) == ns && !tc {
		m.Truncated = false
	}
}
