package cloudmap

import (
	"context"
	"slices"
	"strings"

	"github.com/wharfhq/wharf/internal/api"
	sd "github.com/wharfhq/wharf/internal/api/servicediscovery"
	"github.com/wharfhq/wharf/internal/store"
)

// A namespace name is unique within its scope: HTTP namespaces by name,
// public DNS namespaces by domain name, private DNS namespaces by domain
// name and VPC. Every namespace also has an HTTP name, the name
// DiscoverInstances finds it by, unique in the region: a DNS namespace
// whose name is already some namespace's HTTP name gets the name with a
// suffix, as Cloud Map adds a hash.

// nameScope is the scope in which a namespace's name must be unique.
func nameScope(typ sd.NamespaceType, name, vpc string) string {
	switch typ {
	case sd.NamespaceTypeDnsPrivate:
		return string(typ) + "/" + vpc + "/" + canonicalDNSName(name)
	case sd.NamespaceTypeDnsPublic:
		return string(typ) + "/" + canonicalDNSName(name)
	}
	return string(typ) + "/" + name
}

func httpName(ns *NamespaceRecord) string {
	if p := ns.Properties; p != nil && p.HttpProperties != nil {
		return p.HttpProperties.HttpName
	}
	return ns.Name
}

// namespaceRequest is a Create*Namespace request.
type namespaceRequest struct {
	typ                    sd.NamespaceType
	name, vpc, description string
	creatorRequestID       string
	soaTTL                 *int64
	tags                   []sd.Tag
}

// CreateHttpNamespace creates a namespace whose services are discovered
// through DiscoverInstances only.
func (s *Service) CreateHttpNamespace(ctx context.Context, in *sd.CreateHttpNamespaceRequest) (*sd.CreateHttpNamespaceResponse, error) {
	id, err := s.createNamespace(ctx, namespaceRequest{typ: sd.NamespaceTypeHttp, name: in.Name, description: in.Description, creatorRequestID: in.CreatorRequestId, tags: in.Tags})
	if err != nil {
		return nil, err
	}
	return &sd.CreateHttpNamespaceResponse{OperationId: id}, nil
}

// CreatePrivateDnsNamespace creates a DNS namespace for a VPC. Wharf has no
// VPCs: any Vpc value is accepted, and private namespaces of the same name
// coexist when their Vpc values differ.
func (s *Service) CreatePrivateDnsNamespace(ctx context.Context, in *sd.CreatePrivateDnsNamespaceRequest) (*sd.CreatePrivateDnsNamespaceResponse, error) {
	r := namespaceRequest{typ: sd.NamespaceTypeDnsPrivate, name: in.Name, vpc: in.Vpc, description: in.Description, creatorRequestID: in.CreatorRequestId, tags: in.Tags}
	if p := in.Properties; p != nil && p.DnsProperties != nil && p.DnsProperties.SOA != nil {
		r.soaTTL = ptr(p.DnsProperties.SOA.TTL)
	}
	id, err := s.createNamespace(ctx, r)
	if err != nil {
		return nil, err
	}
	return &sd.CreatePrivateDnsNamespaceResponse{OperationId: id}, nil
}

// CreatePublicDnsNamespace creates a public DNS namespace. Wharf's DNS
// server answers for it like for private ones; nothing is delegated.
func (s *Service) CreatePublicDnsNamespace(ctx context.Context, in *sd.CreatePublicDnsNamespaceRequest) (*sd.CreatePublicDnsNamespaceResponse, error) {
	r := namespaceRequest{typ: sd.NamespaceTypeDnsPublic, name: in.Name, description: in.Description, creatorRequestID: in.CreatorRequestId, tags: in.Tags}
	if p := in.Properties; p != nil && p.DnsProperties != nil && p.DnsProperties.SOA != nil {
		r.soaTTL = ptr(p.DnsProperties.SOA.TTL)
	}
	id, err := s.createNamespace(ctx, r)
	if err != nil {
		return nil, err
	}
	return &sd.CreatePublicDnsNamespaceResponse{OperationId: id}, nil
}

