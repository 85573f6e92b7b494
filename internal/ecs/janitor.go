package ecs

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/store"
)

// Run removes what ECS stops showing: stopped tasks and inactive clusters,
// services and container instances after the retention period, expired
// client tokens, and deleted task definitions nothing uses. It also retires
// deleted services once their last task has stopped. It returns when ctx
// ends. Several servers may run it at once: every removal re-checks its
// condition in a transaction.
func (s *Service) Run(ctx context.Context, every time.Duration) {
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

func (s *Service) sweep(ctx context.Context) error {
	regions, err := s.st.Regions(ctx)
	if err != nil {
		return err
	}
	for _, region := range regions {
		c := call{Region: region, Now: s.now().UTC()}
		expired := func(at time.Time) bool { return c.Now.Sub(at) > s.retention }
		steps := []struct {
			prefix string
			drop   func(tx *store.Tx, kv store.KV) (bool, error)
		}{
			{c.Keys().Tasks(""), func(tx *store.Tx, kv store.KV) (bool, error) {
				var t taskRecord
				err := kv.Decode(&t)
				return err == nil && t.LastStatus == "STOPPED" && t.StoppedAt != nil && expired(t.StoppedAt.Time), err
			}},
			{c.Keys().Services(""), func(tx *store.Tx, kv store.KV) (bool, error) {
				var svc serviceRecord
				if err := kv.Decode(&svc); err != nil {
					return false, err
				}
				if svc.Status == "DRAINING" {
					cluster, _, _ := strings.Cut(strings.TrimPrefix(kv.Key, c.Keys().Services("")), "/")
					live, err := s.serviceHasTasks(tx, c, cluster, svc.ServiceName)
					if err != nil || live {
						return false, err
					}
					s.retire(c, &svc)
					return false, tx.Put(kv.Key, &svc)
				}
				return svc.Status == "INACTIVE" && svc.InactiveAt != nil && expired(*svc.InactiveAt), nil
			}},
			{c.Keys().Instances(""), func(tx *store.Tx, kv store.KV) (bool, error) {
				var r instanceRecord
				err := kv.Decode(&r)
				return err == nil && r.Status == "INACTIVE" && r.InactiveAt != nil && expired(*r.InactiveAt), err
			}},
			{c.Keys().Clusters(), func(tx *store.Tx, kv store.KV) (bool, error) {
				var r clusterRecord
				err := kv.Decode(&r)
				return err == nil && r.Status == "INACTIVE" && r.InactiveAt != nil && expired(*r.InactiveAt), err
			}},
			{c.Keys().Idempotencies(), func(tx *store.Tx, kv store.KV) (bool, error) {
				var r idempotencyRecord
				err := kv.Decode(&r)
				return err == nil && c.Now.After(r.Expires), err
			}},
			{c.Keys().TaskDefs(""), func(tx *store.Tx, kv store.KV) (bool, error) {
				var td taskDefRecord
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
			kvs, err := s.st.List(ctx, step.prefix)
			if err != nil {
				return err
			}
			for _, kv := range kvs {
				err := s.st.Update(ctx, func(tx *store.Tx) error {
					var raw json.RawMessage
					if ok, err := tx.Get(kv.Key, &raw); err != nil || !ok {
						return err
					}
					drop, err := step.drop(tx, store.KV{Key: kv.Key, Value: raw})
					if drop {
						tx.Delete(kv.Key)
					}
					return err
				})
				if err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// taskDefInUse reports whether a live task or a service deployment uses a
// task definition.
func (s *Service) taskDefInUse(tx *store.Tx, c call, arn string) (bool, error) {
	tasks, err := tx.List(c.Keys().Tasks(""))
	if err != nil {
		return false, err
	}
	for _, kv := range tasks {
		var t taskRecord
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
		var svc serviceRecord
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
