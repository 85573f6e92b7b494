package cloudmap

import (
	"context"
	"maps"
	"strings"

	"github.com/wharfhq/wharf/internal/api"
	sd "github.com/wharfhq/wharf/internal/api/servicediscovery"
	"github.com/wharfhq/wharf/internal/store"
)

// sameServiceName compares service names: case-insensitively in DNS
// namespaces, where names that differ only by case are the same DNS name,
// and exactly in HTTP namespaces.
func sameServiceName(nsType sd.NamespaceType, a, b string) bool {
	if nsType == sd.NamespaceTypeHttp {
		return a == b
	}
	return strings.EqualFold(a, b)
}

// listServices reads a region's services inside tx.
func listServices(tx *store.Tx, region string) ([]*ServiceRecord, error) {
	kvs, err := tx.List(regionPrefix(region) + "services/")
	if err != nil {
		return nil, err
	}
	out := make([]*ServiceRecord, 0, len(kvs))
	for _, kv := range kvs {
		var svc ServiceRecord
		if err := kv.Decode(&svc); err != nil {
			return nil, err
		}
		out = append(out, &svc)
	}
	return out, nil
}

// CreateService creates a service in a namespace. It is synchronous, as in
// Cloud Map.
func (s *Service) CreateService(ctx context.Context, in *sd.CreateServiceRequest) (*sd.CreateServiceResponse, error) {
	c := s.call(ctx)
	ref := in.NamespaceId
	if in.DnsConfig != nil && in.DnsConfig.NamespaceId != "" {
		if ref == "" {
			ref = in.DnsConfig.NamespaceId
		} else if in.DnsConfig.NamespaceId != ref {
			return nil, invalidInput("NamespaceId %q and DnsConfig.NamespaceId %q differ; give NamespaceId only.", ref, in.DnsConfig.NamespaceId)
		}
	}
	if ref == "" {
		return nil, invalidInput("NamespaceId is required: the namespace to create the service in.")
	}
	nsID, ok := s.resolveID(c, "namespace", ref)
	if !ok {
		return nil, namespaceNotFound(ref)
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	if len(in.Tags) > maxTags {
		return nil, tooManyTags(in.Name, len(in.Tags))
	}
	var out sd.Service
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		ns, err := getRecord[NamespaceRecord](tx, NamespaceKey(c.region, nsID))
		if err != nil {
			return err
		}
		if ns == nil {
			return namespaceNotFound(ref)
		}
		cfg, err := checkServiceConfig(ns.Type, ns.Id, in.Type, in.DnsConfig, in.HealthCheckConfig, in.HealthCheckCustomConfig)
		if err != nil {
			return err
		}
		svcs, err := listServices(tx, c.region)
		if err != nil {
			return err
		}
		for _, svc := range svcs {
			if svc.NamespaceId == ns.Id && sameServiceName(ns.Type, svc.Name, in.Name) {
				if in.CreatorRequestId != "" && svc.CreatorRequestId == in.CreatorRequestId {
					out = svc.Service // a retry of the request that created it
					return nil
				}
				return serviceAlreadyExists(svc)
			}
		}
		id := newServiceID()
		svc := &ServiceRecord{
			Service: sd.Service{
				Id:                      id,
				Arn:                     s.arn(c, "service/"+id),
				Name:                    in.Name,
				NamespaceId:             ns.Id,
				Description:             in.Description,
				Type:                    cfg.typ,
				DnsConfig:               cfg.dns,
				HealthCheckConfig:       cfg.health,
				HealthCheckCustomConfig: cfg.custom,
				CreatorRequestId:        in.CreatorRequestId,
				CreateDate:              api.NewTime(c.now),
				CreatedByAccount:        s.account,
				ResourceOwner:           s.account,
			},
			Tags: in.Tags,
		}
		out = svc.Service
		return tx.Put(ServiceKey(c.region, id), svc)
	})
	if err != nil {
		return nil, err
	}
	return &sd.CreateServiceResponse{Service: &out}, nil
}

