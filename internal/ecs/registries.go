package ecs

import (
	"strconv"
	"strings"

	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	sd "github.com/wharfhq/wharf/internal/api/servicediscovery"
	"github.com/wharfhq/wharf/internal/cloudmap"
	"github.com/wharfhq/wharf/internal/ecs/state"
	"github.com/wharfhq/wharf/internal/store"
)

// hostIPAttribute is the container instance attribute agents set to the
// address its bridge and host mode tasks are reached at.
const hostIPAttribute = "wharf.host-ip"

// registryService reads the Cloud Map service a registry ARN names.
func (s *Service) registryService(r state.Reader, c call, arn string) (*cloudmap.ServiceRecord, error) {
	prefix := "arn:aws:servicediscovery:" + c.Region + ":" + s.account + ":service/"
	id, ok := strings.CutPrefix(arn, prefix)
	if !ok {
		return nil, invalidParameter("The registryArn %q is not a Cloud Map service ARN of account %s in region %s.", arn, s.account, c.Region)
	}
	svc, err := state.Get[cloudmap.ServiceRecord](r, cloudmap.ServiceKey(c.Region, id))
	if err != nil {
		return nil, err
	}
	if svc == nil {
		return nil, invalidParameter("The service discovery registry %s does not exist; create it with `aws servicediscovery create-service`.", arn)
	}
	return svc, nil
}

// checkRegistries applies ECS's rules for service registries to a task
// definition: bridge and host tasks are registered as SRV records of a
// container port; awsvpc tasks as A records, with a port for SRV.
func (s *Service) checkRegistries(r state.Reader, c call, regs []ecsapi.ServiceRegistry, td *ecsapi.TaskDefinition) error {
	if len(regs) > 1 {
		return invalidParameter("A service can have at most one service registry.")
	}
	for _, reg := range regs {
		svc, err := s.registryService(r, c, reg.RegistryArn)
		if err != nil {
			return err
		}
		srv := false
		if svc.DnsConfig != nil {
			for _, rec := range svc.DnsConfig.DnsRecords {
				srv = srv || rec.Type == sd.RecordTypeSrv
			}
		}
		if td.NetworkMode != ecsapi.NetworkModeAwsvpc && !srv && svc.DnsConfig != nil {
			return invalidParameter("Tasks in network mode %s are registered as SRV records: the service discovery registry %s needs an SRV record.", td.NetworkMode, reg.RegistryArn)
		}
		if (srv || td.NetworkMode != ecsapi.NetworkModeAwsvpc) && reg.Port == nil && (reg.ContainerName == "" || reg.ContainerPort == nil) {
			return invalidParameter("The service registry %s needs a containerName and containerPort (or a port) to register SRV records.", reg.RegistryArn)
		}
		if reg.ContainerName != "" {
			found := false
			for _, cd := range td.ContainerDefinitions {
				if cd.Name == reg.ContainerName {
					found = reg.ContainerPort == nil
					for _, pm := range cd.PortMappings {
						found = found || (pm.ContainerPort != nil && *pm.ContainerPort == *reg.ContainerPort)
					}
				}
			}
			if !found {
				return invalidParameter("The service registry names container %q port %d, which the task definition does not map.", reg.ContainerName, deref(reg.ContainerPort))
			}
		}
	}
	return nil
}

// registerTask puts a running task of a service with registries into Cloud
// Map, or updates its health there, inside tx.
func (s *Service) registerTask(tx *store.Tx, c call, t *taskRecord) error {
	// A task counts as healthy for callers when its health checks say so,
	// or when it has none.
	health := sd.HealthStatusHealthy
	switch t.HealthStatus {
	case ecsapi.HealthStatusUnhealthy:
		health = sd.HealthStatusUnhealthy
	case ecsapi.HealthStatusUnknown:
		if taskHasHealthChecks(tx, s, c, t) {
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
		cm, err := s.registryService(tx, c, reg.RegistryArn)
		if err != nil {
			return err
		}
		attrs := map[string]string{
			"AVAILABILITY_ZONE":          t.AvailabilityZone,
			"REGION":                     c.Region,
			"ECS_CLUSTER_NAME":           strings.TrimPrefix(t.ClusterArn, s.arn(c, "cluster/")),
			"ECS_SERVICE_NAME":           svc.ServiceName,
			"ECS_TASK_DEFINITION_FAMILY": taskFamily(t.TaskDefinitionArn),
			"ECS_TASK_ARN":               t.TaskArn,
			"EC2_INSTANCE_ID":            inst.Ec2InstanceId,
		}
		ip := taskIP(t)
		if ip == "" {
			ip, _ = attribute(inst.Attributes, hostIPAttribute)
		}
		if ip == "" {
			ip = "127.0.0.1"
		}
		attrs["AWS_INSTANCE_IPV4"] = ip
		if port := registryPort(t, &reg); port != 0 {
			attrs["AWS_INSTANCE_PORT"] = strconv.Itoa(port)
		}
		rec := &cloudmap.InstanceRecord{
			Instance:  sd.Instance{Id: taskIDOf(t.TaskArn), Attributes: attrs, CreatedByAccount: s.account},
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

// deregisterTask removes a task from its service's registries, inside tx.
func (s *Service) deregisterTask(tx *store.Tx, c call, t *taskRecord) error {
	if err := s.deregisterServiceConnect(tx, c, t); err != nil {
		return err
	}
	svc, _, err := s.taskRegistries(tx, c, t)
	if err != nil || svc == nil {
		return err
	}
	for _, reg := range svc.ServiceRegistries {
		id, ok := strings.CutPrefix(reg.RegistryArn, "arn:aws:servicediscovery:"+c.Region+":"+s.account+":service/")
		if !ok {
			continue
		}
		if _, err := cloudmap.DeleteInstance(tx, c.Region, id, taskIDOf(t.TaskArn)); err != nil {
			return err
		}
	}
	return nil
}

// taskRegistries returns the service of a task with registries and the
// task's instance; a nil service when there is nothing to register.
func (s *Service) taskRegistries(tx *store.Tx, c call, t *taskRecord) (*serviceRecord, *instanceRecord, error) {
	if t.Service == "" {
		return nil, nil, nil
	}
	cluster := strings.TrimPrefix(t.ClusterArn, s.arn(c, "cluster/"))
	svc, err := state.Get[serviceRecord](tx, c.Keys().Service(cluster, t.Service))
	if err != nil || svc == nil || len(svc.ServiceRegistries) == 0 {
		return nil, nil, err
	}
	inst, err := state.Get[instanceRecord](tx, s.instanceKey(c, t.ContainerInstanceArn))
	if err != nil {
		return nil, nil, err
	}
	if inst == nil {
		inst = &instanceRecord{}
	}
	return svc, inst, nil
}

// registryPort is the port a task is reached at for a registry: the host
// port bound to the container port in bridge and host mode, the container
// port in awsvpc mode, or the registry's fixed port.
func registryPort(t *taskRecord, reg *state.ServiceRegistry) int {
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
	if taskIP(t) != "" {
		return int(*reg.ContainerPort)
	}
	return 0
}

func taskHasHealthChecks(tx *store.Tx, s *Service, c call, t *taskRecord) bool {
	td, err := s.findTaskDef(tx, c, t.TaskDefinitionArn)
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
