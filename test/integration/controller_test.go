package integration

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/wharfhq/wharf/internal/agent"
	"github.com/wharfhq/wharf/internal/ecs/control"
	"github.com/wharfhq/wharf/internal/server"
	"github.com/wharfhq/wharf/internal/testenv"
)

// controllerEnv is a server whose scheduler counts tasks healthy one second
// after RUNNING, with hollow nodes in three zones.
func controllerEnv(t *testing.T, nodes int, adjust ...func(*server.Config)) (*env, []*testenv.HollowNode) {
	srv := testenv.StartServer(t, "", append([]testenv.Options{func(c *server.Config) {
		c.Controller = control.SchedulerConfig{HealthyAfter: time.Second, BackoffBase: 500 * time.Millisecond, BackoffCap: 2 * time.Second, Resync: 500 * time.Millisecond}
		c.AgentGrace = 3 * time.Second
	}}, toOptions(adjust)...)...)
	e := &env{srv: srv, ecs: srv.ECS()}
	e.cluster(t, "c")
	return e, testenv.StartHollowNodes(t, srv, "c", nodes)
}

func toOptions(fs []func(*server.Config)) []testenv.Options {
	out := make([]testenv.Options, len(fs))
	for i, f := range fs {
		out[i] = f
	}
	return out
}

func simTaskDef(t *testing.T, e *env, family string, command ...string) string {
	t.Helper()
	cd := types.ContainerDefinition{Name: aws.String("app"), Image: aws.String("app:1"), Memory: aws.Int32(64), Cpu: 64, Command: command}
	out := must(e.ecs.RegisterTaskDefinition(ctxT(t), &ecs.RegisterTaskDefinitionInput{Family: aws.String(family), ContainerDefinitions: []types.ContainerDefinition{cd}}))(t)
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
}

func serviceTasks(t *testing.T, e *env, service string) []types.Task {
	t.Helper()
	list := must(e.ecs.ListTasks(ctxT(t), &ecs.ListTasksInput{Cluster: aws.String("c"), ServiceName: aws.String(service)}))(t)
	if len(list.TaskArns) == 0 {
		return nil
	}
	return must(e.ecs.DescribeTasks(ctxT(t), &ecs.DescribeTasksInput{Cluster: aws.String("c"), Tasks: list.TaskArns}))(t).Tasks
}

func hasEvent(s types.Service, part string) bool {
	for _, ev := range s.Events {
		if strings.Contains(aws.ToString(ev.Message), part) {
			return true
		}
	}
	return false
}

func stable(s types.Service) bool {
	return len(s.Deployments) == 1 && s.RunningCount == s.DesiredCount && s.Deployments[0].RolloutState == types.DeploymentRolloutStateCompleted
}

