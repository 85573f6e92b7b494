package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/wharfhq/wharf/internal/testenv"
)

// healthyAfter is the servers' --healthy-after in the service tests, so
// that deployments complete in seconds rather than ECS's 40.
const healthyAfter = 2 * time.Second

// serviceWait bounds a deployment, from UpdateService to steady state.
const serviceWait = 90 * time.Second

// serviceScript serves HTTP on 8080 in the background and keeps running until
// SIGTERM, on which it exits at once, so that replaced tasks stop without
// waiting for the agent's stop timeout.
func serviceScript(version string) string {
	return "echo " + version + " > /tmp/index.html && httpd -p 8080 -h /tmp && " + trapScript
}

// newServiceEnv starts a server with --healthy-after 2s and three agents,
// node-1, node-2 and node-3 in us-east-1a, b and c.
func newServiceEnv(t *testing.T, opts ...option) *env {
	t.Helper()
	e := newEnv(t, append([]option{withHealthyAfter(healthyAfter)}, opts...)...)
	e.addNode("node-2", testenv.Region+"b")
	e.addNode("node-3", testenv.Region+"c")
	return e
}

// nodeOf returns the environment's node with that instance ARN.
func (e *env) nodeOf(arn string) *node {
	for _, n := range e.nodes {
		if n.arn == arn {
			return n
		}
	}
	return nil
}

func (e *env) nodeName(arn string) string {
	if n := e.nodeOf(arn); n != nil {
		return n.name
	}
	return arn
}

func (e *env) createService(in *ecs.CreateServiceInput) types.Service {
	e.t.Helper()
	in.Cluster = aws.String(e.cluster)
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	out, err := e.ecs.CreateService(ctx, in)
	if err != nil {
		e.t.Fatalf("create service %s: %v", aws.ToString(in.ServiceName), err)
	}
	return *out.Service
}

func (e *env) updateService(in *ecs.UpdateServiceInput) types.Service {
	e.t.Helper()
	in.Cluster = aws.String(e.cluster)
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	out, err := e.ecs.UpdateService(ctx, in)
	if err != nil {
		e.t.Fatalf("update service %s: %v", aws.ToString(in.Service), err)
	}
	return *out.Service
}

func (e *env) service(name string) types.Service {
	e.t.Helper()
	svc, err := e.describeService(context.Background(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	return svc
}

func (e *env) describeService(ctx context.Context, name string) (types.Service, error) {
	ctx, cancel := context.WithTimeout(ctx, callWait)
	defer cancel()
	out, err := e.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(e.cluster), Services: []string{name}})
	if err != nil {
		return types.Service{}, fmt.Errorf("describe service %s: %w", name, err)
	}
	if len(out.Services) != 1 {
		return types.Service{}, fmt.Errorf("describe service %s: failures %s", name, jsonOf(out.Failures))
	}
	return out.Services[0], nil
}

// serviceTasks lists and describes the service's tasks whose desiredStatus
// is one of desired, sorted by ARN.
func (e *env) serviceTasks(name string, desired ...types.DesiredStatus) []types.Task {
	e.t.Helper()
	tasks, err := e.listServiceTasks(context.Background(), name, desired...)
	if err != nil {
		e.t.Fatal(err)
	}
	return tasks
}

func (e *env) listServiceTasks(ctx context.Context, name string, desired ...types.DesiredStatus) ([]types.Task, error) {
	ctx, cancel := context.WithTimeout(ctx, callWait)
	defer cancel()
	seen := map[string]bool{}
	var arns []string
	for _, d := range desired {
		p := ecs.NewListTasksPaginator(e.ecs, &ecs.ListTasksInput{Cluster: aws.String(e.cluster), ServiceName: aws.String(name), DesiredStatus: d})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("list the tasks of service %s (%s): %w", name, d, err)
			}
			for _, arn := range page.TaskArns {
				if !seen[arn] {
					seen[arn] = true
					arns = append(arns, arn)
				}
			}
		}
	}
	var tasks []types.Task
	for chunk := range slices.Chunk(arns, 100) {
		out, err := e.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(e.cluster), Tasks: chunk})
		if err != nil {
			return nil, fmt.Errorf("describe the tasks of service %s: %w", name, err)
		}
		if len(out.Failures) > 0 {
			return nil, fmt.Errorf("describe the tasks of service %s: failures %s", name, jsonOf(out.Failures))
		}
		tasks = append(tasks, out.Tasks...)
	}
	sort.Slice(tasks, func(i, j int) bool { return aws.ToString(tasks[i].TaskArn) < aws.ToString(tasks[j].TaskArn) })
	return tasks, nil
}

