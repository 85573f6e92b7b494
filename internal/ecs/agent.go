package ecs

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"time"

	"github.com/wharfhq/wharf/internal/api/agentapi"
	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/ecs/state"
	"github.com/wharfhq/wharf/internal/store"
)

var _ agentapi.API = (*Service)(nil)

// AwsvpcNetwork is the name of the network awsvpc tasks attach to.
const AwsvpcNetwork = "wharf-awsvpc"

// maxPollWait bounds a blocking poll, well inside the HTTP write timeout.
const maxPollWait = 30 * time.Second

type heartbeat struct {
	Since time.Time `json:"since"`
}

// Poll answers an agent with the tasks assigned to its instance, waiting
// for a change after the index it already has. Each poll is the agent's
// heartbeat.
func (s *Service) Poll(ctx context.Context, in *agentapi.PollRequest) (*agentapi.PollResponse, error) {
	c := s.call(ctx)
	cluster, err := s.existingCluster(ctx, c, in.Cluster, true)
	if err != nil {
		return nil, err
	}
	id, ok := s.scopedID(c, "container-instance", cluster, in.ContainerInstance)
	r, err := state.Get[instanceRecord](s.reader(ctx), c.Keys().Instance(cluster, id))
	if err != nil {
		return nil, err
	}
	if !ok || r == nil || r.Status == "INACTIVE" {
		return nil, agentapi.InstanceNotRegistered(in.ContainerInstance, cluster)
	}
	if err := s.st.Heartbeat(ctx, c.Keys().Heartbeat(cluster, id), heartbeat{Since: c.Now}, s.grace); err != nil {
		return nil, err
	}
	if in.Index > 0 && in.WaitSeconds > 0 {
		// Answer well within the heartbeat's lease, so that an idle
		// agent's next poll renews it in time.
		wait := min(time.Duration(in.WaitSeconds)*time.Second, maxPollWait, s.grace/2)
		s.assign.wait(ctx, r.ContainerInstanceArn, in.Index, wait)
	}
	placed, rev, err := s.st.ListAt(ctx, c.Keys().PlacedOn(cluster, id))
	if err != nil {
		return nil, err
	}
	taskKeys := make([]string, len(placed))
	for i, kv := range placed {
		taskKeys[i] = c.Keys().Task(cluster, kv.Key[strings.LastIndex(kv.Key, "/")+1:])
	}
	values, err := s.st.GetMany(ctx, taskKeys)
	if err != nil {
		return nil, err
	}
	out := &agentapi.PollResponse{Index: rev, Tasks: []agentapi.AssignedTask{}}
	var defs []string
	services := map[string]*serviceRecord{}
	for i, v := range values {
		if v == nil {
			continue
		}
		var t taskRecord
		if err := json.Unmarshal(v, &t); err != nil {
			return nil, fmt.Errorf("decode %s: %w", taskKeys[i], err)
		}
		if t.LastStatus == "STOPPED" {
			continue
		}
		sc, err := s.taskServiceConnect(s.reader(ctx), c, &t, services)
		if err != nil {
			return nil, err
		}
		out.Tasks = append(out.Tasks, agentapi.AssignedTask{Task: t.Task.Wire(), ServiceConnect: sc})
		defs = append(defs, t.TaskDefinitionArn)
	}
	keys := make([]string, len(defs))
	for i, arn := range defs {
		res, _ := s.resourceOf(c, arn)
		family, rev, _ := strings.Cut(strings.TrimPrefix(res, "task-definition/"), ":")
		keys[i] = c.Keys().TaskDefRevision(family, rev)
	}
	values, err = s.st.GetMany(ctx, keys)
	if err != nil {
		return nil, err
	}
	for i, v := range values {
		if v == nil {
			continue
		}
		var td taskDefRecord
		if err := json.Unmarshal(v, &td); err != nil {
			return nil, fmt.Errorf("decode %s: %w", keys[i], err)
		}
		out.Tasks[i].TaskDefinition = td.TaskDefinition.Wire()
	}
	out.Network = &agentapi.Network{Name: AwsvpcNetwork, Subnet: s.subnet.String(), Gateway: s.subnet.Addr().Next().String()}
	out.DNS, _ = s.dnsAddr.Load().(string)
	return out, nil
}

