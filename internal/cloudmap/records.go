// Package cloudmap implements AWS Cloud Map (the servicediscovery API) over
// the store: namespaces, services, instances, their health, and the
// asynchronous operations that change them. The DNS server and the ECS
// service registries read and write the records defined here.
package cloudmap

import (
	"strings"
	"time"

	sd "github.com/wharfhq/wharf/internal/api/servicediscovery"
)

// Store keys. Every Cloud Map object lives under sd/<region>/.
//
//	sd/<region>/namespaces/<ns-id>                   NamespaceRecord
//	sd/<region>/services/<srv-id>                    ServiceRecord
//	sd/<region>/instances/<srv-id>/<instance-id>     InstanceRecord
//	sd/<region>/revisions/<srv-id>                   int64, bumped with every change of the service's instances
//	sd/<region>/operations/<op-id>                   OperationRecord
//	sd/<region>/inflight/<target>                    InflightRecord: the operation in progress on a
//	                                                 namespace (<ns-id>), service (<srv-id>), instance
//	                                                 (<srv-id>/<instance-id>) or namespace name (names/<hash>)
//	sd/<region>/requests/<hash>                      RequestRecord: the operation a CreatorRequestId or
//	                                                 UpdaterRequestId started
const Prefix = "sd/"

func regionPrefix(region string) string { return Prefix + region + "/" }

// NamespaceKey is the store key of a namespace.
func NamespaceKey(region, id string) string { return regionPrefix(region) + "namespaces/" + id }

// ServiceKey is the store key of a service.
func ServiceKey(region, id string) string { return regionPrefix(region) + "services/" + id }

// InstancesPrefix is the store prefix of a service's instances.
func InstancesPrefix(region, serviceID string) string {
	return regionPrefix(region) + "instances/" + serviceID + "/"
}

// InstanceKey is the store key of an instance.
func InstanceKey(region, serviceID, id string) string { return InstancesPrefix(region, serviceID) + id }

// RevisionKey is the store key of a service's instance revision counter.
func RevisionKey(region, serviceID string) string {
	return regionPrefix(region) + "revisions/" + serviceID
}

// OperationKey is the store key of an operation.
func OperationKey(region, id string) string { return regionPrefix(region) + "operations/" + id }

// InflightKey is the store key naming the operation in progress on target.
func InflightKey(region, target string) string { return regionPrefix(region) + "inflight/" + target }

// RequestKey is the store key of an idempotent request, by the hash of its
// scope (operation, parent id and request id).
func RequestKey(region, hash string) string { return regionPrefix(region) + "requests/" + hash }

// ParseKey splits a store key under Prefix into its region, kind
// ("namespaces", "services", "instances", "revisions", "operations",
// "inflight", "requests") and the rest (an id, or serviceID/instanceID for
// instances).
func ParseKey(key string) (region, kind, rest string, ok bool) {
	parts := strings.SplitN(strings.TrimPrefix(key, Prefix), "/", 3)
	if !strings.HasPrefix(key, Prefix) || len(parts) != 3 {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// NamespaceRecord is a stored namespace.
type NamespaceRecord struct {
	sd.Namespace
	Tags []sd.Tag `json:"wharfTags,omitempty"`
	// Vpc is the VPC a DNS_PRIVATE namespace was created for.
	Vpc string `json:"wharfVpc,omitempty"`
}

// ServiceRecord is a stored service.
type ServiceRecord struct {
	sd.Service
	Tags []sd.Tag `json:"wharfTags,omitempty"`
	// Attributes are the service attributes of Get/UpdateServiceAttributes.
	Attributes map[string]string `json:"wharfAttributes,omitempty"`
}

// InstanceRecord is a stored instance with its health.
type InstanceRecord struct {
	sd.Instance
	ServiceID string `json:"wharfServiceId"`
	// Health is HEALTHY, UNHEALTHY or UNKNOWN: what DNS answers and
	// DiscoverInstances filter on. It comes from AWS_INIT_HEALTH_STATUS and
	// UpdateInstanceCustomHealthStatus (custom health), from the control
	// plane's health checks (HealthCheckConfig), or from the task's health
	// for instances ECS registers. Instances of services without health
	// checks are kept HEALTHY, since Cloud Map answers all of them (the
	// health checker restores it); the API reports them UNKNOWN, as Cloud
	// Map does.
	Health    sd.HealthStatus `json:"wharfHealth"`
	UpdatedAt time.Time       `json:"wharfUpdatedAt"`
	// ECSTask is the ARN of the task this instance stands for, when ECS
	// registered it.
	ECSTask string `json:"wharfEcsTask,omitempty"`
}

// OperationRecord is a stored asynchronous operation.
type OperationRecord struct {
	sd.Operation
	Region string `json:"wharfRegion"`
	// NamespaceID is the namespace the operation concerns, also for service
	// and instance operations (ListOperations' NAMESPACE_ID filter).
	NamespaceID string `json:"wharfNamespaceId,omitempty"`
	// Change is what the operation does when it runs.
	Change *OperationChange `json:"wharfChange,omitempty"`
	// Inflight lists the InflightKey targets the operation holds until it
	// ends.
	Inflight []string `json:"wharfInflight,omitempty"`
}

// OperationChange is the change an operation applies when it runs. Which
// member is set depends on the operation's type; DELETE_NAMESPACE and
// DEREGISTER_INSTANCE need only the operation's targets.
type OperationChange struct {
	// Namespace is the namespace CREATE_NAMESPACE creates.
	Namespace *NamespaceRecord `json:"namespace,omitempty"`
	// Description and SOATTL are what UPDATE_NAMESPACE changes.
	Description *string `json:"description,omitempty"`
	SOATTL      *int64  `json:"soaTtl,omitempty"`
	// Service is what UPDATE_SERVICE changes.
	Service *sd.ServiceChange `json:"service,omitempty"`
	// Instance is the instance REGISTER_INSTANCE creates or replaces.
	Instance *InstanceRecord `json:"instance,omitempty"`
}

// InflightRecord names the operation holding a target.
type InflightRecord struct {
	OperationID string `json:"operationId"`
}

// RequestRecord remembers the operation an idempotent request started.
type RequestRecord struct {
	OperationID string    `json:"operationId"`
	InputHash   string    `json:"inputHash"`
	At          time.Time `json:"at"`
}
