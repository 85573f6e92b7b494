package ecs

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wharfhq/wharf/internal/ecs/state"

	"github.com/wharfhq/wharf/internal/api"
	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
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
	out, last, more, err := store.Scan(ctx, s.Store, c.Keys().ServiceDeployments(cluster, name), from, limit, func(kv store.KV) (ecsapi.ServiceDeploymentBrief, bool, error) {
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
	return &ecsapi.ListServiceDeploymentsResponse{ServiceDeployments: out, NextToken: s.tokens.Next(scope, last, more)}, nil
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
			state.Fill(sd, svc, counts)
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
	kvs, err := s.Store.List(ctx, c.Keys().ServiceDeployments(cluster, service))
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
func (s *Service) liveCounts(ctx context.Context, c call, svc *state.Service) (map[string]state.TaskCount, error) {
	cluster := strings.TrimPrefix(svc.ClusterArn, s.ARN(c, "cluster/"))
	tasks, err := state.ClusterTasks(s.reader(ctx), c.Keys(), cluster)
	if err != nil {
		return nil, err
	}
	return state.DeploymentCounts(tasks, svc.ServiceName), nil
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
				if rev, err = state.Get[serviceRevisionRecord](r, c.Keys().ServiceRevision(cluster, service, id)); err != nil {
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
	err := s.Store.Update(ctx, func(tx *store.Tx) error {
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
		if err := s.RollingBack(tx, c, svc, cluster, to, "StopServiceDeployment requested a rollback."); err != nil {
			return err
		}
		state.RollBack(svc, c.Now)
		svc.Events = append([]state.ServiceEvent{{Id: state.NewUUID(), CreatedAt: c.Time(),
			Message: fmt.Sprintf("(service %s) (deployment %s) rolling back to deployment %s.", svc.ServiceName, primary.Id, to)}}, svc.Events...)
		return tx.Put(k, svc)
	})
	if err != nil {
		return nil, err
	}
	return &ecsapi.StopServiceDeploymentResponse{ServiceDeploymentArn: in.ServiceDeploymentArn}, nil
}