// ReportHealth records the health of a task's containers and derives the
// task's: UNHEALTHY when an essential container is, HEALTHY when every
// essential container with a health check is.
func (s *Service) ReportHealth(ctx context.Context, in *agentapi.ReportHealthRequest) (*agentapi.ReportHealthResponse, error) {
	c := s.call(ctx)
	err := s.updateTask(ctx, c, in.Cluster, in.Task, func(tx *store.Tx, t *taskRecord) error {
		for _, h := range in.Containers {
			found := false
			for i := range t.Containers {
				if t.Containers[i].Name == h.Name {
					t.Containers[i].HealthStatus, found = h.HealthStatus, true
				}
			}
			if !found {
				return invalidParameter("Task %s has no container named %q.", t.TaskArn, h.Name)
			}
		}
		td, err := s.findTaskDef(tx, c, t.TaskDefinitionArn)
		if err != nil {
			return err
		}
		t.HealthStatus = taskHealth(t, td)
		if t.LastStatus == "RUNNING" && t.DesiredStatus == "RUNNING" {
			return s.registerTask(tx, c, t)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &agentapi.ReportHealthResponse{}, nil
}

func taskHealth(t *taskRecord, td *taskDefRecord) ecsapi.HealthStatus {
	essential := map[string]bool{}
	for _, cd := range td.ContainerDefinitions {
		essential[cd.Name] = cd.Essential == nil || *cd.Essential
	}
	health, checked := ecsapi.HealthStatusHealthy, false
	for _, ct := range t.Containers {
		if !essential[ct.Name] || ct.HealthStatus == "" {
			continue
		}
		checked = true
		switch ct.HealthStatus {
		case ecsapi.HealthStatusUnhealthy:
			return ecsapi.HealthStatusUnhealthy
		case ecsapi.HealthStatusUnknown:
			health = ecsapi.HealthStatusUnknown
		}
	}
	if !checked {
		return ecsapi.HealthStatusUnknown
	}
	return health
}

// MonitorAgents keeps instances' agentConnected in step with their agents'
// heartbeats until ctx ends: an instance is connected while its heartbeat
// key lives. Several servers may run it at once.
func (s *Service) MonitorAgents(ctx context.Context) {
	for ev := range s.st.Follow(ctx, state.HeartbeatPrefix) {
		if ev.Restart {
			if err := s.syncAgents(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("agent monitor: resync failed", "err", err)
			}
			continue
		}
		parts := strings.Split(strings.TrimPrefix(ev.Key, state.HeartbeatPrefix), "/")
		if len(parts) != 3 || (ev.Value != nil && ev.Previous != nil) {
			continue
		}
		if err := s.syncAgent(ctx, call{Region: parts[0], Now: s.now().UTC()}, parts[1], parts[2]); err != nil && ctx.Err() == nil {
			s.log.Warn("agent monitor: update failed", "cluster", parts[1], "instance_id", parts[2], "err", err)
		}
	}
}

// syncAgents brings every instance's agentConnected in step.
func (s *Service) syncAgents(ctx context.Context) error {
	regions, err := s.st.Regions(ctx)
	if err != nil {
		return err
	}
	for _, region := range regions {
		c := call{Region: region, Now: s.now().UTC()}
		kvs, err := s.st.List(ctx, c.Keys().Instances(""))
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			parts := strings.Split(strings.TrimPrefix(kv.Key, c.Keys().Instances("")), "/")
			if len(parts) == 2 {
				if err := s.syncAgent(ctx, c, parts[0], parts[1]); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (s *Service) syncAgent(ctx context.Context, c call, cluster, id string) error {
	defer s.serialize(c, cluster)()
	return s.st.Update(ctx, func(tx *store.Tx) error {
		r, err := state.Get[instanceRecord](tx, c.Keys().Instance(cluster, id))
		if err != nil || r == nil || r.Status == "INACTIVE" {
			return err
		}
		var hb heartbeat
		alive, err := tx.Get(c.Keys().Heartbeat(cluster, id), &hb)
		if err != nil || alive == r.AgentConnected {
			return err
		}
		r.AgentConnected = alive
		r.DisconnectedAt = nil
		if !alive {
			r.DisconnectedAt = &c.Now
		}
		r.Version++
		s.log.Info("agent connection changed", "cluster", cluster, "instance_id", id, "agent_connected", alive)
		return tx.Put(c.Keys().Instance(cluster, id), r)
	})
}

// attachENI gives an awsvpc task an address from the subnet and an
// ElasticNetworkInterface-like attachment, inside tx.
func (s *Service) attachENI(tx *store.Tx, c call, t *taskRecord) error {
	ip, err := s.allocateIP(tx, c, t.TaskArn)
	if err != nil {
		return err
	}
	b := ip.As4()
	mac := fmt.Sprintf("0a:58:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3])
	attachment := state.Attachment{
		Id:     newUUID(),
		Type:   "ElasticNetworkInterface",
		Status: "PRECREATED",
		Details: []state.KeyValuePair{
			{Name: "subnetId", Value: "subnet-wharf"},
			{Name: "networkInterfaceId", Value: "eni-" + newID()[:17]},
			{Name: "macAddress", Value: mac},
			{Name: "privateDnsName", Value: "ip-" + strings.ReplaceAll(ip.String(), ".", "-") + "." + c.Region + ".compute.internal"},
			{Name: "privateIPv4Address", Value: ip.String()},
		},
	}
	t.Attachments = append(t.Attachments, attachment)
	for i := range t.Containers {
		t.Containers[i].NetworkInterfaces = []state.NetworkInterface{{AttachmentId: attachment.Id, PrivateIpv4Address: ip.String()}}
	}
	return nil
}

// taskIP returns the address of an awsvpc task, if it has one.
func taskIP(t *taskRecord) string {
	for _, a := range t.Attachments {
		if a.Type != "ElasticNetworkInterface" {
			continue
		}
		for _, d := range a.Details {
			if d.Name == "privateIPv4Address" {
				return d.Value
			}
		}
	}
	return ""
}

// detachENI frees an awsvpc task's address, inside tx.
func (s *Service) detachENI(tx *store.Tx, c call, t *taskRecord) {
	if ip := taskIP(t); ip != "" {
		tx.Delete(c.Keys().Address(ip))
		for i := range t.Attachments {
			t.Attachments[i].Status = "DELETED"
		}
	}
}

// allocateIP takes a free address of the subnet for owner, inside tx. It
// probes random addresses first and scans when the subnet is nearly full.
func (s *Service) allocateIP(tx *store.Tx, c call, owner string) (netip.Addr, error) {
	base := binary.BigEndian.Uint32(s.subnet.Addr().AsSlice())
	size := uint32(1) << (32 - s.subnet.Bits())
	// .0 is the network, .1 the gateway, the last the broadcast address.
	first, count := base+2, size-3
	addr := func(n uint32) netip.Addr {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], n)
		return netip.AddrFrom4(b)
	}
	take := func(ip netip.Addr) (bool, error) {
		var holder string
		used, err := tx.Get(c.Keys().Address(ip.String()), &holder)
		if err != nil || used {
			return false, err
		}
		return true, tx.Put(c.Keys().Address(ip.String()), owner)
	}
	for range 32 {
		ip := addr(first + rand.Uint32N(count))
		if ok, err := take(ip); err != nil || ok {
			return ip, err
		}
	}
	for n := range count {
		ip := addr(first + n)
		if ok, err := take(ip); err != nil || ok {
			return ip, err
		}
	}
	return netip.Addr{}, clientError("No free address is left in the awsvpc subnet %s; stop awsvpc tasks or configure a larger --awsvpc-subnet.", s.subnet)
}
