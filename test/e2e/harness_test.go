// Package e2e runs Wharf's own binary on the machine's Docker engine: a
// `wharf server` and `wharf agent` processes (or `wharf dev`), driven through
// the AWS SDK for Go v2 and the AWS CLI v2. Tasks run a FROM scratch busybox
// image built locally, so no registry is needed.
//
// Every process runs in its own process group with its output in a file
// under the test's temporary directory, printed when the test fails. At the
// end the processes are killed and every container the test's agents
// created (labelled with their container instance ARN) is removed.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/wharfhq/wharf/internal/testenv"
)

const (
	clusterName = "e2e"
	// Labels the agents put on every container they create.
	labelInstance = "wharf.container-instance"
	labelManaged  = "wharf.managed"
	labelTaskArn  = "com.amazonaws.ecs.task-arn"
)

// Bounds of the waits. Generous: they only matter when something is wrong.
const (
	startWait = 60 * time.Second // a process answers, an agent registers
	taskWait  = 60 * time.Second // a task reaches a status
	callWait  = 15 * time.Second // one API call
)

// proc is a process the test started, alone in its process group.
type proc struct {
	name string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// startProc starts bin with args, appending its output to logDir/name.log.
func startProc(t *testing.T, logDir, name, bin string, args ...string) *proc {
	t.Helper()
	path := filepath.Join(logDir, name+".log")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "=== %s %s %s\n", time.Now().Format(time.StampMilli), filepath.Base(bin), strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = processEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, log: path, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p
}

// processEnv is the test's environment without settings that would change
// how Wharf or the AWS CLI behave.
func processEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "WHARF_") || strings.HasPrefix(kv, "AWS_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL to the process group and waits for the process.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	p.signal(t, syscall.SIGKILL, 10*time.Second)
}

// stop sends SIGTERM to the process group, then SIGKILL after timeout.
func (p *proc) stop(t *testing.T, timeout time.Duration) {
	t.Helper()
	if !p.signal(t, syscall.SIGTERM, timeout) {
		p.kill(t)
	}
}

func (p *proc) signal(t *testing.T, sig syscall.Signal, timeout time.Duration) bool {
	t.Helper()
	if p.exited() {
		return true
	}
	syscall.Kill(-p.cmd.Process.Pid, sig)
	select {
	case <-p.done:
		return true
	case <-time.After(timeout):
		if sig == syscall.SIGKILL {
			t.Errorf("%s (pid %d) did not exit within %v of %v", p.name, p.cmd.Process.Pid, timeout, sig)
		}
		return false
	}
}

// tail returns the last n lines of the process's log.
func (p *proc) tail(n int) string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d lines before)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// env is a running Wharf: a server and its agents, or `wharf dev`.
type env struct {
	t        *testing.T
	bin      string // the wharf executable
	image    string // the busybox test image
	dir      string
	endpoint string
	ecs      *ecs.Client
	docker   *client.Client
	cluster  string
	cfg      config

	server *proc // the server, or the dev process
	nodes  []*node

	mu        sync.Mutex
	procs     []*proc
	instances map[string]bool // container instance ARNs whose containers to remove
	dockers   []*client.Client
	cli       string // the AWS CLI v2, once e.aws has found it (test goroutine only)
	cliModels string // its AWS_DATA_PATH
}

// node is one agent process.
type node struct {
	name     string
	az       string
	stateDir string
	args     []string
	proc     *proc
	arn      string
}

type config struct {
	// agentGrace is the server's --agent-grace, how soon a silent agent
	// shows agentConnected=false; 0 keeps the server's default.
	agentGrace time.Duration
	// healthyAfter is the server's --healthy-after, how long a service
	// task without health checks runs before it counts as healthy; 0
	// keeps the server's default (40 s).
	healthyAfter time.Duration
	// agentLostAfter is the server's --agent-lost-after, how long an agent
	// may be gone before its service tasks are replaced; 0 keeps the
	// server's default.
	agentLostAfter time.Duration
	stopTimeout    time.Duration
	cleanupDelay   time.Duration
	dockerHost     string
	// dnsPort is the server's --dns-listen port on 127.0.0.1; 0 keeps
	// the server's default (a free port).
	dnsPort int
	// serverFlags are more flags of the server.
	serverFlags []string
}

