// Package helperimage builds the images of the containers the agent adds
// to tasks (the pause container, the Service Connect proxy) from the wharf
// executable itself, so that a node needs no registry: each image holds the
// executable, the ELF interpreter and shared libraries a dynamically linked
// build needs, and runs `wharf <command>`.
package helperimage

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
)

// Builder is what Ensure needs of a container engine; runtime.Runtime has
// it.
type Builder interface {
	ImageExists(ctx context.Context, image string) (bool, error)
	BuildImage(ctx context.Context, tag string, buildContext io.Reader, labels map[string]string) error
}

// builds serializes builds among the agents of a process.
var builds sync.Mutex

// Ensure returns the tag of the image that runs `wharf <command>` from
// binary (this process's executable when empty), wharf/<command>:<the
// first 12 hex digits of the binary's SHA-256>, building it with labels
// when the engine lacks it.
func Ensure(ctx context.Context, b Builder, binary, command string, labels map[string]string) (string, error) {
	builds.Lock()
	defer builds.Unlock()
	if binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", err
		}
		binary = exe
	}
	f, err := os.Open(binary)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	_, err = io.Copy(h, f)
	f.Close()
	if err != nil {
		return "", err
	}
	tag := "wharf/" + command + ":" + hex.EncodeToString(h.Sum(nil)[:6])
	if ok, err := b.ImageExists(ctx, tag); err != nil || ok {
		return tag, err
	}
	files, err := elfClosure(binary)
	if err != nil {
		return "", fmt.Errorf("find what %s needs to run: %w", binary, err)
	}
	files["/wharf"] = binary
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dockerfile := fmt.Sprintf("FROM scratch\nCOPY rootfs/ /\nENTRYPOINT [\"/wharf\", %q]\n", command)
	if err := addFile(tw, "Dockerfile", []byte(dockerfile), 0o644); err != nil {
		return "", err
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		data, err := os.ReadFile(files[p])
		if err != nil {
			return "", err
		}
		if err := addFile(tw, "rootfs"+p, data, 0o755); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	if err := b.BuildImage(ctx, tag, &buf, labels); err != nil {
		return "", err
	}
	return tag, nil
}

func addFile(tw *tar.Writer, name string, b []byte, mode int64) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err := tw.Write(b)
	return err
}

var libDirs = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}

// elfClosure maps the paths a dynamically linked binary needs at run time
// (its interpreter and shared libraries, transitively) to the host files
// that provide them. A static binary needs nothing.
func elfClosure(binary string) (map[string]string, error) {
	out := map[string]string{}
	queue := []string{binary}
	seen := map[string]bool{}
	for len(queue) > 0 {
		path := queue[0]
		queue = queue[1:]
		if seen[path] {
			continue
		}
		seen[path] = true
		f, err := elf.Open(path)
		if err != nil {
			return nil, err
		}
		for _, p := range f.Progs {
			if p.Type != elf.PT_INTERP {
				continue
			}
			b, err := io.ReadAll(p.Open())
			if err != nil {
				f.Close()
				return nil, err
			}
			interp := string(bytes.TrimRight(b, "\x00"))
			real, err := filepath.EvalSymlinks(interp)
			if err != nil {
				f.Close()
				return nil, err
			}
			out[interp] = real
		}
		libs, err := f.ImportedLibraries()
		f.Close()
		if err != nil {
			return nil, err
		}
		for _, lib := range libs {
			found := false
			for _, dir := range libDirs {
				p := filepath.Join(dir, lib)
				real, err := filepath.EvalSymlinks(p)
				if err != nil {
					continue
				}
				out[p], found = real, true
				queue = append(queue, real)
				break
			}
			if !found {
				return nil, fmt.Errorf("shared library %s not found", lib)
			}
		}
	}
	return out, nil
}
