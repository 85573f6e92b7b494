package state

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/wharfhq/wharf/internal/api"
	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/controller"
	"github.com/wharfhq/wharf/internal/store"
)

// newServiceDeploymentID returns an id of ECS's form: 21 characters of the
// URL-safe base64 alphabet.
func newServiceDeploymentID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	b := make([]byte, 21)
	for i := range b {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		b[i] = alphabet[n.Int64()]
	}
	return string(b)
}

// newServiceRevisionID returns an id of ECS's form: 19 digits.
func newServiceRevisionID() string {
	n, _ := rand.Int(rand.Reader, big.NewInt(8e18))
	return fmt.Sprintf("%019d", n.Int64()+1e18)
}

// StartServiceDeployment records deployment d, just added at the head of
// svc's deployments: a service revision of the configuration it deploys,
// and a service deployment from the revisions that run now to it. A
// service deployment still going on stops. tasks are the cluster's tasks,
// for the counts of the stopped one.
func (s *State) StartServiceDeployment(tx *store.Tx, c Scope, svc *ServiceRecord, cluster string, td *ecsapi.TaskDefinition, tasks []*TaskRecord) error {
	d := &svc.Deployments[0]
	revID := newServiceRevisionID()
	rev := ServiceRevisionRecord{ServiceRevision: ServiceRevision{
		ServiceRevisionArn:          s.ARN(c, "service-revision/"+cluster+"/"+svc.ServiceName+"/"+revID),
		ServiceArn:                  svc.ServiceArn,
		ClusterArn:                  svc.ClusterArn,
		TaskDefinition:              d.TaskDefinition,
		CapacityProviderStrategy:    d.CapacityProviderStrategy,
		LaunchType:                  d.LaunchType,
		PlatformVersion:             d.PlatformVersion,
		PlatformFamily:              d.PlatformFamily,
		LoadBalancers:               orEmpty(svc.LoadBalancers),
		ServiceRegistries:           orEmpty(svc.ServiceRegistries),
		NetworkConfiguration:        d.NetworkConfiguration,
		ServiceConnectConfiguration: d.ServiceConnectConfiguration,
		VolumeConfigurations:        d.VolumeConfigurations,
		ContainerImages:             containerImages(td),
		CreatedAt:                   d.CreatedAt,
	}}
	if err := tx.Put(c.Keys().ServiceRevision(cluster, svc.ServiceName, revID), &rev); err != nil {
		return err
	}
	if svc.Revisions == nil {
		svc.Revisions = map[string]string{}
	}
	svc.Revisions[d.Id] = rev.ServiceRevisionArn
	svc.PruneRevisions()

	if err := s.UpdateServiceDeployment(tx, c, svc, cluster, func(sd *ServiceDeploymentRecord) {
		sd.Status, sd.StoppedAt = ecsapi.ServiceDeploymentStatusStopped, c.Time()
		sd.StatusReason = "ECS deployment " + d.Id + " started before this service deployment finished."
		Freeze(sd, svc, tasks)
	}); err != nil {
		return err
	}

	id := newServiceDeploymentID()
	sd := ServiceDeploymentRecord{ServiceDeployment: ServiceDeployment{
		ServiceDeploymentArn:    s.ARN(c, "service-deployment/"+cluster+"/"+svc.ServiceName+"/"+id),
		ServiceArn:              svc.ServiceArn,
		ClusterArn:              svc.ClusterArn,
		CreatedAt:               d.CreatedAt,
		StartedAt:               d.CreatedAt,
		UpdatedAt:               d.CreatedAt,
		Status:                  ecsapi.ServiceDeploymentStatusInProgress,
		StatusReason:            d.RolloutStateReason,
		DeploymentConfiguration: svc.DeploymentConfiguration,
		TargetServiceRevision:   &ServiceRevisionSummary{Arn: rev.ServiceRevisionArn},
		SourceServiceRevisions:  []ServiceRevisionSummary{},
		DeploymentCircuitBreaker: &ServiceDeploymentCircuitBreaker{
			Status: ecsapi.ServiceDeploymentRollbackMonitorsStatusDisabled,
		},
		Alarms: &ServiceDeploymentAlarms{Status: ecsapi.ServiceDeploymentRollbackMonitorsStatusDisabled},
	}, Target: d.Id}
	if cb := svc.DeploymentConfiguration.DeploymentCircuitBreaker; cb != nil && cb.Enable {
		sd.DeploymentCircuitBreaker.Status = ecsapi.ServiceDeploymentRollbackMonitorsStatusMonitoring
	}
	for _, old := range svc.Deployments[1:] {
		if arn := svc.Revisions[old.Id]; arn != "" && !slices.Contains(sd.Sources, old.Id) {
			sd.Sources = append(sd.Sources, old.Id)
		}
	}
	key := c.Keys().ServiceDeployment(cluster, svc.ServiceName, c.Now, id)
	if err := tx.Put(key, &sd); err != nil {
		return err
	}
	svc.CurrentServiceDeployment, svc.CurrentServiceDeploymentKey = sd.ServiceDeploymentArn, key
	return nil
}

