package docker_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"

	"github.com/wharfhq/wharf/internal/runtime"
	"github.com/wharfhq/wharf/internal/runtime/docker"
)

// Every object the tests create carries these labels, so that TestMain can
// check that the tests removed their containers, networks and volumes, and
// then remove whatever is left, the shared test image included.
const (
	labelRun     = "wharf.test/run"
	labelPackage = "wharf.test/package"
)

var runID = func() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}()

// testLabels returns the labels of this run plus extra ones.
func testLabels(extra ...string) map[string]string {
	l := map[string]string{labelRun: runID, labelPackage: "runtime/docker"}
	for i := 0; i+1 < len(extra); i += 2 {
		l[extra[i]] = extra[i+1]
	}
	return l
}

// wait bounds every wait for the engine or a container.
const wait = 60 * time.Second

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.env != nil {
		if err := sweep(shared.env.cli); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// sweep fails when a test left a container, network or volume behind, and
// removes everything labelled with this run, the shared image included.
func sweep(cli *client.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f := filters.NewArgs(filters.Arg("label", labelRun+"="+runID))
	var left []string
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	for _, c := range cs {
		left = append(left, "container "+strings.Join(c.Names, ","))
		cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
	}
	nws, err := cli.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	for _, n := range nws {
		left = append(left, "network "+n.Name)
		cli.NetworkRemove(ctx, n.ID)
	}
	vols, err := cli.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	for _, v := range vols.Volumes {
		left = append(left, "volume "+v.Name)
		cli.VolumeRemove(ctx, v.Name, true)
	}
	imgs, err := cli.ImageList(ctx, image.ListOptions{All: true, Filters: f})
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	for _, img := range imgs {
		if _, err := cli.ImageRemove(ctx, img.ID, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil && !client.IsErrNotFound(err) {
			left = append(left, fmt.Sprintf("image %s (%v)", img.ID, err))
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("tests left behind (now removed): %s", strings.Join(left, "; "))
	}
	return nil
}

// env is what the tests share: the runtime under test, a raw client to
// check what the engine was told, and the test image.
type env struct {
	rt      *docker.Docker
	cli     *client.Client
	image   string // wharf-test/busybox:rt-<run>, FROM scratch with busybox
	imageID string
}

var shared struct {
	once     sync.Once
	env      *env
	missing  string // why the tests cannot run
	buildErr error
}

// mustHaveDocker returns the shared test environment, building the test
// image on first use. It skips the test when there is no Docker engine or
// no static busybox to build the image from, and fails it when CI is set.
// (testenv.MustHaveDocker should take this over once testenv can be
// imported from here.)
func mustHaveDocker(t *testing.T) *env {
	t.Helper()
	shared.once.Do(setup)
	if shared.missing != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s, and CI is set: .ci/run must provide it", shared.missing)
		}
		t.Skip(shared.missing)
	}
	if shared.buildErr != nil {
		t.Fatalf("build the test image: %v", shared.buildErr)
	}
	return shared.env
}

const busybox = "/bin/busybox"

func setup() {
	bb, err := os.ReadFile(busybox)
	if err != nil {
		shared.missing = fmt.Sprintf("no static busybox at %s (apt-get install busybox-static): %v", busybox, err)
		return
	}
	var logger *slog.Logger
	if os.Getenv("WHARF_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	} else {
		logger = slog.New(slog.DiscardHandler)
	}
	rt, err := docker.New(docker.WithLogger(logger))
	if err != nil {
		shared.missing = fmt.Sprintf("docker client: %v", err)
		return
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		shared.missing = fmt.Sprintf("docker client: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		shared.missing = fmt.Sprintf("no Docker engine reachable: %v", err)
		return
	}
	e := &env{rt: rt, cli: cli, image: "wharf-test/busybox:rt-" + runID}
	shared.env = e

	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// A classic build can run busybox in exec form to install its applets,
	// which a COPY of the binary under each name would not do as well.
	dockerfile := `FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox --install -s /bin && mkdir -p /tmp /www && chmod 1777 /tmp && echo hello-from-wharf > /www/index.html"]
CMD ["sleep", "300"]
`
	buildCtx := tarContext(map[string][]byte{"Dockerfile": []byte(dockerfile), "busybox": bb})
	if err := rt.BuildImage(ctx, e.image, buildCtx, testLabels()); err != nil {
		shared.buildErr = err
		return
	}
	img, err := cli.ImageInspect(ctx, e.image)
	if err != nil {
		shared.buildErr = err
		return
	}
	e.imageID = img.ID
}

// tarContext makes a build context of files.
func tarContext(files map[string][]byte) io.Reader {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, data := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data))})
		tw.Write(data)
	}
	tw.Close()
	return &buf
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

var nameSeq atomic.Int64

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// name returns a unique engine-level name for an object of test t.
func name(t *testing.T) string {
	n := unsafeName.ReplaceAllString(strings.ToLower(t.Name()), "-")
	return fmt.Sprintf("wharf-test-%s-%s-%d", runID, n, nameSeq.Add(1))
}

// create creates a container from spec, filling in a name, the test image
// and the run's labels, and removes it when the test ends.
func (e *env) create(t *testing.T, spec runtime.ContainerSpec) string {
	t.Helper()
	if spec.Name == "" {
		spec.Name = name(t)
	}
	if spec.Image == "" {
		spec.Image = e.image
	}
	labels := testLabels()
	for k, v := range spec.Labels {
		labels[k] = v
	}
	spec.Labels = labels
	id, err := e.rt.Create(testContext(t), &spec)
	if err != nil {
		t.Fatalf("create container %s: %v", spec.Name, err)
	}
	t.Cleanup(func() { e.remove(t, id) })
	return id
}

// run creates and starts a container.
func (e *env) run(t *testing.T, spec runtime.ContainerSpec) string {
	t.Helper()
	id := e.create(t, spec)
	if err := e.rt.Start(testContext(t), id); err != nil {
		t.Fatalf("start container %s: %v", id, err)
	}
	return id
}