type option func(*config)

func withAgentGrace(d time.Duration) option     { return func(c *config) { c.agentGrace = d } }
func withHealthyAfter(d time.Duration) option   { return func(c *config) { c.healthyAfter = d } }
func withAgentLostAfter(d time.Duration) option { return func(c *config) { c.agentLostAfter = d } }
func withCleanupDelay(d time.Duration) option   { return func(c *config) { c.cleanupDelay = d } }
func withDockerHost(h string) option            { return func(c *config) { c.dockerHost = h } }
func withDNSPort(p int) option                  { return func(c *config) { c.dnsPort = p } }
func withStopTimeout(d time.Duration) option    { return func(c *config) { c.stopTimeout = d } }
func withServerFlags(f ...string) option {
	return func(c *config) { c.serverFlags = append(c.serverFlags, f...) }
}

// newEnv starts a server, creates the cluster and starts one agent, node-1
// in us-east-1a.
func newEnv(t *testing.T, opts ...option) *env {
	t.Helper()
	cfg := config{stopTimeout: 10 * time.Second, cleanupDelay: time.Hour}
	for _, o := range opts {
		o(&cfg)
	}
	e := prepare(t, cfg)
	port := freePort(t)
	e.endpoint = "http://127.0.0.1:" + strconv.Itoa(port)
	e.server = e.start("server", "server", append(e.serverArgs(port), "--data-dir", filepath.Join(e.dir, "server"))...)
	e.ecs = ecs.NewFromConfig(testenv.AWSConfig(e.endpoint, testenv.Region))
	e.cluster = clusterName
	e.waitAnswers(e.server, e.ecs)
	e.createCluster()
	e.addNode("node-1", testenv.Region+"a")
	return e
}

// serverArgs are the flags of a `wharf server` listening on port, without
// its store (--data-dir or --etcd-endpoints).
func (e *env) serverArgs(port int) []string {
	args := []string{
		"--listen", "127.0.0.1:" + strconv.Itoa(port),
		"--access-key-id", testenv.AccessKeyID,
		"--secret-access-key", testenv.SecretAccessKey,
		"--log-level", "debug",
	}
	if e.cfg.agentGrace > 0 {
		args = append(args, "--agent-grace", e.cfg.agentGrace.String())
	}
	if e.cfg.healthyAfter > 0 {
		args = append(args, "--healthy-after", e.cfg.healthyAfter.String())
	}
	if e.cfg.agentLostAfter > 0 {
		args = append(args, "--agent-lost-after", e.cfg.agentLostAfter.String())
	}
	if e.cfg.dnsPort > 0 {
		args = append(args, "--dns-listen", "127.0.0.1:"+strconv.Itoa(e.cfg.dnsPort))
	}
	return append(args, e.cfg.serverFlags...)
}

// waitAnswers waits until server answers ListClusters through cli.
func (e *env) waitAnswers(server *proc, cli *ecs.Client) {
	e.t.Helper()
	waitFor(e.t, server.name+" to answer ListClusters", startWait, func() (bool, string) {
		if server.exited() {
			e.t.Fatalf("%s exited: %v\n%s", server.name, server.err, server.tail(50))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := cli.ListClusters(ctx, &ecs.ListClustersInput{})
		return err == nil, fmt.Sprint(err)
	})
}

// createCluster creates the environment's cluster.
func (e *env) createCluster() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(e.cluster)}); err != nil {
		e.t.Fatalf("create cluster: %v", err)
	}
}

// prepare checks the machine, builds what the tests run and registers the
// clean-up.
func prepare(t *testing.T, cfg config) *env {
	t.Helper()
	testenv.MustHaveDocker(t)
	e := &env{
		t:         t,
		bin:       testenv.WharfBinary(t),
		image:     testenv.BusyboxImage(t),
		dir:       t.TempDir(),
		cfg:       cfg,
		instances: map[string]bool{},
	}
	cli, err := testenv.DockerClient()
	if err != nil {
		t.Fatal(err)
	}
	e.docker = cli
	e.dockers = append(e.dockers, cli)
	t.Cleanup(e.cleanup)
	return e
}

