// Package runtimetest is the conformance suite of runtime.Runtime: the
// contract the node agent relies on of a container engine, run against
// every implementation (runtime/docker on a real engine, runtime/sim on
// hollow nodes) so that hollow-node tests and Docker agree. Where they
// would differ, the real engine is the reference.
//
// An implementation's tests call Run with a constructor and a Config that
// says how its containers are made to sleep, exit, ignore SIGTERM, run out
// of memory and pass or fail health checks.
package runtimetest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharfhq/wharf/internal/runtime"
)

// Config describes the implementation under test.
type Config struct {
	// Image is an image the runtime has, or gets with PullPreferCached
	// without a registry, that runs the commands below.
	Image string
	// Sleep runs until it is stopped, and exits 0 on SIGTERM.
	Sleep []string
	// IgnoreTerm runs until it is killed: it ignores SIGTERM.
	IgnoreTerm []string
	// ReadyLog is what Sleep and IgnoreTerm write to their output once
	// they handle signals as they should; "" when they do from the start.
	ReadyLog string
	// Exit returns a command that exits with code as soon as it starts.
	Exit func(code int) []string
	// OOM runs out of a 16 MiB memory limit; nil skips the test.
	OOM []string
	// Healthy and Unhealthy are health check tests (["CMD", ...] or
	// ["CMD-SHELL", "..."]) that pass and that fail.
	Healthy, Unhealthy []string
	// Subnet is a free /24 ("10.231.8.0/24") for the suite's network:
	// gateway .1, containers from .10.
	Subnet string
	// Labels go on every container, network and image the suite creates,
	// beside its own.
	Labels map[string]string
	// RemoveImage removes an image the suite built; nil leaves it.
	RemoveImage func(ctx context.Context, ref string) error
}

// absentImage is in no registry: a registry on a closed loopback port. (The
// sim fails pulls of images whose name has "does-not-exist".)
const absentImage = "127.0.0.1:1/wharf-runtimetest/does-not-exist:1"

// unknownID is no container's id.
const unknownID = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff0bad"

// wait bounds every wait for the runtime.
const wait = 60 * time.Second

// Run runs the suite; newRuntime returns the runtime each test uses.
func Run(t *testing.T, newRuntime func(t *testing.T) runtime.Runtime, cfg Config) {
	s := &suite{cfg: cfg, run: randomHex(8)}
	for _, tc := range []struct {
		name string
		test func(*testing.T, *env)
	}{
		{"Info", testInfo},
		{"Images", testImages},
		{"BuildImage", testBuildImage},
		{"Lifecycle", testLifecycle},
		{"ExitCode", testExitCode},
		{"NameConflict", testNameConflict},
		{"StopTimeout", testStopTimeout},
		{"StopZeroTimeoutKills", testStopZeroTimeout},
		{"RemoveRunning", testRemoveRunning},
		{"List", testList},
		{"Events", testEvents},
		{"EventsEnd", testEventsEnd},
		{"Health", testHealth},
		{"OOM", testOOM},
		{"Ports", testPorts},
		{"NetworkModes", testNetworkModes},
		{"Networks", testNetworks},
		{"MissingNetwork", testMissingNetwork},
		{"StatsAndLogs", testStatsAndLogs},
		{"NotFound", testNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t, &env{suite: s, rt: newRuntime(t)})
		})
	}
}

type suite struct {
	cfg Config
	run string // tells this run's objects apart
	seq atomic.Int64
}

// env is one test's runtime.
type env struct {
	*suite
	rt runtime.Runtime
}

