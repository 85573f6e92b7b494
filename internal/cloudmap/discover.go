package cloudmap

import (
	"context"
	"math/rand/v2"
	"time"

	sd "github.com/wharfhq/wharf/internal/api/servicediscovery"
)

// findService finds a service by its namespace's HTTP name and its own
// name, as DiscoverInstances addresses it. Names compare exactly, and
// case-insensitively for DNS namespaces when nothing matches exactly.
func (s *Service) findService(ctx context.Context, c call, owner, nsName, name string) (*NamespaceRecord, *ServiceRecord, error) {
	if owner != "" && owner != s.account {
		return nil, nil, namespaceNameNotFound(nsName)
	}
	cat, err := s.catalog(ctx, c, false)
	if err != nil {
		return nil, nil, err
	}
	ns, svc, err := cat.find(nsName, name)
	if err != nil {
		// A namespace or service created a moment ago: read afresh.
		if cat, err = s.catalog(ctx, c, true); err != nil {
			return nil, nil, err
		}
		ns, svc, err = cat.find(nsName, name)
	}
	return ns, svc, err
}

func (cat *catalog) find(nsName, name string) (*NamespaceRecord, *ServiceRecord, error) {
	var ns *NamespaceRecord
	for _, r := range cat.namespaces {
		hn := httpName(r)
		if hn == nsName {
			ns = r
			break
		}
		if ns == nil && r.Type != sd.NamespaceTypeHttp && canonicalDNSName(hn) == canonicalDNSName(nsName) {
			ns = r
		}
	}
	if ns == nil {
		return nil, nil, namespaceNameNotFound(nsName)
	}
	var svc *ServiceRecord
	for _, r := range cat.services {
		if r.NamespaceId != ns.Id {
			continue
		}
		if r.Name == name {
			svc = r
			break
		}
		if svc == nil && sameServiceName(ns.Type, r.Name, name) {
			svc = r
		}
	}
	if svc == nil {
		return nil, nil, serviceNameNotFound(name, nsName)
	}
	return ns, svc, nil
}

// catalogMaxAge is how long DiscoverInstances may name namespaces and
// services as they were read; names it does not find make it read again.
const catalogMaxAge = time.Second

// catalog is a region's namespaces and services as read at a time.
type catalog struct {
	at         time.Time
	namespaces []*NamespaceRecord
	services   []*ServiceRecord
}

func (s *Service) catalog(ctx context.Context, c call, fresh bool) (*catalog, error) {
	if v, ok := s.catalogs.Load(c.region); ok && !fresh && time.Since(v.(*catalog).at) < catalogMaxAge {
		return v.(*catalog), nil
	}
	cat := &catalog{at: time.Now()}
	kvs, err := s.st.List(ctx, regionPrefix(c.region)+"namespaces/")
	if err != nil {
		return nil, err
	}
	for _, kv := range kvs {
		r := new(NamespaceRecord)
		if err := kv.Decode(r); err != nil {
			return nil, err
		}
		cat.namespaces = append(cat.namespaces, r)
	}
	if kvs, err = s.st.List(ctx, regionPrefix(c.region)+"services/"); err != nil {
		return nil, err
	}
	for _, kv := range kvs {
		r := new(ServiceRecord)
		if err := kv.Decode(r); err != nil {
			return nil, err
		}
		cat.services = append(cat.services, r)
	}
	s.catalogs.Store(c.region, cat)
	return cat, nil
}

// discovered is a service's instances as decoded at a revision.
type discovered struct {
	rev   int64
	insts []*InstanceRecord
}

// instancesAt returns a service's instances, decoded once per revision of
// the service: the revision changes with every change that matters to
// discovery. Callers must not modify the records.
func (s *Service) instancesAt(ctx context.Context, c call, serviceID string, rev int64) ([]*InstanceRecord, error) {
	key := c.region + "/" + serviceID
	if d, ok := s.discovered.Load(key); ok && d.(*discovered).rev == rev {
		return d.(*discovered).insts, nil
	}
	kvs, err := s.st.List(ctx, InstancesPrefix(c.region, serviceID))
	if err != nil {
		return nil, err
	}
	insts := make([]*InstanceRecord, 0, len(kvs))
	for _, kv := range kvs {
		r := new(InstanceRecord)
		if err := kv.Decode(r); err != nil {
			return nil, err
		}
		insts = append(insts, r)
	}
	s.discovered.Store(key, &discovered{rev: rev, insts: insts})
	return insts, nil
}

