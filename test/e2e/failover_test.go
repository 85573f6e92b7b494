package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/wharfhq/wharf/internal/testenv"
)

// leading is what a server logs when it wins the service scheduler's
// election.
const leading = "leading the service scheduler"

// electionTTL is the scheduler election's session TTL (store.Campaign's
// 10 s in ecs.RunController): a dead leader's lease expires within it.
const electionTTL = 10 * time.Second

// logged reports whether the process's log contains s.
func (p *proc) logged(s string) bool {
	b, err := os.ReadFile(p.log)
	return err == nil && strings.Contains(string(b), s)
}

// startEtcdServer starts a `wharf server` on the etcd cluster at endpoints
// and waits until it answers; it returns the process, its endpoint and a
// client of it.
func (e *env) startEtcdServer(name string, endpoints []string) (*proc, string, *ecs.Client) {
	e.t.Helper()
	port := freePort(e.t)
	p := e.start(name, "server", append(e.serverArgs(port), "--etcd-endpoints", strings.Join(endpoints, ","))...)
	endpoint := "http://127.0.0.1:" + strconv.Itoa(port)
	cli := ecs.NewFromConfig(testenv.AWSConfig(endpoint, testenv.Region))
	e.waitAnswers(p, cli)
	return p, endpoint, cli
}