func randomHex(n int) string {
	b := make([]byte, (n+1)/2)
	rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// name is a unique engine-level name.
func (e *env) name() string {
	return fmt.Sprintf("wharf-runtimetest-%s-%d", e.run, e.seq.Add(1))
}

// labels are the suite's labels and extra ones.
func (e *env) labels(extra ...string) map[string]string {
	l := maps.Clone(e.cfg.Labels)
	if l == nil {
		l = map[string]string{}
	}
	l["wharf.runtimetest/run"] = e.run
	for i := 0; i+1 < len(extra); i += 2 {
		l[extra[i]] = extra[i+1]
	}
	return l
}

// create makes a container of spec, with a name, the image and the suite's
// labels filled in, and removes it when the test ends.
func (e *env) create(t *testing.T, spec runtime.ContainerSpec) string {
	t.Helper()
	if spec.Name == "" {
		spec.Name = e.name()
	}
	if spec.Image == "" {
		spec.Image = e.cfg.Image
	}
	labels := e.labels()
	maps.Copy(labels, spec.Labels)
	spec.Labels = labels
	id, err := e.rt.Create(ctxFor(t), &spec)
	if err != nil {
		t.Fatalf("create container %s: %v", spec.Name, err)
	}
	t.Cleanup(func() { e.remove(t, id) })
	return id
}

// start creates and starts a container.
func (e *env) start(t *testing.T, spec runtime.ContainerSpec) string {
	t.Helper()
	id := e.create(t, spec)
	if err := e.rt.Start(ctxFor(t), id); err != nil {
		t.Fatalf("start container %s: %v", id, err)
	}
	return id
}

// ready waits until a started Sleep or IgnoreTerm container handles
// signals, so that a Stop meets the handling its test expects.
func (e *env) ready(t *testing.T, id string) {
	t.Helper()
	if e.cfg.ReadyLog == "" {
		return
	}
	waitFor(t, "container "+id+" to be ready", func() error {
		out, err := e.rt.Logs(ctxFor(t), id, 0)
		if err != nil {
			return err
		}
		if !strings.Contains(string(out), e.cfg.ReadyLog) {
			return fmt.Errorf("output %q", out)
		}
		return nil
	})
}

func (e *env) remove(t *testing.T, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := e.rt.Remove(ctx, id); err != nil {
		t.Errorf("cleanup: remove container %s: %v", id, err)
	}
}

func (e *env) inspect(t *testing.T, id string) *runtime.State {
	t.Helper()
	st, err := e.rt.Inspect(ctxFor(t), id)
	if err != nil {
		t.Fatalf("inspect %s: %v", id, err)
	}
	return st
}

// waitFor polls cond until it returns nil, failing the test with what was
// awaited and cond's last word when the deadline passes first.
func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; last: %v", wait, what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitExited waits for a container to exit and returns its state.
func (e *env) waitExited(t *testing.T, id string) *runtime.State {
	t.Helper()
	var st *runtime.State
	waitFor(t, "container "+id+" to exit", func() error {
		var err error
		if st, err = e.rt.Inspect(ctxFor(t), id); err != nil {
			return err
		}
		if st.Running || st.Status != "exited" {
			return fmt.Errorf("status %s, running %v", st.Status, st.Running)
		}
		return nil
	})
	return st
}

func testInfo(t *testing.T, e *env) {
	info, err := e.rt.Info(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	if info.Version == "" || info.OS != "linux" || info.Architecture == "" || info.CPUs <= 0 || info.MemoryBytes <= 0 {
		t.Errorf("Info = %+v; want a version, linux, an architecture, CPUs and memory", info)
	}
}

func testImages(t *testing.T, e *env) {
	ctx := ctxFor(t)
	for _, policy := range []runtime.PullPolicy{runtime.PullPreferCached, runtime.PullOnce} {
		id, err := e.rt.EnsureImage(ctx, e.cfg.Image, policy)
		if err != nil || id == "" {
			t.Fatalf("EnsureImage(%s, %s) = %q, %v; want its id", e.cfg.Image, policy, id, err)
		}
	}
	if ok, err := e.rt.ImageExists(ctx, e.cfg.Image); err != nil || !ok {
		t.Errorf("ImageExists(%s) = %v, %v after EnsureImage; want true", e.cfg.Image, ok, err)
	}
	if ok, err := e.rt.ImageExists(ctx, absentImage); err != nil || ok {
		t.Errorf("ImageExists(%s) = %v, %v; want false", absentImage, ok, err)
	}
	for _, policy := range []runtime.PullPolicy{runtime.PullDefault, runtime.PullAlways, runtime.PullPreferCached} {
		if _, err := e.rt.EnsureImage(ctx, absentImage, policy); !errors.Is(err, runtime.ErrPull) {
			t.Errorf("EnsureImage(%s, %s) = %v; want an error wrapping ErrPull", absentImage, policy, err)
		}
	}
}

func testBuildImage(t *testing.T, e *env) {
	ctx := ctxFor(t)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, data := range map[string]string{
		"Dockerfile": "FROM scratch\nCOPY hello /hello\n",
		"hello":      "hello\n",
	} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write([]byte(data))
	}
	tw.Close()
	tag := "wharf-runtimetest/build:" + e.run
	if ok, err := e.rt.ImageExists(ctx, tag); err != nil || ok {
		t.Fatalf("ImageExists(%s) = %v, %v before the build", tag, ok, err)
	}
	if err := e.rt.BuildImage(ctx, tag, &buf, e.labels()); err != nil {
		t.Fatal(err)
	}
	if e.cfg.RemoveImage != nil {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			if err := e.cfg.RemoveImage(ctx, tag); err != nil {
				t.Errorf("cleanup: remove image %s: %v", tag, err)
			}
		})
	}
	if ok, err := e.rt.ImageExists(ctx, tag); err != nil || !ok {
		t.Errorf("ImageExists(%s) = %v, %v after the build; want true", tag, ok, err)
	}
	if id, err := e.rt.EnsureImage(ctx, tag, runtime.PullOnce); err != nil || id == "" {
		t.Errorf("EnsureImage(%s, once) = %q, %v after the build; want its id without a pull", tag, id, err)
	}
}