func (e *env) remove(t *testing.T, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := e.rt.Remove(ctx, id); err != nil {
		t.Errorf("cleanup: %v", err)
	}
}

// waitFor polls cond until it returns nil, failing the test with what was
// awaited and cond's last error when timeout passes first.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; last: %v", timeout, what, err)
		}
		<-tick.C
	}
}

// waitExited waits for a container to exit and returns its state.
func (e *env) waitExited(t *testing.T, id string) *runtime.State {
	t.Helper()
	var st *runtime.State
	waitFor(t, wait, "container "+id+" to exit", func() error {
		var err error
		st, err = e.rt.Inspect(testContext(t), id)
		if err != nil {
			return err
		}
		if st.Status != "exited" {
			return fmt.Errorf("status %s", st.Status)
		}
		return nil
	})
	return st
}

func (e *env) logs(t *testing.T, id string) string {
	t.Helper()
	out, err := e.rt.Logs(testContext(t), id, 0)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// inspect returns what the engine itself says about a container.
func (e *env) inspect(t *testing.T, id string) container.InspectResponse {
	t.Helper()
	c, err := e.cli.ContainerInspect(testContext(t), id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sh is a command running script with the image's busybox shell.
func sh(script string) []string { return []string{"/bin/sh", "-c", script} }

func TestInfo(t *testing.T) {
	e := mustHaveDocker(t)
	info, err := e.rt.Info(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if info.Version == "" || info.APIVersion == "" || info.OS != "linux" || info.Architecture == "" || info.CPUs < 1 || info.MemoryBytes <= 0 {
		t.Errorf("Info = %+v, want every field set and OS linux", info)
	}
}

// registry is a loopback stand-in for a container registry that has no
// images: the engine's pulls reach it instead of the internet. Pulls of a
// repository ending in "slow" hang until the engine gives up.
type registry struct {
	host    string // 127.0.0.1:port
	mu      sync.Mutex
	pulls   map[string]int // repository → manifest requests
	release chan struct{}
}

func startRegistry(t *testing.T) *registry {
	r := &registry{pulls: map[string]int{}, release: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		w.Header().Set("Content-Type", "application/json")
		if req.URL.Path == "/v2/" || req.URL.Path == "/v2" {
			io.WriteString(w, "{}")
			return
		}
		repo, _, ok := strings.Cut(strings.TrimPrefix(req.URL.Path, "/v2/"), "/manifests/")
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		r.mu.Lock()
		r.pulls[repo]++
		r.mu.Unlock()
		if strings.HasSuffix(repo, "slow") {
			select {
			case <-req.Context().Done():
			case <-r.release:
			}
			return
		}
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`)
	}))
	r.host = strings.TrimPrefix(srv.URL, "http://")
	t.Cleanup(func() {
		close(r.release)
		srv.Close()
	})
	return r
}

func (r *registry) pullCount(repo string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pulls[repo]
}

func TestEnsureImage(t *testing.T) {
	e := mustHaveDocker(t)
	reg := startRegistry(t)
	ctx := testContext(t)

	// The test image under a name that pulls from the loopback registry,
	// which does not have it.
	const repo = "wharf-test/busybox"
	local := reg.host + "/" + repo + ":rt-" + runID
	if err := e.cli.ImageTag(ctx, e.image, local); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		e.cli.ImageRemove(ctx, local, image.RemoveOptions{})
	})
	missing := reg.host + "/wharf-test/nonexistent:none"

	for _, tc := range []struct {
		name    string
		ref     string
		policy  runtime.PullPolicy
		pulls   bool   // whether the engine asks the registry
		wantErr string // in the message; "" for success
		pullErr bool   // whether the error wraps runtime.ErrPull
	}{
		{name: "once uses the local copy", ref: local, policy: runtime.PullOnce},
		{name: "prefer-cached uses the local copy", ref: local, policy: runtime.PullPreferCached},
		{name: "always fails when the registry lacks it", ref: local, policy: runtime.PullAlways, pulls: true, wantErr: "manifest unknown", pullErr: true},
		{name: "default falls back to the local copy", ref: local, policy: runtime.PullDefault, pulls: true},
		{name: "default fails for a missing image", ref: missing, policy: runtime.PullDefault, pulls: true, wantErr: missing, pullErr: true},
		{name: "once fails for a missing image", ref: missing, policy: runtime.PullOnce, pulls: true, wantErr: "manifest unknown", pullErr: true},
		{name: "invalid reference", ref: "Not A Reference", policy: runtime.PullAlways, wantErr: "invalid reference format", pullErr: true},
		{name: "unknown policy", ref: local, policy: "sometimes", wantErr: "unknown pull policy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, repoTag, _ := strings.Cut(tc.ref, "/")
			repoName, _, _ := strings.Cut(repoTag, ":")
			before := reg.pullCount(repoName)
			id, err := e.rt.EnsureImage(ctx, tc.ref, tc.policy)
			if pulled := reg.pullCount(repoName) > before; pulled != tc.pulls {
				t.Errorf("registry asked for %s: %v, want %v", repoName, pulled, tc.pulls)
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("EnsureImage(%s, %s): %v", tc.ref, tc.policy, err)
				}
				if id != e.imageID {
					t.Errorf("EnsureImage = %q, want the image id %q", id, e.imageID)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("EnsureImage(%s, %s) = %q, %v; want an error containing %q", tc.ref, tc.policy, id, err, tc.wantErr)
			}
			t.Logf("error: %v", err)
			if errors.Is(err, runtime.ErrPull) != tc.pullErr {
				t.Errorf("errors.Is(%v, ErrPull) = %v, want %v", err, !tc.pullErr, tc.pullErr)
			}
		})
	}

	t.Run("exists", func(t *testing.T) {
		for ref, want := range map[string]bool{e.image: true, local: true, missing: false} {
			got, err := e.rt.ImageExists(ctx, ref)
			if err != nil || got != want {
				t.Errorf("ImageExists(%s) = %v, %v; want %v", ref, got, err, want)
			}
		}
	})
}

func TestEnsureImageHonoursContext(t *testing.T) {
	e := mustHaveDocker(t)
	reg := startRegistry(t)
	ref := reg.host + "/wharf-test/slow:latest"
	ctx, cancel := context.WithTimeout(testContext(t), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err := e.rt.EnsureImage(ctx, ref, runtime.PullAlways)
	elapsed := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, runtime.ErrPull) {
		t.Fatalf("EnsureImage with a hanging registry = %v; want the context's error, not ErrPull", err)
	}
	if elapsed > 10*time.Second {
		t.Errorf("EnsureImage returned %v after its context ended", elapsed-2*time.Second)
	}
	if n := reg.pullCount("wharf-test/slow"); n == 0 {
		t.Error("the engine never asked the registry for the image")
	}
}

func TestBuildImage(t *testing.T) {
	e := mustHaveDocker(t)
	ctx := testContext(t)
	tag := "wharf-test/build:rt-" + runID
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		e.cli.ImageRemove(ctx, tag, image.RemoveOptions{Force: true, PruneChildren: true})
	})
	dockerfile := fmt.Sprintf("FROM %s\nLABEL from.dockerfile=yes\nRUN [\"/bin/sh\", \"-c\", \"echo built > /built\"]\nCMD [\"cat\", \"/built\"]\n", e.image)
	err := e.rt.BuildImage(ctx, tag, tarContext(map[string][]byte{"Dockerfile": []byte(dockerfile)}), testLabels("wharf.test/build", "yes"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := e.cli.ImageInspect(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"from.dockerfile": "yes", "wharf.test/build": "yes", labelRun: runID} {
		if got := img.Config.Labels[k]; got != v {
			t.Errorf("image label %s = %q, want %q", k, got, v)
		}
	}
	id := e.run(t, runtime.ContainerSpec{Image: tag})
	if st := e.waitExited(t, id); st.ExitCode != 0 {
		t.Errorf("container of the built image exited with %d", st.ExitCode)
	}
	if got := e.logs(t, id); got != "built\n" {
		t.Errorf("container of the built image said %q, want %q", got, "built\n")
	}

	t.Run("failing step", func(t *testing.T) {
		failTag := "wharf-test/build-fails:rt-" + runID
		dockerfile := fmt.Sprintf("FROM %s\nRUN [\"/bin/sh\", \"-c\", \"echo failing-step; exit 7\"]\n", e.image)
		err := e.rt.BuildImage(ctx, failTag, tarContext(map[string][]byte{"Dockerfile": []byte(dockerfile)}), testLabels())
		if err == nil || !strings.Contains(err.Error(), "non-zero code: 7") || !strings.Contains(err.Error(), "failing-step") {
			t.Fatalf("BuildImage = %v; want the step's exit code and output", err)
		}
		if ok, err := e.rt.ImageExists(ctx, failTag); ok || err != nil {
			t.Errorf("ImageExists(%s) after a failed build = %v, %v", failTag, ok, err)
		}
	})
}

func TestContainerLifecycle(t *testing.T) {
	e := mustHaveDocker(t)
	ctx := testContext(t)
	spec := runtime.ContainerSpec{
		Name:       name(t),
		Entrypoint: []string{"/bin/sh", "-c"},
		Command:    []string{`echo "foo=$FOO"; pwd; id -u; exit 3`},
		Env:        []string{"FOO=bar"},
		WorkingDir: "/tmp",
		User:       "1234",
		Labels:     map[string]string{"app": "lifecycle"},
	}
	id := e.create(t, spec)

	st, err := e.rt.Inspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.ID != id || st.Name != spec.Name || st.Status != "created" || st.Running || st.Image != e.image || st.ImageID != e.imageID ||
		st.Labels["app"] != "lifecycle" || !st.StartedAt.IsZero() {
		t.Errorf("Inspect after create = %+v", st)
	}

	if err := e.rt.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	st = e.waitExited(t, id)
	if st.ExitCode != 3 || st.Running || st.Pid != 0 || st.StartedAt.IsZero() || st.FinishedAt.IsZero() || st.OOMKilled || st.Error != "" {
		t.Errorf("Inspect after exit = %+v; want exit code 3 and both timestamps", st)
	}
	if got, want := e.logs(t, id), "foo=bar\n/tmp\n1234\n"; got != want {
		t.Errorf("output = %q, want %q (env, workdir, user)", got, want)
	}

	if err := e.rt.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rt.Inspect(ctx, id); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("Inspect after Remove = %v, want ErrNotFound", err)
	}
	if err := e.rt.Remove(ctx, id); err != nil {
		t.Errorf("second Remove = %v, want nil", err)
	}
}

func TestOOMKilled(t *testing.T) {
	e := mustHaveDocker(t)
	t.Parallel()
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	events, _ := e.rt.Events(ctx)
	// busybox tail keeps the whole of a "line" of /dev/zero in memory.
	id := e.run(t, runtime.ContainerSpec{MemoryLimit: 16 << 20, Command: []string{"tail", "/dev/zero"}})
	st := e.waitExited(t, id)
	if st.ExitCode != 137 {
		t.Fatalf("Inspect after running out of memory = %+v; want exit code 137", st)
	}
	if st.OOMKilled {
		return
	}
	// The engine handles the kernel's OOM notice and the exit apart, and
	// when the exit comes first the inspect flag stays false; the "oom"
	// event is sent either way.
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("event stream ended without an oom event")
			}
			if ev.ContainerID == id && ev.Action == "oom" {
				return
			}
		case <-timeout:
			t.Fatalf("no OOMKilled flag and no oom event for %s: %+v", id, st)
		}
	}
}

func TestCreateNameConflict(t *testing.T) {
	e := mustHaveDocker(t)
	n := name(t)
	e.create(t, runtime.ContainerSpec{Name: n})
	spec := runtime.ContainerSpec{Name: n, Image: e.image, Labels: testLabels()}
	id, err := e.rt.Create(testContext(t), &spec)
	if err == nil {
		e.remove(t, id)
		t.Fatal("second Create of the same name succeeded")
	}
	if !strings.Contains(err.Error(), "already in use") {
		t.Errorf("Create of a taken name = %v; want the engine's conflict", err)
	}
}

func TestResources(t *testing.T) {
	e := mustHaveDocker(t)
	t.Parallel()
	for _, tc := range []struct {
		name                 string
		shares, wantShares   int64
		memory, reservation  int64
		wantMemory, wantSoft int64
	}{
		{name: "engine defaults"},
		{name: "shares below the minimum", shares: 1, wantShares: 2},
		{name: "limit and reservation", shares: 512, wantShares: 512, memory: 64 << 20, reservation: 32 << 20, wantMemory: 64 << 20, wantSoft: 32 << 20},
		{name: "reservation only", reservation: 16 << 20, wantSoft: 16 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := e.create(t, runtime.ContainerSpec{CPUShares: tc.shares, MemoryLimit: tc.memory, MemoryReservation: tc.reservation})
			hc := e.inspect(t, id).HostConfig
			if hc.CPUShares != tc.wantShares || hc.Memory != tc.wantMemory || hc.MemoryReservation != tc.wantSoft {
				t.Errorf("HostConfig cpu shares %d, memory %d, reservation %d; want %d, %d, %d",
					hc.CPUShares, hc.Memory, hc.MemoryReservation, tc.wantShares, tc.wantMemory, tc.wantSoft)
			}
		})
	}

	t.Run("ulimits", func(t *testing.T) {
		t.Parallel()
		id := e.run(t, runtime.ContainerSpec{
			Ulimits: []runtime.Ulimit{{Name: "nofile", Soft: 1000, Hard: 2000}},
			Command: sh("ulimit -Sn; ulimit -Hn"),
		})
		e.waitExited(t, id)
		if got := e.logs(t, id); got != "1000\n2000\n" {
			t.Errorf("soft and hard nofile in the container: %q, want 1000 and 2000", got)
		}
		if u := e.inspect(t, id).HostConfig.Ulimits; len(u) != 1 || u[0].Name != "nofile" || u[0].Soft != 1000 || u[0].Hard != 2000 {
			t.Errorf("HostConfig.Ulimits = %v", u)
		}
	})
}

func TestCreateOptions(t *testing.T) {
	e := mustHaveDocker(t)
	t.Parallel()
	spec := runtime.ContainerSpec{
		Hostname:       "wharf-host",
		ReadonlyRootfs: true,
		Init:           true,
		CapAdd:         []string{"NET_ADMIN"},
		CapDrop:        []string{"MKNOD"},
		ShmSize:        32 << 20,
		Tmpfs:          map[string]string{"/scratch": "rw,size=16m"},
		Sysctls:        map[string]string{"net.core.somaxconn": "1000"},
		ExtraHosts:     []string{"wharf-extra:192.0.2.7"},
		DNSServers:     []string{"192.0.2.53"},
		DNSSearch:      []string{"wharf.test"},
		LogDriver:      "json-file",
		LogOptions:     map[string]string{"max-size": "1m"},
		StopTimeout:    7 * time.Second,
		StopSignal:     "SIGINT",
		HealthCheck: &runtime.HealthCheck{
			Test:        []string{"CMD", "true"},
			Interval:    5 * time.Second,
			Timeout:     2 * time.Second,
			Retries:     4,
			StartPeriod: time.Second,
		},
		Command: sh(`hostname
cat /proc/sys/net/core/somaxconn
grep -c wharf-extra /etc/hosts
touch /rootfs 2>/dev/null && echo rootfs writable || echo rootfs read-only
touch /scratch/x && echo tmpfs writable
cat /proc/1/comm
grep -c 192.0.2.53 /etc/resolv.conf`),
	}
	id := e.run(t, spec)
	if st := e.waitExited(t, id); st.ExitCode != 0 {
		t.Fatalf("container exited with %d: %s", st.ExitCode, e.logs(t, id))
	}
	want := "wharf-host\n1000\n1\nrootfs read-only\ntmpfs writable\ndocker-init\n1\n"
	if got := e.logs(t, id); got != want {
		t.Errorf("inside the container:\n%s\nwant:\n%s", got, want)
	}

	c := e.inspect(t, id)
	hc, cfg := c.HostConfig, c.Config
	for _, check := range []struct {
		name string
		ok   bool
		got  any
	}{
		{"readonly rootfs", hc.ReadonlyRootfs, hc.ReadonlyRootfs},
		{"init", hc.Init != nil && *hc.Init, hc.Init},
		{"cap add", len(hc.CapAdd) == 1 && hc.CapAdd[0] == "CAP_NET_ADMIN", hc.CapAdd},
		{"cap drop", len(hc.CapDrop) == 1 && hc.CapDrop[0] == "CAP_MKNOD", hc.CapDrop},
		{"shm size", hc.ShmSize == 32<<20, hc.ShmSize},
		{"tmpfs", hc.Tmpfs["/scratch"] == "rw,size=16m", hc.Tmpfs},
		{"sysctls", hc.Sysctls["net.core.somaxconn"] == "1000", hc.Sysctls},
		{"extra hosts", len(hc.ExtraHosts) == 1 && hc.ExtraHosts[0] == "wharf-extra:192.0.2.7", hc.ExtraHosts},
		{"dns", len(hc.DNS) == 1 && hc.DNS[0] == "192.0.2.53", hc.DNS},
		{"dns search", len(hc.DNSSearch) == 1 && hc.DNSSearch[0] == "wharf.test", hc.DNSSearch},
		{"log config", hc.LogConfig.Type == "json-file" && hc.LogConfig.Config["max-size"] == "1m", hc.LogConfig},
		{"network mode", hc.NetworkMode == "bridge", hc.NetworkMode},
		{"hostname", cfg.Hostname == "wharf-host", cfg.Hostname},
		{"stop timeout", cfg.StopTimeout != nil && *cfg.StopTimeout == 7, cfg.StopTimeout},
		{"stop signal", cfg.StopSignal == "SIGINT", cfg.StopSignal},
		{"health check", cfg.Healthcheck != nil && cfg.Healthcheck.Interval == 5*time.Second && cfg.Healthcheck.Timeout == 2*time.Second &&
			cfg.Healthcheck.Retries == 4 && cfg.Healthcheck.StartPeriod == time.Second && strings.Join(cfg.Healthcheck.Test, " ") == "CMD true", cfg.Healthcheck},
	} {
		if !check.ok {
			t.Errorf("%s: engine has %+v", check.name, check.got)
		}
	}

	t.Run("privileged", func(t *testing.T) {
		t.Parallel()
		id := e.create(t, runtime.ContainerSpec{Privileged: true})
		if !e.inspect(t, id).HostConfig.Privileged {
			t.Error("HostConfig.Privileged is false")
		}
	})
}

func TestMounts(t *testing.T) {
	e := mustHaveDocker(t)
	t.Parallel()
	ctx := testContext(t)
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/in.txt", []byte("from-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	vol := name(t)
	if _, err := e.cli.VolumeCreate(ctx, volume.CreateOptions{Name: vol, Labels: testLabels()}); err != nil {
		t.Fatal(err)
	}
	// Registered first, so it runs after the containers' removal.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := e.cli.VolumeRemove(ctx, vol, false); err != nil {
			t.Errorf("cleanup: remove volume: %v", err)
		}
	})

	writer := e.run(t, runtime.ContainerSpec{
		Mounts: []runtime.Mount{
			{Source: dir, Target: "/host"},
			{Source: vol, Target: "/vol", Volume: true},
		},
		Command: sh("cat /host/in.txt && echo from-container > /host/out.txt && echo in-volume > /vol/file"),
	})
	if st := e.waitExited(t, writer); st.ExitCode != 0 {
		t.Fatalf("writer exited with %d: %s", st.ExitCode, e.logs(t, writer))
	}
	if got := e.logs(t, writer); got != "from-host\n" {
		t.Errorf("bind mount read in the container: %q", got)
	}
	if got, err := os.ReadFile(dir + "/out.txt"); err != nil || string(got) != "from-container\n" {
		t.Errorf("bind mount written by the container: %q, %v", got, err)
	}

	for _, tc := range []struct {
		name string
		spec runtime.ContainerSpec
		want string
	}{
		{
			name: "read-only named volume",
			spec: runtime.ContainerSpec{
				Mounts:  []runtime.Mount{{Source: vol, Target: "/ro", Volume: true, ReadOnly: true}},
				Command: sh("cat /ro/file; touch /ro/x 2>/dev/null && echo writable || echo read-only"),
			},
			want: "in-volume\nread-only\n",
		},
		{
			name: "volumes from",
			spec: runtime.ContainerSpec{
				VolumesFrom: []string{writer},
				Command:     sh("cat /vol/file /host/in.txt"),
			},
			want: "in-volume\nfrom-host\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := e.run(t, tc.spec)
			e.waitExited(t, id)
			if got := e.logs(t, id); got != tc.want {
				t.Errorf("output %q, want %q", got, tc.want)
			}
		})
	}
}

// httpGet fetches url with a short timeout.
func httpGet(url string) (string, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", url, resp.Status)
	}
	return string(b), err
}

func TestPortBindingEphemeral(t *testing.T) {
	e := mustHaveDocker(t)
	t.Parallel()
	id := e.run(t, runtime.ContainerSpec{
		Command:      []string{"httpd", "-f", "-p", "80", "-h", "/www"},
		PortBindings: []runtime.PortBinding{{ContainerPort: 80, HostPort: 0, Protocol: "tcp", HostIP: "127.0.0.1"}},
	})
	st, err := e.rt.Inspect(testContext(t), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Ports) != 1 || st.Ports[0].ContainerPort != 80 || st.Ports[0].Protocol != "tcp" || st.Ports[0].HostIP != "127.0.0.1" || st.Ports[0].HostPort == 0 {
		t.Fatalf("Ports = %+v; want 80/tcp published on a chosen port of 127.0.0.1", st.Ports)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", st.Ports[0].HostPort)
	waitFor(t, wait, "httpd to answer at "+url, func() error {
		got, err := httpGet(url)
		if err == nil && got != "hello-from-wharf\n" {
			err = fmt.Errorf("body %q", got)
		}
		return err
	})
}

// poll is a shell loop that runs cmd until it succeeds, for at most 10s.
func poll(cmd string) string {
	return fmt.Sprintf("i=0; until %s; do i=$((i+1)); [ $i -ge 100 ] && exit 1; sleep 0.1; done", cmd)
}

func TestUserDefinedNetwork(t *testing.T) {
	e := mustHaveDocker(t)
	t.Parallel()
	ctx := testContext(t)
	octet := subnetOctet(0)
	nw := name(t)
	if err := e.rt.EnsureNetwork(ctx, runtime.NetworkSpec{
		Name:    nw,
		Subnet:  fmt.Sprintf("10.231.%d.0/24", octet),
		Gateway: fmt.Sprintf("10.231.%d.1", octet),
		Labels:  testLabels(),
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeNetwork(t, e, nw) })

	ip := fmt.Sprintf("10.231.%d.10", octet)
	mac := fmt.Sprintf("02:42:0a:e7:%02x:0a", octet)
	server := e.run(t, runtime.ContainerSpec{
		NetworkMode: nw,
		IPv4Address: ip,
		MacAddress:  mac,
		Aliases:     []string{"web"},
		Command:     []string{"httpd", "-f", "-p", "80", "-h", "/www"},
	})
	st, err := e.rt.Inspect(ctx, server)
	if err != nil {
		t.Fatal(err)
	}
	if st.Networks[nw] != ip || st.MacAddresses[nw] != mac {
		t.Errorf("on network %s: address %q, MAC %q; want %s, %s (all: %v, %v)", nw, st.Networks[nw], st.MacAddresses[nw], ip, mac, st.Networks, st.MacAddresses)
	}

	client := e.run(t, runtime.ContainerSpec{
		NetworkMode: nw,
		Command:     sh(poll("wget -q -O - http://web/ 2>/dev/null")),
	})
	if st := e.waitExited(t, client); st.ExitCode != 0 {
		t.Fatalf("client could not reach the alias web within 10s: exit %d", st.ExitCode)
	}
	if got := e.logs(t, client); got != "hello-from-wharf\n" {
		t.Errorf("client got %q from web", got)
	}
}

// subnetOctet picks a third octet for a test's 10.231.x.0/24 network from
// the run id, so that concurrent runs likely differ.
func subnetOctet(i int) int {
	b, _ := hex.DecodeString(runID)
	return (int(b[0])&^3 + i) % 256
}

func removeNetwork(t *testing.T, e *env, nw string) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := e.rt.RemoveNetwork(ctx, nw); err != nil {
		t.Errorf("cleanup: %v", err)
	}
}

func TestSharedNetworkNamespace(t *testing.T) {
	e := mustHaveDocker(t)
	t.Parallel()
	server := e.run(t, runtime.ContainerSpec{
		NetworkMode: "none",
		Command:     []string{"httpd", "-f", "-p", "8080", "-h", "/www"},
	})
	client := e.run(t, runtime.ContainerSpec{
		NetworkMode: "container:" + server,
		Command:     sh(poll("wget -q -O - http://127.0.0.1:8080/ 2>/dev/null")),
	})
	if st := e.waitExited(t, client); st.ExitCode != 0 {
		t.Fatalf("client could not reach 127.0.0.1:8080 of the shared namespace within 10s: exit %d", st.ExitCode)
	}
	if got := e.logs(t, client); got != "hello-from-wharf\n" {
		t.Errorf("client got %q", got)
	}
}

func TestHealthCheck(t *testing.T) {
	e := mustHaveDocker(t)
	t.Parallel()
	for _, tc := range []struct {
		name string
		test []string
		want string
	}{
		{"healthy", []string{"CMD", "true"}, "healthy"},
		{"unhealthy", []string{"CMD-SHELL", "exit 1"}, "unhealthy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := e.run(t, runtime.ContainerSpec{
				Command:     []string{"sleep", "300"},
				HealthCheck: &runtime.HealthCheck{Test: tc.test, Interval: 200 * time.Millisecond, Timeout: 5 * time.Second, Retries: 1},
			})
			waitFor(t, wait, "health "+tc.want, func() error {
				st, err := e.rt.Inspect(testContext(t), id)
				if err != nil {
					return err
				}
				if st.Health != tc.want {
					return fmt.Errorf("health %q", st.Health)
				}
				return nil
			})
		})
	}
	t.Run("none", func(t *testing.T) {
		t.Parallel()
		id := e.run(t, runtime.ContainerSpec{Command: []string{"sleep", "300"}})
		st, err := e.rt.Inspect(testContext(t), id)
		if err != nil || st.Health != "" {
			t.Errorf("Inspect of a container without a health check: health %q, %v", st.Health, err)
		}
	})
}

func TestStop(t *testing.T) {
	e := mustHaveDocker(t)
	t.Parallel()
	for _, tc := range []struct {
		name       string
		script     string
		signal     string
		timeout    time.Duration
		wantExit   int
		minElapsed time.Duration
		maxElapsed time.Duration
	}{
		{name: "ignores SIGTERM", script: "trap '' TERM", timeout: 2 * time.Second, wantExit: 137, minElapsed: 1900 * time.Millisecond, maxElapsed: 12 * time.Second},
		{name: "exits on SIGTERM", script: "trap 'exit 0' TERM", timeout: 20 * time.Second, wantExit: 0, maxElapsed: 10 * time.Second},
		{name: "own stop signal", script: "trap 'exit 3' USR1", signal: "SIGUSR1", timeout: 20 * time.Second, wantExit: 3, maxElapsed: 10 * time.Second},
		{name: "zero timeout kills", script: "trap 'exit 0' TERM", timeout: 0, wantExit: 137, maxElapsed: 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			id := e.run(t, runtime.ContainerSpec{
				StopSignal: tc.signal,
				Command:    sh(tc.script + "; echo ready; while :; do sleep 0.1; done"),
			})
			waitFor(t, wait, "the container to set its trap", func() error {
				if out := e.logs(t, id); out != "ready\n" {
					return fmt.Errorf("output %q", out)
				}
				return nil
			})
			st, err := e.rt.Inspect(ctx, id)
			if err != nil || !st.Running || st.Pid == 0 || st.Status != "running" {
				t.Fatalf("Inspect before Stop = %+v, %v", st, err)
			}
			start := time.Now()
			if err := e.rt.Stop(ctx, id, tc.timeout); err != nil {
				t.Fatal(err)
			}
			elapsed := time.Since(start)
			t.Logf("stopped in %v", elapsed)
			if elapsed < tc.minElapsed || elapsed > tc.maxElapsed {
				t.Errorf("Stop took %v, want between %v and %v", elapsed, tc.minElapsed, tc.maxElapsed)
			}
			st, err = e.rt.Inspect(ctx, id)
			if err != nil || st.Running || st.Status != "exited" || st.ExitCode != tc.wantExit {
				t.Errorf("Inspect after Stop = %+v, %v; want exited with %d", st, err, tc.wantExit)
			}
			if err := e.rt.Stop(ctx, id, time.Second); err != nil {
				t.Errorf("Stop of an exited container = %v, want nil", err)
			}
		})
	}
}

func TestEvents(t *testing.T) {
	e := mustHaveDocker(t)
	t.Parallel()
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	events, errs := e.rt.Events(ctx)

	mark := name(t)
	id := e.run(t, runtime.ContainerSpec{
		Labels:      map[string]string{"wharf.test/events": mark},
		Command:     []string{"sleep", "300"},
		HealthCheck: &runtime.HealthCheck{Test: []string{"CMD", "true"}, Interval: 200 * time.Millisecond, Timeout: 5 * time.Second, Retries: 1},
	})

	deadline := time.After(wait)
	seen := map[string]bool{}
	await := func(action string) {
		t.Helper()
		for !seen[action] {
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatalf("event stream closed while awaiting %s: %v", action, <-errs)
				}
				if ev.ContainerID != id {
					continue
				}
				seen[ev.Action] = true
				if ev.Labels["wharf.test/events"] != mark || ev.Labels[labelRun] != runID {
					t.Errorf("%s event labels %v lack the container's", ev.Action, ev.Labels)
				}
				if _, ok := ev.Labels["name"]; ok {
					t.Errorf("%s event labels %v carry the engine's name attribute", ev.Action, ev.Labels)
				}
				if ev.Time.IsZero() || time.Since(ev.Time) > time.Hour {
					t.Errorf("%s event time %v", ev.Action, ev.Time)
				}
			case <-deadline:
				t.Fatalf("waited %v for a %s event of container %s; saw %v", wait, action, id, seen)
			}
		}
	}
	await("create")
	await("start")
	await("health_status")
	if err := e.rt.Stop(ctx, id, 0); err != nil {
		t.Fatal(err)
	}
	await("die")

	cancel()
	for {
		select {
		case _, ok := <-events:
			if ok {
				continue
			}
			if err := <-errs; !errors.Is(err, context.Canceled) {
				t.Errorf("error after cancel = %v, want context.Canceled", err)
			}
			return
		case <-time.After(wait):
			t.Fatalf("event channel still open %v after cancel", wait)
		}
	}
}

func TestStats(t *testing.T) {
	e := mustHaveDocker(t)
	t.Parallel()
	id := e.run(t, runtime.ContainerSpec{Command: []string{"sleep", "300"}})
	stats, err := e.rt.Stats(testContext(t), id)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		ID       string         `json:"id"`
		CPUStats map[string]any `json:"cpu_stats"`
		Memory   map[string]any `json:"memory_stats"`
	}
	if err := json.Unmarshal(stats, &got); err != nil {
		t.Fatalf("stats are not JSON: %v\n%s", err, stats)
	}
	if got.ID != id || got.CPUStats["cpu_usage"] == nil || got.Memory == nil {
		t.Errorf("stats lack id, cpu_stats.cpu_usage or memory_stats:\n%s", stats)
	}
}

func TestLogs(t *testing.T) {
	e := mustHaveDocker(t)
	t.Parallel()
	ctx := testContext(t)
	id := e.run(t, runtime.ContainerSpec{Command: sh("echo out1; echo err1 >&2; sleep 0.5; echo last")})
	e.waitExited(t, id)
	all := e.logs(t, id)
	if !strings.Contains(all, "out1\n") || !strings.Contains(all, "err1\n") || !strings.HasSuffix(all, "last\n") || len(all) != len("out1\nerr1\nlast\n") {
		t.Errorf("Logs(all) = %q; want out1, err1 and last as plain text", all)
	}
	if got, err := e.rt.Logs(ctx, id, 1); err != nil || string(got) != "last\n" {
		t.Errorf("Logs(tail 1) = %q, %v; want %q", got, err, "last\n")
	}

	t.Run("tty", func(t *testing.T) {
		// Specs have no TTY; a container made elsewhere may.
		resp, err := e.cli.ContainerCreate(ctx, &container.Config{
			Image:  e.image,
			Cmd:    sh("echo on-a-tty; echo also-stderr >&2"),
			Tty:    true,
			Labels: testLabels(),
		}, nil, nil, nil, name(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.remove(t, resp.ID) })
		if err := e.rt.Start(ctx, resp.ID); err != nil {
			t.Fatal(err)
		}
		e.waitExited(t, resp.ID)
		got := strings.ReplaceAll(e.logs(t, resp.ID), "\r\n", "\n")
		if got != "on-a-tty\nalso-stderr\n" {
			t.Errorf("Logs of a TTY container = %q", got)
		}
	})
}

func TestList(t *testing.T) {
	e := mustHaveDocker(t)
	t.Parallel()
	ctx := testContext(t)
	const key = "wharf.test/list"
	mark := name(t)
	created := e.create(t, runtime.ContainerSpec{Labels: map[string]string{key: mark, "role": "created"}})
	running := e.run(t, runtime.ContainerSpec{Labels: map[string]string{key: mark, "role": "running"}, Command: []string{"sleep", "300"}})

	ids := func(labels map[string]string) map[string]runtime.State {
		t.Helper()
		states, err := e.rt.List(ctx, labels)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]runtime.State{}
		for _, s := range states {
			m[s.ID] = s
		}
		return m
	}
	got := ids(map[string]string{key: mark})
	if len(got) != 2 || got[created].Status != "created" || !got[running].Running || got[running].Pid == 0 || got[created].Labels["role"] != "created" {
		t.Errorf("List(%s=%s) = %+v; want the created and the running container, fully inspected", key, mark, got)
	}
	if got := ids(map[string]string{key: ""}); len(got) < 2 || got[created].ID == "" || got[running].ID == "" {
		t.Errorf("List(%s) = %d containers; want both of this test's among them", key, len(got))
	}
	if got := ids(map[string]string{key: mark, "role": "running"}); len(got) != 1 || got[running].ID == "" {
		t.Errorf("List(%s=%s, role=running) = %v; want the running one only", key, mark, got)
	}
	if got := ids(map[string]string{key: mark + "-other"}); len(got) != 0 {
		t.Errorf("List with another value = %v; want none", got)
	}
}

func TestEnsureNetwork(t *testing.T) {
	e := mustHaveDocker(t)
	t.Parallel()
	ctx := testContext(t)
	octet := subnetOctet(1)
	spec := runtime.NetworkSpec{
		Name:    name(t),
		Subnet:  fmt.Sprintf("10.231.%d.0/24", octet),
		Gateway: fmt.Sprintf("10.231.%d.1", octet),
		Labels:  testLabels("wharf.test/network", "yes"),
	}
	t.Cleanup(func() { removeNetwork(t, e, spec.Name) })
	for i := range 2 {
		if err := e.rt.EnsureNetwork(ctx, spec); err != nil {
			t.Fatalf("EnsureNetwork, call %d: %v", i+1, err)
		}
	}
	nw, err := e.cli.NetworkInspect(ctx, spec.Name, network.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if nw.Driver != "bridge" || len(nw.IPAM.Config) != 1 || nw.IPAM.Config[0].Subnet != spec.Subnet || nw.IPAM.Config[0].Gateway != spec.Gateway || nw.Labels["wharf.test/network"] != "yes" {
		t.Errorf("network %s: driver %s, IPAM %+v, labels %v", spec.Name, nw.Driver, nw.IPAM.Config, nw.Labels)
	}

	for _, tc := range []struct {
		name   string
		change func(*runtime.NetworkSpec)
		want   []string
	}{
		{"another subnet", func(s *runtime.NetworkSpec) { s.Subnet, s.Gateway = "10.232.0.0/24", "" }, []string{spec.Subnet, "10.232.0.0/24"}},
		{"another gateway", func(s *runtime.NetworkSpec) { s.Gateway = fmt.Sprintf("10.231.%d.254", octet) }, []string{spec.Gateway, fmt.Sprintf("10.231.%d.254", octet)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			other := spec
			tc.change(&other)
			err := e.rt.EnsureNetwork(ctx, other)
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("EnsureNetwork with %s = %v; want an error naming %s", tc.name, err, strings.Join(tc.want, " and "))
					break
				}
			}
		})
	}

	t.Run("concurrent", func(t *testing.T) {
		octet := subnetOctet(2)
		spec := runtime.NetworkSpec{Name: name(t), Subnet: fmt.Sprintf("10.231.%d.0/24", octet), Labels: testLabels()}
		t.Cleanup(func() { removeNetwork(t, e, spec.Name) })
		errs := make(chan error, 4)
		for range cap(errs) {
			go func() { errs <- e.rt.EnsureNetwork(ctx, spec) }()
		}
		for range cap(errs) {
			if err := <-errs; err != nil {
				t.Errorf("concurrent EnsureNetwork: %v", err)
			}
		}
		list, err := e.cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", spec.Name))})
		if err != nil || len(list) != 1 {
			t.Errorf("networks named %s: %d, %v; want 1", spec.Name, len(list), err)
		}
	})

	t.Run("remove", func(t *testing.T) {
		id := e.run(t, runtime.ContainerSpec{NetworkMode: spec.Name, Command: []string{"sleep", "300"}})
		if err := e.rt.RemoveNetwork(ctx, spec.Name); err == nil {
			t.Fatal("RemoveNetwork with a container attached succeeded")
		}
		if err := e.rt.Remove(ctx, id); err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			if err := e.rt.RemoveNetwork(ctx, spec.Name); err != nil {
				t.Errorf("RemoveNetwork, call %d: %v", i+1, err)
			}
		}
	})
}

func TestNotFound(t *testing.T) {
	e := mustHaveDocker(t)
	t.Parallel()
	ctx := testContext(t)
	missing := "wharf-test-missing-" + runID
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"inspect", func() error { _, err := e.rt.Inspect(ctx, missing); return err }},
		{"start", func() error { return e.rt.Start(ctx, missing) }},
		{"stop", func() error { return e.rt.Stop(ctx, missing, time.Second) }},
		{"stats", func() error { _, err := e.rt.Stats(ctx, missing); return err }},
		{"logs", func() error { _, err := e.rt.Logs(ctx, missing, 0); return err }},
		{"create from a missing image", func() error {
			id, err := e.rt.Create(ctx, &runtime.ContainerSpec{Name: name(t), Image: "wharf-test/missing:" + runID, Labels: testLabels()})
			if err == nil {
				e.remove(t, id)
			}
			return err
		}},
		{"run on a missing network", func() error {
			// The engine may find out only on start (20.10 does).
			id, err := e.rt.Create(ctx, &runtime.ContainerSpec{Name: name(t), Image: e.image, NetworkMode: missing, Labels: testLabels()})
			if err != nil {
				return err
			}
			defer e.remove(t, id)
			return e.rt.Start(ctx, id)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, runtime.ErrNotFound) {
				t.Errorf("%s of %s = %v, want ErrNotFound", tc.name, missing, err)
			}
		})
	}
	if err := e.rt.Remove(ctx, missing); err != nil {
		t.Errorf("Remove of a missing container = %v, want nil", err)
	}
	if err := e.rt.RemoveNetwork(ctx, missing); err != nil {
		t.Errorf("RemoveNetwork of a missing network = %v, want nil", err)
	}
}

// TestUnreachableEngine needs no engine: it checks how failures to reach one
// are reported.
func TestUnreachableEngine(t *testing.T) {
	rt, err := docker.New(docker.WithHost("unix://" + t.TempDir() + "/no-docker.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	ctx := testContext(t)
	if _, err := rt.Info(ctx); err == nil {
		t.Error("Info of an unreachable engine succeeded")
	}
	if _, err := rt.Create(ctx, &runtime.ContainerSpec{Name: "x", Image: "busybox"}); err == nil || !strings.Contains(err.Error(), "no-docker.sock") {
		t.Errorf("Create on an unreachable engine = %v; want an error naming its address", err)
	}
	events, errs := rt.Events(ctx)
	select {
	case _, ok := <-events:
		if ok {
			t.Fatal("an event from an unreachable engine")
		}
	case <-time.After(wait):
		t.Fatalf("event channel still open %v after the engine could not be reached", wait)
	}
	if err := <-errs; err == nil || errors.Is(err, context.Canceled) {
		t.Errorf("event stream error = %v; want the connection's", err)
	}
}
