// Package state owns the ECS state Wharf keeps in etcd: its key layout, the
// stored records (their shapes generated from a pinned copy of the ECS
// model, so that a newer model or a change of the wire types does not
// change what is on disk, and versioned), and the changes every writer makes
// to them inside its transaction: creating, moving along and stopping tasks,
// reserving and releasing instances' resources and awsvpc addresses, and
// registering tasks in Cloud Map. Its errors are classes (ErrNotFound,
// ErrInvalid, ...) that the API's edge turns into AWS's codes.
package state

//go:generate go run ../../../tools/apigen -records -schema schema/ecs.json -package state -wire github.com/wharfhq/wharf/internal/api/ecs -out .

// The stored shapes are those of schema/ecs.json, which changes only on
// purpose. To store members a newer ECS model added, pin that model again
// from the installed botocore and regenerate:
//
//	go run ./tools/apigen -pin internal/ecs/state/schema/ecs.json -service ecs \
//		-roots Cluster,TaskDefinition,ContainerInstance,Task,Service,ServiceDeployment,ServiceRevision,Deployment,Tag
//	make generate
//
// A member that is added this way is absent from older records and reads as
// its zero value, so it needs no new layout version.

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/scheduler"
)

// CurrentVersion is the newest record layout this build reads and the one
// it writes. A record without wharfVersion is in layout 1, the layout of
// every release so far; writers of layout 1 leave RecordVersion zero, so
// that records stay byte for byte what those releases wrote.
//
// A change that makes stored bytes mean something else (a member renamed,
// retyped, moved or dropped) bumps CurrentVersion, makes writers set it, and
// adds to Decode a decoder from each older layout.
const CurrentVersion = 1

// Record is a stored record of one of the kinds below.
type Record interface {
	recordVersion() int
}

// VersionError is the error for a record in a layout this build cannot
// read.
type VersionError struct {
	Version int
}

func (e *VersionError) Error() string {
	if e.Version < 1 {
		return fmt.Sprintf("record layout version %d is not valid", e.Version)
	}
	return fmt.Sprintf("record is in layout version %d, and this Wharf reads layouts up to %d: a newer Wharf wrote it; run that release (or a newer one) on every server", e.Version, CurrentVersion)
}

// Decode decodes a stored record of kind T, refusing one in a layout newer
// than CurrentVersion.
//
//	rec, err := state.Decode[state.TaskRecord](kv.Value)
func Decode[T any, P interface {
	*T
	Record
}](raw []byte) (*T, error) {
	v := new(T)
	if err := json.Unmarshal(raw, v); err != nil {
		// A newer layout may not even decode as this one; then its
		// version is the error to report.
		var probe struct {
			Version int `json:"wharfVersion"`
		}
		if json.Unmarshal(raw, &probe) == nil {
			if verr := checkVersion(probe.Version); verr != nil {
				return nil, verr
			}
		}
		return nil, err
	}
	if err := Check(P(v)); err != nil {
		return nil, err
	}
	return v, nil
}

// Check reports a *VersionError if r, decoded some other way than with
// Decode, is in a layout this build cannot read.
func Check(r Record) error { return checkVersion(r.recordVersion()) }

func checkVersion(v int) error {
	if v < 0 || v > CurrentVersion {
		return &VersionError{Version: v}
	}
	return nil
}

// ClusterRecord is a cluster.
type ClusterRecord struct {
	Cluster
	// InactiveAt is when the cluster was deleted (its status became
	// INACTIVE); the sweeper removes it after the retention period.
	InactiveAt *time.Time `json:"wharfInactiveAt,omitempty"`
	// RecordVersion is the record's layout; zero means 1.
	RecordVersion int `json:"wharfVersion,omitempty"`
}

// TaskDefRecord is one revision of a task definition.
type TaskDefRecord struct {
	TaskDefinition
	// Tags are the task definition's tags, which the wire shape does not
	// hold.
	Tags []Tag `json:"wharfTags,omitempty"`
	// RecordVersion is the record's layout; zero means 1.
	RecordVersion int `json:"wharfVersion,omitempty"`
}

// FamilyRecord counts a task definition family's revisions, so that a
// revision number is never given twice, even after its revision is
// deleted.
type FamilyRecord struct {
	LatestRevision int32 `json:"latestRevision"`
	// RecordVersion is the record's layout; zero means 1.
	RecordVersion int `json:"wharfVersion,omitempty"`
}

// InstanceRecord is a container instance; its remaining resources are what
// its tasks have not reserved.
type InstanceRecord struct {
	ContainerInstance
	// InactiveAt is when the instance was deregistered.
	InactiveAt *time.Time `json:"wharfInactiveAt,omitempty"`
	// DisconnectedAt is when the instance's agent stopped sending
	// heartbeats; nil while it is connected.
	DisconnectedAt *time.Time `json:"wharfDisconnectedAt,omitempty"`
	// RecordVersion is the record's layout; zero means 1.
	RecordVersion int `json:"wharfVersion,omitempty"`
}

// TaskRecord is a task.
type TaskRecord struct {
	Task
	// Reserved is what the task holds of its container instance's
	// resources until it stops.
	Reserved Reservation `json:"wharfReserved"`
	// Acknowledged is whether an agent has reported on the task; a task no
	// agent has seen yet can be stopped without one.
	Acknowledged bool `json:"wharfAcknowledged,omitempty"`
	// Service is the name of the service that started the task, if a
	// service did.
	Service string `json:"wharfService,omitempty"`
	// FailedHealth is whether the service scheduler stopped the task
	// because it failed its health checks.
	FailedHealth bool `json:"wharfFailedHealth,omitempty"`
	// RecordVersion is the record's layout; zero means 1.
	RecordVersion int `json:"wharfVersion,omitempty"`
}

