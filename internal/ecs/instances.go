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
	"github.com/wharfhq/wharf/internal/scheduler/cql"
	"github.com/wharfhq/wharf/internal/store"
)

// Ports the ECS agent reserves on every instance unless told otherwise.
var defaultReservedPorts = []string{"22", "2375", "2376", "51678", "51679"}

var (
	attrNamePattern  = regexp.MustCompile(`^[a-zA-Z0-9_./\\-]{1,128}$`)
	attrValuePattern = regexp.MustCompile(`^[a-zA-Z0-9_./\\@: -]{1,128}$`)
	ec2IDPattern     = regexp.MustCompile(`^[a-zA-Z0-9-]{1,64}$`)
)

// identityDocument is the part of an EC2 instance identity document Wharf
// reads.
type identityDocument struct {
	InstanceID       string `json:"instanceId"`
	InstanceType     string `json:"instanceType"`
	AvailabilityZone string `json:"availabilityZone"`
	PrivateIP        string `json:"privateIp"`
	ImageID          string `json:"imageId"`
}

func checkAttribute(a ecsapi.Attribute) error {
	if !attrNamePattern.MatchString(a.Name) {
		return invalidParameter("Attribute name %q is invalid: 1-128 letters, numbers, hyphens, underscores, slashes, back slashes or periods.", a.Name)
	}
	if a.Value != "" && (!attrValuePattern.MatchString(a.Value) || strings.TrimSpace(a.Value) != a.Value) {
		return invalidParameter("Attribute value %q of %q is invalid: 1-128 letters, numbers, hyphens, underscores, periods, at signs, slashes, back slashes, colons or inner spaces.", a.Value, a.Name)
	}
	return nil
}

func isBuiltinAttribute(name string) bool {
	return strings.HasPrefix(name, "ecs.") || strings.HasPrefix(name, "com.amazonaws.ecs.")
}

// setAttribute adds or replaces an attribute by name.
func setAttribute(attrs []state.Attribute, a state.Attribute) []state.Attribute {
	a.TargetId, a.TargetType = "", ""
	for i := range attrs {
		if attrs[i].Name == a.Name {
			attrs[i] = a
			return attrs
		}
	}
	return append(attrs, a)
}

