package integration

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/wharfhq/wharf/internal/server"
)

func listDeployments(t *testing.T, e *env, service string, status ...types.ServiceDeploymentStatus) []types.ServiceDeploymentBrief {
	t.Helper()
	out := must(e.ecs.ListServiceDeployments(ctxT(t), &ecs.ListServiceDeploymentsInput{Cluster: aws.String("c"), Service: aws.String(service), Status: status}))(t)
	return out.ServiceDeployments
}

func describeDeployment(t *testing.T, e *env, arn string) types.ServiceDeployment {
	t.Helper()
	out := must(e.ecs.DescribeServiceDeployments(ctxT(t), &ecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{arn}}))(t)
	if len(out.ServiceDeployments) != 1 {
		t.Fatalf("describe %s: failures %+v", arn, out.Failures)
	}
	return out.ServiceDeployments[0]
}

func describeRevision(t *testing.T, e *env, arn string) types.ServiceRevision {
	t.Helper()
	out := must(e.ecs.DescribeServiceRevisions(ctxT(t), &ecs.DescribeServiceRevisionsInput{ServiceRevisionArns: []string{arn}}))(t)
	if len(out.ServiceRevisions) != 1 {
		t.Fatalf("describe %s: failures %+v", arn, out.Failures)
	}
	return out.ServiceRevisions[0]
}

