package agent

import (
	"os"
	"path/filepath"
	"testing"
)

// dropFiles removes the regular files below root: a real cgroupfs lets a
// group go with its interface files, a plain directory does not.
func dropFiles(root string) {
	filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			os.Remove(path)
		}
		return nil
	})
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestTaskCgroup checks the limits a Fargate task's cgroup gets, in
// cgroup v1's and v2's layouts, and that removing it leaves nothing.
func TestTaskCgroup(t *testing.T) {
	t.Run("v1", func(t *testing.T) {
		root := t.TempDir()
		g, err := newTaskCgroup(root, "abc", 512, 1024)
		if err != nil {
			t.Fatal(err)
		}
		if g.Parent != "/wharf/abc" {
			t.Fatalf("parent %q", g.Parent)
		}
		for file, want := range map[string]string{
			"memory/wharf/abc/memory.limit_in_bytes": "1073741824",
			"cpu/wharf/abc/cpu.cfs_quota_us":         "50000",
			"cpu/wharf/abc/cpu.cfs_period_us":        "100000",
		} {
			if got := readFile(t, filepath.Join(root, file)); got != want {
				t.Errorf("%s = %q, want %q", file, got, want)
			}
		}
		// The engine makes the group in other controllers too, and a
		// group per container below it.
		if err := os.MkdirAll(filepath.Join(root, "pids/wharf/abc/container1"), 0o755); err != nil {
			t.Fatal(err)
		}
		dropFiles(root)
		if err := g.remove(); err != nil {
			t.Fatal(err)
		}
		left, _ := filepath.Glob(filepath.Join(root, "*/wharf/abc"))
		if len(left) > 0 {
			t.Fatalf("left behind: %v", left)
		}
	})
	t.Run("v2", func(t *testing.T) {
		root := t.TempDir()
		if err := os.WriteFile(filepath.Join(root, "cgroup.controllers"), []byte("cpu memory pids"), 0o644); err != nil {
			t.Fatal(err)
		}
		g, err := newTaskCgroup(root, "abc", 256, 512)
		if err != nil {
			t.Fatal(err)
		}
		for file, want := range map[string]string{
			"cgroup.subtree_control":       "+memory +cpu",
			"wharf/cgroup.subtree_control": "+memory +cpu",
			"wharf/abc/memory.max":         "536870912",
			"wharf/abc/cpu.max":            "25000 100000",
		} {
			if got := readFile(t, filepath.Join(root, file)); got != want {
				t.Errorf("%s = %q, want %q", file, got, want)
			}
		}
		dropFiles(root)
		if err := g.remove(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(root, "wharf/abc")); !os.IsNotExist(err) {
			t.Fatalf("wharf/abc left behind: %v", err)
		}
	})
}
