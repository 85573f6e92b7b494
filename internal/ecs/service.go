// Package ecs implements the Amazon ECS operations (clusters, task
// definitions, container instances, tasks, services and their deployment
// history) over the ECS state of internal/ecs/state: each checks what the
// model does not, changes the state in one transaction and answers in ECS's
// shapes, with the state's errors given ECS's codes and messages at the
// edge (Operations).
package ecs

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"regexp"
	"time"

	"github.com/wharfhq/wharf/internal/api"
	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/awsproto"
	"github.com/wharfhq/wharf/internal/ecs/state"
	"github.com/wharfhq/wharf/internal/store"
)

// Config configures the ECS service.
type Config struct {
	Store *store.Store
	// Account is the 12-digit account id in ARNs.
	Account string
	// DefaultRegion serves calls that carry no signed region (in-process
	// callers).
	DefaultRegion string
	// TokenKey signs pagination tokens; servers sharing a store must share
	// it. Empty means one is kept in the store.
	TokenKey []byte
	// AgentGrace is how long an instance stays agentConnected after its
	// agent's last poll. Default 30 s.
	AgentGrace time.Duration
	// AwsvpcSubnet is the address range awsvpc tasks get their addresses
	// from. Default 10.88.0.0/16.
	AwsvpcSubnet string
	Logger       *slog.Logger
	Now          func() time.Time
}

// Service implements the ECS API.
type Service struct {
	ecsapi.Unimplemented
	*state.State

	region string
	tokens *awsproto.Tokens
	log    *slog.Logger
	now    func() time.Time
	grace  time.Duration
}

var _ ecsapi.API = (*Service)(nil)

// New returns the ECS service over cfg.Store.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.DefaultRegion == "" {
		cfg.DefaultRegion = "us-east-1"
	}
	if !regexp.MustCompile(`^\d{12}$`).MatchString(cfg.Account) {
		return nil, fmt.Errorf("account id %q must be 12 digits", cfg.Account)
	}
	if cfg.AgentGrace == 0 {
		cfg.AgentGrace = 30 * time.Second
	}
	if cfg.AwsvpcSubnet == "" {
		cfg.AwsvpcSubnet = "10.88.0.0/16"
	}
	subnet, err := netip.ParsePrefix(cfg.AwsvpcSubnet)
	if err != nil || !subnet.Addr().Is4() || subnet.Bits() > 28 {
		return nil, fmt.Errorf("awsvpc subnet %q must be an IPv4 CIDR of /28 or larger", cfg.AwsvpcSubnet)
	}
	key := cfg.TokenKey
	if len(key) == 0 {
		if key, err = cfg.Store.SharedKey(ctx, "config/pagination-key"); err != nil {
			return nil, err
		}
	}
	return &Service{
		State:  &state.State{Store: cfg.Store, Account: cfg.Account, Subnet: subnet.Masked()},
		region: cfg.DefaultRegion,
		tokens: awsproto.NewTokens(key),
		log:    cfg.Logger,
		now:    cfg.Now,
		grace:  cfg.AgentGrace,
	}, nil
}

// call is the scope of an operation: the region its request was signed
// for, and now.
type call = state.Scope

func (s *Service) call(ctx context.Context) call {
	return call{Region: awsproto.RegionOf(ctx, s.region), Now: s.now().UTC()}
}

func (s *Service) principal() string { return "arn:aws:iam::" + s.Account + ":root" }

// Errors as ECS sends them. Where ECS has a message for a condition, the
// message is ECS's text exactly; what Wharf would add (which name, what to
// do next) goes in the error's hint, which the server logs
// (api.Error.WithHint).

func invalidParameter(format string, args ...any) *api.Error {
	return api.ClientError("InvalidParameterException", fmt.Sprintf(format, args...))
}

func clientError(format string, args ...any) *api.Error {
	return api.ClientError("ClientException", fmt.Sprintf(format, args...))
}

func serviceNotFound(name string) error {
	return api.ClientError("ServiceNotFoundException", "Service not found.").
		WithHint("no service named %q exists in this cluster; list them with `aws ecs list-services`", name)
}

func serviceNotActive(name string) error {
	return api.ClientError("ServiceNotActiveException", "Service was not ACTIVE.").
		WithHint("service %q is being deleted or was deleted; create it again with `aws ecs create-service`", name)
}

func notFound(what string) error {
	return api.ClientError("ResourceNotFoundException", what)
}

// failureOf renders a per-item failure of a batch operation.
func failureOf(arn, reason, detail string) ecsapi.Failure {
	return ecsapi.Failure{Arn: arn, Reason: reason, Detail: detail}
}

func ptr[T any](v T) *T { return &v }

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func clientCode(code, msg string) *api.Error { return api.ClientError(code, msg) }

// reader reads the store outside a transaction.
func (s *Service) reader(ctx context.Context) state.StoreReader {
	return state.StoreReader{Ctx: ctx, Store: s.Store}
}
