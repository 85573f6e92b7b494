package testenv

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/client"
)

// busyboxPath is where Debian's busybox-static installs its static binary.
const busyboxPath = "/bin/busybox"

// busyboxDockerfile turns the static busybox into a minimal image with a
// shell and the usual applets on the PATH.
const busyboxDockerfile = `FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/busybox", "sh", "-c", "mkdir -p /tmp /var/www /etc && chmod 1777 /tmp"]
ENV PATH=/bin
LABEL wharf.test=busybox
`

// skipOrFail skips the test, or fails it when CI is set, where a missing
// prerequisite means .ci/run did not install it.
func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if inCI() {
		t.Fatalf("%s, and CI is set: .ci/run must provide it", msg)
	}
	t.Skip(msg)
}

var dockerCheck struct {
	once sync.Once
	err  error
}

// MustHaveDocker skips the test when no Docker engine answers (failing it
// under CI, which must provide one).
func MustHaveDocker(t testing.TB) {
	t.Helper()
	dockerCheck.once.Do(func() {
		cli, err := DockerClient()
		if err != nil {
			dockerCheck.err = err
			return
		}
		defer cli.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := cli.Ping(ctx); err != nil {
			dockerCheck.err = fmt.Errorf("no Docker engine answers at %s: %w", cli.DaemonHost(), err)
		}
	})
	if dockerCheck.err != nil {
		skipOrFail(t, "this test needs Docker: %v", dockerCheck.err)
	}
}

// MustHaveRuntime skips the test (failing it under CI) unless the Docker
// engine offers the OCI runtime name, as hack/test configures runsc.
func MustHaveRuntime(t testing.TB, name string) {
	t.Helper()
	MustHaveDocker(t)
	cli, err := DockerClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := cli.Info(ctx)
	if err != nil {
		t.Fatalf("docker info: %v", err)
	}
	if _, ok := info.Runtimes[name]; !ok {
		skipOrFail(t, "this test needs the Docker engine's %s runtime (hack/test adds it to /etc/docker/daemon.json)", name)
	}
}

// DockerClient returns a client of the engine at DOCKER_HOST or the default
// socket, negotiating the API version (Docker 20.10 speaks API 1.41).
func DockerClient() (*client.Client, error) {
	return client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
}

var busybox struct {
	once sync.Once
	tag  string
	err  error
}

// ErrNoBusybox means the host lacks the static busybox the test image is
// built from.
var ErrNoBusybox = errors.New("no static busybox")

// BusyboxImage returns the tag of a FROM scratch image holding the host's
// static busybox with its applets installed in /bin, building it the first
// time a test binary asks. The tag is wharf-test/busybox:<hash> of the
// binary and the Dockerfile, so an engine that has it already is not asked
// to build it again. It skips the test when busybox-static is not installed
// (failing it under CI).
func BusyboxImage(t testing.TB) string {
	t.Helper()
	MustHaveDocker(t)
	busybox.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		busybox.tag, busybox.err = BuildBusyboxImage(ctx)
	})
	if errors.Is(busybox.err, ErrNoBusybox) {
		skipOrFail(t, "%v", busybox.err)
	}
	if busybox.err != nil {
		t.Fatalf("build the busybox test image: %v", busybox.err)
	}
	return busybox.tag
}

// BuildBusyboxImage is BusyboxImage for programs: it builds the image
// unless the engine has it and returns its tag. The error wraps
// ErrNoBusybox when busybox-static is not installed.
func BuildBusyboxImage(ctx context.Context) (string, error) {
	bin, err := os.ReadFile(busyboxPath)
	if err != nil {
		return "", fmt.Errorf("%w: %s is missing (apt-get install busybox-static)", ErrNoBusybox, busyboxPath)
	}
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return "", fmt.Errorf("%w: %s is not an ELF binary: %v", ErrNoBusybox, busyboxPath, err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", fmt.Errorf("%w: %s is dynamically linked (apt-get install busybox-static)", ErrNoBusybox, busyboxPath)
		}
	}
	h := sha256.New()
	h.Write(bin)
	h.Write([]byte(busyboxDockerfile))
	tag := "wharf-test/busybox:" + hex.EncodeToString(h.Sum(nil))[:12]

	cli, err := DockerClient()
	if err != nil {
		return "", err
	}
	defer cli.Close()
	if _, err := cli.ImageInspect(ctx, tag); err == nil {
		return tag, nil
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, []byte(busyboxDockerfile)}, {"busybox", 0o755, bin}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), Typeflag: tar.TypeReg}); err != nil {
			return "", err
		}
		if _, err := tw.Write(f.data); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	resp, err := cli.ImageBuild(ctx, &buf, build.ImageBuildOptions{
		Tags: []string{tag}, Version: build.BuilderV1, Remove: true, ForceRemove: true,
	})
	if err != nil {
		return "", fmt.Errorf("docker build %s: %w", tag, err)
	}
	defer resp.Body.Close()
	// The engine streams JSON messages; a failed step ends with an error
	// message rather than an HTTP error.
	var out strings.Builder
	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct {
			Stream string `json:"stream"`
			Error  string `json:"error"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			break
		} else if err != nil {
			return "", fmt.Errorf("docker build %s: read the engine's answer: %w", tag, err)
		}
		out.WriteString(msg.Stream)
		if msg.Error != "" {
			return "", fmt.Errorf("docker build %s: %s\n%s", tag, msg.Error, out.String())
		}
	}
	return tag, nil
}

var wharfBinary struct {
	once sync.Once
	path string
	err  error
}

// WharfBinary builds ./cmd/wharf the first time a test binary asks and
// returns the executable's path. Executables are kept by content hash in
// $TMPDIR/wharf-test-bin, so that an unchanged build keeps its path and the
// agent's helper images (tagged by the binary's hash) are reused.
func WharfBinary(t testing.TB) string {
	t.Helper()
	wharfBinary.once.Do(func() { wharfBinary.path, wharfBinary.err = BuildWharf() })
	if wharfBinary.err != nil {
		t.Fatalf("build wharf: %v", wharfBinary.err)
	}
	return wharfBinary.path
}

// BuildWharf is WharfBinary for programs: it builds ./cmd/wharf of the
// module the working directory is in and returns the executable's path.
// Executables of earlier builds that are more than a day old are removed.
func BuildWharf() (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the go command is not on the PATH: %w", err)
	}
	gomod, err := exec.Command(goTool, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	if root == "." || root == "" {
		return "", fmt.Errorf("not inside the wharf module")
	}
	dir := filepath.Join(os.TempDir(), "wharf-test-bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, "build-*")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.Command(goTool, "build", "-o", tmp.Name(), "./cmd/wharf")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/wharf: %w\n%s", err, out)
	}
	f, err := os.Open(tmp.Name())
	if err != nil {
		return "", err
	}
	h := sha256.New()
	_, err = io.Copy(h, f)
	f.Close()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "wharf-"+hex.EncodeToString(h.Sum(nil))[:12])
	if old, err := filepath.Glob(filepath.Join(dir, "wharf-*")); err == nil {
		for _, p := range old {
			if fi, err := os.Stat(p); err == nil && p != path && time.Since(fi.ModTime()) > 24*time.Hour {
				os.Remove(p)
			}
		}
	}
	if _, err := os.Stat(path); err == nil {
		// Touched, so that it is not taken for an old one.
		now := time.Now()
		os.Chtimes(path, now, now)
		return path, nil
	}
	// Rename is atomic, so test binaries building at once agree.
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	return path, nil
}
