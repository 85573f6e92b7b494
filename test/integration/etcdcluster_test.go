package integration

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/wharfhq/wharf/internal/testenv"
)

const (
	chaosCluster = "chaos"
	chaosFamily  = "churn"
	chaosOps     = 200
	// chaosKillAt is the call during which the etcd leader is killed.
	chaosKillAt = 80
	// chaosCallTimeout bounds every call; it covers an etcd leader
	// election and the SDK's retries.
	chaosCallTimeout = 20 * time.Second
	// chaosHealed is how many calls at the end of the run must all
	// succeed: by then two of three members have elected a new leader.
	chaosHealed = 20
	// chaosBudget bounds the whole run of calls.
	chaosBudget = 3 * time.Minute
	chaosCPU    = 65536
	chaosMemory = 1 << 20
)

// TestExternalEtcdCluster runs a server on a three-member etcd cluster,
// kills the etcd leader in the middle of a run of writes, and checks that
// no acknowledged write is lost, that calls succeed or fail within their
// timeout, and that the state survives restarting the member and the
// server, then losing another member, then restarting the server with
// that member still down.
func TestExternalEtcdCluster(t *testing.T) {
	t0 := time.Now()
	phase := func(format string, args ...any) {
		t.Helper()
		t.Logf("%5.1fs: "+format, append([]any{time.Since(t0).Seconds()}, args...)...)
	}
	etcd := testenv.StartEtcdCluster(t, 3)
	phase("etcd cluster has a leader")
	srv := testenv.StartServer(t, "", testenv.WithEtcd(etcd.Endpoints()))
	e := &env{srv: srv, ecs: srv.ECS()}

	seed := seedState(t, e)
	base := viewSeed(t, e.ecs, seed)
	checkSeeded(t, "on an external etcd", base, seed)

	e.cluster(t, chaosCluster)
	l := &chaosLedger{
		instance:     e.instance(t, chaosCluster, chaosCPU, chaosMemory),
		taskDef:      e.taskDef(t, "worker", 64, 0),
		stopped:      map[string]bool{},
		maybeStopped: map[string]bool{},
		revisions:    map[int32]string{},
	}

	killed := -1
	killDone := make(chan struct{})
	var results []error
	start := time.Now()
	for i := range chaosOps {
		if time.Since(start) > chaosBudget {
			t.Errorf("%d of %d calls took more than %v; stopping the run", i, chaosOps, chaosBudget)
			break
		}
		if i == chaosKillAt {
			// The leader dies while the next calls are in flight.
			killed = etcd.Leader()
			phase("call %d: killing etcd leader m%d", i, killed)
			go func() {
				defer close(killDone)
				etcd.Kill(killed)
			}()
		}
		results = append(results, l.step(t, e.ecs, i))
	}
	if killed < 0 {
		t.FailNow() // the run stopped before the kill
	}
	<-killDone
	phase("%d calls in %v; %d failed: %d RunTask, %d StopTask, %d RegisterTaskDefinition; %d attempts retried by the SDK; slowest call %v",
		len(results), time.Since(start).Round(time.Millisecond), l.failedRuns+l.failedStops+l.failedRegs, l.failedRuns, l.failedStops, l.failedRegs, len(l.retries), l.slowest.Round(time.Millisecond))
	for i, err := range results {
		if err != nil {
			t.Logf("call %d failed: %v", i, err)
		}
	}
	for _, err := range l.retries {
		t.Logf("attempt retried by the SDK: %v", err)
	}
	for i := max(len(results)-chaosHealed, chaosKillAt); i < len(results); i++ {
		if results[i] != nil {
			t.Errorf("call %d failed after the cluster had time to elect a new leader: %v", i, results[i])
		}
	}
	if l.slowest > chaosCallTimeout+2*time.Second {
		t.Errorf("a call took %v, beyond its %v timeout", l.slowest, chaosCallTimeout)
	}
	l.verify(t, e.ecs, "with one etcd member down")
	sameView(t, "with one etcd member down", base, viewSeed(t, e.ecs, seed))

	etcd.Restart(killed)
	phase("m%d restarted and caught up", killed)
	srv.Stop()
	srv = testenv.StartServer(t, "", testenv.WithEtcd(etcd.Endpoints()))
	e = &env{srv: srv, ecs: srv.ECS()}
	phase("server restarted")
	l.verify(t, e.ecs, "after restarting the etcd member and the server")
	sameView(t, "after restarting the etcd member and the server", base, viewSeed(t, e.ecs, seed))

	// Quorum now needs the restarted member: it must have rejoined.
	other := etcd.Leader()
	if other == killed {
		other = (killed + 1) % 3
	}
	phase("killing etcd member m%d; m%d, restarted, must make the quorum", other, killed)
	etcd.Kill(other)
	for _, op := range []string{"RunTask", "RegisterTaskDefinition"} {
		pollFor(t, time.Minute, op+" to succeed without member m"+strconv.Itoa(other), func() error {
			if op == "RunTask" {
				return l.run(e.ecs)
			}
			return l.register(e.ecs, len(results))
		})
	}
	l.verify(t, e.ecs, "without the second member")
	sameView(t, "without the second member", base, viewSeed(t, e.ecs, seed))

	// A server starts while one of its endpoints is down.
	phase("writes succeeded without m%d", other)
	srv.Stop()
	srv = testenv.StartServer(t, "", testenv.WithEtcd(etcd.Endpoints()))
	e = &env{srv: srv, ecs: srv.ECS()}
	phase("server restarted without m%d", other)
	l.verify(t, e.ecs, "after restarting the server without the second member")
	sameView(t, "after restarting the server without the second member", base, viewSeed(t, e.ecs, seed))
}

