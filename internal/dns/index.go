package dns

import (
	"math/rand/v2"

	"github.com/miekg/dns"
)

// maxAnswers is how many records a MULTIVALUE service answers at most, as
// Route 53 does.
const maxAnswers = 8

// index is one immutable view of every zone. Queries read it without
// locks; the follower replaces it as a whole.
type index struct {
	zones map[string]*zone // canonical apex → zone
}

// zone is one namespace's DNS data. Immutable once published.
type zone struct {
	name     string // canonical apex: lower case, escaped, fully qualified
	key      string // region/namespace-id
	soa      *dns.SOA
	ns       *dns.NS
	glue     []dns.RR            // ns1.<zone> A/AAAA
	services map[string]*service // relative name ("web", "_http._tcp") → service
	ents     map[string]bool     // relative empty non-terminals above services
}

// service is the records of one service, built once and shared read-only
// by every answer (owners are canonical, lower-case names). Immutable once
// published.
type service struct {
	id       string
	weighted bool
	a        recordSet[dns.RR]
	aaaa     recordSet[dns.RR]
	srv      recordSet[*target]
	cname    recordSet[*dns.CNAME]
	targets  map[string]*target // relative instance label(s) → SRV target
	ents     map[string]bool    // empty non-terminals between targets and the service
}

// target is an instance's SRV record and the addresses of its target name.
type target struct {
	srv     dns.RR
	a, aaaa dns.RR // nil when the instance has no such address
}

// recordSet is a service's values of one type, all of them and those of
// healthy instances.
type recordSet[T any] struct {
	healthy, all []T
}

// candidates is what an answer picks from: the healthy values, or all of
// them when none is healthy.
func (r recordSet[T]) candidates() []T {
	if len(r.healthy) > 0 {
		return r.healthy
	}
	return r.all
}

// pick chooses the values to answer: one at random for a weighted service,
// else up to maxAnswers distinct ones in random order.
func pick[T any](c []T, weighted bool) []T {
	n := len(c)
	switch {
	case n == 0:
		return nil
	case weighted:
		return []T{c[rand.IntN(n)]}
	case n <= maxAnswers:
		out := append([]T(nil), c...)
		rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
		return out
	}
	// Floyd's algorithm: a uniform subset of maxAnswers indexes.
	var idx [maxAnswers]int
	m := 0
	for j := n - maxAnswers; j < n; j++ {
		t := rand.IntN(j + 1)
		for _, x := range idx[:m] {
			if x == t {
				t = j
				break
			}
		}
		idx[m] = t
		m++
	}
	out := make([]T, maxAnswers)
	for i, x := range idx {
		out[i] = c[x]
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// nodeKind says what a name is inside a zone.
type nodeKind int

const (
	nodeNone    nodeKind = iota // does not exist: NXDOMAIN
	nodeApex                    // the zone's apex
	nodeService                 // a service's name
	nodeTarget                  // an instance's SRV target
	nodeNS                      // ns1.<zone>
	nodeEmpty                   // an empty non-terminal: NODATA for every type
)

type node struct {
	kind    nodeKind
	service *service
	target  *target
}

// zoneFor returns the zone holding the canonical name qname: the one with
// the longest apex that qname is at or under.
func (ix *index) zoneFor(qname string) *zone {
	if ix == nil {
		return nil
	}
	off := 0
	for {
		if z := ix.zones[qname[off:]]; z != nil {
			return z
		}
		next, end := dns.NextLabel(qname, off)
		if end {
			return nil
		}
		off = next
	}
}

// lookup finds the canonical name qname, which is at or under z's apex.
func (z *zone) lookup(qname string) node {
	if len(qname) == len(z.name) {
		return node{kind: nodeApex}
	}
	relEnd := len(qname) - len(z.name) - 1 // qname[relEnd] is the dot before the apex
	rel := qname[:relEnd]
	if s := z.services[rel]; s != nil {
		return node{kind: nodeService, service: s}
	}
	// <instance-id>.<service>: try every split, the longest service first.
	off := 0
	for {
		next, end := dns.NextLabel(qname, off)
		if end || next > relEnd {
			break
		}
		if s := z.services[qname[next:relEnd]]; s != nil {
			inst := qname[:next-1]
			if t := s.targets[inst]; t != nil {
				return node{kind: nodeTarget, service: s, target: t}
			}
			if s.ents[inst] {
				return node{kind: nodeEmpty}
			}
		}
		off = next
	}
	if z.ents[rel] {
		return node{kind: nodeEmpty}
	}
	if rel == "ns1" {
		return node{kind: nodeNS}
	}
	return node{}
}