// ServiceRecord is a service with its deployments.
type ServiceRecord struct {
	Service
	// InactiveAt is when the service was deleted.
	InactiveAt *time.Time `json:"wharfInactiveAt,omitempty"`
	// LastCompleted is the deployment a failed deployment rolls back to,
	// as it stood when it completed.
	LastCompleted *Deployment `json:"wharfLastCompleted,omitempty"`
	// CountFrom holds, for each deployment a rollback made PRIMARY again,
	// when that happened: failures before then no longer count against it.
	CountFrom map[string]time.Time `json:"wharfCountFrom,omitempty"`
	// Revisions maps each listed deployment (and the last completed one)
	// to the ARN of its service revision.
	Revisions map[string]string `json:"wharfRevisions,omitempty"`
	// CurrentServiceDeploymentKey is the store key of the service
	// deployment the service's currentServiceDeployment names.
	CurrentServiceDeploymentKey string `json:"wharfCurrentServiceDeploymentKey,omitempty"`
	// Steady and UnableToStart are the conditions already announced in
	// the service's events, so that each is announced once.
	Steady        bool `json:"wharfSteady,omitempty"`
	UnableToStart bool `json:"wharfUnableToStart,omitempty"`
	// MutualTLS lists the deployments whose Service Connect services
	// require client certificates (the service had the tag
	// wharf:service-connect:mtls when they started).
	MutualTLS []string `json:"wharfMutualTLS,omitempty"`
	// RecordVersion is the record's layout; zero means 1.
	RecordVersion int `json:"wharfVersion,omitempty"`
}

// IdempotencyRecord is the answer given to a request with a client token,
// replayed when the same request comes again before Expires.
type IdempotencyRecord struct {
	// InputHash is the hex SHA-256 of the request's JSON; a request with
	// the same token and another hash is refused.
	InputHash string `json:"inputHash"`
	// Output is the JSON of the answer.
	Output  []byte    `json:"output"`
	Expires time.Time `json:"expires"`
	// RecordVersion is the record's layout; zero means 1.
	RecordVersion int `json:"wharfVersion,omitempty"`
}

// ServiceDeploymentRecord is one entry of a service's deployment history.
type ServiceDeploymentRecord struct {
	ServiceDeployment
	// Target is the deployment (an ecs-svc id of the service's
	// deployments) whose tasks the target revision counts; Sources are
	// those the source revisions count.
	Target  string   `json:"wharfTarget"`
	Sources []string `json:"wharfSources,omitempty"`
	// RecordVersion is the record's layout; zero means 1.
	RecordVersion int `json:"wharfVersion,omitempty"`
}

// ServiceRevisionRecord is a configuration a service deployed.
type ServiceRevisionRecord struct {
	ServiceRevision
	// RecordVersion is the record's layout; zero means 1.
	RecordVersion int `json:"wharfVersion,omitempty"`
}

func (r *ClusterRecord) recordVersion() int           { return orOne(r.RecordVersion) }
func (r *TaskDefRecord) recordVersion() int           { return orOne(r.RecordVersion) }
func (r *FamilyRecord) recordVersion() int            { return orOne(r.RecordVersion) }
func (r *InstanceRecord) recordVersion() int          { return orOne(r.RecordVersion) }
func (r *TaskRecord) recordVersion() int              { return orOne(r.RecordVersion) }
func (r *ServiceRecord) recordVersion() int           { return orOne(r.RecordVersion) }
func (r *IdempotencyRecord) recordVersion() int       { return orOne(r.RecordVersion) }
func (r *ServiceDeploymentRecord) recordVersion() int { return orOne(r.RecordVersion) }
func (r *ServiceRevisionRecord) recordVersion() int   { return orOne(r.RecordVersion) }

// orOne is the layout of a record with version member v: an absent member
// is layout 1.
func orOne(v int) int {
	if v == 0 {
		return 1
	}
	return v
}

// Reservation is what a task holds on its container instance: a
// scheduler.Demand, stored under the names of the Demand's fields.
type Reservation struct {
	CPU      int64 `json:"CPU"`      // CPU units, 1024 per vCPU
	Memory   int64 `json:"Memory"`   // MiB
	Ports    []int `json:"Ports"`    // static TCP host ports
	PortsUDP []int `json:"PortsUDP"` // static UDP host ports
	ENI      int64 `json:"ENI"`      // network interfaces
}

// ReservationOf returns the reservation of demand d.
func ReservationOf(d scheduler.Demand) Reservation {
	return Reservation{CPU: d.CPU, Memory: d.Memory, Ports: slices.Clone(d.Ports), PortsUDP: slices.Clone(d.PortsUDP), ENI: d.ENI}
}

// Demand returns the reservation as the scheduler's demand.
func (r Reservation) Demand() scheduler.Demand {
	return scheduler.Demand{CPU: r.CPU, Memory: r.Memory, Ports: slices.Clone(r.Ports), PortsUDP: slices.Clone(r.PortsUDP), ENI: r.ENI}
}

// TagsFromWire returns the stored form of tags; nil stays nil.
func TagsFromWire(tags []ecsapi.Tag) []Tag { return convertSlice(tags, TagFromWire) }

// WireTags returns the wire form of stored tags; nil stays nil.
func WireTags(tags []Tag) []ecsapi.Tag { return convertSlice(tags, (*Tag).Wire) }
