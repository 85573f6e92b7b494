package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/wharfhq/wharf/internal/testenv"
)

// trapScript keeps a container running until SIGTERM, on which it exits 0
// at once (a plain sleep as PID 1 ignores SIGTERM and waits for SIGKILL).
const trapScript = `trap 'exit 0' TERM; while true; do sleep 0.1; done`

// TestAgentKillAndRestart kills the agent with SIGKILL while tasks run and
// starts it again on the same state directory: the instance keeps its ARN,
// shows agentConnected=false while the agent is away, the containers are
// neither restarted nor replaced, and the restarted agent adopts the tasks
// without reporting them again.
func TestAgentKillAndRestart(t *testing.T) {
	const grace = 5 * time.Second
	e := newEnv(t, withAgentGrace(grace))
	n := e.nodes[0]
	td := e.register("adopt", types.NetworkModeBridge, e.ctr("app", trapScript))
	arns := []string{e.run(td), e.run(td)}

	type seen struct {
		version int64
		id      string
		started string
	}
	before := map[string]seen{}
	for _, arn := range arns {
		task := e.waitRunning(arn)
		id := aws.ToString(taskContainer(t, task, "app").RuntimeId)
		before[arn] = seen{version: task.Version, id: id, started: e.inspect(id).State.StartedAt}
	}
	// Settled: no report is still on its way.
	unchanged := func() (bool, string) {
		for _, arn := range arns {
			task := e.describe(arn)
			if task.Version != before[arn].version || aws.ToString(task.LastStatus) != "RUNNING" {
				return false, fmt.Sprintf("task %s was version %d, now %s", taskID(arn), before[arn].version, summary(task))
			}
		}
		return true, ""
	}
	holds(t, "the tasks' versions", time.Second, unchanged)
	// A container reads its metadata; the same must work after the restart.
	readMetadata := func(arn string) {
		t.Helper()
		id := before[arn].id
		out, code := e.exec(id, `wget -q -O - "$ECS_CONTAINER_METADATA_URI_V4"`)
		if code != 0 || !strings.Contains(out, id) {
			uri, _ := e.exec(id, `echo "$ECS_CONTAINER_METADATA_URI_V4"`)
			t.Errorf("task %s's container cannot read its metadata at %s: exit code %d, output %q", taskID(arn), strings.TrimSpace(uri), code, out)
		}
	}
	readMetadata(arns[1])

	// An idle agent stays connected: its polls are its heartbeats.
	holds(t, "agentConnected=true of an idle agent", 2*grace+time.Second, func() (bool, string) {
		ci := e.instance(n.arn)
		return ci.AgentConnected, fmt.Sprintf("agentConnected=%v with the agent running; the server's --agent-grace is %v", ci.AgentConnected, grace)
	})

	killed := time.Now()
	n.proc.kill(t)
	e.waitConnected(n.arn, false)
	t.Logf("agentConnected=false %v after kill -9", time.Since(killed).Round(time.Millisecond))
	for _, arn := range arns {
		if c := e.inspect(before[arn].id); !c.State.Running {
			t.Fatalf("task %s's container stopped with its agent: %+v", taskID(arn), c.State)
		}
	}
	if ok, state := unchanged(); !ok {
		t.Fatalf("the tasks changed while their agent was away: %s", state)
	}

	e.startNode(n) // fails unless the instance ARN is the same
	// A task placed now runs only once the agent has polled and taken up
	// its assignment, the old tasks included.
	probe := e.run(td)
	e.waitRunning(probe)
	holds(t, "the adopted tasks unchanged after the restart", 2*time.Second, unchanged)
	for _, arn := range arns {
		c := e.inspect(before[arn].id)
		if !c.State.Running || c.State.StartedAt != before[arn].started || c.RestartCount != 0 {
			t.Errorf("task %s's container was restarted: running=%v startedAt %s (was %s) restarts %d",
				taskID(arn), c.State.Running, c.State.StartedAt, before[arn].started, c.RestartCount)
		}
		if got := e.containersOf(arn); len(got) != 1 {
			t.Errorf("task %s has %d containers after the restart, want its 1", taskID(arn), len(got))
		}
	}
	readMetadata(arns[1])

	// The restarted agent manages the adopted task: it stops on request.
	e.stopTask(arns[0], "e2e: after adoption")
	task := e.waitStopped(arns[0])
	if c := taskContainer(t, task, "app"); aws.ToInt32(c.ExitCode) != 0 || c.ExitCode == nil {
		t.Errorf("the adopted task's container reports exit code %v, want 0 (it exits on SIGTERM)", aws.ToInt32(c.ExitCode))
	}
	if ci := e.instance(n.arn); !ci.AgentConnected {
		t.Errorf("the instance shows agentConnected=false with its agent running again")
	}
}