// TestServiceDeploymentHistory follows a service through a completed
// deployment and one the circuit breaker rolls back, in the deployment
// history: ListServiceDeployments, DescribeServiceDeployments,
// DescribeServiceRevisions and DescribeServices' current revisions.
func TestServiceDeploymentHistory(t *testing.T) {
	e, _ := controllerEnv(t, 2)
	ctx := ctxT(t)
	good := simTaskDef(t, e, "hist")
	created := must(e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("hist"), TaskDefinition: aws.String("hist"), DesiredCount: aws.Int32(2),
		DeploymentConfiguration: &types.DeploymentConfiguration{DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true, Rollback: true}}}))(t).Service
	first := aws.ToString(created.CurrentServiceDeployment)
	if !strings.HasPrefix(first, "arn:aws:ecs:us-east-1:123456789012:service-deployment/c/hist/") {
		t.Fatalf("currentServiceDeployment %q", first)
	}
	svc := waitService(t, e, "c", "hist", "the first deployment", stable)
	if len(svc.CurrentServiceRevisions) != 1 || svc.CurrentServiceRevisions[0].RunningTaskCount != 2 || svc.CurrentServiceRevisions[0].RequestedTaskCount != 2 {
		t.Fatalf("currentServiceRevisions %+v", svc.CurrentServiceRevisions)
	}
	rev1 := aws.ToString(svc.CurrentServiceRevisions[0].Arn)
	if !strings.HasPrefix(rev1, "arn:aws:ecs:us-east-1:123456789012:service-revision/c/hist/") {
		t.Fatalf("revision ARN %q", rev1)
	}
	if r := describeRevision(t, e, rev1); aws.ToString(r.TaskDefinition) != good || aws.ToString(r.ServiceArn) != aws.ToString(svc.ServiceArn) ||
		len(r.ContainerImages) != 1 || aws.ToString(r.ContainerImages[0].Image) != "app:1" || r.LaunchType != types.LaunchTypeEc2 {
		t.Fatalf("revision 1: %+v", r)
	}
	waitFor(t, "the first service deployment to succeed", func() bool {
		sd := describeDeployment(t, e, first)
		return sd.Status == types.ServiceDeploymentStatusSuccessful
	})
	sd := describeDeployment(t, e, first)
	if sd.FinishedAt == nil || sd.StartedAt == nil || aws.ToString(sd.TargetServiceRevision.Arn) != rev1 || sd.TargetServiceRevision.RunningTaskCount != 2 ||
		len(sd.SourceServiceRevisions) != 0 || sd.DeploymentCircuitBreaker.Status != types.ServiceDeploymentRollbackMonitorsStatusMonitoringComplete {
		t.Fatalf("first service deployment: %s", jsonOf(sd))
	}

	bad := simTaskDef(t, e, "hist", "sim-exit", "1")
	up := must(e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("hist"), TaskDefinition: aws.String(bad)}))(t).Service
	second := aws.ToString(up.CurrentServiceDeployment)
	if second == first || second == "" {
		t.Fatalf("currentServiceDeployment after the update: %q", second)
	}
	waitService(t, e, "c", "hist", "the rollback", func(s types.Service) bool {
		return stable(s) && aws.ToString(s.TaskDefinition) == good && hasEvent(s, "rolling back")
	})
	waitFor(t, "the second service deployment's rollback to succeed", func() bool {
		return describeDeployment(t, e, second).Status == types.ServiceDeploymentStatusRollbackSuccessful
	})
	sd = describeDeployment(t, e, second)
	rev2 := aws.ToString(sd.TargetServiceRevision.Arn)
	if rev2 == rev1 || sd.Rollback == nil || aws.ToString(sd.Rollback.ServiceRevisionArn) != rev1 || sd.Rollback.StartedAt == nil ||
		sd.DeploymentCircuitBreaker.Status != types.ServiceDeploymentRollbackMonitorsStatusTriggered ||
		sd.DeploymentCircuitBreaker.FailureCount < 3 || sd.DeploymentCircuitBreaker.Threshold != 3 ||
		len(sd.SourceServiceRevisions) != 1 || aws.ToString(sd.SourceServiceRevisions[0].Arn) != rev1 || sd.FinishedAt == nil {
		t.Fatalf("second service deployment: %s", jsonOf(sd))
	}
	if r := describeRevision(t, e, rev2); aws.ToString(r.TaskDefinition) != bad {
		t.Fatalf("revision 2: %+v", r)
	}
	// The rollback made no revision of its own: the service runs revision 1.
	svc = waitService(t, e, "c", "hist", "revision 1 current", func(s types.Service) bool {
		return len(s.CurrentServiceRevisions) == 1 && aws.ToString(s.CurrentServiceRevisions[0].Arn) == rev1
	})
	if aws.ToString(svc.CurrentServiceDeployment) != second {
		t.Fatalf("currentServiceDeployment %q, want %q", aws.ToString(svc.CurrentServiceDeployment), second)
	}

	// Newest first; filters; pages.
	all := listDeployments(t, e, "hist")
	if len(all) != 2 || aws.ToString(all[0].ServiceDeploymentArn) != second || aws.ToString(all[1].ServiceDeploymentArn) != first ||
		aws.ToString(all[0].TargetServiceRevisionArn) != rev2 || all[1].Status != types.ServiceDeploymentStatusSuccessful {
		t.Fatalf("ListServiceDeployments: %s", jsonOf(all))
	}
	if got := listDeployments(t, e, "hist", types.ServiceDeploymentStatusSuccessful); len(got) != 1 || aws.ToString(got[0].ServiceDeploymentArn) != first {
		t.Fatalf("SUCCESSFUL ones: %s", jsonOf(got))
	}
	page := must(e.ecs.ListServiceDeployments(ctx, &ecs.ListServiceDeploymentsInput{Cluster: aws.String("c"), Service: aws.String("hist"), MaxResults: aws.Int32(1)}))(t)
	if len(page.ServiceDeployments) != 1 || page.NextToken == nil {
		t.Fatalf("first page %s", jsonOf(page))
	}
	page = must(e.ecs.ListServiceDeployments(ctx, &ecs.ListServiceDeploymentsInput{Cluster: aws.String("c"), Service: aws.String("hist"), MaxResults: aws.Int32(1), NextToken: page.NextToken}))(t)
	if len(page.ServiceDeployments) != 1 || aws.ToString(page.ServiceDeployments[0].ServiceDeploymentArn) != first || page.NextToken != nil {
		t.Fatalf("second page %s", jsonOf(page))
	}
	later := time.Now().Add(time.Hour)
	if got := must(e.ecs.ListServiceDeployments(ctx, &ecs.ListServiceDeploymentsInput{Cluster: aws.String("c"), Service: aws.String("hist"),
		CreatedAt: &types.CreatedAt{After: &later}}))(t).ServiceDeployments; len(got) != 0 {
		t.Fatalf("created after an hour from now: %s", jsonOf(got))
	}

	// Errors and failures.
	missing := "arn:aws:ecs:us-east-1:123456789012:service-deployment/c/hist/AAAAAAAAAAAAAAAAAAAAA"
	d := must(e.ecs.DescribeServiceDeployments(ctx, &ecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{missing, first}}))(t)
	if len(d.ServiceDeployments) != 1 || len(d.Failures) != 1 || aws.ToString(d.Failures[0].Arn) != missing || aws.ToString(d.Failures[0].Reason) != "MISSING" {
		t.Fatalf("describe with a missing ARN: %s", jsonOf(d))
	}
	r := must(e.ecs.DescribeServiceRevisions(ctx, &ecs.DescribeServiceRevisionsInput{ServiceRevisionArns: []string{"arn:aws:ecs:us-east-1:123456789012:service-revision/c/hist/1"}}))(t)
	if len(r.ServiceRevisions) != 0 || len(r.Failures) != 1 || aws.ToString(r.Failures[0].Reason) != "MISSING" {
		t.Fatalf("describe a missing revision: %s", jsonOf(r))
	}
	_, err := e.ecs.ListServiceDeployments(ctx, &ecs.ListServiceDeploymentsInput{Cluster: aws.String("c"), Service: aws.String("nope")})
	wantCode(t, err, "ServiceNotFoundException", "")
	_, err = e.ecs.StopServiceDeployment(ctx, &ecs.StopServiceDeploymentInput{ServiceDeploymentArn: aws.String(second)})
	wantCode(t, err, "ConflictException", "")
	_, err = e.ecs.StopServiceDeployment(ctx, &ecs.StopServiceDeploymentInput{ServiceDeploymentArn: aws.String(missing)})
	wantCode(t, err, "ServiceDeploymentNotFoundException", "")
	_, err = e.ecs.StopServiceDeployment(ctx, &ecs.StopServiceDeploymentInput{ServiceDeploymentArn: aws.String(second), StopType: types.StopServiceDeploymentStopTypeAbort})
	wantCode(t, err, "InvalidParameterException", "")
}