func TestServiceSpreadsAndRollsOut(t *testing.T) {
	e, nodes := controllerEnv(t, 3)
	ctx := ctxT(t)
	simTaskDef(t, e, "web")
	must(e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("web"), TaskDefinition: aws.String("web"), DesiredCount: aws.Int32(6)}))(t)
	svc := waitService(t, e, "c", "web", "6 running tasks and a completed rollout", stable)
	if !hasEvent(svc, "has reached a steady state") || !hasEvent(svc, "has started") {
		t.Fatalf("events %+v", svc.Events)
	}
	perAZ := map[string]int{}
	for _, task := range serviceTasks(t, e, "web") {
		perAZ[aws.ToString(task.AvailabilityZone)]++
		if aws.ToString(task.Group) != "service:web" || !strings.HasPrefix(aws.ToString(task.StartedBy), "ecs-svc/") {
			t.Fatalf("service task group %s startedBy %s", aws.ToString(task.Group), aws.ToString(task.StartedBy))
		}
	}
	for _, n := range nodes {
		if perAZ[n.AZ] != 2 {
			t.Fatalf("tasks per zone %v, want 2-2-2", perAZ)
		}
	}
	if err := ecs.NewServicesStableWaiter(e.ecs).Wait(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("c"), Services: []string{"web"}}, time.Minute,
		func(o *ecs.ServicesStableWaiterOptions) { o.MinDelay = time.Second }); err != nil {
		t.Fatal(err)
	}

	// Roll to revision 2 with 100/200; sample the running count all along.
	simTaskDef(t, e, "web")
	var low atomic.Int32
	low.Store(100)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			running := 0
			for _, task := range serviceTasks(t, e, "web") {
				if aws.ToString(task.LastStatus) == "RUNNING" && aws.ToString(task.DesiredStatus) == "RUNNING" {
					running++
				}
			}
			if int32(running) < low.Load() {
				low.Store(int32(running))
			}
		}
	}()
	must(e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("web"), TaskDefinition: aws.String("web:2")}))(t)
	svc = waitService(t, e, "c", "web", "revision 2 to complete", func(s types.Service) bool {
		return stable(s) && strings.HasSuffix(aws.ToString(s.Deployments[0].TaskDefinition), "web:2")
	})
	close(stop)
	wg.Wait()
	if low.Load() < 6 {
		t.Fatalf("the running count fell to %d during a 100%%/200%% deployment", low.Load())
	}
	for _, task := range serviceTasks(t, e, "web") {
		if !strings.HasSuffix(aws.ToString(task.TaskDefinitionArn), "web:2") {
			t.Fatalf("task of %s left after the rollout", aws.ToString(task.TaskDefinitionArn))
		}
	}

	// Scaling alone makes no deployment.
	up := must(e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("web"), DesiredCount: aws.Int32(3)}))(t)
	if len(up.Service.Deployments) != 1 || aws.ToString(up.Service.Deployments[0].Id) != aws.ToString(svc.Deployments[0].Id) {
		t.Fatalf("scaling made a deployment: %+v", up.Service.Deployments)
	}
	waitService(t, e, "c", "web", "a scale-in to 3", func(s types.Service) bool { return stable(s) && s.RunningCount == 3 })
	perAZ = map[string]int{}
	for _, task := range serviceTasks(t, e, "web") {
		perAZ[aws.ToString(task.AvailabilityZone)]++
	}
	if len(perAZ) != 3 {
		t.Fatalf("after scale-in, tasks per zone %v", perAZ)
	}

	// A task whose container dies is replaced.
	victim := serviceTasks(t, e, "web")[0]
	for _, n := range nodes {
		n.Runtime.Kill(aws.ToString(victim.Containers[0].RuntimeId), 1)
	}
	waitService(t, e, "c", "web", "the killed task's replacement", func(s types.Service) bool {
		if !stable(s) {
			return false
		}
		for _, task := range serviceTasks(t, e, "web") {
			if aws.ToString(task.TaskArn) == aws.ToString(victim.TaskArn) {
				return false
			}
		}
		return true
	})

	// Draining a node moves its tasks.
	drained := nodes[0].Agent.InstanceArn()
	must(e.ecs.UpdateContainerInstancesState(ctx, &ecs.UpdateContainerInstancesStateInput{Cluster: aws.String("c"), ContainerInstances: []string{drained}, Status: types.ContainerInstanceStatusDraining}))(t)
	waitService(t, e, "c", "web", "the drained node's tasks to move", func(s types.Service) bool {
		if !stable(s) {
			return false
		}
		for _, task := range serviceTasks(t, e, "web") {
			if aws.ToString(task.ContainerInstanceArn) == drained {
				return false
			}
		}
		return true
	})

	// DeleteService scales to zero, then the service goes INACTIVE.
	must(e.ecs.DeleteService(ctx, &ecs.DeleteServiceInput{Cluster: aws.String("c"), Service: aws.String("web"), Force: aws.Bool(true)}))(t)
	waitService(t, e, "c", "web", "the deleted service to become INACTIVE", func(s types.Service) bool { return aws.ToString(s.Status) == "INACTIVE" })
	if left := serviceTasks(t, e, "web"); len(left) != 0 {
		t.Fatalf("%d tasks left running after the delete", len(left))
	}
}

