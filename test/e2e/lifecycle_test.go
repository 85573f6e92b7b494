package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// TestDependsOnHealthy starts container b only once a's health check
// passes; a turns healthy after a marker file appears.
func TestDependsOnHealthy(t *testing.T) {
	e := newEnv(t)
	a := e.ctr("a", `sleep 1; touch /tmp/ready; exec sleep 3600`)
	a.HealthCheck = &types.HealthCheck{
		Command:  []string{"CMD-SHELL", "test -f /tmp/ready"},
		Interval: aws.Int32(5), Timeout: aws.Int32(2), Retries: aws.Int32(3),
	}
	b := e.ctr("b", `exec sleep 3600`)
	b.DependsOn = []types.ContainerDependency{{ContainerName: aws.String("a"), Condition: types.ContainerConditionHealthy}}
	arn := e.run(e.register("healthy", types.NetworkModeBridge, a, b))

	task := e.waitTask(arn, "to be RUNNING and HEALTHY", func(t types.Task) bool {
		return aws.ToString(t.LastStatus) == "RUNNING" && t.HealthStatus == types.HealthStatusHealthy
	})
	if h := taskContainer(t, task, "a").HealthStatus; h != types.HealthStatusHealthy {
		t.Errorf("container a reports health %s, want HEALTHY", h)
	}
	ai := e.inspect(aws.ToString(taskContainer(t, task, "a").RuntimeId))
	bi := e.inspect(aws.ToString(taskContainer(t, task, "b").RuntimeId))
	if ai.State.Health == nil {
		t.Fatalf("container a has no health state")
	}
	// The first passing check is when a turned healthy.
	var healthy time.Time
	for _, l := range ai.State.Health.Log {
		if l.ExitCode == 0 {
			healthy = l.End
			break
		}
	}
	if healthy.IsZero() {
		t.Fatalf("container a's health log has no passing check: %s", jsonOf(ai.State.Health.Log))
	}
	aStart, bStart := engineTime(t, ai.State.StartedAt), engineTime(t, bi.State.StartedAt)
	t.Logf("a started %s, healthy %s, b started %s", aStart.Format(time.StampMilli), healthy.Format(time.StampMilli), bStart.Format(time.StampMilli))
	if bStart.Before(healthy) {
		t.Errorf("b started at %s, before a turned healthy at %s", bStart.Format(time.StampMilli), healthy.Format(time.StampMilli))
	}
}

