package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
)

var wharfBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wharf-bin")
	if err != nil {
		panic(err)
	}
	wharfBin = filepath.Join(dir, "wharf")
	if out, err := exec.Command("go", "build", "-o", wharfBin, ".").CombinedOutput(); err != nil {
		panic("build wharf: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// readEnv parses the export lines of a dev mode env file.
func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
		if ok {
			env[k] = v
		}
	}
	return env
}

// startDev runs `wharf dev` and waits until its env file names a live
// endpoint.
func startDev(t *testing.T, dir string, extraEnv ...string) (*exec.Cmd, map[string]string) {
	t.Helper()
	envFile := filepath.Join(dir, "env")
	os.Remove(envFile)
	cmd := exec.Command(wharfBin, "dev", "--data-dir", dir)
	cmd.Env = append(os.Environ(), extraEnv...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(envFile); err == nil {
			return cmd, readEnv(t, envFile)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("wharf dev did not write %s within 60s", envFile)
	return nil, nil
}

func client(env map[string]string) *ecs.Client {
	return ecs.New(ecs.Options{
		Region:       env["AWS_REGION"],
		Credentials:  credentials.NewStaticCredentialsProvider(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], ""),
		BaseEndpoint: aws.String(env["AWS_ENDPOINT_URL"]),
	})
}

// stop sends SIGTERM and expects a clean exit.
func stop(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("wharf dev exited uncleanly after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("wharf dev did not stop within 30s of SIGTERM")
	}
}

func TestDevModeKeepsStateAndKeys(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	cmd, env := startDev(t, dir, "WHARF_REGION=eu-central-1")
	for _, k := range []string{"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"} {
		if env[k] == "" {
			t.Fatalf("env file lacks %s: %v", k, env)
		}
	}
	if env["AWS_REGION"] != "eu-central-1" {
		t.Fatalf("WHARF_REGION not applied: %s", env["AWS_REGION"])
	}
	c := client(env)
	list, err := c.ListClusters(ctx, &ecs.ListClustersInput{})
	if err != nil || len(list.ClusterArns) != 1 || !strings.HasSuffix(list.ClusterArns[0], "cluster/default") {
		t.Fatalf("a new dev install lists %v (%v), want the default cluster", list, err)
	}
	if _, err := c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("kept")}); err != nil {
		t.Fatal(err)
	}
	stop(t, cmd)

	cmd, env2 := startDev(t, dir, "WHARF_REGION=eu-central-1")
	if env2["AWS_ACCESS_KEY_ID"] != env["AWS_ACCESS_KEY_ID"] || env2["AWS_SECRET_ACCESS_KEY"] != env["AWS_SECRET_ACCESS_KEY"] {
		t.Fatal("the access key changed across restarts")
	}
	if env2["AWS_ENDPOINT_URL"] != env["AWS_ENDPOINT_URL"] {
		t.Errorf("the endpoint moved from %s to %s although its port was free", env["AWS_ENDPOINT_URL"], env2["AWS_ENDPOINT_URL"])
	}
	d, err := client(env2).DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{"kept"}})
	if err != nil || len(d.Clusters) != 1 {
		t.Fatalf("cluster lost across restart: %v %v", d, err)
	}
	stop(t, cmd)
	if fi, err := os.Stat(filepath.Join(dir, "credentials.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file %v %v, want mode 0600", fi, err)
	}
}

func TestHelpAndVersion(t *testing.T) {
	out, err := exec.Command(wharfBin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "wharf ") || !strings.Contains(string(out), "commit") {
		t.Fatalf("version: %q %v", out, err)
	}
	for _, sub := range []string{"dev", "server"} {
		out, err := exec.Command(wharfBin, sub, "--help").CombinedOutput()
		if err != nil {
			t.Fatalf("%s --help failed: %v", sub, err)
		}
		for _, want := range []string{"--listen", "WHARF_LISTEN", "--etcd-endpoints", "--max-clock-skew"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("%s --help lacks %s", sub, want)
			}
		}
	}
	if err := exec.Command(wharfBin, "launch").Run(); err == nil {
		t.Fatal("an unknown command succeeded")
	}
	out, err = exec.Command(wharfBin, "server", "--data-dir", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "access-key-id") {
		t.Fatalf("server without keys: %q %v", out, err)
	}
}
