package integration

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/wharfhq/wharf/internal/agent"
	"github.com/wharfhq/wharf/internal/testenv"
)

// TestDaemonService: a DAEMON service runs one task on each ACTIVE instance
// that satisfies its constraints, follows instances joining and draining,
// and rolls a new deployment out instance by instance.
func TestDaemonService(t *testing.T) {
	e, nodes := controllerEnv(t, 3)
	ctx := ctxT(t)
	simTaskDef(t, e, "logs")

	_, err := e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("logs"), TaskDefinition: aws.String("logs"),
		SchedulingStrategy: types.SchedulingStrategyDaemon, DesiredCount: aws.Int32(2)})
	wantCode(t, err, "InvalidParameterException", "desiredCount")
	_, err = e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("logs"), TaskDefinition: aws.String("logs"),
		SchedulingStrategy: types.SchedulingStrategyDaemon,
		PlacementStrategy:  []types.PlacementStrategy{{Type: types.PlacementStrategyTypeSpread, Field: aws.String("instanceId")}}})
	wantCode(t, err, "InvalidParameterException", "Placement strategies")

	created := must(e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("logs"), TaskDefinition: aws.String("logs"),
		SchedulingStrategy: types.SchedulingStrategyDaemon}))(t).Service
	if created.SchedulingStrategy != types.SchedulingStrategyDaemon || aws.ToInt32(created.DeploymentConfiguration.MinimumHealthyPercent) != 0 ||
		aws.ToInt32(created.DeploymentConfiguration.MaximumPercent) != 100 {
		t.Fatalf("created %+v", created)
	}
	onePerInstance := func(want int, not ...string) func(types.Service) bool {
		return func(s types.Service) bool {
			if !stable(s) || int(s.DesiredCount) != want || int(s.Deployments[0].DesiredCount) != want {
				return false
			}
			on := map[string]int{}
			for _, task := range serviceTasks(t, e, "logs") {
				if aws.ToString(task.DesiredStatus) == "RUNNING" {
					on[aws.ToString(task.ContainerInstanceArn)]++
				}
			}
			for _, arn := range not {
				if on[arn] > 0 {
					return false
				}
			}
			for _, n := range on {
				if n != 1 {
					return false
				}
			}
			return len(on) == want
		}
	}
	waitService(t, e, "c", "logs", "a task on each of the 3 instances", onePerInstance(3))
	_, err = e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("logs"), DesiredCount: aws.Int32(5)})
	wantCode(t, err, "InvalidParameterException", "desiredCount")

	// An instance joining gets one.
	testenv.StartHollowNodes(t, e.srv, "c", 1, func(c *agent.Config) { c.Name = "node-4" })
	waitService(t, e, "c", "logs", "a task on the new instance too", onePerInstance(4))

	// A draining instance loses its task, which is not replaced elsewhere.
	drained := nodes[0].Agent.InstanceArn()
	must(e.ecs.UpdateContainerInstancesState(ctx, &ecs.UpdateContainerInstancesStateInput{Cluster: aws.String("c"),
		ContainerInstances: []string{drained}, Status: types.ContainerInstanceStatusDraining}))(t)
	waitService(t, e, "c", "logs", "no task on the draining instance", onePerInstance(3, drained))

	// A new deployment replaces the tasks, one per instance still.
	before := map[string]bool{}
	for _, task := range serviceTasks(t, e, "logs") {
		before[aws.ToString(task.TaskArn)] = true
	}
	must(e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("logs"), ForceNewDeployment: true}))(t)
	waitService(t, e, "c", "logs", "the new deployment on every instance", func(s types.Service) bool {
		if !onePerInstance(3, drained)(s) {
			return false
		}
		for _, task := range serviceTasks(t, e, "logs") {
			if aws.ToString(task.DesiredStatus) == "RUNNING" && before[aws.ToString(task.TaskArn)] {
				return false
			}
		}
		return true
	})

	// memberOf narrows the instances.
	simTaskDef(t, e, "zonal")
	must(e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("zonal"), TaskDefinition: aws.String("zonal"),
		SchedulingStrategy:   types.SchedulingStrategyDaemon,
		PlacementConstraints: []types.PlacementConstraint{{Type: types.PlacementConstraintTypeMemberOf, Expression: aws.String("attribute:ecs.availability-zone == " + nodes[1].AZ)}}}))(t)
	s := waitService(t, e, "c", "zonal", "a task on each instance of one zone", stable)
	if s.DesiredCount != 1 {
		t.Fatalf("zonal daemon wants %d tasks; one instance is in %s", s.DesiredCount, nodes[1].AZ)
	}

	// Deleting stops every task.
	must(e.ecs.DeleteService(ctx, &ecs.DeleteServiceInput{Cluster: aws.String("c"), Service: aws.String("logs")}))(t)
	waitService(t, e, "c", "logs", "the deleted service's tasks stopped", func(s types.Service) bool {
		return aws.ToString(s.Status) == "INACTIVE" && s.DesiredCount == 0 && s.RunningCount == 0
	})
}