// chaosLedger is what the workload was told: the writes that were
// acknowledged, and how many failed (a failed write may still have been
// applied, since its commit may have reached etcd before the failure).
type chaosLedger struct {
	instance, taskDef string
	running           []string        // acknowledged RunTask, not stopped, oldest first
	stopped           map[string]bool // acknowledged StopTask
	maybeStopped      map[string]bool // failed StopTask
	revisions         map[int32]string
	failedRuns        int
	failedStops       int
	failedRegs        int
	// retriedRegs counts the extra attempts of acknowledged registrations:
	// the SDK retries a call that failed with a server error, and the
	// failed attempt may have registered a revision.
	retriedRegs int
	// retries are the errors of attempts the SDK retried.
	retries []error
	slowest time.Duration
}

// retried records the failed attempts behind a successful call and
// returns how many there were.
func (l *chaosLedger) retried(md middleware.Metadata) int {
	res, _ := retry.GetAttemptResults(md)
	n := 0
	for _, r := range res.Results {
		if r.Err != nil {
			l.retries = append(l.retries, r.Err)
			n++
		}
	}
	return n
}

// errUnclean marks a call that failed otherwise than with an API error or
// its timeout.
var errUnclean = errors.New("neither an API error nor the timeout")

// call runs fn with the per-call timeout and checks that it returns in
// time and fails cleanly: with an API error or the timeout.
func (l *chaosLedger) call(fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), chaosCallTimeout)
	defer cancel()
	start := time.Now()
	err := fn(ctx)
	l.slowest = max(l.slowest, time.Since(start))
	var ae smithy.APIError
	if err != nil && !errors.As(err, &ae) && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", errUnclean, err)
	}
	return err
}

// step runs call i of the workload: RunTask, RegisterTaskDefinition and
// StopTask of the oldest running task, in turn.
func (l *chaosLedger) step(t *testing.T, c *ecs.Client, i int) error {
	var err error
	switch {
	case i%4 == 2:
		err = l.register(c, i)
	case i%4 == 3 && len(l.running) > 0:
		err = l.stop(c)
	default:
		err = l.run(c)
	}
	if errors.Is(err, errUnclean) {
		t.Errorf("call %d: %v", i, err)
	}
	return err
}