func containerImages(td *ecsapi.TaskDefinition) []ContainerImage {
	out := []ContainerImage{}
	for _, cd := range td.ContainerDefinitions {
		out = append(out, ContainerImage{ContainerName: cd.Name, Image: cd.Image})
	}
	return out
}

// UpdateServiceDeployment changes the service's current service
// deployment, if it is still going on.
func (s *State) UpdateServiceDeployment(tx *store.Tx, c Scope, svc *ServiceRecord, cluster string, change func(*ServiceDeploymentRecord)) error {
	if svc.CurrentServiceDeploymentKey == "" {
		return nil
	}
	sd, err := Get[ServiceDeploymentRecord](tx, svc.CurrentServiceDeploymentKey)
	if err != nil || sd == nil || sd.Ended() {
		return err
	}
	change(sd)
	sd.UpdatedAt = c.Time()
	return tx.Put(svc.CurrentServiceDeploymentKey, sd)
}

// Freeze records the revisions' task counts as they are when the service
// deployment ends.
func Freeze(r *ServiceDeploymentRecord, svc *ServiceRecord, tasks []*TaskRecord) {
	Fill(r, svc, DeploymentCounts(tasks, svc.ServiceName))
}

// Fill sets the revisions' counts, and the circuit breaker's, from the
// deployments' task counts.
func Fill(r *ServiceDeploymentRecord, svc *ServiceRecord, counts map[string]TaskCount) {
	summary := func(id string) ServiceRevisionSummary {
		n := counts[id]
		out := ServiceRevisionSummary{Arn: svc.Revisions[id], RunningTaskCount: n.Running, PendingTaskCount: n.Pending}
		if len(svc.Deployments) > 0 && svc.Deployments[0].Id == id {
			out.RequestedTaskCount = svc.DesiredCount
		}
		return out
	}
	if r.TargetServiceRevision != nil {
		arn := r.TargetServiceRevision.Arn
		*r.TargetServiceRevision = summary(r.Target)
		r.TargetServiceRevision.Arn = arn
	}
	r.SourceServiceRevisions = r.SourceServiceRevisions[:0]
	for _, id := range r.Sources {
		if svc.Revisions[id] != "" {
			r.SourceServiceRevisions = append(r.SourceServiceRevisions, summary(id))
		}
	}
	if r.DeploymentCircuitBreaker != nil && r.DeploymentCircuitBreaker.Status != ecsapi.ServiceDeploymentRollbackMonitorsStatusDisabled {
		r.DeploymentCircuitBreaker.FailureCount = counts[r.Target].Failed
		r.DeploymentCircuitBreaker.Threshold = int32(controller.FailureThreshold(int(svc.DesiredCount)))
	}
}

type TaskCount struct{ Running, Pending, Failed int32 }

// DeploymentCounts counts a service's tasks by the deployment that
// started them.
func DeploymentCounts(tasks []*TaskRecord, service string) map[string]TaskCount {
	out := map[string]TaskCount{}
	for _, t := range tasks {
		if t.Service != service {
			continue
		}
		n := out[t.StartedBy]
		if FailedTask(t) {
			n.Failed++
		}
		if t.DesiredStatus == "RUNNING" {
			pending, running := Counted(t.LastStatus)
			if running {
				n.Running++
			}
			if pending {
				n.Pending++
			}
		}
		out[t.StartedBy] = n
	}
	return out
}