// hash identifies the request's input, to tell a retry from a reuse of its
// CreatorRequestId.
func (r namespaceRequest) hash() string {
	return hashOf(r.typ, r.name, r.vpc, r.description, r.soaTTL, r.tags)
}

func (s *Service) createNamespace(ctx context.Context, r namespaceRequest) (string, error) {
	c := s.call(ctx)
	if r.typ != sd.NamespaceTypeHttp && !checkDNSName(r.name) {
		return "", invalidInput("Namespace name %q is not a domain name: use dot-separated labels of letters, digits, hyphens and underscores.", r.name)
	}
	if err := checkTags(r.tags); err != nil {
		return "", err
	}
	if len(r.tags) > maxTags {
		return "", tooManyTags(r.name, len(r.tags))
	}
	scope := nameScope(r.typ, r.name, r.vpc)
	var opID string
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		nss, err := listNamespaces(tx, c.region)
		if err != nil {
			return err
		}
		for _, ns := range nss {
			if nameScope(ns.Type, ns.Name, ns.Vpc) == scope || r.typ == sd.NamespaceTypeHttp && httpName(ns) == r.name {
				if r.creatorRequestID != "" && ns.CreatorRequestId == r.creatorRequestID {
					// A retry of the request that created it: answer with
					// its operation when it is still remembered.
					rr, err := getRecord[RequestRecord](tx, RequestKey(c.region, hashOf("CreateNamespace", r.creatorRequestID)))
					if err != nil {
						return err
					}
					if rr != nil && rr.InputHash == r.hash() {
						opID = rr.OperationID
						return nil
					}
				}
				return namespaceAlreadyExists(ns)
			}
		}
		id := newNamespaceID()
		ns := &NamespaceRecord{
			Namespace: sd.Namespace{
				Id:               id,
				Arn:              s.arn(c, "namespace/"+id),
				Name:             r.name,
				Type:             r.typ,
				Description:      r.description,
				CreatorRequestId: r.creatorRequestID,
				CreateDate:       api.NewTime(c.now),
				ResourceOwner:    s.account,
				Properties:       &sd.NamespaceProperties{DnsProperties: &sd.DnsProperties{}, HttpProperties: &sd.HttpProperties{HttpName: r.name}},
			},
			Tags: r.tags,
			Vpc:  r.vpc,
		}
		if r.typ != sd.NamespaceTypeHttp {
			ttl := int64(defaultSOATTL)
			if r.soaTTL != nil {
				ttl = *r.soaTTL
			}
			ns.Properties.DnsProperties = &sd.DnsProperties{HostedZoneId: newHostedZoneID(), SOA: &sd.SOA{TTL: ttl}}
		}
		sub := submission{
			typ:      sd.OperationTypeCreateNamespace,
			targets:  map[string]string{"NAMESPACE": id},
			nsID:     id,
			change:   &OperationChange{Namespace: ns},
			inflight: []string{"names/" + hashOf(scope)},
		}
		if r.typ == sd.NamespaceTypeHttp {
			sub.inflight = append(sub.inflight, "names/"+hashOf("HTTP_NAME", r.name))
		}
		if r.creatorRequestID != "" {
			sub.request, sub.requestField, sub.requestID, sub.inputHash = hashOf("CreateNamespace", r.creatorRequestID), "CreatorRequestId", r.creatorRequestID, r.hash()
		}
		opID, err = s.submit(tx, c, sub)
		return err
	})
	return opID, err
}

// applyCreateNamespace creates ns, unless its name has been taken since it
// was submitted.
func (s *Service) applyCreateNamespace(tx *store.Tx, region string, ns *NamespaceRecord) error {
	if ns == nil {
		return failOp("INTERNAL_FAILURE", "The operation lost its namespace.")
	}
	nss, err := listNamespaces(tx, region)
	if err != nil {
		return err
	}
	taken := map[string]bool{}
	scope := nameScope(ns.Type, ns.Name, ns.Vpc)
	for _, other := range nss {
		if other.Id == ns.Id {
			return nil
		}
		if nameScope(other.Type, other.Name, other.Vpc) == scope || ns.Type == sd.NamespaceTypeHttp && httpName(other) == ns.Name {
			return failOp("CANNOT_CREATE_HOSTED_ZONE", "Namespace %s took the name %q first.", other.Id, ns.Name)
		}
		taken[httpName(other)] = true
	}
	hn := ns.Name
	if taken[hn] {
		hn = ns.Name + "-" + hashOf(ns.Id)[:8]
	}
	ns.Properties.HttpProperties = &sd.HttpProperties{HttpName: hn}
	return tx.Put(NamespaceKey(region, ns.Id), ns)
}

