package ecs

import (
	"context"
	"errors"

	"github.com/wharfhq/wharf/internal/api"
	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/ecs/state"
)

// Operations is the ECS operation table of s, with the state's errors
// given ECS's codes and messages on their way out.
func Operations(s *Service) map[string]api.Operation { return WithAWSErrors(ecsapi.Operations(s)) }

// WithAWSErrors wraps an operation table over the ECS state (the ECS API,
// the agents' protocol) so that the state's errors leave with ECS's codes
// and messages.
func WithAWSErrors(ops map[string]api.Operation) map[string]api.Operation {
	for name, op := range ops {
		invoke := op.Invoke
		op.Invoke = func(ctx context.Context, decode func(any) error) (any, error) {
			out, err := invoke(ctx, decode)
			return out, awsError(err)
		}
		ops[name] = op
	}
	return ops
}

// awsError is err as ECS answers it: a state error becomes ECS's code and
// message for it, with Wharf's words about it as the log's hint; any other
// error goes out as it is.
func awsError(err error) error {
	var e *state.Error
	if !errors.As(err, &e) {
		return err
	}
	var out *api.Error
	switch {
	case errors.Is(e, state.ErrNotFound) && e.Kind == state.KindTaskDefinition:
		out = clientError("Unable to describe task definition.")
	case errors.Is(e, state.ErrNotFound) && e.Kind == state.KindCluster:
		out = api.ClientError("ClusterNotFoundException", "Cluster not found.")
	case errors.Is(e, state.ErrNotFound) && e.Kind == state.KindService:
		out = api.ClientError("ServiceNotFoundException", "Service not found.")
	case errors.Is(e, state.ErrNotFound) && e.Kind == state.KindTask:
		out = invalidParameter("The referenced task was not found.")
	case errors.Is(e, state.ErrInvalid) && e.Kind != state.KindTaskDefinition:
		return invalidParameter("%s", e.Detail)
	default:
		// Wharf's own refusals (a task definition reference it cannot
		// read, an address pool that ran out): ECS has no text for them.
		return clientError("%s", e.Detail)
	}
	if e.Detail != "" {
		out = out.WithHint("%s", e.Detail)
	}
	return out
}