// RegisterContainerInstance registers a node, or re-registers a known one.
func (s *Service) RegisterContainerInstance(ctx context.Context, in *ecsapi.RegisterContainerInstanceRequest) (*ecsapi.RegisterContainerInstanceResponse, error) {
	c := s.call(ctx)
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	var doc identityDocument
	if in.InstanceIdentityDocument != "" {
		if err := json.Unmarshal([]byte(in.InstanceIdentityDocument), &doc); err != nil {
			return nil, invalidParameter("instanceIdentityDocument is not a JSON instance identity document: %v.", err)
		}
		if doc.InstanceID != "" && !ec2IDPattern.MatchString(doc.InstanceID) {
			return nil, invalidParameter("instanceId %q in the instance identity document is invalid.", doc.InstanceID)
		}
	}
	for _, a := range in.Attributes {
		if err := checkAttribute(a); err != nil {
			return nil, err
		}
	}
	registered, err := totalResources(in.TotalResources)
	if err != nil {
		return nil, err
	}
	var out ecsapi.ContainerInstance
	defer s.Serialize(c, in.Cluster)()
	err = s.Store.Update(ctx, func(tx *store.Tx) error {
		cl, err := s.ActiveCluster(tx, c, in.Cluster)
		if err != nil {
			return err
		}
		existing, err := s.reregistration(tx, c, cl.ClusterName, in.ContainerInstanceArn, doc.InstanceID)
		if err != nil {
			return err
		}
		r := existing
		if r == nil {
			id := state.NewID()
			ec2ID := doc.InstanceID
			if ec2ID == "" {
				ec2ID = "i-" + state.NewID()[:17]
			}
			r = &instanceRecord{ContainerInstance: state.ContainerInstance{
				ContainerInstanceArn: s.ARN(c, "container-instance/"+cl.ClusterName+"/"+id),
				Ec2InstanceId:        ec2ID,
				RegisteredAt:         c.Time(),
				Tags:                 state.TagsFromWire(in.Tags),
			}}
		} else if len(in.Tags) > 0 {
			r.Tags = state.MergeTags(r.Tags, in.Tags)
		}
		r.Status, r.InactiveAt, r.StatusReason = "ACTIVE", nil, ""
		r.AgentConnected = true
		r.VersionInfo = state.One(in.VersionInfo, state.VersionInfoFromWire)
		if r.VersionInfo == nil {
			r.VersionInfo = &state.VersionInfo{}
		}
		r.Version++
		reserved := reservedOn(existing)
		r.RegisteredResources = registered
		r.RemainingResources = remaining(registered, reserved)
		r.Attributes = s.instanceAttributes(c, r.Attributes, state.Each(in.Attributes, state.AttributeFromWire), doc)
		// Trunking is decided when an instance first registers.
		_, trunked := state.AttributeValue(r.Attributes, "ecs.awsvpc-trunk-id")
		if existing == nil {
			setting, err := s.effectiveSetting(tx, c, s.principal(), ecsapi.SettingNameAwsvpcTrunking)
			if err != nil {
				return err
			}
			trunked = setting.Value == "enabled"
		}
		r.RegisteredResources, r.Attributes = trunk(r.RegisteredResources, r.Attributes, trunked)
		r.RemainingResources = remaining(r.RegisteredResources, reserved)
		if existing != nil {
			if err := s.checkOwnTasksFit(r); err != nil {
				return err
			}
		}
		out = r.ContainerInstance.Wire()
		// Index the EC2 id, so that a registration of the same machine
		// finds its instance.
		if err := tx.Put(c.Keys().EC2(cl.ClusterName, r.Ec2InstanceId), state.IDOf(r.ContainerInstanceArn)); err != nil {
			return err
		}
		return tx.Put(s.InstanceKey(c, r.ContainerInstanceArn), r)
	})
	if err != nil {
		return nil, err
	}
	// Registering is the agent's first sign of life.
	res, _ := s.ResourceOf(c, out.ContainerInstanceArn)
	cluster, id, _ := strings.Cut(strings.TrimPrefix(res, "container-instance/"), "/")
	if err := s.Store.Heartbeat(ctx, c.Keys().Heartbeat(cluster, id), state.HeartbeatRecord{Since: c.Now}, s.grace); err != nil {
		return nil, err
	}
	return &ecsapi.RegisterContainerInstanceResponse{ContainerInstance: &out}, nil
}

// trunk applies ENI trunking to a new registration: with trunking on, the
// instance's awsvpc capacity (resource ENI) becomes its trunk capacity
// (ENI_TRUNK, when the agent sent one) and it gets an awsvpc-trunk-id, as
// instances do that register after awsvpcTrunking is enabled.
func trunk(rs []state.Resource, attrs []state.Attribute, on bool) ([]state.Resource, []state.Attribute) {
	var out []state.Resource
	var trunkCap *state.Resource
	for i := range rs {
		if rs[i].Name == "ENI_TRUNK" {
			trunkCap = &rs[i]
			continue
		}
		out = append(out, rs[i])
	}
	eni := state.ResourceNamed(out, "ENI")
	if !on || trunkCap == nil || eni == nil {
		return out, attrs
	}
	eni.IntegerValue = trunkCap.IntegerValue
	if _, ok := state.AttributeValue(attrs, "ecs.awsvpc-trunk-id"); !ok {
		attrs = setAttribute(attrs, state.Attribute{Name: "ecs.awsvpc-trunk-id", Value: "eni-trunk-" + state.NewID()[:17]})
	}
	return out, attrs
}

// reregistration finds the instance a registration renews: the one its ARN
// names, or the ACTIVE one with the same EC2 instance id.
func (s *Service) reregistration(tx *store.Tx, c call, cluster, arn, ec2ID string) (*instanceRecord, error) {
	if arn != "" {
		r, err := s.FindInstance(tx, c, cluster, arn)
		if err != nil {
			return nil, err
		}
		if r == nil {
			return nil, invalidParameter("Container instance %q is not registered in cluster %q; leave out containerInstanceArn to register a new one.", arn, cluster)
		}
		return r, nil
	}
	if ec2ID == "" {
		return nil, nil
	}
	var id string
	if ok, err := tx.Get(c.Keys().EC2(cluster, ec2ID), &id); err != nil || !ok {
		return nil, err
	}
	r, err := state.Get[instanceRecord](tx, c.Keys().Instance(cluster, id))
	if err != nil || r == nil || r.Status == "INACTIVE" || r.Ec2InstanceId != ec2ID {
		return nil, err
	}
	return r, nil
}

