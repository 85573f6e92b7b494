package sim_test

import (
	"strconv"
	"testing"

	"github.com/wharfhq/wharf/internal/runtime"
	"github.com/wharfhq/wharf/internal/runtime/runtimetest"
	"github.com/wharfhq/wharf/internal/runtime/sim"
)

// TestConformance: the simulated runtime keeps the contract the agent
// relies on, as the Docker runtime does.
func TestConformance(t *testing.T) {
	runtimetest.Run(t, func(*testing.T) runtime.Runtime { return sim.New() }, runtimetest.Config{
		Image:      "wharf-test/busybox:sim",
		Sleep:      []string{"sleep", "300"},
		IgnoreTerm: []string{"sim-ignore-term"},
		Exit:       func(code int) []string { return []string{"sim-exit", strconv.Itoa(code)} },
		OOM:        []string{"sim-oom"},
		Healthy:    []string{"CMD", "true"},
		Unhealthy:  []string{"CMD", "sim-unhealthy"},
		Subnet:     "10.231.0.0/24",
	})
}