// TestJanitor: containers labelled with the agent's instance but with a
// task it does not know are removed, running or not; a stopped task's
// containers are kept for --cleanup-delay, then removed.
func TestJanitor(t *testing.T) {
	const delay = 2 * time.Second
	e := newEnv(t, withCleanupDelay(delay))
	n := e.nodes[0]

	orphan := func(name, script string) string {
		ctx, cancel := context.WithTimeout(context.Background(), callWait)
		defer cancel()
		c, err := e.docker.ContainerCreate(ctx, &container.Config{
			Image: e.image,
			Cmd:   []string{"sh", "-c", script},
			Labels: map[string]string{
				labelInstance:                      n.arn,
				labelManaged:                       "true",
				labelTaskArn:                       "arn:aws:ecs:us-east-1:123456789012:task/" + e.cluster + "/0123456789abcdef0123456789abcdef",
				"com.amazonaws.ecs.container-name": name,
			},
		}, &container.HostConfig{NetworkMode: "none"}, nil, nil, "wharf-e2e-orphan-"+name+"-"+taskID(n.arn)[:8])
		if err != nil {
			t.Fatalf("create orphan container: %v", err)
		}
		if err := e.docker.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
			t.Fatalf("start orphan container: %v", err)
		}
		return c.ID
	}
	running := orphan("running", trapScript)
	exited := orphan("exited", "exit 0")

	td := e.register("cleanup", types.NetworkModeNone, e.ctr("app", "exit 0"))
	arn := e.run(td)
	task := e.waitStopped(arn)
	id := aws.ToString(taskContainer(t, task, "app").RuntimeId)
	if id == "" {
		t.Fatalf("the stopped task names no container: %s", summary(task))
	}
	finished := engineTime(t, e.inspect(id).State.FinishedAt)
	if since := time.Since(finished); since < delay-500*time.Millisecond {
		if _, err := e.docker.ContainerInspect(t.Context(), id); err != nil {
			t.Errorf("the stopped task's container is gone %v after it exited, before --cleanup-delay %v: %v", since, delay, err)
		}
	} else {
		t.Logf("the task was seen STOPPED only %v after its container exited; not checking the container is kept", since)
	}

	for what, id := range map[string]string{"a running orphan": running, "an exited orphan": exited, "the stopped task's container": id} {
		waitFor(t, what+" to be removed", 30*time.Second, func() (bool, string) {
			_, err := e.docker.ContainerInspect(t.Context(), id)
			return client.IsErrNotFound(err), fmt.Sprintf("inspect: %v", err)
		})
	}
	if gone := time.Since(finished); gone < delay {
		t.Errorf("the stopped task's container was removed %v after it exited, before --cleanup-delay %v", gone, delay)
	}
}