func testLifecycle(t *testing.T, e *env) {
	ctx := ctxFor(t)
	name := e.name()
	id := e.create(t, runtime.ContainerSpec{Name: name, Command: e.cfg.Sleep, Labels: map[string]string{"app": "lifecycle"}})
	st := e.inspect(t, id)
	if st.ID != id || st.Name != name || st.Status != "created" || st.Running || st.Image != e.cfg.Image || st.ImageID == "" ||
		st.Labels["app"] != "lifecycle" || st.Labels["wharf.runtimetest/run"] != e.run || !st.StartedAt.IsZero() || !st.FinishedAt.IsZero() {
		t.Errorf("Inspect after Create = %+v", st)
	}

	if err := e.rt.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	st = e.inspect(t, id)
	if !st.Running || st.Status != "running" || st.StartedAt.IsZero() {
		t.Errorf("Inspect after Start = %+v; want it running since a start time", st)
	}
	started := st.StartedAt
	e.ready(t, id)
	if err := e.rt.Start(ctx, id); err != nil {
		t.Errorf("Start of a running container = %v, want nil", err)
	}
	if st := e.inspect(t, id); !st.Running || !st.StartedAt.Equal(started) {
		t.Errorf("a second Start changed the container: %+v", st)
	}

	if err := e.rt.Stop(ctx, id, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	st = e.inspect(t, id)
	if st.Running || st.Status != "exited" || st.ExitCode != 0 || st.OOMKilled || st.FinishedAt.Before(st.StartedAt) {
		t.Errorf("Inspect after Stop = %+v; want exited with 0 after it started", st)
	}
	if err := e.rt.Stop(ctx, id, time.Second); err != nil {
		t.Errorf("Stop of an exited container = %v, want nil", err)
	}

	if err := e.rt.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rt.Inspect(ctx, id); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("Inspect after Remove = %v, want ErrNotFound", err)
	}
	if err := e.rt.Remove(ctx, id); err != nil {
		t.Errorf("Remove of a removed container = %v, want nil", err)
	}
}

func testExitCode(t *testing.T, e *env) {
	for _, code := range []int{0, 3} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			t.Parallel()
			id := e.start(t, runtime.ContainerSpec{Command: e.cfg.Exit(code)})
			st := e.waitExited(t, id)
			// (The engine may record an exit at once a little before the
			// start: their order is not part of the contract.)
			if st.ExitCode != code || st.OOMKilled || st.StartedAt.IsZero() || st.FinishedAt.IsZero() {
				t.Errorf("Inspect after the exit = %+v; want exit code %d and both times", st, code)
			}
		})
	}
}

func testNameConflict(t *testing.T, e *env) {
	name := e.name()
	e.create(t, runtime.ContainerSpec{Name: name, Command: e.cfg.Sleep})
	spec := runtime.ContainerSpec{Name: name, Image: e.cfg.Image, Command: e.cfg.Sleep, Labels: e.labels()}
	if id, err := e.rt.Create(ctxFor(t), &spec); err == nil {
		e.remove(t, id)
		t.Fatal("a second Create of one name succeeded")
	}
}

