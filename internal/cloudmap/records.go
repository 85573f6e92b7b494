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
func RevisionKey(region, serviceID string) string { return regionPrefix(region) + "revisions/" + serviceID }

// OperationKey is the store key of an operation.
func OperationKey(region, id string) string { return regionPrefix(region) + "operations/" + id }

// ParseKey splits a store key under Prefix into its region, kind
// ("namespaces", "services", "instances", "revisions", "operations") and
// the rest (an id, or serviceID/instanceID for instances).
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
	// for instances ECS registers.
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
}
