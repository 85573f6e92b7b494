package agent_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wharfhq/wharf/internal/agent"
	"github.com/wharfhq/wharf/internal/runtime"
	"github.com/wharfhq/wharf/internal/runtime/sim"
)

// TestJanitorRemovesOrphans: containers of an installation whose state
// directory is gone from this host are stopped and removed; those of live
// installations, of other hosts and without the label stay. The agent's
// own containers carry its state directory and host.
func TestJanitorRemovesOrphans(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skipf("no host name: %v", err)
	}
	ctx := context.Background()
	rt := sim.New()
	gone := filepath.Join(t.TempDir(), "removed-data-dir", "agents", "node-1")
	live := t.TempDir()
	ids := map[string]string{}
	for name, labels := range map[string]map[string]string{
		"orphan":     {agent.LabelManaged: "true", agent.LabelHost: host, agent.LabelStateDir: gone},
		"live":       {agent.LabelManaged: "true", agent.LabelHost: host, agent.LabelStateDir: live},
		"other-host": {agent.LabelManaged: "true", agent.LabelHost: host + "-elsewhere", agent.LabelStateDir: gone},
		"unlabelled": {agent.LabelManaged: "true"},
	} {
		id, err := rt.Create(ctx, &runtime.ContainerSpec{Name: name, Image: "app:1", Labels: labels})
		if err != nil {
			t.Fatal(err)
		}
		if err := rt.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
		ids[name] = id
	}

	f := newFakeControlPlane(t)
	var logs syncWriter
	stateDir := t.TempDir()
	a := startSimAgent(t, f, rt, &logs, func(c *agent.Config) { c.StateDir = stateDir })
	within(t, "the orphan removed", 10*time.Second, func() (bool, string) {
		_, err := rt.Inspect(ctx, ids["orphan"])
		return err != nil, "still there"
	})
	for _, name := range []string{"live", "other-host", "unlabelled"} {
		if st, err := rt.Inspect(ctx, ids[name]); err != nil || !st.Running {
			t.Errorf("container %s: %+v %v, want it left running", name, st, err)
		}
	}

	at := simTask()
	f.assign(at)
	waitStatus(t, f, at.Task.TaskArn, "RUNNING", 10*time.Second)
	st, err := rt.Inspect(ctx, a.ContainerID(at.Task.TaskArn, "app"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Labels[agent.LabelStateDir] != stateDir || st.Labels[agent.LabelHost] != host {
		t.Fatalf("the agent's container has labels %v, want %s=%s and %s=%s", st.Labels, agent.LabelStateDir, stateDir, agent.LabelHost, host)
	}
}
