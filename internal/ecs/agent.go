package ecs

import (
	"context"
	"encoding/json"
	"fmt"
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
	cluster, err := s.ExistingCluster(s.reader(ctx), c, in.Cluster, true)
	if err != nil {
		return nil, err
	}
	id, ok := s.ScopedID(c, "container-instance", cluster, in.ContainerInstance)
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
		sc, err := s.TaskServiceConnect(s.reader(ctx), c, &t, services)
		if err != nil {
			return nil, err
		}
		out.Tasks = append(out.Tasks, agentapi.AssignedTask{Task: t.Task.Wire(), ServiceConnect: sc})
		defs = append(defs, t.TaskDefinitionArn)
	}
	keys := make([]string, len(defs))
	for i, arn := range defs {
		res, _ := s.ResourceOf(c, arn)
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
	err := s.UpdateTask(ctx, c, in.Cluster, in.Task, func(tx *store.Tx, t *taskRecord) error {
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
		td, err := s.FindTaskDef(tx, c, t.TaskDefinitionArn)
		if err != nil {
			return err
		}
		t.HealthStatus = taskHealth(t, td)
		if t.LastStatus == "RUNNING" && t.DesiredStatus == "RUNNING" {
			return s.RegisterTask(tx, c, t)
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
	defer s.Serialize(c, cluster)()
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