// listNamespaces reads a region's namespaces inside tx.
func listNamespaces(tx *store.Tx, region string) ([]*NamespaceRecord, error) {
	kvs, err := tx.List(regionPrefix(region) + "namespaces/")
	if err != nil {
		return nil, err
	}
	out := make([]*NamespaceRecord, 0, len(kvs))
	for _, kv := range kvs {
		var ns NamespaceRecord
		if err := kv.Decode(&ns); err != nil {
			return nil, err
		}
		out = append(out, &ns)
	}
	return out, nil
}

// servicesIn counts a namespace's services inside tx.
func servicesIn(tx *store.Tx, region, nsID string) (int, error) {
	svcs, err := listServices(tx, region)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, svc := range svcs {
		if svc.NamespaceId == nsID {
			n++
		}
	}
	return n, nil
}

// serviceCounts counts the services of every namespace of a region.
func (s *Service) serviceCounts(ctx context.Context, region string) (map[string]int32, error) {
	kvs, err := s.st.List(ctx, regionPrefix(region)+"services/")
	if err != nil {
		return nil, err
	}
	out := map[string]int32{}
	for _, kv := range kvs {
		var svc ServiceRecord
		if err := kv.Decode(&svc); err != nil {
			return nil, err
		}
		out[svc.NamespaceId]++
	}
	return out, nil
}

// GetNamespace describes a namespace.
func (s *Service) GetNamespace(ctx context.Context, in *sd.GetNamespaceRequest) (*sd.GetNamespaceResponse, error) {
	c := s.call(ctx)
	id, ok := s.resolveID(c, "namespace", in.Id)
	if !ok {
		return nil, namespaceNotFound(in.Id)
	}
	var ns NamespaceRecord
	found, err := s.st.Get(ctx, NamespaceKey(c.region, id), &ns)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, namespaceNotFound(in.Id)
	}
	counts, err := s.serviceCounts(ctx, c.region)
	if err != nil {
		return nil, err
	}
	out := ns.Namespace
	out.ServiceCount = counts[ns.Id]
	return &sd.GetNamespaceResponse{Namespace: &out}, nil
}

// ListNamespaces lists the namespaces matching every filter.
func (s *Service) ListNamespaces(ctx context.Context, in *sd.ListNamespacesRequest) (*sd.ListNamespacesResponse, error) {
	c := s.call(ctx)
	match, err := namespaceFilter(in.Filters)
	if err != nil {
		return nil, err
	}
	scope := "ListNamespaces/" + c.region + "/" + hashOf(in.Filters)
	after, err := s.start(scope, in.NextToken)
	if err != nil {
		return nil, err
	}
	counts, err := s.serviceCounts(ctx, c.region)
	if err != nil {
		return nil, err
	}
	items, last, more, err := store.Scan(ctx, s.st, regionPrefix(c.region)+"namespaces/", after, pageSize(in.MaxResults), func(kv store.KV) (sd.NamespaceSummary, bool, error) {
		var ns NamespaceRecord
		if err := kv.Decode(&ns); err != nil {
			return sd.NamespaceSummary{}, false, err
		}
		return sd.NamespaceSummary{
			Id:            ns.Id,
			Arn:           ns.Arn,
			Name:          ns.Name,
			Type:          ns.Type,
			Description:   ns.Description,
			CreateDate:    ns.CreateDate,
			Properties:    ns.Properties,
			ServiceCount:  counts[ns.Id],
			ResourceOwner: ns.ResourceOwner,
		}, match(&ns), nil
	})
	if err != nil {
		return nil, err
	}
	return &sd.ListNamespacesResponse{Namespaces: items, NextToken: s.tokens.Next(scope, last, more)}, nil
}

