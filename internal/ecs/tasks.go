package ecs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/awsproto"
	"github.com/wharfhq/wharf/internal/ecs/state"
	"github.com/wharfhq/wharf/internal/scheduler"
	"github.com/wharfhq/wharf/internal/store"
)

// checkOverrides rejects overrides of containers the task definition lacks.
func checkOverrides(td *ecsapi.TaskDefinition, ov *ecsapi.TaskOverride) error {
	if ov == nil {
		return nil
	}
	for _, o := range ov.ContainerOverrides {
		found := false
		for _, cd := range td.ContainerDefinitions {
			found = found || cd.Name == o.Name
		}
		if !found {
			return invalidParameter("Override for container named %q is not a container in the TaskDefinition.", o.Name)
		}
	}
	if _, err := taskCPU(ov.Cpu); ov.Cpu != "" && err != nil {
		return err
	}
	if _, err := taskMemory(ov.Memory); ov.Memory != "" && err != nil {
		return err
	}
	return nil
}

// remember makes a request with a client token answer the same way when
// repeated. It returns the stored answer of an earlier identical request,
// or nil; the caller stores its own answer with record.
func (s *Service) remember(tx *store.Tx, c call, op, scope, token string, in any, out any) (replayed bool, record func() error, err error) {
	if token == "" {
		return false, func() error { return nil }, nil
	}
	raw, _ := json.Marshal(in)
	sum := sha256.Sum256(raw)
	hash := hex.EncodeToString(sum[:])
	key := c.Keys().Idempotency(op, scope, token)
	var rec idempotencyRecord
	ok, err := tx.Get(key, &rec)
	if err != nil {
		return false, nil, err
	}
	if ok && c.Now.Before(rec.Expires) {
		if rec.InputHash != hash {
			return false, nil, clientCode("ConflictException", fmt.Sprintf("The client token %q was already used with different parameters; use a new token for a different request.", token))
		}
		return true, nil, json.Unmarshal(rec.Output, out)
	}
	return false, func() error {
		b, err := json.Marshal(out)
		if err != nil {
			return err
		}
		return tx.Put(key, &idempotencyRecord{InputHash: hash, Output: b, Expires: c.Now.Add(24 * time.Hour)})
	}, nil
}

