package control

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/ecs/state"
	"github.com/wharfhq/wharf/internal/store"
)

// Run removes what ECS stops showing: stopped tasks and inactive clusters,
// services and container instances after the retention period, expired
// client tokens, and deleted task definitions nothing uses. It also retires
// deleted services once their last task has stopped. It returns when ctx
// ends. Several servers may run it at once: every removal re-checks its
// condition in a transaction.
func (s *Loops) Sweep(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := s.sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("sweep failed; retrying at the next interval", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Loops) sweep(ctx context.Context) error {
	regions, err := s.st.Regions(ctx)
	if err != nil {
		return err
	}
	for _, region := range regions {
		c := state.Scope{Region: region, Now: s.now().UTC()}
		expired := func(at time.Time) bool { return c.Now.Sub(at) > s.retention }
		steps := []struct {
			prefix string
			drop   func(tx *store.Tx, kv store.KV) (bool, error)
		}{
			{c.Keys().Tasks(""), func(tx *store.Tx, kv store.KV) (bool, error) {
				var t state.TaskRecord
				err := kv.Decode(&t)
				return err == nil && t.LastStatus == "STOPPED" && t.StoppedAt != nil && expired(t.StoppedAt.Time), err
			}},
			{c.Keys().Services(""), func(tx *store.Tx, kv store.KV) (bool, error) {
				var svc state.ServiceRecord
				if err := kv.Decode(&svc); err != nil {
					return false, err
				}
				if svc.Status == "DRAINING" {
					cluster, _, _ := strings.Cut(strings.TrimPrefix(kv.Key, c.Keys().Services("")), "/")
					live, err := s.ServiceHasTasks(tx, c, cluster, svc.ServiceName)
					if err != nil || live {
						return false, err
					}
					s.Retire(c, &svc)
					return false, tx.Put(kv.Key, &svc)
				}
				return svc.Status == "INACTIVE" && svc.InactiveAt != nil && expired(*svc.InactiveAt), nil
			}},
			{c.Keys().Instances(""), func(tx *store.Tx, kv store.KV) (bool, error) {
				var r state.InstanceRecord
				err := kv.Decode(&r)
				return err == nil && r.Status == "INACTIVE" && r.InactiveAt != nil && expired(*r.InactiveAt), err
			}},
			{c.Keys().Clusters(), func(tx *store.Tx, kv store.KV) (bool, error) {
				var r state.ClusterRecord
				err := kv.Decode(&r)
				return err == nil && r.Status == "INACTIVE" && r.InactiveAt != nil && expired(*r.InactiveAt), err
			}},
			{c.Keys().Idempotencies(), func(tx *store.Tx, kv store.KV) (bool, error) {
				var r state.IdempotencyRecord
				err := kv.Decode(&r)
				return err == nil && c.Now.After(r.Expires), err
			}},
			{c.Keys().TaskDefs(""), func(tx *store.Tx, kv store.KV) (bool, error) {
				var td state.TaskDefRecord
				if err := kv.Decode(&td); err != nil || td.Status != ecsapi.TaskDefinitionStatusDeleteInProgress {
					return false, err
				}
				used, err := s.taskDefInUse(tx, c, td.TaskDefinitionArn)
				return !used, err
			}},
		}
		if err := s.sweepHistory(ctx, c); err != nil {
			return err
		}
		for _, step := range steps {
			if err := s.st.Sweep(ctx, step.prefix, step.drop); err != nil {
				return err
			}
		}
	}
	return nil
}

// taskDefInUse reports whether a live task or a service deployment uses a
// task definition.
func (s *Loops) taskDefInUse(tx *store.Tx, c state.Scope, arn string) (bool, error) {
	tasks, err := tx.List(c.Keys().Tasks(""))
	if err != nil {
		return false, err
	}
	for _, kv := range tasks {
		var t state.TaskRecord
		if err := kv.Decode(&t); err != nil {
			return false, err
		}
		if t.TaskDefinitionArn == arn && t.LastStatus != "STOPPED" {
			return true, nil
		}
	}
	services, err := tx.List(c.Keys().Services(""))
	if err != nil {
		return false, err
	}
	for _, kv := range services {
		var svc state.ServiceRecord
		if err := kv.Decode(&svc); err != nil {
			return false, err
		}
		for _, d := range svc.Deployments {
			if d.TaskDefinition == arn {
				return true, nil
			}
		}
	}
	return false, nil
}

// sweepHistory removes the service deployments that ended longer than the
// history period ago, and the service revisions nothing refers to any
// more; all of a service's once its record is gone. Each removal re-reads
// the service in its transaction.
func (s *Loops) sweepHistory(ctx context.Context, c state.Scope) error {
	expired := func(sd *state.ServiceDeploymentRecord) bool {
		end := sd.FinishedAt
		if end == nil {
			end = sd.StoppedAt
		}
		return end != nil && c.Now.Sub(end.Time) > s.history
	}
	// referred holds the revisions that kept service deployments name.
	referred := map[string]bool{}
	err := s.sweepServiceHistory(ctx, c, c.Keys().ServiceDeployments("", ""), func(svc *state.ServiceRecord, raw store.KV) (bool, error) {
		var sd state.ServiceDeploymentRecord
		if err := raw.Decode(&sd); err != nil {
			return false, err
		}
		if svc == nil || expired(&sd) || !svc.Owns(sd.CreatedAt) {
			return true, nil
		}
		referred[sd.TargetServiceRevision.Arn] = true
		if sd.Rollback != nil {
			referred[sd.Rollback.ServiceRevisionArn] = true
		}
		return false, nil
	})
	if err != nil {
		return err
	}
	return s.sweepServiceHistory(ctx, c, c.Keys().ServiceRevisions(), func(svc *state.ServiceRecord, raw store.KV) (bool, error) {
		var rev state.ServiceRevisionRecord
		if err := raw.Decode(&rev); err != nil {
			return false, err
		}
		current := svc != nil && slices.Contains(slices.Collect(maps.Values(svc.Revisions)), rev.ServiceRevisionArn)
		return svc == nil || !svc.Owns(rev.CreatedAt) || !referred[rev.ServiceRevisionArn] && !current, nil
	})
}

// sweepServiceHistory removes the records under prefix/<cluster>/<service>/
// that drop, given the service (nil once it is gone), says to remove, each
// in a transaction that reads the service and the record again.
func (s *Loops) sweepServiceHistory(ctx context.Context, c state.Scope, prefix string, drop func(svc *state.ServiceRecord, kv store.KV) (bool, error)) error {
	return s.st.Sweep(ctx, prefix, func(tx *store.Tx, kv store.KV) (bool, error) {
		parts := strings.Split(strings.TrimPrefix(kv.Key, prefix), "/")
		if len(parts) != 3 {
			return false, nil
		}
		svc, err := state.Get[state.ServiceRecord](tx, c.Keys().Service(parts[0], parts[1]))
		if err != nil {
			return false, err
		}
		return drop(svc, kv)
	})
}
