package docker_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"testing"

	"github.com/docker/docker/api/types/image"

	"github.com/wharfhq/wharf/internal/runtime"
	"github.com/wharfhq/wharf/internal/runtime/docker"
	"github.com/wharfhq/wharf/internal/runtime/runtimetest"
	"github.com/wharfhq/wharf/internal/testenv"
)

// TestConformance: the Docker runtime keeps the contract the agent relies
// on; the simulated runtime runs the same suite.
func TestConformance(t *testing.T) {
	img := testenv.BusyboxImage(t)
	rt, err := docker.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	cli, err := testenv.DockerClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	// A third octet of 10.232.x.0/24 from the run id, so that concurrent
	// runs likely differ (the package's other tests use 10.231).
	b, _ := hex.DecodeString(runID)
	runtimetest.Run(t, func(*testing.T) runtime.Runtime { return rt }, runtimetest.Config{
		Image: img,
		// A shell as PID 1 ignores signals it has no handler for, so
		// each says when its trap is set.
		Sleep:      sh("trap 'exit 0' TERM; echo ready; sleep 300 & wait"),
		IgnoreTerm: sh("trap '' TERM; echo ready; while :; do sleep 1; done"),
		ReadyLog:   "ready",
		Exit:       func(code int) []string { return sh("exit " + strconv.Itoa(code)) },
		// busybox tail keeps the whole of a "line" of /dev/zero in memory.
		OOM:       []string{"tail", "/dev/zero"},
		Healthy:   []string{"CMD", "true"},
		Unhealthy: []string{"CMD-SHELL", "exit 1"},
		Subnet:    fmt.Sprintf("10.232.%d.0/24", b[1]),
		Labels:    testLabels(),
		RemoveImage: func(ctx context.Context, ref string) error {
			_, err := cli.ImageRemove(ctx, ref, image.RemoveOptions{Force: true, PruneChildren: true})
			return err
		},
	})
}
