package helperimage

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"maps"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
)

func TestELFClosure(t *testing.T) {
	if files, err := elfClosure("/bin/busybox"); err == nil && len(files) != 0 {
		// Debian's busybox is static when busybox-static is installed.
		t.Logf("busybox needs %v", files)
	}
	files, err := elfClosure("/bin/ls")
	if err != nil {
		t.Skipf("no dynamically linked /bin/ls here: %v", err)
	}
	var hasLibc, hasLoader bool
	for p := range files {
		hasLibc = hasLibc || strings.Contains(p, "libc.so")
		hasLoader = hasLoader || strings.Contains(p, "ld-linux")
	}
	if !hasLibc || !hasLoader {
		t.Fatalf("closure of /bin/ls: %v", files)
	}
}

// recordingBuilder keeps the images built, with their build contexts'
// files.
type recordingBuilder struct {
	mu     sync.Mutex
	images map[string]map[string][]byte // tag → path → content
	labels map[string]map[string]string
	builds int
}

func (b *recordingBuilder) ImageExists(_ context.Context, image string) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.images[image]
	return ok, nil
}

func (b *recordingBuilder) BuildImage(_ context.Context, tag string, buildContext io.Reader, labels map[string]string) error {
	files := map[string][]byte{}
	tr := tar.NewReader(buildContext)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return err
		}
		files[h.Name] = data
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.images == nil {
		b.images, b.labels = map[string]map[string][]byte{}, map[string]map[string]string{}
	}
	b.images[tag], b.labels[tag] = files, maps.Clone(labels)
	b.builds++
	return nil
}

// TestEnsure: the image of a command is built once per binary from the
// binary and what it needs to run, tagged by the binary's hash, and runs
// `/wharf <command>`.
func TestEnsure(t *testing.T) {
	ctx := context.Background()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	b := &recordingBuilder{}
	labels := map[string]string{"wharf.managed": "true"}
	tag, err := Ensure(ctx, b, "", "pause", labels)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^wharf/pause:[0-9a-f]{12}$`).MatchString(tag) {
		t.Fatalf("tag %q, want wharf/pause:<12 hex digits>", tag)
	}
	files := b.images[tag]
	if want := "FROM scratch\nCOPY rootfs/ /\nENTRYPOINT [\"/wharf\", \"pause\"]\n"; string(files["Dockerfile"]) != want {
		t.Errorf("Dockerfile %q, want %q", files["Dockerfile"], want)
	}
	if !bytes.Equal(files["rootfs/wharf"], self) {
		t.Errorf("rootfs/wharf is not the binary (%d bytes, want %d)", len(files["rootfs/wharf"]), len(self))
	}
	closure, err := elfClosure(exe)
	if err != nil {
		t.Fatal(err)
	}
	for p := range closure {
		if _, ok := files["rootfs"+p]; !ok {
			t.Errorf("the image lacks %s, which the binary needs", p)
		}
	}
	if !maps.Equal(b.labels[tag], labels) {
		t.Errorf("labels %v, want %v", b.labels[tag], labels)
	}

	again, err := Ensure(ctx, b, exe, "pause", labels)
	if err != nil || again != tag || b.builds != 1 {
		t.Fatalf("second Ensure: %q %v after %d builds; want %q without building again", again, err, b.builds, tag)
	}
	proxy, err := Ensure(ctx, b, exe, "proxy", labels)
	if err != nil || proxy != "wharf/proxy:"+strings.TrimPrefix(tag, "wharf/pause:") || b.builds != 2 {
		t.Fatalf("Ensure of the proxy: %q %v after %d builds", proxy, err, b.builds)
	}
	if _, err := Ensure(ctx, b, t.TempDir()+"/missing", "pause", labels); err == nil {
		t.Fatal("Ensure of a missing binary succeeded")
	}
}
