// Package control runs the background work over the ECS state: the service
// scheduler (one elected server at a time, applying controller.Reconcile's
// plans in fenced transactions), the agent monitor (instances'
// agentConnected from their agents' heartbeats) and the sweeper (what ECS
// stops showing, and the deployment history past its period).
package control

import (
	"context"
	"log/slog"
	"time"

	"github.com/wharfhq/wharf/internal/ecs/state"
	"github.com/wharfhq/wharf/internal/store"
)

// Config configures the background work.
type Config struct {
	State *state.State
	// Retention is how long stopped tasks and inactive clusters, services
	// and container instances stay describable. Default one hour.
	Retention time.Duration
	// History is how long service deployments and revisions stay after a
	// service deployment ends. Default 90 days.
	History time.Duration
	Logger  *slog.Logger
	Now     func() time.Time
}

// Loops is the background work of one server.
type Loops struct {
	*state.State
	st        *store.Store
	retention time.Duration
	history   time.Duration
	log       *slog.Logger
	now       func() time.Time
}

// New returns the background work over cfg.State.
func New(cfg Config) *Loops {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Retention == 0 {
		cfg.Retention = time.Hour
	}
	if cfg.History == 0 {
		cfg.History = 90 * 24 * time.Hour
	}
	return &Loops{State: cfg.State, st: cfg.State.Store, retention: cfg.Retention, history: cfg.History, log: cfg.Logger, now: cfg.Now}
}

func (s *Loops) reader(ctx context.Context) state.StoreReader {
	return state.StoreReader{Ctx: ctx, Store: s.st}
}

func ptrValue[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
