package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wharfhq/wharf/internal/testenv"
)

// TestDevThreeNodes runs `wharf dev --nodes 3` and uses it as a user would,
// with the AWS CLI v2 and the credentials dev mode writes: three container
// instances in three availability zones, a task started on each, and the
// CLI's tasks-running and tasks-stopped waiters.
func TestDevThreeNodes(t *testing.T) {
	cli := testenv.AWSCLI(t)
	e := prepare(t, config{})
	dataDir := filepath.Join(e.dir, "dev")
	port := freePort(t)
	e.server = e.start("dev", "dev", "--nodes", "3", "--data-dir", dataDir,
		"--listen", "127.0.0.1:"+strconv.Itoa(port), "--stop-timeout", "5s", "--log-level", "debug")
	e.cluster = "default"

	// dev mode writes the endpoint and its access key as shell exports.
	vars := map[string]string{}
	waitFor(t, "wharf dev to write "+filepath.Join(dataDir, "env"), startWait, func() (bool, string) {
		if e.server.exited() {
			t.Fatalf("wharf dev exited: %v\n%s", e.server.err, e.server.tail(50))
		}
		b, err := os.ReadFile(filepath.Join(dataDir, "env"))
		if err != nil {
			return false, err.Error()
		}
		for _, l := range lines(string(b)) {
			if k, v, ok := strings.Cut(strings.TrimPrefix(l, "export "), "="); ok {
				vars[k] = v
			}
		}
		return vars["AWS_ENDPOINT_URL"] != "" && vars["AWS_SECRET_ACCESS_KEY"] != "", string(b)
	})
	e.endpoint = vars["AWS_ENDPOINT_URL"]
	run := func(timeout time.Duration, args ...string) []byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, cli, append([]string{"--endpoint-url", e.endpoint, "--output", "json"}, args...)...)
		cmd.Env = append(processEnv(),
			"AWS_ACCESS_KEY_ID="+vars["AWS_ACCESS_KEY_ID"],
			"AWS_SECRET_ACCESS_KEY="+vars["AWS_SECRET_ACCESS_KEY"],
			"AWS_DEFAULT_REGION="+vars["AWS_REGION"],
			"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PAGER=",
		)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		start := time.Now()
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("aws %s: %v after %v\n%s", strings.Join(args, " "), err, time.Since(start).Round(time.Millisecond), stderr.String())
		}
		t.Logf("aws %s: %v", strings.Join(args[:min(len(args), 2)], " "), time.Since(start).Round(time.Millisecond))
		return out
	}
	decode := func(b []byte, v any) {
		t.Helper()
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
	}

	// An empty list is printed as one, as ECS answers it, so that scripts
	// can count it.
	if out := strings.TrimSpace(string(run(callWait, "ecs", "list-tasks", "--cluster", e.cluster))); !strings.Contains(out, `"taskArns": []`) {
		t.Errorf("list-tasks of a cluster without tasks prints %q, want {\"taskArns\": []}", out)
	}

	var arns []string
	waitFor(t, "three container instances in list-container-instances", startWait, func() (bool, string) {
		var out struct{ ContainerInstanceArns []string }
		b := run(callWait, "ecs", "list-container-instances", "--cluster", e.cluster)
		if len(bytes.TrimSpace(b)) == 0 {
			return false, "no output" // see the list-tasks check above
		}
		decode(b, &out)
		arns = out.ContainerInstanceArns
		for _, arn := range arns {
			e.mu.Lock()
			e.instances[arn] = true
			e.mu.Unlock()
		}
		return len(arns) == 3, strconv.Itoa(len(arns)) + " instances"
	})
	var described struct {
		ContainerInstances []struct {
			ContainerInstanceArn string
			AgentConnected       bool
			Status               string
			Attributes           []struct{ Name, Value string }
		}
	}
	decode(run(callWait, append([]string{"ecs", "describe-container-instances", "--cluster", e.cluster, "--container-instances"}, arns...)...), &described)
	var zones []string
	for _, ci := range described.ContainerInstances {
		if !ci.AgentConnected || ci.Status != "ACTIVE" {
			t.Errorf("instance %s: agentConnected=%v status %s", ci.ContainerInstanceArn, ci.AgentConnected, ci.Status)
		}
		for _, a := range ci.Attributes {
			if a.Name == "ecs.availability-zone" {
				zones = append(zones, a.Value)
			}
		}
	}
	slices.Sort(zones)
	if want := []string{"us-east-1a", "us-east-1b", "us-east-1c"}; !slices.Equal(zones, want) {
		t.Fatalf("the instances are in zones %v, want %v", zones, want)
	}

	defs, _ := json.Marshal([]map[string]any{{
		"name": "app", "image": e.image, "essential": true, "memoryReservation": 16,
		"command": []string{"sh", "-c", trapScript},
	}})
	run(callWait, "ecs", "register-task-definition", "--family", "dev", "--container-definitions", string(defs))
	var started struct {
		Tasks    []struct{ TaskArn, ContainerInstanceArn string }
		Failures []any
	}
	decode(run(callWait, append([]string{"ecs", "start-task", "--cluster", e.cluster, "--task-definition", "dev", "--container-instances"}, arns...)...), &started)
	if len(started.Tasks) != 3 {
		t.Fatalf("start-task on three instances started %d tasks; failures %s", len(started.Tasks), jsonOf(started.Failures))
	}
	var tasks []string
	placed := map[string]bool{}
	for _, task := range started.Tasks {
		tasks = append(tasks, task.TaskArn)
		placed[task.ContainerInstanceArn] = true
	}
	if len(placed) != 3 {
		t.Fatalf("the three tasks went to %d instances", len(placed))
	}

	begin := time.Now()
	run(3*time.Minute, append([]string{"ecs", "wait", "tasks-running", "--cluster", e.cluster, "--tasks"}, tasks...)...)
	t.Logf("tasks-running returned after %v", time.Since(begin).Round(time.Millisecond))
	var desc struct {
		Tasks []struct{ TaskArn, LastStatus, ContainerInstanceArn, AvailabilityZone string }
	}
	decode(run(callWait, append([]string{"ecs", "describe-tasks", "--cluster", e.cluster, "--tasks"}, tasks...)...), &desc)
	zones = zones[:0]
	for _, task := range desc.Tasks {
		if task.LastStatus != "RUNNING" {
			t.Errorf("task %s is %s after tasks-running returned", taskID(task.TaskArn), task.LastStatus)
		}
		zones = append(zones, task.AvailabilityZone)
		// Its container runs on the local engine, labelled with its node.
		cs := e.containersOf(task.TaskArn)
		if len(cs) != 1 || cs[0].State != "running" || cs[0].Labels[labelInstance] != task.ContainerInstanceArn {
			t.Errorf("task %s on %s: containers %s", taskID(task.TaskArn), task.ContainerInstanceArn, jsonOf(cs))
		}
	}
	slices.Sort(zones)
	if want := []string{"us-east-1a", "us-east-1b", "us-east-1c"}; !slices.Equal(zones, want) {
		t.Errorf("the tasks run in zones %v, want %v", zones, want)
	}

	for _, task := range tasks {
		run(callWait, "ecs", "stop-task", "--cluster", e.cluster, "--task", task, "--reason", "e2e: dev")
	}
	begin = time.Now()
	run(3*time.Minute, append([]string{"ecs", "wait", "tasks-stopped", "--cluster", e.cluster, "--tasks"}, tasks...)...)
	t.Logf("tasks-stopped returned after %v", time.Since(begin).Round(time.Millisecond))
	decode(run(callWait, append([]string{"ecs", "describe-tasks", "--cluster", e.cluster, "--tasks"}, tasks...)...), &desc)
	for _, task := range desc.Tasks {
		if task.LastStatus != "STOPPED" {
			t.Errorf("task %s is %s after tasks-stopped returned", taskID(task.TaskArn), task.LastStatus)
		}
	}
}