func (l *chaosLedger) run(c *ecs.Client) error {
	var out *ecs.RunTaskOutput
	err := l.call(func(ctx context.Context) (err error) {
		out, err = c.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String(chaosCluster), TaskDefinition: aws.String(l.taskDef)})
		return err
	})
	if err == nil {
		l.retried(out.ResultMetadata)
	}
	if err == nil && len(out.Tasks) != 1 {
		err = fmt.Errorf("RunTask started %d tasks; failures %s", len(out.Tasks), jsonText(out.Failures))
	}
	if err != nil {
		l.failedRuns++
		return fmt.Errorf("RunTask: %w", err)
	}
	l.running = append(l.running, aws.ToString(out.Tasks[0].TaskArn))
	return nil
}

func (l *chaosLedger) stop(c *ecs.Client) error {
	arn := l.running[0]
	l.running = l.running[1:]
	err := l.call(func(ctx context.Context) error {
		out, err := c.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String(chaosCluster), Task: aws.String(arn)})
		if err == nil {
			l.retried(out.ResultMetadata)
		}
		return err
	})
	if err != nil {
		l.failedStops++
		l.maybeStopped[arn] = true
		return fmt.Errorf("StopTask %s: %w", arn, err)
	}
	l.stopped[arn] = true
	return nil
}

// chaosImage is the image of the revision registered by call i, so that
// every revision can be told apart.
func chaosImage(i int) string { return "busybox:call-" + strconv.Itoa(i) }

func (l *chaosLedger) register(c *ecs.Client, i int) error {
	var out *ecs.RegisterTaskDefinitionOutput
	err := l.call(func(ctx context.Context) (err error) {
		out, err = c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
			Family: aws.String(chaosFamily),
			ContainerDefinitions: []types.ContainerDefinition{{
				Name: aws.String("app"), Image: aws.String(chaosImage(i)), Memory: aws.Int32(32),
			}},
		})
		return err
	})
	if err != nil {
		l.failedRegs++
		return fmt.Errorf("RegisterTaskDefinition: %w", err)
	}
	l.retriedRegs += l.retried(out.ResultMetadata)
	rev := out.TaskDefinition.Revision
	if prev, dup := l.revisions[rev]; dup {
		return fmt.Errorf("RegisterTaskDefinition acknowledged revision %d twice (images %s and %s)", rev, prev, chaosImage(i))
	}
	l.revisions[rev] = chaosImage(i)
	return nil
}

