package agent_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharfhq/wharf/internal/agent"
	"github.com/wharfhq/wharf/internal/api/agentapi"
	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/runtime"
	"github.com/wharfhq/wharf/internal/runtime/sim"
)

// lossyRuntime is a simulated engine whose event stream loses what drop
// says, can be fed extra events, broken, and have its Inspect calls held
// or failed.
type lossyRuntime struct {
	*sim.Runtime

	mu         sync.Mutex
	drop       func(runtime.Event) bool
	out        chan runtime.Event // the current stream
	broken     chan struct{}      // closed to break the current stream
	hold       chan struct{}      // Inspect waits until it is closed
	held       chan struct{}      // receives when an Inspect waits
	inspectErr error
	delivered  []runtime.Event // what the agent received
}

func newLossyRuntime() *lossyRuntime {
	return &lossyRuntime{Runtime: sim.New(), held: make(chan struct{}, 1)}
}

func (r *lossyRuntime) Events(ctx context.Context) (<-chan runtime.Event, <-chan error) {
	in, inErr := r.Runtime.Events(ctx)
	out, errc := make(chan runtime.Event), make(chan error, 1)
	broken := make(chan struct{})
	r.mu.Lock()
	r.out, r.broken = out, broken
	r.mu.Unlock()
	go func() {
		defer close(out)
		for {
			select {
			case ev, ok := <-in:
				if !ok {
					errc <- <-inErr
					return
				}
				r.mu.Lock()
				lost := r.drop != nil && r.drop(ev)
				r.mu.Unlock()
				if lost {
					continue
				}
				select {
				case out <- ev:
					r.mu.Lock()
					r.delivered = append(r.delivered, ev)
					r.mu.Unlock()
				case <-broken:
					errc <- errors.New("event stream broken by the test")
					return
				case <-ctx.Done():
					errc <- ctx.Err()
					return
				}
			case <-broken:
				errc <- errors.New("event stream broken by the test")
				return
			case <-ctx.Done():
				errc <- ctx.Err()
				return
			}
		}
	}()
	return out, errc
}

// push hands the agent an event; it returns once the agent has taken it.
func (r *lossyRuntime) push(t *testing.T, ev runtime.Event) {
	t.Helper()
	r.mu.Lock()
	out := r.out
	r.mu.Unlock()
	select {
	case out <- ev:
	case <-time.After(10 * time.Second):
		t.Fatalf("the agent did not take event %+v within 10s", ev)
	}
}

func (r *lossyRuntime) breakStream() {
	r.mu.Lock()
	defer r.mu.Unlock()
	close(r.broken)
}

func (r *lossyRuntime) Inspect(ctx context.Context, id string) (*runtime.State, error) {
	r.mu.Lock()
	hold, err := r.hold, r.inspectErr
	r.mu.Unlock()
	if hold != nil {
		select {
		case r.held <- struct{}{}:
		default:
		}
		select {
		case <-hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err != nil {
		return nil, err
	}
	return r.Runtime.Inspect(ctx, id)
}

func (r *lossyRuntime) wasDelivered(match func(runtime.Event) bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range r.delivered {
		if match(ev) {
			return true
		}
	}
	return false
}

func randomTaskArn() string {
	id := make([]byte, 16)
	rand.Read(id)
	return "arn:aws:ecs:us-east-1:000000000000:task/sc/" + hex.EncodeToString(id)
}

// simTask is a task of long-running containers: app (essential) and side
// (not essential).
func simTask() agentapi.AssignedTask {
	return agentapi.AssignedTask{
		Task: ecsapi.Task{TaskArn: randomTaskArn(), DesiredStatus: "RUNNING", LastStatus: "PROVISIONING"},
		TaskDefinition: ecsapi.TaskDefinition{Family: "web", Revision: 3, NetworkMode: ecsapi.NetworkModeNone, ContainerDefinitions: []ecsapi.ContainerDefinition{
			{Name: "app", Image: "app:1"},
			{Name: "side", Image: "side:1", Essential: new(bool)},
		}},
	}
}

// startSimAgent runs an agent on rt against f until the test ends.
func startSimAgent(t *testing.T, f *fakeControlPlane, rt runtime.Runtime, logs *syncWriter, adjust func(*agent.Config)) *agent.Agent {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	cfg := agent.Config{Endpoint: srv.URL, Cluster: "sc", Runtime: rt, Name: "resync", StateDir: t.TempDir(),
		AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret", PauseImage: "wharf/pause:sim", Simulated: true,
		ReservedPorts: []string{"22"}, CPU: 1024, MemoryMiB: 1024, PollWait: time.Second, StopTimeout: time.Second,
		Logger: slog.New(slog.NewTextHandler(logs, nil))}
	if adjust != nil {
		adjust(&cfg)
	}
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("agent log:\n%s", logs.String())
		}
	})
	within(t, "the agent to register", 10*time.Second, func() (bool, string) { return a.InstanceArn() != "", "" })
	return a
}

