package ecs

import (
	"strings"

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

// split cuts a "cluster/name" resource path in two.
func split(path string) (cluster, name string) {
	cluster, name, _ = strings.Cut(path, "/")
	return cluster, name
}
