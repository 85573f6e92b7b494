package ecs

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/wharfhq/wharf/internal/ecs/state"

	"github.com/wharfhq/wharf/internal/api"
	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/controller"
	"github.com/wharfhq/wharf/internal/store"
)

// Service deployments and service revisions, ECS's deployment history.
//
// Every deployment (an ecs-svc/... entry of a service's deployments) starts
// a service deployment whose target is a new service revision: the
// configuration it deploys. A rollback creates no revision: the service
// deployment that failed goes to ROLLBACK_IN_PROGRESS and names the
// revision of the completed deployment that comes back. Both are kept for
// the history period (90 days by default) after the service deployment
// ends, and go with their service when its record is removed.
//
//	ecs/<region>/service-deployments/<cluster>/<service>/<inverted created time>-<id>
//	ecs/<region>/service-revisions/<cluster>/<service>/<id>
//
// The inverted creation time makes key order newest first, the order
// ListServiceDeployments answers in.

type (
	serviceDeploymentRecord = state.ServiceDeploymentRecord
	serviceRevisionRecord   = state.ServiceRevisionRecord
)

func (s *Service) serviceDeploymentPrefix(c call, cluster, service string) string {
	return c.Keys().ServiceDeployments(cluster, service)
}

func (s *Service) serviceRevisionKey(c call, cluster, service, id string) string {
	return c.Keys().ServiceRevision(cluster, service, id)
}

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

// startServiceDeployment records deployment d, just added at the head of
// svc's deployments: a service revision of the configuration it deploys,
// and a service deployment from the revisions that run now to it. A
// service deployment still going on stops. tasks are the cluster's tasks,
// for the counts of the stopped one.
func (s *Service) startServiceDeployment(tx *store.Tx, c call, svc *serviceRecord, cluster string, td *ecsapi.TaskDefinition, tasks []*taskRecord) error {
	d := &svc.Deployments[0]
	revID := newServiceRevisionID()
	rev := serviceRevisionRecord{ServiceRevision: state.ServiceRevision{
		ServiceRevisionArn:          s.ARN(c, "service-revision/"+cluster+"/"+svc.ServiceName+"/"+revID),
		ServiceArn:                  svc.ServiceArn,
		ClusterArn:                  svc.ClusterArn,
		TaskDefinition:              d.TaskDefinition,
		CapacityProviderStrategy:    d.CapacityProviderStrategy,
		LaunchType:                  d.LaunchType,
		PlatformVersion:             d.PlatformVersion,
		PlatformFamily:              d.PlatformFamily,
		LoadBalancers:               emptyIfNil(svc.LoadBalancers),
		ServiceRegistries:           emptyIfNil(svc.ServiceRegistries),
		NetworkConfiguration:        d.NetworkConfiguration,
		ServiceConnectConfiguration: d.ServiceConnectConfiguration,
		VolumeConfigurations:        d.VolumeConfigurations,
		ContainerImages:             containerImages(td),
		CreatedAt:                   d.CreatedAt,
	}}
	if err := tx.Put(s.serviceRevisionKey(c, cluster, svc.ServiceName, revID), &rev); err != nil {
		return err
	}
	if svc.Revisions == nil {
		svc.Revisions = map[string]string{}
	}
	svc.Revisions[d.Id] = rev.ServiceRevisionArn
	svc.PruneRevisions()

	if err := s.updateServiceDeployment(tx, c, svc, cluster, func(sd *serviceDeploymentRecord) {
		sd.Status, sd.StoppedAt = ecsapi.ServiceDeploymentStatusStopped, c.Time()
		sd.StatusReason = "ECS deployment " + d.Id + " started before this service deployment finished."
		freeze(sd, svc, tasks)
	}); err != nil {
		return err
	}

	id := newServiceDeploymentID()
	sd := serviceDeploymentRecord{ServiceDeployment: state.ServiceDeployment{
		ServiceDeploymentArn:    s.ARN(c, "service-deployment/"+cluster+"/"+svc.ServiceName+"/"+id),
		ServiceArn:              svc.ServiceArn,
		ClusterArn:              svc.ClusterArn,
		CreatedAt:               d.CreatedAt,
		StartedAt:               d.CreatedAt,
		UpdatedAt:               d.CreatedAt,
		Status:                  ecsapi.ServiceDeploymentStatusInProgress,
		StatusReason:            d.RolloutStateReason,
		DeploymentConfiguration: svc.DeploymentConfiguration,
		TargetServiceRevision:   &state.ServiceRevisionSummary{Arn: rev.ServiceRevisionArn},
		SourceServiceRevisions:  []state.ServiceRevisionSummary{},
		DeploymentCircuitBreaker: &state.ServiceDeploymentCircuitBreaker{
			Status: ecsapi.ServiceDeploymentRollbackMonitorsStatusDisabled,
		},
		Alarms: &state.ServiceDeploymentAlarms{Status: ecsapi.ServiceDeploymentRollbackMonitorsStatusDisabled},
	}, Target: d.Id}
	if cb := svc.DeploymentConfiguration.DeploymentCircuitBreaker; cb != nil && cb.Enable {
		sd.DeploymentCircuitBreaker.Status = ecsapi.ServiceDeploymentRollbackMonitorsStatusMonitoring
	}
	for _, old := range svc.Deployments[1:] {
		if arn := svc.Revisions[old.Id]; arn != "" && !slices.Contains(sd.Sources, old.Id) {
			sd.Sources = append(sd.Sources, old.Id)
		}
	}
	key := s.serviceDeploymentPrefix(c, cluster, svc.ServiceName) + invertedTime(c.Now) + "-" + id
	if err := tx.Put(key, &sd); err != nil {
		return err
	}
	svc.CurrentServiceDeployment, svc.CurrentServiceDeploymentKey = sd.ServiceDeploymentArn, key
	return nil
}

