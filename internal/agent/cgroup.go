package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// cgroupRoot is where the kernel mounts the cgroup hierarchies.
const cgroupRoot = "/sys/fs/cgroup"

// taskCgroup is the cgroup a Fargate task's containers run under, which
// holds them all to the task's size, as the task's VM does on Fargate.
// Parent is what the engine takes as the containers' cgroup parent.
type taskCgroup struct {
	root   string
	Parent string
}

// newTaskCgroup creates the cgroup wharf/<id> limited to cpuUnits (1024
// a vCPU) and memMiB; zero leaves that resource unlimited. It works with
// cgroup v2 and with v1's memory and cpu controllers, the engine using
// its cgroupfs driver.
func newTaskCgroup(root, id string, cpuUnits, memMiB int64) (*taskCgroup, error) {
	g := &taskCgroup{root: root, Parent: "/wharf/" + id}
	const period = 100000 // µs
	quota := cpuUnits * period / 1024
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
		// v2: the controllers must be enabled down to the task's group.
		for _, dir := range []string{root, filepath.Join(root, "wharf")} {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, err
			}
			if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+memory +cpu"), 0); err != nil {
				return nil, fmt.Errorf("enable the memory and cpu controllers in %s: %w", dir, err)
			}
		}
		dir := filepath.Join(root, "wharf", id)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		limits := map[string]string{}
		if memMiB > 0 {
			limits["memory.max"] = strconv.FormatInt(memMiB<<20, 10)
		}
		if cpuUnits > 0 {
			limits["cpu.max"] = fmt.Sprintf("%d %d", quota, period)
		}
		return g, writeAll(dir, limits)
	}
	limits := map[string]map[string]string{"memory": {}, "cpu": {}}
	if memMiB > 0 {
		limits["memory"]["memory.limit_in_bytes"] = strconv.FormatInt(memMiB<<20, 10)
	}
	if cpuUnits > 0 {
		limits["cpu"]["cpu.cfs_period_us"] = strconv.Itoa(period)
		limits["cpu"]["cpu.cfs_quota_us"] = strconv.FormatInt(quota, 10)
	}
	for controller, files := range limits {
		dir := filepath.Join(root, controller, "wharf", id)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		if err := writeAll(dir, files); err != nil {
			return nil, err
		}
	}
	return g, nil
}

func writeAll(dir string, files map[string]string) error {
	for name, v := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0); err != nil {
			return fmt.Errorf("set %s: %w", filepath.Join(dir, name), err)
		}
	}
	return nil
}

// remove deletes the task's group from every hierarchy (the engine makes
// it in each of v1's controllers); it must hold no process any more.
func (g *taskCgroup) remove() error {
	dirs, _ := filepath.Glob(filepath.Join(g.root, "*", g.Parent))
	if _, err := os.Stat(filepath.Join(g.root, g.Parent)); err == nil {
		dirs = append(dirs, filepath.Join(g.root, g.Parent))
	}
	var errs []error
	for _, dir := range dirs {
		// The engine leaves the containers' own groups empty once they
		// stop; remove them first.
		subs, _ := os.ReadDir(dir)
		for _, s := range subs {
			if s.IsDir() {
				if err := os.Remove(filepath.Join(dir, s.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
					errs = append(errs, err)
				}
			}
		}
		if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
