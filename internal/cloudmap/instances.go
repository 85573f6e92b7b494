package cloudmap

import (
	"context"
	"maps"
	"slices"
	"strconv"

	sd "github.com/wharfhq/wharf/internal/api/servicediscovery"
	"github.com/wharfhq/wharf/internal/store"
)

// PutInstance writes an instance inside tx and, when what DiscoverInstances
// and DNS show of it changes (its attributes or health), bumps its
// service's revision in the same transaction. An unchanged instance is not
// written. The ECS service registries register tasks with it too.
func PutInstance(tx *store.Tx, region string, r *InstanceRecord) error {
	key := InstanceKey(region, r.ServiceID, r.Id)
	old, err := getRecord[InstanceRecord](tx, key)
	if err != nil {
		return err
	}
	if old != nil && old.Health == r.Health && maps.Equal(old.Attributes, r.Attributes) &&
		old.CreatorRequestId == r.CreatorRequestId && old.ECSTask == r.ECSTask {
		return nil
	}
	if err := tx.Put(key, r); err != nil {
		return err
	}
	if old != nil && old.Health == r.Health && maps.Equal(old.Attributes, r.Attributes) {
		return nil
	}
	return bumpRevision(tx, region, r.ServiceID)
}

// DeleteInstance removes an instance inside tx and bumps its service's
// revision; found is false when there was no such instance.
func DeleteInstance(tx *store.Tx, region, serviceID, id string) (found bool, err error) {
	key := InstanceKey(region, serviceID, id)
	old, err := getRecord[InstanceRecord](tx, key)
	if err != nil || old == nil {
		return false, err
	}
	tx.Delete(key)
	return true, bumpRevision(tx, region, serviceID)
}

func bumpRevision(tx *store.Tx, region, serviceID string) error {
	var n int64
	if _, err := tx.Get(RevisionKey(region, serviceID), &n); err != nil {
		return err
	}
	return tx.Put(RevisionKey(region, serviceID), n+1)
}

// RegisterInstance registers an instance, or replaces the one with the same
// id, once its operation runs.
func (s *Service) RegisterInstance(ctx context.Context, in *sd.RegisterInstanceRequest) (*sd.RegisterInstanceResponse, error) {
	c := s.call(ctx)
	var opID string
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		svc, err := s.txService(tx, c, in.ServiceId)
		if err != nil {
			return err
		}
		nsType, err := namespaceType(tx, c.region, svc)
		if err != nil {
			return err
		}
		if err := checkInstanceAttributes(svc, nsType, in.Attributes); err != nil {
			return err
		}
		requestID := in.CreatorRequestId
		if requestID == "" {
			requestID = c.now.Format("2006-01-02T15:04:05.000000000Z")
		}
		inst := &InstanceRecord{
			Instance: sd.Instance{
				Id:               in.InstanceId,
				Attributes:       maps.Clone(in.Attributes),
				CreatorRequestId: requestID,
				CreatedByAccount: s.account,
			},
			ServiceID: svc.Id,
		}
		sub := submission{
			typ:      sd.OperationTypeRegisterInstance,
			targets:  map[string]string{"INSTANCE": in.InstanceId, "SERVICE": svc.Id},
			nsID:     svc.NamespaceId,
			change:   &OperationChange{Instance: inst},
			inflight: []string{svc.Id + "/" + in.InstanceId},
		}
		if in.CreatorRequestId != "" {
			sub.request, sub.requestField, sub.requestID, sub.inputHash = hashOf("RegisterInstance", svc.Id, in.CreatorRequestId), "CreatorRequestId", in.CreatorRequestId, hashOf(in.InstanceId, in.Attributes)
		}
		opID, err = s.submit(tx, c, sub)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &sd.RegisterInstanceResponse{OperationId: opID}, nil
}

