package integration

import (
	"context"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/wharfhq/wharf/internal/api/agentapi"
	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/server"
	"github.com/wharfhq/wharf/internal/testenv"
)

// agentCall invokes an operation of the agent protocol.
func agentCall(t *testing.T, ctx context.Context, endpoint, op string, in, out any) error {
	t.Helper()
	return agentapi.NewClient(endpoint, testenv.Region, testenv.AccessKeyID, testenv.SecretAccessKey, http.DefaultClient).Call(ctx, op, in, out)
}

func eniInstance(t *testing.T, e *env, cluster string, eni, trunk int32) string {
	t.Helper()
	out := must(e.ecs.RegisterContainerInstance(ctxT(t), &ecs.RegisterContainerInstanceInput{
		Cluster: aws.String(cluster),
		TotalResources: []types.Resource{
			{Name: aws.String("CPU"), Type: aws.String("INTEGER"), IntegerValue: 4096},
			{Name: aws.String("MEMORY"), Type: aws.String("INTEGER"), IntegerValue: 4096},
			{Name: aws.String("ENI"), Type: aws.String("INTEGER"), IntegerValue: eni},
			{Name: aws.String("ENI_TRUNK"), Type: aws.String("INTEGER"), IntegerValue: trunk},
		},
	}))(t)
	return aws.ToString(out.ContainerInstance.ContainerInstanceArn)
}