// testStopTimeout: Stop waits for the timeout, then kills a container that
// ignores SIGTERM.
func testStopTimeout(t *testing.T, e *env) {
	id := e.start(t, runtime.ContainerSpec{Command: e.cfg.IgnoreTerm})
	e.ready(t, id)
	began := time.Now()
	if err := e.rt.Stop(ctxFor(t), id, time.Second); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took < 900*time.Millisecond || took > 30*time.Second {
		t.Errorf("Stop with a 1s timeout took %v", took)
	}
	if st := e.inspect(t, id); st.Running || st.ExitCode != 137 {
		t.Errorf("Inspect after Stop = %+v; want killed (137)", st)
	}
}

// testStopZeroTimeout: a zero timeout kills at once, even a container that
// would exit on SIGTERM.
func testStopZeroTimeout(t *testing.T, e *env) {
	id := e.start(t, runtime.ContainerSpec{Command: e.cfg.Sleep})
	e.ready(t, id)
	if err := e.rt.Stop(ctxFor(t), id, 0); err != nil {
		t.Fatal(err)
	}
	if st := e.inspect(t, id); st.Running || st.Status != "exited" || st.ExitCode != 137 {
		t.Errorf("Inspect after Stop with no timeout = %+v; want killed (137)", st)
	}
}

func testRemoveRunning(t *testing.T, e *env) {
	ctx := ctxFor(t)
	id := e.start(t, runtime.ContainerSpec{Command: e.cfg.Sleep})
	if err := e.rt.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rt.Inspect(ctx, id); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("Inspect after removing a running container = %v, want ErrNotFound", err)
	}
	states, err := e.rt.List(ctx, map[string]string{"wharf.runtimetest/run": e.run})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range states {
		if st.ID == id {
			t.Errorf("List shows the removed container %s", id)
		}
	}
}

func testList(t *testing.T, e *env) {
	ctx := ctxFor(t)
	set := e.name()
	running := e.start(t, runtime.ContainerSpec{Command: e.cfg.Sleep, Labels: map[string]string{"set": set, "role": "a"}})
	exited := e.start(t, runtime.ContainerSpec{Command: e.cfg.Exit(0), Labels: map[string]string{"set": set, "role": "b"}})
	created := e.create(t, runtime.ContainerSpec{Command: e.cfg.Sleep, Labels: map[string]string{"set": set}})
	e.create(t, runtime.ContainerSpec{Command: e.cfg.Sleep, Labels: map[string]string{"set": set + "-other", "role": "a"}})
	e.waitExited(t, exited)

	ids := func(labels map[string]string) []string {
		t.Helper()
		states, err := e.rt.List(ctx, labels)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, st := range states {
			out = append(out, st.ID)
			if st.Labels["set"] != labels["set"] || st.Name == "" {
				t.Errorf("List(%v) has %+v", labels, st)
			}
			if want := st.ID == running; st.Running != want {
				t.Errorf("List(%v): container %s running %v, want %v", labels, st.ID, st.Running, want)
			}
			if st.ID == exited && (st.Status != "exited" || st.FinishedAt.IsZero()) {
				t.Errorf("List(%v): the exited container is %+v", labels, st)
			}
		}
		slices.Sort(out)
		return out
	}
	sorted := func(ids ...string) []string { slices.Sort(ids); return ids }
	for _, tc := range []struct {
		labels map[string]string
		want   []string
	}{
		{map[string]string{"set": set}, sorted(running, exited, created)},
		{map[string]string{"set": set, "role": "a"}, sorted(running)},
		{map[string]string{"set": set, "role": ""}, sorted(running, exited)},
		{map[string]string{"set": set, "role": "c"}, nil},
	} {
		if got := ids(tc.labels); !slices.Equal(got, tc.want) {
			t.Errorf("List(%v) = %v, want %v", tc.labels, got, tc.want)
		}
	}
}

// collector gathers the events of some containers.
type collector struct {
	events <-chan runtime.Event
	errs   <-chan error
	seen   map[string][]runtime.Event // by container id
}