func waitStatus(t *testing.T, f *fakeControlPlane, arn, want string, d time.Duration) {
	t.Helper()
	within(t, "task "+want, d, func() (bool, string) {
		s := f.taskStatus(arn)
		return strings.HasPrefix(s, want), s
	})
}

func isDie(ev runtime.Event) bool { return ev.Action == "die" }

// TestResync: an essential container's exit stops its task although the
// agent never got its event: periodic resyncs, a full event queue and a
// reconnected event stream each make the agent read the containers again.
func TestResync(t *testing.T) {
	for _, tc := range []struct {
		name   string
		resync time.Duration
		// lose makes the agent miss app's exit.
		lose func(t *testing.T, rt *lossyRuntime, a *agent.Agent, at agentapi.AssignedTask)
	}{
		{"periodically", 200 * time.Millisecond, func(t *testing.T, rt *lossyRuntime, a *agent.Agent, at agentapi.AssignedTask) {
			rt.mu.Lock()
			rt.drop = isDie
			rt.mu.Unlock()
			rt.Kill(a.ContainerID(at.Task.TaskArn, "app"), 3)
		}},
		{"after a dropped event", time.Hour, func(t *testing.T, rt *lossyRuntime, a *agent.Agent, at agentapi.AssignedTask) {
			app, side := a.ContainerID(at.Task.TaskArn, "app"), a.ContainerID(at.Task.TaskArn, "side")
			st, err := rt.Inspect(context.Background(), side)
			if err != nil {
				t.Fatal(err)
			}
			sideEvent := runtime.Event{ContainerID: side, Action: "exec_start", Labels: st.Labels, Time: time.Now()}
			// The task's manager is busy with a first event while the
			// queue fills with more for side; app's exit finds it full.
			hold := make(chan struct{})
			rt.mu.Lock()
			rt.hold = hold
			rt.mu.Unlock()
			rt.push(t, sideEvent)
			select {
			case <-rt.held:
			case <-time.After(10 * time.Second):
				t.Fatal("the agent did not inspect side after its event")
			}
			for range 100 {
				rt.push(t, sideEvent)
			}
			rt.Kill(app, 3)
			within(t, "app's exit event delivered", 10*time.Second, func() (bool, string) {
				return rt.wasDelivered(func(ev runtime.Event) bool { return ev.ContainerID == app && isDie(ev) }), ""
			})
			rt.push(t, runtime.Event{Action: "sentinel"}) // the agent has handled app's exit event
			rt.mu.Lock()
			rt.hold = nil
			rt.mu.Unlock()
			close(hold)
		}},
		{"after the event stream broke", time.Hour, func(t *testing.T, rt *lossyRuntime, a *agent.Agent, at agentapi.AssignedTask) {
			rt.mu.Lock()
			rt.drop = isDie
			rt.mu.Unlock()
			rt.Kill(a.ContainerID(at.Task.TaskArn, "app"), 3)
			rt.breakStream()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeControlPlane(t)
			rt := newLossyRuntime()
			var logs syncWriter
			a := startSimAgent(t, f, rt, &logs, func(c *agent.Config) { c.ResyncInterval = tc.resync })
			at := simTask()
			f.assign(at)
			waitStatus(t, f, at.Task.TaskArn, "RUNNING", 10*time.Second)
			tc.lose(t, rt, a, at)
			waitStatus(t, f, at.Task.TaskArn, "STOPPED: Essential container in task exited", 5*time.Second)
		})
	}
}

// TestRefreshErrorsLogged: when the engine cannot say what became of a
// container, the agent logs it.
func TestRefreshErrorsLogged(t *testing.T) {
	f := newFakeControlPlane(t)
	rt := newLossyRuntime()
	var logs syncWriter
	a := startSimAgent(t, f, rt, &logs, func(c *agent.Config) { c.ResyncInterval = 200 * time.Millisecond })
	at := simTask()
	f.assign(at)
	waitStatus(t, f, at.Task.TaskArn, "RUNNING", 10*time.Second)
	rt.mu.Lock()
	rt.inspectErr = fmt.Errorf("engine hiccup %s", at.Task.TaskArn)
	rt.mu.Unlock()
	app := a.ContainerID(at.Task.TaskArn, "app")
	st, err := rt.Runtime.Inspect(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	rt.push(t, runtime.Event{ContainerID: app, Action: "exec_start", Labels: st.Labels, Time: time.Now()})
	within(t, "the refresh error logged", 5*time.Second, func() (bool, string) {
		out := logs.String()
		return strings.Contains(out, "level=WARN") && strings.Contains(out, "engine hiccup "+at.Task.TaskArn), ""
	})
}
