package agent_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/wharfhq/wharf/internal/agent"
	"github.com/wharfhq/wharf/internal/api/agentapi"
	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/runtime/docker"
	"github.com/wharfhq/wharf/internal/testenv"
)

// fakeControlPlane answers an agent as Wharf's control plane does for
// Service Connect, without a store: it assigns tasks, registers a
// client-server task's endpoint (host address and the host port the agent
// reports bound to its ingress port) once it runs, deregisters it when its
// stop is asked for, and serves the namespace's view.
type fakeControlPlane struct {
	t         *testing.T
	namespace string

	mu       sync.Mutex
	index    int64
	changed  chan struct{}
	tasks    map[string]*agentapi.AssignedTask
	status   map[string]string // task ARN → last reported status
	ingress  map[string]int32  // task ARN → host port of its ingress
	services []agentapi.ServiceView
	metrics  int // proxy metrics reports received
	// dns and network are what polls answer with (none when empty).
	dns     string
	network *agentapi.Network
}

func newFakeControlPlane(t *testing.T) *fakeControlPlane {
	return &fakeControlPlane{t: t, namespace: "arn:aws:servicediscovery:us-east-1:000000000000:namespace/ns-fruit", changed: make(chan struct{}),
		tasks: map[string]*agentapi.AssignedTask{}, status: map[string]string{}, ingress: map[string]int32{}}
}

// bump records a change. Call with mu held.
func (f *fakeControlPlane) bump() {
	f.index++
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeControlPlane) wait(ctx context.Context, index int64, secs int32) {
	f.mu.Lock()
	cur, ch := f.index, f.changed
	f.mu.Unlock()
	if index == 0 || index != cur {
		return
	}
	select {
	case <-ch:
	case <-ctx.Done():
	case <-time.After(time.Duration(secs) * time.Second):
	}
}

// view renders the namespace: every service, its endpoints the running,
// not stopping tasks of it. Call with mu held.
func (f *fakeControlPlane) view() agentapi.NamespaceView {
	v := agentapi.NamespaceView{Arn: f.namespace, Name: "fruit"}
	for _, s := range f.services {
		s.Endpoints = slices.Clone(s.Endpoints)
		for arn, at := range f.tasks {
			port, ok := f.ingress[arn]
			if !ok || f.status[arn] != "RUNNING" || at.Task.DesiredStatus == "STOPPED" || at.ServiceConnect == nil {
				continue
			}
			for _, in := range at.ServiceConnect.Services {
				if in.DiscoveryName == s.DiscoveryName {
					s.Endpoints = append(s.Endpoints, agentapi.Endpoint{Address: fmt.Sprintf("%s:%d", agent.BridgeGateway(), port), Zone: "us-east-1a", TaskArn: arn})
				}
			}
		}
		v.Services = append(v.Services, s)
	}
	return v
}

