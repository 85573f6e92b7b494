package dns

import (
	"cmp"
	"encoding/json"
	"log/slog"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	sd "github.com/wharfhq/wharf/internal/api/servicediscovery"
	"github.com/wharfhq/wharf/internal/cloudmap"
)

// SOA timers. Refresh, retry and expire only matter to secondaries, which
// Wharf has none of; they are Route 53's.
const (
	soaRefresh    = 7200
	soaRetry      = 900
	soaExpire     = 1209600
	defaultSOATTL = 15
)

// state is the follower's view of the Cloud Map records, reduced to what
// DNS needs, and the zones built from it. Only the follower goroutine uses
// it.
type state struct {
	log        *slog.Logger
	glue       []net.IP
	namespaces map[string]*namespaceRec          // region/id → namespace
	services   map[string]*serviceRec            // region/id → service
	instances  map[string]map[string]instanceRec // region/service-id → instance id → instance
	svcByNS    map[string]map[string]bool        // region/namespace-id → service keys
	nsRev      map[string]int64                  // region/namespace-id → revision of its last change

	built    map[string]*builtService // service key → built records
	zones    map[string]*zone         // namespace key → zone
	dirtySvc map[string]bool
	dirtyNS  map[string]bool
	shadowed map[string]string // apex → description of a name conflict, as last logged
}

type namespaceRec struct {
	name    string // canonical apex
	soaTTL  uint32
	created time.Time
}

type serviceRec struct {
	name      string // as created
	nsKey     string
	weighted  bool
	recordTTL map[sd.RecordType]uint32
}

type instanceRec struct {
	healthy bool
	ipv4    net.IP
	ipv6    net.IP
	port    uint16
	hasPort bool
	cname   string
}

type builtService struct {
	zone string // the apex it was built under
	rel  string // relative name, "" when it has no valid name
	svc  *service
}

func newState(log *slog.Logger, glue []net.IP) *state {
	return &state{
		log:        log,
		glue:       glue,
		namespaces: map[string]*namespaceRec{},
		services:   map[string]*serviceRec{},
		instances:  map[string]map[string]instanceRec{},
		svcByNS:    map[string]map[string]bool{},
		nsRev:      map[string]int64{},
		built:      map[string]*builtService{},
		zones:      map[string]*zone{},
		dirtySvc:   map[string]bool{},
		dirtyNS:    map[string]bool{},
		shadowed:   map[string]string{},
	}
}

// apply records a put (value non-nil) or delete of a store key at rev.
func (st *state) apply(key string, value []byte, rev int64) {
	region, kind, rest, ok := cloudmap.ParseKey(key)
	if !ok {
		return
	}
	switch kind {
	case "namespaces":
		nsKey := region + "/" + rest
		delete(st.namespaces, nsKey)
		if value != nil {
			if ns := st.decodeNamespace(key, value); ns != nil {
				st.namespaces[nsKey] = ns
			}
		}
		st.touchNS(nsKey, rev)
	case "services":
		svcKey := region + "/" + rest
		if old := st.services[svcKey]; old != nil {
			st.touchNS(old.nsKey, rev)
			delete(st.svcByNS[old.nsKey], svcKey)
			delete(st.services, svcKey)
		}
		if value != nil {
			if s := st.decodeService(key, region, value); s != nil {
				st.services[svcKey] = s
				if st.svcByNS[s.nsKey] == nil {
					st.svcByNS[s.nsKey] = map[string]bool{}
				}
				st.svcByNS[s.nsKey][svcKey] = true
				st.touchNS(s.nsKey, rev)
			}
		}
		st.dirtySvc[svcKey] = true
	case "instances":
		// Service ids have no slash; instance ids may.
		srvID, instID, ok := strings.Cut(rest, "/")
		if !ok {
			return
		}
		svcKey := region + "/" + srvID
		insts := st.instances[svcKey]
		if value != nil {
			if insts == nil {
				insts = map[string]instanceRec{}
				st.instances[svcKey] = insts
			}
			if inst, ok := st.decodeInstance(key, value); ok {
				insts[instID] = inst
			} else {
				delete(insts, instID)
			}
		} else if insts != nil {
			delete(insts, instID)
			if len(insts) == 0 {
				delete(st.instances, svcKey)
			}
		}
		st.dirtySvc[svcKey] = true
		if s := st.services[svcKey]; s != nil {
			st.touchNS(s.nsKey, rev)
		}
	}
}

func (st *state) touchNS(nsKey string, rev int64) {
	st.dirtyNS[nsKey] = true
	st.nsRev[nsKey] = max(st.nsRev[nsKey], rev)
}

