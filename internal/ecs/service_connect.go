package ecs

import (
	"context"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/wharfhq/wharf/internal/api/agentapi"
	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	sd "github.com/wharfhq/wharf/internal/api/servicediscovery"
	"github.com/wharfhq/wharf/internal/cloudmap"
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
)

// firstIngressPort is where a task's proxy listens for its first Service
// Connect service when the configuration gives no ingressPortOverride; the
// next services get the ports after it.
const firstIngressPort = 15000

var discoveryNamePattern = regexp.MustCompile(`^[a-z0-9_][a-z0-9_-]{0,63}$`)

// portMapping finds the port mapping named name in a task definition.
func portMapping(td *ecsapi.TaskDefinition, name string) (*ecsapi.ContainerDefinition, *ecsapi.PortMapping) {
	for i := range td.ContainerDefinitions {
		cd := &td.ContainerDefinitions[i]
		for j := range cd.PortMappings {
			if cd.PortMappings[j].Name == name {
				return cd, &cd.PortMappings[j]
			}
		}
	}
	return nil, nil
}

func protocolOf(pm *ecsapi.PortMapping) string {
	switch pm.AppProtocol {
	case ecsapi.ApplicationProtocolHttp, ecsapi.ApplicationProtocolHttp2, ecsapi.ApplicationProtocolGrpc:
		return string(pm.AppProtocol)
	}
	return "tcp"
}

// serviceConnect checks a Service Connect configuration as ECS does, makes
// sure its namespace and its services' Cloud Map services exist, and
// returns the configuration as deployments record it with the resources
// made for it. A nil or disabled configuration gives nothing.
func (s *Service) serviceConnect(tx *store.Tx, c call, cl *clusterRecord, svcName string, scc *ecsapi.ServiceConnectConfiguration, td *ecsapi.TaskDefinition) (*ecsapi.ServiceConnectConfiguration, []ecsapi.ServiceConnectServiceResource, error) {
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
	ns, err := cloudmap.EnsureHTTPNamespace(tx, c.region, s.account, ref, c.now)
	if cloudmap.IsNoSuchNamespace(err) {
		return nil, nil, clientCode("NamespaceNotFoundException", "Namespace "+ref+" was not found; create it with `aws servicediscovery create-http-namespace`, or give a name and ECS creates it.")
	}
	if err != nil {
		return nil, nil, err
	}
	out := *scc
	out.Namespace = ns.Arn
	out.Services = nil
	var resources []ecsapi.ServiceConnectServiceResource
	seen := map[string]bool{}
	for i, sv := range scc.Services {
		_, pm := portMapping(td, sv.PortName)
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
		if sv.IngressPortOverride == nil && firstIngressPort+i == int(deref(pm.ContainerPort)) {
			return nil, nil, invalidParameter("Container port %d is where the Service Connect proxy listens; give an ingressPortOverride.", firstIngressPort+i)
		}
		protocol := protocolOf(pm)
		if sv.Timeout != nil && sv.Timeout.PerRequestTimeoutSeconds != nil && protocol == "tcp" {
			return nil, nil, invalidParameter("perRequestTimeoutSeconds applies to http, http2 and grpc ports; port %q is TCP.", sv.PortName)
		}
		attrs := map[string]string{
			scDNSName:  alias.DnsName,
			scPort:     strconv.Itoa(int(*alias.Port)),
			scProtocol: protocol,
		}
		if t := sv.Timeout; t != nil {
			if t.PerRequestTimeoutSeconds != nil {
				attrs[scPerRequestTimeout] = strconv.Itoa(int(*t.PerRequestTimeoutSeconds))
			}
			if t.IdleTimeoutSeconds != nil {
				attrs[scIdleTimeout] = strconv.Itoa(int(*t.IdleTimeoutSeconds))
			}
		}
		cm, err := cloudmap.EnsureService(tx, c.region, s.account, ns, sv.DiscoveryName, attrs, c.now)
		if err != nil {
			return nil, nil, err
		}
		out.Services = append(out.Services, sv)
		resources = append(resources, ecsapi.ServiceConnectServiceResource{DiscoveryName: sv.DiscoveryName, DiscoveryArn: cm.Arn})
	}
	return &out, resources, nil
}

