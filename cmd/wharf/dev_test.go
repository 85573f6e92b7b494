package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/wharfhq/wharf/internal/testenv"
)

// output collects a process's output for a test to look at while it runs.
type output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

func (o *output) lines(substr string) []string {
	var out []string
	for _, l := range strings.Split(o.String(), "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

// waitUntil polls cond until it holds, failing the test after d.
func waitUntil(t *testing.T, what string, d time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	var last string
	for time.Now().Before(deadline) {
		var ok bool
		if ok, last = cond(); ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v (last: %s)", what, d, last)
}

// startDevOutput runs `wharf dev` with args, collecting its output, and
// waits until its env file is written.
func startDevOutput(t *testing.T, dir string, env []string, args ...string) (*exec.Cmd, map[string]string, *output, *output) {
	t.Helper()
	stdout, stderr := &output{}, &output{}
	cmd := exec.Command(wharfBin, append([]string{"dev", "--data-dir", dir}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("wharf dev's output:\n%s\n%s", stdout, stderr)
		}
	})
	envFile := filepath.Join(dir, "env")
	waitUntil(t, "wharf dev to write "+envFile, 60*time.Second, func() (bool, string) {
		_, err := os.Stat(envFile)
		return err == nil, stderr.String()
	})
	return cmd, readEnv(t, envFile), stdout, stderr
}

// TestDevWithoutDocker: without a Docker engine, `wharf dev --nodes 3`
// serves the API and says once, with how to start Docker, that the
// engine is missing, however long it waits.
func TestDevWithoutDocker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	missing := "unix://" + filepath.Join(t.TempDir(), "docker.sock")
	cmd, env, _, stderr := startDevOutput(t, t.TempDir(), []string{"DOCKER_HOST=" + missing}, "--nodes", "3", "--log-level", "debug")
	if _, err := client(env).ListClusters(ctx, &ecs.ListClustersInput{}); err != nil {
		t.Fatalf("the API does not answer without Docker: %v", err)
	}
	waitUntil(t, "three more attempts to reach the engine", 30*time.Second, func() (bool, string) {
		n := len(stderr.lines("container engine still not reachable"))
		return n >= 3, stderr.String()
	})
	warnings := stderr.lines("container engine not reachable")
	if len(warnings) != 1 {
		t.Fatalf("%d warnings about the engine, want one:\n%s", len(warnings), strings.Join(warnings, "\n"))
	}
	for _, want := range []string{"level=WARN", "dockerd", "systemctl start docker", missing} {
		if !strings.Contains(warnings[0], want) {
			t.Errorf("the warning does not mention %q: %s", want, warnings[0])
		}
	}
	stop(t, cmd)
}

// TestDevSaysWhatItLeaves: stopped, `wharf dev` says which task
// containers it leaves running and how they are picked up again.
func TestDevSaysWhatItLeaves(t *testing.T) {
	image := testenv.BusyboxImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	cli, err := testenv.DockerClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	t.Cleanup(func() {
		// The containers this test's dev left.
		cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
		defer ccancel()
		list, _ := cli.ContainerList(cctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "wharf.state-dir="+filepath.Join(dir, "agents", "node-1")))})
		for _, c := range list {
			cli.ContainerRemove(cctx, c.ID, container.RemoveOptions{Force: true})
		}
	})
	cmd, env, stdout, _ := startDevOutput(t, dir, nil, "--nodes", "1", "--stop-timeout", "1s")
	c := client(env)
	if _, err := c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("leftover"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String(image), Memory: aws.Int32(32),
			Command: []string{"sleep", "3600"}}}}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the node to register", time.Minute, func() (bool, string) {
		out, err := c.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{})
		return err == nil && len(out.ContainerInstanceArns) == 1, ""
	})
	run, err := c.RunTask(ctx, &ecs.RunTaskInput{TaskDefinition: aws.String("leftover")})
	if err != nil || len(run.Tasks) != 1 {
		t.Fatalf("run task: %v %v", run, err)
	}
	waitUntil(t, "the task running", time.Minute, func() (bool, string) {
		out, err := c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Tasks: []string{aws.ToString(run.Tasks[0].TaskArn)}})
		if err != nil || len(out.Tasks) != 1 {
			return false, ""
		}
		return aws.ToString(out.Tasks[0].LastStatus) == "RUNNING", aws.ToString(out.Tasks[0].LastStatus)
	})
	stop(t, cmd)
	said := stdout.lines("running")
	found := false
	for _, l := range said {
		found = found || strings.Contains(l, "1 container of 1 task") && strings.Contains(l, dir)
	}
	if !found {
		t.Fatalf("wharf dev did not say it leaves 1 container of 1 task running, adopted with --data-dir %s; it said:\n%s", dir, stdout)
	}
}
