package store

import (
	"context"
	"fmt"

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
