package state

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"

	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/scheduler"
	"github.com/wharfhq/wharf/internal/store"
)

// attachENI gives an awsvpc task an address from the subnet and an
// ElasticNetworkInterface-like attachment, inside tx.
func (s *State) attachENI(tx *store.Tx, c Scope, t *TaskRecord) error {
	ip, err := s.allocateIP(tx, c, t.TaskArn)
	if err != nil {
		return err
	}
	b := ip.As4()
	mac := fmt.Sprintf("0a:58:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3])
	attachment := Attachment{
		Id:     NewUUID(),
		Type:   "ElasticNetworkInterface",
		Status: "PRECREATED",
		Details: []KeyValuePair{
			{Name: "subnetId", Value: "subnet-wharf"},
			{Name: "networkInterfaceId", Value: "eni-" + NewID()[:17]},
			{Name: "macAddress", Value: mac},
			{Name: "privateDnsName", Value: "ip-" + strings.ReplaceAll(ip.String(), ".", "-") + "." + c.Region + ".compute.internal"},
			{Name: "privateIPv4Address", Value: ip.String()},
		},
	}
	t.Attachments = append(t.Attachments, attachment)
	for i := range t.Containers {
		t.Containers[i].NetworkInterfaces = []NetworkInterface{{AttachmentId: attachment.Id, PrivateIpv4Address: ip.String()}}
	}
	return nil
}

// TaskIP returns the address of an awsvpc task, if it has one.
func TaskIP(t *TaskRecord) string {
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
func (s *State) detachENI(tx *store.Tx, c Scope, t *TaskRecord) {
	if ip := TaskIP(t); ip != "" {
		tx.Delete(c.Keys().Address(ip))
		for i := range t.Attachments {
			t.Attachments[i].Status = "DELETED"
		}
	}
}

// allocateIP takes a free address of the subnet for owner, inside tx. It
// probes random addresses first and scans when the subnet is nearly full.
func (s *State) allocateIP(tx *store.Tx, c Scope, owner string) (netip.Addr, error) {
	base := binary.BigEndian.Uint32(s.Subnet.Addr().AsSlice())
	size := uint32(1) << (32 - s.Subnet.Bits())
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
	return netip.Addr{}, Limit(KindAddress, s.Subnet.String(), fmt.Sprintf("No free address is left in the awsvpc subnet %s; stop awsvpc tasks or configure a larger --awsvpc-subnet.", s.Subnet))
}

// Launch describes tasks to create.
type Launch struct {
	Cluster    *ClusterRecord
	TD         *TaskDefRecord
	Overrides  *ecsapi.TaskOverride
	Group      string
	StartedBy  string
	Service    string
	Tags       []ecsapi.Tag
	Propagate  ecsapi.PropagateTags
	Execute    bool
	LaunchType ecsapi.LaunchType
	// CapacityProvider is a Fargate task's provider.
	CapacityProvider string
}

// NewTask creates a task of l placed on instance r, inside tx: it reserves
// the task's resources on r, gives an awsvpc task its address, and writes
// the task and r.
func (s *State) NewTask(tx *store.Tx, c Scope, l *Launch, r *InstanceRecord, d scheduler.Demand) (*TaskRecord, error) {
	id := NewID()
	cluster := l.Cluster.ClusterName
	taskArn := s.ARN(c, "task/"+cluster+"/"+id)
	td := WireTD(l.TD)
	status := "PENDING"
	if td.NetworkMode == ecsapi.NetworkModeAwsvpc {
		status = "PROVISIONING"
	}
	group := l.Group
	if group == "" {
		group = "family:" + td.Family
	}
	overrides := &ecsapi.TaskOverride{ContainerOverrides: []ecsapi.ContainerOverride{}, InferenceAcceleratorOverrides: []ecsapi.InferenceAcceleratorOverride{}}
	if l.Overrides != nil {
		overrides = l.Overrides
	}
	tags := TagsFromWire(l.Tags)
	if l.Propagate == ecsapi.PropagateTagsTaskDefinition {
		tags = MergeTags(l.TD.Tags, l.Tags)
	}
	t := &TaskRecord{
		Task: Task{
			TaskArn:              taskArn,
			ClusterArn:           l.Cluster.ClusterArn,
			TaskDefinitionArn:    td.TaskDefinitionArn,
			ContainerInstanceArn: r.ContainerInstanceArn,
			Overrides:            One(overrides, TaskOverrideFromWire),
			LastStatus:           status,
			DesiredStatus:        "RUNNING",
			Cpu:                  td.Cpu,
			Memory:               td.Memory,
			CreatedAt:            c.Time(),
			Version:              1,
			Group:                group,
			StartedBy:            l.StartedBy,
			LaunchType:           l.LaunchType,
			Tags:                 tags,
			EnableExecuteCommand: l.Execute,
			HealthStatus:         ecsapi.HealthStatusUnknown,
		},
		Reserved: ReservationOf(d),
		Service:  l.Service,
	}
	if l.Overrides != nil && l.Overrides.Cpu != "" {
		t.Cpu = l.Overrides.Cpu
	}
	if l.Overrides != nil && l.Overrides.Memory != "" {
		t.Memory = l.Overrides.Memory
	}
	if az, ok := AttributeValue(r.Attributes, "ecs.availability-zone"); ok {
		t.AvailabilityZone = az
	}
	if arch, ok := AttributeValue(r.Attributes, "ecs.cpu-architecture"); ok {
		t.Attributes = []Attribute{{Name: "ecs.cpu-architecture", Value: arch}}
	}
	for _, cd := range td.ContainerDefinitions {
		ct := Container{
			ContainerArn:      s.ARN(c, "container/"+cluster+"/"+id+"/"+NewUUID()),
			TaskArn:           taskArn,
			Name:              cd.Name,
			Image:             cd.Image,
			LastStatus:        "PENDING",
			Cpu:               strconv.Itoa(int(cd.Cpu)),
			NetworkInterfaces: []NetworkInterface{},
		}
		if cd.Memory != nil {
			ct.Memory = strconv.Itoa(int(*cd.Memory))
		}
		if cd.MemoryReservation != nil {
			ct.MemoryReservation = strconv.Itoa(int(*cd.MemoryReservation))
		}
		if cd.HealthCheck != nil {
			ct.HealthStatus = ecsapi.HealthStatusUnknown
		}
		t.Containers = append(t.Containers, ct)
	}
	if l.LaunchType == ecsapi.LaunchTypeFargate {
		fargateFields(t, l, td, r)
	}
	if td.NetworkMode == ecsapi.NetworkModeAwsvpc {
		if err := s.attachENI(tx, c, t); err != nil {
			return nil, err
		}
	}
	Hold(r, &d, 1)
	r.Version++
	if err := tx.Put(s.PlacedKey(c, t), s.PlacedValue(c, t)); err != nil {
		return nil, err
	}
	if err := tx.Put(s.TaskKey(c, t), t); err != nil {
		return nil, err
	}
	return t, tx.Put(s.InstanceKey(c, r.ContainerInstanceArn), r)
}

func (s *State) TaskKey(c Scope, t *TaskRecord) string {
	res, _ := s.ResourceOf(c, t.TaskArn)
	return c.Keys().Task(split(strings.TrimPrefix(res, "task/")))
}

// PlacedKey indexes a task that has not stopped under its instance:
// ecs/<region>/placed/<cluster>/<instance id>/<task id>.
// A task on a pool host is indexed under the pool, and the index's value
// names the task's cluster.
func (s *State) PlacedKey(c Scope, t *TaskRecord) string {
	cluster := strings.TrimPrefix(t.ClusterArn, s.ARN(c, "cluster/"))
	if s.OnPool(c, t.ContainerInstanceArn) {
		cluster = FargatePool
	}
	return c.Keys().Placed(cluster, IDOf(t.ContainerInstanceArn), IDOf(t.TaskArn))
}

// PlacedValue is what a task's placed key holds: its cluster's name when
// it runs on a pool host.
func (s *State) PlacedValue(c Scope, t *TaskRecord) string {
	if s.OnPool(c, t.ContainerInstanceArn) {
		return strings.TrimPrefix(t.ClusterArn, s.ARN(c, "cluster/"))
	}
	return ""
}

func (s *State) FindTask(r Reader, c Scope, cluster, ref string) (*TaskRecord, error) {
	id, ok := s.ScopedID(c, "task", cluster, ref)
	if !ok {
		return nil, nil
	}
	return Get[TaskRecord](r, c.Keys().Task(cluster, id))
}

// Transition moves a task to status, keeping its instance's counts and
// reservations in step, inside tx.
func (s *State) Transition(tx *store.Tx, c Scope, t *TaskRecord, status string) error {
	if ecsapi.TaskStage(status) <= ecsapi.TaskStage(t.LastStatus) {
		return nil
	}
	t.LastStatus = status
	t.Version++
	switch {
	case status == "RUNNING" && t.DesiredStatus == "RUNNING":
		if err := s.RegisterTask(tx, c, t); err != nil {
			return err
		}
	case ecsapi.TaskStage(status) > ecsapi.TaskStage("RUNNING"):
		if err := s.DeregisterTask(tx, c, t); err != nil {
			return err
		}
	}
	switch status {
	case "RUNNING":
		if t.StartedAt == nil {
			t.StartedAt = c.Time()
		}
		if t.ConnectivityAt == nil {
			t.ConnectivityAt = c.Time()
		}
		t.Connectivity = ecsapi.ConnectivityConnected
	case "STOPPING":
		if t.StoppingAt == nil {
			t.StoppingAt = c.Time()
		}
	case "STOPPED":
		s.detachENI(tx, c, t)
		now := c.Time()
		if t.StoppingAt == nil {
			t.StoppingAt = now
		}
		if t.ExecutionStoppedAt == nil {
			t.ExecutionStoppedAt = now
		}
		t.StoppedAt = now
		t.DesiredStatus = "STOPPED"
		t.Connectivity = ecsapi.ConnectivityDisconnected
		for i := range t.Containers {
			t.Containers[i].LastStatus = "STOPPED"
		}
	}
	if status != "STOPPED" {
		return nil
	}
	// A stopped task gives its resources back and leaves its instance.
	tx.Delete(s.PlacedKey(c, t))
	var r InstanceRecord
	k := s.InstanceKey(c, t.ContainerInstanceArn)
	ok, err := tx.Get(k, &r)
	if err != nil || !ok {
		return err
	}
	d := t.Reserved.Demand()
	Hold(&r, &d, -1)
	r.Version++
	return tx.Put(k, &r)
}

// Stop asks for t to stop and writes it, inside tx.
func (s *State) Stop(tx *store.Tx, c Scope, t *TaskRecord, code ecsapi.TaskStopCode, reason string) error {
	if t.DesiredStatus != "STOPPED" {
		// Callers stop reaching a task before it stops.
		if err := s.DeregisterTask(tx, c, t); err != nil {
			return err
		}
		t.DesiredStatus = "STOPPED"
		t.StopCode = code
		t.StoppedReason = reason
		t.StoppingAt = c.Time()
		t.Version++
	}
	if !t.Acknowledged && t.LastStatus != "STOPPED" {
		if err := s.Transition(tx, c, t, "STOPPED"); err != nil {
			return err
		}
	}
	return tx.Put(s.TaskKey(c, t), t)
}

// taskIn reads the task ref of an active cluster; a missing task is
// NotFound.
func (s *State) taskIn(tx *store.Tx, c Scope, cluster, ref string) (*TaskRecord, error) {
	cl, err := s.ActiveCluster(tx, c, cluster)
	if err != nil {
		return nil, err
	}
	t, err := s.FindTask(tx, c, cl.ClusterName, ref)
	if err == nil && t == nil {
		err = NotFound(KindTask, ref, fmt.Sprintf("no task %q in cluster %q", ref, cl.ClusterName))
	}
	return t, err
}

// StopRef stops the task ref of cluster, once allow (when given) lets it,
// and returns the task as ECS shows it.
func (s *State) StopRef(ctx context.Context, c Scope, cluster, ref string, allow func(*TaskRecord) error, code ecsapi.TaskStopCode, reason string) (ecsapi.Task, error) {
	var out ecsapi.Task
	defer s.Serialize(c, cluster)()
	err := s.Store.Update(ctx, func(tx *store.Tx) error {
		t, err := s.taskIn(tx, c, cluster, ref)
		if err != nil {
			return err
		}
		if allow != nil {
			if err := allow(t); err != nil {
				return err
			}
		}
		if err := s.Stop(tx, c, t, code, reason); err != nil {
			return err
		}
		out = t.Wire()
		return nil
	})
	return out, err
}

// FamilyOf returns the family of a task definition ARN.
func FamilyOf(arn string) string {
	_, rest, _ := strings.Cut(arn, ":task-definition/")
	family, _, _ := strings.Cut(rest, ":")
	return family
}

func IDOf(arn string) string { return arn[strings.LastIndex(arn, "/")+1:] }

// UpdateTask applies an agent's report to a task. Reports take no turn
// with the cluster's placements: they compare only what they read.
func (s *State) UpdateTask(ctx context.Context, c Scope, cluster, ref string, change func(*store.Tx, *TaskRecord) error) error {
	return s.Store.Update(ctx, func(tx *store.Tx) error {
		t, err := s.taskIn(tx, c, cluster, ref)
		if err != nil {
			return err
		}
		t.Acknowledged = true
		if err := change(tx, t); err != nil {
			return err
		}
		t.Version++
		return tx.Put(s.TaskKey(c, t), t)
	})
}
