package ecs

import (
	"fmt"

	"github.com/wharfhq/wharf/internal/api"
	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
)

// What Wharf accepts in ECS's shapes but cannot honour yet is refused: a
// task must never start without a setting its definition asked for. ECS
// has no message for this; the message is Wharf's, short, and names the
// member as it is on the wire. The list, and what works instead, is in
// docs/ecs-compatibility.md.

// notYet refuses the input at field (a path such as
// "containerDefinitions[0].secrets", with a value appended where only
// some values are refused).
func notYet(field string, args ...any) *api.Error {
	return clientError("%s is not supported by Wharf yet.", fmt.Sprintf(field, args...))
}

// Log drivers a container may name. The engine implements the first
// group; awslogs output stays in the engine's json-file log on the node
// (Wharf has no CloudWatch Logs), readable with `docker logs`.
var supportedLogDrivers = map[ecsapi.LogDriver]bool{
	ecsapi.LogDriverJsonFile: true,
	ecsapi.LogDriverSyslog:   true,
	ecsapi.LogDriverJournald: true,
	ecsapi.LogDriverGelf:     true,
	ecsapi.LogDriverFluentd:  true,
	ecsapi.LogDriverAwslogs:  true,
}

// checkTaskDefSupport refuses task and container settings no Wharf task
// can run with. RegisterTaskDefinition calls it, and so does every launch,
// for definitions stored before a refusal existed.
func checkTaskDefSupport(td *ecsapi.TaskDefinition) error {
	switch {
	case td.ProxyConfiguration != nil:
		return notYet("proxyConfiguration")
	case len(td.InferenceAccelerators) > 0:
		return notYet("inferenceAccelerators")
	case td.PidMode != "":
		return notYet("pidMode")
	case td.IpcMode != "":
		return notYet("ipcMode")
	case deref(td.EnableFaultInjection):
		return notYet("enableFaultInjection")
	}
	for i := range td.ContainerDefinitions {
		if err := checkContainerSupport(fmt.Sprintf("containerDefinitions[%d]", i), &td.ContainerDefinitions[i]); err != nil {
			return err
		}
	}
	return nil
}

func checkContainerSupport(at string, cd *ecsapi.ContainerDefinition) error {
	switch {
	case len(cd.Secrets) > 0:
		return notYet("%s.secrets", at)
	case cd.RepositoryCredentials != nil:
		return notYet("%s.repositoryCredentials", at)
	case cd.FirelensConfiguration != nil:
		return notYet("%s.firelensConfiguration", at)
	case len(cd.EnvironmentFiles) > 0:
		return notYet("%s.environmentFiles", at)
	case len(cd.ResourceRequirements) > 0:
		return notYet("%s.resourceRequirements", at)
	case len(cd.DockerSecurityOptions) > 0:
		return notYet("%s.dockerSecurityOptions", at)
	case len(cd.CredentialSpecs) > 0:
		return notYet("%s.credentialSpecs", at)
	case deref(cd.DisableNetworking):
		return notYet("%s.disableNetworking", at)
	case deref(cd.Interactive):
		return notYet("%s.interactive", at)
	case deref(cd.PseudoTerminal):
		return notYet("%s.pseudoTerminal", at)
	case cd.RestartPolicy != nil && deref(cd.RestartPolicy.Enabled):
		return notYet("%s.restartPolicy", at)
	}
	if lc := cd.LogConfiguration; lc != nil {
		if !supportedLogDrivers[lc.LogDriver] {
			return notYet("%s.logConfiguration.logDriver %s", at, lc.LogDriver)
		}
		if len(lc.SecretOptions) > 0 {
			return notYet("%s.logConfiguration.secretOptions", at)
		}
	}
	if lp := cd.LinuxParameters; lp != nil {
		switch {
		case len(lp.Devices) > 0:
			return notYet("%s.linuxParameters.devices", at)
		case lp.MaxSwap != nil:
			return notYet("%s.linuxParameters.maxSwap", at)
		case lp.Swappiness != nil:
			return notYet("%s.linuxParameters.swappiness", at)
		}
	}
	for j, pm := range cd.PortMappings {
		if pm.ContainerPortRange != "" {
			return notYet("%s.portMappings[%d].containerPortRange", at, j)
		}
	}
	return nil
}

