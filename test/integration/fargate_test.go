package integration

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/wharfhq/wharf/internal/api/agentapi"
)

// fargatePool is where hosts offering Fargate capacity register.
const fargatePool = "~fargate"

func fargateTaskDef(t *testing.T, e *env, family string, edit func(*ecs.RegisterTaskDefinitionInput)) (string, error) {
	t.Helper()
	in := &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family), RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		NetworkMode: types.NetworkModeAwsvpc, Cpu: aws.String("256"), Memory: aws.String("512"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("busybox"), Essential: aws.Bool(true)}},
	}
	if edit != nil {
		edit(in)
	}
	out, err := e.ecs.RegisterTaskDefinition(ctxT(t), in)
	if err != nil {
		return "", err
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn), nil
}

var awsvpc = &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"subnet-1"}}}

func TestFargateTaskDefinitionRules(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name string
		edit func(*ecs.RegisterTaskDefinitionInput)
		msg  string
	}{
		{"bridge", func(in *ecs.RegisterTaskDefinitionInput) { in.NetworkMode = types.NetworkModeBridge }, "Fargate only supports network mode 'awsvpc'."},
		{"no cpu", func(in *ecs.RegisterTaskDefinitionInput) { in.Cpu = nil }, "Fargate requires that 'cpu' be defined at the task level."},
		{"no memory", func(in *ecs.RegisterTaskDefinitionInput) {
			in.Memory, in.ContainerDefinitions[0].Memory = nil, aws.Int32(256)
		}, "Fargate requires that 'memory' be defined at the task level."},
		{"bad pair", func(in *ecs.RegisterTaskDefinitionInput) { in.Memory = aws.String("4096") }, "No Fargate configuration exists for given values"},
		{"pidMode host", func(in *ecs.RegisterTaskDefinitionInput) { in.PidMode = types.PidModeHost }, "do not support pidMode 'host'"},
		{"host volume", func(in *ecs.RegisterTaskDefinitionInput) {
			in.Volumes = []types.Volume{{Name: aws.String("v"), Host: &types.HostVolumeProperties{SourcePath: aws.String("/tmp")}}}
		}, "do not support sourcePath"},
		{"privileged", func(in *ecs.RegisterTaskDefinitionInput) { in.ContainerDefinitions[0].Privileged = aws.Bool(true) }, "privileged"},
		{"links", func(in *ecs.RegisterTaskDefinitionInput) { in.ContainerDefinitions[0].Links = []string{"db"} }, "Links are not supported when networkMode=awsvpc"},
		{"devices", func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[0].LinuxParameters = &types.LinuxParameters{Devices: []types.Device{{HostPath: aws.String("/dev/null")}}}
		}, "devices"},
		{"capability", func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[0].LinuxParameters = &types.LinuxParameters{Capabilities: &types.KernelCapabilities{Add: []string{"NET_ADMIN"}}}
		}, "SYS_PTRACE"},
		{"json-file logs", func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[0].LogConfiguration = &types.LogConfiguration{LogDriver: types.LogDriverJsonFile}
		}, "log drivers"},
		{"small storage", func(in *ecs.RegisterTaskDefinitionInput) {
			in.EphemeralStorage = &types.EphemeralStorage{SizeInGiB: 20}
		}, "between 21 GiB and 200 GiB"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := fargateTaskDef(t, e, "bad", tc.edit)
			wantCode(t, err, "ClientException", tc.msg)
		})
	}
	if _, err := e.ecs.DescribeTaskDefinition(ctxT(t), &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("bad")}); err == nil {
		t.Fatal("a refused definition was registered")
	}

	// Sizes from ECS's table, and the string forms it normalises.
	for _, size := range [][3]string{{"256", "2048", "2048"}, {"1 vCPU", "8GB", "8192"}, {"16384", "122880", "122880"}} {
		arn, err := fargateTaskDef(t, e, "ok", func(in *ecs.RegisterTaskDefinitionInput) {
			in.Cpu, in.Memory = aws.String(size[0]), aws.String(size[1])
			in.EphemeralStorage = &types.EphemeralStorage{SizeInGiB: 50}
		})
		if err != nil {
			t.Fatalf("%v: %v", size, err)
		}
		td := must(e.ecs.DescribeTaskDefinition(ctxT(t), &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(arn)}))(t).TaskDefinition
		if aws.ToString(td.Memory) != size[2] || !containsCompat(td.Compatibilities, types.CompatibilityFargate) {
			t.Fatalf("%v: memory %s, compatibilities %v", size, aws.ToString(td.Memory), td.Compatibilities)
		}
	}
}