// invertedTime renders t so that later times sort first.
func invertedTime(t time.Time) string {
	return fmt.Sprintf("%019d", int64(1<<62)-t.UnixNano())
}

func containerImages(td *ecsapi.TaskDefinition) []state.ContainerImage {
	out := []state.ContainerImage{}
	for _, cd := range td.ContainerDefinitions {
		out = append(out, state.ContainerImage{ContainerName: cd.Name, Image: cd.Image})
	}
	return out
}

// updateServiceDeployment changes the service's current service
// deployment, if it is still going on.
func (s *Service) updateServiceDeployment(tx *store.Tx, c call, svc *serviceRecord, cluster string, change func(*serviceDeploymentRecord)) error {
	if svc.CurrentServiceDeploymentKey == "" {
		return nil
	}
	sd, err := state.Get[serviceDeploymentRecord](tx, svc.CurrentServiceDeploymentKey)
	if err != nil || sd == nil || sd.Ended() {
		return err
	}
	change(sd)
	sd.UpdatedAt = c.Time()
	return tx.Put(svc.CurrentServiceDeploymentKey, sd)
}

// freeze records the revisions' task counts as they are when the service
// deployment ends.
func freeze(r *serviceDeploymentRecord, svc *serviceRecord, tasks []*taskRecord) {
	fill(r, svc, deploymentCounts(tasks, svc.ServiceName))
}

// fill sets the revisions' counts, and the circuit breaker's, from the
// deployments' task counts.
func fill(r *serviceDeploymentRecord, svc *serviceRecord, counts map[string]taskCount) {
	summary := func(id string) state.ServiceRevisionSummary {
		n := counts[id]
		out := state.ServiceRevisionSummary{Arn: svc.Revisions[id], RunningTaskCount: n.running, PendingTaskCount: n.pending}
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
		r.DeploymentCircuitBreaker.FailureCount = counts[r.Target].failed
		r.DeploymentCircuitBreaker.Threshold = int32(controller.FailureThreshold(int(svc.DesiredCount)))
	}
}

type taskCount struct{ running, pending, failed int32 }

// deploymentCounts counts a service's tasks by the deployment that
// started them.
func deploymentCounts(tasks []*taskRecord, service string) map[string]taskCount {
	out := map[string]taskCount{}
	for _, t := range tasks {
		if t.Service != service {
			continue
		}
		n := out[t.StartedBy]
		if failedTask(t) {
			n.failed++
		}
		if t.DesiredStatus == "RUNNING" {
			pending, running := state.Counted(t.LastStatus)
			if running {
				n.running++
			}
			if pending {
				n.pending++
			}
		}
		out[t.StartedBy] = n
	}
	return out
}

