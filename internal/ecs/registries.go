package ecs

import (
	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	sd "github.com/wharfhq/wharf/internal/api/servicediscovery"
	"github.com/wharfhq/wharf/internal/ecs/state"
)

// checkRegistries applies ECS's rules for service registries to a task
// definition: bridge and host tasks are registered as SRV records of a
// container port; awsvpc tasks as A records, with a port for SRV.
func (s *Service) checkRegistries(r state.Reader, c call, regs []ecsapi.ServiceRegistry, td *ecsapi.TaskDefinition) error {
	if len(regs) > 1 {
		return invalidParameter("A service can have at most one service registry.")
	}
	for _, reg := range regs {
		svc, err := s.RegistryService(r, c, reg.RegistryArn)
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
