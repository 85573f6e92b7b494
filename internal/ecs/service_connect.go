package ecs

import (
	"regexp"
	"strconv"
	"strings"

	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/cloudmap"
	"github.com/wharfhq/wharf/internal/ecs/state"
	"github.com/wharfhq/wharf/internal/store"
)

// Tags of an ECS service that set Wharf's Service Connect extensions for
// the service's callers, read when a deployment starts.
const (
	tagBalancer           = "wharf:service-connect:balancer"             // round_robin or least_request
	tagZoneAware          = "wharf:service-connect:zone-aware"           // "true": prefer the caller's zone
	tagRetries            = "wharf:service-connect:retries"              // 0 to 10; default 2
	tagRetryNonIdempotent = "wharf:service-connect:retry-non-idempotent" // "true": retry POSTs and gRPC calls
)

// extensionAttributes turns a service's extension tags into Cloud Map
// attributes, refusing values that mean nothing.
func extensionAttributes(tags []ecsapi.Tag) (map[string]string, error) {
	out := map[string]string{}
	for _, t := range tags {
		boolean := func(attr string) error {
			switch strings.ToLower(t.Value) {
			case "true":
				out[attr] = "true"
			case "false":
			default:
				return invalidParameter("Tag %s must be true or false, not %q.", t.Key, t.Value)
			}
			return nil
		}
		var err error
		switch t.Key {
		case state.TagMutualTLS:
			err = boolean(state.AttrTLS)
		case tagZoneAware:
			err = boolean(state.AttrZoneAware)
		case tagRetryNonIdempotent:
			err = boolean(state.AttrRetryNonIdempotent)
		case tagBalancer:
			if t.Value != "round_robin" && t.Value != "least_request" {
				err = invalidParameter("Tag %s must be round_robin or least_request, not %q.", t.Key, t.Value)
			}
			out[state.AttrBalancer] = t.Value
		case tagRetries:
			if n, perr := strconv.Atoi(t.Value); perr != nil || n < 0 || n > 10 {
				err = invalidParameter("Tag %s must be a number of retries from 0 to 10, not %q.", t.Key, t.Value)
			}
			out[state.AttrRetries] = t.Value
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

var discoveryNamePattern = regexp.MustCompile(`^[a-z0-9_][a-z0-9_-]{0,63}$`)

// serviceConnect checks a Service Connect configuration as ECS does, makes
// sure its namespace and its services' Cloud Map services exist, and
// returns the configuration as deployments record it with the resources
// made for it. A nil or disabled configuration gives nothing.
func (s *Service) serviceConnect(tx *store.Tx, c call, cl *clusterRecord, tags []ecsapi.Tag, scc *ecsapi.ServiceConnectConfiguration, td *ecsapi.TaskDefinition) (*ecsapi.ServiceConnectConfiguration, []ecsapi.ServiceConnectServiceResource, error) {
	if scc == nil || !scc.Enabled {
		return scc, nil, nil
	}
	if td.NetworkMode != ecsapi.NetworkModeAwsvpc && td.NetworkMode != ecsapi.NetworkModeBridge {
		return nil, nil, invalidParameter("Service Connect supports tasks in network modes awsvpc and bridge, not %s.", td.NetworkMode)
	}
	ref := scc.Namespace
	if ref == "" && cl.ServiceConnectDefaults != nil {
		ref = cl.ServiceConnectDefaults.Namespace
	}
	if ref == "" {
		return nil, nil, invalidParameter("Service Connect needs a namespace: give serviceConnectConfiguration.namespace or set the cluster's serviceConnectDefaults.")
	}
	if scc.AccessLogConfiguration != nil && scc.LogConfiguration == nil {
		return nil, nil, invalidParameter("accessLogConfiguration needs a logConfiguration for the Service Connect proxy.")
	}
	ns, err := cloudmap.EnsureHTTPNamespace(tx, c.Region, s.Account, ref, c.Now)
	if cloudmap.IsNoSuchNamespace(err) {
		return nil, nil, clientCode("NamespaceNotFoundException", "Namespace "+ref+" was not found; create it with `aws servicediscovery create-http-namespace`, or give a name and ECS creates it.")
	}
	if err != nil {
		return nil, nil, err
	}
	ext, err := extensionAttributes(tags)
	if err != nil {
		return nil, nil, err
	}
	out := *scc
	out.Namespace = ns.Arn
	out.Services = nil
	var resources []ecsapi.ServiceConnectServiceResource
	seen := map[string]bool{}
	for i, sv := range scc.Services {
		_, pm := state.FindPortMapping(td, sv.PortName)
		if pm == nil {
			return nil, nil, invalidParameter("Service Connect portName %q does not name a port mapping of the task definition; name one with portMappings[].name.", sv.PortName)
		}
		if sv.DiscoveryName == "" {
			sv.DiscoveryName = sv.PortName
		}
		if !discoveryNamePattern.MatchString(sv.DiscoveryName) {
			return nil, nil, invalidParameter("Service Connect discoveryName %q is invalid: up to 64 lower-case letters, digits, underscores and hyphens, not starting with a hyphen.", sv.DiscoveryName)
		}
		if seen[sv.DiscoveryName] {
			return nil, nil, invalidParameter("Service Connect discoveryName %q is used twice.", sv.DiscoveryName)
		}
		seen[sv.DiscoveryName] = true
		if len(sv.ClientAliases) > 1 {
			return nil, nil, invalidParameter("A Service Connect service can have at most one client alias.")
		}
		if len(sv.ClientAliases) == 0 {
			sv.ClientAliases = []ecsapi.ServiceConnectClientAlias{{Port: pm.ContainerPort}}
		}
		alias := &sv.ClientAliases[0]
		if alias.Port == nil {
			return nil, nil, invalidParameter("The client alias of Service Connect service %q needs a port.", sv.DiscoveryName)
		}
		if alias.DnsName == "" {
			alias.DnsName = sv.DiscoveryName + "." + ns.Name
		}
		if sv.IngressPortOverride == nil && state.FirstIngressPort+i == int(deref(pm.ContainerPort)) {
			return nil, nil, invalidParameter("Container port %d is where the Service Connect proxy listens; give an ingressPortOverride.", state.FirstIngressPort+i)
		}
		protocol := state.ProtocolOf(pm)
		if sv.Timeout != nil && sv.Timeout.PerRequestTimeoutSeconds != nil && protocol == "tcp" {
			return nil, nil, invalidParameter("perRequestTimeoutSeconds applies to http, http2 and grpc ports; port %q is TCP.", sv.PortName)
		}
		attrs := map[string]string{
			state.AttrDNSName:  alias.DnsName,
			state.AttrPort:     strconv.Itoa(int(*alias.Port)),
			state.AttrProtocol: protocol,
		}
		for k, v := range ext {
			attrs[k] = v
		}
		switch {
		case sv.Tls != nil && (sv.Tls.IssuerCertificateAuthority == nil || sv.Tls.IssuerCertificateAuthority.AwsPcaAuthorityArn == ""):
			return nil, nil, invalidParameter("Service Connect tls of service %q needs issuerCertificateAuthority.awsPcaAuthorityArn; Wharf's certificate authority issues the certificates whatever it names.", sv.DiscoveryName)
		case sv.Tls != nil && attrs[state.AttrTLS] == "true":
			attrs[state.AttrTLS] = "mutual"
		case sv.Tls != nil:
			attrs[state.AttrTLS] = "tls"
		case attrs[state.AttrTLS] != "":
			return nil, nil, invalidParameter("Tag %s needs tls on Service Connect service %q.", state.TagMutualTLS, sv.DiscoveryName)
		}
		if t := sv.Timeout; t != nil {
			if t.PerRequestTimeoutSeconds != nil {
				attrs[state.AttrPerRequestTimeout] = strconv.Itoa(int(*t.PerRequestTimeoutSeconds))
			}
			if t.IdleTimeoutSeconds != nil {
				attrs[state.AttrIdleTimeout] = strconv.Itoa(int(*t.IdleTimeoutSeconds))
			}
		}
		cm, err := cloudmap.EnsureService(tx, c.Region, s.Account, ns, sv.DiscoveryName, attrs, c.Now)
		if err != nil {
			return nil, nil, err
		}
		out.Services = append(out.Services, sv)
		resources = append(resources, ecsapi.ServiceConnectServiceResource{DiscoveryName: sv.DiscoveryName, DiscoveryArn: cm.Arn})
	}
	return &out, resources, nil
}