// taskServiceConnect is the Service Connect part of a task's assignment,
// from its deployment's configuration.
func (s *Service) taskServiceConnect(r reader, c call, t *taskRecord, cache map[string]*serviceRecord) (*agentapi.TaskServiceConnect, error) {
	if t.Service == "" {
		return nil, nil
	}
	cluster := strings.TrimPrefix(t.ClusterArn, s.arn(c, "cluster/"))
	key := c.key("services", cluster, t.Service)
	svc, ok := cache[key]
	if !ok {
		var err error
		if svc, err = getRecord[serviceRecord](r, key); err != nil {
			return nil, err
		}
		cache[key] = svc
	}
	if svc == nil {
		return nil, nil
	}
	var scc *ecsapi.ServiceConnectConfiguration
	for _, d := range svc.Deployments {
		if d.Id == t.StartedBy {
			scc = d.ServiceConnectConfiguration
		}
	}
	if scc == nil || !scc.Enabled {
		return nil, nil
	}
	td, err := s.findTaskDef(r, c, t.TaskDefinitionArn)
	if err != nil {
		return nil, err
	}
	ns, err := getRecord[cloudmap.NamespaceRecord](r, cloudmap.NamespaceKey(c.region, scc.Namespace[strings.LastIndex(scc.Namespace, "/")+1:]))
	if err != nil || ns == nil {
		return nil, err
	}
	out := &agentapi.TaskServiceConnect{Namespace: ns.Arn, NamespaceName: ns.Name, ServiceName: svc.ServiceName, ClusterName: cluster, ProxyLogConfiguration: scc.LogConfiguration}
	if al := scc.AccessLogConfiguration; al != nil {
		out.AccessLog, out.AccessLogQueryStrings = string(al.Format), al.IncludeQueryParameters == ecsapi.ServiceConnectIncludeQueryParametersEnabled
	}
	for i, sv := range scc.Services {
		cd, pm := portMapping(&td.TaskDefinition, sv.PortName)
		if pm == nil {
			continue
		}
		in := agentapi.ServiceConnectIngress{
			DiscoveryName: sv.DiscoveryName,
			ContainerName: cd.Name,
			ContainerPort: deref(pm.ContainerPort),
			IngressPort:   int32(firstIngressPort + i),
			Protocol:      protocolOf(pm),
		}
		if sv.IngressPortOverride != nil {
			in.IngressPort = *sv.IngressPortOverride
		}
		if t := sv.Timeout; t != nil {
			in.PerRequestTimeoutSeconds, in.IdleTimeoutSeconds = t.PerRequestTimeoutSeconds, t.IdleTimeoutSeconds
		}
		out.Services = append(out.Services, in)
	}
	return out, nil
}

