package testenv

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/wharfhq/wharf/internal/agent"
	"github.com/wharfhq/wharf/internal/runtime/sim"
)

// HollowNode is a real agent on a simulated runtime.
type HollowNode struct {
	Agent   *agent.Agent
	Runtime *sim.Runtime
	AZ      string
	stop    context.CancelFunc
	done    chan struct{}
}

// Stop ends the agent as if its process died; its containers stay.
func (h *HollowNode) Stop() {
	if h.stop == nil {
		return
	}
	h.stop()
	h.stop = nil
	<-h.done
}

// StartHollowNodes starts n agents on simulated runtimes, in availability
// zones us-east-1a, us-east-1b, ... in turn, joined to cluster, and waits
// until they are registered.
func StartHollowNodes(t testing.TB, srv *Server, cluster string, n int, adjust ...func(*agent.Config)) []*HollowNode {
	t.Helper()
	var nodes []*HollowNode
	for i := range n {
		rt := sim.New()
		az := fmt.Sprintf("%s%c", Region, 'a'+i%3)
		cfg := agent.Config{
			Endpoint: srv.Endpoint(), Region: Region, AccessKeyID: AccessKeyID, SecretAccessKey: SecretAccessKey,
			Cluster: cluster, Runtime: rt, Name: fmt.Sprintf("node-%d", i+1), StateDir: t.TempDir(),
			AvailabilityZone: az, PauseImage: "wharf/pause:sim", ProxyImage: "wharf/proxy:sim", Simulated: true, ReservedPorts: []string{"22"}, CPU: 4096, MemoryMiB: 8192, StopTimeout: 2 * time.Second, CleanupDelay: time.Minute,
			Logger: slog.New(slog.DiscardHandler),
		}
		if os.Getenv("WHARF_TEST_LOG") != "" {
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
		for _, f := range adjust {
			f(&cfg)
		}
		a, err := agent.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		h := &HollowNode{Agent: a, Runtime: rt, AZ: az, stop: cancel, done: make(chan struct{})}
		go func() {
			defer close(h.done)
			a.Run(ctx)
		}()
		t.Cleanup(h.Stop)
		nodes = append(nodes, h)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, h := range nodes {
		for h.Agent.InstanceArn() == "" {
			if time.Now().After(deadline) {
				t.Fatal("hollow nodes did not register within 30s")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nodes
}
