package ecs

import (
	"context"
	"errors"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/wharfhq/wharf/internal/api"
	"github.com/wharfhq/wharf/internal/api/agentapi"
	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/cloudmap"
	"github.com/wharfhq/wharf/internal/ecs/state"
	"github.com/wharfhq/wharf/internal/pki"
	"github.com/wharfhq/wharf/internal/store"
)

// Attributes of the Cloud Map services Service Connect creates: how callers
// reach the service.
const (
	scDNSName           = "ECS_SERVICE_CONNECT_DNS_NAME"
	scPort              = "ECS_SERVICE_CONNECT_PORT"
	scProtocol          = "ECS_SERVICE_CONNECT_PROTOCOL"
	scPerRequestTimeout = "ECS_SERVICE_CONNECT_PER_REQUEST_TIMEOUT"
	scIdleTimeout       = "ECS_SERVICE_CONNECT_IDLE_TIMEOUT"

	// Wharf's: "tls" or "mutual" when the service's proxies serve TLS, and
	// how callers route to it.
	scTLS                = "WHARF_SERVICE_CONNECT_TLS"
	scBalancer           = "WHARF_SERVICE_CONNECT_BALANCER"
	scZoneAware          = "WHARF_SERVICE_CONNECT_ZONE_AWARE"
	scRetries            = "WHARF_SERVICE_CONNECT_RETRIES"
	scRetryNonIdempotent = "WHARF_SERVICE_CONNECT_RETRY_NON_IDEMPOTENT"
)

// Tags of an ECS service that set Wharf's Service Connect extensions for
// the service's callers, read when a deployment starts.
const (
	tagMutualTLS          = "wharf:service-connect:mtls"                 // "true": require callers' certificates
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
		case tagMutualTLS:
			err = boolean(scTLS)
		case tagZoneAware:
			err = boolean(scZoneAware)
		case tagRetryNonIdempotent:
			err = boolean(scRetryNonIdempotent)
		case tagBalancer:
			if t.Value != "round_robin" && t.Value != "least_request" {
				err = invalidParameter("Tag %s must be round_robin or least_request, not %q.", t.Key, t.Value)
			}
			out[scBalancer] = t.Value
		case tagRetries:
			if n, perr := strconv.Atoi(t.Value); perr != nil || n < 0 || n > 10 {
				err = invalidParameter("Tag %s must be a number of retries from 0 to 10, not %q.", t.Key, t.Value)
			}
			out[scRetries] = t.Value
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
	ns, err := cloudmap.EnsureHTTPNamespace(tx, c.Region, s.account, ref, c.Now)
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
			scDNSName:  alias.DnsName,
			scPort:     strconv.Itoa(int(*alias.Port)),
			scProtocol: protocol,
		}
		for k, v := range ext {
			attrs[k] = v
		}
		switch {
		case sv.Tls != nil && (sv.Tls.IssuerCertificateAuthority == nil || sv.Tls.IssuerCertificateAuthority.AwsPcaAuthorityArn == ""):
			return nil, nil, invalidParameter("Service Connect tls of service %q needs issuerCertificateAuthority.awsPcaAuthorityArn; Wharf's certificate authority issues the certificates whatever it names.", sv.DiscoveryName)
		case sv.Tls != nil && attrs[scTLS] == "true":
			attrs[scTLS] = "mutual"
		case sv.Tls != nil:
			attrs[scTLS] = "tls"
		case attrs[scTLS] != "":
			return nil, nil, invalidParameter("Tag %s needs tls on Service Connect service %q.", tagMutualTLS, sv.DiscoveryName)
		}
		if t := sv.Timeout; t != nil {
			if t.PerRequestTimeoutSeconds != nil {
				attrs[scPerRequestTimeout] = strconv.Itoa(int(*t.PerRequestTimeoutSeconds))
			}
			if t.IdleTimeoutSeconds != nil {
				attrs[scIdleTimeout] = strconv.Itoa(int(*t.IdleTimeoutSeconds))
			}
		}
		cm, err := cloudmap.EnsureService(tx, c.Region, s.account, ns, sv.DiscoveryName, attrs, c.Now)
		if err != nil {
			return nil, nil, err
		}
		out.Services = append(out.Services, sv)
		resources = append(resources, ecsapi.ServiceConnectServiceResource{DiscoveryName: sv.DiscoveryName, DiscoveryArn: cm.Arn})
	}
	return &out, resources, nil
}

