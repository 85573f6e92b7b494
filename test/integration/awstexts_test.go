package integration

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/wharfhq/wharf/internal/testenv"
)

// TestAWSErrorTexts checks errors against AWS's: the code and the whole
// message as ECS sends them, with nothing of Wharf's appended (Wharf's hints
// go to the server log). Each case says where AWS's text was seen.
func TestAWSErrorTexts(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	e.cluster(t, "c")
	e.taskDef(t, "app", 64, 0)
	gone := e.taskDef(t, "gone", 64, 0)
	must(e.ecs.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String(gone)}))(t)
	must(e.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("vpc"), NetworkMode: types.NetworkModeAwsvpc,
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("busybox"), Memory: aws.Int32(64)}},
	}))(t)
	must(e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("busy"), TaskDefinition: aws.String("app"), DesiredCount: aws.Int32(1)}))(t)
	must(e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("idle"), TaskDefinition: aws.String("app"), DesiredCount: aws.Int32(0)}))(t)
	must(e.ecs.DeleteService(ctx, &ecs.DeleteServiceInput{Cluster: aws.String("c"), Service: aws.String("idle")}))(t)

	e.cluster(t, "dead")
	must(e.ecs.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String("dead")}))(t)
	e.cluster(t, "held")
	e.instance(t, "held", 1024, 1024)
	e.cluster(t, "served")
	must(e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("served"), ServiceName: aws.String("s"), TaskDefinition: aws.String("app"), DesiredCount: aws.Int32(0)}))(t)
	e.cluster(t, "ran")
	ci := e.instance(t, "ran", 1024, 1024)
	must(e.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("ran"), TaskDefinition: aws.String("app")}))(t)
	must(e.ecs.DeregisterContainerInstance(ctx, &ecs.DeregisterContainerInstanceInput{Cluster: aws.String("ran"), ContainerInstance: aws.String(ci), Force: aws.Bool(true)}))(t)

	register := func(edit func(*ecs.RegisterTaskDefinitionInput)) error {
		in := &ecs.RegisterTaskDefinitionInput{Family: aws.String("texts"), ContainerDefinitions: []types.ContainerDefinition{
			{Name: aws.String("app"), Image: aws.String("busybox"), Memory: aws.Int32(64)},
		}}
		edit(in)
		_, err := e.ecs.RegisterTaskDefinition(ctx, in)
		return err
	}
	fargate := func(in *ecs.RegisterTaskDefinitionInput) {
		in.RequiresCompatibilities = []types.Compatibility{types.CompatibilityFargate}
		in.NetworkMode, in.Cpu, in.Memory = types.NetworkModeAwsvpc, aws.String("256"), aws.String("512")
	}
	run := func(edit func(*ecs.RunTaskInput)) error {
		in := &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String("app")}
		edit(in)
		_, err := e.ecs.RunTask(ctx, in)
		return err
	}
	const inactiveCluster = "The specified cluster is inactive. Specify an active cluster and try again."

	cases := []struct {
		name, code, msg string
		call            func() error
	}{
		// moto's ClusterNotFoundException; octochat-aws#9 (a GitHub Actions log).
		{"unknown cluster", "ClusterNotFoundException", "Cluster not found.", func() error {
			_, err := e.ecs.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("nope")})
			return err
		}},
		// moto's ServiceNotFoundException.
		{"unknown service", "ServiceNotFoundException", "Service not found.", func() error {
			_, err := e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("ghost"), DesiredCount: aws.Int32(1)})
			return err
		}},
		// Callers match "Service was not ACTIVE" (ECS clean-up code in the
		// public index); an emulator built from captures of ECS sends it with
		// the period.
		{"deleted service", "ServiceNotActiveException", "Service was not ACTIVE.", func() error {
			_, err := e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("idle"), DesiredCount: aws.Int32(1)})
			return err
		}},
		// moto's DeleteService.
		{"delete a scaled service", "InvalidParameterException", "The service cannot be stopped while it is scaled above 0.", func() error {
			_, err := e.ecs.DeleteService(ctx, &ecs.DeleteServiceInput{Cluster: aws.String("c"), Service: aws.String("busy")})
			return err
		}},
		// Terraform users' logs: "InvalidParameterException: Creation of
		// service was not idempotent."
		{"create an existing service", "InvalidParameterException", "Creation of service was not idempotent.", func() error {
			_, err := e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("busy"), TaskDefinition: aws.String("app"), DesiredCount: aws.Int32(1)})
			return err
		}},
		// A rollback log: "(ClientException) when calling the UpdateService
		// operation: TaskDefinition is inactive".
		{"update to an inactive task definition", "ClientException", "TaskDefinition is inactive", func() error {
			_, err := e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("busy"), TaskDefinition: aws.String(gone)})
			return err
		}},
		// Callers of RunTask retry on "InvalidParameterException:
		// TaskDefinition is inactive".
		{"run an inactive task definition", "InvalidParameterException", "TaskDefinition is inactive", func() error {
			return run(func(in *ecs.RunTaskInput) { in.TaskDefinition = aws.String(gone) })
		}},
		// Ruby callers compare e.message == 'No Container Instances were
		// found in your cluster.' on InvalidParameterException.
		{"run without instances", "InvalidParameterException", "No Container Instances were found in your cluster.", func() error {
			return run(func(*ecs.RunTaskInput) {})
		}},
		// Airflow's ECS executor tests and other callers of StopTask.
		{"stop an unknown task", "InvalidParameterException", "The referenced task was not found.", func() error {
			_, err := e.ecs.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String("c"), Task: aws.String("0123456789abcdef0123456789abcdef")})
			return err
		}},
		// sil-org/ecs-deploy#145: "(ClientException) when calling the
		// DescribeTaskDefinition operation: Unable to describe task
		// definition."
		{"describe an unknown task definition", "ClientException", "Unable to describe task definition.", func() error {
			_, err := e.ecs.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("app:9")})
			return err
		}},
		// moto's TaskDefinitionMissingPropertyError.
		{"container without image", "ClientException", "Container.image should not be null or empty.", func() error {
			return register(func(in *ecs.RegisterTaskDefinitionInput) { in.ContainerDefinitions[0].Image = nil })
		}},
		{"container without name", "ClientException", "Container.name should not be null or empty.", func() error {
			return register(func(in *ecs.RegisterTaskDefinitionInput) { in.ContainerDefinitions[0].Name = nil })
		}},
		// The Amazon ECS Developer Guide, "Invalid CPU or memory value
		// specified".
		{"task cpu", "ClientException", "Invalid 'cpu' setting for task. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.", func() error {
			return register(func(in *ecs.RegisterTaskDefinitionInput) { in.Cpu = aws.String("lots") })
		}},
		// A Terraform log with ECS's request id.
		{"fargate size", "ClientException", "No Fargate configuration exists for given values: 256 CPU, 4096 memory. See the Amazon ECS documentation for the valid values.", func() error {
			return register(func(in *ecs.RegisterTaskDefinitionInput) { fargate(in); in.Memory = aws.String("4096") })
		}},
		// Checked against the API by a policy project, and in Fargate
		// migration notes.
		{"fargate network mode", "ClientException", "Fargate only supports network mode 'awsvpc'.", func() error {
			return register(func(in *ecs.RegisterTaskDefinitionInput) { fargate(in); in.NetworkMode = types.NetworkModeBridge })
		}},
		// aws/aws-cdk#29619 quotes CloudFormation quoting ECS.
		{"fargate pidMode host", "ClientException", "Tasks using the Fargate launch type do not support pidMode 'host'. The supported value for pidMode is 'task'.", func() error {
			return register(func(in *ecs.RegisterTaskDefinitionInput) { fargate(in); in.PidMode = types.PidModeHost })
		}},
		// cn-terraform/terraform-aws-ecs-fargate#2.
		{"fargate ipcMode", "ClientException", "Tasks using the Fargate launch type do not support ipcMode.", func() error {
			return register(func(in *ecs.RegisterTaskDefinitionInput) { fargate(in); in.IpcMode = types.IpcModeHost })
		}},
		// Terraform users' logs: "ClientException: When networkMode=awsvpc,
		// the host ports and container ports in port mappings must match."
		{"awsvpc port mapping", "ClientException", "When networkMode=awsvpc, the host ports and container ports in port mappings must match.", func() error {
			return register(func(in *ecs.RegisterTaskDefinitionInput) {
				in.NetworkMode = types.NetworkModeAwsvpc
				in.ContainerDefinitions[0].PortMappings = []types.PortMapping{{ContainerPort: aws.Int32(80), HostPort: aws.Int32(8080)}}
			})
		}},
		// A policy project's rules quote RegisterTaskDefinition's refusals
		// of awsvpc containers; amazon-ecs-cli's notes quote the one of
		// links.
		{"awsvpc links", "ClientException", "Links are not supported when networkMode=awsvpc", func() error {
			return register(func(in *ecs.RegisterTaskDefinitionInput) {
				in.NetworkMode, in.ContainerDefinitions[0].Links = types.NetworkModeAwsvpc, []string{"db"}
			})
		}},
		{"awsvpc hostname", "ClientException", "hostname is not supported on container when networkMode=awsvpc", func() error {
			return register(func(in *ecs.RegisterTaskDefinitionInput) {
				in.NetworkMode, in.ContainerDefinitions[0].Hostname = types.NetworkModeAwsvpc, aws.String("web")
			})
		}},
		{"awsvpc dns servers", "ClientException", "DNS servers are not supported on container when networkMode=awsvpc", func() error {
			return register(func(in *ecs.RegisterTaskDefinitionInput) {
				in.NetworkMode, in.ContainerDefinitions[0].DnsServers = types.NetworkModeAwsvpc, []string{"10.0.0.2"}
			})
		}},
		{"awsvpc extra hosts", "ClientException", "Extra hosts are not supported on container when networkMode=awsvpc", func() error {
			return register(func(in *ecs.RegisterTaskDefinitionInput) {
				in.NetworkMode = types.NetworkModeAwsvpc
				in.ContainerDefinitions[0].ExtraHosts = []types.HostEntry{{Hostname: aws.String("db"), IpAddress: aws.String("10.0.0.9")}}
			})
		}},
		{"awsvpc disable networking", "ClientException", "Disable Networking is not supported on container when networkMode=awsvpc", func() error {
			return register(func(in *ecs.RegisterTaskDefinitionInput) {
				in.NetworkMode, in.ContainerDefinitions[0].DisableNetworking = types.NetworkModeAwsvpc, aws.Bool(true)
			})
		}},
		// DeleteCluster errors in users' logs and test notes.
		{"delete a cluster with instances", "ClusterContainsContainerInstancesException", "The Cluster cannot be deleted while Container Instances are active or draining.", func() error {
			_, err := e.ecs.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String("held")})
			return err
		}},
		{"delete a cluster with services", "ClusterContainsServicesException", "The Cluster cannot be deleted while Services are active.", func() error {
			_, err := e.ecs.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String("served")})
			return err
		}},
		{"delete a cluster with tasks", "ClusterContainsTasksException", "The Cluster cannot be deleted while Tasks are active.", func() error {
			_, err := e.ecs.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String("ran")})
			return err
		}},
		// gruntwork-io/cloud-nuke#145 (TagResource on a cluster ListClusters
		// still listed); the Terraform provider treats the same text as
		// "parent not found" when reading tags.
		{"tag an inactive cluster", "InvalidParameterException", inactiveCluster, func() error {
			_, err := e.ecs.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: aws.String("arn:aws:ecs:us-east-1:123456789012:cluster/dead"), Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
			return err
		}},
		{"list tags of an inactive cluster", "InvalidParameterException", inactiveCluster, func() error {
			_, err := e.ecs.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: aws.String("arn:aws:ecs:us-east-1:123456789012:cluster/dead")})
			return err
		}},
		// ECS's enum errors: moto's "launch type should be one of
		// [EC2,FARGATE,EXTERNAL]"; the others name the member.
		{"launch type", "InvalidParameterException", "launch type should be one of [EC2,FARGATE,EXTERNAL,MANAGED_INSTANCES]", func() error {
			_, err := e.ecs.ListServices(ctx, &ecs.ListServicesInput{Cluster: aws.String("c"), LaunchType: "SPOT"})
			return err
		}},
		{"scheduling strategy", "InvalidParameterException", "Scheduling strategy should be one of [REPLICA,DAEMON]", func() error {
			_, err := e.ecs.ListServices(ctx, &ecs.ListServicesInput{Cluster: aws.String("c"), SchedulingStrategy: "SOMETIMES"})
			return err
		}},
		{"include", "InvalidParameterException", "include should be one of [TAGS]", func() error {
			_, err := e.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("c"), Services: []string{"busy"}, Include: []types.ServiceField{"EVENTS"}})
			return err
		}},
		// libcluster's ECS strategy logs {"InvalidParameterException",
		// "Tasks cannot be empty."}.
		{"describe no tasks", "InvalidParameterException", "Tasks cannot be empty.", func() error {
			_, err := e.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("c"), Tasks: []string{}})
			return err
		}},
		// bugcrowd/ecs-deployment-monitor#5: the AWS SDK for JavaScript
		// throwing "InvalidParameterException: Container instance cannot be
		// empty."
		{"describe no container instances", "InvalidParameterException", "Container instance cannot be empty.", func() error {
			_, err := e.ecs.DescribeContainerInstances(ctx, &ecs.DescribeContainerInstancesInput{Cluster: aws.String("c"), ContainerInstances: []string{}})
			return err
		}},
		// moto's awsvpc network configuration check.
		{"awsvpc without subnets", "InvalidParameterException", "subnets can not be empty.", func() error {
			return run(func(in *ecs.RunTaskInput) {
				in.TaskDefinition = aws.String("vpc")
				in.NetworkConfiguration = &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{}}}
			})
		}},
		// Terraform users' "InvalidParameterException: Network Configuration
		// is not valid for the given networkMode of this task definition."
		{"network configuration of a bridge task", "InvalidParameterException", "Network Configuration is not valid for the given networkMode of this task definition.", func() error {
			return run(func(in *ecs.RunTaskInput) {
				in.NetworkConfiguration = &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"subnet-1"}}}
			})
		}},
		// sil-org/ecs-deploy#134, aws/aws-cli#3983.
		{"run an EC2 definition on FARGATE", "InvalidParameterException", "Task definition does not support launch_type FARGATE.", func() error {
			return run(func(in *ecs.RunTaskInput) { in.LaunchType = types.LaunchTypeFargate })
		}},
		{"serve an EC2 definition on FARGATE", "InvalidParameterException", "Task definition does not support launch_type FARGATE.", func() error {
			_, err := e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("fg"), TaskDefinition: aws.String("app"), DesiredCount: aws.Int32(1), LaunchType: types.LaunchTypeFargate})
			return err
		}},
		// aws/amazon-ecs-cli#1047.
		{"platform version on EC2", "InvalidParameterException", "The platform version must be null when specifying an EC2 launch type.", func() error {
			return run(func(in *ecs.RunTaskInput) { in.PlatformVersion = aws.String("LATEST") })
		}},
		{"update platform version on EC2", "InvalidParameterException", "The platform version must be null when specifying an EC2 launch type.", func() error {
			_, err := e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("busy"), PlatformVersion: aws.String("1.4.0")})
			return err
		}},
		// terraform-linters/tflint-ruleset-aws#349.
		{"launch type and capacity providers", "InvalidParameterException", "Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again.", func() error {
			return run(func(in *ecs.RunTaskInput) {
				in.LaunchType = types.LaunchTypeEc2
				in.CapacityProviderStrategy = []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("spot")}}
			})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, tc.call(), tc.code, tc.msg)
		})
	}
}