// waitStable waits until the service has one deployment, COMPLETED, of
// task definition td, and its desired count of tasks RUNNING on td, and
// returns the service and those tasks.
func (e *env) waitStable(name, td string) (types.Service, []types.Task) {
	e.t.Helper()
	var svc types.Service
	var tasks []types.Task
	waitFor(e.t, "service "+name+" to be stable on "+td, serviceWait, func() (bool, string) {
		svc = e.service(name)
		if len(svc.Deployments) != 1 {
			return false, deployments(svc)
		}
		d := svc.Deployments[0]
		if aws.ToString(d.TaskDefinition) != td || d.RolloutState != types.DeploymentRolloutStateCompleted ||
			svc.RunningCount != svc.DesiredCount || svc.PendingCount != 0 {
			return false, deployments(svc)
		}
		tasks = e.serviceTasks(name, types.DesiredStatusRunning)
		if len(tasks) != int(svc.DesiredCount) {
			return false, fmt.Sprintf("%d tasks with desiredStatus RUNNING, want %d", len(tasks), svc.DesiredCount)
		}
		for _, task := range tasks {
			if aws.ToString(task.LastStatus) != "RUNNING" || aws.ToString(task.TaskDefinitionArn) != td {
				return false, fmt.Sprintf("task %s of %s: %s", taskID(aws.ToString(task.TaskArn)), aws.ToString(task.TaskDefinitionArn), summary(task))
			}
		}
		return true, ""
	})
	return svc, tasks
}

// deployments renders a service's deployments for a failed wait.
func deployments(svc types.Service) string {
	var b strings.Builder
	fmt.Fprintf(&b, "desired=%d running=%d pending=%d deployments:", svc.DesiredCount, svc.RunningCount, svc.PendingCount)
	for _, d := range svc.Deployments {
		fmt.Fprintf(&b, " [%s %s %s %s running=%d pending=%d failed=%d]", aws.ToString(d.Id), aws.ToString(d.Status),
			aws.ToString(d.TaskDefinition), d.RolloutState, d.RunningCount, d.PendingCount, d.FailedTasks)
	}
	if len(svc.Events) > 0 {
		fmt.Fprintf(&b, " latest event: %q", aws.ToString(svc.Events[0].Message))
	}
	return b.String()
}

// events returns the service's event messages, oldest first.
func events(svc types.Service) []string {
	var out []string
	for i := len(svc.Events) - 1; i >= 0; i-- {
		out = append(out, aws.ToString(svc.Events[i].Message))
	}
	return out
}

func countEvents(svc types.Service, substr string) int {
	n := 0
	for _, m := range events(svc) {
		if strings.Contains(m, substr) {
			n++
		}
	}
	return n
}

// servicesStable runs `aws ecs wait services-stable` and returns how long
// it took.
func (e *env) servicesStable(names ...string) time.Duration {
	e.t.Helper()
	start := time.Now()
	e.aws(serviceWait, append([]string{"ecs", "wait", "services-stable", "--cluster", e.cluster, "--services"}, names...)...)
	return time.Since(start)
}

// placement counts tasks by instance (node name) and availability zone.
func (e *env) placement(tasks []types.Task) (byNode, byZone map[string]int) {
	byNode, byZone = map[string]int{}, map[string]int{}
	for _, task := range tasks {
		byNode[e.nodeName(aws.ToString(task.ContainerInstanceArn))]++
		byZone[aws.ToString(task.AvailabilityZone)]++
	}
	return byNode, byZone
}

// sampler watches a service while it changes: every 100 ms its
// runningCount (DescribeServices), its tasks (ListTasks of both desired
// statuses and DescribeTasks) and the remaining resources of the
// environment's instances.
type sampler struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	stats sampleStats
}

type sampleStats struct {
	samples int
	// minServiceRunning is the least runningCount DescribeServices gave.
	minServiceRunning int32
	// minRunning is the least number of tasks RUNNING with desiredStatus
	// RUNNING; maxLive the most tasks not yet STOPPED.
	minRunning, maxLive int
	// minAt and maxAt say what was seen when the extremes were.
	minAt, maxAt string
	// rollouts are the rollout states each deployment was seen in, in
	// order.
	rollouts map[string][]types.DeploymentRolloutState
	// minRemaining is the least remaining CPU and MEMORY of each instance
	// (by node name), and negative what was seen when one went below 0.
	minRemaining map[string]map[string]int32
	negative     []string
	errs         []error
}