// failedTask reports a stopped task the circuit breaker counts.
func failedTask(t *taskRecord) bool {
	return t.LastStatus == "STOPPED" && (t.StopCode == ecsapi.TaskStopCodeTaskFailedToStart || t.StopCode == ecsapi.TaskStopCodeEssentialContainerExited || t.FailedHealth)
}

// rolloutChanged follows the PRIMARY deployment's rollout in the current
// service deployment: a completed deployment ends it (SUCCESSFUL, or
// ROLLBACK_SUCCESSFUL when it was the rollback's), a failed one ends it
// (STOPPED) or starts its rollback.
func (a *applier) rolloutChanged(p *controller.Plan) error {
	svc := a.svc
	primary := svc.Deployments[0]
	return a.s.updateServiceDeployment(a.tx, a.c, svc, a.cluster, func(sd *serviceDeploymentRecord) {
		now := a.c.Time()
		switch {
		case p.Rollout == controller.Completed && sd.Status == ecsapi.ServiceDeploymentStatusRollbackInProgress:
			sd.Status, sd.FinishedAt = ecsapi.ServiceDeploymentStatusRollbackSuccessful, now
			sd.StatusReason = primary.RolloutStateReason
		case p.Rollout == controller.Completed && sd.Target == primary.Id:
			sd.Status, sd.FinishedAt = ecsapi.ServiceDeploymentStatusSuccessful, now
			sd.StatusReason = primary.RolloutStateReason
			if sd.DeploymentCircuitBreaker.Status == ecsapi.ServiceDeploymentRollbackMonitorsStatusMonitoring {
				sd.DeploymentCircuitBreaker.Status = ecsapi.ServiceDeploymentRollbackMonitorsStatusMonitoringComplete
			}
		case p.Rollout == controller.Failed && sd.Target == primary.Id:
			sd.DeploymentCircuitBreaker.Status = ecsapi.ServiceDeploymentRollbackMonitorsStatusTriggered
			sd.StatusReason = p.RolloutReason
			if p.RollbackTo == "" {
				sd.Status, sd.StoppedAt = ecsapi.ServiceDeploymentStatusStopped, now
			}
		default:
			return
		}
		freeze(sd, svc, a.tasks)
	})
}

// rollingBack records in the current service deployment that the service
// goes back to deployment to's revision.
func (s *Service) rollingBack(tx *store.Tx, c call, svc *serviceRecord, cluster, to, reason string) error {
	return s.updateServiceDeployment(tx, c, svc, cluster, func(sd *serviceDeploymentRecord) {
		sd.Status = ecsapi.ServiceDeploymentStatusRollbackInProgress
		sd.StatusReason = "ECS deployment circuit breaker: rolling back to deploymentId " + to + "."
		sd.Rollback = &state.Rollback{Reason: reason, StartedAt: c.Time(), ServiceRevisionArn: svc.Revisions[to]}
	})
}

