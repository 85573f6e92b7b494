package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"
)

// Leadership is held by one process at a time per election. Writes made
// with it are fenced: they commit only while it lasts.
type Leadership struct {
	key     string // the leader's key, with the prefix
	rev     int64  // its create revision
	session *concurrency.Session
	// Done closes when leadership is lost (the session's lease expired) or
	// resigned.
	Done <-chan struct{}
}

// Campaign blocks until this process leads the named election, or ctx
// ends. Leadership lasts while the process keeps its etcd session alive,
// and ends ttlSeconds after it stops doing so.
func (s *Store) Campaign(ctx context.Context, name, id string, ttlSeconds int) (*Leadership, error) {
	session, err := concurrency.NewSession(s.cli, concurrency.WithTTL(ttlSeconds), concurrency.WithContext(context.Background()))
	if err != nil {
		return nil, fmt.Errorf("election %s: %w", name, err)
	}
	e := concurrency.NewElection(session, s.Key("elections/"+name))
	if err := e.Campaign(ctx, id); err != nil {
		session.Close()
		return nil, fmt.Errorf("election %s: %w", name, err)
	}
	return &Leadership{key: e.Key(), rev: e.Rev(), session: session, Done: session.Done()}, nil
}

// Resign gives leadership up.
func (l *Leadership) Resign() {
	l.session.Close()
}

// Fence makes the transaction commit only while l is the leadership: a
// former leader that lost its lease cannot write.
func (tx *Tx) Fence(l *Leadership) {
	tx.fences = append(tx.fences, l)
}

// WhileLeading runs run while this process leads the election name,
// campaigning again whenever leadership is lost, until ctx ends. run's
// context ends when leadership is lost; its writes are fenced with l.
// what names the job in logs ("the service scheduler").
func (s *Store) WhileLeading(ctx context.Context, name, what string, ttlSeconds int, run func(ctx context.Context, l *Leadership)) {
	host, _ := os.Hostname()
	id := fmt.Sprintf("%s/%d/%x", host, os.Getpid(), rand.Uint64())
	for ctx.Err() == nil {
		l, err := s.Campaign(ctx, name, id, ttlSeconds)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn(what+" election failed; retrying", "election", name, "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
			continue
		}
		s.log.Info("leading "+what, "election", name)
		lctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-l.Done:
			case <-lctx.Done():
			}
			cancel()
		}()
		run(lctx, l)
		cancel()
		l.Resign()
		if ctx.Err() == nil {
			s.log.Warn("lost "+what+" leadership; campaigning again", "election", name)
		}
	}
}
