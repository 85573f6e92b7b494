package ecs

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/ecs/state"
	"github.com/wharfhq/wharf/internal/store"
)

const (
	maxContainers   = 10
	maxTaskDefBytes = 64 << 10
)

var portNamePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9_-]{0,62}[a-z0-9])?$`)

// RegisterTaskDefinition registers the next revision of a family.
func (s *Service) RegisterTaskDefinition(ctx context.Context, in *ecsapi.RegisterTaskDefinitionRequest) (*ecsapi.RegisterTaskDefinitionResponse, error) {
	c := s.call(ctx)
	td, err := s.normalizeTaskDef(in)
	if err != nil {
		return nil, err
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	err = s.Store.Update(ctx, func(tx *store.Tx) error {
		var fam familyRecord
		if _, err := tx.Get(c.Keys().Family(in.Family), &fam); err != nil {
			return err
		}
		fam.LatestRevision++
		td.Revision = fam.LatestRevision
		td.TaskDefinitionArn = s.ARN(c, fmt.Sprintf("task-definition/%s:%d", td.Family, td.Revision))
		td.RegisteredAt = c.Time()
		if err := tx.Put(c.Keys().Family(in.Family), &fam); err != nil {
			return err
		}
		if err := store.MarkRegion(tx, c.Region); err != nil {
			return err
		}
		return tx.Put(c.Keys().TaskDef(td.Family, int(td.Revision)), &taskDefRecord{TaskDefinition: state.TaskDefinitionFromWire(td), Tags: state.TagsFromWire(in.Tags)})
	})
	if err != nil {
		return nil, err
	}
	return &ecsapi.RegisterTaskDefinitionResponse{TaskDefinition: td, Tags: in.Tags}, nil
}

// normalizeTaskDef checks a registration as ECS does and returns the task
// definition with ECS's defaults filled in.
func (s *Service) normalizeTaskDef(in *ecsapi.RegisterTaskDefinitionRequest) (*ecsapi.TaskDefinition, error) {
	if !state.NamePattern.MatchString(in.Family) {
		return nil, clientError("Family %q is invalid: up to 255 letters, numbers, hyphens and underscores are allowed.", in.Family)
	}
	raw, _ := json.Marshal(in)
	if len(raw) > maxTaskDefBytes {
		return nil, clientError("The task definition is %d bytes; the limit is %d bytes (64 KiB). Move large values such as environment variables to files or secrets.", len(raw), maxTaskDefBytes)
	}
	if len(in.ContainerDefinitions) == 0 {
		return nil, clientError("Container list cannot be empty.")
	}
	if len(in.ContainerDefinitions) > maxContainers {
		return nil, clientError("A task definition can have at most %d containers; this one has %d.", maxContainers, len(in.ContainerDefinitions))
	}
	mode := in.NetworkMode
	if mode == "" {
		mode = ecsapi.NetworkModeBridge
	}
	cpu, err := taskCPU(in.Cpu)
	if err != nil {
		return nil, err
	}
	mem, err := taskMemory(in.Memory)
	if err != nil {
		return nil, err
	}
	td := &ecsapi.TaskDefinition{
		Family:                  in.Family,
		TaskRoleArn:             in.TaskRoleArn,
		ExecutionRoleArn:        in.ExecutionRoleArn,
		NetworkMode:             mode,
		Volumes:                 volumesOf(in.Volumes),
		Status:                  ecsapi.TaskDefinitionStatusActive,
		PlacementConstraints:    emptyIfNil(in.PlacementConstraints),
		RequiresCompatibilities: in.RequiresCompatibilities,
		Cpu:                     cpu,
		Memory:                  mem,
		InferenceAccelerators:   in.InferenceAccelerators,
		PidMode:                 in.PidMode,
		IpcMode:                 in.IpcMode,
		ProxyConfiguration:      in.ProxyConfiguration,
		RuntimePlatform:         in.RuntimePlatform,
		EphemeralStorage:        in.EphemeralStorage,
		EnableFaultInjection:    in.EnableFaultInjection,
		RegisteredBy:            s.principal(),
	}
	volumes := map[string]bool{}
	for _, v := range in.Volumes {
		if !state.NamePattern.MatchString(v.Name) {
			return nil, clientError("Volume name %q is invalid: up to 255 letters, numbers, hyphens and underscores are allowed.", v.Name)
		}
		if volumes[v.Name] {
			return nil, clientError("Volume name %q is used more than once.", v.Name)
		}
		volumes[v.Name] = true
	}
	if err := checkTaskDefConstraints(in.PlacementConstraints); err != nil {
		return nil, err
	}

	containers := make([]ecsapi.ContainerDefinition, len(in.ContainerDefinitions))
	copy(containers, in.ContainerDefinitions)
	names := map[string]*ecsapi.ContainerDefinition{}
	hostPorts := map[string]string{}
	portNames := map[string]bool{}
	essential := false
	for i := range containers {
		cd := &containers[i]
		if cd.Name == "" {
			return nil, clientError("Container.name should not be null or empty.").
				WithHint("containerDefinitions[%d] has no name", i)
		}
		if !state.NamePattern.MatchString(cd.Name) {
			return nil, clientError("Container name %q is invalid: up to 255 letters, numbers, hyphens and underscores are allowed.", cd.Name)
		}
		if names[cd.Name] != nil {
			return nil, clientError("Container name %q is used more than once.", cd.Name)
		}
		names[cd.Name] = cd
		if strings.TrimSpace(cd.Image) == "" {
			return nil, clientError("Container.image should not be null or empty.").
				WithHint("container %q has no image", cd.Name)
		}
		if cd.Cpu < 0 {
			return nil, clientError("Invalid 'cpu' setting for container %q: it must not be negative.", cd.Name)
		}
		if cd.Memory == nil && cd.MemoryReservation == nil && mem == "" {
			return nil, clientError("Invalid setting for container '%s'. At least one of 'memory' or 'memoryReservation' must be specified.", cd.Name)
		}
		if cd.Memory != nil && *cd.Memory < 6 {
			return nil, clientError("Invalid 'memory' setting for container '%s'. The memory hard limit must be at least 6 MiB.", cd.Name)
		}
		if cd.MemoryReservation != nil && *cd.MemoryReservation < 6 {
			return nil, clientError("Invalid 'memoryReservation' setting for container '%s'. It must be at least 6 MiB.", cd.Name)
		}
		if cd.Memory != nil && cd.MemoryReservation != nil && *cd.MemoryReservation > *cd.Memory {
			return nil, clientError("Invalid 'memoryReservation' setting for container '%s'. The 'memoryReservation' must be less than or equal to 'memory'.", cd.Name)
		}
		if cd.Essential == nil {
			cd.Essential = ptr(true)
		}
		essential = essential || *cd.Essential
		if cd.StopTimeout != nil && *cd.StopTimeout < 0 {
			return nil, clientError("Invalid 'stopTimeout' for container '%s': it must not be negative.", cd.Name)
		}
		if mode == ecsapi.NetworkModeAwsvpc {
			if err := checkAwsvpcContainer(cd); err != nil {
				return nil, err
			}
		}
		if len(cd.Links) > 0 && mode != ecsapi.NetworkModeBridge {
			return nil, clientError("Links are only supported with the bridge network mode (container '%s').", cd.Name)
		}
		for _, e := range cd.Environment {
			if e.Name == "" {
				return nil, clientError("Environment variable names must not be empty (container '%s').", cd.Name)
			}
		}
		if err := checkHealthCheck(cd); err != nil {
			return nil, err
		}
		for _, u := range cd.Ulimits {
			if u.SoftLimit > u.HardLimit {
				return nil, clientError("Ulimit %s of container '%s': the soft limit %d is above the hard limit %d.", u.Name, cd.Name, u.SoftLimit, u.HardLimit)
			}
		}
		for _, mp := range cd.MountPoints {
			if !volumes[mp.SourceVolume] {
				return nil, clientError("Invalid 'mountPoints' for container '%s': sourceVolume %q is not a volume of the task definition.", cd.Name, mp.SourceVolume)
			}
			if mp.ContainerPath == "" {
				return nil, clientError("Invalid 'mountPoints' for container '%s': containerPath must be set.", cd.Name)
			}
		}
		ports := make([]ecsapi.PortMapping, len(cd.PortMappings))
		copy(ports, cd.PortMappings)
		for j := range ports {
			pm := &ports[j]
			if err := normalizePort(cd.Name, mode, pm, hostPorts, portNames); err != nil {
				return nil, err
			}
		}
		cd.PortMappings = ports
		cd.Environment = emptyIfNil(cd.Environment)
		cd.MountPoints = emptyIfNil(cd.MountPoints)
		cd.VolumesFrom = emptyIfNil(cd.VolumesFrom)
	}
	if !essential {
		return nil, clientError("At least one container of a task definition must be essential.")
	}
	for i := range containers {
		cd := &containers[i]
		for _, vf := range cd.VolumesFrom {
			if names[vf.SourceContainer] == nil {
				return nil, clientError("Invalid 'volumesFrom' for container '%s': no container named %q.", cd.Name, vf.SourceContainer)
			}
		}
		for _, d := range cd.DependsOn {
			target := names[d.ContainerName]
			switch {
			case target == nil:
				return nil, clientError("Invalid 'dependsOn' for container '%s': no container named %q.", cd.Name, d.ContainerName)
			case d.ContainerName == cd.Name:
				return nil, clientError("Container '%s' cannot depend on itself.", cd.Name)
			case d.Condition == ecsapi.ContainerConditionHealthy && target.HealthCheck == nil:
				return nil, clientError("Container '%s' depends on '%s' being HEALTHY, but '%s' has no healthCheck.", cd.Name, d.ContainerName, d.ContainerName)
			}
		}
	}
	if cycle := dependencyCycle(containers); cycle != "" {
		return nil, clientError("The dependsOn conditions form a cycle: %s.", cycle)
	}
	td.ContainerDefinitions = containers
	td.Compatibilities = []ecsapi.Compatibility{ecsapi.CompatibilityEc2, ecsapi.CompatibilityExternal}
	fargateErr := fargateCheck(td)
	if fargateErr == nil {
		td.Compatibilities = append(td.Compatibilities, ecsapi.CompatibilityFargate)
	}
	if contains(in.RequiresCompatibilities, ecsapi.CompatibilityFargate) && fargateErr != nil {
		return nil, fargateErr
	}
	for _, rc := range in.RequiresCompatibilities {
		if !contains(td.Compatibilities, rc) {
			td.Compatibilities = append(td.Compatibilities, rc)
		}
	}
	if err := checkTaskDefSupport(td); err != nil {
		return nil, err
	}
	return td, nil
}

// volumesOf copies a registration's volumes with ECS's defaults: an EFS
// volume's rootDirectory is "/" unless given.
func volumesOf(in []ecsapi.Volume) []ecsapi.Volume {
	out := make([]ecsapi.Volume, len(in))
	copy(out, in)
	for i := range out {
		if efs := out[i].EfsVolumeConfiguration; efs != nil && efs.RootDirectory == "" {
			v := *efs
			v.RootDirectory = "/"
			out[i].EfsVolumeConfiguration = &v
		}
	}
	return out
}

// checkAwsvpcContainer refuses, as ECS does, container settings that an
// awsvpc task's network namespace decides.
func checkAwsvpcContainer(cd *ecsapi.ContainerDefinition) error {
	switch {
	case len(cd.Links) > 0:
		return clientError("Links are not supported when networkMode=awsvpc")
	case cd.Hostname != "":
		return clientError("hostname is not supported on container when networkMode=awsvpc")
	case len(cd.DnsServers) > 0:
		return clientError("DNS servers are not supported on container when networkMode=awsvpc")
	case len(cd.ExtraHosts) > 0:
		return clientError("Extra hosts are not supported on container when networkMode=awsvpc")
	case deref(cd.DisableNetworking):
		return clientError("Disable Networking is not supported on container when networkMode=awsvpc")
	}
	return nil
}

func normalizePort(container string, mode ecsapi.NetworkMode, pm *ecsapi.PortMapping, hostPorts map[string]string, portNames map[string]bool) error {
	if pm.Protocol == "" {
		pm.Protocol = ecsapi.TransportProtocolTcp
	}
	if pm.ContainerPort == nil && pm.ContainerPortRange == "" {
		return clientError("Invalid 'portMappings' for container '%s': containerPort must be set.", container)
	}
	if pm.ContainerPort != nil && (*pm.ContainerPort < 1 || *pm.ContainerPort > 65535) {
		return clientError("Invalid 'portMappings' for container '%s': containerPort %d is outside 1-65535.", container, *pm.ContainerPort)
	}
	if pm.Name != "" {
		if !portNamePattern.MatchString(pm.Name) {
			return clientError("Invalid port mapping name %q for container '%s': use up to 64 lower-case letters, numbers, hyphens and underscores, starting and ending with a letter or number.", pm.Name, container)
		}
		if portNames[pm.Name] {
			return clientError("Port mapping name %q is used more than once in the task definition.", pm.Name)
		}
		portNames[pm.Name] = true
	}
	if pm.ContainerPort == nil {
		return nil
	}
	switch mode {
	case ecsapi.NetworkModeAwsvpc, ecsapi.NetworkModeHost:
		if pm.HostPort != nil && *pm.HostPort != 0 && *pm.HostPort != *pm.ContainerPort {
			return clientError("When networkMode=%s, the host ports and container ports in port mappings must match.", mode).
				WithHint("container %q maps containerPort %d to hostPort %d", container, *pm.ContainerPort, *pm.HostPort)
		}
		pm.HostPort = ptr(*pm.ContainerPort)
	case ecsapi.NetworkModeNone:
		return clientError("Port mappings are not supported with network mode none (container '%s').", container)
	}
	if pm.HostPort != nil && *pm.HostPort != 0 {
		k := fmt.Sprintf("%s/%d", pm.Protocol, *pm.HostPort)
		if other, dup := hostPorts[k]; dup {
			return clientError("Host port %d/%s is mapped twice (containers '%s' and '%s').", *pm.HostPort, pm.Protocol, other, container)
		}
		hostPorts[k] = container
	}
	return nil
}

func checkHealthCheck(cd *ecsapi.ContainerDefinition) error {
	hc := cd.HealthCheck
	if hc == nil {
		return nil
	}
	if len(hc.Command) == 0 {
		return clientError("The healthCheck of container '%s' needs a command, e.g. [\"CMD-SHELL\", \"curl -f http://localhost/ || exit 1\"].", cd.Name)
	}
	bound := func(name string, v **int32, def, lo, hi int32) error {
		if *v == nil {
			if def > 0 {
				*v = ptr(def)
			}
			return nil
		}
		if **v < lo || **v > hi {
			return clientError("The healthCheck %s of container '%s' must be between %d and %d seconds, not %d.", name, cd.Name, lo, hi, **v)
		}
		return nil
	}
	if err := bound("interval", &hc.Interval, 30, 5, 300); err != nil {
		return err
	}
	if err := bound("timeout", &hc.Timeout, 5, 2, 120); err != nil {
		return err
	}
	if err := bound("retries", &hc.Retries, 3, 1, 10); err != nil {
		return err
	}
	return bound("startPeriod", &hc.StartPeriod, 0, 0, 300)
}

// dependencyCycle returns a rendering of a dependsOn cycle, or "".
func dependencyCycle(cds []ecsapi.ContainerDefinition) string {
	deps := map[string][]string{}
	for _, cd := range cds {
		for _, d := range cd.DependsOn {
			deps[cd.Name] = append(deps[cd.Name], d.ContainerName)
		}
	}
	state := map[string]int{} // 1 visiting, 2 done
	var path []string
	var visit func(n string) string
	visit = func(n string) string {
		switch state[n] {
		case 1:
			return strings.Join(append(path, n), " -> ")
		case 2:
			return ""
		}
		state[n] = 1
		path = append(path, n)
		for _, d := range deps[n] {
			if c := visit(d); c != "" {
				return c
			}
		}
		path = path[:len(path)-1]
		state[n] = 2
		return ""
	}
	for _, cd := range cds {
		if c := visit(cd.Name); c != "" {
			return c
		}
	}
	return ""
}

var (
	vcpuPattern = regexp.MustCompile(`(?i)^\s*([0-9]*\.?[0-9]+)\s*vcpu\s*$`)
	gbPattern   = regexp.MustCompile(`(?i)^\s*([0-9]*\.?[0-9]+)\s*gb\s*$`)
)

// taskCPU normalizes task-level CPU ("1024", "1 vCPU", ".25 vcpu") to CPU units.
func taskCPU(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	if m := vcpuPattern.FindStringSubmatch(s); m != nil {
		f, _ := strconv.ParseFloat(m[1], 64)
		return strconv.Itoa(int(f * 1024)), nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 128 || n > 196608 {
		return "", clientError("Invalid 'cpu' setting for task. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.").
			WithHint("cpu %q: give CPU units (such as 1024) or vCPUs (such as \"1 vCPU\"), at least 128 units", s)
	}
	return strconv.Itoa(n), nil
}

// taskMemory normalizes task-level memory ("2048", "2GB", "0.5 GB") to MiB.
func taskMemory(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	if m := gbPattern.FindStringSubmatch(s); m != nil {
		f, _ := strconv.ParseFloat(m[1], 64)
		return strconv.Itoa(int(f * 1024)), nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 6 {
		return "", clientError("Invalid 'memory' setting for task. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.").
			WithHint("memory %q: give MiB (such as 2048) or GB (such as \"2GB\")", s)
	}
	return strconv.Itoa(n), nil
}

// fargateCheck reports why td cannot run on Fargate, or nil.
func fargateCheck(td *ecsapi.TaskDefinition) error {
	if td.NetworkMode != ecsapi.NetworkModeAwsvpc {
		return clientError("Fargate only supports network mode 'awsvpc'.")
	}
	if td.Cpu == "" {
		return clientError("Fargate requires that 'cpu' be defined at the task level.")
	}
	if td.Memory == "" {
		return clientError("Fargate requires that 'memory' be defined at the task level.")
	}
	cpu, _ := strconv.Atoi(td.Cpu)
	mem, _ := strconv.Atoi(td.Memory)
	if !fargateSize(cpu, mem) {
		return clientError("No Fargate configuration exists for given values: %d CPU, %d memory. See the Amazon ECS documentation for the valid values.", cpu, mem)
	}
	if td.PidMode != "" && td.PidMode != ecsapi.PidModeTask {
		return clientError("Tasks using the Fargate launch type do not support pidMode '%s'. The supported value for pidMode is 'task'.", td.PidMode)
	}
	if td.IpcMode != "" {
		return clientError("Tasks using the Fargate launch type do not support ipcMode.")
	}
	for _, v := range td.Volumes {
		if v.Host != nil && v.Host.SourcePath != "" {
			return clientError("Fargate compatible task definitions do not support sourcePath")
		}
		if v.DockerVolumeConfiguration != nil {
			return clientError("Fargate compatible task definitions do not support dockerVolumeConfiguration")
		}
	}
	if es := td.EphemeralStorage; es != nil && (es.SizeInGiB < 21 || es.SizeInGiB > 200) {
		return clientError("The ephemeral storage size must be between 21 GiB and 200 GiB.")
	}
	for i := range td.ContainerDefinitions {
		if err := fargateContainerCheck(&td.ContainerDefinitions[i]); err != nil {
			return err
		}
	}
	return nil
}

// fargateContainerCheck reports why a container cannot run on Fargate, or
// nil.
func fargateContainerCheck(cd *ecsapi.ContainerDefinition) error {
	refuse := func(field string) error {
		return clientError("Fargate compatible task definitions do not support %s", field)
	}
	switch {
	case deref(cd.Privileged):
		return refuse("privileged")
	case len(cd.ExtraHosts) > 0:
		return refuse("extraHosts")
	case len(cd.DnsServers) > 0:
		return refuse("dnsServers")
	case len(cd.DnsSearchDomains) > 0:
		return refuse("dnsSearchDomains")
	case len(cd.DockerSecurityOptions) > 0:
		return refuse("dockerSecurityOptions")
	}
	if lp := cd.LinuxParameters; lp != nil {
		switch {
		case len(lp.Devices) > 0:
			return refuse("devices")
		case lp.SharedMemorySize != nil:
			return refuse("sharedMemorySize")
		case len(lp.Tmpfs) > 0:
			return refuse("tmpfs")
		case lp.MaxSwap != nil:
			return refuse("maxSwap")
		case lp.Swappiness != nil:
			return refuse("swappiness")
		}
		if caps := lp.Capabilities; caps != nil {
			for _, c := range caps.Add {
				if c != "SYS_PTRACE" && c != "CAP_SYS_PTRACE" {
					return clientError("Fargate only supports the SYS_PTRACE capability in linuxParameters.capabilities.add; %s is not supported.", c)
				}
			}
		}
	}
	if lc := cd.LogConfiguration; lc != nil {
		switch lc.LogDriver {
		case ecsapi.LogDriverAwslogs, ecsapi.LogDriverSplunk, ecsapi.LogDriverAwsfirelens:
		default:
			return clientError("Fargate only supports the awslogs, splunk and awsfirelens log drivers, not %s.", lc.LogDriver)
		}
	}
	return nil
}

func fargateSize(cpu, mem int) bool {
	between := func(lo, hi, step int) bool { return mem >= lo && mem <= hi && (mem-lo)%step == 0 }
	switch cpu {
	case 256:
		return mem == 512 || mem == 1024 || mem == 2048
	case 512:
		return between(1024, 4096, 1024)
	case 1024:
		return between(2048, 8192, 1024)
	case 2048:
		return between(4096, 16384, 1024)
	case 4096:
		return between(8192, 30720, 1024)
	case 8192:
		return between(16384, 61440, 4096)
	case 16384:
		return between(32768, 122880, 8192)
	}
	return false
}

// DescribeTaskDefinition describes one task definition.
func (s *Service) DescribeTaskDefinition(ctx context.Context, in *ecsapi.DescribeTaskDefinitionRequest) (*ecsapi.DescribeTaskDefinitionResponse, error) {
	c := s.call(ctx)
	td, err := s.FindTaskDef(s.reader(ctx), c, in.TaskDefinition)
	if err != nil {
		return nil, err
	}
	out := &ecsapi.DescribeTaskDefinitionResponse{TaskDefinition: state.WireTD(td)}
	if contains(in.Include, ecsapi.TaskDefinitionFieldTags) {
		out.Tags = state.WireTags(td.Tags)
	}
	return out, nil
}

// ListTaskDefinitions lists task definition ARNs by family and status.
func (s *Service) ListTaskDefinitions(ctx context.Context, in *ecsapi.ListTaskDefinitionsRequest) (*ecsapi.ListTaskDefinitionsResponse, error) {
	c := s.call(ctx)
	limit, err := pageSize(in.MaxResults, 100, 100)
	if err != nil {
		return nil, err
	}
	status := in.Status
	if status == "" {
		status = ecsapi.TaskDefinitionStatusActive
	}
	scope := fmt.Sprintf("ListTaskDefinitions/%s/%s/%s/%s", c.Region, in.FamilyPrefix, status, in.Sort)
	after, err := s.start(scope, in.NextToken)
	if err != nil {
		return nil, err
	}
	prefix := c.Keys().TaskDefs("")
	if in.FamilyPrefix != "" {
		prefix = c.Keys().TaskDefs(in.FamilyPrefix)
	}
	kvs, err := s.Store.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	if in.Sort == ecsapi.SortOrderDesc {
		sort.SliceStable(kvs, func(i, j int) bool { return kvs[i].Key > kvs[j].Key })
	}
	var arns []string
	var last string
	more := false
	for _, kv := range kvs {
		if after != "" && (in.Sort == ecsapi.SortOrderDesc && kv.Key >= after || in.Sort != ecsapi.SortOrderDesc && kv.Key <= after) {
			continue
		}
		var td taskDefRecord
		if err := kv.Decode(&td); err != nil {
			return nil, err
		}
		if td.Status != status {
			continue
		}
		if len(arns) == limit {
			more = true
			break
		}
		arns, last = append(arns, td.TaskDefinitionArn), kv.Key
	}
	if arns == nil {
		arns = []string{}
	}
	return &ecsapi.ListTaskDefinitionsResponse{TaskDefinitionArns: arns, NextToken: s.tokens.Next(scope, last, more)}, nil
}

// ListTaskDefinitionFamilies lists family names by prefix and status.
func (s *Service) ListTaskDefinitionFamilies(ctx context.Context, in *ecsapi.ListTaskDefinitionFamiliesRequest) (*ecsapi.ListTaskDefinitionFamiliesResponse, error) {
	c := s.call(ctx)
	limit, err := pageSize(in.MaxResults, 100, 100)
	if err != nil {
		return nil, err
	}
	status := in.Status
	if status == "" {
		status = ecsapi.TaskDefinitionFamilyStatusAll
	}
	scope := fmt.Sprintf("ListTaskDefinitionFamilies/%s/%s/%s", c.Region, in.FamilyPrefix, status)
	after, err := s.start(scope, in.NextToken)
	if err != nil {
		return nil, err
	}
	familiesPrefix := c.Keys().Families()
	families, last, more, err := store.Scan(ctx, s.Store, familiesPrefix+in.FamilyPrefix, after, limit, func(kv store.KV) (string, bool, error) {
		family := strings.TrimPrefix(kv.Key, familiesPrefix)
		if status == ecsapi.TaskDefinitionFamilyStatusAll {
			return family, true, nil
		}
		active, err := s.familyActive(ctx, c, family)
		return family, active == (status == ecsapi.TaskDefinitionFamilyStatusActive), err
	})
	if err != nil {
		return nil, err
	}
	if families == nil {
		families = []string{}
	}
	return &ecsapi.ListTaskDefinitionFamiliesResponse{Families: families, NextToken: s.tokens.Next(scope, last, more)}, nil
}

// familyActive reports whether a family has an ACTIVE revision.
func (s *Service) familyActive(ctx context.Context, c call, family string) (bool, error) {
	kvs, err := s.Store.List(ctx, c.Keys().TaskDefs(family))
	if err != nil {
		return false, err
	}
	for _, kv := range kvs {
		var td taskDefRecord
		if err := kv.Decode(&td); err != nil {
			return false, err
		}
		if td.Status == ecsapi.TaskDefinitionStatusActive {
			return true, nil
		}
	}
	return false, nil
}

// DeregisterTaskDefinition marks a revision INACTIVE.
func (s *Service) DeregisterTaskDefinition(ctx context.Context, in *ecsapi.DeregisterTaskDefinitionRequest) (*ecsapi.DeregisterTaskDefinitionResponse, error) {
	c := s.call(ctx)
	family, rev, err := s.TaskDefRef(c, in.TaskDefinition)
	if err != nil {
		return nil, err
	}
	if rev == 0 {
		return nil, clientError("A revision must be given to deregister a task definition: use family:revision or the full ARN.")
	}
	var out ecsapi.TaskDefinition
	err = s.Store.Update(ctx, func(tx *store.Tx) error {
		td, err := s.FindTaskDef(tx, c, in.TaskDefinition)
		if err != nil {
			return err
		}
		if td.Status == ecsapi.TaskDefinitionStatusActive {
			td.Status = ecsapi.TaskDefinitionStatusInactive
			td.DeregisteredAt = c.Time()
		}
		out = td.TaskDefinition.Wire()
		return tx.Put(c.Keys().TaskDef(family, rev), td)
	})
	if err != nil {
		return nil, err
	}
	return &ecsapi.DeregisterTaskDefinitionResponse{TaskDefinition: &out}, nil
}

// DeleteTaskDefinitions marks INACTIVE revisions DELETE_IN_PROGRESS; they
// are removed once nothing uses them.
func (s *Service) DeleteTaskDefinitions(ctx context.Context, in *ecsapi.DeleteTaskDefinitionsRequest) (*ecsapi.DeleteTaskDefinitionsResponse, error) {
	c := s.call(ctx)
	if len(in.TaskDefinitions) > 10 {
		return nil, invalidParameter("At most 10 task definitions can be deleted at once.")
	}
	out := &ecsapi.DeleteTaskDefinitionsResponse{TaskDefinitions: []ecsapi.TaskDefinition{}, Failures: []ecsapi.Failure{}}
	for _, ref := range in.TaskDefinitions {
		family, rev, err := s.TaskDefRef(c, ref)
		if err != nil || rev == 0 {
			out.Failures = append(out.Failures, failureOf(ref, "The specified task definition identifier is invalid. Specify a valid name or ARN and try again.", ""))
			continue
		}
		var done *ecsapi.TaskDefinition
		var failure string
		err = s.Store.Update(ctx, func(tx *store.Tx) error {
			done, failure = nil, ""
			var td taskDefRecord
			ok, err := tx.Get(c.Keys().TaskDef(family, rev), &td)
			if err != nil {
				return err
			}
			switch {
			case !ok:
				failure = "The specified task definition does not exist. Specify a valid account, family, revision and try again."
				return nil
			case td.Status == ecsapi.TaskDefinitionStatusActive:
				failure = "The specified task definition is still in ACTIVE status. Please deregister the target and try again."
				return nil
			case td.Status == ecsapi.TaskDefinitionStatusInactive:
				td.Status = ecsapi.TaskDefinitionStatusDeleteInProgress
				td.DeleteRequestedAt = c.Time()
			}
			done = state.WireTD(&td)
			return tx.Put(c.Keys().TaskDef(family, rev), &td)
		})
		if err != nil {
			return nil, err
		}
		if failure != "" {
			out.Failures = append(out.Failures, failureOf(s.ARN(c, fmt.Sprintf("task-definition/%s:%d", family, rev)), failure, ""))
			continue
		}
		out.TaskDefinitions = append(out.TaskDefinitions, *done)
	}
	return out, nil
}