// checkOwnTasksFit refuses a re-registration that shrinks an instance below
// what its tasks hold.
func (s *Service) checkOwnTasksFit(r *instanceRecord) error {
	for _, name := range []string{"CPU", "MEMORY"} {
		if res := state.ResourceNamed(r.RemainingResources, name); res != nil && res.IntegerValue < 0 {
			return invalidParameter("The new %s of container instance %s is less than its running tasks hold; stop tasks first.", name, r.ContainerInstanceArn)
		}
	}
	return nil
}

// reservedOn returns what an instance's tasks hold: registered minus
// remaining.
func reservedOn(r *instanceRecord) (reserved struct {
	cpu, mem   int32
	ports, udp []string
}) {
	if r == nil {
		return reserved
	}
	get := func(rs []state.Resource, n string) *state.Resource {
		if x := state.ResourceNamed(rs, n); x != nil {
			return x
		}
		return &state.Resource{}
	}
	reserved.cpu = get(r.RegisteredResources, "CPU").IntegerValue - get(r.RemainingResources, "CPU").IntegerValue
	reserved.mem = get(r.RegisteredResources, "MEMORY").IntegerValue - get(r.RemainingResources, "MEMORY").IntegerValue
	minus := func(all, base []string) []string {
		var out []string
		for _, p := range all {
			if !contains(base, p) {
				out = append(out, p)
			}
		}
		return out
	}
	reserved.ports = minus(get(r.RemainingResources, "PORTS").StringSetValue, get(r.RegisteredResources, "PORTS").StringSetValue)
	reserved.udp = minus(get(r.RemainingResources, "PORTS_UDP").StringSetValue, get(r.RegisteredResources, "PORTS_UDP").StringSetValue)
	return reserved
}

func remaining(registered []state.Resource, reserved struct {
	cpu, mem   int32
	ports, udp []string
}) []state.Resource {
	out := make([]state.Resource, len(registered))
	for i, r := range registered {
		r.StringSetValue = append([]string(nil), r.StringSetValue...)
		switch r.Name {
		case "CPU":
			r.IntegerValue -= reserved.cpu
		case "MEMORY":
			r.IntegerValue -= reserved.mem
		case "PORTS":
			r.StringSetValue = append(r.StringSetValue, reserved.ports...)
		case "PORTS_UDP":
			r.StringSetValue = append(r.StringSetValue, reserved.udp...)
		}
		out[i] = r
	}
	return out
}

// totalResources checks and completes the resources an instance registers.
func totalResources(rs []ecsapi.Resource) ([]state.Resource, error) {
	out := []state.Resource{
		{Name: "CPU", Type: "INTEGER", IntegerValue: 2048},
		{Name: "MEMORY", Type: "INTEGER", IntegerValue: 3904},
		{Name: "PORTS", Type: "STRINGSET", StringSetValue: defaultReservedPorts},
		{Name: "PORTS_UDP", Type: "STRINGSET", StringSetValue: []string{}},
	}
	for _, r := range rs {
		switch r.Name {
		case "CPU", "MEMORY":
			v := r.IntegerValue
			if v == 0 && r.LongValue != 0 {
				v = int32(r.LongValue)
			}
			if v == 0 && r.DoubleValue != 0 {
				v = int32(r.DoubleValue)
			}
			if v <= 0 {
				return nil, invalidParameter("Resource %s must be a positive INTEGER.", r.Name)
			}
			state.ResourceNamed(out, r.Name).IntegerValue = v
		case "PORTS", "PORTS_UDP":
			for _, p := range r.StringSetValue {
				if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 65535 {
					return nil, invalidParameter("Resource %s lists %q, which is not a port number.", r.Name, p)
				}
			}
			state.ResourceNamed(out, r.Name).StringSetValue = r.StringSetValue
		case "":
			return nil, invalidParameter("Every resource needs a name, such as CPU, MEMORY, PORTS or PORTS_UDP.")
		default:
			out = append(out, state.ResourceFromWire(&r))
		}
	}
	return out, nil
}

