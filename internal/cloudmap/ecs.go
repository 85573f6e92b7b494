package cloudmap

import (
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/wharfhq/wharf/internal/api"
	sd "github.com/wharfhq/wharf/internal/api/servicediscovery"
	"github.com/wharfhq/wharf/internal/store"
)

// ECS's Service Connect creates namespaces and services as a side effect
// of CreateCluster and CreateService, at once rather than through
// asynchronous operations. These helpers do it inside ECS's transactions.

// FindNamespace finds a namespace by ARN, id or name inside tx; nil when
// there is none.
func FindNamespace(tx *store.Tx, region, ref string) (*NamespaceRecord, error) {
	if i := strings.LastIndex(ref, "namespace/"); strings.HasPrefix(ref, "arn:") && i >= 0 {
		ref = ref[i+len("namespace/"):]
	}
	if strings.HasPrefix(ref, "ns-") {
		if ns, err := getRecord[NamespaceRecord](tx, NamespaceKey(region, ref)); err != nil || ns != nil {
			return ns, err
		}
	}
	nss, err := listNamespaces(tx, region)
	if err != nil {
		return nil, err
	}
	for _, ns := range nss {
		if ns.Name == ref || httpName(ns) == ref {
			return ns, nil
		}
	}
	return nil, nil
}

// EnsureHTTPNamespace returns the namespace ref names, creating an HTTP
// namespace of that name when there is none and ref is a name.
func EnsureHTTPNamespace(tx *store.Tx, region, account, ref string, now time.Time) (*NamespaceRecord, error) {
	ns, err := FindNamespace(tx, region, ref)
	if err != nil || ns != nil {
		return ns, err
	}
	if strings.HasPrefix(ref, "arn:") || strings.HasPrefix(ref, "ns-") {
		return nil, fmt.Errorf("%w: namespace %s", errNoSuchNamespace, ref)
	}
	if len(ref) == 0 || len(ref) > 1024 || strings.ContainsAny(ref, " \t\n") {
		return nil, fmt.Errorf("%w: %q is not a namespace name", errNoSuchNamespace, ref)
	}
	id := newNamespaceID()
	ns = &NamespaceRecord{Namespace: sd.Namespace{
		Id:            id,
		Arn:           "arn:aws:servicediscovery:" + region + ":" + account + ":namespace/" + id,
		Name:          ref,
		Type:          sd.NamespaceTypeHttp,
		Description:   "Created by Amazon ECS Service Connect",
		CreateDate:    api.NewTime(now),
		ResourceOwner: account,
		Properties:    &sd.NamespaceProperties{DnsProperties: &sd.DnsProperties{}, HttpProperties: &sd.HttpProperties{HttpName: ref}},
	}}
	if err := store.MarkRegion(tx, region); err != nil {
		return nil, err
	}
	return ns, tx.Put(NamespaceKey(region, id), ns)
}

// errNoSuchNamespace is wrapped by EnsureHTTPNamespace for references it
// cannot create.
var errNoSuchNamespace = fmt.Errorf("no such Cloud Map namespace")

// IsNoSuchNamespace reports the error EnsureHTTPNamespace returns for a
// namespace ARN or id that does not exist.
func IsNoSuchNamespace(err error) bool {
	return err != nil && strings.Contains(err.Error(), errNoSuchNamespace.Error())
}

// EnsureService returns the service of a namespace named name, creating
// an HTTP service when there is none, and sets its attributes to attrs.
func EnsureService(tx *store.Tx, region, account string, ns *NamespaceRecord, name string, attrs map[string]string, now time.Time) (*ServiceRecord, error) {
	svcs, err := listServices(tx, region)
	if err != nil {
		return nil, err
	}
	for _, svc := range svcs {
		if svc.NamespaceId == ns.Id && sameServiceName(ns.Type, svc.Name, name) {
			if maps.Equal(svc.Attributes, attrs) {
				return svc, nil
			}
			svc.Attributes = attrs
			return svc, tx.Put(ServiceKey(region, svc.Id), svc)
		}
	}
	id := newServiceID()
	typ := sd.ServiceTypeHttp
	if ns.Type != sd.NamespaceTypeHttp {
		typ = sd.ServiceTypeDnsHttp
	}
	svc := &ServiceRecord{
		Service: sd.Service{
			Id:               id,
			Arn:              "arn:aws:servicediscovery:" + region + ":" + account + ":service/" + id,
			Name:             name,
			NamespaceId:      ns.Id,
			Description:      "Created by Amazon ECS Service Connect",
			Type:             typ,
			CreateDate:       api.NewTime(now),
			CreatedByAccount: account,
			ResourceOwner:    account,
		},
		Attributes: attrs,
	}
	return svc, tx.Put(ServiceKey(region, id), svc)
}

// ServicesOf returns the services of a namespace inside tx.
func ServicesOf(tx *store.Tx, region, nsID string) ([]*ServiceRecord, error) {
	svcs, err := listServices(tx, region)
	if err != nil {
		return nil, err
	}
	var out []*ServiceRecord
	for _, svc := range svcs {
		if svc.NamespaceId == nsID {
			out = append(out, svc)
		}
	}
	return out, nil
}

// InstancesOf returns the instances of a service inside tx.
func InstancesOf(tx *store.Tx, region, serviceID string) ([]*InstanceRecord, error) {
	kvs, err := tx.List(InstancesPrefix(region, serviceID))
	if err != nil {
		return nil, err
	}
	out := make([]*InstanceRecord, 0, len(kvs))
	for _, kv := range kvs {
		r := new(InstanceRecord)
		if err := kv.Decode(r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}
