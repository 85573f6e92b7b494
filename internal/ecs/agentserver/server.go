// Package agentserver answers Wharf's node agents (the WharfAgentV1
// protocol of internal/api/agentapi): the blocking poll that assigns tasks
// and is the agent's heartbeat, container health reports, the Service
// Connect view of namespaces, task certificates and proxy metrics. It reads
// and changes the ECS state through internal/ecs/state.
package agentserver

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wharfhq/wharf/internal/api"
	"github.com/wharfhq/wharf/internal/api/agentapi"
	"github.com/wharfhq/wharf/internal/awsproto"
	"github.com/wharfhq/wharf/internal/ecs/state"
	"github.com/wharfhq/wharf/internal/pki"
	"github.com/wharfhq/wharf/internal/store"
)

// ProxyMetricsSink takes the proxies' metrics of a container instance.
type ProxyMetricsSink interface {
	Report(source string, proxies []agentapi.ProxyMetrics) error
}

// Config configures the server.
type Config struct {
	State *state.State
	// DefaultRegion serves calls that carry no signed region.
	DefaultRegion string
	// AgentGrace is how long an instance stays agentConnected after its
	// agent's last poll. Default 30 s.
	AgentGrace time.Duration
	// CertificateLifetime is how long Service Connect certificates are
	// valid; agents renew them five sevenths in. Default 7 days.
	CertificateLifetime time.Duration
	// SpotInterruptionNotice is how long an interrupted Fargate Spot
	// task has between SIGTERM and its stop. Default 2 minutes, as Fargate.
	SpotInterruptionNotice time.Duration
	// ProxyMetrics receives the proxies' metrics agents report; nil drops
	// them.
	ProxyMetrics ProxyMetricsSink
	Logger       *slog.Logger
	Now          func() time.Time
}

// Server implements agentapi.API.
type Server struct {
	*state.State
	st           *store.Store
	region       string
	grace        time.Duration
	certLifetime time.Duration
	spotNotice   time.Duration
	proxyMetrics ProxyMetricsSink
	log          *slog.Logger
	now          func() time.Time

	assign    *changes     // an instance's tasks, for agents' polls
	discovery *changes     // a region's Cloud Map state, for Service Connect views
	dnsAddr   atomic.Value // string: where agents' resolvers forward to

	caMu sync.Mutex
	ca   *pki.CA // once loaded
}

var _ agentapi.API = (*Server)(nil)

// New returns the server of cfg.State.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.DefaultRegion == "" {
		cfg.DefaultRegion = "us-east-1"
	}
	if cfg.AgentGrace == 0 {
		cfg.AgentGrace = 30 * time.Second
	}
	if cfg.CertificateLifetime == 0 {
		cfg.CertificateLifetime = 7 * 24 * time.Hour
	}
	if cfg.SpotInterruptionNotice == 0 {
		cfg.SpotInterruptionNotice = 2 * time.Minute
	}
	return &Server{
		State: cfg.State, st: cfg.State.Store, region: cfg.DefaultRegion, grace: cfg.AgentGrace,
		certLifetime: cfg.CertificateLifetime, spotNotice: cfg.SpotInterruptionNotice, proxyMetrics: cfg.ProxyMetrics, log: cfg.Logger, now: cfg.Now,
		assign: newChanges(), discovery: newChanges(),
	}
}

// SetDNS tells agents where Wharf's DNS server answers.
func (s *Server) SetDNS(addr string) { s.dnsAddr.Store(addr) }

func (s *Server) call(ctx context.Context) state.Scope {
	return state.Scope{Region: awsproto.RegionOf(ctx, s.region), Now: s.now().UTC()}
}

func (s *Server) reader(ctx context.Context) state.StoreReader {
	return state.StoreReader{Ctx: ctx, Store: s.st}
}

// invalidParameter is the error for a request an agent should not have
// sent; its message says what was wrong.
func invalidParameter(format string, args ...any) *api.Error {
	return api.ClientError("InvalidParameterException", fmt.Sprintf(format, args...))
}

func ptr[T any](v T) *T { return &v }

func sleepFor(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