// checkVolumeSupport refuses volumes whose storage Wharf cannot provide.
// Storage is bound when tasks start (configuredAtLaunch volumes get theirs
// from the launch), so definitions with them register, as in ECS, and
// launches refuse them.
func checkVolumeSupport(td *ecsapi.TaskDefinition) error {
	for i, v := range td.Volumes {
		at := fmt.Sprintf("volumes[%d]", i)
		switch {
		case v.EfsVolumeConfiguration != nil:
			return notYet("%s.efsVolumeConfiguration", at)
		case v.FsxWindowsFileServerVolumeConfiguration != nil:
			return notYet("%s.fsxWindowsFileServerVolumeConfiguration", at)
		case v.S3filesVolumeConfiguration != nil:
			return notYet("%s.s3filesVolumeConfiguration", at)
		case deref(v.ConfiguredAtLaunch):
			return notYet("%s.configuredAtLaunch", at)
		}
		if dc := v.DockerVolumeConfiguration; dc != nil {
			switch {
			case dc.Driver != "" && dc.Driver != "local":
				return notYet("%s.dockerVolumeConfiguration.driver %s", at, dc.Driver)
			case len(dc.DriverOpts) > 0:
				return notYet("%s.dockerVolumeConfiguration.driverOpts", at)
			case len(dc.Labels) > 0:
				return notYet("%s.dockerVolumeConfiguration.labels", at)
			}
		}
	}
	return nil
}

// checkStartable refuses a task definition Wharf cannot start tasks of.
func checkStartable(td *ecsapi.TaskDefinition) error {
	if err := checkTaskDefSupport(td); err != nil {
		return err
	}
	return checkVolumeSupport(td)
}

// checkLaunchSupport refuses what a launch (RunTask, StartTask) asks for
// that Wharf cannot honour, in its task definition or beyond it.
func checkLaunchSupport(td *ecsapi.TaskDefinition, managedTags, execute bool, volumes []ecsapi.TaskVolumeConfiguration, ov *ecsapi.TaskOverride) error {
	if err := checkStartable(td); err != nil {
		return err
	}
	switch {
	case managedTags:
		return notYet("enableECSManagedTags")
	case execute:
		return notYet("enableExecuteCommand")
	case len(volumes) > 0:
		return notYet("volumeConfigurations")
	}
	if ov == nil {
		return nil
	}
	switch {
	case ov.EphemeralStorage != nil:
		return notYet("overrides.ephemeralStorage")
	case len(ov.InferenceAcceleratorOverrides) > 0:
		return notYet("overrides.inferenceAcceleratorOverrides")
	}
	for i, co := range ov.ContainerOverrides {
		switch {
		case len(co.EnvironmentFiles) > 0:
			return notYet("overrides.containerOverrides[%d].environmentFiles", i)
		case len(co.ResourceRequirements) > 0:
			return notYet("overrides.containerOverrides[%d].resourceRequirements", i)
		}
	}
	return nil
}

// serviceAsks is what CreateService and UpdateService set that Wharf may
// not honour; UpdateService leaves unset what it does not change.
type serviceAsks struct {
	loadBalancers []ecsapi.LoadBalancer
	deployment    *ecsapi.DeploymentConfiguration
	controller    *ecsapi.DeploymentController
	managedTags   bool
	execute       bool
	volumes       []ecsapi.ServiceVolumeConfiguration
	lattice       []ecsapi.VpcLatticeConfiguration
}

// checkServiceSupport refuses service settings Wharf cannot honour.
func checkServiceSupport(a serviceAsks) error {
	switch {
	case len(a.loadBalancers) > 0:
		return notYet("loadBalancers")
	case a.controller != nil && a.controller.Type != ecsapi.DeploymentControllerTypeEcs:
		return notYet("deploymentController.type %s", a.controller.Type)
	case a.managedTags:
		return notYet("enableECSManagedTags")
	case a.execute:
		return notYet("enableExecuteCommand")
	case len(a.volumes) > 0:
		return notYet("volumeConfigurations")
	case len(a.lattice) > 0:
		return notYet("vpcLatticeConfigurations")
	}
	if dc := a.deployment; dc != nil {
		switch {
		case dc.Alarms != nil && dc.Alarms.Enable:
			return notYet("deploymentConfiguration.alarms")
		case dc.Strategy != "" && dc.Strategy != ecsapi.DeploymentStrategyRolling:
			return notYet("deploymentConfiguration.strategy %s", dc.Strategy)
		case len(dc.LifecycleHooks) > 0:
			return notYet("deploymentConfiguration.lifecycleHooks")
		}
	}
	return nil
}
