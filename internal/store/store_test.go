package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func openTest(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestUpdateNeverLosesIncrements(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	ctx := context.Background()
	const writers, each = 20, 10
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				err := s.Update(ctx, func(tx *Tx) error {
					var n int
					if _, err := tx.Get("counter", &n); err != nil {
						return err
					}
					return tx.Put("counter", n+1)
				})
				if err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	var n int
	if _, err := s.Get(ctx, "counter", &n); err != nil {
		t.Fatal(err)
	}
	if n != writers*each {
		t.Fatalf("counter = %d, want %d", n, writers*each)
	}
}

func TestRangeReadConflicts(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	ctx := context.Background()
	// A transaction that saw an empty range must not commit after another
	// writer created a key in it.
	runs := 0
	err := s.Update(ctx, func(tx *Tx) error {
		runs++
		kvs, err := tx.List("things/")
		if err != nil {
			return err
		}
		if runs == 1 {
			if err := s.Update(ctx, func(tx2 *Tx) error { return tx2.Put("things/a", 1) }); err != nil {
				return err
			}
		}
		if len(kvs) > 0 {
			return errors.New("not empty")
		}
		return tx.Put("marker", true)
	})
	if err == nil || err.Error() != "not empty" {
		t.Fatalf("Update = %v after %d runs, want the second run to see the new key", err, runs)
	}
}

func TestTxReadsOwnWrites(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	err := s.Update(context.Background(), func(tx *Tx) error {
		if err := tx.Put("p/x", "v"); err != nil {
			return err
		}
		var v string
		if ok, err := tx.Get("p/x", &v); !ok || err != nil || v != "v" {
			t.Errorf("Get own write = %q %v %v", v, ok, err)
		}
		kvs, err := tx.List("p/")
		if err != nil || len(kvs) != 1 {
			t.Errorf("List own write = %v %v", kvs, err)
		}
		tx.Delete("p/x")
		if ok, _ := tx.Get("p/x", &v); ok {
			t.Error("deleted key still visible")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestEmbeddedRestartKeepsState(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	ctx := context.Background()
	if err := s.Update(ctx, func(tx *Tx) error { return tx.Put("k", "before") }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, dir)
	defer s.Close()
	var v string
	if ok, err := s.Get(ctx, "k", &v); !ok || err != nil || v != "before" {
		t.Fatalf("after restart Get = %q %v %v", v, ok, err)
	}
}

func TestListedKeyDeletedMeanwhileIsNotRecreated(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	ctx := context.Background()
	if err := s.Update(ctx, func(tx *Tx) error { return tx.Put("items/a", 1) }); err != nil {
		t.Fatal(err)
	}
	runs := 0
	err := s.Update(ctx, func(tx *Tx) error {
		runs++
		kvs, err := tx.List("items/")
		if err != nil {
			return err
		}
		if runs == 1 {
			if err := s.Update(ctx, func(tx2 *Tx) error { tx2.Delete("items/a"); return nil }); err != nil {
				return err
			}
		}
		for _, kv := range kvs {
			if err := tx.Put(kv.Key, 2); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var v int
	if ok, _ := s.Get(ctx, "items/a", &v); ok {
		t.Fatalf("a key deleted after it was listed was written back (runs %d)", runs)
	}
}

func TestElectionFencesWrites(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	ctx := context.Background()
	a, err := s.Campaign(ctx, "test", "a", 5)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx *Tx) error { tx.Fence(a); return tx.Put("k", 1) }); err != nil {
		t.Fatalf("leader write: %v", err)
	}
	// A second candidate waits until the first resigns.
	won := make(chan *Leadership, 1)
	go func() {
		b, err := s.Campaign(ctx, "test", "b", 5)
		if err != nil {
			t.Error(err)
		}
		won <- b
	}()
	select {
	case <-won:
		t.Fatal("two leaders at once")
	case <-time.After(300 * time.Millisecond):
	}
	a.Resign()
	var b *Leadership
	select {
	case b = <-won:
	case <-time.After(10 * time.Second):
		t.Fatal("the second candidate did not take over within 10s")
	}
	defer b.Resign()
	err = s.Update(ctx, func(tx *Tx) error { tx.Fence(a); return tx.Put("k", 2) })
	if !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a former leader's write: %v, want ErrNotLeader", err)
	}
	var v int
	s.Get(ctx, "k", &v)
	if v != 1 {
		t.Fatalf("k = %d after a fenced write was refused", v)
	}
}
