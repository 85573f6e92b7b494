package e2e

import (
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/wharfhq/wharf/internal/testenv"
)

// taskArns returns the tasks' ARNs, sorted.
func taskArns(tasks []types.Task) []string {
	var out []string
	for _, task := range tasks {
		out = append(out, aws.ToString(task.TaskArn))
	}
	slices.Sort(out)
	return out
}

// TestFailedDeploymentRightAfterRunning: a service of six reaches six
// RUNNING tasks and at once moves to a revision whose container exits, with
// the circuit breaker and rollback on. Its first deployment has not
// completed yet (tasks without health checks count as healthy only
// --healthy-after, here a minute, after they run), so there is nothing to
// roll back to, as on ECS: the new deployment FAILS and the six tasks of
// the first keep running all along.
func TestFailedDeploymentRightAfterRunning(t *testing.T) {
	e := newEnv(t, withHealthyAfter(time.Minute))
	e.addNode("node-2", testenv.Region+"b")
	e.addNode("node-3", testenv.Region+"c")
	good := e.register("rightaway", types.NetworkModeBridge, e.ctr("app", "sleep 3600"))
	bad := e.register("rightaway", types.NetworkModeBridge, e.ctr("app", "exit 1"))
	created := e.createService(&ecs.CreateServiceInput{
		ServiceName: aws.String("rightaway"), TaskDefinition: aws.String(good), DesiredCount: aws.Int32(6),
	})
	first := aws.ToString(created.Deployments[0].Id)
	var before []types.Task
	waitFor(t, "six RUNNING tasks", serviceWait, func() (bool, string) {
		svc := e.service("rightaway")
		if svc.RunningCount != 6 {
			return false, deployments(svc)
		}
		before = e.serviceTasks("rightaway", types.DesiredStatusRunning)
		return true, ""
	})

	s := e.sample("rightaway", serviceWait)
	up := e.updateService(&ecs.UpdateServiceInput{Service: aws.String("rightaway"), TaskDefinition: aws.String(bad),
		DeploymentConfiguration: &types.DeploymentConfiguration{
			DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true, Rollback: true},
			MaximumPercent:           aws.Int32(200), MinimumHealthyPercent: aws.Int32(100),
		}})
	failing := aws.ToString(up.Deployments[0].Id)
	waitFor(t, "deployment "+failing+" to fail", serviceWait, func() (bool, string) {
		svc := e.service("rightaway")
		return svc.Deployments[0].RolloutState == types.DeploymentRolloutStateFailed, deployments(svc)
	})
	// Some of the failed deployment's tasks may still be on their way
	// out; then nothing changes.
	waitFor(t, "the failed deployment's tasks to stop", serviceWait, func() (bool, string) {
		svc := e.service("rightaway")
		return svc.PendingCount == 0 && svc.RunningCount == 6, deployments(svc)
	})
	holds(t, "the first deployment's six tasks running", 5*time.Second, func() (bool, string) {
		svc := e.service("rightaway")
		tasks := e.serviceTasks("rightaway", types.DesiredStatusRunning)
		return svc.RunningCount == 6 && slices.Equal(taskArns(tasks), taskArns(before)), deployments(svc)
	})
	st := s.stop()
	st.check(t, "during the failed deployment", 6, 12)
	svc := e.service("rightaway")
	if len(svc.Deployments) != 2 || aws.ToString(svc.Deployments[1].Id) != first || svc.Deployments[1].RunningCount != 6 {
		t.Errorf("after the failure: %s; want %s FAILED beside %s with its 6 tasks", deployments(svc), failing, first)
	}
	if countEvents(svc, "rolling back") != 0 {
		t.Errorf("a rollback with no completed deployment to go back to: %q", events(svc))
	}
}

// TestTwoUpdatesInQuickSuccession: a stable service of six at 100%/200%
// moves to revision 2 and, before that deployment has got anywhere, to
// revision 3. The service never has fewer than six tasks RUNNING nor more
// than twelve up, and ends stable on revision 3.
func TestTwoUpdatesInQuickSuccession(t *testing.T) {
	e := newServiceEnv(t)
	var revs []string
	for _, v := range []string{"v1", "v2", "v3"} {
		revs = append(revs, e.register("twice", types.NetworkModeBridge, e.ctr("web", serviceScript(v))))
	}
	e.createService(&ecs.CreateServiceInput{ServiceName: aws.String("twice"), TaskDefinition: aws.String(revs[0]), DesiredCount: aws.Int32(6)})
	e.waitStable("twice", revs[0])

	s := e.sample("twice", serviceWait)
	began := time.Now()
	e.updateService(&ecs.UpdateServiceInput{Service: aws.String("twice"), TaskDefinition: aws.String(revs[1])})
	e.updateService(&ecs.UpdateServiceInput{Service: aws.String("twice"), TaskDefinition: aws.String(revs[2])})
	svc, _ := e.waitStable("twice", revs[2])
	st := s.stop()
	t.Logf("stable on revision 3 %v after the first UpdateService", time.Since(began).Round(time.Millisecond))
	st.check(t, "during the two updates", 6, 12)
	if n := countEvents(svc, "deployment completed"); n != 2 {
		t.Errorf("%d \"deployment completed\" events, want 2 (revisions 1 and 3): %q", n, events(svc))
	}
}

// TestUpdateDuringScaleOut: a stable service of three is scaled to six and
// at once moved to revision 2. The three tasks that ran are kept until
// revision 2's tasks are healthy, and the service ends with six tasks of
// revision 2.
func TestUpdateDuringScaleOut(t *testing.T) {
	e := newServiceEnv(t)
	v1 := e.register("scaleout", types.NetworkModeBridge, e.ctr("web", serviceScript("v1")))
	v2 := e.register("scaleout", types.NetworkModeBridge, e.ctr("web", serviceScript("v2")))
	e.createService(&ecs.CreateServiceInput{ServiceName: aws.String("scaleout"), TaskDefinition: aws.String(v1), DesiredCount: aws.Int32(3)})
	e.waitStable("scaleout", v1)

	s := e.sample("scaleout", serviceWait)
	e.updateService(&ecs.UpdateServiceInput{Service: aws.String("scaleout"), DesiredCount: aws.Int32(6)})
	e.updateService(&ecs.UpdateServiceInput{Service: aws.String("scaleout"), TaskDefinition: aws.String(v2)})
	_, tasks := e.waitStable("scaleout", v2)
	st := s.stop()
	st.check(t, "during the scale-out and update", 3, 12)
	if len(tasks) != 6 {
		t.Errorf("%d tasks of revision 2, want 6", len(tasks))
	}
}