func (s *Service) revision(ctx context.Context, c call, serviceID string) (int64, error) {
	var n int64
	_, err := s.st.Get(ctx, RevisionKey(c.region, serviceID), &n)
	return n, err
}

// DiscoverInstances returns a service's instances that have every query
// parameter as an attribute, preferring those that also have every
// optional parameter, filtered by health for services with health checks,
// in random order, at most MaxResults (default 100) of them.
func (s *Service) DiscoverInstances(ctx context.Context, in *sd.DiscoverInstancesRequest) (*sd.DiscoverInstancesResponse, error) {
	c := s.call(ctx)
	ns, svc, err := s.findService(ctx, c, in.OwnerAccount, in.NamespaceName, in.ServiceName)
	if err != nil {
		return nil, err
	}
	// Read the revision first: a change after it makes the next
	// DiscoverInstancesRevision differ, so clients never keep a stale list.
	rev, err := s.revision(ctx, c, svc.Id)
	if err != nil {
		return nil, err
	}
	all, err := s.instancesAt(ctx, c, svc.Id, rev)
	if err != nil {
		return nil, err
	}
	insts := make([]*InstanceRecord, 0, len(all))
	for _, r := range all {
		if hasAll(r.Attributes, in.QueryParameters) {
			insts = append(insts, r)
		}
	}
	if svc.HealthCheckConfig != nil || svc.HealthCheckCustomConfig != nil {
		insts = byHealth(insts, in.HealthStatus)
	}
	if len(in.OptionalParameters) > 0 {
		var preferred []*InstanceRecord
		for _, r := range insts {
			if hasAll(r.Attributes, in.OptionalParameters) {
				preferred = append(preferred, r)
			}
		}
		if len(preferred) > 0 {
			insts = preferred
		}
	}
	rand.Shuffle(len(insts), func(i, j int) { insts[i], insts[j] = insts[j], insts[i] })
	insts = insts[:min(len(insts), pageSize(in.MaxResults))]
	out := &sd.DiscoverInstancesResponse{Instances: make([]sd.HttpInstanceSummary, len(insts)), InstancesRevision: rev}
	for i, r := range insts {
		out.Instances[i] = sd.HttpInstanceSummary{
			InstanceId:    r.Id,
			NamespaceName: httpName(ns),
			ServiceName:   svc.Name,
			HealthStatus:  reportedHealth(svc, r),
			Attributes:    r.Attributes,
		}
	}
	return out, nil
}

// byHealth applies DiscoverInstances' HealthStatus filter; HEALTHY is the
// default.
func byHealth(insts []*InstanceRecord, filter sd.HealthStatusFilter) []*InstanceRecord {
	if filter == sd.HealthStatusFilterAll {
		return insts
	}
	want := sd.HealthStatusHealthy
	if filter == sd.HealthStatusFilterUnhealthy {
		want = sd.HealthStatusUnhealthy
	}
	var out []*InstanceRecord
	for _, r := range insts {
		if r.Health == want {
			out = append(out, r)
		}
	}
	if filter == sd.HealthStatusFilterHealthyOrElseAll && len(out) == 0 {
		return insts
	}
	return out
}

// hasAll reports whether attrs has every key of params with its value.
func hasAll(attrs, params map[string]string) bool {
	for k, v := range params {
		if a, ok := attrs[k]; !ok || a != v {
			return false
		}
	}
	return true
}

// DiscoverInstancesRevision returns a service's instance revision, which
// changes whenever the instances DiscoverInstances can return, their
// attributes or their health change, and only then.
func (s *Service) DiscoverInstancesRevision(ctx context.Context, in *sd.DiscoverInstancesRevisionRequest) (*sd.DiscoverInstancesRevisionResponse, error) {
	c := s.call(ctx)
	_, svc, err := s.findService(ctx, c, in.OwnerAccount, in.NamespaceName, in.ServiceName)
	if err != nil {
		return nil, err
	}
	rev, err := s.revision(ctx, c, svc.Id)
	if err != nil {
		return nil, err
	}
	return &sd.DiscoverInstancesRevisionResponse{InstancesRevision: rev}, nil
}
