package ecs

import (
	"fmt"
	"strconv"
	"time"

	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/scheduler"
)

// Stored records: the wire object as ECS describes it, plus bookkeeping the
// API does not show, under member names no wire shape uses.

type clusterRecord struct {
	ecsapi.Cluster
	InactiveAt *time.Time `json:"wharfInactiveAt,omitempty"`
}

type taskDefRecord struct {
	ecsapi.TaskDefinition
	Tags []ecsapi.Tag `json:"wharfTags,omitempty"`
}

// familyRecord numbers a family's revisions; revisions are never reused.
type familyRecord struct {
	LatestRevision int32 `json:"latestRevision"`
}

type instanceRecord struct {
	ecsapi.ContainerInstance
	InactiveAt *time.Time `json:"wharfInactiveAt,omitempty"`
	// DisconnectedAt is when the agent's heartbeats stopped.
	DisconnectedAt *time.Time `json:"wharfDisconnectedAt,omitempty"`
}

type taskRecord struct {
	ecsapi.Task
	// Reserved is what the task holds on its container instance until it
	// stops.
	Reserved scheduler.Demand `json:"wharfReserved"`
	// Acknowledged is set once an agent has reported on the task; until
	// then a stop needs no agent.
	Acknowledged bool `json:"wharfAcknowledged,omitempty"`
	// Service names the service that started the task, if any.
	Service string `json:"wharfService,omitempty"`
	// FailedHealth is set when the service scheduler stopped the task for
	// failing its health checks.
	FailedHealth bool `json:"wharfFailedHealth,omitempty"`
}

type serviceRecord struct {
	ecsapi.Service
	InactiveAt *time.Time `json:"wharfInactiveAt,omitempty"`
	// LastCompleted is the deployment a failed one rolls back to, as it
	// was when it completed.
	LastCompleted *ecsapi.Deployment `json:"wharfLastCompleted,omitempty"`
	// CountFrom holds, for deployments a rollback made PRIMARY again, when
	// that happened: their earlier failures no longer count.
	CountFrom map[string]time.Time `json:"wharfCountFrom,omitempty"`
	// Revisions maps the deployments listed (and the last completed one)
	// to their service revisions' ARNs.
	Revisions map[string]string `json:"wharfRevisions,omitempty"`
	// CurrentServiceDeploymentKey is where the service deployment the
	// service's currentServiceDeployment names is stored.
	CurrentServiceDeploymentKey string `json:"wharfCurrentServiceDeploymentKey,omitempty"`
	// Steady and UnableToStart remember conditions already announced in
	// the service's events.
	Steady        bool `json:"wharfSteady,omitempty"`
	UnableToStart bool `json:"wharfUnableToStart,omitempty"`
	// MutualTLS lists the deployments whose Service Connect services
	// require callers' certificates (the tag wharf:service-connect:mtls
	// when the deployment started).
	MutualTLS []string `json:"wharfMutualTLS,omitempty"`
}

// setMutualTLS records whether deployment id requires mutual TLS,
// forgetting deployments the service no longer has.
func (r *serviceRecord) setMutualTLS(id string, on bool) {
	var keep []string
	for _, d := range r.Deployments {
		if d.Id != id && contains(r.MutualTLS, d.Id) {
			keep = append(keep, d.Id)
		}
	}
	if on {
		keep = append(keep, id)
	}
	r.MutualTLS = keep
}

// idempotencyRecord remembers the answer to a request with a client token.
type idempotencyRecord struct {
	InputHash string    `json:"inputHash"`
	Output    []byte    `json:"output"`
	Expires   time.Time `json:"expires"`
}

func padRevision(rev string) string {
	n, err := strconv.Atoi(rev)
	if err != nil {
		return rev
	}
	return fmt.Sprintf("%010d", n)
}

// resource returns the named resource of a list, or nil.
func resource(rs []ecsapi.Resource, name string) *ecsapi.Resource {
	for i := range rs {
		if rs[i].Name == name {
			return &rs[i]
		}
	}
	return nil
}