func (e *env) subscribe(t *testing.T, ctx context.Context) *collector {
	events, errs := e.rt.Events(ctx)
	return &collector{events: events, errs: errs, seen: map[string][]runtime.Event{}}
}

// await reads events until container id has had action.
func (c *collector) await(t *testing.T, id, action string) runtime.Event {
	t.Helper()
	for _, ev := range c.seen[id] {
		if ev.Action == action {
			return ev
		}
	}
	deadline := time.After(wait)
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				t.Fatalf("event stream ended awaiting %s of %s: %v", action, id, <-c.errs)
			}
			c.seen[ev.ContainerID] = append(c.seen[ev.ContainerID], ev)
			if ev.ContainerID == id && ev.Action == action {
				return ev
			}
		case <-deadline:
			var got []string
			for _, ev := range c.seen[id] {
				got = append(got, ev.Action)
			}
			t.Fatalf("waited %v for a %s event of %s; it had %v", wait, action, id, got)
		}
	}
}

func testEvents(t *testing.T, e *env) {
	ctx := ctxFor(t)
	events := e.subscribe(t, ctx)
	mark := e.name()
	id := e.start(t, runtime.ContainerSpec{
		Command:     e.cfg.Sleep,
		Labels:      map[string]string{"wharf.runtimetest/events": mark},
		HealthCheck: &runtime.HealthCheck{Test: e.cfg.Healthy, Interval: 200 * time.Millisecond, Timeout: 5 * time.Second, Retries: 1},
	})
	e.ready(t, id)
	for _, action := range []string{"create", "start", "health_status"} {
		ev := events.await(t, id, action)
		if ev.Labels["wharf.runtimetest/events"] != mark || ev.Labels["wharf.runtimetest/run"] != e.run {
			t.Errorf("%s event labels %v lack the container's", action, ev.Labels)
		}
		if ev.Time.IsZero() || time.Since(ev.Time) > time.Hour {
			t.Errorf("%s event time %v", action, ev.Time)
		}
	}
	if err := e.rt.Stop(ctx, id, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if ev := events.await(t, id, "die"); ev.Labels["wharf.runtimetest/events"] != mark {
		t.Errorf("die event labels %v lack the container's", ev.Labels)
	}

	// A container removed while it runs dies first.
	other := e.start(t, runtime.ContainerSpec{Command: e.cfg.Sleep})
	events.await(t, other, "start")
	if err := e.rt.Remove(ctx, other); err != nil {
		t.Fatal(err)
	}
	events.await(t, other, "die")
	events.await(t, other, "destroy")

	// An exit of its own.
	exits := e.start(t, runtime.ContainerSpec{Command: e.cfg.Exit(2)})
	events.await(t, exits, "die")
}

// testEventsEnd: the stream ends when its context does, and says why.
func testEventsEnd(t *testing.T, e *env) {
	ctx, cancel := context.WithCancel(ctxFor(t))
	events, errs := e.rt.Events(ctx)
	cancel()
	deadline := time.After(wait)
	for {
		select {
		case _, ok := <-events:
			if ok {
				continue
			}
			if err := <-errs; !errors.Is(err, context.Canceled) {
				t.Errorf("the stream's error after its context ended = %v, want context.Canceled", err)
			}
			return
		case <-deadline:
			t.Fatalf("the event stream is open %v after its context ended", wait)
		}
	}
}

func testHealth(t *testing.T, e *env) {
	check := func(test []string) *runtime.HealthCheck {
		return &runtime.HealthCheck{Test: test, Interval: 200 * time.Millisecond, Timeout: 5 * time.Second, Retries: 1}
	}
	for _, tc := range []struct {
		name string
		hc   *runtime.HealthCheck
		want string
	}{
		{"healthy", check(e.cfg.Healthy), "healthy"},
		{"unhealthy", check(e.cfg.Unhealthy), "unhealthy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := e.start(t, runtime.ContainerSpec{Command: e.cfg.Sleep, HealthCheck: tc.hc})
			e.ready(t, id)
			waitFor(t, "health "+tc.want, func() error {
				if st := e.inspect(t, id); st.Health != tc.want {
					return fmt.Errorf("health %q", st.Health)
				}
				return nil
			})
			// A stopped container is not healthy.
			if err := e.rt.Stop(ctxFor(t), id, 20*time.Second); err != nil {
				t.Fatal(err)
			}
			if st := e.inspect(t, id); st.Health != "unhealthy" {
				t.Errorf("health of the stopped container %q, want unhealthy", st.Health)
			}
		})
	}
	t.Run("none", func(t *testing.T) {
		t.Parallel()
		id := e.start(t, runtime.ContainerSpec{Command: e.cfg.Sleep})
		if st := e.inspect(t, id); st.Health != "" {
			t.Errorf("health of a container without a check %q, want none", st.Health)
		}
	})
}

