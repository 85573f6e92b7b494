package cloudmap

import (
	"fmt"
	"net/http"

	"github.com/wharfhq/wharf/internal/api"
)

// Errors as Cloud Map sends them: the codes of the servicediscovery model,
// with the extra members some of its error shapes carry.

func invalidInput(format string, args ...any) error {
	return api.ClientError("InvalidInput", fmt.Sprintf(format, args...))
}

func withFields(code, msg string, fields map[string]any) *api.Error {
	for k, v := range fields {
		if v == "" {
			delete(fields, k)
		}
	}
	return &api.Error{Status: http.StatusBadRequest, Code: code, Message: msg, Fields: fields}
}

func namespaceNotFound(id string) error {
	return api.ClientError("NamespaceNotFound", fmt.Sprintf("Namespace not found: no namespace %q exists in this account and region; list them with `aws servicediscovery list-namespaces`.", id))
}

func namespaceNameNotFound(name string) error {
	return api.ClientError("NamespaceNotFound", fmt.Sprintf("Namespace not found: no namespace has the HTTP name %q; list them with `aws servicediscovery list-namespaces`.", name))
}

func serviceNotFound(id string) error {
	return api.ClientError("ServiceNotFound", fmt.Sprintf("Service not found: no service %q exists in this account and region; list them with `aws servicediscovery list-services`.", id))
}

func serviceNameNotFound(name, namespace string) error {
	return api.ClientError("ServiceNotFound", fmt.Sprintf("Service not found: namespace %q has no service named %q; list its services with `aws servicediscovery list-services`.", namespace, name))
}

func instanceNotFound(serviceID, id string) error {
	return api.ClientError("InstanceNotFound", fmt.Sprintf("Instance not found: service %s has no instance %q; list them with `aws servicediscovery list-instances --service-id %s`.", serviceID, id, serviceID))
}

func operationNotFound(id string) error {
	return api.ClientError("OperationNotFound", fmt.Sprintf("Operation not found: no operation %q exists (finished operations are kept for a day).", id))
}

func namespaceAlreadyExists(ns *NamespaceRecord) error {
	return withFields("NamespaceAlreadyExists",
		fmt.Sprintf("Namespace already exists: %s namespace %q is %s; delete it or choose another name.", ns.Type, ns.Name, ns.Id),
		map[string]any{"CreatorRequestId": ns.CreatorRequestId, "NamespaceId": ns.Id})
}

func serviceAlreadyExists(svc *ServiceRecord) error {
	return withFields("ServiceAlreadyExists",
		fmt.Sprintf("Service already exists: the namespace already has service %q (%s); delete it or choose another name.", svc.Name, svc.Id),
		map[string]any{"CreatorRequestId": svc.CreatorRequestId, "ServiceId": svc.Id, "ServiceArn": svc.Arn})
}

// operationInProgress is DuplicateRequest for a target another operation
// holds.
func operationInProgress(op *OperationRecord) error {
	return withFields("DuplicateRequest",
		fmt.Sprintf("Another operation of type %s and id %s is in progress; wait until `aws servicediscovery get-operation --operation-id %s` reports SUCCESS or FAIL.", op.Type, op.Id, op.Id),
		map[string]any{"DuplicateOperationId": op.Id})
}

// requestReused is DuplicateRequest for a request id used before with other
// input.
func requestReused(field, id, opID string) error {
	return withFields("DuplicateRequest",
		fmt.Sprintf("The %s %q was already used for a different request (operation %s); use a new %s for each request.", field, id, opID, field),
		map[string]any{"DuplicateOperationId": opID})
}

func resourceInUse(format string, args ...any) error {
	return api.ClientError("ResourceInUse", fmt.Sprintf(format, args...))
}

func resourceNotFound(arn string) error {
	return api.ClientError("ResourceNotFoundException", fmt.Sprintf("The resource %s can't be found; check the ARN with `aws servicediscovery list-namespaces` or `list-services`.", arn))
}

func customHealthNotFound(serviceID string) error {
	return api.ClientError("CustomHealthNotFound", fmt.Sprintf("The health check for instances of service %s isn't a custom health check; only services created with HealthCheckCustomConfig take UpdateInstanceCustomHealthStatus.", serviceID))
}

func tooManyTags(resource string, n int) error {
	return withFields("TooManyTagsException",
		fmt.Sprintf("A resource can have at most %d tags; this request would give %s %d.", maxTags, resource, n),
		map[string]any{"ResourceName": resource})
}

func attributesLimitExceeded(n int) error {
	return api.ClientError("ServiceAttributesLimitExceededException",
		fmt.Sprintf("A service can have at most %d attributes; this request would give it %d. Delete some with `aws servicediscovery delete-service-attributes`.", maxServiceAttributes, n))
}
