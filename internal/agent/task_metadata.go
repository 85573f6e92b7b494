package agent

import (
	"cmp"
	"context"
	"net"
	"strconv"
	"strings"

	"github.com/wharfhq/wharf/internal/agent/hostnet"
	"github.com/wharfhq/wharf/internal/agent/metadata"
	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
)

// A task manager is what the task metadata endpoint answers from.
var _ metadata.Source = (*taskManager)(nil)

// metadataHost is the host:port containers of a network mode reach the
// task metadata endpoint at.
func (a *Agent) metadataHost(mode ecsapi.NetworkMode) string {
	host := "127.0.0.1"
	switch mode {
	case ecsapi.NetworkModeAwsvpc:
		if n := a.networkInfo(); n != nil {
			host = n.Gateway
		}
	case ecsapi.NetworkModeBridge, "":
		host = hostnet.BridgeGateway()
	}
	return net.JoinHostPort(host, strconv.Itoa(a.metadataPort))
}

// ContainerMetadata is a container's task metadata, from what the manager
// knows and what the engine says.
func (m *taskManager) ContainerMetadata(ctx context.Context, name string) metadata.Container {
	n := m.a.networkInfo()
	m.mu.Lock()
	c := m.containers[name]
	cm := metadata.Container{
		DockerID:      c.id,
		Name:          name,
		DockerName:    c.dockerName,
		Image:         c.def.Image,
		Labels:        map[string]string{},
		DesiredStatus: m.desired,
		KnownStatus:   c.status,
		ExitCode:      c.exitCode,
		Limits:        metadata.Limits{CPU: float64(c.def.Cpu)},
		Type:          "NORMAL",
		LogDriver:     "json-file",
	}
	if c.def.Memory != nil {
		cm.Limits.Memory = int64(*c.def.Memory)
	}
	if lc := c.def.LogConfiguration; lc != nil {
		cm.LogDriver, cm.LogOptions = string(lc.LogDriver), lc.Options
	}
	if c.health != "" {
		cm.Health = &metadata.Health{Status: string(c.health)}
	}
	for _, tc := range m.task.Containers {
		if tc.Name == name {
			cm.ContainerARN = tc.ContainerArn
		}
	}
	mode := string(m.td.NetworkMode)
	nm := metadata.Network{NetworkMode: mode}
	if m.ip != "" {
		zero := 0
		nm.IPv4Addresses, nm.MACAddress, nm.AttachmentIndex = []string{m.ip}, m.mac, &zero
		if n != nil {
			nm.IPv4SubnetCIDRBlock, nm.SubnetGatewayIpv4Address = n.Subnet, n.Gateway+"/"+strings.SplitN(n.Subnet, "/", 2)[1]
			if ip := m.a.resolver(n.Gateway); ip != "" {
				nm.DomainNameServers = []string{ip}
			}
		}
	}
	id, ip, pauseIP := c.id, m.ip, m.pauseIP
	m.mu.Unlock()
	if id != "" {
		if st, err := m.a.rt.Inspect(ctx, id); err == nil {
			cm.ImageID = st.ImageID
			cm.Labels = st.Labels
			if !st.StartedAt.IsZero() {
				cm.StartedAt = &st.StartedAt
			}
			if !st.FinishedAt.IsZero() && !st.Running {
				cm.FinishedAt = &st.FinishedAt
			}
			if ip == "" {
				for _, ip := range st.Networks {
					if ip != "" {
						nm.IPv4Addresses = append(nm.IPv4Addresses, ip)
					}
				}
			}
			if len(nm.IPv4Addresses) == 0 && pauseIP != "" {
				nm.IPv4Addresses = []string{pauseIP} // in its pause container's namespace
			}
		}
	}
	cm.Networks = []metadata.Network{nm}
	return cm
}

// TaskMetadata is the task's metadata, with the containers the control
// plane knows of (not a hidden Service Connect proxy).
func (m *taskManager) TaskMetadata(ctx context.Context) metadata.Task {
	m.mu.Lock()
	tm := metadata.Task{
		Cluster:          m.cluster(),
		TaskARN:          m.task.TaskArn,
		Family:           m.td.Family,
		Revision:         strconv.Itoa(int(m.td.Revision)),
		DesiredStatus:    m.desired,
		KnownStatus:      m.status,
		PullStartedAt:    m.pullStart,
		PullStoppedAt:    m.pullStop,
		AvailabilityZone: m.a.cfg.AvailabilityZone,
		LaunchType:       string(cmp.Or(m.task.LaunchType, ecsapi.LaunchTypeEc2)),
	}
	if cpu, err := strconv.ParseFloat(m.td.Cpu, 64); err == nil {
		tm.Limits = &metadata.Limits{CPU: cpu / 1024}
		tm.Limits.Memory, _ = strconv.ParseInt(m.td.Memory, 10, 64)
	}
	var names, ids []string
	for _, name := range m.order {
		c := m.containers[name]
		if !c.hidden {
			names = append(names, name)
		}
		if c.id != "" {
			ids = append(ids, c.id)
		}
	}
	storage := m.task.EphemeralStorage
	m.mu.Unlock()
	for _, name := range names {
		tm.Containers = append(tm.Containers, m.ContainerMetadata(ctx, name))
	}
	if tm.LaunchType == string(ecsapi.LaunchTypeFargate) && storage != nil {
		es := &metadata.EphemeralStorageMetrics{Reserved: int64(storage.SizeInGiB) << 10}
		for _, id := range ids {
			if n, err := m.a.rt.DiskUsage(ctx, id); err == nil {
				es.Utilized += n
			}
		}
		es.Utilized >>= 20
		tm.EphemeralStorageMetrics = es
	}
	return tm
}

// ContainerID is the engine id of a container of the task, "" before it
// is created.
func (m *taskManager) ContainerID(name string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.containers[name]; c != nil {
		return c.id
	}
	return ""
}

// ContainerIDs are the engine ids of the task's created containers, in
// task definition order.
func (m *taskManager) ContainerIDs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for _, name := range m.order {
		if id := m.containers[name].id; id != "" {
			ids = append(ids, id)
		}
	}
	return ids
}

// ProxyConfig answers the task's Service Connect proxy's configuration
// request: at once when it has applied another index than the current
// one, else when the configuration changes or after proxyConfigWait.
func (m *taskManager) ProxyConfig(ctx context.Context, name string, index int64) ([]byte, bool) {
	sc := m.sc
	if sc == nil || name != sc.proxy {
		return nil, false
	}
	return sc.serve(ctx, index, proxyConfigWait), true
}