// namespaceFilter turns ListNamespaces filters into a predicate: TYPE,
// NAME and HTTP_NAME with EQ or BEGINS_WITH (TYPE also with IN), and
// RESOURCE_OWNER with EQ.
func namespaceFilter(filters []sd.NamespaceFilter) (func(*NamespaceRecord) bool, error) {
	var preds []func(*NamespaceRecord) bool
	for _, f := range filters {
		cond := f.Condition
		if cond == "" {
			cond = sd.FilterConditionEq
		}
		allowed := []sd.FilterCondition{sd.FilterConditionEq, sd.FilterConditionBeginsWith}
		switch f.Name {
		case sd.NamespaceFilterNameType:
			allowed = append(allowed, sd.FilterConditionIn)
		case sd.NamespaceFilterNameResourceOwner:
			allowed = []sd.FilterCondition{sd.FilterConditionEq}
		}
		if !slices.Contains(allowed, cond) {
			return nil, invalidInput("Condition %s isn't supported for the %s filter; use %s.", cond, f.Name, joinConditions(allowed))
		}
		if err := checkValueCount(string(f.Name), cond, f.Values); err != nil {
			return nil, err
		}
		values := f.Values
		test := func(v string) bool { return slices.Contains(values, v) }
		if cond == sd.FilterConditionBeginsWith {
			test = func(v string) bool { return strings.HasPrefix(v, values[0]) }
		}
		switch f.Name {
		case sd.NamespaceFilterNameType:
			if cond != sd.FilterConditionBeginsWith {
				for _, v := range values {
					if !slices.Contains(sd.NamespaceType("").Values(), v) {
						return nil, invalidInput("%q is not a namespace type; use HTTP, DNS_PUBLIC or DNS_PRIVATE.", v)
					}
				}
			}
			preds = append(preds, func(ns *NamespaceRecord) bool { return test(string(ns.Type)) })
		case sd.NamespaceFilterNameName:
			preds = append(preds, func(ns *NamespaceRecord) bool { return test(ns.Name) })
		case sd.NamespaceFilterNameHttpName:
			preds = append(preds, func(ns *NamespaceRecord) bool { return test(httpName(ns)) })
		case sd.NamespaceFilterNameResourceOwner:
			switch values[0] {
			case "SELF":
			case "OTHER_ACCOUNTS":
				preds = append(preds, func(*NamespaceRecord) bool { return false })
			default:
				return nil, invalidInput("RESOURCE_OWNER takes SELF or OTHER_ACCOUNTS, not %q.", values[0])
			}
		default:
			return nil, invalidInput("Filter %q isn't supported.", f.Name)
		}
	}
	return func(ns *NamespaceRecord) bool {
		for _, p := range preds {
			if !p(ns) {
				return false
			}
		}
		return true
	}, nil
}

// UpdateHttpNamespace changes an HTTP namespace's description.
func (s *Service) UpdateHttpNamespace(ctx context.Context, in *sd.UpdateHttpNamespaceRequest) (*sd.UpdateHttpNamespaceResponse, error) {
	if in.Namespace == nil {
		return nil, invalidInput("Namespace is required: the change to make.")
	}
	id, err := s.updateNamespace(ctx, sd.NamespaceTypeHttp, in.Id, in.UpdaterRequestId, ptr(in.Namespace.Description), nil)
	if err != nil {
		return nil, err
	}
	return &sd.UpdateHttpNamespaceResponse{OperationId: id}, nil
}

// UpdatePrivateDnsNamespace changes a private DNS namespace's description
// and SOA TTL.
func (s *Service) UpdatePrivateDnsNamespace(ctx context.Context, in *sd.UpdatePrivateDnsNamespaceRequest) (*sd.UpdatePrivateDnsNamespaceResponse, error) {
	var desc *string
	var ttl *int64
	if ch := in.Namespace; ch != nil {
		if ch.Description != "" {
			desc = ptr(ch.Description)
		}
		if p := ch.Properties; p != nil && p.DnsProperties != nil && p.DnsProperties.SOA != nil {
			ttl = ptr(p.DnsProperties.SOA.TTL)
		}
	}
	id, err := s.updateNamespace(ctx, sd.NamespaceTypeDnsPrivate, in.Id, in.UpdaterRequestId, desc, ttl)
	if err != nil {
		return nil, err
	}
	return &sd.UpdatePrivateDnsNamespaceResponse{OperationId: id}, nil
}

