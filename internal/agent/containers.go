package agent

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/wharfhq/wharf/internal/agent/hostnet"
	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/runtime"
)

// taskID is the last part of a task ARN.
func taskID(arn string) string {
	return arn[strings.LastIndex(arn, "/")+1:]
}

// containerName makes the engine's name for a container of a task, as the
// ECS agent does: ecs-<family>-<revision>-<name>-<20 random hex digits>,
// the container's name keeping only letters, digits and hyphens (the
// pause container, ~internal~ecs~pause, becomes internalecspause). The
// name is only for people: the agent finds its containers by their labels.
func containerName(family string, revision int32, name string) string {
	kept := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return -1
	}, name)
	return fmt.Sprintf("ecs-%s-%d-%s-%s", family, revision, kept, randomHex(20))
}

// pauseContainerName is the ECS agent's name of a task's pause container.
const pauseContainerName = "~internal~ecs~pause"

// overrides returns the task's override for a container, if any.
func overrides(t *ecsapi.Task, name string) *ecsapi.ContainerOverride {
	if t.Overrides == nil {
		return nil
	}
	for i := range t.Overrides.ContainerOverrides {
		if t.Overrides.ContainerOverrides[i].Name == name {
			return &t.Overrides.ContainerOverrides[i]
		}
	}
	return nil
}

// labels returns the labels of a container of the task.
func (m *taskManager) labels(name, role string) map[string]string {
	l := map[string]string{
		labelCluster:       m.a.cfg.Cluster,
		labelTaskArn:       m.task.TaskArn,
		labelContainerName: name,
		labelTaskFamily:    m.td.Family,
		labelTaskRevision:  strconv.Itoa(int(m.td.Revision)),
		labelInstance:      m.a.InstanceArn(),
		labelRole:          role,
		labelManaged:       "true",
	}
	if m.a.stateDir != "" && m.a.host != "" {
		l[labelStateDir], l[labelHost] = m.a.stateDir, m.a.host
	}
	return l
}

// volumeName is the engine volume behind a task volume without a host path.
func (m *taskManager) volumeName(v *ecsapi.Volume) string {
	if dc := v.DockerVolumeConfiguration; dc != nil && dc.Scope == ecsapi.ScopeShared {
		return v.Name
	}
	return "wharf-" + taskID(m.task.TaskArn)[:12] + "-" + v.Name
}

// cluster is the cluster of the task: the agent's own, except on a Fargate
// host, whose tasks are of any cluster.
func (m *taskManager) cluster() string {
	if m.task.ClusterArn != "" {
		return m.task.ClusterArn
	}
	return m.a.cfg.Cluster
}

// fargate reports whether the task is a Fargate task.
func (m *taskManager) fargate() bool { return m.task.LaunchType == ecsapi.LaunchTypeFargate }