// sample starts sampling the service until stop is called or limit passes.
func (e *env) sample(name string, limit time.Duration) *sampler {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	s := &sampler{cancel: cancel, done: make(chan struct{}), stats: sampleStats{
		minServiceRunning: 1 << 30, minRunning: 1 << 30,
		rollouts:     map[string][]types.DeploymentRolloutState{},
		minRemaining: map[string]map[string]int32{},
	}}
	names := map[string]string{} // instance ARN → node name
	var arns []string
	for _, n := range e.nodes {
		names[n.arn] = n.name
		arns = append(arns, n.arn)
	}
	begin := time.Now()
	go func() {
		defer close(s.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			svc, err := e.describeService(ctx, name)
			var tasks []types.Task
			if err == nil {
				tasks, err = e.listServiceTasks(ctx, name, types.DesiredStatusRunning, types.DesiredStatusStopped)
			}
			var instances *ecs.DescribeContainerInstancesOutput
			if err == nil {
				cctx, ccancel := context.WithTimeout(ctx, callWait)
				instances, err = e.ecs.DescribeContainerInstances(cctx, &ecs.DescribeContainerInstancesInput{Cluster: aws.String(e.cluster), ContainerInstances: arns})
				ccancel()
			}
			if ctx.Err() != nil {
				return
			}
			s.mu.Lock()
			if err != nil {
				s.stats.errs = append(s.stats.errs, err)
			} else {
				at := time.Since(begin)
				s.record(at, svc, tasks)
				s.recordInstances(at, names, instances.ContainerInstances)
			}
			s.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

func (s *sampler) record(at time.Duration, svc types.Service, tasks []types.Task) {
	running, live := 0, 0
	var states []string
	for _, task := range tasks {
		last, desired := aws.ToString(task.LastStatus), aws.ToString(task.DesiredStatus)
		if last == "STOPPED" {
			continue
		}
		live++
		if last == "RUNNING" && desired == "RUNNING" {
			running++
		}
		states = append(states, fmt.Sprintf("%s %s/%s %s", taskID(aws.ToString(task.TaskArn))[:8], last, desired, revision(aws.ToString(task.TaskDefinitionArn))))
	}
	st := &s.stats
	st.samples++
	for _, d := range svc.Deployments {
		id, seen := aws.ToString(d.Id), st.rollouts[aws.ToString(d.Id)]
		if len(seen) == 0 || seen[len(seen)-1] != d.RolloutState {
			st.rollouts[id] = append(seen, d.RolloutState)
		}
	}
	what := fmt.Sprintf("at +%v: runningCount=%d, %d live tasks: %s", at.Round(time.Millisecond), svc.RunningCount, live, strings.Join(states, ", "))
	if svc.RunningCount < st.minServiceRunning {
		st.minServiceRunning = svc.RunningCount
	}
	if running < st.minRunning || (running == st.minRunning && st.minAt == "") {
		st.minRunning, st.minAt = running, what
	}
	if live > st.maxLive {
		st.maxLive, st.maxAt = live, what
	}
}

func (s *sampler) recordInstances(at time.Duration, names map[string]string, cis []types.ContainerInstance) {
	st := &s.stats
	for _, ci := range cis {
		name := names[aws.ToString(ci.ContainerInstanceArn)]
		if st.minRemaining[name] == nil {
			st.minRemaining[name] = map[string]int32{}
		}
		rem := resources(ci.RemainingResources)
		for _, r := range []string{"CPU", "MEMORY"} {
			v, ok := rem[r]
			if !ok {
				st.errs = append(st.errs, fmt.Errorf("%s reports no remaining %s: %s", name, r, jsonOf(ci.RemainingResources)))
				continue
			}
			if m, ok := st.minRemaining[name][r]; !ok || v < m {
				st.minRemaining[name][r] = v
			}
			if v < 0 {
				st.negative = append(st.negative, fmt.Sprintf("at +%v %s had %d %s left", at.Round(time.Millisecond), name, v, r))
			}
		}
	}
}

// stop ends the sampling and returns what was seen.
func (s *sampler) stop() sampleStats {
	s.cancel()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// check fails the test unless the samples stayed within [min, max] tasks
// and no instance's remaining resources went negative.
func (st sampleStats) check(t *testing.T, what string, min, max int) {
	t.Helper()
	t.Logf("%s: %d samples, running tasks ≥ %d (runningCount ≥ %d), live tasks ≤ %d; least remaining %v", what, st.samples, st.minRunning, st.minServiceRunning, st.maxLive, st.minRemaining)
	if len(st.errs) > 0 {
		t.Errorf("%s: %d of the samples failed, first: %v", what, len(st.errs), st.errs[0])
	}
	if st.samples < 5 {
		t.Errorf("%s: only %d samples", what, st.samples)
	}
	if st.minRunning < min || int(st.minServiceRunning) < min {
		t.Errorf("%s: the service dropped to %d RUNNING tasks (runningCount %d), below %d; %s", what, st.minRunning, st.minServiceRunning, min, st.minAt)
	}
	if st.maxLive > max {
		t.Errorf("%s: the service had %d tasks not STOPPED, above %d; %s", what, st.maxLive, max, st.maxAt)
	}
	if len(st.negative) > 0 {
		t.Errorf("%s: remaining resources went negative: %s", what, strings.Join(st.negative, "; "))
	}
}

// revision returns the family:revision of a task definition ARN.
func revision(arn string) string { return arn[strings.LastIndex(arn, "/")+1:] }

// TestServiceSpread: a service of six tasks with the default strategy
// spreads 2-2-2 over three zones, one node each; the CLI's services-stable
// waiter returns once they run, and the first deployment completes with
// "has reached a steady state".
func TestServiceSpread(t *testing.T) {
	e := newServiceEnv(t)
	td := e.register("spread", types.NetworkModeBridge, e.ctr("web", serviceScript("v1")))
	created := time.Now()
	e.createService(&ecs.CreateServiceInput{ServiceName: aws.String("spread"), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(6)})

	took := e.servicesStable("spread")
	t.Logf("aws ecs wait services-stable returned %v after CreateService", took.Round(time.Millisecond))
	svc := e.service("spread")
	if len(svc.Deployments) != 1 || svc.RunningCount != 6 {
		t.Fatalf("after services-stable: %s", deployments(svc))
	}
	svc, tasks := e.waitStable("spread", td)
	t.Logf("the first deployment completed %v after CreateService", time.Since(created).Round(time.Millisecond))
	if n := countEvents(svc, "has reached a steady state"); n != 1 {
		t.Errorf("%d \"has reached a steady state\" events, want 1: %q", n, events(svc))
	}
	if n := countEvents(svc, "deployment completed"); n != 1 {
		t.Errorf("%d \"deployment completed\" events, want 1: %q", n, events(svc))
	}

	byNode, byZone := e.placement(tasks)
	if want := map[string]int{"us-east-1a": 2, "us-east-1b": 2, "us-east-1c": 2}; !maps.Equal(byZone, want) {
		t.Errorf("tasks by zone %v, want %v", byZone, want)
	}
	if want := map[string]int{"node-1": 2, "node-2": 2, "node-3": 2}; !maps.Equal(byNode, want) {
		t.Errorf("tasks by node %v, want %v", byNode, want)
	}
	// Each task is a container of its node on the engine, running.
	for _, task := range tasks {
		arn := aws.ToString(task.TaskArn)
		cs := e.containersOf(arn)
		if len(cs) != 1 || cs[0].State != "running" || cs[0].Labels[labelInstance] != aws.ToString(task.ContainerInstanceArn) {
			t.Errorf("task %s on %s: containers %s", taskID(arn), e.nodeName(aws.ToString(task.ContainerInstanceArn)), jsonOf(cs))
		}
	}
	for _, n := range e.nodes {
		if ci := e.instance(n.arn); ci.RunningTasksCount != 2 || ci.PendingTasksCount != 0 {
			t.Errorf("%s: runningTasksCount %d pendingTasksCount %d, want 2 and 0", n.name, ci.RunningTasksCount, ci.PendingTasksCount)
		}
	}
}

// TestServiceBinpack: with binpack(memory), a service's three small tasks
// all go to the instance with the least memory left, here node-2, where a
// standalone task already holds some.
func TestServiceBinpack(t *testing.T) {
	e := newServiceEnv(t)
	ballast := e.ctr("ballast", trapScript)
	ballast.MemoryReservation = aws.Int32(64)
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	started, err := e.ecs.StartTask(ctx, &ecs.StartTaskInput{
		Cluster:            aws.String(e.cluster),
		TaskDefinition:     aws.String(e.register("ballast", types.NetworkModeBridge, ballast)),
		ContainerInstances: []string{e.nodes[1].arn},
	})
	if err != nil || len(started.Tasks) != 1 {
		t.Fatalf("start the ballast task on node-2: %v %s", err, jsonOf(started))
	}
	e.waitRunning(aws.ToString(started.Tasks[0].TaskArn))
	least, remaining := "", map[string]int32{}
	for _, n := range e.nodes {
		for _, r := range e.instance(n.arn).RemainingResources {
			if aws.ToString(r.Name) == "MEMORY" {
				remaining[n.name] = r.IntegerValue
				if least == "" || r.IntegerValue < remaining[least] {
					least = n.name
				}
			}
		}
	}
	t.Logf("remaining memory before the service: %v", remaining)
	if least != "node-2" {
		t.Fatalf("node-2 does not have the least memory left after the ballast task: %v", remaining)
	}

	td := e.register("binpack", types.NetworkModeBridge, e.ctr("web", serviceScript("v1")))
	e.createService(&ecs.CreateServiceInput{
		ServiceName:       aws.String("binpack"),
		TaskDefinition:    aws.String(td),
		DesiredCount:      aws.Int32(3),
		PlacementStrategy: []types.PlacementStrategy{{Type: types.PlacementStrategyTypeBinpack, Field: aws.String("memory")}},
	})
	_, tasks := e.waitStable("binpack", td)
	if byNode, _ := e.placement(tasks); !maps.Equal(byNode, map[string]int{"node-2": 3}) {
		t.Errorf("binpack(memory) placed the tasks %v, want all 3 on node-2", byNode)
	}
}

// TestServiceRollingUpdate rolls six tasks from revision 1 to 2 with
// minimumHealthyPercent 100 and maximumPercent 200: sampled every 100 ms,
// the service never has fewer than 6 RUNNING tasks nor more than 12 live
// ones; the CLI's services-stable waiter, started at once, returns when it
// is over, with six revision-2 tasks, spread 2-2-2.
func TestServiceRollingUpdate(t *testing.T) {
	e := newServiceEnv(t)
	v1 := e.register("rolling", types.NetworkModeBridge, e.ctr("web", serviceScript("v1")))
	v2 := e.register("rolling", types.NetworkModeBridge, e.ctr("web", serviceScript("v2")))
	e.createService(&ecs.CreateServiceInput{
		ServiceName:    aws.String("rolling"),
		TaskDefinition: aws.String(v1),
		DesiredCount:   aws.Int32(6),
		DeploymentConfiguration: &types.DeploymentConfiguration{
			MinimumHealthyPercent: aws.Int32(100), MaximumPercent: aws.Int32(200),
		},
	})
	_, before := e.waitStable("rolling", v1)

	s := e.sample("rolling", serviceWait)
	began := time.Now()
	up := e.updateService(&ecs.UpdateServiceInput{Service: aws.String("rolling"), TaskDefinition: aws.String(v2)})
	if len(up.Deployments) != 2 || aws.ToString(up.Deployments[0].TaskDefinition) != v2 {
		t.Fatalf("UpdateService to revision 2 answered: %s", deployments(up))
	}
	// The CLI's waiter returns once the old deployment is gone, which
	// completes the new one.
	took := e.servicesStable("rolling")
	t.Logf("aws ecs wait services-stable returned %v after UpdateService", took.Round(time.Millisecond))
	if svc := e.service("rolling"); len(svc.Deployments) != 1 || aws.ToString(svc.Deployments[0].TaskDefinition) != v2 ||
		svc.Deployments[0].RolloutState != types.DeploymentRolloutStateCompleted || svc.RunningCount != 6 {
		t.Errorf("when services-stable returned: %s", deployments(svc))
	}
	svc, after := e.waitStable("rolling", v2)
	st := s.stop()
	t.Logf("the rolling update completed %v after UpdateService", time.Since(began).Round(time.Millisecond))
	st.check(t, "during the update", 6, 12)
	if seen := st.rollouts[aws.ToString(up.Deployments[0].Id)]; slices.Contains(seen, types.DeploymentRolloutStateFailed) {
		t.Errorf("revision 2's deployment went through rollout states %v", seen)
	}
	if st.maxLive <= 6 {
		t.Errorf("the sampler never saw more than %d live tasks: the update did not surge or was not sampled", st.maxLive)
	}

	old := map[string]bool{}
	for _, task := range before {
		old[aws.ToString(task.TaskArn)] = true
	}
	for _, task := range after {
		if old[aws.ToString(task.TaskArn)] {
			t.Errorf("task %s of revision 1 still runs", taskID(aws.ToString(task.TaskArn)))
		}
	}
	for _, arn := range slices.Sorted(maps.Keys(old)) {
		if task := e.describe(arn); aws.ToString(task.LastStatus) != "STOPPED" || task.StopCode != types.TaskStopCodeServiceSchedulerInitiated {
			t.Errorf("old task %s: %s; want STOPPED by the service scheduler", taskID(arn), summary(task))
		}
	}
	if byNode, _ := e.placement(after); !maps.Equal(byNode, map[string]int{"node-1": 2, "node-2": 2, "node-3": 2}) {
		t.Errorf("revision 2's tasks by node %v, want 2 on each", byNode)
	}
	if n := countEvents(svc, "deployment completed"); n != 2 {
		t.Errorf("%d \"deployment completed\" events after two deployments: %q", n, events(svc))
	}
}

// TestServiceCircuitBreaker is the failed deployment of a service of six
// at 100%/200%: its deployment has completed, and it moves to a revision
// whose container exits at once, with the circuit breaker and rollback.
// The deployment FAILS after 3 failed tasks, the completed deployment is
// PRIMARY again, and the service ends stable there; its RUNNING tasks
// never drop below 6, and the six that ran before still run.
func TestServiceCircuitBreaker(t *testing.T) {
	e := newServiceEnv(t)
	good := e.register("breaker", types.NetworkModeBridge, e.ctr("web", serviceScript("v1")))
	bad := e.register("breaker", types.NetworkModeBridge, e.ctr("web", "exit 1"))
	created := e.createService(&ecs.CreateServiceInput{
		ServiceName:    aws.String("breaker"),
		TaskDefinition: aws.String(good),
		DesiredCount:   aws.Int32(6),
	})
	first := aws.ToString(created.Deployments[0].Id)
	_, before := e.waitStable("breaker", good)

	s := e.sample("breaker", serviceWait)
	began := time.Now()
	up := e.updateService(&ecs.UpdateServiceInput{Service: aws.String("breaker"), TaskDefinition: aws.String(bad),
		DeploymentConfiguration: &types.DeploymentConfiguration{
			DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true, Rollback: true},
			MaximumPercent:           aws.Int32(200), MinimumHealthyPercent: aws.Int32(100),
		}})
	failing := aws.ToString(up.Deployments[0].Id)
	var svc types.Service
	waitFor(t, "the circuit breaker to fail deployment "+failing+" and roll back", serviceWait, func() (bool, string) {
		svc = e.service("breaker")
		return countEvents(svc, "(deployment "+failing+") rolling back to deployment "+first) > 0, deployments(svc)
	})
	t.Logf("the circuit breaker rolled back %v after UpdateService", time.Since(began).Round(time.Millisecond))
	if countEvents(svc, "(deployment "+failing+") deployment failed") != 1 {
		t.Errorf("no event of deployment %s failing: %q", failing, events(svc))
	}
	if d := svc.Deployments[0]; aws.ToString(d.Id) != first || aws.ToString(d.Status) != "PRIMARY" ||
		aws.ToString(d.RolloutStateReason) != "ECS deployment circuit breaker: rolling back to deploymentId "+first+"." {
		t.Errorf("after the rollback: %s; want %s PRIMARY again, rolling back", deployments(svc), first)
	}
	svc, tasks := e.waitStable("breaker", good)
	st := s.stop()
	t.Logf("stable on revision 1 again %v after UpdateService", time.Since(began).Round(time.Millisecond))
	st.check(t, "during the failed deployment and the rollback", 6, 12)
	// The FAILED deployment is dropped once its last task has stopped,
	// maybe before a sample saw it; it never completes.
	t.Logf("deployment %s was seen in rollout states %v", failing, st.rollouts[failing])
	if slices.Contains(st.rollouts[failing], types.DeploymentRolloutStateCompleted) {
		t.Errorf("the failing deployment %s went through rollout states %v", failing, st.rollouts[failing])
	}
	if aws.ToString(svc.TaskDefinition) != good {
		t.Errorf("the service's task definition is %s after the rollback, want %s", aws.ToString(svc.TaskDefinition), good)
	}
	if id := aws.ToString(svc.Deployments[0].Id); id != first {
		t.Errorf("the service ends on deployment %s, want %s again", id, first)
	}
	if arns := taskArns(tasks); !slices.Equal(arns, taskArns(before)) {
		t.Errorf("after the rollback the service runs %v, want the tasks it ran before, %v", arns, taskArns(before))
	}

	// At least the breaker's threshold of the failed deployment's tasks
	// stopped as their container exited; those still on their way when
	// the rollback began were stopped by the scheduler.
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	list, err := e.ecs.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(e.cluster), StartedBy: aws.String(failing), DesiredStatus: types.DesiredStatusStopped})
	if err != nil {
		t.Fatal(err)
	}
	exited := 0
	for _, arn := range list.TaskArns {
		task := e.describe(arn)
		c := taskContainer(t, task, "web")
		switch {
		case aws.ToString(task.LastStatus) != "STOPPED":
			t.Errorf("task %s of the failed deployment: %s; want STOPPED", taskID(arn), summary(task))
		case task.StopCode == types.TaskStopCodeEssentialContainerExited && c.ExitCode != nil && *c.ExitCode == 1:
			exited++
		case task.StopCode == types.TaskStopCodeServiceSchedulerInitiated:
		default:
			t.Errorf("task %s of the failed deployment: %s; want EssentialContainerExited with exit code 1, or stopped by the scheduler", taskID(arn), summary(task))
		}
	}
	t.Logf("the failed deployment started %d tasks; %d exited before the rollback", len(list.TaskArns), exited)
	if exited < 3 {
		t.Errorf("%d tasks of deployment %s stopped with EssentialContainerExited, want at least the breaker's threshold 3", exited, failing)
	}
	took := e.servicesStable("breaker")
	t.Logf("aws ecs wait services-stable returned after %v", took.Round(time.Millisecond))
}

// TestServiceReplacesKilledTask: a task whose container is killed behind
// Wharf's back (docker kill) stops with EssentialContainerExited and is
// replaced; the service reaches a steady state again.
func TestServiceReplacesKilledTask(t *testing.T) {
	e := newServiceEnv(t)
	td := e.register("killed", types.NetworkModeBridge, e.ctr("web", serviceScript("v1")))
	e.createService(&ecs.CreateServiceInput{ServiceName: aws.String("killed"), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(3)})
	svc, before := e.waitStable("killed", td)
	steady := countEvents(svc, "has reached a steady state")

	victim := before[1]
	arn := aws.ToString(victim.TaskArn)
	id := aws.ToString(taskContainer(t, victim, "web").RuntimeId)
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	killed := time.Now()
	if err := e.docker.ContainerKill(ctx, id, "KILL"); err != nil {
		t.Fatalf("docker kill %s: %v", id, err)
	}
	task := e.waitStopped(arn)
	if c := taskContainer(t, task, "web"); task.StopCode != types.TaskStopCodeEssentialContainerExited || aws.ToInt32(c.ExitCode) != 137 {
		t.Errorf("the killed task: %s; want EssentialContainerExited with exit code 137", summary(task))
	}
	svc, after := e.waitStable("killed", td)
	t.Logf("stable again %v after docker kill", time.Since(killed).Round(time.Millisecond))
	var replacement []string
	for _, task := range after {
		a := aws.ToString(task.TaskArn)
		if a == arn {
			t.Errorf("the killed task %s counts among the running ones", taskID(arn))
		}
		if !slices.ContainsFunc(before, func(b types.Task) bool { return aws.ToString(b.TaskArn) == a }) {
			replacement = append(replacement, a)
		}
	}
	if len(replacement) != 1 {
		t.Fatalf("%d new tasks after one was killed, want 1", len(replacement))
	}
	if got := countEvents(svc, "has started 1 tasks: (task "+taskID(replacement[0])+")"); got != 1 {
		t.Errorf("no event of the replacement %s starting: %q", taskID(replacement[0]), events(svc))
	}
	// The replacement counts as healthy --healthy-after after it runs;
	// then the service is at steady state again.
	waitFor(t, "a new \"has reached a steady state\" event", serviceWait, func() (bool, string) {
		svc = e.service("killed")
		return countEvents(svc, "has reached a steady state") == steady+1, fmt.Sprintf("events %q", events(svc))
	})
	t.Logf("at steady state again %v after docker kill", time.Since(killed).Round(time.Millisecond))
	e.servicesStable("killed")
}

// TestServiceDrainInstance sets node-2 DRAINING: its two tasks are
// replaced on the other nodes before they stop, so the service keeps six
// RUNNING tasks throughout, and none is left on node-2.
func TestServiceDrainInstance(t *testing.T) {
	e := newServiceEnv(t)
	td := e.register("drain", types.NetworkModeBridge, e.ctr("web", serviceScript("v1")))
	e.createService(&ecs.CreateServiceInput{ServiceName: aws.String("drain"), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(6)})
	_, before := e.waitStable("drain", td)
	drained := e.nodes[1]
	var moved []string
	for _, task := range before {
		if aws.ToString(task.ContainerInstanceArn) == drained.arn {
			moved = append(moved, aws.ToString(task.TaskArn))
		}
	}
	if len(moved) != 2 {
		t.Fatalf("%s runs %d of the service's tasks before draining, want 2", drained.name, len(moved))
	}

	s := e.sample("drain", serviceWait)
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	out, err := e.ecs.UpdateContainerInstancesState(ctx, &ecs.UpdateContainerInstancesStateInput{
		Cluster: aws.String(e.cluster), ContainerInstances: []string{drained.arn}, Status: types.ContainerInstanceStatusDraining,
	})
	if err != nil || len(out.ContainerInstances) != 1 {
		t.Fatalf("drain %s: %v %s", drained.name, err, jsonOf(out))
	}
	waitFor(t, "the tasks on "+drained.name+" to stop", serviceWait, func() (bool, string) {
		var left []string
		for _, arn := range moved {
			if task := e.describe(arn); aws.ToString(task.LastStatus) != "STOPPED" {
				left = append(left, taskID(arn)+": "+summary(task))
			}
		}
		return len(left) == 0, strings.Join(left, "; ")
	})
	_, after := e.waitStable("drain", td)
	st := s.stop()
	t.Logf("drained %v after UpdateContainerInstancesState", time.Since(began).Round(time.Millisecond))
	st.check(t, "while draining", 6, 12)

	if byNode, _ := e.placement(after); !maps.Equal(byNode, map[string]int{"node-1": 3, "node-3": 3}) {
		t.Errorf("tasks by node after draining node-2: %v, want 3 on node-1 and node-3", byNode)
	}
	for _, arn := range moved {
		if task := e.describe(arn); !strings.Contains(aws.ToString(task.StoppedReason), "draining") {
			t.Errorf("task %s on the drained instance stopped for %q", taskID(arn), aws.ToString(task.StoppedReason))
		}
	}
	ci := e.instance(drained.arn)
	if aws.ToString(ci.Status) != "DRAINING" || ci.RunningTasksCount != 0 || ci.PendingTasksCount != 0 {
		t.Errorf("%s after draining: status %s, %d running and %d pending tasks", drained.name, aws.ToString(ci.Status), ci.RunningTasksCount, ci.PendingTasksCount)
	}
	ctx, cancel = context.WithTimeout(context.Background(), callWait)
	defer cancel()
	running, err := e.docker.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", labelInstance+"="+drained.arn))})
	if err != nil {
		t.Fatal(err)
	}
	if len(running) != 0 {
		t.Errorf("%d containers still run on the drained %s: %s", len(running), drained.name, jsonOf(running))
	}
	e.servicesStable("drain")
}

// TestServiceReplacesLostInstanceTasks kills node-3's agent with SIGKILL
// (its containers keep running): once the instance has been disconnected
// for --agent-lost-after, its service tasks are stopped and replaced on
// the other nodes. The restarted agent then stops the old containers.
func TestServiceReplacesLostInstanceTasks(t *testing.T) {
	const grace, lostAfter = 2 * time.Second, 3 * time.Second
	e := newServiceEnv(t, withAgentGrace(grace), withAgentLostAfter(lostAfter))
	td := e.register("lost", types.NetworkModeBridge, e.ctr("web", serviceScript("v1")))
	e.createService(&ecs.CreateServiceInput{ServiceName: aws.String("lost"), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(6)})
	_, before := e.waitStable("lost", td)
	lost := e.nodes[2]
	var gone []string
	for _, task := range before {
		if aws.ToString(task.ContainerInstanceArn) == lost.arn {
			gone = append(gone, aws.ToString(task.TaskArn))
		}
	}
	if len(gone) != 2 {
		t.Fatalf("%s runs %d of the service's tasks, want 2", lost.name, len(gone))
	}

	killed := time.Now()
	lost.proc.kill(t)
	e.waitConnected(lost.arn, false)
	t.Logf("agentConnected=false %v after kill -9", time.Since(killed).Round(time.Millisecond))
	for _, arn := range gone {
		task := e.waitTask(arn, "to be stopped by the scheduler", func(t types.Task) bool { return aws.ToString(t.DesiredStatus) == "STOPPED" })
		if task.StopCode != types.TaskStopCodeServiceSchedulerInitiated || !strings.Contains(aws.ToString(task.StoppedReason), "lost contact") {
			t.Errorf("task %s of the lost instance: %s", taskID(arn), summary(task))
		}
		if task.StoppingAt == nil || task.StoppingAt.Sub(killed) < lostAfter {
			t.Fatalf("task %s was stopped at %v, less than --agent-lost-after %v after its agent was killed at %v", taskID(arn), task.StoppingAt, lostAfter, killed)
		}
		t.Logf("task %s stopped by the scheduler %v after kill -9", taskID(arn), task.StoppingAt.Sub(killed).Round(time.Millisecond))
	}
	svc, after := e.waitStable("lost", td)
	t.Logf("stable again %v after kill -9", time.Since(killed).Round(time.Millisecond))
	if byNode, _ := e.placement(after); byNode[lost.name] != 0 || len(after) != 6 {
		t.Errorf("tasks by node with %s lost: %v, want 6 on the others", lost.name, byNode)
	}
	if svc.RunningCount != 6 {
		t.Errorf("runningCount %d with %s lost, want 6", svc.RunningCount, lost.name)
	}

	// Back, the agent stops the containers of the tasks it lost.
	e.startNode(lost)
	for _, arn := range gone {
		task := e.waitStopped(arn)
		for _, c := range task.Containers {
			if id := aws.ToString(c.RuntimeId); id != "" && e.inspect(id).State.Running {
				t.Errorf("task %s is STOPPED, but its container %s runs", taskID(arn), id)
			}
		}
	}
	e.waitStable("lost", td)
	e.servicesStable("lost")
}
