package state

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/wharfhq/wharf/internal/api/agentapi"
	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	sd "github.com/wharfhq/wharf/internal/api/servicediscovery"
	"github.com/wharfhq/wharf/internal/cloudmap"
	"github.com/wharfhq/wharf/internal/store"
)

// HostIPAttribute is the container instance attribute agents set to the
// address its bridge and host mode tasks are reached at.
const HostIPAttribute = "wharf.host-ip"

// RegistryService reads the Cloud Map service a registry ARN names.
func (s *State) RegistryService(r Reader, c Scope, arn string) (*cloudmap.ServiceRecord, error) {
	prefix := "arn:aws:servicediscovery:" + c.Region + ":" + s.Account + ":service/"
	id, ok := strings.CutPrefix(arn, prefix)
	if !ok {
		return nil, Invalid(KindRegistry, arn, fmt.Sprintf("The registryArn %q is not a Cloud Map service ARN of account %s in region %s.", arn, s.Account, c.Region))
	}
	svc, err := Get[cloudmap.ServiceRecord](r, cloudmap.ServiceKey(c.Region, id))
	if err != nil {
		return nil, err
	}
	if svc == nil {
		return nil, Invalid(KindRegistry, arn, fmt.Sprintf("The service discovery registry %s does not exist; create it with `aws servicediscovery create-service`.", arn))
	}
	return svc, nil
}

// RegisterTask puts a running task of a service with registries into Cloud
// Map, or updates its health there, inside tx.
func (s *State) RegisterTask(tx *store.Tx, c Scope, t *TaskRecord) error {
	// A task counts as healthy for callers when its health checks say so,
	// or when it has none.
	health := sd.HealthStatusHealthy
	switch t.HealthStatus {
	case ecsapi.HealthStatusUnhealthy:
		health = sd.HealthStatusUnhealthy
	case ecsapi.HealthStatusUnknown:
		if s.taskHasHealthChecks(tx, c, t) {
			health = sd.HealthStatusUnhealthy
		}
	}
	if err := s.registerServiceConnect(tx, c, t, health); err != nil {
		return err
	}
	svc, inst, err := s.taskRegistries(tx, c, t)
	if err != nil || svc == nil {
		return err
	}
	for _, reg := range svc.ServiceRegistries {
		cm, err := s.RegistryService(tx, c, reg.RegistryArn)
		if err != nil {
			return err
		}
		attrs := map[string]string{
			"AVAILABILITY_ZONE":          t.AvailabilityZone,
			"REGION":                     c.Region,
			"ECS_CLUSTER_NAME":           strings.TrimPrefix(t.ClusterArn, s.ARN(c, "cluster/")),
			"ECS_SERVICE_NAME":           svc.ServiceName,
			"ECS_TASK_DEFINITION_FAMILY": FamilyOf(t.TaskDefinitionArn),
			"ECS_TASK_ARN":               t.TaskArn,
			"EC2_INSTANCE_ID":            inst.Ec2InstanceId,
		}
		ip := TaskIP(t)
		if ip == "" {
			ip, _ = AttributeValue(inst.Attributes, HostIPAttribute)
		}
		if ip == "" {
			ip = "127.0.0.1"
		}
		attrs["AWS_INSTANCE_IPV4"] = ip
		if port := registryPort(t, &reg); port != 0 {
			attrs["AWS_INSTANCE_PORT"] = strconv.Itoa(port)
		}
		rec := &cloudmap.InstanceRecord{
			Instance:  sd.Instance{Id: IDOf(t.TaskArn), Attributes: attrs, CreatedByAccount: s.Account},
			ServiceID: cm.Id,
			Health:    health,
			UpdatedAt: c.Now,
			ECSTask:   t.TaskArn,
		}
		if err := cloudmap.PutInstance(tx, c.Region, rec); err != nil {
			return err
		}
	}
	return nil
}

// DeregisterTask removes a task from its service's registries, inside tx.
func (s *State) DeregisterTask(tx *store.Tx, c Scope, t *TaskRecord) error {
	if err := s.deregisterServiceConnect(tx, c, t); err != nil {
		return err
	}
	svc, _, err := s.taskRegistries(tx, c, t)
	if err != nil || svc == nil {
		return err
	}
	for _, reg := range svc.ServiceRegistries {
		id, ok := strings.CutPrefix(reg.RegistryArn, "arn:aws:servicediscovery:"+c.Region+":"+s.Account+":service/")
		if !ok {
			continue
		}
		if _, err := cloudmap.DeleteInstance(tx, c.Region, id, IDOf(t.TaskArn)); err != nil {
			return err
		}
	}
	return nil
}