// instanceAttributes merges the built-in attributes ECS sets with those the
// registration carries, keeping attributes set later through PutAttributes.
func (s *Service) instanceAttributes(c call, have, given []state.Attribute, doc identityDocument) []state.Attribute {
	attrs := append([]state.Attribute(nil), have...)
	defaults := map[string]string{
		"ecs.os-type":           "linux",
		"ecs.os-family":         "LINUX",
		"ecs.cpu-architecture":  "x86_64",
		"ecs.availability-zone": c.Region + "a",
		"ecs.instance-type":     "wharf.node",
	}
	if doc.AvailabilityZone != "" {
		defaults["ecs.availability-zone"] = doc.AvailabilityZone
	}
	if doc.InstanceType != "" {
		defaults["ecs.instance-type"] = doc.InstanceType
	}
	if doc.ImageID != "" {
		defaults["ecs.ami-id"] = doc.ImageID
	}
	names := make([]string, 0, len(defaults))
	for n := range defaults {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if _, ok := state.AttributeValue(attrs, n); !ok {
			attrs = setAttribute(attrs, state.Attribute{Name: n, Value: defaults[n]})
		}
	}
	for _, a := range given {
		attrs = setAttribute(attrs, a)
	}
	return attrs
}

// DescribeContainerInstances describes container instances.
func (s *Service) DescribeContainerInstances(ctx context.Context, in *ecsapi.DescribeContainerInstancesRequest) (*ecsapi.DescribeContainerInstancesResponse, error) {
	c := s.call(ctx)
	if len(in.ContainerInstances) == 0 {
		return nil, invalidParameter("Container instance cannot be empty.")
	}
	if len(in.ContainerInstances) > 100 {
		return nil, invalidParameter("At most 100 container instances can be described at once.")
	}
	r := s.reader(ctx)
	cluster, err := s.ExistingCluster(s.reader(ctx), c, in.Cluster, false)
	if err != nil {
		return nil, err
	}
	tasks, err := state.ClusterTasks(r, c.Keys(), cluster)
	if err != nil {
		return nil, err
	}
	counts := state.TaskCounts(tasks)
	out := &ecsapi.DescribeContainerInstancesResponse{ContainerInstances: []ecsapi.ContainerInstance{}, Failures: []ecsapi.Failure{}}
	for _, ref := range in.ContainerInstances {
		ir, err := s.FindInstance(r, c, cluster, ref)
		if err != nil {
			return nil, err
		}
		if ir == nil {
			out.Failures = append(out.Failures, failureOf(ref, "MISSING", ""))
			continue
		}
		ci := ir.ContainerInstance
		n := counts[ci.ContainerInstanceArn]
		ci.PendingTasksCount, ci.RunningTasksCount = n[0], n[1]
		if !contains(in.Include, ecsapi.ContainerInstanceFieldTags) {
			ci.Tags = nil
		}
		if contains(in.Include, ecsapi.ContainerInstanceFieldContainerInstanceHealth) {
			ci.HealthStatus = &state.ContainerInstanceHealthStatus{OverallStatus: ecsapi.InstanceHealthCheckStateOk}
		}
		out.ContainerInstances = append(out.ContainerInstances, ci.Wire())
	}
	return out, nil
}

// cqlInstance is what a cluster query sees of an instance.
func cqlInstance(r *instanceRecord, groups []string, running int32) *cql.Instance {
	attrs := map[string]string{}
	for _, a := range r.Attributes {
		attrs[a.Name] = a.Value
	}
	in := &cql.Instance{
		Attributes:        attrs,
		AgentConnected:    r.AgentConnected,
		EC2InstanceID:     r.Ec2InstanceId,
		RunningTasksCount: int(running),
		TaskGroups:        groups,
	}
	if r.VersionInfo != nil {
		in.AgentVersion = r.VersionInfo.AgentVersion
	}
	if r.RegisteredAt != nil {
		in.RegisteredAt = r.RegisteredAt.Time
	}
	return in
}

