package ecs

import (
	"strings"

	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/ecs/state"
)

// The stored records are internal/ecs/state's.
type (
	clusterRecord     = state.ClusterRecord
	taskDefRecord     = state.TaskDefRecord
	familyRecord      = state.FamilyRecord
	instanceRecord    = state.InstanceRecord
	taskRecord        = state.TaskRecord
	serviceRecord     = state.ServiceRecord
	idempotencyRecord = state.IdempotencyRecord
)

// each converts every element of a list, between stored and wire shapes.
func each[T, U any](in []T, f func(*T) U) []U {
	if in == nil {
		return nil
	}
	out := make([]U, len(in))
	for i := range in {
		out[i] = f(&in[i])
	}
	return out
}

// one converts what p points to, between stored and wire shapes; nil
// stays nil.
func one[T, U any](p *T, f func(*T) U) *U {
	if p == nil {
		return nil
	}
	v := f(p)
	return &v
}

// wireTD is a task definition revision in its wire shape, which the
// validation and placement helpers take.
func wireTD(td *taskDefRecord) *ecsapi.TaskDefinition {
	w := td.TaskDefinition.Wire()
	return &w
}

// split cuts a "cluster/name" resource path in two.
func split(path string) (cluster, name string) {
	cluster, name, _ = strings.Cut(path, "/")
	return cluster, name
}