// start starts a wharf subcommand as a process of the environment.
func (e *env) start(name, sub string, args ...string) *proc {
	e.t.Helper()
	p := startProc(e.t, e.dir, name, e.bin, append([]string{sub}, args...)...)
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.mu.Unlock()
	return p
}

// addNode starts an agent, with the extra flags given, and waits until its
// instance is registered and connected.
func (e *env) addNode(name, az string, extra ...string) *node {
	e.t.Helper()
	n := &node{name: name, az: az, stateDir: filepath.Join(e.dir, name)}
	n.args = []string{
		"--server", e.endpoint,
		"--cluster", e.cluster,
		"--name", name,
		"--state-dir", n.stateDir,
		"--availability-zone", az,
		"--stop-timeout", e.cfg.stopTimeout.String(),
		"--cleanup-delay", e.cfg.cleanupDelay.String(),
		"--access-key-id", testenv.AccessKeyID,
		"--secret-access-key", testenv.SecretAccessKey,
		"--log-level", "debug",
	}
	if e.cfg.dockerHost != "" {
		n.args = append(n.args, "--docker-host", e.cfg.dockerHost)
	}
	n.args = append(n.args, extra...)
	e.nodes = append(e.nodes, n)
	e.startNode(n)
	return n
}

// startNode (re)starts a node's agent and waits until it is registered and
// connected.
func (e *env) startNode(n *node) {
	e.t.Helper()
	n.proc = e.start(n.name, "agent", n.args...)
	waitFor(e.t, n.name+" to register its container instance", startWait, func() (bool, string) {
		if n.proc.exited() {
			e.t.Fatalf("%s exited: %v\n%s", n.name, n.proc.err, n.proc.tail(50))
		}
		b, err := os.ReadFile(filepath.Join(n.stateDir, "agent-state.json"))
		if err != nil {
			return false, err.Error()
		}
		var st struct {
			ContainerInstanceArn string `json:"containerInstanceArn"`
		}
		if err := json.Unmarshal(b, &st); err != nil || st.ContainerInstanceArn == "" {
			return false, fmt.Sprintf("state file %s", b)
		}
		if n.arn != "" && n.arn != st.ContainerInstanceArn {
			e.t.Fatalf("%s registered as %s after a restart, want its old instance %s", n.name, st.ContainerInstanceArn, n.arn)
		}
		n.arn = st.ContainerInstanceArn
		e.mu.Lock()
		e.instances[n.arn] = true
		e.mu.Unlock()
		return true, ""
	})
	e.waitConnected(n.arn, true)
}

// waitConnected waits until the instance's agentConnected is want.
func (e *env) waitConnected(arn string, want bool) types.ContainerInstance {
	e.t.Helper()
	var ci types.ContainerInstance
	waitFor(e.t, fmt.Sprintf("instance %s to show agentConnected=%v", arn, want), startWait, func() (bool, string) {
		ci = e.instance(arn)
		return ci.AgentConnected == want && aws.ToString(ci.Status) == "ACTIVE",
			fmt.Sprintf("agentConnected=%v status=%s", ci.AgentConnected, aws.ToString(ci.Status))
	})
	return ci
}

func (e *env) instance(arn string) types.ContainerInstance {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	cluster := e.cluster
	if strings.Contains(arn, ":container-instance/"+fargatePool+"/") {
		cluster = fargatePool
	}
	out, err := e.ecs.DescribeContainerInstances(ctx, &ecs.DescribeContainerInstancesInput{
		Cluster: aws.String(cluster), ContainerInstances: []string{arn},
	})
	if err != nil {
		e.t.Fatalf("describe container instance %s: %v", arn, err)
	}
	if len(out.ContainerInstances) != 1 {
		e.t.Fatalf("describe container instance %s: failures %s", arn, jsonOf(out.Failures))
	}
	return out.ContainerInstances[0]
}