// DeregisterInstance removes an instance once its operation runs.
func (s *Service) DeregisterInstance(ctx context.Context, in *sd.DeregisterInstanceRequest) (*sd.DeregisterInstanceResponse, error) {
	c := s.call(ctx)
	var opID string
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		svc, err := s.txService(tx, c, in.ServiceId)
		if err != nil {
			return err
		}
		target := svc.Id + "/" + in.InstanceId
		if op, err := s.holder(tx, c.region, target); err != nil {
			return err
		} else if op != nil {
			return operationInProgress(op)
		}
		inst, err := getRecord[InstanceRecord](tx, InstanceKey(c.region, svc.Id, in.InstanceId))
		if err != nil {
			return err
		}
		if inst == nil {
			return instanceNotFound(svc.Id, in.InstanceId)
		}
		opID, err = s.submit(tx, c, submission{
			typ:      sd.OperationTypeDeregisterInstance,
			targets:  map[string]string{"INSTANCE": in.InstanceId, "SERVICE": svc.Id},
			nsID:     svc.NamespaceId,
			inflight: []string{target},
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return &sd.DeregisterInstanceResponse{OperationId: opID}, nil
}

// GetInstance describes an instance.
func (s *Service) GetInstance(ctx context.Context, in *sd.GetInstanceRequest) (*sd.GetInstanceResponse, error) {
	c := s.call(ctx)
	svc, err := s.readService(ctx, c, in.ServiceId)
	if err != nil {
		return nil, err
	}
	var inst InstanceRecord
	found, err := s.st.Get(ctx, InstanceKey(c.region, svc.Id, in.InstanceId), &inst)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, instanceNotFound(svc.Id, in.InstanceId)
	}
	out := inst.Instance
	return &sd.GetInstanceResponse{Instance: &out, ResourceOwner: s.account}, nil
}

// ListInstances lists a service's instances.
func (s *Service) ListInstances(ctx context.Context, in *sd.ListInstancesRequest) (*sd.ListInstancesResponse, error) {
	c := s.call(ctx)
	svc, err := s.readService(ctx, c, in.ServiceId)
	if err != nil {
		return nil, err
	}
	scope := "ListInstances/" + c.region + "/" + svc.Id
	after, err := s.start(scope, in.NextToken)
	if err != nil {
		return nil, err
	}
	items, last, more, err := store.Scan(ctx, s.st, InstancesPrefix(c.region, svc.Id), after, pageSize(in.MaxResults), func(kv store.KV) (sd.InstanceSummary, bool, error) {
		var inst InstanceRecord
		if err := kv.Decode(&inst); err != nil {
			return sd.InstanceSummary{}, false, err
		}
		return sd.InstanceSummary{Id: inst.Id, Attributes: inst.Attributes, CreatedByAccount: inst.CreatedByAccount}, true, nil
	})
	if err != nil {
		return nil, err
	}
	return &sd.ListInstancesResponse{Instances: items, NextToken: s.tokens.Next(scope, last, more), ResourceOwner: s.account}, nil
}

// GetInstancesHealthStatus reports the health of a service's instances,
// all or the ones named. Instances of services without health checks are
// UNKNOWN.
func (s *Service) GetInstancesHealthStatus(ctx context.Context, in *sd.GetInstancesHealthStatusRequest) (*sd.GetInstancesHealthStatusResponse, error) {
	c := s.call(ctx)
	svc, err := s.readService(ctx, c, in.ServiceId)
	if err != nil {
		return nil, err
	}
	limit := pageSize(in.MaxResults)
	out := &sd.GetInstancesHealthStatusResponse{Status: map[string]sd.HealthStatus{}}
	if len(in.Instances) == 0 {
		scope := "GetInstancesHealthStatus/" + c.region + "/" + svc.Id
		after, err := s.start(scope, in.NextToken)
		if err != nil {
			return nil, err
		}
		items, last, more, err := store.Scan(ctx, s.st, InstancesPrefix(c.region, svc.Id), after, limit, func(kv store.KV) (*InstanceRecord, bool, error) {
			var inst InstanceRecord
			err := kv.Decode(&inst)
			return &inst, err == nil, err
		})
		if err != nil {
			return nil, err
		}
		for _, inst := range items {
			out.Status[inst.Id] = reportedHealth(svc, inst)
		}
		out.NextToken = s.tokens.Next(scope, last, more)
		return out, nil
	}
	ids := slices.Compact(slices.Sorted(slices.Values(in.Instances)))
	scope := "GetInstancesHealthStatus/" + c.region + "/" + svc.Id + "/" + hashOf(ids)
	pos, err := s.start(scope, in.NextToken)
	if err != nil {
		return nil, err
	}
	from, _ := strconv.Atoi(pos)
	if from < 0 || from > len(ids) {
		from = len(ids)
	}
	page := ids[from:min(from+limit, len(ids))]
	keys := make([]string, len(page))
	for i, id := range page {
		keys[i] = InstanceKey(c.region, svc.Id, id)
	}
	vals, err := s.st.GetMany(ctx, keys)
	if err != nil {
		return nil, err
	}
	for i, v := range vals {
		if v == nil {
			return nil, instanceNotFound(svc.Id, page[i])
		}
		var inst InstanceRecord
		if err := (store.KV{Key: keys[i], Value: v}).Decode(&inst); err != nil {
			return nil, err
		}
		out.Status[inst.Id] = reportedHealth(svc, &inst)
	}
	next := from + len(page)
	out.NextToken = s.tokens.Next(scope, strconv.Itoa(next), next < len(ids))
	return out, nil
}

// UpdateInstanceCustomHealthStatus sets the health of an instance of a
// service with HealthCheckCustomConfig. Wharf applies it at once, where
// Cloud Map waits about 30 seconds.
func (s *Service) UpdateInstanceCustomHealthStatus(ctx context.Context, in *sd.UpdateInstanceCustomHealthStatusRequest) (*struct{}, error) {
	c := s.call(ctx)
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		svc, err := s.txService(tx, c, in.ServiceId)
		if err != nil {
			return err
		}
		inst, err := getRecord[InstanceRecord](tx, InstanceKey(c.region, svc.Id, in.InstanceId))
		if err != nil {
			return err
		}
		if inst == nil {
			return instanceNotFound(svc.Id, in.InstanceId)
		}
		if svc.HealthCheckCustomConfig == nil {
			return customHealthNotFound(svc.Id)
		}
		if inst.Health == sd.HealthStatus(in.Status) {
			return nil
		}
		inst.Health, inst.UpdatedAt = sd.HealthStatus(in.Status), c.now
		return PutInstance(tx, c.region, inst)
	})
	if err != nil {
		return nil, err
	}
	return &struct{}{}, nil
}
