package dns

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wharfhq/wharf/internal/cloudmap"
	"github.com/wharfhq/wharf/internal/store"
)

// maxBatch bounds how many watch events are applied before an index is
// published, so that a flood of changes still shows up progressively.
const maxBatch = 4096

// follow keeps the published index in step with the store until ctx ends:
// a full load, then a watch from the next revision; when the watch breaks
// (store.ErrCompacted included), a full load again.
func (s *Server) follow(ctx context.Context) {
	var wait time.Duration
	for ctx.Err() == nil {
		if wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return
			}
		}
		st, rev, err := s.load(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			wait = min(max(2*wait, 100*time.Millisecond), 5*time.Second)
			s.log.Warn("load Cloud Map records for DNS; retrying", "error", err, "retry_in", wait)
			continue
		}
		if s.afterLoad != nil {
			s.afterLoad(rev)
		}
		started := time.Now()
		err = s.watch(ctx, st, rev)
		if ctx.Err() != nil {
			return
		}
		// Back off only when watches keep breaking at once.
		if time.Since(started) > 10*time.Second {
			wait = 0
		} else {
			wait = min(max(2*wait, 50*time.Millisecond), 5*time.Second)
		}
		s.log.Warn("store watch broke; reloading DNS records", "error", err, "revision", rev, "retry_in", wait)
	}
}

// load reads every Cloud Map record, publishes the index built from them
// and returns the state and the revision it was read at.
func (s *Server) load(ctx context.Context) (*state, int64, error) {
	kvs, rev, err := s.cfg.Store.ListAt(ctx, cloudmap.Prefix)
	if err != nil {
		return nil, 0, err
	}
	st := newState(s.log, s.glue)
	for _, kv := range kvs {
		st.apply(kv.Key, kv.Value, rev)
	}
	ix := st.rebuild()
	if ix == nil {
		ix = &index{zones: map[string]*zone{}}
	}
	s.publish(ix)
	s.loads.Add(1)
	s.log.Debug("DNS records loaded", "revision", rev, "zones", len(ix.zones))
	return st, rev, nil
}

// watch applies the store's changes after rev to st and publishes each
// resulting index. It returns why the watch ended.
func (s *Server) watch(ctx context.Context, st *state, rev int64) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	s.watchCancel = cancel
	s.mu.Unlock()
	events, errc := s.cfg.Store.Watch(wctx, cloudmap.Prefix, rev+1)
	for {
		var ev store.Event
		var ok bool
		select {
		case ev, ok = <-events:
		case <-ctx.Done():
			return ctx.Err()
		}
		if !ok {
			select {
			case err := <-errc:
				return err
			default:
				return errors.New("watch closed")
			}
		}
		st.apply(ev.Key, ev.Value, ev.Revision)
		rev = ev.Revision
		// Take whatever else has arrived, then publish once.
	drain:
		for range maxBatch {
			select {
			case ev, ok = <-events:
				if !ok {
					break drain
				}
				st.apply(ev.Key, ev.Value, ev.Revision)
				rev = ev.Revision
			default:
				break drain
			}
		}
		if ix := st.rebuild(); ix != nil {
			s.publish(ix)
		}
		if !ok {
			select {
			case err := <-errc:
				return fmt.Errorf("after revision %d: %w", rev, err)
			default:
				return fmt.Errorf("after revision %d: watch closed", rev)
			}
		}
	}
}

func (s *Server) publish(ix *index) {
	s.idx.Store(ix)
	s.readyOnce.Do(func() { close(s.ready) })
}