// TestDockerRestart restarts the container engine under a running agent.
// Without live-restore the engine's restart ends the running containers,
// so their tasks stop (EssentialContainerExited); the agent keeps running,
// reconnects to the engine and runs new tasks.
//
// It runs its own dockerd (own data root, exec root, socket and bridge
// interface; no iptables changes) so that other users of the machine's
// engine are not disturbed. It needs root, dockerd and ip; set
// WHARF_E2E_DOCKERD=0 to skip it.
func TestDockerRestart(t *testing.T) {
	if os.Getenv("WHARF_E2E_DOCKERD") == "0" {
		t.Skip("WHARF_E2E_DOCKERD=0")
	}
	testenv.MustHaveDocker(t)
	d := startDockerd(t)
	e := newEnv(t, withDockerHost(d.host))
	e.dockers = append(e.dockers, d.client)
	n := e.nodes[0]
	before, err := e.docker.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	td := e.register("restart", types.NetworkModeNone, e.ctr("app", trapScript))
	first := e.run(td)
	task := e.waitRunning(first)
	old := aws.ToString(taskContainer(t, task, "app").RuntimeId)

	d.restart(t)

	task = e.waitStopped(first)
	if task.StopCode != types.TaskStopCodeEssentialContainerExited {
		t.Errorf("stopCode %q, want EssentialContainerExited: %s", task.StopCode, summary(task))
	}
	t.Logf("after the engine's restart: %s", summary(task))
	if c, err := d.client.ContainerInspect(t.Context(), old); err == nil && c.State.Running {
		t.Errorf("the old container runs after the engine's restart")
	}
	if n.proc.exited() {
		t.Fatalf("the agent exited with the engine: %v", n.proc.err)
	}
	if !e.instance(n.arn).AgentConnected {
		t.Errorf("the instance shows agentConnected=false after the engine's restart")
	}

	second := e.run(td)
	task = e.waitRunning(second)
	id := aws.ToString(taskContainer(t, task, "app").RuntimeId)
	if _, err := d.client.ContainerInspect(t.Context(), id); err != nil {
		t.Errorf("the new task's container is not on the restarted engine: %v", err)
	}
	// The agent follows the restarted engine's events: it sees an exit.
	exits := e.run(e.register("exits", types.NetworkModeNone, e.ctr("app", "sleep 1; exit 4")))
	task = e.waitStopped(exits)
	if c := taskContainer(t, task, "app"); task.StopCode != types.TaskStopCodeEssentialContainerExited || aws.ToInt32(c.ExitCode) != 4 {
		t.Errorf("a task exiting after the engine's restart: %s; want EssentialContainerExited with exit code 4", summary(task))
	}
	// The machine's own engine was not touched.
	after, err := e.docker.Info(t.Context())
	if err != nil || after.ID != before.ID {
		t.Errorf("the machine's engine changed: %v", err)
	}
}

// dockerd is a private Docker engine for one test.
type dockerd struct {
	dir, host, bridge string
	args              []string
	proc              *proc
	client            *client.Client
}