// TestEssentialContainerExit: a non-essential container exiting leaves the
// task running; an essential one exiting (here when the test drops a file
// into a host volume) stops the task with EssentialContainerExited.
func TestEssentialContainerExit(t *testing.T) {
	e := newEnv(t)
	ctl := t.TempDir()
	app := e.ctr("app", `while [ ! -f /ctl/exit ]; do sleep 0.1; done; exit 3`)
	app.MountPoints = []types.MountPoint{{SourceVolume: aws.String("ctl"), ContainerPath: aws.String("/ctl"), ReadOnly: aws.Bool(true)}}
	side := e.ctr("side", `exit 5`)
	side.Essential = aws.Bool(false)
	td := e.registerDef(&ecs.RegisterTaskDefinitionInput{
		Family:               aws.String("essential"),
		NetworkMode:          types.NetworkModeBridge,
		ContainerDefinitions: []types.ContainerDefinition{app, side},
		Volumes:              []types.Volume{{Name: aws.String("ctl"), Host: &types.HostVolumeProperties{SourcePath: aws.String(ctl)}}},
	})
	arn := e.run(td)

	e.waitTask(arn, "to be RUNNING with its non-essential container exited", func(t types.Task) bool {
		s := taskContainerOf(t, "side")
		return aws.ToString(t.LastStatus) == "RUNNING" && aws.ToString(s.LastStatus) == "STOPPED" && s.ExitCode != nil
	})
	holds(t, "the task running after its non-essential container exited", 2*time.Second, func() (bool, string) {
		task := e.describe(arn)
		return aws.ToString(task.LastStatus) == "RUNNING" && aws.ToString(task.DesiredStatus) == "RUNNING", summary(task)
	})
	task := e.describe(arn)
	if got := aws.ToInt32(taskContainer(t, task, "side").ExitCode); got != 5 {
		t.Errorf("the non-essential container reports exit code %d, want 5", got)
	}

	if err := os.WriteFile(filepath.Join(ctl, "exit"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	task = e.waitStopped(arn)
	if task.StopCode != types.TaskStopCodeEssentialContainerExited {
		t.Errorf("stopCode %q, want EssentialContainerExited: %s", task.StopCode, summary(task))
	}
	if got := aws.ToString(task.StoppedReason); got != "Essential container in task exited" {
		t.Errorf("stoppedReason %q, want \"Essential container in task exited\"", got)
	}
	if c := taskContainer(t, task, "app"); c.ExitCode == nil || *c.ExitCode != 3 {
		t.Errorf("the essential container reports exit code %v, want 3: %s", aws.ToInt32(c.ExitCode), summary(task))
	}
	if task.StoppedAt == nil || task.StoppingAt == nil || task.ExecutionStoppedAt == nil {
		t.Errorf("a stopped task lacks stoppingAt, executionStoppedAt or stoppedAt: %s", jsonOf(task))
	}
}

// TestFailingHealthCheck: a container whose health check fails is
// UNHEALTHY, and so is its task.
func TestFailingHealthCheck(t *testing.T) {
	e := newEnv(t)
	app := e.ctr("app", `exec sleep 3600`)
	app.HealthCheck = &types.HealthCheck{
		Command:  []string{"CMD-SHELL", "exit 1"},
		Interval: aws.Int32(5), Timeout: aws.Int32(2), Retries: aws.Int32(1),
	}
	arn := e.run(e.register("unhealthy", types.NetworkModeNone, app))
	task := e.waitTask(arn, "to be UNHEALTHY", func(t types.Task) bool { return t.HealthStatus == types.HealthStatusUnhealthy })
	if h := taskContainer(t, task, "app").HealthStatus; h != types.HealthStatusUnhealthy {
		t.Errorf("the container reports health %s, want UNHEALTHY", h)
	}
	if got := aws.ToString(task.LastStatus); got != "RUNNING" {
		t.Errorf("an unhealthy standalone task is %s, want it left RUNNING", got)
	}
}

// TestStopTaskStopTimeout: StopTask sends SIGTERM; a container that
// handles it exits at once with 0, one that ignores it is killed after its
// stopTimeout (exit 137).
func TestStopTaskStopTimeout(t *testing.T) {
	e := newEnv(t)
	graceful := e.ctr("graceful", `trap 'exit 0' TERM; while true; do sleep 0.1; done`)
	stubborn := e.ctr("stubborn", `trap '' TERM; while true; do sleep 0.1; done`)
	stubborn.StopTimeout = aws.Int32(3)
	arn := e.run(e.register("stop", types.NetworkModeNone, graceful, stubborn))
	task := e.waitRunning(arn)
	ids := map[string]string{}
	for _, name := range []string{"graceful", "stubborn"} {
		ids[name] = aws.ToString(taskContainer(t, task, name).RuntimeId)
	}

	asked := time.Now()
	e.stopTask(arn, "e2e: stop timeout")
	task = e.waitStopped(arn)
	stopped := time.Since(asked)
	t.Logf("the task stopped %v after StopTask", stopped.Round(time.Millisecond))

	took := func(name string) time.Duration {
		c := e.inspect(ids[name])
		if c.State.Running {
			t.Fatalf("container %s still runs after its task stopped", name)
		}
		return engineTime(t, c.State.FinishedAt).Sub(asked)
	}
	if d := took("graceful"); d > 2500*time.Millisecond {
		t.Errorf("the container handling SIGTERM exited %v after StopTask, want well under its stop timeout", d)
	}
	if d := took("stubborn"); d < 2500*time.Millisecond || d > 15*time.Second {
		t.Errorf("the container ignoring SIGTERM exited %v after StopTask, want about its stopTimeout of 3s", d)
	}
	if c := taskContainer(t, task, "graceful"); aws.ToInt32(c.ExitCode) != 0 || c.ExitCode == nil {
		t.Errorf("graceful reports exit code %v, want 0", aws.ToInt32(c.ExitCode))
	}
	if c := taskContainer(t, task, "stubborn"); aws.ToInt32(c.ExitCode) != 137 {
		t.Errorf("stubborn reports exit code %v, want 137 (SIGKILL)", aws.ToInt32(c.ExitCode))
	}
	if task.StopCode != types.TaskStopCodeUserInitiated {
		t.Errorf("stopCode %q, want UserInitiated", task.StopCode)
	}
	if got := aws.ToString(task.StoppedReason); got != "e2e: stop timeout" {
		t.Errorf("stoppedReason %q, want the StopTask reason", got)
	}
	if task.StoppingAt == nil || task.StoppedAt == nil {
		t.Fatalf("the task lacks stoppingAt or stoppedAt: %s", jsonOf(task))
	}
	if task.StoppedAt.Before(*task.StoppingAt) {
		t.Errorf("stoppedAt %s is before stoppingAt %s", task.StoppedAt, task.StoppingAt)
	}
	if d := task.StoppedAt.Sub(*task.StoppingAt); d < 2500*time.Millisecond {
		t.Errorf("stoppedAt is %v after stoppingAt; the stubborn container alone takes 3s", d)
	}
}

// TestBadImage: an image no registry has stops the task with
// TaskFailedToStart and CannotPullContainerError.
func TestBadImage(t *testing.T) {
	e := newEnv(t)
	c := e.ctr("app", `exec sleep 3600`)
	c.Image = aws.String("wharf-test/does-not-exist:1")
	arn := e.run(e.register("badimage", types.NetworkModeNone, c))
	e.sdkWaitStopped(arn)
	task := e.describe(arn)
	if task.StopCode != types.TaskStopCodeTaskFailedToStart {
		t.Errorf("stopCode %q, want TaskFailedToStart: %s", task.StopCode, summary(task))
	}
	if reason := aws.ToString(taskContainer(t, task, "app").Reason); !strings.HasPrefix(reason, "CannotPullContainerError") {
		t.Errorf("the container's reason %q does not start with CannotPullContainerError", reason)
	}
	if !strings.Contains(aws.ToString(task.StoppedReason), "CannotPullContainerError") {
		t.Errorf("stoppedReason %q does not name CannotPullContainerError", aws.ToString(task.StoppedReason))
	}
}

// TestTaskMetadataEndpoint: a container reads its own metadata, its task's
// and its stats from ECS_CONTAINER_METADATA_URI_V4.
func TestTaskMetadataEndpoint(t *testing.T) {
	e := newEnv(t)
	// busybox's wget crashes with -T; the endpoint answers at once anyway.
	app := e.ctr("app", `set -e
echo "uri $ECS_CONTAINER_METADATA_URI_V4"
echo "container $(wget -q -O - "$ECS_CONTAINER_METADATA_URI_V4")"
echo "task $(wget -q -O - "$ECS_CONTAINER_METADATA_URI_V4/task")"
echo "stats $(wget -q -O - "$ECS_CONTAINER_METADATA_URI_V4/stats")"
echo done
exec sleep 3600`)
	arn := e.run(e.register("metadata", types.NetworkModeBridge, app))
	task := e.waitRunning(arn)
	id := aws.ToString(taskContainer(t, task, "app").RuntimeId)

	out := map[string]string{}
	waitFor(t, "the container to print its metadata", taskWait, func() (bool, string) {
		logs := e.logs(id)
		for _, l := range lines(logs) {
			k, v, _ := strings.Cut(l, " ")
			out[k] = v
		}
		if st := e.inspect(id).State; !st.Running {
			t.Fatalf("the container exited with %d before printing its metadata:\n%s", st.ExitCode, logs)
		}
		_, done := out["done"]
		return done, logs
	})
	if !strings.HasPrefix(out["uri"], "http://") {
		t.Fatalf("ECS_CONTAINER_METADATA_URI_V4 is %q", out["uri"])
	}
	var cm struct {
		DockerID   string `json:"DockerId"`
		Name       string `json:"Name"`
		KnownState string `json:"KnownStatus"`
	}
	if err := json.Unmarshal([]byte(out["container"]), &cm); err != nil {
		t.Fatalf("container metadata %q: %v", out["container"], err)
	}
	if cm.DockerID != id || cm.Name != "app" {
		t.Errorf("container metadata names %q (%s), want app (%s)", cm.Name, cm.DockerID, id)
	}
	var tm struct {
		TaskARN    string `json:"TaskARN"`
		Cluster    string `json:"Cluster"`
		Containers []struct {
			DockerID string `json:"DockerId"`
			Name     string `json:"Name"`
		} `json:"Containers"`
	}
	if err := json.Unmarshal([]byte(out["task"]), &tm); err != nil {
		t.Fatalf("task metadata %q: %v", out["task"], err)
	}
	if tm.TaskARN != arn {
		t.Errorf("task metadata has TaskARN %q, want %s", tm.TaskARN, arn)
	}
	if len(tm.Containers) != 1 || tm.Containers[0].Name != "app" || tm.Containers[0].DockerID != id {
		t.Errorf("task metadata lists containers %+v, want app with DockerId %s", tm.Containers, id)
	}
	var stats map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out["stats"]), &stats); err != nil {
		t.Fatalf("stats %q: %v", out["stats"], err)
	}
	if len(stats["cpu_stats"]) == 0 || string(stats["cpu_stats"]) == "null" {
		t.Errorf("stats lack cpu_stats: %s", out["stats"])
	}
}