func (st *state) decodeNamespace(key string, value []byte) *namespaceRec {
	var r cloudmap.NamespaceRecord
	if err := json.Unmarshal(value, &r); err != nil {
		st.log.Warn("skip undecodable namespace record", "key", key, "error", err)
		return nil
	}
	if r.Type != sd.NamespaceTypeDnsPrivate && r.Type != sd.NamespaceTypeDnsPublic {
		return nil
	}
	name, ok := canonicalName(r.Name)
	if !ok {
		st.log.Warn("skip namespace whose name is no domain name", "key", key, "namespace_name", r.Name)
		return nil
	}
	ns := &namespaceRec{name: name, soaTTL: defaultSOATTL}
	if p := r.Properties; p != nil && p.DnsProperties != nil && p.DnsProperties.SOA != nil && p.DnsProperties.SOA.TTL > 0 {
		ns.soaTTL = clipTTL(p.DnsProperties.SOA.TTL)
	}
	if r.CreateDate != nil {
		ns.created = r.CreateDate.Time
	}
	return ns
}

func (st *state) decodeService(key, region string, value []byte) *serviceRec {
	var r cloudmap.ServiceRecord
	if err := json.Unmarshal(value, &r); err != nil {
		st.log.Warn("skip undecodable service record", "key", key, "error", err)
		return nil
	}
	if r.Type == sd.ServiceTypeHttp || r.DnsConfig == nil || len(r.DnsConfig.DnsRecords) == 0 {
		return nil
	}
	nsID := cmp.Or(r.NamespaceId, r.DnsConfig.NamespaceId)
	if nsID == "" {
		return nil
	}
	s := &serviceRec{
		name:      r.Name,
		nsKey:     region + "/" + nsID,
		weighted:  r.DnsConfig.RoutingPolicy == sd.RoutingPolicyWeighted,
		recordTTL: map[sd.RecordType]uint32{},
	}
	for _, rec := range r.DnsConfig.DnsRecords {
		s.recordTTL[rec.Type] = clipTTL(rec.TTL)
	}
	return s
}

func (st *state) decodeInstance(key string, value []byte) (instanceRec, bool) {
	var r cloudmap.InstanceRecord
	if err := json.Unmarshal(value, &r); err != nil {
		st.log.Warn("skip undecodable instance record", "key", key, "error", err)
		return instanceRec{}, false
	}
	inst := instanceRec{healthy: r.Health == sd.HealthStatusHealthy}
	a := r.Attributes
	if ip := net.ParseIP(a["AWS_INSTANCE_IPV4"]); ip != nil && ip.To4() != nil {
		inst.ipv4 = ip.To4()
	}
	if ip := net.ParseIP(a["AWS_INSTANCE_IPV6"]); ip != nil && ip.To4() == nil {
		inst.ipv6 = ip.To16()
	}
	if p, err := strconv.ParseUint(a["AWS_INSTANCE_PORT"], 10, 16); err == nil {
		inst.port, inst.hasPort = uint16(p), true
	}
	if c := a["AWS_INSTANCE_CNAME"]; c != "" {
		if _, ok := dns.IsDomainName(c); ok {
			inst.cname = dns.Fqdn(c)
		}
	}
	return inst, true
}

// rebuild applies the dirty services and namespaces and returns the new
// index, or nil when nothing visible changed.
func (st *state) rebuild() *index {
	if len(st.dirtySvc) == 0 && len(st.dirtyNS) == 0 {
		return nil
	}
	for svcKey := range st.dirtySvc {
		if s := st.services[svcKey]; s != nil {
			st.dirtyNS[s.nsKey] = true
		}
		if b := st.built[svcKey]; b != nil {
			// Rebuilt below if it still belongs to a zone.
			delete(st.built, svcKey)
		}
	}
	changed := false
	for nsKey := range st.dirtyNS {
		ns := st.namespaces[nsKey]
		if ns == nil {
			if st.zones[nsKey] != nil {
				delete(st.zones, nsKey)
				changed = true
			}
			continue
		}
		st.zones[nsKey] = st.buildZone(nsKey, ns)
		changed = true
	}
	clear(st.dirtySvc)
	clear(st.dirtyNS)
	if !changed {
		return nil
	}
	return st.buildIndex()
}

