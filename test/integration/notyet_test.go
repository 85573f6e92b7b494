package integration

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// TestNotSupportedYet checks that what Wharf cannot honour yet is refused,
// naming the member as on the wire, rather than accepted and dropped: no
// task ever starts without a setting it asked for.
func TestNotSupportedYet(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	e.cluster(t, "c")
	e.instance(t, "c", 4096, 4096)
	e.taskDef(t, "app", 64, 0)
	must(e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("s"), TaskDefinition: aws.String("app"), DesiredCount: aws.Int32(0)}))(t)
	notYet := func(field string) string { return field + " is not supported by Wharf yet." }

	t.Run("task definitions", func(t *testing.T) {
		container := func(edit func(*types.ContainerDefinition)) func(*ecs.RegisterTaskDefinitionInput) {
			return func(in *ecs.RegisterTaskDefinitionInput) { edit(&in.ContainerDefinitions[1]) }
		}
		cases := []struct {
			field string
			edit  func(*ecs.RegisterTaskDefinitionInput)
		}{
			{"containerDefinitions[1].secrets", container(func(cd *types.ContainerDefinition) {
				cd.Secrets = []types.Secret{{Name: aws.String("DB"), ValueFrom: aws.String("arn:aws:ssm:us-east-1:123456789012:parameter/db")}}
			})},
			{"containerDefinitions[1].repositoryCredentials", container(func(cd *types.ContainerDefinition) {
				cd.RepositoryCredentials = &types.RepositoryCredentials{CredentialsParameter: aws.String("arn:aws:secretsmanager:us-east-1:123456789012:secret:hub")}
			})},
			{"containerDefinitions[1].firelensConfiguration", container(func(cd *types.ContainerDefinition) {
				cd.FirelensConfiguration = &types.FirelensConfiguration{Type: types.FirelensConfigurationTypeFluentbit}
			})},
			{"containerDefinitions[1].environmentFiles", container(func(cd *types.ContainerDefinition) {
				cd.EnvironmentFiles = []types.EnvironmentFile{{Type: types.EnvironmentFileTypeS3, Value: aws.String("arn:aws:s3:::bucket/app.env")}}
			})},
			{"containerDefinitions[1].resourceRequirements", container(func(cd *types.ContainerDefinition) {
				cd.ResourceRequirements = []types.ResourceRequirement{{Type: types.ResourceTypeGpu, Value: aws.String("1")}}
			})},
			{"containerDefinitions[1].logConfiguration.logDriver splunk", container(func(cd *types.ContainerDefinition) {
				cd.LogConfiguration = &types.LogConfiguration{LogDriver: types.LogDriverSplunk}
			})},
			{"containerDefinitions[1].logConfiguration.logDriver awsfirelens", container(func(cd *types.ContainerDefinition) {
				cd.LogConfiguration = &types.LogConfiguration{LogDriver: types.LogDriverAwsfirelens}
			})},
			{"containerDefinitions[1].logConfiguration.secretOptions", container(func(cd *types.ContainerDefinition) {
				cd.LogConfiguration = &types.LogConfiguration{LogDriver: types.LogDriverAwslogs, SecretOptions: []types.Secret{{Name: aws.String("k"), ValueFrom: aws.String("arn:aws:ssm:us-east-1:123456789012:parameter/k")}}}
			})},
			{"containerDefinitions[1].linuxParameters.devices", container(func(cd *types.ContainerDefinition) {
				cd.LinuxParameters = &types.LinuxParameters{Devices: []types.Device{{HostPath: aws.String("/dev/fuse")}}}
			})},
			{"containerDefinitions[1].linuxParameters.maxSwap", container(func(cd *types.ContainerDefinition) {
				cd.LinuxParameters = &types.LinuxParameters{MaxSwap: aws.Int32(0)}
			})},
			{"containerDefinitions[1].portMappings[0].containerPortRange", container(func(cd *types.ContainerDefinition) {
				cd.PortMappings = []types.PortMapping{{ContainerPortRange: aws.String("8000-8010")}}
			})},
			{"containerDefinitions[1].dockerSecurityOptions", container(func(cd *types.ContainerDefinition) {
				cd.DockerSecurityOptions = []string{"no-new-privileges"}
			})},
			{"containerDefinitions[1].pseudoTerminal", container(func(cd *types.ContainerDefinition) { cd.PseudoTerminal = aws.Bool(true) })},
			{"containerDefinitions[1].restartPolicy", container(func(cd *types.ContainerDefinition) {
				cd.RestartPolicy = &types.ContainerRestartPolicy{Enabled: aws.Bool(true)}
			})},
			{"proxyConfiguration", func(in *ecs.RegisterTaskDefinitionInput) {
				in.ProxyConfiguration = &types.ProxyConfiguration{ContainerName: aws.String("app")}
			}},
			{"pidMode", func(in *ecs.RegisterTaskDefinitionInput) { in.PidMode = types.PidModeTask }},
			{"ipcMode", func(in *ecs.RegisterTaskDefinitionInput) { in.IpcMode = types.IpcModeNone }},
			{"enableFaultInjection", func(in *ecs.RegisterTaskDefinitionInput) { in.EnableFaultInjection = aws.Bool(true) }},
		}
		for _, tc := range cases {
			t.Run(tc.field, func(t *testing.T) {
				in := &ecs.RegisterTaskDefinitionInput{Family: aws.String("refused"), ContainerDefinitions: []types.ContainerDefinition{
					{Name: aws.String("side"), Image: aws.String("busybox"), Memory: aws.Int32(16)},
					{Name: aws.String("app"), Image: aws.String("busybox"), Memory: aws.Int32(64)},
				}}
				tc.edit(in)
				_, err := e.ecs.RegisterTaskDefinition(ctx, in)
				wantError(t, err, "ClientException", notYet(tc.field))
			})
		}
		fams := must(e.ecs.ListTaskDefinitionFamilies(ctx, &ecs.ListTaskDefinitionFamiliesInput{FamilyPrefix: aws.String("refused")}))(t)
		if len(fams.Families) != 0 {
			t.Fatalf("refused registrations left families %v", fams.Families)
		}
		// What works is still accepted: awslogs output stays in the
		// engine's log on the node.
		must(e.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("logs"), ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("app"), Image: aws.String("busybox"), Memory: aws.Int32(64),
			LogConfiguration: &types.LogConfiguration{LogDriver: types.LogDriverAwslogs, Options: map[string]string{"awslogs-group": "/ecs/app"}},
		}}}))(t)
	})

	t.Run("volumes register but do not launch", func(t *testing.T) {
		volumes := map[string]types.Volume{
			"volumes[0].efsVolumeConfiguration":                      {Name: aws.String("v"), EfsVolumeConfiguration: &types.EFSVolumeConfiguration{FileSystemId: aws.String("fs-1")}},
			"volumes[0].configuredAtLaunch":                          {Name: aws.String("v"), ConfiguredAtLaunch: aws.Bool(true)},
			"volumes[0].dockerVolumeConfiguration.driver rexray/ebs": {Name: aws.String("v"), DockerVolumeConfiguration: &types.DockerVolumeConfiguration{Driver: aws.String("rexray/ebs"), Scope: types.ScopeShared}},
		}
		for field, v := range volumes {
			t.Run(field, func(t *testing.T) {
				out := must(e.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("vol"), Volumes: []types.Volume{v},
					ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("busybox"), Memory: aws.Int32(64)}}}))(t)
				td := aws.ToString(out.TaskDefinition.TaskDefinitionArn)
				_, err := e.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String(td)})
				wantError(t, err, "ClientException", notYet(field))
				_, err = e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("vol"), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(1)})
				wantError(t, err, "ClientException", notYet(field))
				_, err = e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("s"), TaskDefinition: aws.String(td)})
				wantError(t, err, "ClientException", notYet(field))
			})
		}
	})

	t.Run("launches", func(t *testing.T) {
		cases := []struct {
			field string
			edit  func(*ecs.RunTaskInput)
		}{
			{"enableECSManagedTags", func(in *ecs.RunTaskInput) { in.EnableECSManagedTags = true }},
			{"enableExecuteCommand", func(in *ecs.RunTaskInput) { in.EnableExecuteCommand = true }},
			{"volumeConfigurations", func(in *ecs.RunTaskInput) {
				in.VolumeConfigurations = []types.TaskVolumeConfiguration{{Name: aws.String("v"), ManagedEBSVolume: &types.TaskManagedEBSVolumeConfiguration{RoleArn: aws.String("arn:aws:iam::123456789012:role/ebs")}}}
			}},
			{"overrides.containerOverrides[0].environmentFiles", func(in *ecs.RunTaskInput) {
				in.Overrides = &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{Name: aws.String("app"),
					EnvironmentFiles: []types.EnvironmentFile{{Type: types.EnvironmentFileTypeS3, Value: aws.String("arn:aws:s3:::bucket/app.env")}}}}}
			}},
			{"overrides.ephemeralStorage", func(in *ecs.RunTaskInput) {
				in.Overrides = &types.TaskOverride{EphemeralStorage: &types.EphemeralStorage{SizeInGiB: 30}}
			}},
			{"launchType MANAGED_INSTANCES", func(in *ecs.RunTaskInput) {
				in.LaunchType, in.TaskDefinition = types.LaunchTypeManagedInstances, aws.String("managed")
			}},
		}
		must(e.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("managed"), RequiresCompatibilities: []types.Compatibility{types.CompatibilityManagedInstances},
			ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("busybox"), Memory: aws.Int32(64)}}}))(t)
		for _, tc := range cases {
			t.Run(tc.field, func(t *testing.T) {
				in := &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String("app")}
				tc.edit(in)
				_, err := e.ecs.RunTask(ctx, in)
				wantError(t, err, "ClientException", notYet(tc.field))
			})
		}
		_, err := e.ecs.StartTask(ctx, &ecs.StartTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String("app"), ContainerInstances: []string{"0123456789abcdef0123456789abcdef"}, EnableExecuteCommand: true})
		wantError(t, err, "ClientException", notYet("enableExecuteCommand"))
		if out := must(e.ecs.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("c")}))(t); len(out.TaskArns) != 0 {
			t.Fatalf("refused launches started %v", out.TaskArns)
		}
	})

	t.Run("services", func(t *testing.T) {
		alarms := &types.DeploymentConfiguration{Alarms: &types.DeploymentAlarms{AlarmNames: []string{"errors"}, Enable: true}}
		cases := []struct {
			field  string
			create func(*ecs.CreateServiceInput)
			update func(*ecs.UpdateServiceInput)
		}{
			{"loadBalancers",
				func(in *ecs.CreateServiceInput) {
					in.LoadBalancers = []types.LoadBalancer{{TargetGroupArn: aws.String("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/1"), ContainerName: aws.String("app"), ContainerPort: aws.Int32(80)}}
				},
				func(in *ecs.UpdateServiceInput) {
					in.LoadBalancers = []types.LoadBalancer{{LoadBalancerName: aws.String("web"), ContainerName: aws.String("app"), ContainerPort: aws.Int32(80)}}
				}},
			{"deploymentConfiguration.alarms",
				func(in *ecs.CreateServiceInput) { in.DeploymentConfiguration = alarms },
				func(in *ecs.UpdateServiceInput) { in.DeploymentConfiguration = alarms }},
			{"deploymentConfiguration.strategy BLUE_GREEN",
				func(in *ecs.CreateServiceInput) {
					in.DeploymentConfiguration = &types.DeploymentConfiguration{Strategy: types.DeploymentStrategyBlueGreen}
				},
				func(in *ecs.UpdateServiceInput) {
					in.DeploymentConfiguration = &types.DeploymentConfiguration{Strategy: types.DeploymentStrategyBlueGreen}
				}},
			{"deploymentConfiguration.lifecycleHooks",
				func(in *ecs.CreateServiceInput) {
					in.DeploymentConfiguration = &types.DeploymentConfiguration{LifecycleHooks: []types.DeploymentLifecycleHook{{
						HookTargetArn: aws.String("arn:aws:lambda:us-east-1:123456789012:function:hook"), RoleArn: aws.String("arn:aws:iam::123456789012:role/hook"),
						LifecycleStages: []types.DeploymentLifecycleHookStage{types.DeploymentLifecycleHookStagePreScaleUp},
					}}}
				},
				func(in *ecs.UpdateServiceInput) {
					in.DeploymentConfiguration = &types.DeploymentConfiguration{LifecycleHooks: []types.DeploymentLifecycleHook{{
						HookTargetArn: aws.String("arn:aws:lambda:us-east-1:123456789012:function:hook"), RoleArn: aws.String("arn:aws:iam::123456789012:role/hook"),
						LifecycleStages: []types.DeploymentLifecycleHookStage{types.DeploymentLifecycleHookStagePostScaleUp},
					}}}
				}},
			{"deploymentController.type CODE_DEPLOY",
				func(in *ecs.CreateServiceInput) {
					in.DeploymentController = &types.DeploymentController{Type: types.DeploymentControllerTypeCodeDeploy}
				},
				func(in *ecs.UpdateServiceInput) {
					in.DeploymentController = &types.DeploymentController{Type: types.DeploymentControllerTypeCodeDeploy}
				}},
			{"enableECSManagedTags",
				func(in *ecs.CreateServiceInput) { in.EnableECSManagedTags = true },
				func(in *ecs.UpdateServiceInput) { in.EnableECSManagedTags = aws.Bool(true) }},
			{"enableExecuteCommand",
				func(in *ecs.CreateServiceInput) { in.EnableExecuteCommand = true },
				func(in *ecs.UpdateServiceInput) { in.EnableExecuteCommand = aws.Bool(true) }},
			{"vpcLatticeConfigurations",
				func(in *ecs.CreateServiceInput) {
					in.VpcLatticeConfigurations = []types.VpcLatticeConfiguration{{PortName: aws.String("http"), RoleArn: aws.String("arn:aws:iam::123456789012:role/l"), TargetGroupArn: aws.String("arn:aws:vpc-lattice:us-east-1:123456789012:targetgroup/tg-1")}}
				},
				func(in *ecs.UpdateServiceInput) {
					in.VpcLatticeConfigurations = []types.VpcLatticeConfiguration{{PortName: aws.String("http"), RoleArn: aws.String("arn:aws:iam::123456789012:role/l"), TargetGroupArn: aws.String("arn:aws:vpc-lattice:us-east-1:123456789012:targetgroup/tg-1")}}
				}},
		}
		for _, tc := range cases {
			t.Run(tc.field, func(t *testing.T) {
				create := &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("refused"), TaskDefinition: aws.String("app"), DesiredCount: aws.Int32(1)}
				tc.create(create)
				_, err := e.ecs.CreateService(ctx, create)
				wantError(t, err, "ClientException", notYet(tc.field))
				update := &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("s")}
				tc.update(update)
				_, err = e.ecs.UpdateService(ctx, update)
				wantError(t, err, "ClientException", notYet(tc.field))
			})
		}
		d := must(e.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("c"), Services: []string{"refused", "s"}}))(t)
		if len(d.Services) != 1 || len(d.Services[0].Deployments) != 1 || len(d.Services[0].LoadBalancers) != 0 || d.Services[0].DeploymentConfiguration.Alarms != nil {
			t.Fatalf("a refused request changed services: %+v %+v", d.Services, d.Failures)
		}
	})
}