// FailedTask reports a stopped task the circuit breaker counts.
func FailedTask(t *TaskRecord) bool {
	return t.LastStatus == "STOPPED" && (t.StopCode == ecsapi.TaskStopCodeTaskFailedToStart || t.StopCode == ecsapi.TaskStopCodeEssentialContainerExited || t.FailedHealth)
}

// RollingBack records in the current service deployment that the service
// goes back to deployment to's revision.
func (s *State) RollingBack(tx *store.Tx, c Scope, svc *ServiceRecord, cluster, to, reason string) error {
	return s.UpdateServiceDeployment(tx, c, svc, cluster, func(sd *ServiceDeploymentRecord) {
		sd.Status = ecsapi.ServiceDeploymentStatusRollbackInProgress
		sd.StatusReason = "ECS deployment circuit breaker: rolling back to deploymentId " + to + "."
		sd.Rollback = &Rollback{Reason: reason, StartedAt: c.Time(), ServiceRevisionArn: svc.Revisions[to]}
	})
}

// RollBack makes the last completed deployment PRIMARY again, with the
// configuration of its service revision, and brings it back to the
// service's desired count. Its tasks that still run stay; the other
// deployments' drain as the rollout goes on. Its failures from before no
// longer count.
func RollBack(svc *ServiceRecord, now time.Time) {
	d := *svc.LastCompleted
	mtls := MutualTLS(d.ServiceConnectConfiguration, svc.Tags)
	rest := svc.Deployments[:0:0]
	for _, have := range svc.Deployments {
		if have.Id == d.Id {
			d, mtls = have, slices.Contains(svc.MutualTLS, have.Id)
			continue
		}
		have.Status = "ACTIVE"
		rest = append(rest, have)
	}
	d.Status = "PRIMARY"
	d.DesiredCount = svc.DesiredCount
	d.RolloutState = ecsapi.DeploymentRolloutStateInProgress
	d.RolloutStateReason = fmt.Sprintf("ECS deployment circuit breaker: rolling back to deploymentId %s.", d.Id)
	d.UpdatedAt = api.NewTime(now)
	svc.Deployments = append([]Deployment{d}, rest...)
	svc.TaskDefinition, svc.NetworkConfiguration = d.TaskDefinition, d.NetworkConfiguration
	svc.LaunchType, svc.CapacityProviderStrategy, svc.PlatformVersion = d.LaunchType, d.CapacityProviderStrategy, d.PlatformVersion
	if svc.CountFrom == nil {
		svc.CountFrom = map[string]time.Time{}
	}
	for id := range svc.CountFrom {
		if !svc.HasDeployment(id) {
			delete(svc.CountFrom, id)
		}
	}
	svc.CountFrom[d.Id] = now
	svc.SetMutualTLS(d.Id, mtls)
}

// MutualTLS reports whether a deployment's Service Connect services
// require callers' certificates.
func MutualTLS(scc *ServiceConnectConfiguration, tags []Tag) bool {
	if scc == nil || !scc.Enabled {
		return false
	}
	for _, t := range tags {
		if t.Key == TagMutualTLS && strings.EqualFold(t.Value, "true") {
			return true
		}
	}
	return false
}

// Retire makes a drained service INACTIVE.
func (s *State) Retire(c Scope, svc *ServiceRecord) {
	now := c.Now
	svc.Status, svc.InactiveAt = "INACTIVE", &now
	svc.Deployments = []Deployment{}
}

func (s *State) ServiceHasTasks(r Reader, c Scope, cluster, name string) (bool, error) {
	kvs, err := r.List(c.Keys().Tasks(cluster))
	if err != nil {
		return false, err
	}
	for _, kv := range kvs {
		var t TaskRecord
		if err := kv.Decode(&t); err != nil {
			return false, err
		}
		if t.Service == name && t.LastStatus != "STOPPED" {
			return true, nil
		}
	}
	return false, nil
}

// TagMutualTLS is the service tag that makes a Service Connect service
// require callers' certificates ("true").
const TagMutualTLS = "wharf:service-connect:mtls"

func orEmpty[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}
