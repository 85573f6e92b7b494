package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestFollowRestartsThenStreams(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	events := s.Follow(ctx, "f/")
	first := <-events
	if !first.Restart || first.Revision == 0 {
		t.Fatalf("first event %+v, want a restart at the current revision", first)
	}
	if err := s.Update(ctx, func(tx *Tx) error { return tx.Put("f/a", 1) }); err != nil {
		t.Fatal(err)
	}
	ev := <-events
	if ev.Restart || ev.Key != "f/a" || ev.Revision <= first.Revision {
		t.Fatalf("event %+v, want the put of f/a after revision %d", ev, first.Revision)
	}
	cancel()
	for range events {
	}
}

// TestFollowBacksOff: watches that end at once are started again after a
// growing delay, not in a busy loop, each start announced by a restart.
func TestFollowBacksOff(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	starts := 0
	s.watch = func(ctx context.Context, prefix string, from int64) (<-chan Event, <-chan error) {
		starts++
		events, errc := make(chan Event), make(chan error, 1)
		errc <- errors.New("connection lost")
		close(events)
		return events, errc
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1600*time.Millisecond)
	defer cancel()
	restarts := 0
	for ev := range s.Follow(ctx, "f/") {
		if !ev.Restart {
			t.Fatalf("event %+v from a watch that sends none", ev)
		}
		restarts++
	}
	// 100, 200, 400 and 800 ms apart: five starts in 1.6 s.
	if restarts < 3 || restarts > 6 || starts != restarts {
		t.Fatalf("%d restarts and %d watches in 1.6 s, want about 5 of each", restarts, starts)
	}
}
