package agentserver

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

// AwsvpcNetwork is the name of the network awsvpc tasks attach to.
const AwsvpcNetwork = "wharf-awsvpc"

// maxPollWait bounds a blocking poll, well inside the HTTP write timeout.
const maxPollWait = 30 * time.Second

// Poll answers an agent with the tasks assigned to its instance, waiting
// for a change after the index it already has. Each poll is the agent's
// heartbeat.
func (s *Server) Poll(ctx context.Context, in *agentapi.PollRequest) (*agentapi.PollResponse, error) {
	c := s.call(ctx)
	cluster, err := s.ExistingCluster(s.reader(ctx), c, in.Cluster, true)
	if err != nil {
		return nil, err
	}
	id, ok := s.ScopedID(c, "container-instance", cluster, in.ContainerInstance)
	r, err := state.Get[state.InstanceRecord](s.reader(ctx), c.Keys().Instance(cluster, id))
	if err != nil {
		return nil, err
	}
	if !ok || r == nil || r.Status == "INACTIVE" {
		return nil, agentapi.InstanceNotRegistered(in.ContainerInstance, cluster)
	}
	if err := s.st.Heartbeat(ctx, c.Keys().Heartbeat(cluster, id), state.HeartbeatRecord{Since: c.Now}, s.grace); err != nil {
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
		owner := cluster
		if cluster == state.FargatePool {
			// A pool host runs tasks of any cluster; the index names it.
			if err := kv.Decode(&owner); err != nil {
				return nil, err
			}
		}
		taskKeys[i] = c.Keys().Task(owner, kv.Key[strings.LastIndex(kv.Key, "/")+1:])
	}
	values, err := s.st.GetMany(ctx, taskKeys)
	if err != nil {
		return nil, err
	}
	out := &agentapi.PollResponse{Index: rev, Tasks: []agentapi.AssignedTask{}}
	var defs []string
	services := map[string]*state.ServiceRecord{}
	for i, v := range values {
		if v == nil {
			continue
		}
		var t state.TaskRecord
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
		out.Tasks = append(out.Tasks, agentapi.AssignedTask{Task: t.Task.Wire(), ServiceConnect: sc, StopWithinSeconds: s.stopWithin(&t, c.Now)})
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
		var td state.TaskDefRecord
		if err := json.Unmarshal(v, &td); err != nil {
			return nil, fmt.Errorf("decode %s: %w", keys[i], err)
		}
		out.Tasks[i].TaskDefinition = td.TaskDefinition.Wire()
	}
	out.Network = &agentapi.Network{Name: AwsvpcNetwork, Subnet: s.Subnet.String(), Gateway: s.Subnet.Addr().Next().String()}
	out.DNS, _ = s.dnsAddr.Load().(string)
	return out, nil
}

// ReportHealth records the health of a task's containers and derives the
// task's: UNHEALTHY when an essential container is, HEALTHY when every
// essential container with a health check is.
func (s *Server) ReportHealth(ctx context.Context, in *agentapi.ReportHealthRequest) (*agentapi.ReportHealthResponse, error) {
	c := s.call(ctx)
	err := s.UpdateTask(ctx, c, in.Cluster, in.Task, func(tx *store.Tx, t *state.TaskRecord) error {
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

func taskHealth(t *state.TaskRecord, td *state.TaskDefRecord) ecsapi.HealthStatus {
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