// ListServiceDeployments lists a service's service deployments, newest
// first.
func (s *Service) ListServiceDeployments(ctx context.Context, in *ecsapi.ListServiceDeploymentsRequest) (*ecsapi.ListServiceDeploymentsResponse, error) {
	c := s.call(ctx)
	limit, err := pageSize(in.MaxResults, 20, 100)
	if err != nil {
		return nil, err
	}
	cluster, err := s.ExistingCluster(s.reader(ctx), c, in.Cluster, false)
	if err != nil {
		return nil, err
	}
	name, err := s.serviceName(c, cluster, in.Service)
	if err != nil {
		return nil, err
	}
	svc, err := state.Get[serviceRecord](s.reader(ctx), c.Keys().Service(cluster, name))
	if err != nil {
		return nil, err
	}
	if svc == nil {
		return nil, serviceNotFound(name)
	}
	var after, before time.Time
	if in.CreatedAt != nil {
		if in.CreatedAt.After != nil {
			after = in.CreatedAt.After.Time
		}
		if in.CreatedAt.Before != nil {
			before = in.CreatedAt.Before.Time
		}
	}
	scope := fmt.Sprintf("ListServiceDeployments/%s/%s/%s/%v/%d/%d", c.Region, cluster, name, in.Status, after.UnixNano(), before.UnixNano())
	from, err := s.start(scope, in.NextToken)
	if err != nil {
		return nil, err
	}
	out, last, more, err := store.Scan(ctx, s.st, s.serviceDeploymentPrefix(c, cluster, name), from, limit, func(kv store.KV) (ecsapi.ServiceDeploymentBrief, bool, error) {
		var sd serviceDeploymentRecord
		if err := kv.Decode(&sd); err != nil {
			return ecsapi.ServiceDeploymentBrief{}, false, err
		}
		created := sd.CreatedAt.Time
		ok := svc.Owns(sd.CreatedAt) && (len(in.Status) == 0 || slices.Contains(in.Status, sd.Status)) &&
			(after.IsZero() || created.After(after)) && (before.IsZero() || created.Before(before))
		brief := ecsapi.ServiceDeploymentBrief{
			ServiceDeploymentArn: sd.ServiceDeploymentArn, ServiceArn: sd.ServiceArn, ClusterArn: sd.ClusterArn,
			CreatedAt: sd.CreatedAt, StartedAt: sd.StartedAt, FinishedAt: sd.FinishedAt,
			Status: sd.Status, StatusReason: sd.StatusReason,
		}
		if sd.TargetServiceRevision != nil {
			brief.TargetServiceRevisionArn = sd.TargetServiceRevision.Arn
		}
		return brief, ok, nil
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []ecsapi.ServiceDeploymentBrief{}
	}
	return &ecsapi.ListServiceDeploymentsResponse{ServiceDeployments: out, NextToken: s.next(scope, last, more)}, nil
}

// historyRef splits the ARN of a service deployment or revision (kind
// "service-deployment" or "service-revision") of this account and region
// into its cluster, service and id.
func (s *Service) historyRef(c call, kind, arn string) (cluster, service, id string, ok bool) {
	res, ok := s.ResourceOf(c, arn)
	if !ok {
		return "", "", "", false
	}
	rest, ok := strings.CutPrefix(res, kind+"/")
	if !ok {
		return "", "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// DescribeServiceDeployments describes service deployments by ARN; those
// that do not exist are failures.
func (s *Service) DescribeServiceDeployments(ctx context.Context, in *ecsapi.DescribeServiceDeploymentsRequest) (*ecsapi.DescribeServiceDeploymentsResponse, error) {
	c := s.call(ctx)
	if len(in.ServiceDeploymentArns) > 20 {
		return nil, invalidParameter("At most 20 service deployments can be described at once.")
	}
	out := &ecsapi.DescribeServiceDeploymentsResponse{ServiceDeployments: []ecsapi.ServiceDeployment{}, Failures: []ecsapi.Failure{}}
	for _, arn := range in.ServiceDeploymentArns {
		sd, svc, err := s.findServiceDeployment(ctx, c, arn)
		if err != nil {
			return nil, err
		}
		if sd == nil {
			out.Failures = append(out.Failures, failureOf(arn, "MISSING", ""))
			continue
		}
		if !sd.Ended() {
			counts, err := s.liveCounts(ctx, c, &svc.Service)
			if err != nil {
				return nil, err
			}
			fill(sd, svc, counts)
		}
		out.ServiceDeployments = append(out.ServiceDeployments, sd.ServiceDeployment.Wire())
	}
	return out, nil
}

// findServiceDeployment reads the service deployment an ARN names, and its
// service; nil when either is gone.
func (s *Service) findServiceDeployment(ctx context.Context, c call, arn string) (*serviceDeploymentRecord, *serviceRecord, error) {
	cluster, service, id, ok := s.historyRef(c, "service-deployment", arn)
	if !ok {
		return nil, nil, nil
	}
	svc, err := state.Get[serviceRecord](s.reader(ctx), c.Keys().Service(cluster, service))
	if err != nil || svc == nil {
		return nil, nil, err
	}
	kvs, err := s.st.List(ctx, s.serviceDeploymentPrefix(c, cluster, service))
	if err != nil {
		return nil, nil, err
	}
	for _, kv := range kvs {
		if strings.HasSuffix(kv.Key, "-"+id) {
			sd := new(serviceDeploymentRecord)
			if err := kv.Decode(sd); err != nil || !svc.Owns(sd.CreatedAt) {
				return nil, nil, err
			}
			return sd, svc, nil
		}
	}
	return nil, nil, nil
}

// liveCounts counts a service's tasks by deployment now.
func (s *Service) liveCounts(ctx context.Context, c call, svc *state.Service) (map[string]taskCount, error) {
	cluster := strings.TrimPrefix(svc.ClusterArn, s.ARN(c, "cluster/"))
	tasks, err := state.ClusterTasks(s.reader(ctx), c.Keys(), cluster)
	if err != nil {
		return nil, err
	}
	return deploymentCounts(tasks, svc.ServiceName), nil
}

// DescribeServiceRevisions describes service revisions by ARN; those that
// do not exist are failures.
func (s *Service) DescribeServiceRevisions(ctx context.Context, in *ecsapi.DescribeServiceRevisionsRequest) (*ecsapi.DescribeServiceRevisionsResponse, error) {
	c := s.call(ctx)
	if len(in.ServiceRevisionArns) > 20 {
		return nil, invalidParameter("At most 20 service revisions can be described at once.")
	}
	out := &ecsapi.DescribeServiceRevisionsResponse{ServiceRevisions: []ecsapi.ServiceRevision{}, Failures: []ecsapi.Failure{}}
	for _, arn := range in.ServiceRevisionArns {
		cluster, service, id, ok := s.historyRef(c, "service-revision", arn)
		var rev *serviceRevisionRecord
		if ok {
			r := s.reader(ctx)
			svc, err := state.Get[serviceRecord](r, c.Keys().Service(cluster, service))
			if err != nil {
				return nil, err
			}
			if svc != nil {
				if rev, err = state.Get[serviceRevisionRecord](r, s.serviceRevisionKey(c, cluster, service, id)); err != nil {
					return nil, err
				}
				if rev != nil && !svc.Owns(rev.CreatedAt) {
					rev = nil
				}
			}
		}
		if rev == nil {
			out.Failures = append(out.Failures, failureOf(arn, "MISSING", ""))
			continue
		}
		out.ServiceRevisions = append(out.ServiceRevisions, rev.ServiceRevision.Wire())
	}
	return out, nil
}

// StopServiceDeployment stops a service deployment that is going on by
// rolling the service back to the revision of its last completed
// deployment, whether or not the service's circuit breaker rolls back.
func (s *Service) StopServiceDeployment(ctx context.Context, in *ecsapi.StopServiceDeploymentRequest) (*ecsapi.StopServiceDeploymentResponse, error) {
	c := s.call(ctx)
	if in.StopType == ecsapi.StopServiceDeploymentStopTypeAbort {
		return nil, invalidParameter("stopType ABORT is not supported for services that use the rolling update (ECS) deployment type; use ROLLBACK.")
	}
	cluster, service, _, ok := s.historyRef(c, "service-deployment", in.ServiceDeploymentArn)
	if !ok {
		return nil, clientCode("ServiceDeploymentNotFoundException", "The service deployment "+in.ServiceDeploymentArn+" doesn't exist.")
	}
	defer s.Serialize(c, cluster)()
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		c.Now = s.now().UTC()
		k := c.Keys().Service(cluster, service)
		svc, err := state.Get[serviceRecord](tx, k)
		if err != nil {
			return err
		}
		if svc == nil || svc.CurrentServiceDeployment != in.ServiceDeploymentArn {
			sd, _, err := s.findServiceDeployment(ctx, c, in.ServiceDeploymentArn)
			if err != nil {
				return err
			}
			if sd == nil {
				return clientCode("ServiceDeploymentNotFoundException", "The service deployment "+in.ServiceDeploymentArn+" doesn't exist.")
			}
			return api.ClientError("ConflictException", "The service deployment "+in.ServiceDeploymentArn+" is "+string(sd.Status)+" and can't be stopped.")
		}
		sd, err := state.Get[serviceDeploymentRecord](tx, svc.CurrentServiceDeploymentKey)
		if err != nil {
			return err
		}
		if sd == nil {
			return clientCode("ServiceDeploymentNotFoundException", "The service deployment "+in.ServiceDeploymentArn+" doesn't exist.")
		}
		switch {
		case sd.Status == ecsapi.ServiceDeploymentStatusRollbackRequested || sd.Status == ecsapi.ServiceDeploymentStatusRollbackInProgress:
			return nil // the rollback goes on
		case sd.Ended():
			return api.ClientError("ConflictException", "The service deployment "+in.ServiceDeploymentArn+" is "+string(sd.Status)+" and can't be stopped.")
		case svc.Status != "ACTIVE":
			return serviceNotActive(service)
		case svc.LastCompleted == nil || svc.LastCompleted.Id == svc.Deployments[0].Id:
			return api.ClientError("ConflictException", "The service deployment "+in.ServiceDeploymentArn+" can't be rolled back: the service has no earlier completed service revision.")
		}
		primary := &svc.Deployments[0]
		primary.RolloutState = ecsapi.DeploymentRolloutStateFailed
		primary.RolloutStateReason = "ECS deployment " + primary.Id + " stopped by StopServiceDeployment."
		primary.UpdatedAt = c.Time()
		to := svc.LastCompleted.Id
		if err := s.rollingBack(tx, c, svc, cluster, to, "StopServiceDeployment requested a rollback."); err != nil {
			return err
		}
		rollBack(svc, c.Now)
		svc.Events = append([]state.ServiceEvent{{Id: state.NewUUID(), CreatedAt: c.Time(),
			Message: fmt.Sprintf("(service %s) (deployment %s) rolling back to deployment %s.", svc.ServiceName, primary.Id, to)}}, svc.Events...)
		return tx.Put(k, svc)
	})
	if err != nil {
		return nil, err
	}
	return &ecsapi.StopServiceDeploymentResponse{ServiceDeploymentArn: in.ServiceDeploymentArn}, nil
}

// sweepHistory removes the service deployments that ended longer than the
// history period ago, and the service revisions nothing refers to any
// more; all of a service's once its record is gone. Each removal re-reads
// the service in its transaction.
func (s *Service) sweepHistory(ctx context.Context, c call) error {
	expired := func(sd *serviceDeploymentRecord) bool {
		end := sd.FinishedAt
		if end == nil {
			end = sd.StoppedAt
		}
		return end != nil && c.Now.Sub(end.Time) > s.history
	}
	// referred holds the revisions that kept service deployments name.
	referred := map[string]bool{}
	err := s.sweepServiceHistory(ctx, c, c.Keys().ServiceDeployments("", ""), func(svc *serviceRecord, raw store.KV) (bool, error) {
		var sd serviceDeploymentRecord
		if err := raw.Decode(&sd); err != nil {
			return false, err
		}
		if svc == nil || expired(&sd) || !svc.Owns(sd.CreatedAt) {
			return true, nil
		}
		referred[sd.TargetServiceRevision.Arn] = true
		if sd.Rollback != nil {
			referred[sd.Rollback.ServiceRevisionArn] = true
		}
		return false, nil
	})
	if err != nil {
		return err
	}
	return s.sweepServiceHistory(ctx, c, c.Keys().ServiceRevisions(), func(svc *serviceRecord, raw store.KV) (bool, error) {
		var rev serviceRevisionRecord
		if err := raw.Decode(&rev); err != nil {
			return false, err
		}
		current := svc != nil && slices.Contains(slices.Collect(maps.Values(svc.Revisions)), rev.ServiceRevisionArn)
		return svc == nil || !svc.Owns(rev.CreatedAt) || !referred[rev.ServiceRevisionArn] && !current, nil
	})
}

// sweepServiceHistory removes the records under prefix/<cluster>/<service>/
// that drop, given the service (nil once it is gone), says to remove, each
// in a transaction that reads the service and the record again.
func (s *Service) sweepServiceHistory(ctx context.Context, c call, prefix string, drop func(svc *serviceRecord, kv store.KV) (bool, error)) error {
	kvs, err := s.st.List(ctx, prefix)
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		parts := strings.Split(strings.TrimPrefix(kv.Key, prefix), "/")
		if len(parts) != 3 {
			continue
		}
		err := s.st.Update(ctx, func(tx *store.Tx) error {
			svc, err := state.Get[serviceRecord](tx, c.Keys().Service(parts[0], parts[1]))
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if ok, err := tx.Get(kv.Key, &raw); err != nil || !ok {
				return err
			}
			gone, err := drop(svc, store.KV{Key: kv.Key, Value: raw})
			if gone {
				tx.Delete(kv.Key)
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}
