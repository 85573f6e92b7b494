package cloudmap

import (
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	sd "github.com/wharfhq/wharf/internal/api/servicediscovery"
)

// Checks Cloud Map makes beyond the model's constraints, which the
// generated Validate methods already enforce.

// Reserved instance attributes.
const (
	attrAliasDNSName = "AWS_ALIAS_DNS_NAME"
	attrEC2Instance  = "AWS_EC2_INSTANCE_ID"
	attrInitHealth   = "AWS_INIT_HEALTH_STATUS"
	attrCNAME        = "AWS_INSTANCE_CNAME"
	attrIPv4         = "AWS_INSTANCE_IPV4"
	attrIPv6         = "AWS_INSTANCE_IPV6"
	attrPort         = "AWS_INSTANCE_PORT"
)

var reservedAttributes = []string{attrAliasDNSName, attrEC2Instance, attrInitHealth, attrCNAME, attrIPv4, attrIPv6, attrPort}

const (
	maxTags              = 50
	maxCustomAttributes  = 30
	maxAttributesSize    = 5000
	maxServiceAttributes = 30
	defaultSOATTL        = 15
	defaultFailures      = 3
)

// checkTags applies Cloud Map's tag rules beyond the model's lengths; the
// count is checked by the caller, which knows the resource.
func checkTags(tags []sd.Tag) error {
	seen := map[string]bool{}
	for _, t := range tags {
		if strings.HasPrefix(strings.ToLower(t.Key), "aws:") {
			return invalidInput("Tag key %q uses the reserved prefix aws:.", t.Key)
		}
		if seen[t.Key] {
			return invalidInput("Tag key %q appears more than once.", t.Key)
		}
		seen[t.Key] = true
	}
	return nil
}

