package integration

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/wharfhq/wharf/internal/testenv"
)

const (
	raceCluster    = "race"
	raceFamily     = "shared"
	raceCPU        = 1024
	raceTaskCPU    = 128 // env.taskDef's container CPU
	raceTaskMemory = 64
	raceRoom       = raceCPU / raceTaskCPU // tasks the instance has room for
	raceRunners    = 20                    // RunTask goroutines per server
	raceRegistrars = 5                     // RegisterTaskDefinition goroutines per server
	raceRegsEach   = 4                     // registrations per registrar
	raceTimeout    = time.Minute
)

// TestTwoServersOneEtcd runs two servers on one etcd and races them: both
// place tasks on one container instance with room for raceRoom tasks, and
// register revisions of one family. Optimistic transactions must neither
// over-commit the instance nor number two revisions alike.
func TestTwoServersOneEtcd(t *testing.T) {
	etcd := testenv.StartEtcdCluster(t, 1)
	servers := []*env{}
	for range 2 {
		srv := testenv.StartServer(t, "", testenv.WithEtcd(etcd.Endpoints()))
		servers = append(servers, &env{srv: srv, ecs: srv.ECS()})
	}
	a, b := servers[0], servers[1]
	a.cluster(t, raceCluster)
	instance := a.instance(t, raceCluster, raceCPU, 1<<20)
	taskDef := b.taskDef(t, "racer", raceTaskMemory, 0)

	type runResult struct {
		server int
		out    *ecs.RunTaskOutput
		err    error
	}
	type regResult struct {
		server int
		arn    string
		err    error
	}
	var (
		mu   sync.Mutex
		runs []runResult
		regs []regResult
		wg   sync.WaitGroup
	)
	ctx, cancel := context.WithTimeout(context.Background(), raceTimeout)
	defer cancel()
	startLine := make(chan struct{})
	for si, e := range servers {
		for range raceRunners {
			wg.Go(func() {
				<-startLine
				out, err := e.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String(raceCluster), TaskDefinition: aws.String(taskDef)})
				mu.Lock()
				runs = append(runs, runResult{si, out, err})
				mu.Unlock()
			})
		}
		for r := range raceRegistrars {
			wg.Go(func() {
				<-startLine
				for i := range raceRegsEach {
					out, err := e.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
						Family: aws.String(raceFamily),
						ContainerDefinitions: []types.ContainerDefinition{{
							Name: aws.String("app"), Image: aws.String(fmt.Sprintf("busybox:s%d-r%d-%d", si, r, i)), Memory: aws.Int32(32),
						}},
					})
					res := regResult{server: si, err: err}
					if err == nil {
						res.arn = aws.ToString(out.TaskDefinition.TaskDefinitionArn)
					}
					mu.Lock()
					regs = append(regs, res)
					mu.Unlock()
				}
			})
		}
	}
	start := time.Now()
	close(startLine)
	wg.Wait()
	t.Logf("%d RunTask and %d RegisterTaskDefinition calls on two servers in %v", len(runs), len(regs), time.Since(start).Round(time.Millisecond))

	// Exactly raceRoom RunTask calls placed a task; every other one was
	// refused for CPU on the instance.
	var placed []string
	for _, r := range runs {
		if r.err != nil {
			t.Errorf("RunTask through server %d: %v", r.server, r.err)
			continue
		}
		for _, task := range r.out.Tasks {
			placed = append(placed, aws.ToString(task.TaskArn))
		}
		for _, f := range r.out.Failures {
			if aws.ToString(f.Reason) != "RESOURCE:CPU" || aws.ToString(f.Arn) != instance {
				t.Errorf("RunTask through server %d failed with %s on %s, want RESOURCE:CPU on %s", r.server, aws.ToString(f.Reason), aws.ToString(f.Arn), instance)
			}
		}
		if len(r.out.Tasks)+min(len(r.out.Failures), 1) != 1 {
			t.Errorf("RunTask through server %d: %d tasks and failures %s, want one or the other", r.server, len(r.out.Tasks), jsonText(r.out.Failures))
		}
	}
	if len(placed) != raceRoom {
		t.Errorf("%d tasks were placed, the instance has room for %d", len(placed), raceRoom)
	}

	// Both servers see the instance exactly full, and the placed tasks
	// and nothing else on it.
	check := func(e *env, name string) {
		t.Helper()
		ctx := ctxT(t)
		cl := aws.String(raceCluster)
		ci := must(e.ecs.DescribeContainerInstances(ctx, &ecs.DescribeContainerInstancesInput{Cluster: cl, ContainerInstances: []string{instance}}))(t).ContainerInstances[0]
		if got := remaining(ci, "CPU"); got != 0 {
			t.Errorf("%s: remaining CPU %d, want 0", name, got)
		}
		if got, want := remaining(ci, "MEMORY"), int32(1<<20-raceRoom*raceTaskMemory); got != want {
			t.Errorf("%s: remaining memory %d, want %d", name, got, want)
		}
		if got := ci.PendingTasksCount + ci.RunningTasksCount; got != raceRoom {
			t.Errorf("%s: the instance counts %d pending and %d running tasks, want %d in all", name, ci.PendingTasksCount, ci.RunningTasksCount, raceRoom)
		}
		listed := must(e.ecs.ListTasks(ctx, &ecs.ListTasksInput{Cluster: cl, ContainerInstance: aws.String(instance)}))(t).TaskArns
		slices.Sort(listed)
		want := slices.Sorted(slices.Values(placed))
		if !slices.Equal(listed, want) {
			t.Errorf("%s: ListTasks lists %d tasks %v, want the %d placed %v", name, len(listed), listed, len(want), want)
		}
		if len(listed) == 0 {
			return
		}
		tasks := must(e.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: cl, Tasks: listed}))(t).Tasks
		reserved := int32(0)
		for _, task := range tasks {
			if s := aws.ToString(task.LastStatus); s != "PENDING" && s != "RUNNING" {
				t.Errorf("%s: task %s is %s", name, aws.ToString(task.TaskArn), s)
			}
			for _, ct := range task.Containers {
				cpu, err := strconv.Atoi(aws.ToString(ct.Cpu))
				if err != nil {
					t.Errorf("%s: container %s of task %s has CPU %q", name, aws.ToString(ct.Name), aws.ToString(task.TaskArn), aws.ToString(ct.Cpu))
				}
				reserved += int32(cpu)
			}
		}
		if reserved+remaining(ci, "CPU") != raceCPU {
			t.Errorf("%s: the tasks reserve %d CPU units and %d remain, the instance registered %d", name, reserved, remaining(ci, "CPU"), raceCPU)
		}
	}
	check(a, "server 0")
	check(b, "server 1")

	// Revisions are 1..M, M the number of successful registrations, each
	// returned to exactly one caller.
	var acked []string
	for _, r := range regs {
		if r.err != nil {
			t.Errorf("RegisterTaskDefinition through server %d: %v", r.server, r.err)
			continue
		}
		acked = append(acked, r.arn)
	}
	slices.SortFunc(acked, func(x, y string) int { return revisionOf(t, x) - revisionOf(t, y) })
	for i, arn := range acked {
		if want := fmt.Sprintf("arn:aws:ecs:us-east-1:123456789012:task-definition/%s:%d", raceFamily, i+1); arn != want {
			t.Errorf("registration %d of %d returned %s, want %s (revisions must be 1..%d, each once)", i+1, len(acked), arn, want, len(acked))
		}
	}
	for _, e := range servers {
		listed := listAll(t, func(token *string) ([]string, *string) {
			out := must(e.ecs.ListTaskDefinitions(ctxT(t), &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(raceFamily), NextToken: token}))(t)
			return out.TaskDefinitionArns, out.NextToken
		})
		if !slices.Equal(listed, acked) {
			t.Errorf("ListTaskDefinitions lists %v, want the %d acknowledged %v", listed, len(acked), acked)
		}
	}

	// The servers share their pagination key: a listing started on one
	// continues on the other.
	if len(acked) < 2 {
		t.Fatalf("only %d registrations succeeded", len(acked))
	}
	first := must(a.ecs.ListTaskDefinitions(ctxT(t), &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(raceFamily), MaxResults: aws.Int32(1)}))(t)
	next := must(b.ecs.ListTaskDefinitions(ctxT(t), &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(raceFamily), MaxResults: aws.Int32(1), NextToken: first.NextToken}))(t)
	if got := append(first.TaskDefinitionArns, next.TaskDefinitionArns...); !slices.Equal(got, acked[:2]) {
		t.Errorf("a listing begun on server 0 and continued on server 1 gave %v, want %v", got, acked[:2])
	}
}

// revisionOf returns the revision of a task definition ARN.
func revisionOf(t *testing.T, arn string) int {
	t.Helper()
	rev, err := strconv.Atoi(arn[strings.LastIndexByte(arn, ':')+1:])
	if err != nil {
		t.Fatalf("%q is not a task definition ARN with a revision: %v", arn, err)
	}
	return rev
}
