package integration

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

func TestServices(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	e.cluster(t, "c")
	td1 := e.taskDef(t, "api", 64, 0)
	td2 := e.taskDef(t, "api", 64, 0)

	created := must(e.ecs.CreateService(ctx, &ecs.CreateServiceInput{
		Cluster: aws.String("c"), ServiceName: aws.String("api"), TaskDefinition: aws.String("api:1"), DesiredCount: aws.Int32(0),
		ClientToken:       aws.String("create-api"),
		Tags:              []types.Tag{{Key: aws.String("owner"), Value: aws.String("me")}},
		PlacementStrategy: []types.PlacementStrategy{{Type: types.PlacementStrategyTypeSpread, Field: aws.String("attribute:ecs.availability-zone")}},
	}))(t)
	svc := created.Service
	if aws.ToString(svc.ServiceArn) != "arn:aws:ecs:us-east-1:123456789012:service/c/api" || aws.ToString(svc.Status) != "ACTIVE" || aws.ToString(svc.TaskDefinition) != td1 {
		t.Fatalf("created %+v", svc)
	}
	if len(svc.Deployments) != 1 || aws.ToString(svc.Deployments[0].Status) != "PRIMARY" || svc.Deployments[0].RolloutState != types.DeploymentRolloutStateInProgress {
		t.Fatalf("deployments %+v", svc.Deployments)
	}
	dc := svc.DeploymentConfiguration
	if aws.ToInt32(dc.MaximumPercent) != 200 || aws.ToInt32(dc.MinimumHealthyPercent) != 100 || svc.SchedulingStrategy != types.SchedulingStrategyReplica {
		t.Fatalf("defaults %+v %s", dc, svc.SchedulingStrategy)
	}

	t.Run("create is idempotent only with the same token", func(t *testing.T) {
		again := must(e.ecs.CreateService(ctx, &ecs.CreateServiceInput{
			Cluster: aws.String("c"), ServiceName: aws.String("api"), TaskDefinition: aws.String("api:1"), DesiredCount: aws.Int32(0),
			ClientToken:       aws.String("create-api"),
			Tags:              []types.Tag{{Key: aws.String("owner"), Value: aws.String("me")}},
			PlacementStrategy: []types.PlacementStrategy{{Type: types.PlacementStrategyTypeSpread, Field: aws.String("attribute:ecs.availability-zone")}},
		}))(t)
		if aws.ToString(again.Service.Deployments[0].Id) != aws.ToString(svc.Deployments[0].Id) {
			t.Fatal("replayed create made a new deployment")
		}
		_, err := e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("api"), TaskDefinition: aws.String("api:1"), DesiredCount: aws.Int32(0)})
		wantCode(t, err, "InvalidParameterException", "idempotent")
	})

	t.Run("desired count alone does not deploy", func(t *testing.T) {
		up := must(e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("api"), DesiredCount: aws.Int32(3)}))(t)
		if len(up.Service.Deployments) != 1 || up.Service.DesiredCount != 3 || up.Service.Deployments[0].DesiredCount != 3 {
			t.Fatalf("after scale %+v", up.Service.Deployments)
		}
	})

	t.Run("a new task definition deploys", func(t *testing.T) {
		up := must(e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("api"), TaskDefinition: aws.String("api"),
			DeploymentConfiguration: &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(50), DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true, Rollback: true}}}))(t)
		ds := up.Service.Deployments
		if aws.ToString(ds[0].Status) != "PRIMARY" || aws.ToString(ds[0].TaskDefinition) != td2 || aws.ToString(ds[0].Id) == aws.ToString(svc.Deployments[0].Id) {
			t.Fatalf("deployments %+v", ds)
		}
		if aws.ToInt32(up.Service.DeploymentConfiguration.MaximumPercent) != 200 || aws.ToInt32(up.Service.DeploymentConfiguration.MinimumHealthyPercent) != 50 {
			t.Fatalf("merged configuration %+v", up.Service.DeploymentConfiguration)
		}
		// The old deployment had no tasks: the service scheduler retires it.
		waitService(t, e, "c", "api", "the old deployment to be dropped", func(s types.Service) bool { return len(s.Deployments) == 1 })
		forced := must(e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("api"), ForceNewDeployment: true}))(t)
		if aws.ToString(forced.Service.Deployments[0].Id) == aws.ToString(ds[0].Id) {
			t.Fatal("forceNewDeployment kept the deployment")
		}
		must(e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("api"), DesiredCount: aws.Int32(0)}))(t)
		waitService(t, e, "c", "api", "a deployment at its desired count of 0 to complete", func(s types.Service) bool {
			return len(s.Deployments) == 1 && s.Deployments[0].RolloutState == types.DeploymentRolloutStateCompleted
		})
		must(e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("api"), DesiredCount: aws.Int32(3)}))(t)
	})

	t.Run("describe and list", func(t *testing.T) {
		d := must(e.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("c"), Services: []string{"api", "ghost"}, Include: []types.ServiceField{types.ServiceFieldTags}}))(t)
		if len(d.Services) != 1 || len(d.Failures) != 1 || aws.ToString(d.Failures[0].Reason) != "MISSING" || len(d.Services[0].Tags) != 1 {
			t.Fatalf("describe %+v %+v", d.Services, d.Failures)
		}
		for i := range 12 {
			must(e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("s" + string(rune('a'+i))), TaskDefinition: aws.String("api"), DesiredCount: aws.Int32(0)}))(t)
		}
		first := must(e.ecs.ListServices(ctx, &ecs.ListServicesInput{Cluster: aws.String("c")}))(t)
		if len(first.ServiceArns) != 10 || first.NextToken == nil {
			t.Fatalf("first page %d, token %v", len(first.ServiceArns), first.NextToken)
		}
		second := must(e.ecs.ListServices(ctx, &ecs.ListServicesInput{Cluster: aws.String("c"), NextToken: first.NextToken}))(t)
		if len(second.ServiceArns) != 3 || second.NextToken != nil {
			t.Fatalf("second page %d, token %v", len(second.ServiceArns), second.NextToken)
		}
		// A token only continues the listing it came from.
		_, err := e.ecs.ListServices(ctx, &ecs.ListServicesInput{Cluster: aws.String("c"), NextToken: first.NextToken, LaunchType: types.LaunchTypeEc2})
		wantCode(t, err, "InvalidParameterException", "nextToken")
		_, err = e.ecs.ListServices(ctx, &ecs.ListServicesInput{Cluster: aws.String("c"), NextToken: aws.String("garbage")})
		wantCode(t, err, "InvalidParameterException", "nextToken")
		_, err = e.ecs.ListServices(ctx, &ecs.ListServicesInput{Cluster: aws.String("c"), MaxResults: aws.Int32(101)})
		wantCode(t, err, "InvalidParameterException", "maxResults")
	})

	t.Run("delete", func(t *testing.T) {
		_, err := e.ecs.DeleteService(ctx, &ecs.DeleteServiceInput{Cluster: aws.String("c"), Service: aws.String("api")})
		wantCode(t, err, "InvalidParameterException", "scaled above 0")
		del := must(e.ecs.DeleteService(ctx, &ecs.DeleteServiceInput{Cluster: aws.String("c"), Service: aws.String("api"), Force: aws.Bool(true)}))(t)
		if st := aws.ToString(del.Service.Status); st != "DRAINING" && st != "INACTIVE" {
			t.Fatalf("status after delete %s", st)
		}
		w := ecs.NewServicesInactiveWaiter(e.ecs)
		if err := w.Wait(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("c"), Services: []string{"api"}}, 30*time.Second, func(o *ecs.ServicesInactiveWaiterOptions) { o.MinDelay = time.Second }); err != nil {
			t.Fatalf("services-inactive waiter: %v", err)
		}
		_, err = e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("api"), DesiredCount: aws.Int32(1)})
		wantCode(t, err, "ServiceNotActiveException", "")
		_, err = e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("ghost"), DesiredCount: aws.Int32(1)})
		wantCode(t, err, "ServiceNotFoundException", "")
		// The name is free again.
		must(e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("api"), TaskDefinition: aws.String("api"), DesiredCount: aws.Int32(0)}))(t)
	})

	t.Run("waiter sees a stable service", func(t *testing.T) {
		w := ecs.NewServicesStableWaiter(e.ecs)
		if err := w.Wait(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("c"), Services: []string{"sa"}}, 10*time.Second); err != nil {
			t.Fatalf("services-stable on a service of 0 tasks: %v", err)
		}
	})

	t.Run("validation", func(t *testing.T) {
		cases := []struct {
			name, code, msg string
			in              *ecs.CreateServiceInput
		}{
			{"negative count", "InvalidParameterException", "desiredCount", &ecs.CreateServiceInput{ServiceName: aws.String("x"), TaskDefinition: aws.String("api"), DesiredCount: aws.Int32(-1)}},
			{"bad minimum", "InvalidParameterException", "minimumHealthyPercent", &ecs.CreateServiceInput{ServiceName: aws.String("x"), TaskDefinition: aws.String("api"), DesiredCount: aws.Int32(1),
				DeploymentConfiguration: &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(150)}}},
			{"bad strategy", "InvalidParameterException", "binpack", &ecs.CreateServiceInput{ServiceName: aws.String("x"), TaskDefinition: aws.String("api"), DesiredCount: aws.Int32(1),
				PlacementStrategy: []types.PlacementStrategy{{Type: types.PlacementStrategyTypeBinpack, Field: aws.String("disk")}}}},
			{"unknown task definition", "ClientException", "", &ecs.CreateServiceInput{ServiceName: aws.String("x"), TaskDefinition: aws.String("nope"), DesiredCount: aws.Int32(1)}},
			{"bad name", "InvalidParameterException", "Service name", &ecs.CreateServiceInput{ServiceName: aws.String("a b"), TaskDefinition: aws.String("api"), DesiredCount: aws.Int32(1)}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				tc.in.Cluster = aws.String("c")
				_, err := e.ecs.CreateService(ctx, tc.in)
				wantCode(t, err, tc.code, tc.msg)
			})
		}
	})
}

// waitService polls a service until ok holds, failing after 30 s.
func waitService(t *testing.T, e *env, cluster, name, what string, ok func(types.Service) bool) types.Service {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := must(e.ecs.DescribeServices(ctxT(t), &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{name}}))(t)
		if len(out.Services) == 1 && ok(out.Services[0]) {
			return out.Services[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 30s for %s; service is %+v", what, out.Services)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