func (st *state) buildZone(nsKey string, ns *namespaceRec) *zone {
	serial := uint32(min(max(st.nsRev[nsKey], 0), math.MaxUint32))
	mname := "ns1." + ns.name
	z := &zone{
		name: ns.name,
		key:  nsKey,
		soa: &dns.SOA{
			Hdr:     dns.RR_Header{Name: ns.name, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ns.soaTTL},
			Ns:      mname,
			Mbox:    "hostmaster." + ns.name,
			Serial:  serial,
			Refresh: soaRefresh,
			Retry:   soaRetry,
			Expire:  soaExpire,
			Minttl:  ns.soaTTL,
		},
		ns: &dns.NS{
			Hdr: dns.RR_Header{Name: ns.name, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: ns.soaTTL},
			Ns:  mname,
		},
		services: map[string]*service{},
		ents:     map[string]bool{},
	}
	if _, ok := dns.IsDomainName(mname); !ok {
		// The apex is too long to have ns1 under it; keep the NS anyway.
		st.log.Warn("zone too long for its name server name", "zone", ns.name)
	}
	for _, ip := range st.glue {
		hdr := dns.RR_Header{Name: mname, Class: dns.ClassINET, Ttl: ns.soaTTL}
		if ip4 := ip.To4(); ip4 != nil {
			hdr.Rrtype = dns.TypeA
			z.glue = append(z.glue, &dns.A{Hdr: hdr, A: ip4})
		} else {
			hdr.Rrtype = dns.TypeAAAA
			z.glue = append(z.glue, &dns.AAAA{Hdr: hdr, AAAA: ip})
		}
	}
	owners := map[string]string{} // relative name → service key serving it
	for svcKey := range st.svcByNS[nsKey] {
		b := st.built[svcKey]
		if b == nil || b.zone != ns.name {
			b = st.buildService(svcKey, ns)
			st.built[svcKey] = b
		}
		if b.svc == nil || b.rel == "" {
			continue
		}
		// Cloud Map forbids two services of one name in a namespace; should
		// it happen anyway, the smaller service id wins, every time.
		if other, dup := owners[b.rel]; dup && other < svcKey {
			continue
		}
		owners[b.rel] = svcKey
		z.services[b.rel] = b.svc
	}
	for rel := range z.services {
		for _, anc := range ancestors(rel) {
			if z.services[anc] == nil {
				z.ents[anc] = true
			}
		}
	}
	return z
}

// buildService builds a service's records under namespace ns.
func (st *state) buildService(svcKey string, ns *namespaceRec) *builtService {
	b := &builtService{zone: ns.name}
	rec := st.services[svcKey]
	if rec == nil {
		return b
	}
	relFQDN, ok := canonicalName(rec.name)
	if !ok || !fitsUnder(relFQDN, ns.name) {
		st.log.Warn("skip service whose name makes no domain name", "service_name", rec.name, "zone", ns.name)
		return b
	}
	b.rel = strings.TrimSuffix(relFQDN, ".")
	svcName := b.rel + "." + ns.name
	s := &service{
		id:       svcKey,
		weighted: rec.weighted,
		targets:  map[string]*target{},
		ents:     map[string]bool{},
	}
	aTTL, hasA := rec.recordTTL[sd.RecordTypeA]
	aaaaTTL, hasAAAA := rec.recordTTL[sd.RecordTypeAaaa]
	srvTTL, hasSRV := rec.recordTTL[sd.RecordTypeSrv]
	cnameTTL, hasCNAME := rec.recordTTL[sd.RecordTypeCname]
	// SRV targets' addresses take the A/AAAA TTL when the service has one.
	tA, tAAAA := srvTTL, srvTTL
	if hasA {
		tA = aTTL
	}
	if hasAAAA {
		tAAAA = aaaaTTL
	}
	insts := st.instances[svcKey]
	ids := make([]string, 0, len(insts))
	for id := range insts {
		ids = append(ids, id)
	}
	// A stable order keeps answers of equal sets comparable in tests and logs.
	slices.Sort(ids)
	for _, id := range ids {
		inst := insts[id]
		if hasA && inst.ipv4 != nil {
			addTo(&s.a, aRecord(svcName, aTTL, inst.ipv4), inst.healthy)
		}
		if hasAAAA && inst.ipv6 != nil {
			addTo(&s.aaaa, aaaaRecord(svcName, aaaaTTL, inst.ipv6), inst.healthy)
		}
		if hasCNAME && inst.cname != "" {
			addTo(&s.cname, &dns.CNAME{Hdr: header(svcName, dns.TypeCNAME, cnameTTL), Target: inst.cname}, inst.healthy)
		}
		if hasSRV && inst.hasPort && (inst.ipv4 != nil || inst.ipv6 != nil) {
			instFQDN, ok := canonicalName(id)
			if !ok {
				continue
			}
			rel := strings.TrimSuffix(instFQDN, ".")
			name := rel + "." + svcName
			if _, ok := dns.IsDomainName(name); !ok {
				continue
			}
			t := &target{srv: &dns.SRV{Hdr: header(svcName, dns.TypeSRV, srvTTL), Priority: 1, Weight: 1, Port: inst.port, Target: name}}
			if inst.ipv4 != nil {
				t.a = aRecord(name, tA, inst.ipv4)
			}
			if inst.ipv6 != nil {
				t.aaaa = aaaaRecord(name, tAAAA, inst.ipv6)
			}
			s.targets[rel] = t
			addTo(&s.srv, t, inst.healthy)
			for _, anc := range ancestors(rel) {
				s.ents[anc] = true
			}
		}
	}
	if len(s.a.all)+len(s.aaaa.all)+len(s.srv.all)+len(s.cname.all) > 0 {
		b.svc = s
	}
	return b
}