var dnsLabel = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$`)

// checkDNSName checks that name (a DNS namespace's name or a CNAME target)
// is a domain name: dot-separated labels of up to 63 letters, digits,
// hyphens and underscores, 253 characters in all, an optional final dot.
func checkDNSName(name string) bool {
	name = strings.TrimSuffix(name, ".")
	if name == "" || len(name) > 253 {
		return false
	}
	for _, l := range strings.Split(name, ".") {
		if !dnsLabel.MatchString(l) {
			return false
		}
	}
	return true
}

// canonicalDNSName is how DNS names compare: case-insensitively, without
// the final dot.
func canonicalDNSName(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) }

// serviceConfig is how a service is discovered, after defaults.
type serviceConfig struct {
	typ    sd.ServiceType
	dns    *sd.DnsConfig
	health *sd.HealthCheckConfig
	custom *sd.HealthCheckCustomConfig
}

// checkServiceConfig checks a CreateService request's discovery settings
// against its namespace's type, as Cloud Map does, and applies defaults.
func checkServiceConfig(nsType sd.NamespaceType, nsID string, typ sd.ServiceTypeOption, dns *sd.DnsConfig, hc *sd.HealthCheckConfig, custom *sd.HealthCheckCustomConfig) (serviceConfig, error) {
	var out serviceConfig
	if hc != nil && custom != nil {
		return out, invalidInput("HealthCheckConfig and HealthCheckCustomConfig can't both be specified; choose Cloud Map's health checks or your own.")
	}
	switch {
	case nsType == sd.NamespaceTypeHttp:
		if dns != nil {
			return out, invalidInput("DnsConfig isn't supported for services in HTTP namespaces: their instances are found with DiscoverInstances. Omit DnsConfig.")
		}
		out.typ = sd.ServiceTypeHttp
	case typ == sd.ServiceTypeOptionHttp:
		if dns != nil && len(dns.DnsRecords) > 0 {
			return out, invalidInput("A service of Type HTTP has no DNS records; omit DnsConfig or Type.")
		}
		out.typ = sd.ServiceTypeHttp
	default:
		if dns == nil || len(dns.DnsRecords) == 0 {
			return out, invalidInput("Services in DNS namespaces need a DnsConfig with at least one DnsRecord (or Type HTTP for discovery through the API only).")
		}
		d, err := checkDNSConfig(dns.RoutingPolicy, dns.DnsRecords)
		if err != nil {
			return out, err
		}
		d.NamespaceId = nsID
		out.typ, out.dns = sd.ServiceTypeDnsHttp, d
	}
	if hc != nil {
		h, err := checkHealthCheckConfig(nsType, out.dns, hc)
		if err != nil {
			return out, err
		}
		out.health = h
	}
	if custom != nil {
		// FailureThreshold is no longer supported and always 1.
		out.custom = &sd.HealthCheckCustomConfig{FailureThreshold: 1}
	}
	return out, nil
}

// checkDNSConfig checks a routing policy and record set: A, AAAA and SRV in
// any combination, or a CNAME alone with WEIGHTED routing.
func checkDNSConfig(policy sd.RoutingPolicy, records []sd.DnsRecord) (*sd.DnsConfig, error) {
	if policy == "" {
		policy = sd.RoutingPolicyMultivalue
	}
	seen := map[sd.RecordType]bool{}
	for _, r := range records {
		if seen[r.Type] {
			return nil, invalidInput("DnsRecords lists type %s more than once.", r.Type)
		}
		seen[r.Type] = true
	}
	if seen[sd.RecordTypeCname] {
		if len(records) > 1 {
			return nil, invalidInput("A CNAME record can't be combined with other record types; the combinations are A, AAAA, A and AAAA, SRV (with A and/or AAAA), or CNAME alone.")
		}
		if policy != sd.RoutingPolicyWeighted {
			return nil, invalidInput("CNAME records need the WEIGHTED routing policy, not %s.", policy)
		}
	}
	return &sd.DnsConfig{RoutingPolicy: policy, DnsRecords: slices.Clone(records)}, nil
}

// checkHealthCheckConfig checks a HealthCheckConfig for a service of a
// namespace type with dns records, and applies its defaults.
func checkHealthCheckConfig(nsType sd.NamespaceType, dns *sd.DnsConfig, hc *sd.HealthCheckConfig) (*sd.HealthCheckConfig, error) {
	if nsType == sd.NamespaceTypeDnsPrivate {
		return nil, invalidInput("HealthCheckConfig is supported in public DNS and HTTP namespaces only; in private DNS namespaces use HealthCheckCustomConfig.")
	}
	if dns != nil && hasRecord(dns, sd.RecordTypeCname) {
		return nil, invalidInput("HealthCheckConfig can't be specified for a service with a CNAME record.")
	}
	h := *hc
	if h.Type == sd.HealthCheckTypeTcp {
		if h.ResourcePath != "" {
			return nil, invalidInput("ResourcePath can't be specified for TCP health checks.")
		}
	} else if h.ResourcePath == "" {
		h.ResourcePath = "/"
	}
	if h.FailureThreshold == 0 {
		h.FailureThreshold = defaultFailures
	}
	return &h, nil
}

func hasRecord(d *sd.DnsConfig, t sd.RecordType) bool {
	if d == nil {
		return false
	}
	for _, r := range d.DnsRecords {
		if r.Type == t {
			return true
		}
	}
	return false
}

// checkDNSChange checks UpdateService's new records against the service's:
// only TTLs may change.
func checkDNSChange(have *sd.DnsConfig, change *sd.DnsConfigChange) (*sd.DnsConfig, error) {
	if have == nil {
		return nil, invalidInput("The service has no DNS records to update; omit DnsConfig.")
	}
	types := func(rs []sd.DnsRecord) []string {
		var out []string
		for _, r := range rs {
			out = append(out, string(r.Type))
		}
		slices.Sort(out)
		return out
	}
	if !slices.Equal(types(have.DnsRecords), types(change.DnsRecords)) {
		return nil, invalidInput("UpdateService can change the TTLs of the service's records (%s) but not their types (%s).",
			strings.Join(types(have.DnsRecords), ", "), strings.Join(types(change.DnsRecords), ", "))
	}
	out := *have
	out.DnsRecords = slices.Clone(change.DnsRecords)
	return &out, nil
}

// checkInstanceAttributes checks RegisterInstance's attributes against the
// service's records and health checks.
func checkInstanceAttributes(svc *ServiceRecord, nsType sd.NamespaceType, attrs map[string]string) error {
	custom, size := 0, 0
	for k, v := range attrs {
		size += len(k) + len(v)
		if !slices.Contains(reservedAttributes, k) {
			custom++
		}
	}
	if custom > maxCustomAttributes {
		return invalidInput("An instance can have at most %d custom attributes; %d were given.", maxCustomAttributes, custom)
	}
	if size > maxAttributesSize {
		return invalidInput("The attributes' keys and values add up to %d characters; at most %d are allowed.", size, maxAttributesSize)
	}
	has := func(k string) bool { _, ok := attrs[k]; return ok }
	if v, ok := attrs[attrIPv4]; ok {
		if a, err := netip.ParseAddr(v); err != nil || !a.Is4() {
			return invalidInput("%s %q is not an IPv4 address.", attrIPv4, v)
		}
	}
	if v, ok := attrs[attrIPv6]; ok {
		if a, err := netip.ParseAddr(v); err != nil || !a.Is6() || a.Is4In6() {
			return invalidInput("%s %q is not an IPv6 address.", attrIPv6, v)
		}
	}
	if v, ok := attrs[attrPort]; ok {
		if p, err := strconv.Atoi(v); err != nil || p < 1 || p > 65535 {
			return invalidInput("%s %q is not a port number from 1 to 65535.", attrPort, v)
		}
	}
	if v, ok := attrs[attrCNAME]; ok && !checkDNSName(v) {
		return invalidInput("%s %q is not a domain name.", attrCNAME, v)
	}
	if v, ok := attrs[attrInitHealth]; ok {
		if v != string(sd.HealthStatusHealthy) && v != string(sd.HealthStatusUnhealthy) {
			return invalidInput("%s must be HEALTHY or UNHEALTHY, not %q.", attrInitHealth, v)
		}
		if svc.HealthCheckCustomConfig == nil {
			return invalidInput("%s can only be given for services with HealthCheckCustomConfig; service %s has none.", attrInitHealth, svc.Id)
		}
	}
	if has(attrEC2Instance) {
		if nsType != sd.NamespaceTypeHttp {
			return invalidInput("%s is supported in HTTP namespaces only.", attrEC2Instance)
		}
		for k := range attrs {
			if k != attrEC2Instance && k != attrInitHealth {
				return invalidInput("With %s the only other attribute allowed is %s, not %s.", attrEC2Instance, attrInitHealth, k)
			}
		}
		return nil
	}
	if has(attrAliasDNSName) {
		if !checkDNSName(attrs[attrAliasDNSName]) {
			return invalidInput("%s %q is not a domain name.", attrAliasDNSName, attrs[attrAliasDNSName])
		}
		d := svc.DnsConfig
		if d == nil || d.RoutingPolicy != sd.RoutingPolicyWeighted || !(hasRecord(d, sd.RecordTypeA) || hasRecord(d, sd.RecordTypeAaaa)) {
			return invalidInput("%s needs a service with WEIGHTED routing and an A or AAAA record.", attrAliasDNSName)
		}
		for _, k := range []string{attrIPv4, attrIPv6, attrPort, attrCNAME} {
			if has(k) {
				return invalidInput("%s can't be combined with %s.", attrAliasDNSName, k)
			}
		}
		return nil
	}
	if svc.Type != sd.ServiceTypeHttp && svc.DnsConfig != nil {
		for _, r := range svc.DnsConfig.DnsRecords {
			switch r.Type {
			case sd.RecordTypeA:
				if !has(attrIPv4) {
					return invalidInput("Service %s has an A record, so %s is required.", svc.Id, attrIPv4)
				}
			case sd.RecordTypeAaaa:
				if !has(attrIPv6) {
					return invalidInput("Service %s has an AAAA record, so %s is required.", svc.Id, attrIPv6)
				}
			case sd.RecordTypeSrv:
				if !has(attrPort) {
					return invalidInput("Service %s has an SRV record, so %s is required.", svc.Id, attrPort)
				}
				if !has(attrIPv4) && !has(attrIPv6) {
					return invalidInput("Service %s has an SRV record, so %s or %s is required.", svc.Id, attrIPv4, attrIPv6)
				}
			case sd.RecordTypeCname:
				if !has(attrCNAME) {
					return invalidInput("Service %s has a CNAME record, so %s is required.", svc.Id, attrCNAME)
				}
			}
		}
	}
	if svc.HealthCheckConfig != nil {
		if !has(attrPort) {
			return invalidInput("Service %s has a health check, so %s is required.", svc.Id, attrPort)
		}
		if !has(attrIPv4) && !has(attrIPv6) {
			return invalidInput("Service %s has a health check, so %s or %s is required.", svc.Id, attrIPv4, attrIPv6)
		}
	}
	return nil
}

// initialHealth is an instance's health when it is (re)registered: custom
// health starts at AWS_INIT_HEALTH_STATUS (default HEALTHY); Cloud Map's
// health checks start HEALTHY, and keep the old status when the checked
// address did not change; instances of services without health checks are
// always HEALTHY.
func initialHealth(svc *ServiceRecord, old *InstanceRecord, attrs map[string]string) sd.HealthStatus {
	switch {
	case svc.HealthCheckCustomConfig != nil:
		if v := attrs[attrInitHealth]; v == string(sd.HealthStatusUnhealthy) {
			return sd.HealthStatusUnhealthy
		}
	case svc.HealthCheckConfig != nil:
		if old != nil && old.Health != "" {
			same := true
			for _, k := range []string{attrIPv4, attrIPv6, attrPort, attrCNAME} {
				same = same && old.Attributes[k] == attrs[k]
			}
			if same {
				return old.Health
			}
		}
	}
	return sd.HealthStatusHealthy
}

// reportedHealth is the health status the API shows for an instance.
func reportedHealth(svc *ServiceRecord, inst *InstanceRecord) sd.HealthStatus {
	if svc.HealthCheckConfig == nil && svc.HealthCheckCustomConfig == nil {
		return sd.HealthStatusUnknown
	}
	if inst.Health == "" {
		return sd.HealthStatusUnknown
	}
	return inst.Health
}