// TestStopServiceDeploymentRollsBack: a deployment that cannot make
// progress (its tasks fit no instance) is stopped with ROLLBACK, without
// the circuit breaker; the completed deployment is PRIMARY again and the
// service deployment ends ROLLBACK_SUCCESSFUL.
func TestStopServiceDeploymentRollsBack(t *testing.T) {
	e, _ := controllerEnv(t, 1)
	ctx := ctxT(t)
	good := simTaskDef(t, e, "stuck")
	created := must(e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("stuck"), TaskDefinition: aws.String("stuck"), DesiredCount: aws.Int32(2)}))(t).Service
	waitService(t, e, "c", "stuck", "the first deployment", stable)
	huge := must(e.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("stuck"), ContainerDefinitions: []types.ContainerDefinition{
		{Name: aws.String("app"), Image: aws.String("app:1"), Memory: aws.Int32(1 << 30)}}}))(t)
	up := must(e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("stuck"), TaskDefinition: huge.TaskDefinition.TaskDefinitionArn}))(t).Service
	arn := aws.ToString(up.CurrentServiceDeployment)
	waitService(t, e, "c", "stuck", "the placement failure", func(s types.Service) bool { return hasEvent(s, "unable to place a task") })
	if sd := describeDeployment(t, e, arn); sd.Status != types.ServiceDeploymentStatusInProgress || len(sd.SourceServiceRevisions) != 1 ||
		sd.SourceServiceRevisions[0].RunningTaskCount != 2 || sd.TargetServiceRevision.RequestedTaskCount != 2 || sd.TargetServiceRevision.RunningTaskCount != 0 {
		t.Fatalf("the stuck service deployment: %s", jsonOf(sd))
	}
	out := must(e.ecs.StopServiceDeployment(ctx, &ecs.StopServiceDeploymentInput{ServiceDeploymentArn: aws.String(arn), StopType: types.StopServiceDeploymentStopTypeRollback}))(t)
	if aws.ToString(out.ServiceDeploymentArn) != arn {
		t.Fatalf("StopServiceDeployment answered %q", aws.ToString(out.ServiceDeploymentArn))
	}
	svc := waitService(t, e, "c", "stuck", "the rollback", func(s types.Service) bool {
		return stable(s) && aws.ToString(s.TaskDefinition) == good
	})
	if aws.ToString(svc.Deployments[0].Id) != aws.ToString(created.Deployments[0].Id) {
		t.Fatalf("after the rollback the service runs deployment %s, want %s again", aws.ToString(svc.Deployments[0].Id), aws.ToString(created.Deployments[0].Id))
	}
	waitFor(t, "the service deployment to end ROLLBACK_SUCCESSFUL", func() bool {
		return describeDeployment(t, e, arn).Status == types.ServiceDeploymentStatusRollbackSuccessful
	})
	if sd := describeDeployment(t, e, arn); sd.Rollback == nil || aws.ToString(sd.Rollback.ServiceRevisionArn) != aws.ToString(sd.SourceServiceRevisions[0].Arn) {
		t.Fatalf("the rolled back service deployment: %s", jsonOf(sd))
	}
}

