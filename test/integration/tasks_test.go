package integration

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

func describeInstance(t *testing.T, e *env, cluster, arn string) types.ContainerInstance {
	t.Helper()
	out := must(e.ecs.DescribeContainerInstances(ctxT(t), &ecs.DescribeContainerInstancesInput{Cluster: aws.String(cluster), ContainerInstances: []string{arn}}))(t)
	if len(out.ContainerInstances) != 1 {
		t.Fatalf("instance %s not found: %+v", arn, out.Failures)
	}
	return out.ContainerInstances[0]
}

func TestTasks(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	e.cluster(t, "c")
	ci := e.instance(t, "c", 1024, 512)
	td := e.taskDef(t, "web", 128, 8080)

	run := must(e.ecs.RunTask(ctx, &ecs.RunTaskInput{
		Cluster: aws.String("c"), TaskDefinition: aws.String("web"), Count: aws.Int32(1),
		StartedBy: aws.String("ci"), Group: aws.String("batch"),
		Tags:      []types.Tag{{Key: aws.String("job"), Value: aws.String("1")}},
		Overrides: &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{Name: aws.String("app"), Command: []string{"echo", "hi"}}}},
	}))(t)
	if len(run.Tasks) != 1 || len(run.Failures) != 0 {
		t.Fatalf("run %+v %+v", run.Tasks, run.Failures)
	}
	task := run.Tasks[0]
	taskArn := aws.ToString(task.TaskArn)
	if aws.ToString(task.LastStatus) != "PENDING" || aws.ToString(task.DesiredStatus) != "RUNNING" || aws.ToString(task.ContainerInstanceArn) != ci ||
		aws.ToString(task.TaskDefinitionArn) != td || aws.ToString(task.Group) != "batch" || task.LaunchType != types.LaunchTypeEc2 || len(task.Containers) != 1 {
		t.Fatalf("task %+v", task)
	}

	t.Run("resources are reserved", func(t *testing.T) {
		inst := describeInstance(t, e, "c", ci)
		if remaining(inst, "CPU") != 1024-128 || remaining(inst, "MEMORY") != 512-128 || inst.PendingTasksCount != 1 {
			t.Fatalf("remaining CPU %d MEMORY %d pending %d", remaining(inst, "CPU"), remaining(inst, "MEMORY"), inst.PendingTasksCount)
		}
	})

	t.Run("failures when nothing fits", func(t *testing.T) {
		// The host port 8080 is taken.
		out := must(e.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String("web")}))(t)
		if len(out.Tasks) != 0 || len(out.Failures) != 1 || aws.ToString(out.Failures[0].Reason) != "RESOURCE:PORTS" || aws.ToString(out.Failures[0].Arn) != ci {
			t.Fatalf("ports: %+v %+v", out.Tasks, out.Failures)
		}
		e.taskDef(t, "big", 1000, 0)
		out = must(e.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String("big")}))(t)
		if len(out.Failures) != 1 || aws.ToString(out.Failures[0].Reason) != "RESOURCE:MEMORY" {
			t.Fatalf("memory: %+v", out.Failures)
		}
		out = must(e.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String("big"),
			Overrides: &types.TaskOverride{Cpu: aws.String("4096"), Memory: aws.String("64")}}))(t)
		if len(out.Failures) != 1 || aws.ToString(out.Failures[0].Reason) != "RESOURCE:CPU" {
			t.Fatalf("cpu: %+v", out.Failures)
		}
		_, err := e.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String("big"), Count: aws.Int32(11)})
		wantCode(t, err, "InvalidParameterException", "count")
		_, err = e.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("nope"), TaskDefinition: aws.String("big")})
		wantCode(t, err, "ClusterNotFoundException", "")
		_, err = e.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String("ghost")})
		wantCode(t, err, "ClientException", "")
		_, err = e.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String("big"),
			Overrides: &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{Name: aws.String("nope")}}}})
		wantCode(t, err, "InvalidParameterException", "not a container")
		e.cluster(t, "empty")
		_, err = e.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("empty"), TaskDefinition: aws.String("big")})
		wantCode(t, err, "InvalidParameterException", "No Container Instances")
	})

	t.Run("describe and list", func(t *testing.T) {
		d := must(e.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("c"), Tasks: []string{taskArn, "0123456789abcdef0123456789abcdef"}, Include: []types.TaskField{types.TaskFieldTags}}))(t)
		if len(d.Tasks) != 1 || len(d.Failures) != 1 || len(d.Tasks[0].Tags) != 1 {
			t.Fatalf("describe %+v %+v", d.Tasks, d.Failures)
		}
		if got := d.Tasks[0].Overrides.ContainerOverrides[0].Command; len(got) != 2 {
			t.Fatalf("overrides not kept: %+v", d.Tasks[0].Overrides)
		}
		for name, in := range map[string]*ecs.ListTasksInput{
			"all":       {Cluster: aws.String("c")},
			"family":    {Cluster: aws.String("c"), Family: aws.String("web")},
			"startedBy": {Cluster: aws.String("c"), StartedBy: aws.String("ci")},
			"instance":  {Cluster: aws.String("c"), ContainerInstance: aws.String(ci)},
		} {
			out := must(e.ecs.ListTasks(ctx, in))(t)
			if len(out.TaskArns) != 1 || out.TaskArns[0] != taskArn {
				t.Errorf("%s: %v", name, out.TaskArns)
			}
		}
		for name, in := range map[string]*ecs.ListTasksInput{
			"other family": {Cluster: aws.String("c"), Family: aws.String("big")},
			"stopped":      {Cluster: aws.String("c"), DesiredStatus: types.DesiredStatusStopped},
			"service":      {Cluster: aws.String("c"), ServiceName: aws.String("svc")},
		} {
			if out := must(e.ecs.ListTasks(ctx, in))(t); len(out.TaskArns) != 0 {
				t.Errorf("%s: %v", name, out.TaskArns)
			}
		}
	})

	t.Run("agent reports drive the lifecycle", func(t *testing.T) {
		must(e.ecs.SubmitContainerStateChange(ctx, &ecs.SubmitContainerStateChangeInput{
			Cluster: aws.String("c"), Task: aws.String(taskArn), ContainerName: aws.String("app"), Status: aws.String("RUNNING"),
			RuntimeId: aws.String("abc123"), NetworkBindings: []types.NetworkBinding{{ContainerPort: aws.Int32(80), HostPort: aws.Int32(8080), BindIP: aws.String("0.0.0.0")}},
		}))(t)
		must(e.ecs.SubmitTaskStateChange(ctx, &ecs.SubmitTaskStateChangeInput{
			Cluster: aws.String("c"), Task: aws.String(taskArn), Status: aws.String("RUNNING"), PullStartedAt: aws.Time(time.Now().Add(-time.Second)),
		}))(t)
		d := must(e.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("c"), Tasks: []string{taskArn}}))(t).Tasks[0]
		if aws.ToString(d.LastStatus) != "RUNNING" || d.StartedAt == nil || d.PullStartedAt == nil || aws.ToString(d.Containers[0].RuntimeId) != "abc123" || len(d.Containers[0].NetworkBindings) != 1 {
			t.Fatalf("after RUNNING: %+v", d)
		}
		inst := describeInstance(t, e, "c", ci)
		if inst.RunningTasksCount != 1 || inst.PendingTasksCount != 0 {
			t.Fatalf("counts running %d pending %d", inst.RunningTasksCount, inst.PendingTasksCount)
		}
		// A report can't move a task backwards.
		must(e.ecs.SubmitTaskStateChange(ctx, &ecs.SubmitTaskStateChangeInput{Cluster: aws.String("c"), Task: aws.String(taskArn), Status: aws.String("PENDING")}))(t)

		stop := must(e.ecs.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String("c"), Task: aws.String(taskArn), Reason: aws.String("done")}))(t)
		if aws.ToString(stop.Task.DesiredStatus) != "STOPPED" || aws.ToString(stop.Task.LastStatus) != "RUNNING" || stop.Task.StopCode != types.TaskStopCodeUserInitiated {
			t.Fatalf("stop of a running task: %+v", stop.Task)
		}
		must(e.ecs.SubmitTaskStateChange(ctx, &ecs.SubmitTaskStateChangeInput{
			Cluster: aws.String("c"), Task: aws.String(taskArn), Status: aws.String("STOPPED"), Reason: aws.String("Essential container in task exited"),
			Containers: []types.ContainerStateChange{{ContainerName: aws.String("app"), Status: aws.String("STOPPED"), ExitCode: aws.Int32(0)}},
		}))(t)
		d = must(e.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("c"), Tasks: []string{taskArn}}))(t).Tasks[0]
		if aws.ToString(d.LastStatus) != "STOPPED" || d.StoppedAt == nil || aws.ToString(d.StoppedReason) != "done" || aws.ToInt32(d.Containers[0].ExitCode) != 0 {
			t.Fatalf("after STOPPED: %+v", d)
		}
		inst = describeInstance(t, e, "c", ci)
		if remaining(inst, "CPU") != 1024 || remaining(inst, "MEMORY") != 512 || inst.RunningTasksCount != 0 {
			t.Fatalf("not released: CPU %d MEMORY %d running %d", remaining(inst, "CPU"), remaining(inst, "MEMORY"), inst.RunningTasksCount)
		}
		stopped := must(e.ecs.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("c"), DesiredStatus: types.DesiredStatusStopped}))(t)
		if len(stopped.TaskArns) != 1 {
			t.Fatalf("stopped tasks %v", stopped.TaskArns)
		}
		w := ecs.NewTasksStoppedWaiter(e.ecs)
		if err := w.Wait(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("c"), Tasks: []string{taskArn}}, 10*time.Second); err != nil {
			t.Fatalf("tasks-stopped waiter: %v", err)
		}
		_, err := e.ecs.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String("c"), Task: aws.String("0123456789abcdef0123456789abcdef")})
		wantCode(t, err, "InvalidParameterException", "not found")
	})

	t.Run("start task on chosen instances", func(t *testing.T) {
		out := must(e.ecs.StartTask(ctx, &ecs.StartTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String("web"), ContainerInstances: []string{ci, "0123456789abcdef0123456789abcdef"}}))(t)
		if len(out.Tasks) != 1 || len(out.Failures) != 1 || aws.ToString(out.Failures[0].Reason) != "MISSING" {
			t.Fatalf("start %+v %+v", out.Tasks, out.Failures)
		}
		// Stopping a task no agent picked up stops it at once.
		stop := must(e.ecs.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String("c"), Task: out.Tasks[0].TaskArn}))(t)
		if aws.ToString(stop.Task.LastStatus) != "STOPPED" {
			t.Fatalf("unacknowledged task not stopped: %s", aws.ToString(stop.Task.LastStatus))
		}
	})

	t.Run("client token", func(t *testing.T) {
		in := &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String("big"), ClientToken: aws.String("token-1"),
			Overrides: &types.TaskOverride{Memory: aws.String("100")}}
		a := must(e.ecs.RunTask(ctx, in))(t)
		b := must(e.ecs.RunTask(ctx, in))(t)
		if len(a.Tasks) != 1 || len(b.Tasks) != 1 || aws.ToString(a.Tasks[0].TaskArn) != aws.ToString(b.Tasks[0].TaskArn) {
			t.Fatalf("same token gave different answers: %+v vs %+v", a.Tasks, b.Tasks)
		}
		list := must(e.ecs.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("c"), Family: aws.String("big")}))(t)
		if len(list.TaskArns) != 1 {
			t.Fatalf("a repeated token started %d tasks", len(list.TaskArns))
		}
		in.Group = aws.String("different")
		_, err := e.ecs.RunTask(ctx, in)
		wantCode(t, err, "ConflictException", "token")
	})
}