// verify checks that the state reflects every acknowledged write, and
// holds no more unacknowledged ones than calls failed.
func (l *chaosLedger) verify(t *testing.T, c *ecs.Client, when string) {
	t.Helper()
	ctx := ctxT(t)
	cl := aws.String(chaosCluster)

	var all []string
	all = append(all, l.running...)
	for arn := range l.stopped {
		all = append(all, arn)
	}
	for arn := range l.maybeStopped {
		all = append(all, arn)
	}
	found := map[string]types.Task{}
	for chunk := range slices.Chunk(all, 100) {
		out := must(c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: cl, Tasks: chunk}))(t)
		for _, f := range out.Failures {
			t.Errorf("%s: acknowledged task %s is %s", when, aws.ToString(f.Arn), aws.ToString(f.Reason))
		}
		for _, task := range out.Tasks {
			found[aws.ToString(task.TaskArn)] = task
		}
	}
	status := func(arn string) string {
		task := found[arn]
		return aws.ToString(task.LastStatus) + "/" + aws.ToString(task.DesiredStatus)
	}
	for _, arn := range l.running {
		if got := status(arn); got != "PENDING/RUNNING" {
			t.Errorf("%s: task %s is %s, want PENDING/RUNNING", when, arn, got)
		}
	}
	for arn := range l.stopped {
		if got := status(arn); got != "STOPPED/STOPPED" {
			t.Errorf("%s: acknowledged stop of %s lost: task is %s", when, arn, got)
		}
	}
	for arn := range l.maybeStopped {
		if got := status(arn); got != "PENDING/RUNNING" && got != "STOPPED/STOPPED" {
			t.Errorf("%s: task %s, whose stop failed, is %s", when, arn, got)
		}
	}

	live := listAll(t, func(token *string) ([]string, *string) {
		out := must(c.ListTasks(ctx, &ecs.ListTasksInput{Cluster: cl, NextToken: token}))(t)
		return out.TaskArns, out.NextToken
	})
	isLive := map[string]bool{}
	for _, arn := range live {
		isLive[arn] = true
	}
	for _, arn := range l.running {
		if !isLive[arn] {
			t.Errorf("%s: ListTasks does not list running task %s", when, arn)
		}
	}
	unacknowledged := 0
	for _, arn := range live {
		if l.stopped[arn] {
			t.Errorf("%s: ListTasks lists stopped task %s as running", when, arn)
		}
		if !slices.Contains(l.running, arn) && !l.maybeStopped[arn] {
			unacknowledged++
		}
	}
	if unacknowledged > l.failedRuns {
		t.Errorf("%s: %d running tasks were never acknowledged, but only %d RunTask calls failed", when, unacknowledged, l.failedRuns)
	}

	// Placement and reservation commit together: the instance holds
	// exactly what its live tasks need.
	ci := must(c.DescribeContainerInstances(ctx, &ecs.DescribeContainerInstancesInput{Cluster: cl, ContainerInstances: []string{l.instance}}))(t).ContainerInstances[0]
	if got, want := remaining(ci, "CPU"), int32(chaosCPU-seedTaskCPU*len(live)); got != want {
		t.Errorf("%s: remaining CPU %d, want %d for %d live tasks", when, got, want, len(live))
	}
	if got, want := ci.PendingTasksCount, int32(len(live)); got != want {
		t.Errorf("%s: pendingTasksCount %d, want %d", when, got, want)
	}

	arns := listAll(t, func(token *string) ([]string, *string) {
		out := must(c.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(chaosFamily), NextToken: token}))(t)
		return out.TaskDefinitionArns, out.NextToken
	})
	// A revision is committed with its family's counter: revisions are
	// 1..n, whatever failed.
	for i, arn := range arns {
		if want := fmt.Sprintf("arn:aws:ecs:us-east-1:123456789012:task-definition/%s:%d", chaosFamily, i+1); arn != want {
			t.Errorf("%s: revision %d of %s is %s, want %s", when, i+1, chaosFamily, arn, want)
		}
	}
	if extra := len(arns) - len(l.revisions); extra < 0 || extra > l.failedRegs+l.retriedRegs {
		t.Errorf("%s: %d revisions of %s, %d acknowledged, %d failed and %d retried by the SDK", when, len(arns), chaosFamily, len(l.revisions), l.failedRegs, l.retriedRegs)
	}
	for rev, image := range l.revisions {
		td := must(c.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(fmt.Sprintf("%s:%d", chaosFamily, rev))}))(t).TaskDefinition
		if td.Status != types.TaskDefinitionStatusActive || len(td.ContainerDefinitions) != 1 || aws.ToString(td.ContainerDefinitions[0].Image) != image {
			t.Errorf("%s: acknowledged revision %d is %s with %s, want ACTIVE with image %s", when, rev, td.Status, jsonText(td.ContainerDefinitions), image)
		}
	}
}

// listAll follows nextToken through at most 100 pages.
func listAll(t *testing.T, page func(token *string) ([]string, *string)) []string {
	t.Helper()
	var all []string
	var token *string
	for range 100 {
		items, next := page(token)
		all = append(all, items...)
		if next == nil {
			return all
		}
		token = next
	}
	t.Fatal("a listing went on for more than 100 pages")
	return nil
}

// pollFor calls cond until it returns nil or timeout passes.
func pollFor(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; last error: %v", timeout, what, err)
		}
		<-tick.C
	}
}