// startDockerd starts a dockerd of the test's own, with the busybox image
// loaded, and stops it when the test ends.
func startDockerd(t *testing.T) *dockerd {
	t.Helper()
	bin := testenv.LookPath(t, "dockerd")
	// iproute2's ip, else the busybox applet (busybox-static is installed
	// for the test image anyway).
	ip := func(args ...string) *exec.Cmd {
		return exec.Command("/bin/busybox", append([]string{"ip"}, args...)...)
	}
	if p, err := exec.LookPath("ip"); err == nil {
		ip = func(args ...string) *exec.Cmd { return exec.Command(p, args...) }
	}
	if os.Geteuid() != 0 {
		t.Skip("a private dockerd needs root")
	}
	image := testenv.BusyboxImage(t) // also makes sure /bin/busybox is there
	// Unix socket paths are short; t.TempDir's can be long.
	dir, err := os.MkdirTemp("", "wharf-dockerd-")
	if err != nil {
		t.Fatal(err)
	}
	d := &dockerd{dir: dir, host: "unix://" + filepath.Join(dir, "docker.sock"), bridge: fmt.Sprintf("wharf-e2e-%d", os.Getpid()%100000)}
	// dockerd needs a bridge. Its own bridge keeps the machine's docker0
	// alone (--bridge=none would make dockerd delete docker0).
	if out, err := ip("link", "add", d.bridge, "type", "bridge").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		t.Fatalf("ip link add %s: %v: %s", d.bridge, err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.args = []string{
		"--config-file", filepath.Join(dir, "daemon.json"),
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"),
		"--host", d.host,
		"--bridge", d.bridge,
		"--iptables=false", "--ip-masq=false", "--ip-forward=false",
	}
	d.proc = startProc(t, dir, "dockerd", bin, d.args...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("---- dockerd (%s)\n%s", d.proc.log, d.proc.tail(60))
		}
		d.proc.stop(t, 30*time.Second)
		// A dockerd that did not shut down cleanly leaves container shims
		// and mounts (its data root, network namespaces) behind.
		for _, pid := range pidsMentioning(dir) {
			for _, child := range childrenOf(pid) {
				syscall.Kill(child, syscall.SIGKILL)
			}
			syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("process %d of the private dockerd was left running; killed it", pid)
		}
		for _, m := range mountsUnder(dir) {
			if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
				t.Errorf("unmount %s: %v", m, err)
			}
		}
		if out, err := ip("link", "del", d.bridge).CombinedOutput(); err != nil {
			t.Errorf("ip link del %s: %v: %s", d.bridge, err, out)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove the private dockerd's directory: %v", err)
		}
	})
	d.client, err = client.NewClientWithOpts(client.WithHost(d.host), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	d.waitReady(t)

	// Copy the busybox image over.
	main, err := testenv.DockerClient()
	if err != nil {
		t.Fatal(err)
	}
	defer main.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	saved, err := main.ImageSave(ctx, []string{image})
	if err != nil {
		t.Fatalf("docker save %s: %v", image, err)
	}
	defer saved.Close()
	loaded, err := d.client.ImageLoad(ctx, saved)
	if err != nil {
		t.Fatalf("docker load %s into the private engine: %v", image, err)
	}
	defer loaded.Body.Close()
	if _, err := io.Copy(io.Discard, loaded.Body); err != nil {
		t.Fatalf("docker load %s into the private engine: %v", image, err)
	}
	if _, err := d.client.ImageInspect(ctx, image); err != nil {
		t.Fatalf("the private engine lacks %s after the load: %v", image, err)
	}
	return d
}

func (d *dockerd) waitReady(t *testing.T) {
	t.Helper()
	waitFor(t, "the private dockerd to answer", startWait, func() (bool, string) {
		if d.proc.exited() {
			t.Fatalf("the private dockerd exited: %v\n%s", d.proc.err, d.proc.tail(40))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := d.client.Info(ctx)
		return err == nil, fmt.Sprint(err)
	})
}

// restart kills dockerd with SIGKILL and starts it again with the same
// command line once its containerd has followed it, as a supervisor
// restarts a crashed engine. (A new dockerd finding the old containerd
// still shutting down waits for it in vain.)
func (d *dockerd) restart(t *testing.T) {
	t.Helper()
	pidfile := filepath.Join(d.dir, "exec", "containerd", "containerd.pid")
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatalf("read the private containerd's pid: %v", err)
	}
	containerd, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("containerd.pid: %v", err)
	}
	d.proc.kill(t)
	waitFor(t, fmt.Sprintf("containerd (pid %d) to exit after its dockerd was killed", containerd), 30*time.Second, func() (bool, string) {
		err := syscall.Kill(containerd, 0)
		return errors.Is(err, syscall.ESRCH), fmt.Sprint(err)
	})
	d.proc = startProc(t, d.dir, "dockerd", d.proc.cmd.Path, d.args...)
	d.waitReady(t)
}

// pidsMentioning lists the processes whose command line contains s.
func pidsMentioning(s string) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), s) && !isZombie(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// procStat returns a process's state and parent from /proc/<pid>/stat.
func procStat(pid int) (state byte, ppid int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	rest := string(b[strings.LastIndexByte(string(b), ')')+2:])
	fields := strings.Fields(rest)
	if len(fields) < 2 {
		return 0, 0
	}
	ppid, _ = strconv.Atoi(fields[1])
	return fields[0][0], ppid
}

func isZombie(pid int) bool {
	state, _ := procStat(pid)
	return state == 'Z'
}

// childrenOf lists the processes whose parent is pid.
func childrenOf(pid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if _, ppid := procStat(child); ppid == pid {
			out = append(out, child)
		}
	}
	return out
}

// mountsUnder lists the mount points inside dir, deepest first.
func mountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			out = append(out, f[4])
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}
