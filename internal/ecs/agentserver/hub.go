package agentserver

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/wharfhq/wharf/internal/cloudmap"
	"github.com/wharfhq/wharf/internal/store"
)

// changes tells blocked polls when what they wait on (the tasks of an
// instance, the services of a region) changed. One watch of the store feeds
// every poll of the server; each change is decoded once.
type changes struct {
	mu      sync.Mutex
	start   int64            // the revision the watch started after; 0 while not watching
	last    map[string]int64 // key → revision of its latest change
	waiters map[string][]chan struct{}
}

func newChanges() *changes {
	return &changes{last: map[string]int64{}, waiters: map[string][]chan struct{}{}}
}

// wait returns once key changed after index, or after d.
func (a *changes) wait(ctx context.Context, instance string, index int64, d time.Duration) {
	a.mu.Lock()
	if a.start == 0 {
		// Not watching (yet): let the poll answer after a pause, which
		// is late at worst, never wrong.
		a.mu.Unlock()
		sleepFor(ctx, min(d, time.Second))
		return
	}
	if index < a.start || a.last[instance] > index {
		a.mu.Unlock()
		return
	}
	ch := make(chan struct{})
	a.waiters[instance] = append(a.waiters[instance], ch)
	a.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	case <-ctx.Done():
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	ws := a.waiters[instance]
	for i, w := range ws {
		if w == ch {
			a.waiters[instance] = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(a.waiters[instance]) == 0 {
		delete(a.waiters, instance)
	}
}

// changed records a change of key at rev and wakes its polls.
func (a *changes) changed(instance string, rev int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if rev > a.last[instance] {
		a.last[instance] = rev
	}
	for _, ch := range a.waiters[instance] {
		close(ch)
	}
	delete(a.waiters, instance)
}

// restart begins watching after rev: polls with an older index answer at
// once.
func (a *changes) restart(rev int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.start = rev
	for instance, ws := range a.waiters {
		for _, ch := range ws {
			close(ch)
		}
		delete(a.waiters, instance)
	}
}

// FollowChanges feeds the server's blocked polls until ctx ends: agents'
// polls wait on their instance's tasks, Service Connect views on their
// region's Cloud Map state.
func (s *Server) Run(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.follow(ctx, "sd/", s.discovery, func(ev store.Event) string {
			region, _, _, ok := cloudmap.ParseKey(ev.Key)
			if !ok {
				return ""
			}
			return region
		})
	}()
	s.follow(ctx, "ecs/", s.assign, func(ev store.Event) string {
		if !strings.Contains(ev.Key, "/tasks/") {
			return ""
		}
		for _, v := range [][]byte{ev.Value, ev.Previous} {
			var t struct {
				ContainerInstanceArn string `json:"containerInstanceArn"`
			}
			if v != nil && json.Unmarshal(v, &t) == nil && t.ContainerInstanceArn != "" {
				return t.ContainerInstanceArn
			}
		}
		return ""
	})
	<-done
}

// follow watches prefix and tells hub which key each change touches.
func (s *Server) follow(ctx context.Context, prefix string, hub *changes, keyOf func(store.Event) string) {
	for ev := range s.st.Follow(ctx, prefix) {
		if ev.Restart {
			hub.restart(ev.Revision)
		} else if key := keyOf(ev); key != "" {
			hub.changed(key, ev.Revision)
		}
	}
}