// RunTask places count tasks of a task definition on the cluster's
// instances.
func (s *Service) RunTask(ctx context.Context, in *ecsapi.RunTaskRequest) (*ecsapi.RunTaskResponse, error) {
	c := s.call(ctx)
	count := int(deref(in.Count))
	if in.Count == nil {
		count = 1
	}
	if count < 1 || count > 10 {
		return nil, invalidParameter("count must be between 1 and 10, not %d.", count)
	}
	if len(in.ClientToken) > 64 {
		return nil, invalidParameter("clientToken can be at most 64 characters.")
	}
	if len(in.StartedBy) > 128 {
		return nil, invalidParameter("startedBy can be at most 128 characters.")
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	if err := checkPlacement(in.PlacementConstraints, in.PlacementStrategy); err != nil {
		return nil, err
	}
	request := *in
	request.ClientToken = ""
	out := &ecsapi.RunTaskResponse{}
	defer s.Serialize(c, in.Cluster)()
	err := s.Store.Update(ctx, func(tx *store.Tx) error {
		out.Tasks, out.Failures = []ecsapi.Task{}, []ecsapi.Failure{}
		cl, err := s.ActiveCluster(tx, c, in.Cluster)
		if err != nil {
			return err
		}
		replayed, record, err := s.remember(tx, c, "RunTask", cl.ClusterName, in.ClientToken, &request, out)
		if err != nil || replayed {
			return err
		}
		l, err := s.launchOf(tx, c, cl, in.TaskDefinition, in.Overrides)
		if err != nil {
			return err
		}
		td := state.WireTD(l.TD)
		plan, err := s.planLaunch(c, cl, in.LaunchType, in.CapacityProviderStrategy, in.PlatformVersion, td)
		if err != nil {
			return err
		}
		l.LaunchType = plan.launchType
		if err := checkNetworkConfiguration(in.NetworkConfiguration, td); err != nil {
			return err
		}
		if plan.fargate() {
			if err := checkFargateLaunch(in.NetworkConfiguration, in.PlacementConstraints, in.PlacementStrategy); err != nil {
				return err
			}
		}
		if err := checkLaunchSupport(td, in.EnableECSManagedTags, in.EnableExecuteCommand, in.VolumeConfigurations, in.Overrides); err != nil {
			return err
		}
		l.Group, l.StartedBy, l.Tags, l.Propagate, l.Execute = in.Group, in.StartedBy, in.Tags, in.PropagateTags, in.EnableExecuteCommand
		if l.Group == "" {
			l.Group = "family:" + l.TD.Family
		}
		if plan.fargate() {
			return s.runFargate(tx, c, l, plan, in.Overrides, count, out, record)
		}
		instances, err := state.ClusterInstances(tx, c.Keys(), cl.ClusterName)
		if err != nil {
			return err
		}
		if len(instances) == 0 {
			return invalidParameter("No Container Instances were found in your cluster.").
				WithHint("cluster %q has no container instances: run `wharf agent` against it, or start `wharf dev`, which runs an agent", cl.ClusterName)
		}
		tasks, err := state.ClusterTasks(tx, c.Keys(), cl.ClusterName)
		if err != nil {
			return err
		}
		d := state.DemandOf(state.WireTD(l.TD), in.Overrides)
		res, err := scheduler.Place(state.Nodes(instances, tasks), state.PlacementRequest(state.WireTD(l.TD), d, count, l.Group, in.PlacementConstraints, in.PlacementStrategy))
		if err != nil {
			return invalidParameter("%s", err.Error())
		}
		for _, f := range res.Failures {
			out.Failures = append(out.Failures, failureOf(f.NodeID, f.Reason, ""))
		}
		for _, idx := range res.Chosen {
			t, err := s.NewTask(tx, c, l, instances[idx], d)
			if err != nil {
				return err
			}
			out.Tasks = append(out.Tasks, t.Wire())
		}
		return record()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// runFargate places a RunTask's tasks on the Fargate pool.
func (s *Service) runFargate(tx *store.Tx, c call, l *state.Launch, plan launchPlan, ov *ecsapi.TaskOverride, count int, out *ecsapi.RunTaskResponse, record func() error) error {
	tasks, err := state.ClusterTasks(tx, c.Keys(), l.Cluster.ClusterName)
	if err != nil {
		return err
	}
	d := state.DemandOf(state.WireTD(l.TD), ov)
	placed, short, err := s.PlaceFargate(tx, c, l, d, plan.providers(nil, count), tasks)
	if err != nil {
		return err
	}
	for _, t := range placed {
		out.Tasks = append(out.Tasks, t.Wire())
	}
	for range short {
		out.Failures = append(out.Failures, failureOf("", state.FargateCapacityUnavailable, ""))
	}
	if short > 0 {
		s.log.Warn("no room for FARGATE tasks on the hosts of Fargate capacity; start `wharf agent --fargate` on more hosts (wharf dev: --fargate-nodes, with the engine's runsc runtime)",
			"cluster", l.Cluster.ClusterName, "unplaced", short)
	}
	return record()
}

// planLaunch checks how a launch asks to run td as ECS does: a launch
// type, or a capacity provider strategy (the cluster's default when it
// gives neither), and a platform version for Fargate. EC2 and EXTERNAL
// tasks run on the cluster's container instances, FARGATE tasks on the
// hosts that offer Fargate capacity.
func (s *Service) planLaunch(c call, cl *clusterRecord, lt ecsapi.LaunchType, strategy []ecsapi.CapacityProviderStrategyItem, platformVersion string, td *ecsapi.TaskDefinition) (launchPlan, error) {
	switch {
	case lt != "" && len(strategy) > 0:
		return launchPlan{}, invalidParameter("Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again.")
	case lt == "" && len(strategy) == 0:
		strategy = state.Each(cl.DefaultCapacityProviderStrategy, (*state.CapacityProviderStrategyItem).Wire)
	}
	p := launchPlan{launchType: lt}
	if len(strategy) > 0 {
		p.strategy = slices.Clone(strategy)
		if err := s.checkStrategy(c, p.strategy, cl.CapacityProviders); err != nil {
			return launchPlan{}, err
		}
		p.launchType = ecsapi.LaunchTypeFargate
	}
	if p.launchType == "" {
		p.launchType = ecsapi.LaunchTypeEc2
	}
	if !contains(td.Compatibilities, ecsapi.Compatibility(p.launchType)) {
		return launchPlan{}, invalidParameter("Task definition does not support launch_type %s.", p.launchType).
			WithHint("%s is compatible with %v", td.TaskDefinitionArn, td.Compatibilities)
	}
	switch p.launchType {
	case ecsapi.LaunchTypeEc2, ecsapi.LaunchTypeExternal:
		if platformVersion != "" && p.launchType == ecsapi.LaunchTypeEc2 {
			return launchPlan{}, invalidParameter("The platform version must be null when specifying an EC2 launch type.")
		}
		if td.EphemeralStorage != nil {
			return launchPlan{}, notYet("ephemeralStorage with launch type %s", p.launchType).
				WithHint("ephemeralStorage sizes Fargate tasks' storage; run the task with launch type FARGATE")
		}
	case ecsapi.LaunchTypeFargate:
		switch platformVersion {
		case "", "LATEST":
			p.platformVersion = "LATEST"
		case state.FargatePlatformVersion:
			p.platformVersion = platformVersion
		case "1.3.0", "1.2.0", "1.1.0", "1.0.0":
			return launchPlan{}, notYet("platformVersion %s", platformVersion).
				WithHint("Wharf's Fargate runs platform version %s (LATEST)", state.FargatePlatformVersion)
		default:
			return launchPlan{}, clientCode("PlatformUnknownException", "The specified platform version does not exist.")
		}
	default:
		return launchPlan{}, notYet("launchType %s", p.launchType)
	}
	return p, nil
}

// checkFargateLaunch checks what a Fargate launch refuses.
func checkFargateLaunch(nc *ecsapi.NetworkConfiguration, constraints []ecsapi.PlacementConstraint, strategies []ecsapi.PlacementStrategy) error {
	switch {
	case nc == nil || nc.AwsvpcConfiguration == nil:
		return invalidParameter("Network Configuration must be provided when networkMode 'awsvpc' is specified.")
	case len(constraints) > 0:
		return invalidParameter("Placement constraints are not supported with FARGATE launch type.")
	case len(strategies) > 0:
		return invalidParameter("Placement strategies are not supported with FARGATE launch type.")
	}
	return nil
}

// checkNetworkConfiguration checks a launch's network configuration
// against its task definition as ECS does. Wharf gives awsvpc tasks their
// addresses from its own subnet (--awsvpc-subnet), whatever subnets and
// security groups the configuration names.
func checkNetworkConfiguration(nc *ecsapi.NetworkConfiguration, td *ecsapi.TaskDefinition) error {
	if nc == nil || nc.AwsvpcConfiguration == nil {
		return nil
	}
	if td.NetworkMode != ecsapi.NetworkModeAwsvpc {
		return invalidParameter("Network Configuration is not valid for the given networkMode of this task definition.")
	}
	if len(nc.AwsvpcConfiguration.Subnets) == 0 {
		return invalidParameter("subnets can not be empty.")
	}
	return nil
}

// launchOf resolves the task definition of a launch inside tx.
func (s *Service) launchOf(tx *store.Tx, c call, cl *clusterRecord, ref string, ov *ecsapi.TaskOverride) (*state.Launch, error) {
	td, err := s.FindTaskDef(tx, c, ref)
	if err != nil {
		return nil, err
	}
	if td.Status != ecsapi.TaskDefinitionStatusActive {
		return nil, invalidParameter("TaskDefinition is inactive").
			WithHint("%s was deregistered; register a new revision to run it", td.TaskDefinitionArn)
	}
	if err := checkOverrides(state.WireTD(td), ov); err != nil {
		return nil, err
	}
	return &state.Launch{Cluster: cl, TD: td, Overrides: ov, LaunchType: ecsapi.LaunchTypeEc2}, nil
}

// StartTask starts a task on each of the given container instances.
func (s *Service) StartTask(ctx context.Context, in *ecsapi.StartTaskRequest) (*ecsapi.StartTaskResponse, error) {
	c := s.call(ctx)
	if len(in.ContainerInstances) == 0 || len(in.ContainerInstances) > 10 {
		return nil, invalidParameter("Give between 1 and 10 container instances.")
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	out := &ecsapi.StartTaskResponse{}
	defer s.Serialize(c, in.Cluster)()
	err := s.Store.Update(ctx, func(tx *store.Tx) error {
		out.Tasks, out.Failures = []ecsapi.Task{}, []ecsapi.Failure{}
		cl, err := s.ActiveCluster(tx, c, in.Cluster)
		if err != nil {
			return err
		}
		l, err := s.launchOf(tx, c, cl, in.TaskDefinition, in.Overrides)
		if err != nil {
			return err
		}
		td := state.WireTD(l.TD)
		if err := checkNetworkConfiguration(in.NetworkConfiguration, td); err != nil {
			return err
		}
		if err := checkLaunchSupport(td, in.EnableECSManagedTags, in.EnableExecuteCommand, in.VolumeConfigurations, in.Overrides); err != nil {
			return err
		}
		l.Group, l.StartedBy, l.Tags, l.Propagate, l.Execute = in.Group, in.StartedBy, in.Tags, in.PropagateTags, in.EnableExecuteCommand
		d := state.DemandOf(state.WireTD(l.TD), in.Overrides)
		for _, ref := range in.ContainerInstances {
			r, err := s.FindInstance(tx, c, cl.ClusterName, ref)
			if err != nil {
				return err
			}
			if r == nil || r.Status == "INACTIVE" {
				out.Failures = append(out.Failures, failureOf(ref, "MISSING", ""))
				continue
			}
			n := state.NodeOf(r)
			if reason := scheduler.Fit(&n, &d); reason != "" {
				out.Failures = append(out.Failures, failureOf(r.ContainerInstanceArn, reason, ""))
				continue
			}
			t, err := s.NewTask(tx, c, l, r, d)
			if err != nil {
				return err
			}
			out.Tasks = append(out.Tasks, t.Wire())
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// StopTask stops a task. A task no agent has picked up yet stops at once;
// otherwise its agent stops it.
func (s *Service) StopTask(ctx context.Context, in *ecsapi.StopTaskRequest) (*ecsapi.StopTaskResponse, error) {
	c := s.call(ctx)
	if len(in.Reason) > 255 {
		return nil, invalidParameter("reason can be at most 255 characters.")
	}
	out, err := s.StopRef(ctx, c, in.Cluster, in.Task, nil, ecsapi.TaskStopCodeUserInitiated, orDefault(in.Reason, "Task stopped by user"))
	if err != nil {
		return nil, err
	}
	return &ecsapi.StopTaskResponse{Task: &out}, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// DescribeTasks describes tasks, reporting unknown ones as failures.
func (s *Service) DescribeTasks(ctx context.Context, in *ecsapi.DescribeTasksRequest) (*ecsapi.DescribeTasksResponse, error) {
	c := s.call(ctx)
	if len(in.Tasks) == 0 {
		return nil, invalidParameter("Tasks cannot be empty.")
	}
	if len(in.Tasks) > 100 {
		return nil, invalidParameter("At most 100 tasks can be described at once.")
	}
	cluster, err := s.ExistingCluster(s.reader(ctx), c, in.Cluster, false)
	if err != nil {
		return nil, err
	}
	out := &ecsapi.DescribeTasksResponse{Tasks: []ecsapi.Task{}, Failures: []ecsapi.Failure{}}
	keys := make([]string, len(in.Tasks))
	for i, ref := range in.Tasks {
		if id, ok := s.ScopedID(c, "task", cluster, ref); ok {
			keys[i] = c.Keys().Task(cluster, id)
		}
	}
	values, err := s.Store.GetMany(ctx, keys)
	if err != nil {
		return nil, err
	}
	for i, ref := range in.Tasks {
		if keys[i] == "" || values[i] == nil {
			out.Failures = append(out.Failures, failureOf(ref, "MISSING", ""))
			continue
		}
		var t taskRecord
		if err := json.Unmarshal(values[i], &t); err != nil {
			return nil, fmt.Errorf("decode task %s: %w", ref, err)
		}
		if !contains(in.Include, ecsapi.TaskFieldTags) {
			t.Tags = nil
		}
		out.Tasks = append(out.Tasks, t.Wire())
	}
	return out, nil
}

// ListTasks lists task ARNs of a cluster by the given filters.
func (s *Service) ListTasks(ctx context.Context, in *ecsapi.ListTasksRequest) (*ecsapi.ListTasksResponse, error) {
	c := s.call(ctx)
	limit, err := pageSize(in.MaxResults, 100, 100)
	if err != nil {
		return nil, err
	}
	cluster, err := s.ExistingCluster(s.reader(ctx), c, in.Cluster, true)
	if err != nil {
		return nil, err
	}
	instance := ""
	if in.ContainerInstance != "" {
		id, ok := s.ScopedID(c, "container-instance", cluster, in.ContainerInstance)
		if !ok {
			return nil, invalidParameter("Container instance %q is not an instance of cluster %q.", in.ContainerInstance, cluster)
		}
		instance = s.ARN(c, "container-instance/"+cluster+"/"+id)
	}
	desired := string(in.DesiredStatus)
	if desired == "" {
		desired = "RUNNING"
	}
	scope := fmt.Sprintf("ListTasks/%s/%s/%s/%s/%s/%s/%s/%s", c.Region, cluster, instance, in.Family, in.ServiceName, in.StartedBy, desired, in.LaunchType)
	after, err := s.start(scope, in.NextToken)
	if err != nil {
		return nil, err
	}
	arns, last, more, err := store.Scan(ctx, s.Store, c.Keys().Tasks(cluster), after, limit, func(kv store.KV) (string, bool, error) {
		var t taskRecord
		if err := kv.Decode(&t); err != nil {
			return "", false, err
		}
		ok := t.DesiredStatus == desired &&
			(instance == "" || t.ContainerInstanceArn == instance) &&
			(in.Family == "" || state.FamilyOf(t.TaskDefinitionArn) == in.Family) &&
			(in.ServiceName == "" || t.Service == in.ServiceName) &&
			(in.StartedBy == "" || t.StartedBy == in.StartedBy) &&
			(in.LaunchType == "" || t.LaunchType == in.LaunchType)
		return t.TaskArn, ok, nil
	})
	if err != nil {
		return nil, err
	}
	if arns == nil {
		arns = []string{}
	}
	return &ecsapi.ListTasksResponse{TaskArns: arns, NextToken: s.tokens.Next(scope, last, more)}, nil
}

// SubmitTaskStateChange records an agent's report on a task.
func (s *Service) SubmitTaskStateChange(ctx context.Context, in *ecsapi.SubmitTaskStateChangeRequest) (*ecsapi.SubmitTaskStateChangeResponse, error) {
	c := s.call(ctx)
	if in.Status != "" && ecsapi.TaskStage(in.Status) < 0 {
		return nil, invalidParameter("Unknown task status %q.", in.Status)
	}
	err := s.UpdateTask(ctx, c, in.Cluster, in.Task, func(tx *store.Tx, t *taskRecord) error {
		for _, cs := range in.Containers {
			if err := applyContainerChange(t, cs.ContainerName, cs.RuntimeId, cs.Status, cs.Reason, cs.ExitCode, cs.NetworkBindings, cs.ImageDigest); err != nil {
				return err
			}
		}
		for _, a := range in.Attachments {
			applyAttachment(t, a)
		}
		if in.PullStartedAt != nil {
			t.PullStartedAt = in.PullStartedAt
		}
		if in.PullStoppedAt != nil {
			t.PullStoppedAt = in.PullStoppedAt
		}
		if in.ExecutionStoppedAt != nil {
			t.ExecutionStoppedAt = in.ExecutionStoppedAt
		}
		if in.Status == "STOPPED" && t.StopCode == "" {
			// Nobody asked for the stop: the task failed or finished.
			t.StopCode = ecsapi.TaskStopCodeEssentialContainerExited
			if t.StartedAt == nil {
				t.StopCode = ecsapi.TaskStopCodeTaskFailedToStart
			}
			t.StoppedReason = orDefault(in.Reason, "Essential container in task exited")
		}
		if in.Status != "" {
			return s.Transition(tx, c, t, in.Status)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ecsapi.SubmitTaskStateChangeResponse{Acknowledgment: "ACK"}, nil
}

// SubmitContainerStateChange records an agent's report on one container.
func (s *Service) SubmitContainerStateChange(ctx context.Context, in *ecsapi.SubmitContainerStateChangeRequest) (*ecsapi.SubmitContainerStateChangeResponse, error) {
	c := s.call(ctx)
	err := s.UpdateTask(ctx, c, in.Cluster, in.Task, func(tx *store.Tx, t *taskRecord) error {
		return applyContainerChange(t, in.ContainerName, in.RuntimeId, in.Status, in.Reason, in.ExitCode, in.NetworkBindings, "")
	})
	if err != nil {
		return nil, err
	}
	return &ecsapi.SubmitContainerStateChangeResponse{Acknowledgment: "ACK"}, nil
}

// SubmitAttachmentStateChanges records an agent's report on attachments.
func (s *Service) SubmitAttachmentStateChanges(ctx context.Context, in *ecsapi.SubmitAttachmentStateChangesRequest) (*ecsapi.SubmitAttachmentStateChangesResponse, error) {
	c := s.call(ctx)
	err := s.Store.Update(ctx, func(tx *store.Tx) error {
		cl, err := s.ActiveCluster(tx, c, in.Cluster)
		if err != nil {
			return err
		}
		kvs, err := tx.List(c.Keys().Tasks(cl.ClusterName))
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			var t taskRecord
			if err := kv.Decode(&t); err != nil {
				return err
			}
			changed := false
			for _, a := range in.Attachments {
				changed = applyAttachment(&t, a) || changed
			}
			if changed {
				t.Version++
				if err := tx.Put(s.TaskKey(c, &t), &t); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ecsapi.SubmitAttachmentStateChangesResponse{Acknowledgment: "ACK"}, nil
}

// applyAttachment records an attachment's reported status on t, if the
// attachment is t's.
func applyAttachment(t *taskRecord, a ecsapi.AttachmentStateChange) bool {
	for i := range t.Attachments {
		if t.Attachments[i].Id == a.AttachmentArn || strings.HasSuffix(a.AttachmentArn, "/"+t.Attachments[i].Id) {
			t.Attachments[i].Status = a.Status
			return true
		}
	}
	return false
}

func applyContainerChange(t *taskRecord, name, runtimeID, status, reason string, exitCode *int32, bindings []ecsapi.NetworkBinding, digest string) error {
	for i := range t.Containers {
		ct := &t.Containers[i]
		if ct.Name != name {
			continue
		}
		if runtimeID != "" {
			ct.RuntimeId = runtimeID
		}
		if status != "" && containerStage(status) > containerStage(ct.LastStatus) {
			ct.LastStatus = status
		}
		if reason != "" {
			ct.Reason = reason
		}
		if exitCode != nil {
			ct.ExitCode = exitCode
		}
		if bindings != nil {
			ct.NetworkBindings = state.Each(bindings, state.NetworkBindingFromWire)
		}
		if digest != "" {
			ct.ImageDigest = digest
		}
		return nil
	}
	return invalidParameter("Task %s has no container named %q.", t.TaskArn, name)
}

func containerStage(status string) int {
	switch status {
	case "PENDING":
		return 0
	case "RUNNING":
		return 1
	case "STOPPED":
		return 2
	}
	return -1
}

// DiscoverPollEndpoint tells an agent where to reach the control plane.
func (s *Service) DiscoverPollEndpoint(ctx context.Context, in *ecsapi.DiscoverPollEndpointRequest) (*ecsapi.DiscoverPollEndpointResponse, error) {
	endpoint := ""
	if r, ok := awsproto.RequestFrom(ctx); ok {
		endpoint = r.Endpoint
	}
	return &ecsapi.DiscoverPollEndpointResponse{Endpoint: endpoint, TelemetryEndpoint: endpoint, ServiceConnectEndpoint: endpoint}, nil
}
