package cloudmap

import (
	"context"
	"encoding/json"

	"github.com/wharfhq/wharf/internal/api"
	sd "github.com/wharfhq/wharf/internal/api/servicediscovery"
)

// Operations returns the operation table to serve s with: the generated
// servicediscovery.Operations, adjusted for two things the generated
// shapes get wrong for Cloud Map.
//
// The servicediscovery model leaves its optional numbers unboxed, so the
// generated types hold MaxResults and FailureThreshold as plain integers
// and validation rejects their absence as a value below the minimum. Here
// the members a request leaves out get Cloud Map's defaults before
// validation: MaxResults 100, HealthCheckConfig.FailureThreshold 3 and
// HealthCheckCustomConfig.FailureThreshold 1 (the only value it has). An
// explicit 0 still fails validation, as in Cloud Map.
//
// List members of outputs are sent even when empty (`"Instances": []`), as
// Cloud Map does, which the generated omitempty tags would drop.
func Operations(s *Service) map[string]api.Operation {
	ops := sd.Operations(s)
	for name, op := range ops {
		inner := op.Invoke
		lists := outputLists[name]
		op.Invoke = func(ctx context.Context, decode func(any) error) (any, error) {
			var raw map[string]json.RawMessage
			if err := decode(&raw); err != nil {
				return nil, err
			}
			out, err := inner(ctx, func(v any) error {
				if err := decode(v); err != nil {
					return err
				}
				applyDefaults(v, raw)
				return nil
			})
			if err != nil || len(lists) == 0 {
				return out, err
			}
			return withLists{v: out, lists: lists}, nil
		}
		ops[name] = op
	}
	return ops
}

// outputLists names the list and map members each output always carries.
var outputLists = map[string][]string{
	"DiscoverInstances":        {"Instances"},
	"GetInstancesHealthStatus": {"Status"},
	"ListInstances":            {"Instances"},
	"ListNamespaces":           {"Namespaces"},
	"ListOperations":           {"Operations"},
	"ListServices":             {"Services"},
	"ListTagsForResource":      {"Tags"},
}

// present reports whether a JSON object member was given (null is absence).
func present(raw map[string]json.RawMessage, name string) bool {
	v, ok := raw[name]
	return ok && string(v) != "null"
}

// member decodes an object member's members, nil when it is absent.
func member(raw map[string]json.RawMessage, name string) map[string]json.RawMessage {
	if !present(raw, name) {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw[name], &m) != nil {
		return nil
	}
	return m
}

// applyDefaults gives the optional numbers a request left out Cloud Map's
// defaults; raw is the request's JSON object.
func applyDefaults(v any, raw map[string]json.RawMessage) {
	maxResults := func(p *int32) {
		if !present(raw, "MaxResults") {
			*p = defaultPage
		}
	}
	healthCheck := func(hc *sd.HealthCheckConfig, raw map[string]json.RawMessage) {
		if hc != nil && !present(raw, "FailureThreshold") {
			hc.FailureThreshold = defaultFailures
		}
	}
	switch in := v.(type) {
	case *sd.DiscoverInstancesRequest:
		maxResults(&in.MaxResults)
	case *sd.GetInstancesHealthStatusRequest:
		maxResults(&in.MaxResults)
	case *sd.ListInstancesRequest:
		maxResults(&in.MaxResults)
	case *sd.ListNamespacesRequest:
		maxResults(&in.MaxResults)
	case *sd.ListOperationsRequest:
		maxResults(&in.MaxResults)
	case *sd.ListServicesRequest:
		maxResults(&in.MaxResults)
	case *sd.CreateServiceRequest:
		healthCheck(in.HealthCheckConfig, member(raw, "HealthCheckConfig"))
		if in.HealthCheckCustomConfig != nil && !present(member(raw, "HealthCheckCustomConfig"), "FailureThreshold") {
			in.HealthCheckCustomConfig.FailureThreshold = 1
		}
	case *sd.UpdateServiceRequest:
		if in.Service != nil {
			healthCheck(in.Service.HealthCheckConfig, member(member(raw, "Service"), "HealthCheckConfig"))
		}
	}
}

// withLists encodes v with the named members present even when empty.
type withLists struct {
	v     any
	lists []string
}

func (w withLists) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(w.v)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for _, k := range w.lists {
		if _, ok := m[k]; !ok {
			if k == "Status" {
				m[k] = json.RawMessage("{}")
			} else {
				m[k] = json.RawMessage("[]")
			}
		}
	}
	return json.Marshal(m)
}
