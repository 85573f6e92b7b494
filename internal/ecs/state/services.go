package state

import (
	"slices"

	"github.com/wharfhq/wharf/internal/api"
)

// HasDeployment reports whether the service lists deployment id.
func (r *ServiceRecord) HasDeployment(id string) bool {
	return slices.ContainsFunc(r.Deployments, func(d Deployment) bool { return d.Id == id })
}

// SetMutualTLS records whether deployment id requires mutual TLS,
// forgetting deployments the service no longer lists.
func (r *ServiceRecord) SetMutualTLS(id string, on bool) {
	var keep []string
	for _, d := range r.Deployments {
		if d.Id != id && slices.Contains(r.MutualTLS, d.Id) {
			keep = append(keep, d.Id)
		}
	}
	if on {
		keep = append(keep, id)
	}
	r.MutualTLS = keep
}

// PruneRevisions forgets the revisions of deployments the service no
// longer lists, except the one a rollback goes back to.
func (r *ServiceRecord) PruneRevisions() {
	for id := range r.Revisions {
		if !r.HasDeployment(id) && (r.LastCompleted == nil || r.LastCompleted.Id != id) {
			delete(r.Revisions, id)
		}
	}
}

// Owns reports whether history created at t belongs to this service and
// not to an earlier one of the same name, deleted since.
func (r *ServiceRecord) Owns(t *api.Time) bool {
	return r.CreatedAt == nil || t == nil || !t.Time.Before(r.CreatedAt.Time)
}

// Ended reports whether a service deployment has reached a final state.
func (r *ServiceDeploymentRecord) Ended() bool {
	switch r.Status {
	case "SUCCESSFUL", "STOPPED", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED":
		return true
	}
	return false
}