func testOOM(t *testing.T, e *env) {
	if e.cfg.OOM == nil {
		t.Skip("the runtime has no command that runs out of memory")
	}
	ctx := ctxFor(t)
	events := e.subscribe(t, ctx)
	id := e.start(t, runtime.ContainerSpec{Command: e.cfg.OOM, MemoryLimit: 16 << 20})
	st := e.waitExited(t, id)
	if st.ExitCode != 137 {
		t.Fatalf("Inspect after running out of memory = %+v; want exit code 137", st)
	}
	if !st.OOMKilled {
		// An engine may handle the kernel's notice after the exit, and
		// then not set the flag; the event comes either way.
		events.await(t, id, "oom")
	}
}

func testPorts(t *testing.T, e *env) {
	id := e.create(t, runtime.ContainerSpec{Command: e.cfg.Sleep, NetworkMode: "bridge",
		PortBindings: []runtime.PortBinding{{ContainerPort: 8080, Protocol: "tcp"}}})
	if st := e.inspect(t, id); !hasKey(st.Networks, "bridge") {
		t.Errorf("a created container's networks %v, want the bridge", st.Networks)
	}
	if err := e.rt.Start(ctxFor(t), id); err != nil {
		t.Fatal(err)
	}
	st := e.inspect(t, id)
	published := slices.ContainsFunc(st.Ports, func(p runtime.PortBinding) bool {
		return p.ContainerPort == 8080 && p.Protocol == "tcp" && p.HostPort > 0 && p.HostIP == "0.0.0.0"
	})
	if !published {
		t.Errorf("ports %+v; want 8080/tcp published on a host port of 0.0.0.0", st.Ports)
	}
	if a, err := netip.ParseAddr(st.Networks["bridge"]); err != nil || !a.Is4() || st.MacAddresses["bridge"] == "" {
		t.Errorf("on the bridge: address %q, MAC %q; want both", st.Networks["bridge"], st.MacAddresses["bridge"])
	}
}

func hasKey(m map[string]string, k string) bool {
	_, ok := m[k]
	return ok
}

// testNetworkModes: a container on host or none has that network without
// an address; one in another's namespace has none of its own.
func testNetworkModes(t *testing.T, e *env) {
	for _, mode := range []string{"host", "none"} {
		id := e.start(t, runtime.ContainerSpec{Command: e.cfg.Sleep, NetworkMode: mode})
		if st := e.inspect(t, id); !maps.Equal(st.Networks, map[string]string{mode: ""}) {
			t.Errorf("networks of a container on %s: %v", mode, st.Networks)
		}
		if mode != "none" {
			continue
		}
		joined := e.start(t, runtime.ContainerSpec{Command: e.cfg.Sleep, NetworkMode: "container:" + id})
		if st := e.inspect(t, joined); len(st.Networks) != 0 {
			t.Errorf("networks of a container in another's namespace: %v", st.Networks)
		}
	}
}

func (e *env) subnet(t *testing.T) (prefix netip.Prefix, addr func(last byte) string) {
	t.Helper()
	p, err := netip.ParsePrefix(e.cfg.Subnet)
	if err != nil || p.Bits() != 24 || !p.Addr().Is4() {
		t.Fatalf("Config.Subnet %q: want an IPv4 /24", e.cfg.Subnet)
	}
	p = p.Masked()
	return p, func(last byte) string {
		b := p.Addr().As4()
		b[3] = last
		return netip.AddrFrom4(b).String()
	}
}