// readService reads a service by id or ARN.
func (s *Service) readService(ctx context.Context, c call, ref string) (*ServiceRecord, error) {
	id, ok := s.resolveID(c, "service", ref)
	if !ok {
		return nil, serviceNotFound(ref)
	}
	var svc ServiceRecord
	found, err := s.st.Get(ctx, ServiceKey(c.region, id), &svc)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, serviceNotFound(ref)
	}
	return &svc, nil
}

// txService reads a service by id or ARN inside tx.
func (s *Service) txService(tx *store.Tx, c call, ref string) (*ServiceRecord, error) {
	id, ok := s.resolveID(c, "service", ref)
	if !ok {
		return nil, serviceNotFound(ref)
	}
	svc, err := getRecord[ServiceRecord](tx, ServiceKey(c.region, id))
	if err != nil {
		return nil, err
	}
	if svc == nil {
		return nil, serviceNotFound(ref)
	}
	return svc, nil
}

// namespaceType is the type of svc's namespace; HTTP once the namespace is
// gone.
func namespaceType(tx *store.Tx, region string, svc *ServiceRecord) (sd.NamespaceType, error) {
	ns, err := getRecord[NamespaceRecord](tx, NamespaceKey(region, svc.NamespaceId))
	if err != nil || ns == nil {
		return sd.NamespaceTypeHttp, err
	}
	return ns.Type, nil
}

func (s *Service) instanceCount(ctx context.Context, region, serviceID string) (int32, error) {
	n, err := s.st.Count(ctx, InstancesPrefix(region, serviceID))
	return int32(n), err
}

// GetService describes a service.
func (s *Service) GetService(ctx context.Context, in *sd.GetServiceRequest) (*sd.GetServiceResponse, error) {
	c := s.call(ctx)
	svc, err := s.readService(ctx, c, in.Id)
	if err != nil {
		return nil, err
	}
	out := svc.Service
	if out.InstanceCount, err = s.instanceCount(ctx, c.region, svc.Id); err != nil {
		return nil, err
	}
	return &sd.GetServiceResponse{Service: &out}, nil
}

// ListServices lists services, all or those of one namespace.
func (s *Service) ListServices(ctx context.Context, in *sd.ListServicesRequest) (*sd.ListServicesResponse, error) {
	c := s.call(ctx)
	var nsIDs []string
	for _, f := range in.Filters {
		if f.Condition != "" && f.Condition != sd.FilterConditionEq {
			return nil, invalidInput("Condition %s isn't supported for ListServices filters; use EQ.", f.Condition)
		}
		if err := checkValueCount(string(f.Name), sd.FilterConditionEq, f.Values); err != nil {
			return nil, err
		}
		switch f.Name {
		case sd.ServiceFilterNameNamespaceId:
			id, _ := s.resolveID(c, "namespace", f.Values[0])
			nsIDs = append(nsIDs, id)
		case sd.ServiceFilterNameResourceOwner:
			switch f.Values[0] {
			case "SELF":
			case "OTHER_ACCOUNTS":
				nsIDs = append(nsIDs, "") // services of no namespace: none
			default:
				return nil, invalidInput("RESOURCE_OWNER takes SELF or OTHER_ACCOUNTS, not %q.", f.Values[0])
			}
		default:
			return nil, invalidInput("Filter %q isn't supported.", f.Name)
		}
	}
	scope := "ListServices/" + c.region + "/" + hashOf(in.Filters)
	after, err := s.start(scope, in.NextToken)
	if err != nil {
		return nil, err
	}
	items, last, more, err := store.Scan(ctx, s.st, regionPrefix(c.region)+"services/", after, pageSize(in.MaxResults), func(kv store.KV) (sd.ServiceSummary, bool, error) {
		var svc ServiceRecord
		if err := kv.Decode(&svc); err != nil {
			return sd.ServiceSummary{}, false, err
		}
		for _, id := range nsIDs {
			if svc.NamespaceId != id {
				return sd.ServiceSummary{}, false, nil
			}
		}
		return sd.ServiceSummary{
			Id:                      svc.Id,
			Arn:                     svc.Arn,
			Name:                    svc.Name,
			Type:                    svc.Type,
			Description:             svc.Description,
			DnsConfig:               svc.DnsConfig,
			HealthCheckConfig:       svc.HealthCheckConfig,
			HealthCheckCustomConfig: svc.HealthCheckCustomConfig,
			CreateDate:              svc.CreateDate,
			CreatedByAccount:        svc.CreatedByAccount,
			ResourceOwner:           svc.ResourceOwner,
		}, true, nil
	})
	if err != nil {
		return nil, err
	}
	for i := range items {
		if items[i].InstanceCount, err = s.instanceCount(ctx, c.region, items[i].Id); err != nil {
			return nil, err
		}
	}
	return &sd.ListServicesResponse{Services: items, NextToken: s.tokens.Next(scope, last, more)}, nil
}