// TestECSShapes checks answers whose shape ECS fixes: empty lists and
// defaults in task definitions, and failures naming missing services.
func TestECSShapes(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	e.cluster(t, "c")

	t.Run("task definition", func(t *testing.T) {
		// botocore's examples of RegisterTaskDefinition and
		// DescribeTaskDefinition: environment, mountPoints, portMappings
		// and volumesFrom of each container and the task's volumes are
		// empty lists, not absent.
		e.taskDef(t, "plain", 64, 0)
		status, body, _ := rawCall(t, e.srv.Endpoint(), "DescribeTaskDefinition", `{"taskDefinition":"plain"}`, testenv.AccessKeyID, testenv.SecretAccessKey, testenv.Region, time.Now())
		if status != 200 {
			t.Fatalf("describe: %d %v", status, body)
		}
		td := body["taskDefinition"].(map[string]any)
		for _, k := range []string{"volumes", "placementConstraints"} {
			if l, ok := td[k].([]any); !ok || len(l) != 0 {
				t.Errorf("taskDefinition.%s is %v, want []", k, td[k])
			}
		}
		cd := td["containerDefinitions"].([]any)[0].(map[string]any)
		for _, k := range []string{"environment", "mountPoints", "portMappings", "volumesFrom"} {
			if l, ok := cd[k].([]any); !ok || len(l) != 0 {
				t.Errorf("containerDefinitions[0].%s is %v, want []", k, cd[k])
			}
		}
	})

	t.Run("EFS root directory", func(t *testing.T) {
		// ECS fills rootDirectory "/" when it is left out
		// (CircleCI-Public/aws-ecs-orb#105; Terraform state in
		// hashicorp/terraform-provider-aws#26793).
		out := must(e.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
			Family:  aws.String("efs"),
			Volumes: []types.Volume{{Name: aws.String("data"), EfsVolumeConfiguration: &types.EFSVolumeConfiguration{FileSystemId: aws.String("fs-0123456789abcdef0")}}},
			ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("busybox"), Memory: aws.Int32(64),
				MountPoints: []types.MountPoint{{SourceVolume: aws.String("data"), ContainerPath: aws.String("/data")}}}},
		}))(t)
		if got := aws.ToString(out.TaskDefinition.Volumes[0].EfsVolumeConfiguration.RootDirectory); got != "/" {
			t.Fatalf("rootDirectory %q, want /", got)
		}
	})

	t.Run("missing service", func(t *testing.T) {
		// ECS names a missing service in the short form, without the
		// cluster (aws-actions/amazon-ecs-deploy-task-definition#312,
		// #369 and #544 print failures[0].arn; moto does the same), and
		// echoes an ARN it was given.
		given := "arn:aws:ecs:us-east-1:123456789012:service/c/other"
		out := must(e.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("c"), Services: []string{"ghost", given}}))(t)
		if len(out.Services) != 0 || len(out.Failures) != 2 {
			t.Fatalf("describe %+v %+v", out.Services, out.Failures)
		}
		for i, want := range []string{"arn:aws:ecs:us-east-1:123456789012:service/ghost", given} {
			f := out.Failures[i]
			if aws.ToString(f.Arn) != want || aws.ToString(f.Reason) != "MISSING" || f.Detail != nil {
				t.Errorf("failure %d: arn %q reason %q detail %v, want %s MISSING", i, aws.ToString(f.Arn), aws.ToString(f.Reason), f.Detail, want)
			}
		}
	})
}