func (f *fakeControlPlane) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	target := r.Header.Get("X-Amz-Target")
	op := target[strings.LastIndex(target, ".")+1:]
	var out any = struct{}{}
	switch op {
	case "RegisterContainerInstance":
		out = map[string]any{"containerInstance": map[string]string{"containerInstanceArn": "arn:aws:ecs:us-east-1:000000000000:container-instance/sc/0123456789"}}
	case "Poll":
		var in agentapi.PollRequest
		json.Unmarshal(body, &in)
		f.wait(r.Context(), in.Index, in.WaitSeconds)
		f.mu.Lock()
		resp := &agentapi.PollResponse{Index: f.index, DNS: f.dns, Network: f.network}
		for _, at := range f.tasks {
			if at.Task.LastStatus != "STOPPED" {
				resp.Tasks = append(resp.Tasks, *at)
			}
		}
		f.mu.Unlock()
		out = resp
	case "ServiceConnectView":
		var in agentapi.ServiceConnectViewRequest
		json.Unmarshal(body, &in)
		f.wait(r.Context(), in.Index, in.WaitSeconds)
		f.mu.Lock()
		resp := &agentapi.ServiceConnectViewResponse{Index: f.index}
		if slices.Contains(in.Namespaces, f.namespace) {
			resp.Namespaces = []agentapi.NamespaceView{f.view()}
		}
		f.mu.Unlock()
		out = resp
	case "SubmitTaskStateChange":
		var in ecsapi.SubmitTaskStateChangeRequest
		json.Unmarshal(body, &in)
		f.mu.Lock()
		f.status[in.Task] = in.Status
		if in.Reason != "" {
			f.status[in.Task] += ": " + in.Reason
		}
		for _, c := range in.Containers {
			f.bindings(in.Task, c.NetworkBindings)
		}
		// As the control plane does, the task's last status moves only
		// forward: a restarted agent sees what was reported.
		if at := f.tasks[in.Task]; at != nil && ecsapi.TaskStage(in.Status) > ecsapi.TaskStage(at.Task.LastStatus) {
			at.Task.LastStatus = in.Status
		}
		f.bump()
		f.mu.Unlock()
	case "SubmitContainerStateChange":
		var in ecsapi.SubmitContainerStateChangeRequest
		json.Unmarshal(body, &in)
		f.mu.Lock()
		f.bindings(in.Task, in.NetworkBindings)
		f.mu.Unlock()
	case "ReportProxyMetrics":
		f.mu.Lock()
		f.metrics++
		f.mu.Unlock()
	case "ReportHealth":
	default:
		http.Error(w, `{"__type":"UnknownOperationException"}`, http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	json.NewEncoder(w).Encode(out)
}

// bindings notes the host port bound to a task's ingress port. Call with
// mu held.
func (f *fakeControlPlane) bindings(task string, bs []ecsapi.NetworkBinding) {
	at := f.tasks[task]
	if at == nil || at.ServiceConnect == nil {
		return
	}
	for _, b := range bs {
		for _, in := range at.ServiceConnect.Services {
			if b.ContainerPort != nil && *b.ContainerPort == in.IngressPort && b.HostPort != nil && !strings.Contains(b.BindIP, ":") {
				f.ingress[task] = *b.HostPort
			}
		}
	}
}

func (f *fakeControlPlane) assign(at agentapi.AssignedTask) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tasks[at.Task.TaskArn] = &at
	f.bump()
}

func (f *fakeControlPlane) stop(arn string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tasks[arn].Task.DesiredStatus = "STOPPED"
	f.bump()
}

func (f *fakeControlPlane) addService(s agentapi.ServiceView) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.services = append(f.services, s)
	f.bump()
}

func (f *fakeControlPlane) taskStatus(arn string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status[arn]
}

// fruitTask is a bridge client-server task whose container serves its name
// over HTTP on 8080, the port its alias uses too.
func (f *fakeControlPlane) fruitTask(image, name string) agentapi.AssignedTask {
	port := int32(8080)
	mem := int32(64)
	id := make([]byte, 16)
	rand.Read(id)
	arn := "arn:aws:ecs:us-east-1:000000000000:task/sc/" + hex.EncodeToString(id)
	return agentapi.AssignedTask{
		Task: ecsapi.Task{TaskArn: arn, DesiredStatus: "RUNNING", LastStatus: "PROVISIONING"},
		TaskDefinition: ecsapi.TaskDefinition{Family: name, Revision: 1, NetworkMode: ecsapi.NetworkModeBridge, ContainerDefinitions: []ecsapi.ContainerDefinition{{
			Name: "app", Image: image, Memory: &mem, Essential: aws.Bool(true),
			Command:      []string{"sh", "-c", "mkdir -p /www && echo " + name + " > /www/index.html && exec httpd -f -p 8080 -h /www"},
			PortMappings: []ecsapi.PortMapping{{ContainerPort: &port, Name: "web", AppProtocol: ecsapi.ApplicationProtocolHttp}},
		}}},
		ServiceConnect: &agentapi.TaskServiceConnect{Namespace: f.namespace, NamespaceName: "fruit", ServiceName: name + "-svc", ClusterName: "sc", AccessLog: "TEXT",
			Services: []agentapi.ServiceConnectIngress{{DiscoveryName: name, ContainerName: "app", ContainerPort: 8080, IngressPort: 15000, Protocol: "http"}}},
	}
}

