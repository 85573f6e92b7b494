package store

import (
	"context"
	"time"
)

// Back-off between watches that end: it starts at followMinDelay, doubles
// up to followMaxDelay, and starts over once a watch has lasted
// followHealthy.
const (
	followMinDelay = 100 * time.Millisecond
	followMaxDelay = 5 * time.Second
	followHealthy  = 10 * time.Second
)

// Follow streams the changes under prefix until ctx ends, watching again
// whenever a watch ends (the revision was compacted, etcd lost its leader,
// the connection broke), after a back-off that grows while watches keep
// failing. Each (re)start first sends an Event with Restart set and the
// revision the watch goes on from: changes before it may have been missed,
// so the receiver looks at the whole state again. Each end is logged with
// its reason. The channel closes when ctx ends.
func (s *Store) Follow(ctx context.Context, prefix string) <-chan Event {
	out := make(chan Event, 64)
	go func() {
		defer close(out)
		delay := followMinDelay
		wait := func() bool {
			select {
			case <-ctx.Done():
				return false
			case <-time.After(delay):
			}
			delay = min(2*delay, followMaxDelay)
			return true
		}
		send := func(ev Event) bool {
			select {
			case out <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for ctx.Err() == nil {
			rev, err := s.Revision(ctx)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("store: cannot read the revision to watch from; retrying", "prefix", prefix, "err", err, "retry_in", delay)
				}
				if !wait() {
					return
				}
				continue
			}
			if !send(Event{Restart: true, Revision: rev}) {
				return
			}
			began := time.Now()
			events, errc := s.watch(ctx, prefix, rev+1)
			for ev := range events {
				if !send(ev) {
					return
				}
			}
			if ctx.Err() != nil {
				return
			}
			if time.Since(began) >= followHealthy {
				delay = followMinDelay
			}
			var reason error
			select {
			case reason = <-errc:
			default:
			}
			s.log.Warn("store: watch ended; watching again", "prefix", prefix, "err", reason, "retry_in", delay)
			if !wait() {
				return
			}
		}
	}()
	return out
}