// TestRunTaskNeverOvercommits runs 50 concurrent RunTask calls against an
// instance with room for 8 tasks.
func TestRunTaskNeverOvercommits(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	e.cluster(t, "c")
	ci := e.instance(t, "c", 1024, 1024)
	e.taskDef(t, "small", 128, 0) // 128 CPU units and 128 MiB: 8 fit

	var mu sync.Mutex
	placed := map[string]bool{}
	reasons := map[string]int{}
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			out, err := e.ecs.RunTask(cctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String("small")})
			if err != nil {
				t.Errorf("RunTask: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, task := range out.Tasks {
				placed[aws.ToString(task.TaskArn)] = true
			}
			for _, f := range out.Failures {
				reasons[aws.ToString(f.Reason)]++
			}
		}()
	}
	wg.Wait()
	if len(placed) != 8 {
		t.Fatalf("placed %d tasks, want exactly 8 (failures %v)", len(placed), reasons)
	}
	for r := range reasons {
		if r != "RESOURCE:CPU" && r != "RESOURCE:MEMORY" {
			t.Fatalf("unexpected failure reason %q", r)
		}
	}
	inst := describeInstance(t, e, "c", ci)
	if remaining(inst, "CPU") != 0 || remaining(inst, "MEMORY") != 0 || inst.PendingTasksCount != 8 {
		t.Fatalf("instance after the race: CPU %d MEMORY %d pending %d", remaining(inst, "CPU"), remaining(inst, "MEMORY"), inst.PendingTasksCount)
	}
	list := must(e.ecs.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("c")}))(t)
	if len(list.TaskArns) != 8 {
		t.Fatalf("ListTasks shows %d tasks", len(list.TaskArns))
	}
}
