package agent_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"regexp"
	"sort"
	"testing"
	"time"

	"github.com/wharfhq/wharf/internal/agent"
	"github.com/wharfhq/wharf/internal/api/agentapi"
	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/runtime/sim"
)

// TestContainerNamesAndAdoption: containers are named as the ECS agent
// names them, ecs-<family>-<revision>-<container>-<20 hex digits> (the
// pause container's name is internalecspause), and a restarted agent
// adopts them by their labels.
func TestContainerNamesAndAdoption(t *testing.T) {
	f := newFakeControlPlane(t)
	f.network = &agentapi.Network{Name: "wharf-awsvpc", Subnet: "10.201.0.0/24", Gateway: "10.201.0.1"}
	srv := httptest.NewServer(f)
	defer srv.Close()
	rt := sim.New()
	stateDir := t.TempDir()
	var logs syncWriter
	defer func() {
		if t.Failed() {
			t.Logf("agent log:\n%s", logs.String())
		}
	}()
	start := func() (*agent.Agent, func()) {
		a, err := agent.New(agent.Config{Endpoint: srv.URL, Cluster: "sc", Runtime: rt, StateDir: stateDir,
			AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret", PauseImage: "wharf/pause:sim", Simulated: true,
			ReservedPorts: []string{"22"}, CPU: 1024, MemoryMiB: 1024, PollWait: time.Second, StopTimeout: time.Second,
			Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		within(t, "the agent to register", 10*time.Second, func() (bool, string) { return a.InstanceArn() != "", "" })
		return a, func() { cancel(); <-done }
	}
	a, stop := start()

	bridge := simTask()
	vpc := agentapi.AssignedTask{
		Task: ecsapi.Task{TaskArn: randomTaskArn(), DesiredStatus: "RUNNING", LastStatus: "PROVISIONING",
			Attachments: []ecsapi.Attachment{{Id: "eni-1", Type: "ElasticNetworkInterface", Details: []ecsapi.KeyValuePair{
				{Name: "privateIPv4Address", Value: "10.201.0.5"}, {Name: "macAddress", Value: "02:42:0a:c9:00:05"}}}}},
		TaskDefinition: ecsapi.TaskDefinition{Family: "shop_api", Revision: 12, NetworkMode: ecsapi.NetworkModeAwsvpc,
			ContainerDefinitions: []ecsapi.ContainerDefinition{{Name: "log_router.v2", Image: "log:1"}}},
	}
	f.assign(bridge)
	f.assign(vpc)
	waitStatus(t, f, bridge.Task.TaskArn, "RUNNING", 10*time.Second)
	waitStatus(t, f, vpc.Task.TaskArn, "RUNNING", 10*time.Second)

	names := func(arn string) map[string]string { // engine name → id
		states, err := rt.List(context.Background(), map[string]string{"com.amazonaws.ecs.task-arn": arn})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, st := range states {
			out[st.Name] = st.ID
		}
		return out
	}
	for arn, want := range map[string][]string{
		bridge.Task.TaskArn: {`^ecs-web-3-app-[0-9a-f]{20}$`, `^ecs-web-3-side-[0-9a-f]{20}$`},
		vpc.Task.TaskArn:    {`^ecs-shop_api-12-internalecspause-[0-9a-f]{20}$`, `^ecs-shop_api-12-logrouterv2-[0-9a-f]{20}$`},
	} {
		got := names(arn)
		var list []string
		for n := range got {
			list = append(list, n)
		}
		sort.Strings(list)
		if len(list) != len(want) {
			t.Fatalf("task %s has containers %v, want %d", arn, list, len(want))
		}
		for i, re := range want {
			if !regexp.MustCompile(re).MatchString(list[i]) {
				t.Errorf("container name %q does not match %s", list[i], re)
			}
		}
	}
	before := map[string]map[string]string{bridge.Task.TaskArn: names(bridge.Task.TaskArn), vpc.Task.TaskArn: names(vpc.Task.TaskArn)}
	appID := a.ContainerID(bridge.Task.TaskArn, "app")

	// A new agent with the same state directory takes the containers over
	// by their labels: no container is made again, none is stopped.
	stop()
	a, stop = start()
	defer stop()
	within(t, "the new agent to adopt app", 10*time.Second, func() (bool, string) {
		id := a.ContainerID(bridge.Task.TaskArn, "app")
		return id == appID, fmt.Sprintf("app is %q, was %q", id, appID)
	})
	for arn, was := range before {
		if now := names(arn); fmt.Sprint(now) != fmt.Sprint(was) {
			t.Errorf("task %s had containers %v before the restart, %v after", arn, was, now)
		}
		for _, id := range was {
			if st, err := rt.Inspect(context.Background(), id); err != nil || !st.Running {
				t.Errorf("container %s of task %s after the restart: %+v %v, want it running", id, arn, st, err)
			}
		}
	}
	if s := f.taskStatus(bridge.Task.TaskArn); s != "RUNNING" {
		t.Errorf("task status %q after the restart, want RUNNING", s)
	}
}