// registerServiceConnect puts a running client-server task into its Service
// Connect services' Cloud Map services, inside tx.
func (s *Service) registerServiceConnect(tx *store.Tx, c call, t *taskRecord, health sd.HealthStatus) error {
	sc, err := s.taskServiceConnect(tx, c, t, map[string]*serviceRecord{})
	if err != nil || sc == nil || len(sc.Services) == 0 {
		return err
	}
	inst, err := getRecord[instanceRecord](tx, s.instanceKey(c, t.ContainerInstanceArn))
	if err != nil {
		return err
	}
	if inst == nil {
		inst = &instanceRecord{}
	}
	ip := taskIP(t)
	bridge := ip == ""
	if bridge {
		ip, _ = attribute(inst.Attributes, hostIPAttribute)
	}
	svcs, err := cloudmap.ServicesOf(tx, c.region, sc.Namespace[strings.LastIndex(sc.Namespace, "/")+1:])
	if err != nil {
		return err
	}
	for _, in := range sc.Services {
		port := in.IngressPort
		if bridge {
			// Callers reach a bridge task's proxy at the host port bound
			// to its ingress port.
			port = 0
			for _, ct := range t.Containers {
				for _, b := range ct.NetworkBindings {
					if b.ContainerPort != nil && *b.ContainerPort == in.IngressPort && b.HostPort != nil && !strings.Contains(b.BindIP, ":") {
						port = *b.HostPort
					}
				}
			}
			if port == 0 {
				continue
			}
		}
		for _, cm := range svcs {
			if cm.Name != in.DiscoveryName {
				continue
			}
			rec := &cloudmap.InstanceRecord{
				ServiceID: cm.Id,
				Health:    health,
				UpdatedAt: c.now,
				ECSTask:   t.TaskArn,
			}
			rec.Id = taskIDOf(t.TaskArn)
			rec.CreatedByAccount = s.account
			rec.Attributes = map[string]string{
				"AWS_INSTANCE_IPV4":          ip,
				"AWS_INSTANCE_PORT":          strconv.Itoa(int(port)),
				"AVAILABILITY_ZONE":          t.AvailabilityZone,
				"REGION":                     c.region,
				"ECS_CLUSTER_NAME":           sc.ClusterName,
				"ECS_SERVICE_NAME":           sc.ServiceName,
				"ECS_TASK_DEFINITION_FAMILY": taskFamily(t.TaskDefinitionArn),
				"ECS_TASK_ARN":               t.TaskArn,
				"EC2_INSTANCE_ID":            inst.Ec2InstanceId,
			}
			if err := cloudmap.PutInstance(tx, c.region, rec); err != nil {
				return err
			}
		}
	}
	return nil
}

// deregisterServiceConnect removes a task from its Service Connect
// services, inside tx.
func (s *Service) deregisterServiceConnect(tx *store.Tx, c call, t *taskRecord) error {
	sc, err := s.taskServiceConnect(tx, c, t, map[string]*serviceRecord{})
	if err != nil || sc == nil || len(sc.Services) == 0 {
		return err
	}
	svcs, err := cloudmap.ServicesOf(tx, c.region, sc.Namespace[strings.LastIndex(sc.Namespace, "/")+1:])
	if err != nil {
		return err
	}
	for _, in := range sc.Services {
		for _, cm := range svcs {
			if cm.Name == in.DiscoveryName {
				if _, err := cloudmap.DeleteInstance(tx, c.region, cm.Id, taskIDOf(t.TaskArn)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// ServiceConnectView describes namespaces' client-server services to the
// agents whose tasks call them, waiting for a change after the index the
// agent has.
func (s *Service) ServiceConnectView(ctx context.Context, in *agentapi.ServiceConnectViewRequest) (*agentapi.ServiceConnectViewResponse, error) {
	c := s.call(ctx)
	if in.Index > 0 && in.WaitSeconds > 0 {
		s.discovery.wait(ctx, c.region, in.Index, min(time.Duration(in.WaitSeconds)*time.Second, maxPollWait))
	}
	rev, err := s.st.Revision(ctx)
	if err != nil {
		return nil, err
	}
	out := &agentapi.ServiceConnectViewResponse{Index: rev, Namespaces: []agentapi.NamespaceView{}}
	err = s.st.Update(ctx, func(tx *store.Tx) error {
		out.Namespaces = out.Namespaces[:0]
		for _, ref := range in.Namespaces {
			ns, err := cloudmap.FindNamespace(tx, c.region, ref)
			if err != nil {
				return err
			}
			if ns == nil {
				continue
			}
			view := agentapi.NamespaceView{Arn: ns.Arn, Name: ns.Name, Services: []agentapi.ServiceView{}}
			svcs, err := cloudmap.ServicesOf(tx, c.region, ns.Id)
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
				insts, err := cloudmap.InstancesOf(tx, c.region, cm.Id)
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
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
