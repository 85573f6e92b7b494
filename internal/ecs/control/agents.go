package control

import (
	"context"
	"strings"

	"github.com/wharfhq/wharf/internal/ecs/state"
	"github.com/wharfhq/wharf/internal/store"
)

// MonitorAgents keeps instances' agentConnected in step with their agents'
// heartbeats until ctx ends: an instance is connected while its heartbeat
// key lives. Several servers may run it at once.
func (s *Loops) MonitorAgents(ctx context.Context) {
	for ev := range s.st.Follow(ctx, state.HeartbeatPrefix) {
		if ev.Restart {
			if err := s.syncAgents(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("agent monitor: resync failed", "err", err)
			}
			continue
		}
		parts := strings.Split(strings.TrimPrefix(ev.Key, state.HeartbeatPrefix), "/")
		if len(parts) != 3 || (ev.Value != nil && ev.Previous != nil) {
			continue
		}
		if err := s.syncAgent(ctx, state.Scope{Region: parts[0], Now: s.now().UTC()}, parts[1], parts[2]); err != nil && ctx.Err() == nil {
			s.log.Warn("agent monitor: update failed", "cluster", parts[1], "instance_id", parts[2], "err", err)
		}
	}
}

// syncAgents brings every instance's agentConnected in step.
func (s *Loops) syncAgents(ctx context.Context) error {
	regions, err := s.st.Regions(ctx)
	if err != nil {
		return err
	}
	for _, region := range regions {
		c := state.Scope{Region: region, Now: s.now().UTC()}
		kvs, err := s.st.List(ctx, c.Keys().Instances(""))
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			parts := strings.Split(strings.TrimPrefix(kv.Key, c.Keys().Instances("")), "/")
			if len(parts) == 2 {
				if err := s.syncAgent(ctx, c, parts[0], parts[1]); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (s *Loops) syncAgent(ctx context.Context, c state.Scope, cluster, id string) error {
	defer s.Serialize(c, cluster)()
	return s.st.Update(ctx, func(tx *store.Tx) error {
		r, err := state.Get[state.InstanceRecord](tx, c.Keys().Instance(cluster, id))
		if err != nil || r == nil || r.Status == "INACTIVE" {
			return err
		}
		var hb state.HeartbeatRecord
		alive, err := tx.Get(c.Keys().Heartbeat(cluster, id), &hb)
		if err != nil || alive == r.AgentConnected {
			return err
		}
		r.AgentConnected = alive
		r.DisconnectedAt = nil
		if !alive {
			r.DisconnectedAt = &c.Now
		}
		r.Version++
		s.log.Info("agent connection changed", "cluster", cluster, "instance_id", id, "agent_connected", alive)
		return tx.Put(c.Keys().Instance(cluster, id), r)
	})
}
