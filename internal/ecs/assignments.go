package ecs

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"
)

// assignments tells blocked polls when the tasks of their instance
// change. One watch of the store feeds every poll of the server; each
// changed task is decoded once.
type assignments struct {
	mu      sync.Mutex
	start   int64            // the revision the watch started after; 0 while not watching
	last    map[string]int64 // instance ARN → revision of its latest task change
	waiters map[string][]chan struct{}
}

func newAssignments() *assignments {
	return &assignments{last: map[string]int64{}, waiters: map[string][]chan struct{}{}}
}

// wait returns once a task of instance changed after index, or after d.
func (a *assignments) wait(ctx context.Context, instance string, index int64, d time.Duration) {
	a.mu.Lock()
	if a.start == 0 {
		// Not watching (yet): let the poll answer after a pause, which
		// is late at worst, never wrong.
		a.mu.Unlock()
		sleep(ctx, min(d, time.Second))
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

// changed records a change of an instance's tasks at rev and wakes its
// polls.
func (a *assignments) changed(instance string, rev int64) {
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
func (a *assignments) restart(rev int64) {
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

// WatchAssignments follows task changes for the server's blocked polls
// until ctx ends.
func (s *Service) WatchAssignments(ctx context.Context) {
	for ctx.Err() == nil {
		rev, err := s.st.Revision(ctx)
		if err != nil {
			sleep(ctx, time.Second)
			continue
		}
		events, errc := s.st.Watch(ctx, "ecs/", rev+1)
		s.assign.restart(rev)
		for ev := range events {
			if !strings.Contains(ev.Key, "/tasks/") {
				continue
			}
			for _, v := range [][]byte{ev.Value, ev.Previous} {
				var t struct {
					ContainerInstanceArn string `json:"containerInstanceArn"`
				}
				if v != nil && json.Unmarshal(v, &t) == nil && t.ContainerInstanceArn != "" {
					s.assign.changed(t.ContainerInstanceArn, ev.Revision)
					break
				}
			}
		}
		select {
		case err := <-errc:
			if ctx.Err() == nil {
				s.log.Debug("assignment watch ended; restarting", "err", err)
			}
		default:
		}
	}
}