func TestCircuitBreakerRollsBack(t *testing.T) {
	e, _ := controllerEnv(t, 2)
	ctx := ctxT(t)
	good := simTaskDef(t, e, "api")
	must(e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("api"), TaskDefinition: aws.String("api"), DesiredCount: aws.Int32(2),
		DeploymentConfiguration: &types.DeploymentConfiguration{DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true, Rollback: true}}}))(t)
	waitService(t, e, "c", "api", "the first deployment", stable)
	simTaskDef(t, e, "api", "sim-exit", "1")
	must(e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("api"), TaskDefinition: aws.String("api:2")}))(t)
	svc := waitService(t, e, "c", "api", "the circuit breaker to roll back", func(s types.Service) bool {
		return stable(s) && aws.ToString(s.Deployments[0].TaskDefinition) == good && hasEvent(s, "deployment failed")
	})
	if !hasEvent(svc, "rolling back") {
		t.Fatalf("events %+v", svc.Events)
	}
	if aws.ToString(svc.TaskDefinition) != good {
		t.Fatalf("the service's task definition is %s after the rollback", aws.ToString(svc.TaskDefinition))
	}
}

func TestFailingTasksBackOff(t *testing.T) {
	e, _ := controllerEnv(t, 1)
	ctx := ctxT(t)
	must(e.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("bad"), ContainerDefinitions: []types.ContainerDefinition{
		{Name: aws.String("app"), Image: aws.String("wharf-test/does-not-exist:1"), Memory: aws.Int32(16)}}}))(t)
	must(e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("bad"), TaskDefinition: aws.String("bad"), DesiredCount: aws.Int32(1)}))(t)
	waitService(t, e, "c", "bad", "the unable-to-start event", func(s types.Service) bool { return hasEvent(s, "unable to consistently start tasks") })
	stopped := must(e.ecs.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("c"), DesiredStatus: types.DesiredStatusStopped}))(t)
	d := must(e.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("c"), Tasks: stopped.TaskArns}))(t)
	for _, task := range d.Tasks {
		if task.StopCode != types.TaskStopCodeTaskFailedToStart || !strings.HasPrefix(aws.ToString(task.Containers[0].Reason), "CannotPullContainerError") {
			t.Fatalf("stopped task %s %s %s", task.StopCode, aws.ToString(task.StoppedReason), aws.ToString(task.Containers[0].Reason))
		}
	}
	// Back-off: a handful of attempts, not one per pass.
	if len(d.Tasks) > 8 {
		t.Fatalf("%d start attempts in a few seconds despite the back-off", len(d.Tasks))
	}
}

func TestBinpackAndConstraints(t *testing.T) {
	e, nodes := controllerEnv(t, 3)
	ctx := ctxT(t)
	simTaskDef(t, e, "packed")
	must(e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("packed"), TaskDefinition: aws.String("packed"), DesiredCount: aws.Int32(4),
		PlacementStrategy: []types.PlacementStrategy{{Type: types.PlacementStrategyTypeBinpack, Field: aws.String("memory")}}}))(t)
	waitService(t, e, "c", "packed", "4 binpacked tasks", stable)
	on := map[string]int{}
	for _, task := range serviceTasks(t, e, "packed") {
		on[aws.ToString(task.ContainerInstanceArn)]++
	}
	if len(on) != 1 {
		t.Fatalf("binpack spread tasks over %d nodes: %v", len(on), on)
	}
	// distinctInstance with memberOf on one zone.
	simTaskDef(t, e, "pinned")
	out := must(e.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String("pinned"), Count: aws.Int32(2),
		PlacementConstraints: []types.PlacementConstraint{
			{Type: types.PlacementConstraintTypeDistinctInstance},
			{Type: types.PlacementConstraintTypeMemberOf, Expression: aws.String("attribute:ecs.availability-zone == " + nodes[1].AZ)},
		}}))(t)
	if len(out.Tasks) != 1 || len(out.Failures) == 0 || aws.ToString(out.Tasks[0].AvailabilityZone) != nodes[1].AZ {
		t.Fatalf("tasks %+v failures %+v", out.Tasks, out.Failures)
	}
	reasons := map[string]bool{}
	for _, f := range out.Failures {
		reasons[aws.ToString(f.Reason)] = true
	}
	if !reasons["MemberOf placement constraint unsatisfied."] || !reasons["DistinctInstance placement constraint unsatisfied."] {
		t.Fatalf("failure reasons %v", reasons)
	}
}