// ServiceConnectView describes namespaces' client-server services to the
// agents whose tasks call them, waiting for a change after the index the
// agent has.
func (s *Service) ServiceConnectView(ctx context.Context, in *agentapi.ServiceConnectViewRequest) (*agentapi.ServiceConnectViewResponse, error) {
	c := s.call(ctx)
	if in.Index > 0 && in.WaitSeconds > 0 {
		s.discovery.wait(ctx, c.Region, in.Index, min(time.Duration(in.WaitSeconds)*time.Second, maxPollWait))
	}
	rev, err := s.st.Revision(ctx)
	if err != nil {
		return nil, err
	}
	out := &agentapi.ServiceConnectViewResponse{Index: rev, Namespaces: []agentapi.NamespaceView{}}
	tls := false
	err = s.st.Update(ctx, func(tx *store.Tx) error {
		out.Namespaces, tls = out.Namespaces[:0], false
		for _, ref := range in.Namespaces {
			ns, err := cloudmap.FindNamespace(tx, c.Region, ref)
			if err != nil {
				return err
			}
			if ns == nil {
				continue
			}
			view := agentapi.NamespaceView{Arn: ns.Arn, Name: ns.Name, Services: []agentapi.ServiceView{}}
			svcs, err := cloudmap.ServicesOf(tx, c.Region, ns.Id)
			if err != nil {
				return err
			}
			for _, cm := range svcs {
				port, err := strconv.Atoi(cm.Attributes[scPort])
				if err != nil || cm.Attributes[scDNSName] == "" {
					continue // not a Service Connect service
				}
				sv := agentapi.ServiceView{DiscoveryName: cm.Name, DNSName: cm.Attributes[scDNSName], Port: int32(port), Protocol: cm.Attributes[scProtocol], Endpoints: []agentapi.Endpoint{}}
				if v, err := strconv.Atoi(cm.Attributes[scPerRequestTimeout]); err == nil {
					sv.PerRequestTimeoutSeconds = ptr(int32(v))
				}
				if v, err := strconv.Atoi(cm.Attributes[scIdleTimeout]); err == nil {
					sv.IdleTimeoutSeconds = ptr(int32(v))
				}
				switch cm.Attributes[scTLS] {
				case "tls":
					sv.TLS = &agentapi.ServiceTLS{}
				case "mutual":
					sv.TLS = &agentapi.ServiceTLS{Mutual: true}
				}
				sv.Routing = routing(cm.Attributes)
				insts, err := cloudmap.InstancesOf(tx, c.Region, cm.Id)
				if err != nil {
					return err
				}
				for _, r := range insts {
					if r.Health != "HEALTHY" || r.Attributes["AWS_INSTANCE_IPV4"] == "" {
						continue
					}
					sv.Endpoints = append(sv.Endpoints, agentapi.Endpoint{
						Address: r.Attributes["AWS_INSTANCE_IPV4"] + ":" + r.Attributes["AWS_INSTANCE_PORT"],
						Zone:    r.Attributes["AVAILABILITY_ZONE"],
						TaskArn: r.ECSTask,
					})
				}
				sort.Slice(sv.Endpoints, func(i, j int) bool { return sv.Endpoints[i].Address < sv.Endpoints[j].Address })
				view.Services = append(view.Services, sv)
			}
			sort.Slice(view.Services, func(i, j int) bool { return view.Services[i].DiscoveryName < view.Services[j].DiscoveryName })
			out.Namespaces = append(out.Namespaces, view)
			for _, sv := range view.Services {
				tls = tls || sv.TLS != nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if tls {
		ca, err := s.certificateAuthority(ctx)
		if err != nil {
			return nil, err
		}
		out.TrustBundle = string(ca.BundlePEM())
	}
	return out, nil
}

// routing is the Routing a Cloud Map service's attributes describe, or nil
// for the defaults.
func routing(attrs map[string]string) *agentapi.Routing {
	r := agentapi.Routing{
		Balancer:           attrs[scBalancer],
		ZoneAware:          attrs[scZoneAware] == "true",
		RetryNonIdempotent: attrs[scRetryNonIdempotent] == "true",
	}
	if n, err := strconv.Atoi(attrs[scRetries]); err == nil {
		r.Retries = ptr(int32(n))
	}
	if r == (agentapi.Routing{}) {
		return nil
	}
	return &r
}

// mutualTLS reports whether a deployment's Service Connect services
// require callers' certificates.
func mutualTLS(scc *state.ServiceConnectConfiguration, tags []state.Tag) bool {
	if scc == nil || !scc.Enabled {
		return false
	}
	for _, t := range tags {
		if t.Key == tagMutualTLS && strings.EqualFold(t.Value, "true") {
			return true
		}
	}
	return false
}

// certificateAuthority is Wharf's certificate authority, created in the
// store on first use.
func (s *Service) certificateAuthority(ctx context.Context) (*pki.CA, error) {
	s.caMu.Lock()
	defer s.caMu.Unlock()
	if s.ca != nil {
		return s.ca, nil
	}
	ca, err := pki.Ensure(ctx, s.st, time.Now())
	if err != nil {
		return nil, err
	}
	s.ca = ca
	return ca, nil
}

// IssueCertificate signs the key of a Service Connect task's proxy for
// the names of the task's TLS services.
func (s *Service) IssueCertificate(ctx context.Context, in *agentapi.IssueCertificateRequest) (*agentapi.IssueCertificateResponse, error) {
	c := s.call(ctx)
	cluster, err := s.ClusterName(c, in.Cluster)
	if err != nil {
		return nil, err
	}
	t, err := s.FindTask(s.reader(ctx), c, cluster, in.Task)
	if err != nil {
		return nil, err
	}
	if t == nil || t.DesiredStatus == "STOPPED" {
		return nil, invalidParameter("Task %s is not running in cluster %s; only running Service Connect tasks get certificates.", in.Task, cluster)
	}
	sc, err := s.TaskServiceConnect(s.reader(ctx), c, t, map[string]*serviceRecord{})
	if err != nil {
		return nil, err
	}
	if sc == nil {
		return nil, invalidParameter("Task %s is not a Service Connect task.", in.Task)
	}
	id := pki.Identity{CommonName: sc.ServiceName}
	for _, sv := range sc.Services {
		if sv.TLS == nil {
			continue
		}
		id.DNSNames = append(id.DNSNames, sv.DiscoveryName)
		if sv.DNSName != "" && sv.DNSName != sv.DiscoveryName {
			id.DNSNames = append(id.DNSNames, sv.DNSName)
		}
	}
	ca, err := s.certificateAuthority(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	chain, notAfter, err := ca.Issue([]byte(in.CSR), id, now, s.certLifetime)
	if errors.Is(err, pki.ErrBadCSR) {
		return nil, invalidParameter("%s", err)
	}
	if err != nil {
		return nil, err
	}
	return &agentapi.IssueCertificateResponse{
		Certificate: string(chain),
		TrustBundle: string(ca.BundlePEM()),
		RenewAfter:  api.Time{Time: now.Add(s.certLifetime * 5 / 7)},
		NotAfter:    api.Time{Time: notAfter},
	}, nil
}

// ReportProxyMetrics passes the metrics of an instance's proxies on to the
// control plane's /metrics.
func (s *Service) ReportProxyMetrics(ctx context.Context, in *agentapi.ReportProxyMetricsRequest) (*agentapi.ReportProxyMetricsResponse, error) {
	if s.proxyMetrics != nil {
		if err := s.proxyMetrics.Report(in.ContainerInstance, in.Proxies); err != nil {
			return nil, invalidParameter("%s", err)
		}
	}
	return &agentapi.ReportProxyMetricsResponse{}, nil
}