func containsCompat(cs []types.Compatibility, c types.Compatibility) bool {
	for _, x := range cs {
		if x == c {
			return true
		}
	}
	return false
}

func TestCapacityProviders(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	all := must(e.ecs.DescribeCapacityProviders(ctx, &ecs.DescribeCapacityProvidersInput{}))(t)
	if len(all.CapacityProviders) != 2 || aws.ToString(all.CapacityProviders[0].Name) != "FARGATE" || aws.ToString(all.CapacityProviders[1].Name) != "FARGATE_SPOT" ||
		all.CapacityProviders[0].Status != types.CapacityProviderStatusActive ||
		aws.ToString(all.CapacityProviders[0].CapacityProviderArn) != "arn:aws:ecs:us-east-1:123456789012:capacity-provider/FARGATE" {
		t.Fatalf("built-in providers %+v", all.CapacityProviders)
	}
	page := must(e.ecs.DescribeCapacityProviders(ctx, &ecs.DescribeCapacityProvidersInput{MaxResults: aws.Int32(1)}))(t)
	next := must(e.ecs.DescribeCapacityProviders(ctx, &ecs.DescribeCapacityProvidersInput{MaxResults: aws.Int32(1), NextToken: page.NextToken}))(t)
	if len(page.CapacityProviders) != 1 || page.NextToken == nil || len(next.CapacityProviders) != 1 || aws.ToString(next.CapacityProviders[0].Name) != "FARGATE_SPOT" {
		t.Fatalf("pages %+v then %+v", page, next)
	}
	missing := must(e.ecs.DescribeCapacityProviders(ctx, &ecs.DescribeCapacityProvidersInput{CapacityProviders: []string{"FARGATE", "nope"}}))(t)
	if len(missing.CapacityProviders) != 1 || len(missing.Failures) != 1 || aws.ToString(missing.Failures[0].Reason) != "MISSING" {
		t.Fatalf("with an unknown provider: %+v", missing)
	}
	_, err := e.ecs.DeleteCapacityProvider(ctx, &ecs.DeleteCapacityProviderInput{CapacityProvider: aws.String("FARGATE")})
	wantCode(t, err, "ClientException", "reserved")
	_, err = e.ecs.CreateCapacityProvider(ctx, &ecs.CreateCapacityProviderInput{Name: aws.String("fargate-mine"),
		AutoScalingGroupProvider: &types.AutoScalingGroupProvider{AutoScalingGroupArn: aws.String("arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:x")}})
	wantCode(t, err, "InvalidParameterException", "cannot begin with 'aws', 'ecs', or 'fargate'")

	e.cluster(t, "c")
	strategy := []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE"), Base: 1, Weight: 1}, {CapacityProvider: aws.String("FARGATE_SPOT"), Weight: 3}}
	_, err = e.ecs.PutClusterCapacityProviders(ctx, &ecs.PutClusterCapacityProvidersInput{Cluster: aws.String("c"),
		CapacityProviders: []string{"FARGATE"}, DefaultCapacityProviderStrategy: strategy})
	wantCode(t, err, "InvalidParameterException", "not associated with the cluster")
	for _, bad := range [][]types.CapacityProviderStrategyItem{
		{{CapacityProvider: aws.String("FARGATE"), Weight: 0}},
		{{CapacityProvider: aws.String("FARGATE"), Base: 1, Weight: 1}, {CapacityProvider: aws.String("FARGATE_SPOT"), Base: 1, Weight: 1}},
	} {
		_, err = e.ecs.PutClusterCapacityProviders(ctx, &ecs.PutClusterCapacityProvidersInput{Cluster: aws.String("c"),
			CapacityProviders: []string{"FARGATE", "FARGATE_SPOT"}, DefaultCapacityProviderStrategy: bad})
		wantCode(t, err, "InvalidParameterException", "capacity provider strategy")
	}
	cl := must(e.ecs.PutClusterCapacityProviders(ctx, &ecs.PutClusterCapacityProvidersInput{Cluster: aws.String("c"),
		CapacityProviders: []string{"FARGATE", "FARGATE_SPOT"}, DefaultCapacityProviderStrategy: strategy}))(t).Cluster
	if len(cl.CapacityProviders) != 2 || len(cl.DefaultCapacityProviderStrategy) != 2 {
		t.Fatalf("cluster %+v", cl)
	}

	// Tasks without a launch type follow the default strategy: one on
	// FARGATE (the base), then 1:3.
	for i := range 2 {
		e.instance(t, fargatePool, 4096, 8192, types.Attribute{Name: aws.String("ecs.availability-zone"), Value: aws.String([]string{"us-east-1a", "us-east-1b"}[i])})
	}
	arn := must(fargateTaskDef(t, e, "web", nil))(t)
	run := must(e.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String(arn), Count: aws.Int32(5), NetworkConfiguration: awsvpc}))(t)
	if len(run.Failures) != 0 || len(run.Tasks) != 5 {
		t.Fatalf("RunTask: %d tasks, failures %+v", len(run.Tasks), run.Failures)
	}
	providers, zones := map[string]int{}, map[string]int{}
	for _, task := range run.Tasks {
		providers[aws.ToString(task.CapacityProviderName)]++
		zones[aws.ToString(task.AvailabilityZone)]++
	}
	if providers["FARGATE"] != 2 || providers["FARGATE_SPOT"] != 3 || zones["us-east-1a"] < 2 || zones["us-east-1b"] < 2 {
		t.Fatalf("providers %v, zones %v", providers, zones)
	}
	desc := must(e.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("c"), Tasks: []string{aws.ToString(run.Tasks[0].TaskArn)}}))(t).Tasks[0]
	if desc.ContainerInstanceArn != nil || desc.LaunchType != types.LaunchTypeFargate || aws.ToString(desc.PlatformVersion) != "1.4.0" ||
		aws.ToString(desc.PlatformFamily) != "Linux" || desc.EphemeralStorage == nil || desc.EphemeralStorage.SizeInGiB != 20 ||
		len(desc.Attachments) != 1 || desc.Attachments[0].Status == nil || aws.ToString(desc.Attachments[0].Type) != "ElasticNetworkInterface" {
		t.Fatalf("Fargate task %+v", desc)
	}
	// The pool's hosts are no cluster's container instances.
	cis := must(e.ecs.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String("c")}))(t)
	if len(cis.ContainerInstanceArns) != 0 {
		t.Fatalf("cluster c lists %v", cis.ContainerInstanceArns)
	}
	_, err = e.ecs.PutClusterCapacityProviders(ctx, &ecs.PutClusterCapacityProvidersInput{Cluster: aws.String("c"),
		CapacityProviders: []string{"FARGATE"}, DefaultCapacityProviderStrategy: []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE"), Weight: 1}}})
	wantCode(t, err, "ResourceInUseException", "in use")
}

func TestFargateLaunchRules(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	e.cluster(t, "c")
	arn := must(fargateTaskDef(t, e, "web", nil))(t)
	ec2 := e.taskDef(t, "ec2", 64, 0)
	run := func(edit func(*ecs.RunTaskInput)) error {
		in := &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String(arn), LaunchType: types.LaunchTypeFargate, NetworkConfiguration: awsvpc}
		edit(in)
		_, err := e.ecs.RunTask(ctx, in)
		return err
	}
	wantCode(t, run(func(in *ecs.RunTaskInput) { in.NetworkConfiguration = nil }), "InvalidParameterException", "Network Configuration must be provided when networkMode 'awsvpc' is specified.")
	wantCode(t, run(func(in *ecs.RunTaskInput) { in.TaskDefinition = aws.String(ec2) }), "InvalidParameterException", "Task definition does not support launch_type FARGATE.")
	wantCode(t, run(func(in *ecs.RunTaskInput) {
		in.PlacementConstraints = []types.PlacementConstraint{{Type: types.PlacementConstraintTypeDistinctInstance}}
	}), "InvalidParameterException", "Placement constraints are not supported with FARGATE launch type.")
	wantCode(t, run(func(in *ecs.RunTaskInput) {
		in.PlacementStrategy = []types.PlacementStrategy{{Type: types.PlacementStrategyTypeRandom}}
	}), "InvalidParameterException", "Placement strategies are not supported with FARGATE launch type.")
	wantCode(t, run(func(in *ecs.RunTaskInput) { in.PlatformVersion = aws.String("9.9.9") }), "PlatformUnknownException", "The specified platform version does not exist.")
	wantCode(t, run(func(in *ecs.RunTaskInput) {
		in.LaunchType = ""
		in.CapacityProviderStrategy = []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE"), Weight: 1}}
	}), "InvalidParameterException", "not associated with the cluster")

	// With no host offering Fargate capacity, tasks fail as Fargate's do.
	out := must(e.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String(arn), LaunchType: types.LaunchTypeFargate,
		NetworkConfiguration: awsvpc, PlatformVersion: aws.String("LATEST")}))(t)
	if len(out.Tasks) != 0 || len(out.Failures) != 1 || aws.ToString(out.Failures[0].Reason) != "Capacity is unavailable at this time. Please try again later or in a different availability zone" {
		t.Fatalf("without capacity: %+v", out)
	}

	// A FARGATE service shows Fargate's platform.
	svc := must(e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("web"), TaskDefinition: aws.String(arn),
		DesiredCount: aws.Int32(0), LaunchType: types.LaunchTypeFargate, NetworkConfiguration: awsvpc}))(t).Service
	if svc.LaunchType != types.LaunchTypeFargate || aws.ToString(svc.PlatformVersion) != "LATEST" || aws.ToString(svc.PlatformFamily) != "Linux" ||
		aws.ToString(svc.Deployments[0].PlatformVersion) != "LATEST" {
		t.Fatalf("service %+v", svc)
	}
}