// spec turns a container definition into what the engine creates.
func (m *taskManager) spec(c *ctr) (*runtime.ContainerSpec, error) {
	if c.role == roleProxy {
		return m.proxySpec(c), nil
	}
	cd := c.def
	ov := overrides(&m.task, cd.Name)
	spec := &runtime.ContainerSpec{
		Name:           c.dockerName,
		Image:          cd.Image,
		Command:        cd.Command,
		Entrypoint:     cd.EntryPoint,
		WorkingDir:     cd.WorkingDirectory,
		User:           cd.User,
		Labels:         m.labels(cd.Name, roleTaskContainer),
		DNSServers:     cd.DnsServers,
		DNSSearch:      cd.DnsSearchDomains,
		Privileged:     deref(cd.Privileged),
		ReadonlyRootfs: deref(cd.ReadonlyRootFilesystem),
		StopTimeout:    m.a.cfg.StopTimeout,
		CPUShares:      max(int64(cd.Cpu), 2),
	}
	if m.fargate() {
		// A Fargate task's own containers run in a sandbox; never as
		// plain containers.
		if m.a.cfg.FargateRuntime == "" {
			return nil, fmt.Errorf("this node offers no Fargate capacity, and a FARGATE task never runs as a plain container")
		}
		spec.OCIRuntime = m.a.cfg.FargateRuntime
	}
	for k, v := range cd.DockerLabels {
		if _, reserved := spec.Labels[k]; !reserved {
			spec.Labels[k] = v
		}
	}
	spec.Labels[labelMetadataToken] = c.token
	if cd.StopTimeout != nil {
		spec.StopTimeout = time.Duration(*cd.StopTimeout) * time.Second
	}
	env := map[string]string{}
	for _, kv := range cd.Environment {
		env[kv.Name] = kv.Value
	}
	mem, res := cd.Memory, cd.MemoryReservation
	if ov != nil {
		if ov.Command != nil {
			spec.Command = ov.Command
		}
		for _, kv := range ov.Environment {
			env[kv.Name] = kv.Value
		}
		if ov.Cpu != nil {
			spec.CPUShares = max(int64(*ov.Cpu), 2)
		}
		if ov.Memory != nil {
			mem = ov.Memory
		}
		if ov.MemoryReservation != nil {
			res = ov.MemoryReservation
		}
	}
	if mem != nil {
		spec.MemoryLimit = int64(*mem) << 20
	}
	if res != nil {
		spec.MemoryReservation = int64(*res) << 20
	}
	gateway := m.a.metadataHost(m.td.NetworkMode)
	env["ECS_CONTAINER_METADATA_URI_V4"] = fmt.Sprintf("http://%s/v4/%s", gateway, c.token)
	env["ECS_CONTAINER_METADATA_URI"] = fmt.Sprintf("http://%s/v3/%s", gateway, c.token)
	env["AWS_EXECUTION_ENV"] = "AWS_ECS_EC2"
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		spec.Env = append(spec.Env, k+"="+env[k])
	}

	// Bridge Service Connect tasks share a pause container's namespace
	// too; it has the task's port mappings, host name and resolvers.
	scBridge := m.sc != nil && m.td.NetworkMode != ecsapi.NetworkModeAwsvpc
	switch {
	case m.td.NetworkMode == ecsapi.NetworkModeAwsvpc:
		spec.NetworkMode = "container:" + m.pauseID
	case scBridge:
		spec.NetworkMode = "container:" + m.pauseID
		spec.DNSServers, spec.DNSSearch = nil, nil
	case m.td.NetworkMode == ecsapi.NetworkModeHost:
		spec.NetworkMode = "host"
	case m.td.NetworkMode == ecsapi.NetworkModeNone:
		spec.NetworkMode = "none"
	default:
		spec.NetworkMode = "bridge"
		spec.Hostname = cd.Hostname
		if len(spec.DNSServers) == 0 {
			if ip := m.a.resolver(hostnet.BridgeGateway()); ip != "" {
				spec.DNSServers = []string{ip}
			}
		}
		for _, pm := range cd.PortMappings {
			if pm.ContainerPort == nil {
				continue
			}
			spec.PortBindings = append(spec.PortBindings, runtime.PortBinding{
				ContainerPort: int(*pm.ContainerPort), HostPort: int(deref(pm.HostPort)), Protocol: string(orDefault(pm.Protocol, ecsapi.TransportProtocolTcp)),
			})
		}
		for _, l := range cd.Links {
			name, alias, _ := strings.Cut(l, ":")
			if alias == "" {
				alias = name
			}
			if target := m.containers[name]; target != nil {
				name = target.dockerName
			}
			spec.Links = append(spec.Links, name+":"+alias)
		}
	}
	if m.td.NetworkMode != ecsapi.NetworkModeAwsvpc && !scBridge { // else in the task's hosts file
		for _, h := range cd.ExtraHosts {
			spec.ExtraHosts = append(spec.ExtraHosts, h.Hostname+":"+h.IpAddress)
		}
	}
	for _, u := range cd.Ulimits {
		spec.Ulimits = append(spec.Ulimits, runtime.Ulimit{Name: string(u.Name), Soft: int64(u.SoftLimit), Hard: int64(u.HardLimit)})
	}
	if lp := cd.LinuxParameters; lp != nil {
		spec.Init = deref(lp.InitProcessEnabled)
		if lp.SharedMemorySize != nil {
			spec.ShmSize = int64(*lp.SharedMemorySize) << 20
		}
		if lp.Capabilities != nil {
			spec.CapAdd, spec.CapDrop = lp.Capabilities.Add, lp.Capabilities.Drop
		}
		if len(lp.Tmpfs) > 0 {
			spec.Tmpfs = map[string]string{}
			for _, t := range lp.Tmpfs {
				opts := append([]string{fmt.Sprintf("size=%dm", t.Size)}, t.MountOptions...)
				spec.Tmpfs[t.ContainerPath] = strings.Join(opts, ",")
			}
		}
	}
	if len(cd.SystemControls) > 0 {
		spec.Sysctls = map[string]string{}
		for _, sc := range cd.SystemControls {
			spec.Sysctls[sc.Namespace] = sc.Value
		}
	}
	for _, mp := range cd.MountPoints {
		var vol *ecsapi.Volume
		for i := range m.td.Volumes {
			if m.td.Volumes[i].Name == mp.SourceVolume {
				vol = &m.td.Volumes[i]
			}
		}
		if vol == nil {
			return nil, fmt.Errorf("mount point %s names no volume of the task definition", mp.SourceVolume)
		}
		mount := runtime.Mount{Target: mp.ContainerPath, ReadOnly: deref(mp.ReadOnly)}
		if vol.Host != nil && vol.Host.SourcePath != "" {
			mount.Source = vol.Host.SourcePath
		} else {
			mount.Source, mount.Volume = m.volumeName(vol), true
		}
		spec.Mounts = append(spec.Mounts, mount)
	}
	if m.sc != nil && !slices.ContainsFunc(spec.Mounts, func(mt runtime.Mount) bool { return mt.Target == "/etc/hosts" }) {
		// The task's aliases, rewritten in place as the namespace changes.
		spec.Mounts = append(spec.Mounts, runtime.Mount{Source: m.sc.hostsPath(), Target: "/etc/hosts", ReadOnly: true})
	}
	for _, vf := range cd.VolumesFrom {
		src := m.containers[vf.SourceContainer]
		if src == nil || src.id == "" {
			return nil, fmt.Errorf("volumesFrom %s: that container was not created", vf.SourceContainer)
		}
		ref := src.id
		if deref(vf.ReadOnly) {
			ref += ":ro"
		}
		spec.VolumesFrom = append(spec.VolumesFrom, ref)
	}
	if hc := cd.HealthCheck; hc != nil {
		sec := func(p *int32, def int32) time.Duration {
			if p == nil {
				return time.Duration(def) * time.Second
			}
			return time.Duration(*p) * time.Second
		}
		spec.HealthCheck = &runtime.HealthCheck{
			Test:        hc.Command,
			Interval:    sec(hc.Interval, 30),
			Timeout:     sec(hc.Timeout, 5),
			Retries:     int(deref(hc.Retries)),
			StartPeriod: sec(hc.StartPeriod, 0),
		}
		if spec.HealthCheck.Retries == 0 {
			spec.HealthCheck.Retries = 3
		}
	}
	applyLogConfiguration(spec, cd.LogConfiguration)
	return spec, nil
}

// applyLogConfiguration sets a container's logging from its task
// definition's logConfiguration.
func applyLogConfiguration(spec *runtime.ContainerSpec, lc *ecsapi.LogConfiguration) {
	if lc == nil {
		return
	}
	switch lc.LogDriver {
	case ecsapi.LogDriverJsonFile, ecsapi.LogDriverSyslog, ecsapi.LogDriverJournald, ecsapi.LogDriverGelf, ecsapi.LogDriverFluentd:
		spec.LogDriver, spec.LogOptions = string(lc.LogDriver), lc.Options
	default:
		// awslogs, splunk and awsfirelens ship logs off the host; the
		// output is kept in the engine's log instead, readable with
		// `docker logs`, and the configuration is kept on labels.
		spec.LogDriver = "json-file"
		spec.Labels["wharf.log-driver"] = string(lc.LogDriver)
		for k, v := range lc.Options {
			spec.Labels["wharf.log-option."+k] = v
		}
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