// execIn runs a shell script in a container and returns its output.
func execIn(t *testing.T, id, script string) (string, error) {
	t.Helper()
	cli, err := testenv.DockerClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	x, err := cli.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: []string{"sh", "-c", script}, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return "", err
	}
	att, err := cli.ContainerExecAttach(ctx, x.ID, container.ExecAttachOptions{})
	if err != nil {
		return "", err
	}
	defer att.Close()
	var stdout, stderr bytes.Buffer
	stdcopy.StdCopy(&stdout, &stderr, att.Reader)
	st, err := cli.ContainerExecInspect(ctx, x.ID)
	if err != nil {
		return "", err
	}
	if st.ExitCode != 0 {
		return stdout.String(), fmt.Errorf("exit %d: %s", st.ExitCode, stderr.String())
	}
	return stdout.String(), nil
}

func within(t *testing.T, what string, d time.Duration, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	var last string
	for time.Since(start) < d {
		var ok bool
		if ok, last = cond(); ok {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v (last: %s)", what, d, last)
	return 0
}

// TestServiceConnectOnDocker runs two bridge Service Connect tasks against a
// fake control plane on the local Docker engine: each calls the other by
// alias on the port its own application listens on too, a service created
// later reaches the running task's proxy and hosts file within 2 s, the
// proxies' metrics are collected, and a stopping task drains first.
func TestServiceConnectOnDocker(t *testing.T) {
	image := testenv.BusyboxImage(t)
	bin := testenv.WharfBinary(t)
	rt, err := docker.New()
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()

	f := newFakeControlPlane(t)
	var logs syncWriter
	defer func() {
		if t.Failed() {
			t.Logf("agent log:\n%s", logs.String())
		}
	}()
	srv := httptest.NewServer(f)
	defer srv.Close()
	stateDir := t.TempDir()
	var instance string
	// startAgent runs an agent until the returned stop is called; a second
	// one takes over the first one's tasks.
	startAgent := func() (*agent.Agent, func()) {
		a, err := agent.New(agent.Config{Endpoint: srv.URL, Cluster: "sc", Runtime: rt, Name: "sc-test", StateDir: stateDir, Binary: bin,
			AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret", PollWait: 2 * time.Second, ServiceConnectDrain: time.Second,
			CleanupDelay: time.Hour, StopTimeout: 2 * time.Second, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		a.SetScrapeEvery(300 * time.Millisecond)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		within(t, "the agent to register", 60*time.Second, func() (bool, string) { return a.InstanceArn() != "", "" })
		instance = a.InstanceArn()
		return a, func() { cancel(); <-done }
	}
	a, stopAgent := startAgent()
	t.Cleanup(func() {
		stopAgent()
		cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
		defer ccancel()
		states, _ := rt.List(cctx, map[string]string{agent.LabelInstance: instance})
		for _, st := range states {
			rt.Remove(cctx, st.ID)
		}
	})

	f.addService(agentapi.ServiceView{DiscoveryName: "apple", DNSName: "apple.fruit", Port: 8080, Protocol: "http"})
	f.addService(agentapi.ServiceView{DiscoveryName: "banana", DNSName: "banana.fruit", Port: 8080, Protocol: "http"})
	apple, banana := f.fruitTask(image, "apple"), f.fruitTask(image, "banana")
	f.assign(apple)
	f.assign(banana)
	for _, at := range []agentapi.AssignedTask{apple, banana} {
		within(t, at.TaskDefinition.Family+" running", 90*time.Second, func() (bool, string) {
			s := f.taskStatus(at.Task.TaskArn)
			return s == "RUNNING", s
		})
	}
	appID := func(at agentapi.AssignedTask) string { return a.ContainerID(at.Task.TaskArn, "app") }
	appleApp := appID(apple)
	within(t, "banana's endpoint registered", 10*time.Second, func() (bool, string) {
		f.mu.Lock()
		defer f.mu.Unlock()
		_, ok := f.ingress[banana.Task.TaskArn]
		return ok, fmt.Sprint(f.ingress)
	})

	// apple calls banana by its alias on 8080, the port apple's own
	// application listens on too (the proxy's nat rule tells them apart),
	// and itself through its own proxy.
	for script, want := range map[string]string{
		"wget -qO- http://banana.fruit:8080/": "banana",
		"wget -qO- http://banana:8080/":       "banana",
		"wget -qO- http://apple:8080/":        "apple",
		"wget -qO- http://127.0.0.1:8080/":    "apple",
	} {
		within(t, script, 10*time.Second, func() (bool, string) {
			out, err := execIn(t, appleApp, script)
			return err == nil && strings.TrimSpace(out) == want, fmt.Sprintf("%q %v", out, err)
		})
	}

	// A service created after apple started: apple's hosts file and proxy
	// learn it within 2 s, without a restart.
	f.mu.Lock()
	bananaEP := fmt.Sprintf("%s:%d", agent.BridgeGateway(), f.ingress[banana.Task.TaskArn])
	f.mu.Unlock()
	f.addService(agentapi.ServiceView{DiscoveryName: "cherry", DNSName: "cherry.fruit", Port: 9000, Protocol: "http", Endpoints: []agentapi.Endpoint{{Address: bananaEP}}})
	took := within(t, "cherry reachable from apple", 2*time.Second, func() (bool, string) {
		out, err := execIn(t, appleApp, "wget -qO- http://cherry.fruit:9000/")
		return err == nil && strings.TrimSpace(out) == "banana", fmt.Sprintf("%q %v", out, err)
	})
	t.Logf("a new service was reachable %v after the control plane's change", took)
	hosts, err := execIn(t, appleApp, "cat /etc/hosts")
	if err != nil || !strings.Contains(hosts, "\tcherry.fruit cherry\n") || !strings.Contains(hosts, "127.0.0.1\tlocalhost") {
		t.Fatalf("apple's /etc/hosts:\n%s %v", hosts, err)
	}

	// A restarted agent takes the tasks over: the proxies keep serving,
	// the aliases keep their addresses, and live discovery goes on.
	stopAgent()
	a, stopAgent = startAgent()
	within(t, "the new agent to take the proxy over", 10*time.Second, func() (bool, string) {
		return a.ContainerID(apple.Task.TaskArn, a.ProxyName(apple.Task.TaskArn)) != "", ""
	})
	f.addService(agentapi.ServiceView{DiscoveryName: "date", DNSName: "date.fruit", Port: 9001, Protocol: "tcp", Endpoints: []agentapi.Endpoint{{Address: bananaEP}}})
	within(t, "date reachable from apple after the agent restart", 5*time.Second, func() (bool, string) {
		out, err := execIn(t, appleApp, "wget -qO- http://date.fruit:9001/")
		return err == nil && strings.TrimSpace(out) == "banana", fmt.Sprintf("%q %v", out, err)
	})
	after, err := execIn(t, appleApp, "cat /etc/hosts")
	if err != nil || !strings.HasPrefix(after, hosts) {
		t.Fatalf("apple's /etc/hosts changed its existing entries across the restart:\nbefore:\n%s\nafter:\n%s", hosts, after)
	}

	// Metrics: collected per task and reported.
	within(t, "apple's proxy metrics", 10*time.Second, func() (bool, string) {
		m := a.ServiceConnectMetrics()[apple.Task.TaskArn]
		f.mu.Lock()
		reports := f.metrics
		f.mu.Unlock()
		return strings.Contains(m, `TargetDiscoveryName="banana"`) && reports > 0, fmt.Sprintf("%d reports, %q", reports, m)
	})

	// Stopping banana: it keeps serving through the drain delay, then
	// stops with its proxy last.
	bananaApp := appID(banana)
	proxyID := a.ContainerID(banana.Task.TaskArn, a.ProxyName(banana.Task.TaskArn))
	stopAsked := time.Now()
	f.stop(banana.Task.TaskArn)
	within(t, "banana stopped", 60*time.Second, func() (bool, string) {
		s := f.taskStatus(banana.Task.TaskArn)
		return s == "STOPPED", s
	})
	app, err := rt.Inspect(context.Background(), bananaApp)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := rt.Inspect(context.Background(), proxyID)
	if err != nil {
		t.Fatal(err)
	}
	if app.FinishedAt.Sub(stopAsked) < time.Second {
		t.Errorf("banana's application stopped %v after the stop was asked for, within the drain delay", app.FinishedAt.Sub(stopAsked))
	}
	if proxy.FinishedAt.Before(app.FinishedAt) || proxy.ExitCode != 0 {
		t.Errorf("the proxy stopped at %v (exit %d), the application at %v: the proxy must stop last and drain cleanly", proxy.FinishedAt, proxy.ExitCode, app.FinishedAt)
	}
	if _, err := os.Stat(a.ServiceConnectDir(banana.Task.TaskArn)); !os.IsNotExist(err) {
		t.Errorf("banana's Service Connect state is left behind: %v", err)
	}
}

type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
