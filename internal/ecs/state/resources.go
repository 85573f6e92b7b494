package state

import (
	"context"
	"strconv"

	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/scheduler"
	"github.com/wharfhq/wharf/internal/store"
)

// Counted tells how an instance counts a task in a status: pending,
// running, or not at all.
func Counted(status string) (pending, running bool) {
	switch st := ecsapi.TaskStage(status); {
	case st >= ecsapi.TaskStage("RUNNING") && st < ecsapi.TaskStage("STOPPED"):
		return false, true
	case st >= 0 && st < ecsapi.TaskStage("RUNNING"):
		return true, false
	}
	return false, false
}

// DemandOf is what a task of td with overrides needs from its instance.
func DemandOf(td *ecsapi.TaskDefinition, ov *ecsapi.TaskOverride) scheduler.Demand {
	var d scheduler.Demand
	overrides := map[string]*ecsapi.ContainerOverride{}
	if ov != nil {
		for i := range ov.ContainerOverrides {
			overrides[ov.ContainerOverrides[i].Name] = &ov.ContainerOverrides[i]
		}
	}
	for _, cd := range td.ContainerDefinitions {
		cpu, mem, res := int64(cd.Cpu), cd.Memory, cd.MemoryReservation
		if o := overrides[cd.Name]; o != nil {
			if o.Cpu != nil {
				cpu = int64(*o.Cpu)
			}
			if o.Memory != nil {
				mem = o.Memory
			}
			if o.MemoryReservation != nil {
				res = o.MemoryReservation
			}
		}
		d.CPU += cpu
		switch {
		case res != nil:
			d.Memory += int64(*res)
		case mem != nil:
			d.Memory += int64(*mem)
		}
		if td.NetworkMode == ecsapi.NetworkModeAwsvpc {
			d.ENI = 1
			continue
		}
		for _, pm := range cd.PortMappings {
			if pm.HostPort == nil || *pm.HostPort == 0 {
				continue
			}
			if pm.Protocol == ecsapi.TransportProtocolUdp {
				d.PortsUDP = append(d.PortsUDP, int(*pm.HostPort))
			} else {
				d.Ports = append(d.Ports, int(*pm.HostPort))
			}
		}
	}
	cpu, mem := td.Cpu, td.Memory
	if ov != nil && ov.Cpu != "" {
		cpu = ov.Cpu
	}
	if ov != nil && ov.Memory != "" {
		mem = ov.Memory
	}
	if n, err := strconv.Atoi(cpu); err == nil {
		d.CPU = int64(n)
	}
	if n, err := strconv.Atoi(mem); err == nil {
		d.Memory = int64(n)
	}
	return d
}

// NodeOf is the scheduler's view of an instance record.
func NodeOf(r *InstanceRecord) scheduler.Node {
	n := scheduler.Node{
		ID:             r.ContainerInstanceArn,
		Active:         r.Status == "ACTIVE",
		AgentConnected: r.AgentConnected,
	}
	if x := ResourceNamed(r.RemainingResources, "CPU"); x != nil {
		n.CPU = int64(x.IntegerValue)
	}
	if x := ResourceNamed(r.RemainingResources, "MEMORY"); x != nil {
		n.Memory = int64(x.IntegerValue)
	}
	n.ENI = -1
	if x := ResourceNamed(r.RemainingResources, "ENI"); x != nil {
		n.ENI = int64(x.IntegerValue)
	}
	n.Ports = portList(ResourceNamed(r.RemainingResources, "PORTS"))
	n.PortsUDP = portList(ResourceNamed(r.RemainingResources, "PORTS_UDP"))
	return n
}

