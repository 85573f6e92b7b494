package agent

import (
	"context"
	"time"
)

// janitor removes the containers of stopped tasks once the cleanup delay
// has passed, and stops and removes containers of tasks the control plane
// no longer assigns to this instance.
func (a *Agent) janitor(ctx context.Context) {
	t := time.NewTicker(min(a.cfg.CleanupDelay, 30*time.Second))
	defer t.Stop()
	for {
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