// UpdateService changes a service's description, record TTLs and health
// check. As in Cloud Map, a HealthCheckConfig the request omits is
// removed, and HealthCheckCustomConfig cannot change.
func (s *Service) UpdateService(ctx context.Context, in *sd.UpdateServiceRequest) (*sd.UpdateServiceResponse, error) {
	c := s.call(ctx)
	var opID string
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		svc, err := s.txService(tx, c, in.Id)
		if err != nil {
			return err
		}
		nsType, err := namespaceType(tx, c.region, svc)
		if err != nil {
			return err
		}
		if _, err := updatedService(nsType, svc, in.Service); err != nil {
			return err
		}
		opID, err = s.submit(tx, c, submission{
			typ:      sd.OperationTypeUpdateService,
			targets:  map[string]string{"SERVICE": svc.Id},
			nsID:     svc.NamespaceId,
			change:   &OperationChange{Service: in.Service},
			inflight: []string{svc.Id},
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return &sd.UpdateServiceResponse{OperationId: opID}, nil
}

// updatedService returns svc with change applied, or why it can't be.
func updatedService(nsType sd.NamespaceType, svc *ServiceRecord, change *sd.ServiceChange) (*ServiceRecord, error) {
	out := *svc
	if change == nil {
		return &out, nil
	}
	if change.Description != "" {
		out.Description = change.Description
	}
	if change.DnsConfig != nil {
		if nsType == sd.NamespaceTypeHttp {
			return nil, invalidInput("DnsConfig isn't supported for services in HTTP namespaces.")
		}
		d, err := checkDNSChange(svc.DnsConfig, change.DnsConfig)
		if err != nil {
			return nil, err
		}
		out.DnsConfig = d
	}
	out.HealthCheckConfig = nil
	if change.HealthCheckConfig != nil {
		if svc.HealthCheckCustomConfig != nil {
			return nil, invalidInput("Service %s has HealthCheckCustomConfig, which can't be replaced by HealthCheckConfig.", svc.Id)
		}
		h, err := checkHealthCheckConfig(nsType, out.DnsConfig, change.HealthCheckConfig)
		if err != nil {
			return nil, err
		}
		out.HealthCheckConfig = h
	}
	return &out, nil
}

// applyUpdateService is UPDATE_SERVICE's change.
func (s *Service) applyUpdateService(tx *store.Tx, region, id string, change *sd.ServiceChange) error {
	svc, err := getRecord[ServiceRecord](tx, ServiceKey(region, id))
	if err != nil {
		return err
	}
	if svc == nil {
		return failOp("INVALID_CHANGE_BATCH", "Service %s was deleted before it could be updated.", id)
	}
	nsType, err := namespaceType(tx, region, svc)
	if err != nil {
		return err
	}
	updated, err := updatedService(nsType, svc, change)
	if err != nil {
		return failOp("INVALID_CHANGE_BATCH", "%v", err)
	}
	return tx.Put(ServiceKey(region, id), updated)
}

// DeleteService deletes a service that has no instances. It is
// synchronous, as in Cloud Map.
func (s *Service) DeleteService(ctx context.Context, in *sd.DeleteServiceRequest) (*sd.DeleteServiceResponse, error) {
	c := s.call(ctx)
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		svc, err := s.txService(tx, c, in.Id)
		if err != nil {
			return err
		}
		insts, err := tx.List(InstancesPrefix(c.region, svc.Id))
		if err != nil {
			return err
		}
		if len(insts) > 0 {
			return resourceInUse("Service %s still has %d instances; deregister them first (`aws servicediscovery list-instances --service-id %s`).", svc.Id, len(insts), svc.Id)
		}
		if op, err := s.holder(tx, c.region, svc.Id); err != nil {
			return err
		} else if op != nil {
			return operationInProgress(op)
		}
		tx.Delete(ServiceKey(c.region, svc.Id))
		tx.Delete(RevisionKey(c.region, svc.Id))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &sd.DeleteServiceResponse{}, nil
}

// GetServiceAttributes returns a service's attributes.
func (s *Service) GetServiceAttributes(ctx context.Context, in *sd.GetServiceAttributesRequest) (*sd.GetServiceAttributesResponse, error) {
	c := s.call(ctx)
	svc, err := s.readService(ctx, c, in.ServiceId)
	if err != nil {
		return nil, err
	}
	attrs := svc.Attributes
	if attrs == nil {
		attrs = map[string]string{}
	}
	return &sd.GetServiceAttributesResponse{ServiceAttributes: &sd.ServiceAttributes{
		ServiceArn:    svc.Arn,
		Attributes:    attrs,
		ResourceOwner: svc.ResourceOwner,
	}}, nil
}

// UpdateServiceAttributes adds or replaces service attributes.
func (s *Service) UpdateServiceAttributes(ctx context.Context, in *sd.UpdateServiceAttributesRequest) (*sd.UpdateServiceAttributesResponse, error) {
	c := s.call(ctx)
	if len(in.Attributes) == 0 {
		return nil, invalidInput("Attributes must hold at least one attribute.")
	}
	for k := range in.Attributes {
		if k == "" {
			return nil, invalidInput("Attribute keys must not be empty.")
		}
	}
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		svc, err := s.txService(tx, c, in.ServiceId)
		if err != nil {
			return err
		}
		attrs := maps.Clone(svc.Attributes)
		if attrs == nil {
			attrs = map[string]string{}
		}
		maps.Copy(attrs, in.Attributes)
		if len(attrs) > maxServiceAttributes {
			return attributesLimitExceeded(len(attrs))
		}
		svc.Attributes = attrs
		return tx.Put(ServiceKey(c.region, svc.Id), svc)
	})
	if err != nil {
		return nil, err
	}
	return &sd.UpdateServiceAttributesResponse{}, nil
}

// DeleteServiceAttributes removes service attributes; keys it does not
// have are ignored.
func (s *Service) DeleteServiceAttributes(ctx context.Context, in *sd.DeleteServiceAttributesRequest) (*sd.DeleteServiceAttributesResponse, error) {
	c := s.call(ctx)
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		svc, err := s.txService(tx, c, in.ServiceId)
		if err != nil {
			return err
		}
		attrs := maps.Clone(svc.Attributes)
		for _, k := range in.Attributes {
			delete(attrs, k)
		}
		if len(attrs) == 0 {
			attrs = nil
		}
		svc.Attributes = attrs
		return tx.Put(ServiceKey(c.region, svc.Id), svc)
	})
	if err != nil {
		return nil, err
	}
	return &sd.DeleteServiceAttributesResponse{}, nil
}
