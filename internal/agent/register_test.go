package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharfhq/wharf/internal/agent"
	"github.com/wharfhq/wharf/internal/api/agentapi"
	"github.com/wharfhq/wharf/internal/runtime/sim"
)

// retiringControlPlane registers instances arn-1, arn-2, ... and refuses
// polls for arn-1 with the agent protocol's code for an unknown instance,
// with a message that does not say so in words.
type retiringControlPlane struct {
	mu         sync.Mutex
	registered []string
}

func (f *retiringControlPlane) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	target := r.Header.Get("X-Amz-Target")
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	switch target[strings.LastIndex(target, ".")+1:] {
	case "RegisterContainerInstance":
		f.mu.Lock()
		arn := fmt.Sprintf("arn:aws:ecs:us-east-1:000000000000:container-instance/c/arn-%d", len(f.registered)+1)
		f.registered = append(f.registered, arn)
		f.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"containerInstance": map[string]string{"containerInstanceArn": arn}})
	case "Poll":
		var in agentapi.PollRequest
		json.Unmarshal(body, &in)
		if strings.HasSuffix(in.ContainerInstance, "/arn-1") {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]string{"__type": agentapi.CodeInstanceNotRegistered, "message": "instance retired"})
			return
		}
		if in.Index > 0 {
			select {
			case <-r.Context().Done():
			case <-time.After(time.Duration(in.WaitSeconds) * time.Second):
			}
		}
		json.NewEncoder(w).Encode(&agentapi.PollResponse{Index: 1, Tasks: []agentapi.AssignedTask{}})
	default:
		json.NewEncoder(w).Encode(struct{}{})
	}
}

func (f *retiringControlPlane) instances() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.registered...)
}

// TestReregisterOnCode: an agent whose instance the control plane refuses
// with CodeInstanceNotRegistered registers again, whatever the message.
func TestReregisterOnCode(t *testing.T) {
	f := &retiringControlPlane{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	a, err := agent.New(agent.Config{Endpoint: srv.URL, Cluster: "c", Runtime: sim.New(), StateDir: t.TempDir(),
		AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret", PauseImage: "wharf/pause:sim", Simulated: true,
		ReservedPorts: []string{"22"}, CPU: 1024, MemoryMiB: 1024, PollWait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	within(t, "the agent to register again after its instance was refused", 10*time.Second, func() (bool, string) {
		got := f.instances()
		return len(got) >= 2 && a.InstanceArn() == got[1], fmt.Sprintf("registered %v, agent has %q", got, a.InstanceArn())
	})
}