// UpdatePublicDnsNamespace changes a public DNS namespace's description and
// SOA TTL.
func (s *Service) UpdatePublicDnsNamespace(ctx context.Context, in *sd.UpdatePublicDnsNamespaceRequest) (*sd.UpdatePublicDnsNamespaceResponse, error) {
	var desc *string
	var ttl *int64
	if ch := in.Namespace; ch != nil {
		if ch.Description != "" {
			desc = ptr(ch.Description)
		}
		if p := ch.Properties; p != nil && p.DnsProperties != nil && p.DnsProperties.SOA != nil {
			ttl = ptr(p.DnsProperties.SOA.TTL)
		}
	}
	id, err := s.updateNamespace(ctx, sd.NamespaceTypeDnsPublic, in.Id, in.UpdaterRequestId, desc, ttl)
	if err != nil {
		return nil, err
	}
	return &sd.UpdatePublicDnsNamespaceResponse{OperationId: id}, nil
}

func (s *Service) updateNamespace(ctx context.Context, typ sd.NamespaceType, ref, updaterRequestID string, desc *string, soaTTL *int64) (string, error) {
	c := s.call(ctx)
	id, ok := s.resolveID(c, "namespace", ref)
	if !ok {
		return "", namespaceNotFound(ref)
	}
	if desc == nil && soaTTL == nil {
		return "", invalidInput("Nothing to update: give a Description or an SOA TTL.")
	}
	var opID string
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		ns, err := getRecord[NamespaceRecord](tx, NamespaceKey(c.region, id))
		if err != nil {
			return err
		}
		if ns == nil {
			return namespaceNotFound(ref)
		}
		if ns.Type != typ {
			return invalidInput("Namespace %s is a %s namespace; update it with the operation for that type, not the one for %s namespaces.", id, ns.Type, typ)
		}
		sub := submission{
			typ:      sd.OperationTypeUpdateNamespace,
			targets:  map[string]string{"NAMESPACE": id},
			nsID:     id,
			change:   &OperationChange{Description: desc, SOATTL: soaTTL},
			inflight: []string{id},
		}
		if updaterRequestID != "" {
			sub.request, sub.requestField, sub.requestID, sub.inputHash = hashOf("UpdateNamespace", id, updaterRequestID), "UpdaterRequestId", updaterRequestID, hashOf(desc, soaTTL)
		}
		opID, err = s.submit(tx, c, sub)
		return err
	})
	return opID, err
}

// DeleteNamespace deletes a namespace that has no services.
func (s *Service) DeleteNamespace(ctx context.Context, in *sd.DeleteNamespaceRequest) (*sd.DeleteNamespaceResponse, error) {
	c := s.call(ctx)
	id, ok := s.resolveID(c, "namespace", in.Id)
	if !ok {
		return nil, namespaceNotFound(in.Id)
	}
	var opID string
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		ns, err := getRecord[NamespaceRecord](tx, NamespaceKey(c.region, id))
		if err != nil {
			return err
		}
		if ns == nil {
			return namespaceNotFound(in.Id)
		}
		n, err := servicesIn(tx, c.region, id)
		if err != nil {
			return err
		}
		if n > 0 {
			return resourceInUse("Namespace %s still has %d services; delete them first (`aws servicediscovery list-services --filters Name=NAMESPACE_ID,Values=%s`).", id, n, id)
		}
		opID, err = s.submit(tx, c, submission{
			typ:      sd.OperationTypeDeleteNamespace,
			targets:  map[string]string{"NAMESPACE": id},
			nsID:     id,
			inflight: []string{id},
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return &sd.DeleteNamespaceResponse{OperationId: opID}, nil
}