func TestAgentProtocol(t *testing.T) {
	srv := testenv.StartServer(t, "", func(c *server.Config) {
		c.AgentGrace = 2 * time.Second
		c.AwsvpcSubnet = "10.99.0.0/24"
	})
	e := &env{srv: srv, ecs: srv.ECS()}
	ctx := ctxT(t)
	e.cluster(t, "c")
	ci := eniInstance(t, e, "c", 2, 8)
	must(e.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("vpc"), NetworkMode: types.NetworkModeAwsvpc,
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("busybox"), Memory: aws.Int32(16),
			HealthCheck: &types.HealthCheck{Command: []string{"CMD", "true"}}}},
	}))(t)

	var first agentapi.PollResponse
	if err := agentCall(t, ctx, srv.Endpoint(), "Poll", &agentapi.PollRequest{Cluster: "c", ContainerInstance: ci}, &first); err != nil {
		t.Fatal(err)
	}
	if len(first.Tasks) != 0 || first.Index == 0 || first.Network == nil || first.Network.Subnet != "10.99.0.0/24" || first.Network.Gateway != "10.99.0.1" {
		t.Fatalf("first poll %+v", first)
	}

	t.Run("a blocking poll wakes when a task is placed", func(t *testing.T) {
		got := make(chan agentapi.PollResponse, 1)
		go func() {
			var r agentapi.PollResponse
			if err := agentCall(t, ctx, srv.Endpoint(), "Poll", &agentapi.PollRequest{Cluster: "c", ContainerInstance: ci, Index: first.Index, WaitSeconds: 20}, &r); err != nil {
				t.Error(err)
			}
			got <- r
		}()
		start := time.Now()
		run := must(e.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String("vpc")}))(t)
		select {
		case r := <-got:
			if len(r.Tasks) != 1 || r.Tasks[0].Task.TaskArn != aws.ToString(run.Tasks[0].TaskArn) || r.Tasks[0].TaskDefinition.Family != "vpc" {
				t.Fatalf("woken poll %+v", r)
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("the poll answered %v after the placement", time.Since(start))
			}
		case <-time.After(15 * time.Second):
			t.Fatal("the poll did not wake within 15s of RunTask")
		}
	})

	t.Run("awsvpc tasks get addresses and ENI capacity is honoured", func(t *testing.T) {
		run := must(e.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String("vpc"), Count: aws.Int32(2)}))(t)
		if len(run.Tasks) != 1 || len(run.Failures) != 1 || aws.ToString(run.Failures[0].Reason) != "RESOURCE:ENI" {
			t.Fatalf("third awsvpc task on an instance of 2: %+v %+v", run.Tasks, run.Failures)
		}
		task := run.Tasks[0]
		details := map[string]string{}
		for _, d := range task.Attachments[0].Details {
			details[aws.ToString(d.Name)] = aws.ToString(d.Value)
		}
		ip, err := netip.ParseAddr(details["privateIPv4Address"])
		if err != nil || !netip.MustParsePrefix("10.99.0.0/24").Contains(ip) || details["macAddress"] == "" || details["networkInterfaceId"] == "" {
			t.Fatalf("attachment %v", details)
		}
		if aws.ToString(task.LastStatus) != "PROVISIONING" {
			t.Fatalf("an awsvpc task starts %s", aws.ToString(task.LastStatus))
		}
		// Stopping frees the address and the capacity.
		must(e.ecs.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String("c"), Task: task.TaskArn}))(t)
		again := must(e.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String("vpc")}))(t)
		if len(again.Tasks) != 1 {
			t.Fatalf("capacity not released: %+v", again.Failures)
		}
	})

	t.Run("reports: health and stop codes", func(t *testing.T) {
		list := must(e.ecs.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("c")}))(t)
		arn := list.TaskArns[0]
		must(e.ecs.SubmitTaskStateChange(ctx, &ecs.SubmitTaskStateChangeInput{Cluster: aws.String("c"), Task: aws.String(arn), Status: aws.String("RUNNING")}))(t)
		for _, h := range []string{"HEALTHY", "UNHEALTHY"} {
			if err := agentCall(t, ctx, srv.Endpoint(), "ReportHealth", &agentapi.ReportHealthRequest{Cluster: "c", Task: arn,
				Containers: []agentapi.ContainerHealth{{Name: "app", HealthStatus: ecsapi.HealthStatus(h)}}}, new(agentapi.ReportHealthResponse)); err != nil {
				t.Fatal(err)
			}
			d := must(e.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("c"), Tasks: []string{arn}}))(t).Tasks[0]
			if string(d.HealthStatus) != h || string(d.Containers[0].HealthStatus) != h {
				t.Fatalf("after a %s report: task %s container %s", h, d.HealthStatus, d.Containers[0].HealthStatus)
			}
		}
		err := agentCall(t, ctx, srv.Endpoint(), "ReportHealth", &agentapi.ReportHealthRequest{Cluster: "c", Task: arn,
			Containers: []agentapi.ContainerHealth{{Name: "app", HealthStatus: "GREAT"}}}, new(agentapi.ReportHealthResponse))
		if err == nil {
			t.Fatal("a bad health status was accepted")
		}
		must(e.ecs.SubmitTaskStateChange(ctx, &ecs.SubmitTaskStateChangeInput{Cluster: aws.String("c"), Task: aws.String(arn), Status: aws.String("STOPPED"),
			Reason: aws.String("Essential container in task exited")}))(t)
		d := must(e.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("c"), Tasks: []string{arn}}))(t).Tasks[0]
		if d.StopCode != types.TaskStopCodeEssentialContainerExited || aws.ToString(d.StoppedReason) != "Essential container in task exited" {
			t.Fatalf("stop code %s reason %s", d.StopCode, aws.ToString(d.StoppedReason))
		}
		run := must(e.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String("vpc")}))(t)
		failed := aws.ToString(run.Tasks[0].TaskArn)
		must(e.ecs.SubmitTaskStateChange(ctx, &ecs.SubmitTaskStateChangeInput{Cluster: aws.String("c"), Task: aws.String(failed), Status: aws.String("STOPPED"),
			Reason: aws.String("CannotPullContainerError: no such image")}))(t)
		d = must(e.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("c"), Tasks: []string{failed}}))(t).Tasks[0]
		if d.StopCode != types.TaskStopCodeTaskFailedToStart {
			t.Fatalf("a task that never ran stopped with %s", d.StopCode)
		}
	})

	t.Run("instances disconnect when polls stop", func(t *testing.T) {
		deadline := time.Now().Add(20 * time.Second)
		for {
			ci := describeInstance(t, e, "c", ci)
			if !ci.AgentConnected {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("agentConnected still true 20s after the last poll with a 2s grace")
			}
			time.Sleep(200 * time.Millisecond)
		}
		td := e.taskDef(t, "plain", 16, 0)
		out := must(e.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String(td)}))(t)
		if len(out.Failures) != 1 || aws.ToString(out.Failures[0].Reason) != "AGENT" {
			t.Fatalf("placement on a disconnected instance: %+v %+v", out.Tasks, out.Failures)
		}
		var r agentapi.PollResponse
		if err := agentCall(t, ctx, srv.Endpoint(), "Poll", &agentapi.PollRequest{Cluster: "c", ContainerInstance: ci}, &r); err != nil {
			t.Fatal(err)
		}
		deadline = time.Now().Add(10 * time.Second)
		for !describeInstance(t, e, "c", ci).AgentConnected {
			if time.Now().After(deadline) {
				t.Fatal("agentConnected not back 10s after a poll")
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("polls of unknown instances are refused", func(t *testing.T) {
		err := agentCall(t, ctx, srv.Endpoint(), "Poll", &agentapi.PollRequest{Cluster: "c", ContainerInstance: "ffffffffffffffffffffffffffffffff"}, new(agentapi.PollResponse))
		if err == nil {
			t.Fatal("poll of an unknown instance answered")
		}
	})
}

func TestTrunking(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	e.cluster(t, "c")
	before := describeInstance(t, e, "c", eniInstance(t, e, "c", 3, 10))
	must(e.ecs.PutAccountSetting(ctx, &ecs.PutAccountSettingInput{Name: types.SettingNameAwsvpcTrunking, Value: aws.String("enabled")}))(t)
	after := describeInstance(t, e, "c", eniInstance(t, e, "c", 3, 10))
	if remaining(before, "ENI") != 3 || remaining(after, "ENI") != 10 {
		t.Fatalf("ENI capacity before %d after %d, want 3 and 10", remaining(before, "ENI"), remaining(after, "ENI"))
	}
	has := func(ci types.ContainerInstance) bool {
		for _, a := range ci.Attributes {
			if aws.ToString(a.Name) == "ecs.awsvpc-trunk-id" {
				return true
			}
		}
		return false
	}
	if has(before) || !has(after) {
		t.Fatalf("trunk id before %v after %v", has(before), has(after))
	}
	for _, r := range after.RegisteredResources {
		if aws.ToString(r.Name) == "ENI_TRUNK" {
			t.Fatal("ENI_TRUNK left in the registered resources")
		}
	}
}