// taskGroups maps each instance ARN of a cluster to the groups of its
// tasks that are meant to run, and counts its pending and running tasks.
func (s *Service) taskGroups(ctx context.Context, c call, cluster string) (map[string][]string, map[string][2]int32, error) {
	tasks, err := state.ClusterTasks(s.reader(ctx), c.Keys(), cluster)
	if err != nil {
		return nil, nil, err
	}
	groups := map[string][]string{}
	for _, t := range tasks {
		if t.DesiredStatus != "STOPPED" && t.LastStatus != "STOPPED" {
			groups[t.ContainerInstanceArn] = append(groups[t.ContainerInstanceArn], t.Group)
		}
	}
	return groups, state.TaskCounts(tasks), nil
}

// ListContainerInstances lists instances by status and cluster query.
func (s *Service) ListContainerInstances(ctx context.Context, in *ecsapi.ListContainerInstancesRequest) (*ecsapi.ListContainerInstancesResponse, error) {
	c := s.call(ctx)
	limit, err := pageSize(in.MaxResults, 100, 100)
	if err != nil {
		return nil, err
	}
	cluster, err := s.ExistingCluster(s.reader(ctx), c, in.Cluster, true)
	if err != nil {
		return nil, err
	}
	var filter cql.Expr
	var groups map[string][]string
	var counts map[string][2]int32
	if in.Filter != "" {
		if filter, err = cql.Parse(in.Filter); err != nil {
			return nil, invalidParameter("Invalid filter %q: %v.", in.Filter, err)
		}
		if groups, counts, err = s.taskGroups(ctx, c, cluster); err != nil {
			return nil, err
		}
	}
	scope := fmt.Sprintf("ListContainerInstances/%s/%s/%s/%s", c.Region, cluster, in.Status, in.Filter)
	after, err := s.start(scope, in.NextToken)
	if err != nil {
		return nil, err
	}
	arns, last, more, err := store.Scan(ctx, s.Store, c.Keys().Instances(cluster), after, limit, func(kv store.KV) (string, bool, error) {
		var r instanceRecord
		if err := kv.Decode(&r); err != nil {
			return "", false, err
		}
		if in.Status == "" && r.Status == "INACTIVE" || in.Status != "" && r.Status != string(in.Status) {
			return "", false, nil
		}
		if filter != nil && !filter.Match(cqlInstance(&r, groups[r.ContainerInstanceArn], counts[r.ContainerInstanceArn][1])) {
			return "", false, nil
		}
		return r.ContainerInstanceArn, true, nil
	})
	if err != nil {
		return nil, err
	}
	if arns == nil {
		arns = []string{}
	}
	return &ecsapi.ListContainerInstancesResponse{ContainerInstanceArns: arns, NextToken: s.tokens.Next(scope, last, more)}, nil
}

