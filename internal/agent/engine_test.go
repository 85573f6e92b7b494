package agent_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharfhq/wharf/internal/agent"
	"github.com/wharfhq/wharf/internal/runtime"
	"github.com/wharfhq/wharf/internal/runtime/docker"
	"github.com/wharfhq/wharf/internal/runtime/sim"
)

// absentEngine is a runtime whose engine answers only once found is set:
// until then, Info asks a Docker engine whose socket does not exist.
type absentEngine struct {
	runtime.Runtime // answers once found
	missing         *docker.Docker

	mu       sync.Mutex
	attempts int
	found    bool
}

func (e *absentEngine) Info(ctx context.Context) (runtime.Info, error) {
	e.mu.Lock()
	e.attempts++
	found := e.found
	e.mu.Unlock()
	if found {
		return e.Runtime.Info(ctx)
	}
	return e.missing.Info(ctx)
}

func (e *absentEngine) tries() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.attempts
}

// TestEngineMissing: without a reachable engine the agent says so once,
// plainly, with how to start one, however long it waits; and once when
// the engine is found.
func TestEngineMissing(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "docker.sock"))
	missing, err := docker.New()
	if err != nil {
		t.Fatal(err)
	}
	defer missing.Close()
	rt := &absentEngine{Runtime: sim.New(), missing: missing}
	f := newFakeControlPlane(t)
	var logs syncWriter
	srv := httptest.NewServer(f)
	defer srv.Close()
	a, err := agent.New(agent.Config{Endpoint: srv.URL, Cluster: "sc", Runtime: rt, StateDir: t.TempDir(),
		AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret", PauseImage: "wharf/pause:sim", Simulated: true,
		ReservedPorts: []string{"22"}, CPU: 1024, MemoryMiB: 1024, PollWait: time.Second,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	defer func() {
		if t.Failed() {
			t.Logf("agent log:\n%s", logs.String())
		}
	}()

	// Four attempts take 3.5 s of back-off.
	within(t, "four attempts to reach the engine", 15*time.Second, func() (bool, string) {
		return rt.tries() >= 4, fmt.Sprint(rt.tries(), " attempts")
	})
	warnings := lines(logs.String(), "level=WARN")
	if len(warnings) != 1 {
		t.Fatalf("%d warnings after %d attempts, want one:\n%s", len(warnings), rt.tries(), strings.Join(warnings, "\n"))
	}
	for _, want := range []string{"dockerd", "systemctl start docker", "docker.sock"} {
		if !strings.Contains(warnings[0], want) {
			t.Errorf("the warning does not mention %q: %s", want, warnings[0])
		}
	}

	rt.mu.Lock()
	rt.found = true
	rt.mu.Unlock()
	within(t, "the agent to register once the engine answers", 20*time.Second, func() (bool, string) { return a.InstanceArn() != "", "" })
	found := lines(logs.String(), "container engine found")
	if len(found) != 1 || !strings.Contains(found[0], "level=INFO") {
		t.Fatalf("log lines saying the engine was found: %q, want one at INFO", found)
	}
	if n := len(lines(logs.String(), "level=WARN")); n != 1 {
		t.Fatalf("%d warnings in all, want one:\n%s", n, logs.String())
	}
}

func lines(s, substr string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}