func portList(r *Resource) []int {
	if r == nil {
		return nil
	}
	out := make([]int, 0, len(r.StringSetValue))
	for _, p := range r.StringSetValue {
		if n, err := strconv.Atoi(p); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// Hold takes (sign 1) or returns (sign -1) a task's resources on an
// instance record.
func Hold(r *InstanceRecord, d *scheduler.Demand, sign int32) {
	for i := range r.RemainingResources {
		res := &r.RemainingResources[i]
		switch res.Name {
		case "CPU":
			res.IntegerValue -= sign * int32(d.CPU)
		case "MEMORY":
			res.IntegerValue -= sign * int32(d.Memory)
		case "ENI":
			res.IntegerValue -= sign * int32(d.ENI)
		case "PORTS":
			res.StringSetValue = editPorts(res.StringSetValue, d.Ports, sign)
		case "PORTS_UDP":
			res.StringSetValue = editPorts(res.StringSetValue, d.PortsUDP, sign)
		}
	}
}

func editPorts(have []string, ports []int, sign int32) []string {
	out := append([]string(nil), have...)
	for _, p := range ports {
		s := strconv.Itoa(p)
		if sign > 0 {
			out = append(out, s)
			continue
		}
		for i, h := range out {
			if h == s {
				out = append(out[:i], out[i+1:]...)
				break
			}
		}
	}
	return out
}

// TaskCounts counts the pending and running tasks of each instance.
func TaskCounts(tasks []*TaskRecord) map[string][2]int32 {
	out := map[string][2]int32{}
	for _, t := range tasks {
		pending, running := Counted(t.LastStatus)
		n := out[t.ContainerInstanceArn]
		if pending {
			n[0]++
		}
		if running {
			n[1]++
		}
		out[t.ContainerInstanceArn] = n
	}
	return out
}

// Nodes turns a cluster's instances into the scheduler's view, counting the
// task groups of the tasks meant to run on each.
func Nodes(instances []*InstanceRecord, tasks []*TaskRecord) []scheduler.Node {
	groups := map[string]map[string]int{}
	counts := TaskCounts(tasks)
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
		n := NodeOf(r)
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

// PlacementRequest combines a task definition's constraints with a call's.
func PlacementRequest(td *ecsapi.TaskDefinition, d scheduler.Demand, count int, group string, constraints []ecsapi.PlacementConstraint, strategies []ecsapi.PlacementStrategy) *scheduler.Request {
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

// ClusterTasks reads the tasks of a cluster through r.
func ClusterTasks(r Reader, k Keys, cluster string) ([]*TaskRecord, error) {
	kvs, err := r.List(k.Tasks(cluster))
	if err != nil {
		return nil, err
	}
	out := make([]*TaskRecord, 0, len(kvs))
	for _, kv := range kvs {
		t := new(TaskRecord)
		if err := kv.Decode(t); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// ResourceNamed returns the named resource of a list, or nil.
func ResourceNamed(rs []Resource, name string) *Resource {
	for i := range rs {
		if rs[i].Name == name {
			return &rs[i]
		}
	}
	return nil
}

// Reader reads the store: a transaction (which records what it read) or
// the store itself (StoreReader).
type Reader interface {
	Get(key string, v any) (bool, error)
	List(prefix string) ([]store.KV, error)
}

// StoreReader reads outside a transaction.
type StoreReader struct {
	Ctx   context.Context
	Store *store.Store
}

func (r StoreReader) Get(key string, v any) (bool, error) { return r.Store.Get(r.Ctx, key, v) }
func (r StoreReader) List(prefix string) ([]store.KV, error) {
	return r.Store.List(r.Ctx, prefix)
}

// Get reads key into a new T; nil when the key does not exist.
func Get[T any](r Reader, key string) (*T, error) {
	v := new(T)
	found, err := r.Get(key, v)
	if err != nil || !found {
		return nil, err
	}
	return v, nil
}

// ClusterInstances reads the registered instances of a cluster inside tx.
func ClusterInstances(r Reader, k Keys, cluster string) ([]*InstanceRecord, error) {
	kvs, err := r.List(k.Instances(cluster))
	if err != nil {
		return nil, err
	}
	var out []*InstanceRecord
	for _, kv := range kvs {
		ir := new(InstanceRecord)
		if err := kv.Decode(ir); err != nil {
			return nil, err
		}
		if ir.Status != "INACTIVE" {
			out = append(out, ir)
		}
	}
	return out, nil
}