// UpdateContainerInstancesState sets instances ACTIVE or DRAINING.
func (s *Service) UpdateContainerInstancesState(ctx context.Context, in *ecsapi.UpdateContainerInstancesStateRequest) (*ecsapi.UpdateContainerInstancesStateResponse, error) {
	c := s.call(ctx)
	if in.Status != ecsapi.ContainerInstanceStatusActive && in.Status != ecsapi.ContainerInstanceStatusDraining {
		return nil, invalidParameter("Container instances can only be set to ACTIVE or DRAINING, not %s.", in.Status)
	}
	if len(in.ContainerInstances) > 10 {
		return nil, invalidParameter("At most 10 container instances can be updated at once.")
	}
	out := &ecsapi.UpdateContainerInstancesStateResponse{ContainerInstances: []ecsapi.ContainerInstance{}, Failures: []ecsapi.Failure{}}
	defer s.Serialize(c, in.Cluster)()
	err := s.Store.Update(ctx, func(tx *store.Tx) error {
		out.ContainerInstances, out.Failures = out.ContainerInstances[:0], out.Failures[:0]
		cl, err := s.ActiveCluster(tx, c, in.Cluster)
		if err != nil {
			return err
		}
		for _, ref := range in.ContainerInstances {
			r, err := s.FindInstance(tx, c, cl.ClusterName, ref)
			if err != nil {
				return err
			}
			if r == nil || r.Status == "INACTIVE" {
				out.Failures = append(out.Failures, failureOf(ref, "MISSING", ""))
				continue
			}
			if r.Status != string(in.Status) {
				r.Status = string(in.Status)
				r.Version++
				if err := tx.Put(s.InstanceKey(c, r.ContainerInstanceArn), r); err != nil {
					return err
				}
			}
			out.ContainerInstances = append(out.ContainerInstances, r.ContainerInstance.Wire())
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeregisterContainerInstance removes an instance from its cluster. With
// tasks still on it, force is needed; the tasks are left running.
func (s *Service) DeregisterContainerInstance(ctx context.Context, in *ecsapi.DeregisterContainerInstanceRequest) (*ecsapi.DeregisterContainerInstanceResponse, error) {
	c := s.call(ctx)
	var out ecsapi.ContainerInstance
	defer s.Serialize(c, in.Cluster)()
	err := s.Store.Update(ctx, func(tx *store.Tx) error {
		cl, err := s.ActiveCluster(tx, c, in.Cluster)
		if err != nil {
			return err
		}
		r, err := s.FindInstance(tx, c, cl.ClusterName, in.ContainerInstance)
		if err != nil {
			return err
		}
		if r == nil || r.Status == "INACTIVE" {
			return invalidParameter("Container instance %q is not registered in cluster %q.", in.ContainerInstance, cl.ClusterName)
		}
		placed, err := tx.List(c.Keys().PlacedOn(cl.ClusterName, state.IDOf(r.ContainerInstanceArn)))
		if err != nil {
			return err
		}
		if len(placed) > 0 && !deref(in.Force) {
			return invalidParameter("Container instance %s has %d tasks that have not stopped. Stop them first, or deregister with --force to leave them running unmanaged.", r.ContainerInstanceArn, len(placed))
		}
		now := c.Now
		r.Status, r.InactiveAt, r.AgentConnected = "INACTIVE", &now, false
		r.Version++
		out = r.ContainerInstance.Wire()
		return tx.Put(s.InstanceKey(c, r.ContainerInstanceArn), r)
	})
	if err != nil {
		return nil, err
	}
	return &ecsapi.DeregisterContainerInstanceResponse{ContainerInstance: &out}, nil
}

const maxCustomAttributes = 10

// PutAttributes sets custom attributes on container instances.
func (s *Service) PutAttributes(ctx context.Context, in *ecsapi.PutAttributesRequest) (*ecsapi.PutAttributesResponse, error) {
	c := s.call(ctx)
	for _, a := range in.Attributes {
		if err := checkAttribute(a); err != nil {
			return nil, err
		}
		if a.TargetType != "" && a.TargetType != ecsapi.TargetTypeContainerInstance {
			return nil, invalidParameter("Attributes can only be put on container instances.")
		}
		if a.TargetId == "" {
			return nil, invalidParameter("Attribute %q needs a targetId: the container instance ARN or id.", a.Name)
		}
	}
	err := s.editAttributes(ctx, c, in.Cluster, in.Attributes, func(r *instanceRecord, a state.Attribute) error {
		r.Attributes = setAttribute(r.Attributes, a)
		custom := 0
		for _, x := range r.Attributes {
			if !isBuiltinAttribute(x.Name) {
				custom++
			}
		}
		if custom > maxCustomAttributes {
			return clientCode("AttributeLimitExceededException", fmt.Sprintf("Container instance %s would have %d custom attributes; the limit is %d.", r.ContainerInstanceArn, custom, maxCustomAttributes))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ecsapi.PutAttributesResponse{Attributes: in.Attributes}, nil
}

// DeleteAttributes removes custom attributes from container instances.
func (s *Service) DeleteAttributes(ctx context.Context, in *ecsapi.DeleteAttributesRequest) (*ecsapi.DeleteAttributesResponse, error) {
	c := s.call(ctx)
	for _, a := range in.Attributes {
		if a.TargetId == "" {
			return nil, invalidParameter("Attribute %q needs a targetId: the container instance ARN or id.", a.Name)
		}
	}
	err := s.editAttributes(ctx, c, in.Cluster, in.Attributes, func(r *instanceRecord, a state.Attribute) error {
		var kept []state.Attribute
		for _, x := range r.Attributes {
			if x.Name != a.Name {
				kept = append(kept, x)
			}
		}
		r.Attributes = kept
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ecsapi.DeleteAttributesResponse{Attributes: in.Attributes}, nil
}

func (s *Service) editAttributes(ctx context.Context, c call, cluster string, attrs []ecsapi.Attribute, edit func(*instanceRecord, state.Attribute) error) error {
	defer s.Serialize(c, cluster)()
	return s.Store.Update(ctx, func(tx *store.Tx) error {
		cl, err := s.ActiveCluster(tx, c, cluster)
		if err != nil {
			return err
		}
		changed := map[string]*instanceRecord{}
		for _, a := range attrs {
			id, ok := s.ScopedID(c, "container-instance", cl.ClusterName, a.TargetId)
			r := changed[id]
			if ok && r == nil {
				if r, err = s.FindInstance(tx, c, cl.ClusterName, a.TargetId); err != nil {
					return err
				}
			}
			if r == nil || r.Status == "INACTIVE" {
				return clientCode("TargetNotFoundException", fmt.Sprintf("Could not find container instance %q in cluster %q.", a.TargetId, cl.ClusterName))
			}
			if err := edit(r, state.AttributeFromWire(&a)); err != nil {
				return err
			}
			changed[id] = r
		}
		for _, r := range changed {
			r.Version++
			if err := tx.Put(s.InstanceKey(c, r.ContainerInstanceArn), r); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListAttributes lists the attributes of a cluster's container instances.
func (s *Service) ListAttributes(ctx context.Context, in *ecsapi.ListAttributesRequest) (*ecsapi.ListAttributesResponse, error) {
	c := s.call(ctx)
	if in.TargetType != ecsapi.TargetTypeContainerInstance {
		return nil, invalidParameter("targetType must be container-instance.")
	}
	if in.AttributeValue != "" && in.AttributeName == "" {
		return nil, invalidParameter("attributeValue can only be given with attributeName.")
	}
	limit, err := pageSize(in.MaxResults, 100, 100)
	if err != nil {
		return nil, err
	}
	cluster, err := s.ExistingCluster(s.reader(ctx), c, in.Cluster, true)
	if err != nil {
		return nil, err
	}
	scope := fmt.Sprintf("ListAttributes/%s/%s/%s/%s", c.Region, cluster, in.AttributeName, in.AttributeValue)
	after, err := s.start(scope, in.NextToken)
	if err != nil {
		return nil, err
	}
	kvs, err := s.Store.List(ctx, c.Keys().Instances(cluster))
	if err != nil {
		return nil, err
	}
	// A position is the instance key and attribute name of the last item.
	var attrs []ecsapi.Attribute
	var last string
	more := false
	for _, kv := range kvs {
		var r instanceRecord
		if err := kv.Decode(&r); err != nil {
			return nil, err
		}
		if r.Status == "INACTIVE" {
			continue
		}
		sort.Slice(r.Attributes, func(i, j int) bool { return r.Attributes[i].Name < r.Attributes[j].Name })
		for _, a := range r.Attributes {
			pos := kv.Key + "\x00" + a.Name
			if pos <= after || in.AttributeName != "" && a.Name != in.AttributeName || in.AttributeValue != "" && a.Value != in.AttributeValue {
				continue
			}
			if len(attrs) == limit {
				more = true
				break
			}
			a.TargetType, a.TargetId = ecsapi.TargetTypeContainerInstance, r.ContainerInstanceArn
			attrs, last = append(attrs, a.Wire()), pos
		}
		if more {
			break
		}
	}
	if attrs == nil {
		attrs = []ecsapi.Attribute{}
	}
	return &ecsapi.ListAttributesResponse{Attributes: attrs, NextToken: s.tokens.Next(scope, last, more)}, nil
}