// cleanup prints the logs of a failed test, kills every process and
// removes the containers of the test's instances.
func (e *env) cleanup() {
	t := e.t
	e.mu.Lock()
	procs := append([]*proc(nil), e.procs...)
	e.mu.Unlock()
	if t.Failed() || os.Getenv("WHARF_E2E_LOGS") != "" {
		for _, p := range procs {
			t.Logf("---- %s (%s)\n%s", p.name, p.log, p.tail(200))
		}
	}
	// Agents first, so that none acts on a server going away.
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].kill(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, cli := range e.dockers {
		for arn := range e.instances {
			list, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", labelInstance+"="+arn))})
			if err != nil {
				t.Errorf("list the containers of %s: %v", arn, err)
				continue
			}
			for _, c := range list {
				if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !client.IsErrNotFound(err) {
					t.Errorf("remove container %s: %v", c.ID, err)
				}
				// A Fargate task's cgroup, left when its agent was
				// killed rather than stopping it.
				if arn := c.Labels[labelTaskArn]; arn != "" {
					groups, _ := filepath.Glob("/sys/fs/cgroup/*/wharf/" + taskID(arn))
					for _, g := range groups {
						subs, _ := filepath.Glob(g + "/*/")
						for _, sub := range subs {
							os.Remove(sub)
						}
						os.Remove(g)
					}
				}
			}
		}
	}
	for _, cli := range e.dockers {
		cli.Close()
	}
}

// freePort returns a loopback TCP port nobody listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitFor polls cond until it holds, failing the test after timeout with
// what was awaited and cond's last word on the state.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last state: %s", timeout, what, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// holds checks that cond keeps holding for d, polling it.
func holds(t *testing.T, what string, d time.Duration, cond func() (bool, string)) {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if ok, state := cond(); !ok {
			t.Fatalf("%s stopped holding: %s", what, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ---- task definitions and tasks ----

// ctr returns a busybox container running script under sh -c.
func (e *env) ctr(name, script string) types.ContainerDefinition {
	return types.ContainerDefinition{
		Name:              aws.String(name),
		Image:             aws.String(e.image),
		Command:           []string{"sh", "-c", script},
		MemoryReservation: aws.Int32(16),
		Essential:         aws.Bool(true),
	}
}

// register registers a task definition and returns its ARN.
func (e *env) register(family string, mode types.NetworkMode, cds ...types.ContainerDefinition) string {
	e.t.Helper()
	return e.registerDef(&ecs.RegisterTaskDefinitionInput{Family: aws.String(family), NetworkMode: mode, ContainerDefinitions: cds})
}

func (e *env) registerDef(in *ecs.RegisterTaskDefinitionInput) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	out, err := e.ecs.RegisterTaskDefinition(ctx, in)
	if err != nil {
		e.t.Fatalf("register task definition %s: %v", aws.ToString(in.Family), err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
}

// run runs one task of td and returns its ARN.
func (e *env) run(td string) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	out, err := e.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String(e.cluster), TaskDefinition: aws.String(td)})
	if err != nil {
		e.t.Fatalf("run task %s: %v", td, err)
	}
	if len(out.Tasks) != 1 {
		e.t.Fatalf("run task %s: %d tasks, failures %s", td, len(out.Tasks), jsonOf(out.Failures))
	}
	return aws.ToString(out.Tasks[0].TaskArn)
}

// stopTask calls StopTask.
func (e *env) stopTask(arn, reason string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	if _, err := e.ecs.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String(e.cluster), Task: aws.String(arn), Reason: aws.String(reason)}); err != nil {
		e.t.Fatalf("stop task %s: %v", arn, err)
	}
}

func (e *env) describe(arn string) types.Task {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	out, err := e.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(e.cluster), Tasks: []string{arn}})
	if err != nil {
		e.t.Fatalf("describe task %s: %v", arn, err)
	}
	if len(out.Tasks) != 1 {
		e.t.Fatalf("describe task %s: failures %s", arn, jsonOf(out.Failures))
	}
	return out.Tasks[0]
}

// waitTask polls the task until cond holds. A task that stops first fails
// the wait at once, unless cond is about stopping.
func (e *env) waitTask(arn, what string, cond func(types.Task) bool) types.Task {
	e.t.Helper()
	var task types.Task
	waitFor(e.t, "task "+taskID(arn)+" "+what, taskWait, func() (bool, string) {
		task = e.describe(arn)
		if cond(task) {
			return true, ""
		}
		if aws.ToString(task.LastStatus) == "STOPPED" {
			e.t.Fatalf("task %s stopped while waiting for it %s: %s", taskID(arn), what, summary(task))
		}
		return false, summary(task)
	})
	return task
}