func testNetworks(t *testing.T, e *env) {
	ctx := ctxFor(t)
	prefix, addr := e.subnet(t)
	name := e.name()
	spec := runtime.NetworkSpec{Name: name, Subnet: prefix.String(), Gateway: addr(1), Labels: e.labels()}
	if err := e.rt.EnsureNetwork(ctx, spec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := e.rt.RemoveNetwork(ctx, name); err != nil {
			t.Errorf("cleanup: remove network %s: %v", name, err)
		}
	})
	if err := e.rt.EnsureNetwork(ctx, spec); err != nil {
		t.Errorf("EnsureNetwork of an existing network = %v, want nil", err)
	}
	other := spec
	other.Subnet = "10.255.254.0/24"
	other.Gateway = "10.255.254.1"
	if err := e.rt.EnsureNetwork(ctx, other); err == nil {
		t.Error("EnsureNetwork of an existing network with another subnet succeeded")
	}

	a := prefix.Addr().As4()
	ip, mac := addr(10), fmt.Sprintf("02:42:%02x:%02x:%02x:0a", a[0], a[1], a[2])
	id := e.start(t, runtime.ContainerSpec{Command: e.cfg.Sleep, NetworkMode: name, IPv4Address: ip, MacAddress: mac})
	if st := e.inspect(t, id); st.Networks[name] != ip || st.MacAddresses[name] != mac {
		t.Errorf("on %s: address %q, MAC %q; want %s, %s (all %v %v)", name, st.Networks[name], st.MacAddresses[name], ip, mac, st.Networks, st.MacAddresses)
	}
	dyn := e.start(t, runtime.ContainerSpec{Command: e.cfg.Sleep, NetworkMode: name})
	if a, err := netip.ParseAddr(e.inspect(t, dyn).Networks[name]); err != nil || !prefix.Contains(a) || a.String() == ip {
		t.Errorf("a container without a fixed address got %q on %s, want another of %s", e.inspect(t, dyn).Networks[name], name, prefix)
	}
	e.remove(t, id)
	e.remove(t, dyn)
	if err := e.rt.RemoveNetwork(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := e.rt.RemoveNetwork(ctx, name); err != nil {
		t.Errorf("RemoveNetwork of a removed network = %v, want nil", err)
	}
}

// testMissingNetwork: a container cannot join a network that does not
// exist; the engine says so on Create or on Start.
func testMissingNetwork(t *testing.T, e *env) {
	ctx := ctxFor(t)
	spec := runtime.ContainerSpec{Name: e.name(), Image: e.cfg.Image, Command: e.cfg.Sleep, NetworkMode: e.name(), Labels: e.labels()}
	id, err := e.rt.Create(ctx, &spec)
	if err == nil {
		t.Cleanup(func() { e.remove(t, id) })
		err = e.rt.Start(ctx, id)
	}
	if !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("a container on a missing network: %v, want ErrNotFound on Create or Start", err)
	}
}

func testStatsAndLogs(t *testing.T, e *env) {
	ctx := ctxFor(t)
	id := e.start(t, runtime.ContainerSpec{Command: e.cfg.Sleep})
	stats, err := e.rt.Stats(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(stats, &v); err != nil || v == nil {
		t.Errorf("Stats = %s (%v); want a JSON object", stats, err)
	}
	if _, err := e.rt.Logs(ctx, id, 10); err != nil {
		t.Errorf("Logs = %v", err)
	}
}

func testNotFound(t *testing.T, e *env) {
	ctx := ctxFor(t)
	for what, err := range map[string]error{
		"Start":   e.rt.Start(ctx, unknownID),
		"Stop":    e.rt.Stop(ctx, unknownID, time.Second),
		"Inspect": second(e.rt.Inspect(ctx, unknownID)),
		"Stats":   second(e.rt.Stats(ctx, unknownID)),
		"Logs":    second(e.rt.Logs(ctx, unknownID, 0)),
	} {
		if !errors.Is(err, runtime.ErrNotFound) {
			t.Errorf("%s of an unknown container = %v, want ErrNotFound", what, err)
		}
		if err != nil && !strings.Contains(err.Error(), unknownID[:12]) {
			t.Errorf("%s of an unknown container = %q; want it to name the container", what, err)
		}
	}
	if err := e.rt.Remove(ctx, unknownID); err != nil {
		t.Errorf("Remove of an unknown container = %v, want nil", err)
	}
}

func second[T any](_ T, err error) error { return err }