// taskRegistries returns the service of a task with registries and the
// task's instance; a nil service when there is nothing to register.
func (s *State) taskRegistries(tx *store.Tx, c Scope, t *TaskRecord) (*ServiceRecord, *InstanceRecord, error) {
	if t.Service == "" {
		return nil, nil, nil
	}
	cluster := strings.TrimPrefix(t.ClusterArn, s.ARN(c, "cluster/"))
	svc, err := Get[ServiceRecord](tx, c.Keys().Service(cluster, t.Service))
	if err != nil || svc == nil || len(svc.ServiceRegistries) == 0 {
		return nil, nil, err
	}
	inst, err := Get[InstanceRecord](tx, s.InstanceKey(c, t.ContainerInstanceArn))
	if err != nil {
		return nil, nil, err
	}
	if inst == nil {
		inst = &InstanceRecord{}
	}
	return svc, inst, nil
}

// registryPort is the port a task is reached at for a registry: the host
// port bound to the container port in bridge and host mode, the container
// port in awsvpc mode, or the registry's fixed port.
func registryPort(t *TaskRecord, reg *ServiceRegistry) int {
	if reg.ContainerName == "" || reg.ContainerPort == nil {
		return int(deref(reg.Port))
	}
	for _, ct := range t.Containers {
		if ct.Name != reg.ContainerName {
			continue
		}
		for _, b := range ct.NetworkBindings {
			if b.ContainerPort != nil && *b.ContainerPort == *reg.ContainerPort && b.HostPort != nil && (b.BindIP == "" || !strings.Contains(b.BindIP, ":")) {
				return int(*b.HostPort)
			}
		}
	}
	if TaskIP(t) != "" {
		return int(*reg.ContainerPort)
	}
	return 0
}

func (s *State) taskHasHealthChecks(tx *store.Tx, c Scope, t *TaskRecord) bool {
	td, err := s.FindTaskDef(tx, c, t.TaskDefinitionArn)
	if err != nil {
		return false
	}
	for _, cd := range td.ContainerDefinitions {
		if cd.HealthCheck != nil && (cd.Essential == nil || *cd.Essential) {
			return true
		}
	}
	return false
}

// TaskServiceConnect is the Service Connect part of a task's assignment,
// from its deployment's configuration.
func (s *State) TaskServiceConnect(r Reader, c Scope, t *TaskRecord, cache map[string]*ServiceRecord) (*agentapi.TaskServiceConnect, error) {
	if t.Service == "" {
		return nil, nil
	}
	cluster := strings.TrimPrefix(t.ClusterArn, s.ARN(c, "cluster/"))
	key := c.Keys().Service(cluster, t.Service)
	svc, ok := cache[key]
	if !ok {
		var err error
		if svc, err = Get[ServiceRecord](r, key); err != nil {
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
			scc = One(d.ServiceConnectConfiguration, (*ServiceConnectConfiguration).Wire)
		}
	}
	if scc == nil || !scc.Enabled {
		return nil, nil
	}
	td, err := s.FindTaskDef(r, c, t.TaskDefinitionArn)
	if err != nil {
		return nil, err
	}
	ns, err := Get[cloudmap.NamespaceRecord](r, cloudmap.NamespaceKey(c.Region, scc.Namespace[strings.LastIndex(scc.Namespace, "/")+1:]))
	if err != nil || ns == nil {
		return nil, err
	}
	out := &agentapi.TaskServiceConnect{Namespace: ns.Arn, NamespaceName: ns.Name, ServiceName: svc.ServiceName, ClusterName: cluster, ProxyLogConfiguration: scc.LogConfiguration}
	if al := scc.AccessLogConfiguration; al != nil {
		out.AccessLog, out.AccessLogQueryStrings = string(al.Format), al.IncludeQueryParameters == ecsapi.ServiceConnectIncludeQueryParametersEnabled
	}
	for i, sv := range scc.Services {
		cd, pm := FindPortMapping(WireTD(td), sv.PortName)
		if pm == nil {
			continue
		}
		in := agentapi.ServiceConnectIngress{
			DiscoveryName: sv.DiscoveryName,
			ContainerName: cd.Name,
			ContainerPort: deref(pm.ContainerPort),
			IngressPort:   int32(FirstIngressPort + i),
			Protocol:      ProtocolOf(pm),
		}
		if len(sv.ClientAliases) > 0 {
			in.DNSName = sv.ClientAliases[0].DnsName
		}
		if sv.IngressPortOverride != nil {
			in.IngressPort = *sv.IngressPortOverride
		}
		if t := sv.Timeout; t != nil {
			in.PerRequestTimeoutSeconds, in.IdleTimeoutSeconds = t.PerRequestTimeoutSeconds, t.IdleTimeoutSeconds
		}
		if sv.Tls != nil {
			in.TLS = &agentapi.ServiceTLS{Mutual: slices.Contains(svc.MutualTLS, t.StartedBy)}
		}
		out.Services = append(out.Services, in)
	}
	return out, nil
}

