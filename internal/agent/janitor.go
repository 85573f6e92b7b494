package agent

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"time"

	"github.com/wharfhq/wharf/internal/runtime"
)

// janitor removes the containers of stopped tasks once the cleanup delay
// has passed, and stops and removes containers of tasks the control plane
// no longer assigns to this instance.
//
// It also removes the containers that agents of deleted installations on
// this host left behind (see removeOrphans), at once and then as often.
func (a *Agent) janitor(ctx context.Context) {
	t := time.NewTicker(min(a.cfg.CleanupDelay, 30*time.Second))
	defer t.Stop()
	for {
		a.removeOrphans(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if a.synced.Load() {
			a.cleanup(ctx)
		}
	}
}

// removeOrphans stops and removes the containers whose labels name a state
// directory on this host that no longer exists: their installation was
// deleted (say, a `wharf dev` data directory removed), so no agent will
// ever adopt or stop them. Containers of other hosts, of directories that
// exist or cannot be looked at, and those without the label (created
// before agents set it) are left alone.
func (a *Agent) removeOrphans(ctx context.Context) {
	if a.host == "" {
		return
	}
	states, err := a.rt.List(ctx, map[string]string{labelManaged: "true", labelHost: a.host, labelStateDir: ""})
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("cleanup: listing other installations' containers failed", "err", err)
		}
		return
	}
	for _, st := range states {
		dir := st.Labels[labelStateDir]
		if dir == "" || dir == a.stateDir {
			continue
		}
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		a.log.Info("removing a container of a deleted installation: its state directory is gone", "container", st.Name, "state_dir", dir, "task_arn", st.Labels[labelTaskArn])
		if st.Running {
			if err := a.rt.Stop(ctx, st.ID, a.cfg.StopTimeout); err != nil && !errors.Is(err, runtime.ErrNotFound) {
				a.log.Warn("cleanup: stop failed", "container", st.Name, "err", err)
				continue
			}
		}
		if err := a.rt.Remove(ctx, st.ID); err != nil {
			a.log.Warn("cleanup: remove failed", "container", st.Name, "err", err)
		}
	}
}

func (a *Agent) cleanup(ctx context.Context) {
	states, err := a.rt.List(ctx, map[string]string{labelInstance: a.InstanceArn()})
	if err != nil {
		a.log.Warn("cleanup: listing containers failed", "err", err)
		return
	}
	for _, st := range states {
		if a.manager(st.Labels[labelTaskArn]) != nil {
			continue
		}
		switch {
		case st.Running:
			a.log.Info("stopping a container of a task this instance no longer runs", "container", st.Name, "task_arn", st.Labels[labelTaskArn])
			if err := a.rt.Stop(ctx, st.ID, a.cfg.StopTimeout); err != nil {
				a.log.Warn("cleanup: stop failed", "container", st.Name, "err", err)
				continue
			}
		case st.FinishedAt.IsZero() || time.Since(st.FinishedAt) < a.cfg.CleanupDelay:
			continue
		}
		if err := a.rt.Remove(ctx, st.ID); err != nil {
			a.log.Warn("cleanup: remove failed", "container", st.Name, "err", err)
		}
	}
}