func (e *env) waitRunning(arn string) types.Task {
	e.t.Helper()
	return e.waitTask(arn, "to be RUNNING", func(t types.Task) bool { return aws.ToString(t.LastStatus) == "RUNNING" })
}

func (e *env) waitStopped(arn string) types.Task {
	e.t.Helper()
	return e.waitTask(arn, "to be STOPPED", func(t types.Task) bool { return aws.ToString(t.LastStatus) == "STOPPED" })
}

// sdkWaitRunning waits with the SDK's TasksRunning waiter, polling every
// 200 ms rather than its default 6 s.
func (e *env) sdkWaitRunning(arns ...string) {
	e.t.Helper()
	w := ecs.NewTasksRunningWaiter(e.ecs, func(o *ecs.TasksRunningWaiterOptions) {
		o.MinDelay, o.MaxDelay = 200*time.Millisecond, time.Second
	})
	if err := w.Wait(context.Background(), &ecs.DescribeTasksInput{Cluster: aws.String(e.cluster), Tasks: arns}, taskWait); err != nil {
		e.t.Fatalf("the TasksRunning waiter: %v; %s", err, e.summaries(arns))
	}
}

// sdkWaitStopped waits with the SDK's TasksStopped waiter.
func (e *env) sdkWaitStopped(arns ...string) {
	e.t.Helper()
	w := ecs.NewTasksStoppedWaiter(e.ecs, func(o *ecs.TasksStoppedWaiterOptions) {
		o.MinDelay, o.MaxDelay = 200*time.Millisecond, time.Second
	})
	if err := w.Wait(context.Background(), &ecs.DescribeTasksInput{Cluster: aws.String(e.cluster), Tasks: arns}, taskWait); err != nil {
		e.t.Fatalf("the TasksStopped waiter: %v; %s", err, e.summaries(arns))
	}
}

func (e *env) summaries(arns []string) string {
	var out []string
	for _, arn := range arns {
		out = append(out, taskID(arn)+": "+summary(e.describe(arn)))
	}
	return strings.Join(out, "; ")
}

// taskContainer returns the task's container of that name.
func taskContainer(t *testing.T, task types.Task, name string) types.Container {
	t.Helper()
	for _, c := range task.Containers {
		if aws.ToString(c.Name) == name {
			return c
		}
	}
	t.Fatalf("task %s has no container %q: %s", taskID(aws.ToString(task.TaskArn)), name, summary(task))
	return types.Container{}
}

func taskID(arn string) string { return arn[strings.LastIndex(arn, "/")+1:] }

// summary renders what a failed wait needs to say about a task.
func summary(t types.Task) string {
	var b strings.Builder
	fmt.Fprintf(&b, "last=%s desired=%s health=%s version=%d", aws.ToString(t.LastStatus), aws.ToString(t.DesiredStatus), t.HealthStatus, t.Version)
	if t.StopCode != "" || t.StoppedReason != nil {
		fmt.Fprintf(&b, " stopCode=%s reason=%q", t.StopCode, aws.ToString(t.StoppedReason))
	}
	for _, c := range t.Containers {
		fmt.Fprintf(&b, " [%s %s", aws.ToString(c.Name), aws.ToString(c.LastStatus))
		if c.ExitCode != nil {
			fmt.Fprintf(&b, " exit=%d", *c.ExitCode)
		}
		if c.HealthStatus != "" {
			fmt.Fprintf(&b, " health=%s", c.HealthStatus)
		}
		if c.Reason != nil {
			fmt.Fprintf(&b, " reason=%q", aws.ToString(c.Reason))
		}
		b.WriteString("]")
	}
	return b.String()
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// ---- Docker ----

func (e *env) inspect(id string) container.InspectResponse {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	c, err := e.docker.ContainerInspect(ctx, id)
	if err != nil {
		e.t.Fatalf("docker inspect %s: %v", id, err)
	}
	return c
}

// logs returns a container's output, as `docker logs` shows it.
func (e *env) logs(id string) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	rc, err := e.docker.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		e.t.Fatalf("docker logs %s: %v", id, err)
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil {
		e.t.Fatalf("docker logs %s: %v", id, err)
	}
	return out.String()
}

