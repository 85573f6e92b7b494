package agent

import (
	"strings"
	"testing"
	"testing/cryptotest"

	"github.com/wharfhq/wharf/internal/agent/metadata"
	"github.com/wharfhq/wharf/internal/api/agentapi"
	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
)

// TestMetadataTokens: the per-container tokens that guard the task
// metadata endpoint (and the Service Connect proxy's configuration, which
// holds its TLS key) carry 128 bits from crypto/rand.
func TestMetadataTokens(t *testing.T) {
	newTokens := func() []string {
		a := &Agent{log: slogDiscard(), metadata: metadata.New(nil)}
		m := newTaskManager(a, agentapi.AssignedTask{
			Task:           ecsapi.Task{TaskArn: "arn:aws:ecs:us-east-1:000000000000:task/c/0123456789abcdef0123456789abcdef"},
			TaskDefinition: ecsapi.TaskDefinition{Family: "web", Revision: 3, ContainerDefinitions: []ecsapi.ContainerDefinition{{Name: "app"}, {Name: "log"}}},
		})
		var out []string
		for _, name := range m.order {
			out = append(out, m.containers[name].token)
		}
		return out
	}

	seen := map[string]bool{}
	for range 100 {
		for _, tok := range newTokens() {
			if len(tok) < 32 || strings.Trim(tok, "0123456789abcdef") != "" {
				t.Fatalf("token %q: want at least 32 lower-case hex digits (128 bits)", tok)
			}
			if seen[tok] {
				t.Fatalf("token %q handed out twice", tok)
			}
			seen[tok] = true
		}
	}

	// A fixed crypto/rand stream gives the same tokens again: they come
	// from crypto/rand, not from math/rand's generator.
	cryptotest.SetGlobalRandom(t, 7)
	first := newTokens()
	cryptotest.SetGlobalRandom(t, 7)
	if again := newTokens(); strings.Join(again, ",") != strings.Join(first, ",") {
		t.Fatalf("tokens %v and %v from the same crypto/rand stream differ: they do not come from crypto/rand", first, again)
	}
}