// TestServiceDeploymentHistoryExpires: with a history period of a second,
// a service deployment that ended goes, and its revision with it once no
// deployment of the service uses it; the current ones stay.
func TestServiceDeploymentHistoryExpires(t *testing.T) {
	e, _ := controllerEnv(t, 1, func(c *server.Config) {
		c.DeploymentHistory = time.Second
		c.SweepInterval = 200 * time.Millisecond
	})
	ctx := ctxT(t)
	simTaskDef(t, e, "short")
	first := aws.ToString(must(e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("short"), TaskDefinition: aws.String("short"), DesiredCount: aws.Int32(1)}))(t).Service.CurrentServiceDeployment)
	svc := waitService(t, e, "c", "short", "the first deployment", stable)
	rev1 := aws.ToString(svc.CurrentServiceRevisions[0].Arn)
	simTaskDef(t, e, "short")
	second := aws.ToString(must(e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("short"), TaskDefinition: aws.String("short:2")}))(t).Service.CurrentServiceDeployment)
	waitService(t, e, "c", "short", "the second deployment", func(s types.Service) bool {
		return stable(s) && strings.HasSuffix(aws.ToString(s.TaskDefinition), ":2")
	})
	waitFor(t, "the first service deployment and its revision to go", func() bool {
		d := must(e.ecs.DescribeServiceDeployments(ctx, &ecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{first}}))(t)
		r := must(e.ecs.DescribeServiceRevisions(ctx, &ecs.DescribeServiceRevisionsInput{ServiceRevisionArns: []string{rev1}}))(t)
		return len(d.ServiceDeployments) == 0 && len(r.ServiceRevisions) == 0
	})
	// The second ended too, and goes in turn; its revision is the
	// service's current one and stays.
	waitFor(t, "the second service deployment to go", func() bool {
		return !slices.ContainsFunc(listDeployments(t, e, "short"), func(b types.ServiceDeploymentBrief) bool { return aws.ToString(b.ServiceDeploymentArn) == second })
	})
	svc = waitService(t, e, "c", "short", "", func(types.Service) bool { return true })
	describeRevision(t, e, aws.ToString(svc.CurrentServiceRevisions[0].Arn))
}

// waitFor waits up to 30 s for cond.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