// TestSpotInterruption interrupts a FARGATE_SPOT task through the
// operator's call: the task is stopping with ECS's stop code and reason,
// its host learns how long the notice leaves it, and only running Spot
// tasks can be interrupted.
func TestSpotInterruption(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	e.cluster(t, "c")
	host := e.instance(t, fargatePool, 4096, 8192)
	must(e.ecs.PutClusterCapacityProviders(ctx, &ecs.PutClusterCapacityProvidersInput{Cluster: aws.String("c"),
		CapacityProviders: []string{"FARGATE", "FARGATE_SPOT"}, DefaultCapacityProviderStrategy: []types.CapacityProviderStrategyItem{}}))(t)
	arn := must(fargateTaskDef(t, e, "web", nil))(t)
	launch := func(in *ecs.RunTaskInput) string {
		in.Cluster, in.TaskDefinition, in.NetworkConfiguration = aws.String("c"), aws.String(arn), awsvpc
		out := must(e.ecs.RunTask(ctx, in))(t)
		if len(out.Tasks) != 1 {
			t.Fatalf("RunTask: %+v", out.Failures)
		}
		task := aws.ToString(out.Tasks[0].TaskArn)
		must(e.ecs.SubmitTaskStateChange(ctx, &ecs.SubmitTaskStateChangeInput{Cluster: aws.String("c"), Task: aws.String(task), Status: aws.String("RUNNING")}))(t)
		return task
	}
	spot := launch(&ecs.RunTaskInput{CapacityProviderStrategy: []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE_SPOT"), Weight: 1}}})
	regular := launch(&ecs.RunTaskInput{LaunchType: types.LaunchTypeFargate})

	interrupt := func(task string) (*agentapi.InterruptSpotTaskResponse, error) {
		out := new(agentapi.InterruptSpotTaskResponse)
		return out, agentCall(t, ctx, e.srv.Endpoint(), "InterruptSpotTask", &agentapi.InterruptSpotTaskRequest{Cluster: "c", Task: task}, out)
	}
	refused := func(task, want string) {
		t.Helper()
		_, err := interrupt(task)
		var ae *agentapi.Error
		if !errors.As(err, &ae) || ae.Code != "InvalidParameterException" || !strings.Contains(ae.Message, want) {
			t.Fatalf("interrupting %q: %v, want InvalidParameterException %q", task, err, want)
		}
	}
	refused(regular, "is not a running FARGATE_SPOT task")
	refused("0123456789abcdef0123456789abcdef", "The referenced task was not found.")
	refused("", "task")

	out, err := interrupt(spot)
	if err != nil {
		t.Fatal(err)
	}
	if got := out.Task; got.DesiredStatus != "STOPPED" || got.StopCode != "SpotInterruption" || got.StoppedReason != "Your Spot Task was interrupted." {
		t.Fatalf("interrupted task: desired %s, stopCode %s, reason %q", got.DesiredStatus, got.StopCode, got.StoppedReason)
	}
	refused(spot, "is not a running FARGATE_SPOT task")

	var poll agentapi.PollResponse
	if err := agentCall(t, ctx, e.srv.Endpoint(), "Poll", &agentapi.PollRequest{Cluster: fargatePool, ContainerInstance: host}, &poll); err != nil {
		t.Fatal(err)
	}
	within := map[string]int32{}
	for _, at := range poll.Tasks {
		within[at.Task.TaskArn] = at.StopWithinSeconds
	}
	if len(within) != 2 || within[spot] < 110 || within[spot] > 120 || within[regular] != 0 {
		t.Fatalf("the host's poll: stop within %v; want the Spot task's notice (120 s) and none for the other", within)
	}
}