func TestLostAgentsTasksAreReplaced(t *testing.T) {
	e, nodes := controllerEnv(t, 2, func(c *server.Config) { c.Controller.LostAfter = 2 * time.Second })
	ctx := ctxT(t)
	simTaskDef(t, e, "svc")
	must(e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("svc"), TaskDefinition: aws.String("svc"), DesiredCount: aws.Int32(2),
		PlacementStrategy: []types.PlacementStrategy{{Type: types.PlacementStrategyTypeSpread, Field: aws.String("instanceId")}}}))(t)
	waitService(t, e, "c", "svc", "2 tasks", stable)
	lost := nodes[0].Agent.InstanceArn()
	nodes[0].Stop()
	waitService(t, e, "c", "svc", "the lost node's task to be replaced on the other", func(s types.Service) bool {
		if !stable(s) {
			return false
		}
		for _, task := range serviceTasks(t, e, "svc") {
			if aws.ToString(task.ContainerInstanceArn) == lost {
				return false
			}
		}
		return true
	})
}

// TestLeaderFailover stops the leading server during a deployment; the
// other one finishes it, and no instance is over-committed.
func TestLeaderFailover(t *testing.T) {
	cluster := testenv.StartEtcdCluster(t, 1)
	opts := func(c *server.Config) {
		c.Controller = control.SchedulerConfig{HealthyAfter: time.Second, Resync: 500 * time.Millisecond}
	}
	a := testenv.StartServer(t, "", testenv.WithEtcd(cluster.Endpoints()), opts)
	b := testenv.StartServer(t, "", testenv.WithEtcd(cluster.Endpoints()), opts)
	e := &env{srv: b, ecs: b.ECS()}
	ctx := ctxT(t)
	e.cluster(t, "c")
	testenv.StartHollowNodes(t, b, "c", 3, func(c *agent.Config) { c.CPU = 512 })
	simTaskDef(t, e, "f")
	must(e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("f"), TaskDefinition: aws.String("f"), DesiredCount: aws.Int32(9)}))(t)
	waitService(t, e, "c", "f", "9 tasks", stable)
	simTaskDef(t, e, "f")
	must(e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("f"), TaskDefinition: aws.String("f:2")}))(t)
	// a started first and leads; b takes over when it stops.
	a.Stop()
	waitServiceLong(t, e, "f", 90*time.Second, func(s types.Service) bool {
		return stable(s) && strings.HasSuffix(aws.ToString(s.Deployments[0].TaskDefinition), "f:2")
	})
	// 512 CPU units hold 8 tasks of 64 per node: never more.
	for _, ci := range must(e.ecs.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String("c")}))(t).ContainerInstanceArns {
		inst := describeInstance(t, e, "c", ci)
		if remaining(inst, "CPU") < 0 {
			t.Fatalf("instance over-committed: %d CPU left", remaining(inst, "CPU"))
		}
	}
}

func waitServiceLong(t *testing.T, e *env, name string, d time.Duration, ok func(types.Service) bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		out := must(e.ecs.DescribeServices(ctxT(t), &ecs.DescribeServicesInput{Cluster: aws.String("c"), Services: []string{name}}))(t)
		if len(out.Services) == 1 && ok(out.Services[0]) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("service %s not as expected after %v: %+v", name, d, out.Services)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