// registerServiceConnect puts a running client-server task into its Service
// Connect services' Cloud Map services, inside tx.
func (s *State) registerServiceConnect(tx *store.Tx, c Scope, t *TaskRecord, health sd.HealthStatus) error {
	sc, err := s.TaskServiceConnect(tx, c, t, map[string]*ServiceRecord{})
	if err != nil || sc == nil || len(sc.Services) == 0 {
		return err
	}
	inst, err := Get[InstanceRecord](tx, s.InstanceKey(c, t.ContainerInstanceArn))
	if err != nil {
		return err
	}
	if inst == nil {
		inst = &InstanceRecord{}
	}
	ip := TaskIP(t)
	bridge := ip == ""
	if bridge {
		ip, _ = AttributeValue(inst.Attributes, HostIPAttribute)
	}
	svcs, err := cloudmap.ServicesOf(tx, c.Region, sc.Namespace[strings.LastIndex(sc.Namespace, "/")+1:])
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
				UpdatedAt: c.Now,
				ECSTask:   t.TaskArn,
			}
			rec.Id = IDOf(t.TaskArn)
			rec.CreatedByAccount = s.Account
			rec.Attributes = map[string]string{
				"AWS_INSTANCE_IPV4":          ip,
				"AWS_INSTANCE_PORT":          strconv.Itoa(int(port)),
				"AVAILABILITY_ZONE":          t.AvailabilityZone,
				"REGION":                     c.Region,
				"ECS_CLUSTER_NAME":           sc.ClusterName,
				"ECS_SERVICE_NAME":           sc.ServiceName,
				"ECS_TASK_DEFINITION_FAMILY": FamilyOf(t.TaskDefinitionArn),
				"ECS_TASK_ARN":               t.TaskArn,
				"EC2_INSTANCE_ID":            inst.Ec2InstanceId,
			}
			if err := cloudmap.PutInstance(tx, c.Region, rec); err != nil {
				return err
			}
		}
	}
	return nil
}

// deregisterServiceConnect removes a task from its Service Connect
// services, inside tx.
func (s *State) deregisterServiceConnect(tx *store.Tx, c Scope, t *TaskRecord) error {
	sc, err := s.TaskServiceConnect(tx, c, t, map[string]*ServiceRecord{})
	if err != nil || sc == nil || len(sc.Services) == 0 {
		return err
	}
	svcs, err := cloudmap.ServicesOf(tx, c.Region, sc.Namespace[strings.LastIndex(sc.Namespace, "/")+1:])
	if err != nil {
		return err
	}
	for _, in := range sc.Services {
		for _, cm := range svcs {
			if cm.Name == in.DiscoveryName {
				if _, err := cloudmap.DeleteInstance(tx, c.Region, cm.Id, IDOf(t.TaskArn)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// FindPortMapping finds the port mapping named name in a task definition.
func FindPortMapping(td *ecsapi.TaskDefinition, name string) (*ecsapi.ContainerDefinition, *ecsapi.PortMapping) {
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

func ProtocolOf(pm *ecsapi.PortMapping) string {
	switch pm.AppProtocol {
	case ecsapi.ApplicationProtocolHttp, ecsapi.ApplicationProtocolHttp2, ecsapi.ApplicationProtocolGrpc:
		return string(pm.AppProtocol)
	}
	return "tcp"
}

// FirstIngressPort is where a task's proxy listens for its first Service
// Connect service when the configuration gives no ingressPortOverride; the
// next services get the ports after it.
const FirstIngressPort = 15000

// Attributes of the Cloud Map services Service Connect creates: how callers
// reach the service.
const (
	AttrDNSName           = "ECS_SERVICE_CONNECT_DNS_NAME"
	AttrPort              = "ECS_SERVICE_CONNECT_PORT"
	AttrProtocol          = "ECS_SERVICE_CONNECT_PROTOCOL"
	AttrPerRequestTimeout = "ECS_SERVICE_CONNECT_PER_REQUEST_TIMEOUT"
	AttrIdleTimeout       = "ECS_SERVICE_CONNECT_IDLE_TIMEOUT"

	// Wharf's: "tls" or "mutual" when the service's proxies serve TLS, and
	// how callers route to it.
	AttrTLS                = "WHARF_SERVICE_CONNECT_TLS"
	AttrBalancer           = "WHARF_SERVICE_CONNECT_BALANCER"
	AttrZoneAware          = "WHARF_SERVICE_CONNECT_ZONE_AWARE"
	AttrRetries            = "WHARF_SERVICE_CONNECT_RETRIES"
	AttrRetryNonIdempotent = "WHARF_SERVICE_CONNECT_RETRY_NON_IDEMPOTENT"
)