// exec runs script with sh -c in a running container, like docker exec,
// and returns its output and exit code.
func (e *env) exec(id, script string) (string, int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	x, err := e.docker.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: []string{"sh", "-c", script}, AttachStdout: true, AttachStderr: true})
	if err != nil {
		e.t.Fatalf("docker exec %s: %v", id, err)
	}
	att, err := e.docker.ContainerExecAttach(ctx, x.ID, container.ExecAttachOptions{})
	if err != nil {
		e.t.Fatalf("docker exec %s: %v", id, err)
	}
	defer att.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, att.Reader); err != nil {
		e.t.Fatalf("docker exec %s: %v", id, err)
	}
	st, err := e.docker.ContainerExecInspect(ctx, x.ID)
	if err != nil {
		e.t.Fatalf("docker exec %s: %v", id, err)
	}
	return out.String(), st.ExitCode
}

// containersOf lists the containers of a task, by label.
func (e *env) containersOf(taskArn string) []container.Summary {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callWait)
	defer cancel()
	list, err := e.docker.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", labelTaskArn+"="+taskArn))})
	if err != nil {
		e.t.Fatalf("docker ps: %v", err)
	}
	return list
}

func engineTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("engine time %q: %v", s, err)
	}
	return v
}

// ---- HTTP ----

var httpClient = &http.Client{Timeout: 3 * time.Second}

// get fetches url and returns the body.
func get(url string) (string, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("%s: %s", url, resp.Status)
	}
	return string(b), nil
}

// waitHTTP waits until url answers with a body containing want.
func waitHTTP(t *testing.T, url, want string) {
	t.Helper()
	waitFor(t, url+" to answer "+strconv.Quote(want), 30*time.Second, func() (bool, string) {
		body, err := get(url)
		if err != nil {
			return false, err.Error()
		}
		return strings.Contains(body, want), "body " + strconv.Quote(body)
	})
}

// lines splits output into trimmed non-empty lines.
func lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// ---- the AWS CLI ----

// aws runs the AWS CLI v2 on the environment's endpoint with the test's
// access key and returns its standard output. Its ECS waiters poll every
// second (see cliModels); their acceptors stay the CLI's own.
func (e *env) aws(timeout time.Duration, args ...string) []byte {
	e.t.Helper()
	if e.cli == "" {
		e.cli = testenv.AWSCLI(e.t)
		e.cliModels = cliModels(e.t, filepath.Join(e.dir, "aws-models"))
	}
	cli, models := e.cli, e.cliModels
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, cli, append([]string{"--endpoint-url", e.endpoint, "--output", "json"}, args...)...)
	cmd.Env = append(processEnv(),
		"AWS_ACCESS_KEY_ID="+testenv.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY="+testenv.SecretAccessKey,
		"AWS_DEFAULT_REGION="+testenv.Region,
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PAGER=",
	)
	if models != "" {
		cmd.Env = append(cmd.Env, "AWS_DATA_PATH="+models)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	if err != nil {
		e.t.Fatalf("aws %s: %v after %v\n%s", strings.Join(args, " "), err, time.Since(start).Round(time.Millisecond), stderr.String())
	}
	return out
}

// cliModels writes the CLI's own ECS waiter definitions under dir with a
// one-second delay (ServicesStable polls every 15 s otherwise), for
// AWS_DATA_PATH, and returns dir; "" when the CLI's data is not where
// Debian's package or AWS's installer put it, and the waiters keep their
// pace.
func cliModels(t *testing.T, dir string) string {
	t.Helper()
	const rel = "ecs/2014-11-13/waiters-2.json"
	for _, data := range []string{
		"/usr/lib/python3/dist-packages/awscli/botocore/data",
		"/usr/local/aws-cli/v2/current/dist/awscli/botocore/data",
	} {
		b, err := os.ReadFile(filepath.Join(data, rel))
		if err != nil {
			continue
		}
		var m struct {
			Version int                       `json:"version"`
			Waiters map[string]map[string]any `json:"waiters"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("the CLI's %s: %v", rel, err)
		}
		for _, w := range m.Waiters {
			w["delay"], w["maxAttempts"] = 1, 600 // the caller's timeout bounds the wait
		}
		b, _ = json.Marshal(m)
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(rel)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, rel), b, 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	t.Logf("the AWS CLI's ECS waiter definitions were not found; its waiters poll at their own pace")
	return ""
}
