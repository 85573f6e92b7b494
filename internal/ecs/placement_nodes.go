package ecs

import (
	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/scheduler"
)

// nodes turns a cluster's instances into the scheduler's view, counting the
// task groups of the tasks meant to run on each.
func nodes(instances []*instanceRecord, tasks []*taskRecord) []scheduler.Node {
	groups := map[string]map[string]int{}
	counts := taskCounts(tasks)
	for _, t := range tasks {
		if t.DesiredStatus != "RUNNING" || t.LastStatus == "STOPPED" {
			continue
		}
		if groups[t.ContainerInstanceArn] == nil {
			groups[t.ContainerInstanceArn] = map[string]int{}
		}
		groups[t.ContainerInstanceArn][t.Group]++
	}
	out := make([]scheduler.Node, len(instances))
	for i, r := range instances {
		n := node(r)
		n.EC2InstanceID = r.Ec2InstanceId
		n.Attributes = map[string]string{}
		for _, a := range r.Attributes {
			n.Attributes[a.Name] = a.Value
		}
		if r.RegisteredAt != nil {
			n.RegisteredAt = r.RegisteredAt.Time
		}
		if r.VersionInfo != nil {
			n.AgentVersion = r.VersionInfo.AgentVersion
		}
		n.RunningTasks = int(counts[r.ContainerInstanceArn][1])
		n.Groups = groups[r.ContainerInstanceArn]
		out[i] = n
	}
	return out
}

// placementRequest combines a task definition's constraints with a call's.
func placementRequest(td *ecsapi.TaskDefinition, d scheduler.Demand, count int, group string, constraints []ecsapi.PlacementConstraint, strategies []ecsapi.PlacementStrategy) *scheduler.Request {
	req := &scheduler.Request{Demand: d, Count: count, Group: group}
	for _, c := range td.PlacementConstraints {
		req.Constraints = append(req.Constraints, scheduler.Constraint{Type: string(c.Type), Expression: c.Expression})
	}
	for _, c := range constraints {
		req.Constraints = append(req.Constraints, scheduler.Constraint{Type: string(c.Type), Expression: c.Expression})
	}
	for _, st := range strategies {
		req.Strategies = append(req.Strategies, scheduler.Strategy{Type: string(st.Type), Field: st.Field})
	}
	return req
}

// clusterTasks reads the tasks of a cluster inside tx.
func clusterTasks(r reader, c call, cluster string) ([]*taskRecord, error) {
	kvs, err := r.List(c.key("tasks", cluster) + "/")
	if err != nil {
		return nil, err
	}
	out := make([]*taskRecord, 0, len(kvs))
	for _, kv := range kvs {
		t := new(taskRecord)
		if err := kv.Decode(t); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}
