package cloudmap

import (
	"encoding/json"
	"testing"

	"github.com/wharfhq/wharf/internal/api"
	sd "github.com/wharfhq/wharf/internal/api/servicediscovery"
)

// FuzzRequests feeds arbitrary request bodies through what the endpoint
// does before touching the store: decoding, the defaults for absent
// members, the model's validation, and Cloud Map's own checks of filters,
// service configurations and instance attributes. Nothing may panic, and
// an accepted service configuration must obey Cloud Map's record rules.
func FuzzRequests(f *testing.F) {
	for _, seed := range []string{
		`{}`,
		`{"MaxResults":1,"Filters":[{"Name":"TYPE","Condition":"IN","Values":["HTTP","DNS_PUBLIC"]}]}`,
		`{"Filters":[{"Name":"UPDATE_DATE","Condition":"BETWEEN","Values":["0","1e10"]}]}`,
		`{"Name":"web","NamespaceId":"ns-1","DnsConfig":{"RoutingPolicy":"WEIGHTED","DnsRecords":[{"Type":"CNAME","TTL":60}]}}`,
		`{"Name":"web","DnsConfig":{"DnsRecords":[{"Type":"A","TTL":60},{"Type":"SRV","TTL":1}]},"HealthCheckConfig":{"Type":"HTTP","ResourcePath":"/h"}}`,
		`{"Name":"web","HealthCheckCustomConfig":{}}`,
		`{"Id":"srv-1","Service":{"DnsConfig":{"DnsRecords":[{"Type":"A","TTL":5}]},"HealthCheckConfig":{"Type":"TCP"}}}`,
		`{"ServiceId":"srv-1","InstanceId":"i","Attributes":{"AWS_INSTANCE_IPV4":"10.0.0.1","AWS_INSTANCE_PORT":"80","AWS_INIT_HEALTH_STATUS":"UNHEALTHY"}}`,
		`{"ServiceId":"srv-1","InstanceId":"i","Attributes":{"AWS_ALIAS_DNS_NAME":"lb.example.com","AWS_EC2_INSTANCE_ID":"i-1"}}`,
		`{"NamespaceName":"shop","ServiceName":"web","HealthStatus":"HEALTHY_OR_ELSE_ALL","QueryParameters":{"a":"b"}}`,
	} {
		f.Add([]byte(seed))
	}
	nsTypes := []sd.NamespaceType{sd.NamespaceTypeHttp, sd.NamespaceTypeDnsPrivate, sd.NamespaceTypeDnsPublic}
	sample := &OperationRecord{Operation: sd.Operation{Id: "op", Type: sd.OperationTypeRegisterInstance, Status: sd.OperationStatusSuccess, UpdateDate: api.Now(), Targets: map[string]string{"SERVICE": "srv-1"}}}
	f.Fuzz(func(t *testing.T, body []byte) {
		var raw map[string]json.RawMessage
		if json.Unmarshal(body, &raw) != nil {
			return
		}
		var services []*ServiceRecord
		for _, v := range []any{
			new(sd.ListNamespacesRequest), new(sd.ListOperationsRequest), new(sd.CreateServiceRequest),
			new(sd.UpdateServiceRequest), new(sd.RegisterInstanceRequest), new(sd.DiscoverInstancesRequest),
		} {
			if json.Unmarshal(body, v) != nil {
				continue
			}
			applyDefaults(v, raw)
			if v.(interface{ Validate() error }).Validate() != nil {
				continue
			}
			switch in := v.(type) {
			case *sd.ListNamespacesRequest:
				if match, err := namespaceFilter(in.Filters); err == nil {
					match(&NamespaceRecord{Namespace: sd.Namespace{Name: "n", Type: sd.NamespaceTypeHttp}})
				}
			case *sd.ListOperationsRequest:
				if match, err := operationFilter(in.Filters); err == nil {
					match(sample)
				}
			case *sd.CreateServiceRequest:
				for _, nsType := range nsTypes {
					cfg, err := checkServiceConfig(nsType, "ns-1", in.Type, in.DnsConfig, in.HealthCheckConfig, in.HealthCheckCustomConfig)
					if err != nil {
						continue
					}
					checkAccepted(t, nsType, cfg)
					services = append(services, &ServiceRecord{Service: sd.Service{Id: "srv-1", Type: cfg.typ, DnsConfig: cfg.dns, HealthCheckConfig: cfg.health, HealthCheckCustomConfig: cfg.custom}})
				}
			case *sd.UpdateServiceRequest:
				for _, svc := range services {
					for _, nsType := range nsTypes {
						updatedService(nsType, svc, in.Service)
					}
				}
			case *sd.RegisterInstanceRequest:
				for _, svc := range services {
					for _, nsType := range nsTypes {
						if checkInstanceAttributes(svc, nsType, in.Attributes) == nil {
							initialHealth(svc, nil, in.Attributes)
						}
					}
				}
			case *sd.DiscoverInstancesRequest:
				r := &InstanceRecord{Instance: sd.Instance{Attributes: in.QueryParameters}, Health: sd.HealthStatusHealthy}
				if !hasAll(r.Attributes, in.QueryParameters) {
					t.Fatal("an instance does not match its own attributes")
				}
				byHealth([]*InstanceRecord{r}, in.HealthStatus)
			}
		}
	})
}

// checkAccepted checks the rules an accepted service configuration obeys.
func checkAccepted(t *testing.T, nsType sd.NamespaceType, cfg serviceConfig) {
	t.Helper()
	if cfg.health != nil && cfg.custom != nil {
		t.Fatal("both health checks accepted")
	}
	if cfg.health != nil && nsType == sd.NamespaceTypeDnsPrivate {
		t.Fatal("HealthCheckConfig accepted in a private namespace")
	}
	if nsType == sd.NamespaceTypeHttp && cfg.dns != nil {
		t.Fatal("DNS records accepted in an HTTP namespace")
	}
	if cfg.custom != nil && cfg.custom.FailureThreshold != 1 {
		t.Fatalf("custom FailureThreshold %d", cfg.custom.FailureThreshold)
	}
	if cfg.dns == nil {
		return
	}
	if len(cfg.dns.DnsRecords) == 0 {
		t.Fatal("a DNS service without records accepted")
	}
	if hasRecord(cfg.dns, sd.RecordTypeCname) && (len(cfg.dns.DnsRecords) != 1 || cfg.dns.RoutingPolicy != sd.RoutingPolicyWeighted || cfg.health != nil) {
		t.Fatalf("CNAME accepted in %+v with health check %v", cfg.dns, cfg.health)
	}
}
