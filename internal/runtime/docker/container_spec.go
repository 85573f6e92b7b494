package docker

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/strslice"
	"github.com/docker/docker/api/types/versions"
	"github.com/docker/go-connections/nat"

	"github.com/wharfhq/wharf/internal/runtime"
)

// minCPUShares is the smallest CPU weight the engine accepts; it raises
// smaller ones itself, and so do we, so that inspect shows what applies.
const minCPUShares = 2

// createRequest is the engine's form of a ContainerSpec.
type createRequest struct {
	config  *container.Config
	host    *container.HostConfig
	network *network.NetworkingConfig
}

// createRequestFor translates spec into a create request for an engine
// speaking apiVersion. Only the MAC address depends on the version: API
// 1.44 moved it from container.Config to the endpoint settings.
func createRequestFor(spec *runtime.ContainerSpec, apiVersion string) (*createRequest, error) {
	if spec.Image == "" {
		return nil, fmt.Errorf("container %q: no image", spec.Name)
	}
	cfg := &container.Config{
		Hostname:   spec.Hostname,
		User:       spec.User,
		Env:        spec.Env,
		Cmd:        strslice.StrSlice(spec.Command),
		Entrypoint: strslice.StrSlice(spec.Entrypoint),
		Image:      spec.Image,
		WorkingDir: spec.WorkingDir,
		Labels:     spec.Labels,
		StopSignal: spec.StopSignal,
	}
	if spec.StopTimeout > 0 {
		s := ceilSeconds(spec.StopTimeout)
		cfg.StopTimeout = &s
	}
	if hc := spec.HealthCheck; hc != nil {
		if len(hc.Test) == 0 {
			return nil, fmt.Errorf("container %q: health check has no test; use [\"CMD\", ...], [\"CMD-SHELL\", \"...\"] or [\"NONE\"]", spec.Name)
		}
		cfg.Healthcheck = &container.HealthConfig{
			Test:        hc.Test,
			Interval:    hc.Interval,
			Timeout:     hc.Timeout,
			StartPeriod: hc.StartPeriod,
			Retries:     hc.Retries,
		}
	}

	host := &container.HostConfig{
		Runtime:        spec.OCIRuntime,
		LogConfig:      container.LogConfig{Type: spec.LogDriver, Config: spec.LogOptions},
		VolumesFrom:    spec.VolumesFrom,
		CapAdd:         strslice.StrSlice(spec.CapAdd),
		CapDrop:        strslice.StrSlice(spec.CapDrop),
		DNS:            spec.DNSServers,
		DNSSearch:      spec.DNSSearch,
		ExtraHosts:     spec.ExtraHosts,
		Privileged:     spec.Privileged,
		ReadonlyRootfs: spec.ReadonlyRootfs,
		ShmSize:        spec.ShmSize,
		Tmpfs:          spec.Tmpfs,
		Sysctls:        spec.Sysctls,
		Resources: container.Resources{
			CgroupParent:      spec.CgroupParent,
			Memory:            spec.MemoryLimit,
			MemoryReservation: spec.MemoryReservation,
		},
	}
	if spec.Init {
		init := true
		host.Init = &init
	}
	switch {
	case spec.CPUShares < 0:
		return nil, fmt.Errorf("container %q: negative CPU shares %d", spec.Name, spec.CPUShares)
	case spec.CPUShares > 0:
		host.CPUShares = max(spec.CPUShares, minCPUShares)
	}
	for _, u := range spec.Ulimits {
		if u.Name == "" {
			return nil, fmt.Errorf("container %q: ulimit without a name", spec.Name)
		}
		host.Ulimits = append(host.Ulimits, &container.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
	}
	if err := addMounts(host, spec); err != nil {
		return nil, err
	}
	if err := addPorts(cfg, host, spec); err != nil {
		return nil, err
	}
	nw, err := addNetwork(cfg, host, spec, apiVersion)
	if err != nil {
		return nil, err
	}
	return &createRequest{config: cfg, host: host, network: nw}, nil
}

// addMounts adds bind mounts as Binds, which create a missing host
// directory as ECS documents for host volumes, and named (or, with no
// Source, anonymous) volumes as Mounts.
func addMounts(host *container.HostConfig, spec *runtime.ContainerSpec) error {
	for _, m := range spec.Mounts {
		if !path.IsAbs(m.Target) {
			return fmt.Errorf("container %q: mount target %q is not an absolute path", spec.Name, m.Target)
		}
		if m.Volume {
			host.Mounts = append(host.Mounts, mount.Mount{
				Type:     mount.TypeVolume,
				Source:   m.Source,
				Target:   m.Target,
				ReadOnly: m.ReadOnly,
			})
			continue
		}
		// A relative source would make the engine read it as a volume name.
		if !path.IsAbs(m.Source) {
			return fmt.Errorf("container %q: bind mount source %q is not an absolute path; set Volume for a named volume", spec.Name, m.Source)
		}
		bind := m.Source + ":" + m.Target
		if m.ReadOnly {
			bind += ":ro"
		}
		host.Binds = append(host.Binds, bind)
	}
	return nil
}

// addPorts exposes and publishes the spec's ports. HostPort 0 leaves the
// choice of host port to the engine.
func addPorts(cfg *container.Config, host *container.HostConfig, spec *runtime.ContainerSpec) error {
	for _, pb := range spec.PortBindings {
		proto := strings.ToLower(pb.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		if proto != "tcp" && proto != "udp" && proto != "sctp" {
			return fmt.Errorf("container %q: port %d: protocol %q is not tcp, udp or sctp", spec.Name, pb.ContainerPort, pb.Protocol)
		}
		if pb.ContainerPort < 1 || pb.ContainerPort > 65535 || pb.HostPort < 0 || pb.HostPort > 65535 {
			return fmt.Errorf("container %q: port binding %d:%d out of range", spec.Name, pb.HostPort, pb.ContainerPort)
		}
		port, err := nat.NewPort(proto, strconv.Itoa(pb.ContainerPort))
		if err != nil {
			return fmt.Errorf("container %q: %w", spec.Name, err)
		}
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = nat.PortSet{}
			host.PortBindings = nat.PortMap{}
		}
		cfg.ExposedPorts[port] = struct{}{}
		hostPort := ""
		if pb.HostPort != 0 {
			hostPort = strconv.Itoa(pb.HostPort)
		}
		host.PortBindings[port] = append(host.PortBindings[port], nat.PortBinding{HostIP: pb.HostIP, HostPort: hostPort})
	}
	return nil
}

// addNetwork sets the network mode and, on a user-defined network, the
// endpoint's fixed address, MAC address, aliases and links.
func addNetwork(cfg *container.Config, host *container.HostConfig, spec *runtime.ContainerSpec, apiVersion string) (*network.NetworkingConfig, error) {
	mode := spec.NetworkMode
	if mode == "" {
		mode = network.NetworkBridge
	}
	host.NetworkMode = container.NetworkMode(mode)
	userDefined := host.NetworkMode.IsUserDefined()
	if (spec.IPv4Address != "" || len(spec.Aliases) > 0) && !userDefined {
		return nil, fmt.Errorf("container %q: a fixed IPv4 address and aliases need a user-defined network, not network mode %q", spec.Name, mode)
	}
	if spec.MacAddress != "" && !userDefined && !host.NetworkMode.IsBridge() {
		return nil, fmt.Errorf("container %q: a MAC address needs a bridge network, not network mode %q", spec.Name, mode)
	}

	var ep *network.EndpointSettings
	endpoint := func() *network.EndpointSettings {
		if ep == nil {
			ep = &network.EndpointSettings{}
		}
		return ep
	}
	if userDefined {
		// Legacy links work on the default bridge only; on a user-defined
		// network they are endpoint aliases of the linked containers.
		if len(spec.Links) > 0 {
			endpoint().Links = spec.Links
		}
		if spec.IPv4Address != "" {
			endpoint().IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: spec.IPv4Address}
		}
		if len(spec.Aliases) > 0 {
			endpoint().Aliases = spec.Aliases
		}
	} else {
		host.Links = spec.Links
	}
	if spec.MacAddress != "" {
		if versions.LessThan(apiVersion, "1.44") {
			cfg.MacAddress = spec.MacAddress //nolint:staticcheck // the only place for it before API 1.44
		} else {
			endpoint().MacAddress = spec.MacAddress
		}
	}
	if ep == nil {
		return nil, nil
	}
	return &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{mode: ep}}, nil
}

// ceilSeconds rounds d up to whole seconds, the engine's unit for stop
// timeouts.
func ceilSeconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}