// TestSchedulerFailover runs two servers on one etcd, the agents and the
// test talking to the second, and kills the first, the scheduler's leader,
// with SIGKILL in the middle of a rolling deployment (maximumPercent 150,
// so that it goes in waves and the survivor has tasks left to place). The
// second server takes over once the dead leader's lease expires and
// finishes the deployment; the service never drops below its six RUNNING
// tasks, and nothing is placed twice: six tasks want to run, each with a
// container of its own, and every instance's remaining resources are its
// registered ones less exactly what its tasks reserve.
func TestSchedulerFailover(t *testing.T) {
	etcd := testenv.StartEtcdCluster(t, 1)
	e := prepare(t, config{healthyAfter: healthyAfter, stopTimeout: 10 * time.Second, cleanupDelay: time.Hour})
	e.cluster = clusterName

	a, _, _ := e.startEtcdServer("server-a", etcd.Endpoints())
	waitFor(t, "server-a to lead the service scheduler", startWait, func() (bool, string) {
		return a.logged(leading), "its log lacks " + strconv.Quote(leading)
	})
	b, endpoint, cli := e.startEtcdServer("server-b", etcd.Endpoints())
	e.server, e.endpoint, e.ecs = b, endpoint, cli
	e.createCluster()
	e.addNode("node-1", testenv.Region+"a")
	e.addNode("node-2", testenv.Region+"b")
	e.addNode("node-3", testenv.Region+"c")

	const cpu, memory = 256, 32
	web := func(version string) types.ContainerDefinition {
		c := e.ctr("web", serviceScript(version))
		c.Cpu, c.MemoryReservation = cpu, aws.Int32(memory)
		return c
	}
	v1 := e.register("failover", types.NetworkModeBridge, web("v1"))
	v2 := e.register("failover", types.NetworkModeBridge, web("v2"))
	e.createService(&ecs.CreateServiceInput{
		ServiceName:    aws.String("failover"),
		TaskDefinition: aws.String(v1),
		DesiredCount:   aws.Int32(6),
		DeploymentConfiguration: &types.DeploymentConfiguration{
			MinimumHealthyPercent: aws.Int32(100), MaximumPercent: aws.Int32(150),
		},
	})
	e.waitStable("failover", v1)
	if b.logged(leading) || a.logged("lost the service scheduler leadership") {
		t.Fatalf("server-a is not the only leader of the service scheduler")
	}

	s := e.sample("failover", 2*serviceWait)
	began := time.Now()
	up := e.updateService(&ecs.UpdateServiceInput{Service: aws.String("failover"), TaskDefinition: aws.String(v2)})
	deployment := aws.ToString(up.Deployments[0].Id)
	startedBy := func() []types.Task {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), callWait)
		defer cancel()
		var arns []string
		for _, d := range []types.DesiredStatus{types.DesiredStatusRunning, types.DesiredStatusStopped} {
			out, err := e.ecs.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(e.cluster), StartedBy: aws.String(deployment), DesiredStatus: d})
			if err != nil {
				t.Fatalf("list the tasks of deployment %s: %v", deployment, err)
			}
			arns = append(arns, out.TaskArns...)
		}
		var tasks []types.Task
		for _, arn := range arns {
			tasks = append(tasks, e.describe(arn))
		}
		return tasks
	}
	waitFor(t, "server-a to place tasks of deployment "+deployment, 30*time.Second, func() (bool, string) {
		n := len(startedBy())
		return n > 0, fmt.Sprintf("%d tasks", n)
	})
	killed := time.Now()
	a.kill(t)
	byA := map[string]bool{}
	for _, task := range startedBy() {
		byA[aws.ToString(task.TaskArn)] = true
	}
	t.Logf("killed server-a %v after UpdateService, with %d of revision 2's tasks placed", killed.Sub(began).Round(time.Millisecond), len(byA))

	waitFor(t, "server-b to lead the service scheduler", electionTTL+10*time.Second, func() (bool, string) {
		if b.exited() {
			t.Fatalf("server-b exited: %v", b.err)
		}
		return b.logged(leading), "its log lacks " + strconv.Quote(leading)
	})
	t.Logf("server-b leads the service scheduler %v after server-a was killed", time.Since(killed).Round(time.Millisecond))

	svc, tasks := e.waitStable("failover", v2)
	st := s.stop()
	t.Logf("the deployment completed %v after the kill", time.Since(killed).Round(time.Millisecond))
	st.check(t, "through the fail-over", 6, 9)
	if id := aws.ToString(svc.Deployments[0].Id); id != deployment {
		t.Errorf("the service ends on deployment %s, want %s", id, deployment)
	}
	byB := 0
	for _, task := range startedBy() {
		if !byA[aws.ToString(task.TaskArn)] {
			byB++
		}
	}
	if byB == 0 {
		t.Errorf("server-b placed none of revision 2's tasks: server-a placed all %d before it was killed; nothing was left to take over", len(byA))
	}
	t.Logf("server-a placed %d of revision 2's tasks, server-b %d", len(byA), byB)

	// Six tasks want to run, each in a container of its own, running on
	// the engine with its instance's label; no other container of the
	// instances runs.
	if len(tasks) != 6 {
		t.Errorf("%d tasks with desiredStatus RUNNING, want 6", len(tasks))
	}
	owner := map[string]string{} // container id → task
	for _, task := range tasks {
		arn := aws.ToString(task.TaskArn)
		id := aws.ToString(taskContainer(t, task, "web").RuntimeId)
		if other, ok := owner[id]; ok {
			t.Errorf("tasks %s and %s share container %s", taskID(other), taskID(arn), id)
		}
		owner[id] = arn
		c := e.inspect(id)
		if !c.State.Running || c.Config.Labels[labelTaskArn] != arn || c.Config.Labels[labelInstance] != aws.ToString(task.ContainerInstanceArn) {
			t.Errorf("task %s's container %s: running=%v labels %v", taskID(arn), id, c.State.Running, c.Config.Labels)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	for _, n := range e.nodes {
		list, err := e.docker.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", labelInstance+"="+n.arn))})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range list {
			if _, ok := owner[c.ID]; !ok {
				t.Errorf("container %s of task %s runs on %s, not one of the service's RUNNING tasks", c.ID, c.Labels[labelTaskArn], n.name)
			}
		}
	}

	// Every reservation is accounted for once.
	perNode := map[string]int{}
	for _, task := range tasks {
		perNode[aws.ToString(task.ContainerInstanceArn)]++
	}
	for _, n := range e.nodes {
		ci := e.instance(n.arn)
		reg, rem := resources(ci.RegisteredResources), resources(ci.RemainingResources)
		if rem["CPU"] < 0 || rem["MEMORY"] < 0 {
			t.Errorf("%s's remaining resources went negative: %v", n.name, rem)
		}
		k := perNode[n.arn]
		if rem["CPU"] != reg["CPU"]-int32(k*cpu) || rem["MEMORY"] != reg["MEMORY"]-int32(k*memory) {
			t.Errorf("%s runs %d tasks of %d CPU and %d MiB, but has %v remaining of %v registered", n.name, k, cpu, memory, rem, reg)
		}
		if int(ci.RunningTasksCount) != k || ci.PendingTasksCount != 0 {
			t.Errorf("%s: runningTasksCount %d pendingTasksCount %d, want %d and 0", n.name, ci.RunningTasksCount, ci.PendingTasksCount, k)
		}
	}
	took := e.servicesStable("failover")
	t.Logf("aws ecs wait services-stable returned after %v", took.Round(time.Millisecond))
}

// resources maps a container instance's integer resources by name.
func resources(rs []types.Resource) map[string]int32 {
	out := map[string]int32{}
	for _, r := range rs {
		if aws.ToString(r.Type) == "INTEGER" {
			out[aws.ToString(r.Name)] = r.IntegerValue
		}
	}
	return out
}