func aRecord(owner string, ttl uint32, ip net.IP) dns.RR {
	return &dns.A{Hdr: header(owner, dns.TypeA, ttl), A: ip}
}

func aaaaRecord(owner string, ttl uint32, ip net.IP) dns.RR {
	return &dns.AAAA{Hdr: header(owner, dns.TypeAAAA, ttl), AAAA: ip}
}

func addTo[T any](r *recordSet[T], v T, healthy bool) {
	r.all = append(r.all, v)
	if healthy {
		r.healthy = append(r.healthy, v)
	}
}

// buildIndex assembles the zones into an index, settling zones of the same
// name in several regions.
func (st *state) buildIndex() *index {
	ix := &index{zones: make(map[string]*zone, len(st.zones))}
	claims := map[string][]string{} // apex → namespace keys, winner first
	for nsKey, z := range st.zones {
		cur := ix.zones[z.name]
		if cur == nil || st.older(nsKey, cur.key) {
			ix.zones[z.name] = z
		}
		claims[z.name] = append(claims[z.name], nsKey)
	}
	for apex, keys := range claims {
		if len(keys) < 2 {
			if st.shadowed[apex] != "" {
				delete(st.shadowed, apex)
			}
			continue
		}
		winner := ix.zones[apex].key
		slices.Sort(keys)
		desc := winner + " over " + strings.Join(keys, ",")
		if st.shadowed[apex] != desc {
			st.shadowed[apex] = desc
			st.log.Warn("several namespaces share a zone; the oldest serves it",
				"zone", apex, "namespace", winner, "namespaces", keys)
		}
	}
	for apex := range st.shadowed {
		if len(claims[apex]) < 2 {
			delete(st.shadowed, apex)
		}
	}
	return ix
}

// older reports whether namespace a should serve a zone rather than b.
func (st *state) older(a, b string) bool {
	na, nb := st.namespaces[a], st.namespaces[b]
	switch {
	case na.created.IsZero() != nb.created.IsZero():
		return !na.created.IsZero()
	case !na.created.Equal(nb.created):
		return na.created.Before(nb.created)
	}
	return a < b
}

// canonicalName turns a dot-separated name into the form queries are
// compared in: lower case, escaped as miekg/dns presents names, fully
// qualified. ok is false when it is no valid domain name.
func canonicalName(name string) (string, bool) {
	name = strings.TrimSuffix(name, ".")
	if name == "" || len(name) > 253 {
		return "", false
	}
	var b strings.Builder
	b.Grow(len(name) + 2)
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return "", false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			switch {
			case 'A' <= c && c <= 'Z':
				b.WriteByte(c + 'a' - 'A')
			case c == ' ' || c == '\'' || c == '@' || c == ';' || c == '(' || c == ')' || c == '"' || c == '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case c < ' ' || c > '~':
				b.WriteByte('\\')
				b.WriteString(strconv.Itoa(int(c) + 1000)[1:])
			default:
				b.WriteByte(c)
			}
		}
		b.WriteByte('.')
	}
	s := b.String()
	if _, ok := dns.IsDomainName(s); !ok {
		return "", false
	}
	return s, true
}

// fitsUnder reports whether the relative name rel (fully qualified form)
// under apex makes a valid domain name.
func fitsUnder(rel, apex string) bool {
	_, ok := dns.IsDomainName(rel + apex)
	return ok
}

// ancestors returns the names strictly between a relative name and the
// apex: "a.b.c" → "b.c", "c".
func ancestors(rel string) []string {
	var out []string
	s := rel + "."
	off := 0
	for {
		next, end := dns.NextLabel(s, off)
		if end {
			return out
		}
		out = append(out, s[next:len(s)-1])
		off = next
	}
}

// lowerASCII lower-cases ASCII letters, without allocating when there are
// none to change.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

func clipTTL(ttl int64) uint32 {
	return uint32(min(max(ttl, 0), math.MaxInt32))
}
