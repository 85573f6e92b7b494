package cloudmap

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wharfhq/wharf/internal/api"
	sd "github.com/wharfhq/wharf/internal/api/servicediscovery"
)

// wantInvalid checks err: nil when msg is empty, else InvalidInput whose
// message contains msg.
func wantInvalid(t *testing.T, err error, msg string) {
	t.Helper()
	if msg == "" {
		if err != nil {
			t.Fatalf("unexpected error %v", err)
		}
		return
	}
	var e *api.Error
	if !errors.As(err, &e) || e.Code != "InvalidInput" {
		t.Fatalf("got %v, want InvalidInput", err)
	}
	if !strings.Contains(e.Message, msg) {
		t.Fatalf("message %q does not contain %q", e.Message, msg)
	}
}

func records(ts ...sd.RecordType) []sd.DnsRecord {
	var out []sd.DnsRecord
	for _, rt := range ts {
		out = append(out, sd.DnsRecord{Type: rt, TTL: 60})
	}
	return out
}

func TestCheckServiceConfig(t *testing.T) {
	tcp := &sd.HealthCheckConfig{Type: sd.HealthCheckTypeTcp, FailureThreshold: 2}
	cases := []struct {
		name   string
		nsType sd.NamespaceType
		typ    sd.ServiceTypeOption
		dns    *sd.DnsConfig
		hc     *sd.HealthCheckConfig
		custom *sd.HealthCheckCustomConfig
		want   sd.ServiceType
		msg    string
	}{
		{name: "HTTP namespace", nsType: sd.NamespaceTypeHttp, want: sd.ServiceTypeHttp},
		{name: "HTTP namespace with a health check", nsType: sd.NamespaceTypeHttp, hc: tcp, want: sd.ServiceTypeHttp},
		{name: "DnsConfig in an HTTP namespace", nsType: sd.NamespaceTypeHttp, dns: &sd.DnsConfig{DnsRecords: records(sd.RecordTypeA)}, msg: "HTTP namespaces"},
		{name: "A", nsType: sd.NamespaceTypeDnsPrivate, dns: &sd.DnsConfig{DnsRecords: records(sd.RecordTypeA)}, want: sd.ServiceTypeDnsHttp},
		{name: "A AAAA SRV", nsType: sd.NamespaceTypeDnsPrivate, dns: &sd.DnsConfig{DnsRecords: records(sd.RecordTypeA, sd.RecordTypeAaaa, sd.RecordTypeSrv)}, want: sd.ServiceTypeDnsHttp},
		{name: "SRV alone", nsType: sd.NamespaceTypeDnsPublic, dns: &sd.DnsConfig{DnsRecords: records(sd.RecordTypeSrv)}, want: sd.ServiceTypeDnsHttp},
		{name: "CNAME weighted", nsType: sd.NamespaceTypeDnsPrivate, dns: &sd.DnsConfig{RoutingPolicy: sd.RoutingPolicyWeighted, DnsRecords: records(sd.RecordTypeCname)}, want: sd.ServiceTypeDnsHttp},
		{name: "CNAME multivalue", nsType: sd.NamespaceTypeDnsPrivate, dns: &sd.DnsConfig{DnsRecords: records(sd.RecordTypeCname)}, msg: "WEIGHTED"},
		{name: "CNAME and SRV", nsType: sd.NamespaceTypeDnsPrivate, dns: &sd.DnsConfig{RoutingPolicy: sd.RoutingPolicyWeighted, DnsRecords: records(sd.RecordTypeSrv, sd.RecordTypeCname)}, msg: "CNAME"},
		{name: "a type twice", nsType: sd.NamespaceTypeDnsPrivate, dns: &sd.DnsConfig{DnsRecords: records(sd.RecordTypeA, sd.RecordTypeA)}, msg: "more than once"},
		{name: "no records", nsType: sd.NamespaceTypeDnsPrivate, dns: &sd.DnsConfig{}, msg: "DnsConfig"},
		{name: "no DnsConfig", nsType: sd.NamespaceTypeDnsPublic, msg: "DnsConfig"},
		{name: "Type HTTP in a DNS namespace", nsType: sd.NamespaceTypeDnsPrivate, typ: sd.ServiceTypeOptionHttp, want: sd.ServiceTypeHttp},
		{name: "Type HTTP with records", nsType: sd.NamespaceTypeDnsPrivate, typ: sd.ServiceTypeOptionHttp, dns: &sd.DnsConfig{DnsRecords: records(sd.RecordTypeA)}, msg: "Type HTTP"},
		{name: "health check in a private namespace", nsType: sd.NamespaceTypeDnsPrivate, dns: &sd.DnsConfig{DnsRecords: records(sd.RecordTypeA)}, hc: tcp, msg: "HealthCheckCustomConfig"},
		{name: "health check in a public namespace", nsType: sd.NamespaceTypeDnsPublic, dns: &sd.DnsConfig{DnsRecords: records(sd.RecordTypeA)}, hc: tcp, want: sd.ServiceTypeDnsHttp},
		{name: "health check with a CNAME", nsType: sd.NamespaceTypeDnsPublic, dns: &sd.DnsConfig{RoutingPolicy: sd.RoutingPolicyWeighted, DnsRecords: records(sd.RecordTypeCname)}, hc: tcp, msg: "CNAME"},
		{name: "both health checks", nsType: sd.NamespaceTypeDnsPublic, dns: &sd.DnsConfig{DnsRecords: records(sd.RecordTypeA)}, hc: tcp, custom: &sd.HealthCheckCustomConfig{}, msg: "both"},
		{name: "TCP with a path", nsType: sd.NamespaceTypeDnsPublic, dns: &sd.DnsConfig{DnsRecords: records(sd.RecordTypeA)}, hc: &sd.HealthCheckConfig{Type: sd.HealthCheckTypeTcp, ResourcePath: "/x"}, msg: "ResourcePath"},
		{name: "custom health", nsType: sd.NamespaceTypeDnsPrivate, dns: &sd.DnsConfig{DnsRecords: records(sd.RecordTypeA)}, custom: &sd.HealthCheckCustomConfig{FailureThreshold: 7}, want: sd.ServiceTypeDnsHttp},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := checkServiceConfig(c.nsType, "ns-1", c.typ, c.dns, c.hc, c.custom)
			wantInvalid(t, err, c.msg)
			if err != nil {
				return
			}
			if cfg.typ != c.want {
				t.Fatalf("type %s, want %s", cfg.typ, c.want)
			}
			if cfg.dns != nil && (cfg.dns.NamespaceId != "ns-1" || cfg.dns.RoutingPolicy == "") {
				t.Fatalf("dns config %+v", cfg.dns)
			}
			if c.custom != nil && cfg.custom.FailureThreshold != 1 {
				t.Fatalf("custom FailureThreshold %d, want 1", cfg.custom.FailureThreshold)
			}
		})
	}
}

func TestHealthCheckDefaults(t *testing.T) {
	h, err := checkHealthCheckConfig(sd.NamespaceTypeHttp, nil, &sd.HealthCheckConfig{Type: sd.HealthCheckTypeHttps})
	if err != nil {
		t.Fatal(err)
	}
	if h.ResourcePath != "/" || h.FailureThreshold != 3 {
		t.Fatalf("defaults %+v", h)
	}
}

func TestCheckDNSChange(t *testing.T) {
	have := &sd.DnsConfig{NamespaceId: "ns-1", RoutingPolicy: sd.RoutingPolicyMultivalue, DnsRecords: records(sd.RecordTypeA, sd.RecordTypeSrv)}
	got, err := checkDNSChange(have, &sd.DnsConfigChange{DnsRecords: []sd.DnsRecord{{Type: sd.RecordTypeSrv, TTL: 5}, {Type: sd.RecordTypeA, TTL: 6}}})
	if err != nil || got.NamespaceId != "ns-1" || got.DnsRecords[0].TTL != 5 {
		t.Fatalf("got %+v, %v", got, err)
	}
	_, err = checkDNSChange(have, &sd.DnsConfigChange{DnsRecords: records(sd.RecordTypeA)})
	wantInvalid(t, err, "types")
	_, err = checkDNSChange(nil, &sd.DnsConfigChange{DnsRecords: records(sd.RecordTypeA)})
	wantInvalid(t, err, "no DNS records")
}

func TestCheckInstanceAttributes(t *testing.T) {
	svc := func(hc *sd.HealthCheckConfig, custom bool, policy sd.RoutingPolicy, ts ...sd.RecordType) *ServiceRecord {
		s := &ServiceRecord{Service: sd.Service{Id: "srv-1", Type: sd.ServiceTypeDnsHttp, HealthCheckConfig: hc}}
		if len(ts) > 0 {
			s.DnsConfig = &sd.DnsConfig{RoutingPolicy: policy, DnsRecords: records(ts...)}
		} else {
			s.Type = sd.ServiceTypeHttp
		}
		if custom {
			s.HealthCheckCustomConfig = &sd.HealthCheckCustomConfig{FailureThreshold: 1}
		}
		return s
	}
	a := svc(nil, false, "", sd.RecordTypeA)
	many := map[string]string{"AWS_INSTANCE_IPV4": "10.0.0.1"}
	for i := range 31 {
		many[strings.Repeat("k", i+1)] = "v"
	}
	cases := []struct {
		name   string
		svc    *ServiceRecord
		nsType sd.NamespaceType
		attrs  map[string]string
		msg    string
	}{
		{"A with an address", a, sd.NamespaceTypeDnsPrivate, map[string]string{"AWS_INSTANCE_IPV4": "10.0.0.1"}, ""},
		{"A without an address", a, sd.NamespaceTypeDnsPrivate, map[string]string{"stage": "beta"}, "AWS_INSTANCE_IPV4 is required"},
		{"bad IPv4", a, sd.NamespaceTypeDnsPrivate, map[string]string{"AWS_INSTANCE_IPV4": "::1"}, "not an IPv4"},
		{"AAAA", svc(nil, false, "", sd.RecordTypeAaaa), sd.NamespaceTypeDnsPrivate, map[string]string{"AWS_INSTANCE_IPV6": "fd00::1"}, ""},
		{"AAAA with an IPv4", svc(nil, false, "", sd.RecordTypeAaaa), sd.NamespaceTypeDnsPrivate, map[string]string{"AWS_INSTANCE_IPV6": "::ffff:10.0.0.1"}, "not an IPv6"},
		{"AAAA without an address", svc(nil, false, "", sd.RecordTypeAaaa), sd.NamespaceTypeDnsPrivate, map[string]string{"AWS_INSTANCE_IPV4": "10.0.0.1"}, "AWS_INSTANCE_IPV6 is required"},
		{"SRV with IPv6", svc(nil, false, "", sd.RecordTypeSrv), sd.NamespaceTypeDnsPrivate, map[string]string{"AWS_INSTANCE_IPV6": "fd00::1", "AWS_INSTANCE_PORT": "53"}, ""},
		{"SRV without a port", svc(nil, false, "", sd.RecordTypeSrv), sd.NamespaceTypeDnsPrivate, map[string]string{"AWS_INSTANCE_IPV4": "10.0.0.1"}, "AWS_INSTANCE_PORT is required"},
		{"SRV without an address", svc(nil, false, "", sd.RecordTypeSrv), sd.NamespaceTypeDnsPrivate, map[string]string{"AWS_INSTANCE_PORT": "80"}, "AWS_INSTANCE_IPV4 or AWS_INSTANCE_IPV6"},
		{"port out of range", svc(nil, false, "", sd.RecordTypeSrv), sd.NamespaceTypeDnsPrivate, map[string]string{"AWS_INSTANCE_IPV4": "10.0.0.1", "AWS_INSTANCE_PORT": "65536"}, "port number"},
		{"CNAME", svc(nil, false, sd.RoutingPolicyWeighted, sd.RecordTypeCname), sd.NamespaceTypeDnsPrivate, map[string]string{"AWS_INSTANCE_CNAME": "db.example.com"}, ""},
		{"CNAME missing", svc(nil, false, sd.RoutingPolicyWeighted, sd.RecordTypeCname), sd.NamespaceTypeDnsPrivate, map[string]string{}, "AWS_INSTANCE_CNAME is required"},
		{"bad CNAME", svc(nil, false, sd.RoutingPolicyWeighted, sd.RecordTypeCname), sd.NamespaceTypeDnsPrivate, map[string]string{"AWS_INSTANCE_CNAME": "-bad-"}, "domain name"},
		{"HTTP service takes anything", svc(nil, false, ""), sd.NamespaceTypeHttp, map[string]string{"ARN": "arn:aws:s3:::bucket"}, ""},
		{"initial health with custom health", svc(nil, true, ""), sd.NamespaceTypeHttp, map[string]string{"AWS_INIT_HEALTH_STATUS": "UNHEALTHY"}, ""},
		{"bad initial health", svc(nil, true, ""), sd.NamespaceTypeHttp, map[string]string{"AWS_INIT_HEALTH_STATUS": "SICK"}, "HEALTHY or UNHEALTHY"},
		{"initial health without custom health", a, sd.NamespaceTypeDnsPrivate, map[string]string{"AWS_INSTANCE_IPV4": "10.0.0.1", "AWS_INIT_HEALTH_STATUS": "HEALTHY"}, "HealthCheckCustomConfig"},
		{"health check needs a port", svc(&sd.HealthCheckConfig{Type: sd.HealthCheckTypeTcp}, false, "", sd.RecordTypeA), sd.NamespaceTypeDnsPublic, map[string]string{"AWS_INSTANCE_IPV4": "10.0.0.1"}, "health check"},
		{"health check in an HTTP namespace needs an address", svc(&sd.HealthCheckConfig{Type: sd.HealthCheckTypeTcp}, false, ""), sd.NamespaceTypeHttp, map[string]string{"AWS_INSTANCE_PORT": "80"}, "health check"},
		{"EC2 instance", svc(nil, true, ""), sd.NamespaceTypeHttp, map[string]string{"AWS_EC2_INSTANCE_ID": "i-1", "AWS_INIT_HEALTH_STATUS": "HEALTHY"}, ""},
		{"EC2 instance with more", svc(nil, false, ""), sd.NamespaceTypeHttp, map[string]string{"AWS_EC2_INSTANCE_ID": "i-1", "stage": "beta"}, "only other attribute"},
		{"EC2 instance in a DNS namespace", a, sd.NamespaceTypeDnsPrivate, map[string]string{"AWS_EC2_INSTANCE_ID": "i-1"}, "HTTP namespaces"},
		{"alias", svc(nil, false, sd.RoutingPolicyWeighted, sd.RecordTypeA), sd.NamespaceTypeDnsPublic, map[string]string{"AWS_ALIAS_DNS_NAME": "lb.example.com"}, ""},
		{"alias with multivalue", a, sd.NamespaceTypeDnsPublic, map[string]string{"AWS_ALIAS_DNS_NAME": "lb.example.com"}, "WEIGHTED"},
		{"alias with an address", svc(nil, false, sd.RoutingPolicyWeighted, sd.RecordTypeA), sd.NamespaceTypeDnsPublic, map[string]string{"AWS_ALIAS_DNS_NAME": "lb.example.com", "AWS_INSTANCE_IPV4": "10.0.0.1"}, "can't be combined"},
		{"31 custom attributes", a, sd.NamespaceTypeDnsPrivate, many, "at most 30 custom"},
		{"5000 characters", svc(nil, false, ""), sd.NamespaceTypeHttp, map[string]string{"a": strings.Repeat("x", 1000), "b": strings.Repeat("x", 1000), "c": strings.Repeat("x", 1000), "d": strings.Repeat("x", 1000), "e": strings.Repeat("x", 1000)}, "5000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantInvalid(t, checkInstanceAttributes(c.svc, c.nsType, c.attrs), c.msg)
		})
	}
}

func TestInitialHealth(t *testing.T) {
	custom := &ServiceRecord{Service: sd.Service{HealthCheckCustomConfig: &sd.HealthCheckCustomConfig{FailureThreshold: 1}}}
	checked := &ServiceRecord{Service: sd.Service{HealthCheckConfig: &sd.HealthCheckConfig{Type: sd.HealthCheckTypeTcp}}}
	plain := &ServiceRecord{}
	sick := &InstanceRecord{Instance: sd.Instance{Attributes: map[string]string{"AWS_INSTANCE_IPV4": "10.0.0.1", "AWS_INSTANCE_PORT": "80"}}, Health: sd.HealthStatusUnhealthy}
	cases := []struct {
		name  string
		svc   *ServiceRecord
		old   *InstanceRecord
		attrs map[string]string
		want  sd.HealthStatus
	}{
		{"custom default", custom, nil, nil, sd.HealthStatusHealthy},
		{"custom initial status", custom, nil, map[string]string{"AWS_INIT_HEALTH_STATUS": "UNHEALTHY"}, sd.HealthStatusUnhealthy},
		{"custom re-registration starts over", custom, sick, nil, sd.HealthStatusHealthy},
		{"checked, new", checked, nil, sick.Attributes, sd.HealthStatusHealthy},
		{"checked, same address keeps its health", checked, sick, map[string]string{"AWS_INSTANCE_IPV4": "10.0.0.1", "AWS_INSTANCE_PORT": "80", "x": "y"}, sd.HealthStatusUnhealthy},
		{"checked, new address starts over", checked, sick, map[string]string{"AWS_INSTANCE_IPV4": "10.0.0.2", "AWS_INSTANCE_PORT": "80"}, sd.HealthStatusHealthy},
		{"no health checks", plain, sick, nil, sd.HealthStatusHealthy},
	}
	for _, c := range cases {
		if got := initialHealth(c.svc, c.old, c.attrs); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
	if got := reportedHealth(plain, sick); got != sd.HealthStatusUnknown {
		t.Errorf("a service without health checks reports %s", got)
	}
	if got := reportedHealth(custom, sick); got != sd.HealthStatusUnhealthy {
		t.Errorf("custom health reports %s", got)
	}
}

func TestCheckDNSName(t *testing.T) {
	for name, ok := range map[string]bool{
		"example.com": true, "example.com.": true, "local": true, "_svc._tcp.example.local": true, "a-b.c": true,
		"": false, ".": false, "a..b": false, "-a.com": false, "a-.com": false, "a b.com": false, strings.Repeat("a", 64) + ".com": false,
	} {
		if checkDNSName(name) != ok {
			t.Errorf("checkDNSName(%q) = %v, want %v", name, !ok, ok)
		}
	}
}

func TestCheckTags(t *testing.T) {
	wantInvalid(t, checkTags([]sd.Tag{{Key: "a", Value: "1"}, {Key: "b", Value: "2"}}), "")
	wantInvalid(t, checkTags([]sd.Tag{{Key: "AWS:x", Value: "1"}}), "reserved")
	wantInvalid(t, checkTags([]sd.Tag{{Key: "a", Value: "1"}, {Key: "a", Value: "2"}}), "more than once")
}

func TestNamespaceFilter(t *testing.T) {
	nss := []*NamespaceRecord{
		{Namespace: sd.Namespace{Id: "ns-1", Name: "shop", Type: sd.NamespaceTypeHttp, Properties: &sd.NamespaceProperties{HttpProperties: &sd.HttpProperties{HttpName: "shop"}}}},
		{Namespace: sd.Namespace{Id: "ns-2", Name: "shop.local", Type: sd.NamespaceTypeDnsPrivate, Properties: &sd.NamespaceProperties{HttpProperties: &sd.HttpProperties{HttpName: "shop.local"}}}},
		{Namespace: sd.Namespace{Id: "ns-3", Name: "shop.local", Type: sd.NamespaceTypeDnsPrivate, Properties: &sd.NamespaceProperties{HttpProperties: &sd.HttpProperties{HttpName: "shop.local-1234"}}}},
		{Namespace: sd.Namespace{Id: "ns-4", Name: "example.com", Type: sd.NamespaceTypeDnsPublic}},
	}
	cases := []struct {
		name    string
		filters []sd.NamespaceFilter
		want    string
		msg     string
	}{
		{"none", nil, "ns-1 ns-2 ns-3 ns-4", ""},
		{"type", []sd.NamespaceFilter{{Name: "TYPE", Values: []string{"DNS_PRIVATE"}}}, "ns-2 ns-3", ""},
		{"type in", []sd.NamespaceFilter{{Name: "TYPE", Condition: "IN", Values: []string{"HTTP", "DNS_PUBLIC"}}}, "ns-1 ns-4", ""},
		{"name begins with", []sd.NamespaceFilter{{Name: "NAME", Condition: "BEGINS_WITH", Values: []string{"shop"}}}, "ns-1 ns-2 ns-3", ""},
		{"http name", []sd.NamespaceFilter{{Name: "HTTP_NAME", Values: []string{"shop.local-1234"}}}, "ns-3", ""},
		{"http name defaults to the name", []sd.NamespaceFilter{{Name: "HTTP_NAME", Values: []string{"example.com"}}}, "ns-4", ""},
		{"all filters hold", []sd.NamespaceFilter{{Name: "NAME", Values: []string{"shop.local"}}, {Name: "HTTP_NAME", Values: []string{"shop.local"}}}, "ns-2", ""},
		{"own resources", []sd.NamespaceFilter{{Name: "RESOURCE_OWNER", Values: []string{"SELF"}}}, "ns-1 ns-2 ns-3 ns-4", ""},
		{"shared resources", []sd.NamespaceFilter{{Name: "RESOURCE_OWNER", Values: []string{"OTHER_ACCOUNTS"}}}, "", ""},
		{"bad owner", []sd.NamespaceFilter{{Name: "RESOURCE_OWNER", Values: []string{"ME"}}}, "", "SELF"},
		{"bad type", []sd.NamespaceFilter{{Name: "TYPE", Values: []string{"FTP"}}}, "", "FTP"},
		{"IN on a name", []sd.NamespaceFilter{{Name: "NAME", Condition: "IN", Values: []string{"a"}}}, "", "IN"},
		{"EQ with two values", []sd.NamespaceFilter{{Name: "NAME", Values: []string{"a", "b"}}}, "", "exactly one"},
		{"BETWEEN", []sd.NamespaceFilter{{Name: "TYPE", Condition: "BETWEEN", Values: []string{"a", "b"}}}, "", "BETWEEN"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			match, err := namespaceFilter(c.filters)
			wantInvalid(t, err, c.msg)
			if err != nil {
				return
			}
			var got []string
			for _, ns := range nss {
				if match(ns) {
					got = append(got, ns.Id)
				}
			}
			if strings.Join(got, " ") != c.want {
				t.Fatalf("got %v, want %s", got, c.want)
			}
		})
	}
}

func TestOperationFilter(t *testing.T) {
	at := func(s int64) *api.Time { return api.NewTime(time.Unix(s, 0)) }
	ops := []*OperationRecord{
		{Operation: sd.Operation{Id: "op-1", Type: sd.OperationTypeCreateNamespace, Status: sd.OperationStatusSuccess, Targets: map[string]string{"NAMESPACE": "ns-1"}, UpdateDate: at(100)}, NamespaceID: "ns-1"},
		{Operation: sd.Operation{Id: "op-2", Type: sd.OperationTypeRegisterInstance, Status: sd.OperationStatusFail, Targets: map[string]string{"SERVICE": "srv-1", "INSTANCE": "i"}, UpdateDate: at(200)}, NamespaceID: "ns-1"},
		{Operation: sd.Operation{Id: "op-3", Type: sd.OperationTypeUpdateService, Status: sd.OperationStatusPending, Targets: map[string]string{"SERVICE": "srv-2"}, UpdateDate: at(300)}, NamespaceID: "ns-2"},
	}
	cases := []struct {
		name    string
		filters []sd.OperationFilter
		want    string
		msg     string
	}{
		{"namespace, also of instance operations", []sd.OperationFilter{{Name: "NAMESPACE_ID", Values: []string{"ns-1"}}}, "op-1 op-2", ""},
		{"service", []sd.OperationFilter{{Name: "SERVICE_ID", Values: []string{"srv-2"}}}, "op-3", ""},
		{"status in", []sd.OperationFilter{{Name: "STATUS", Condition: "IN", Values: []string{"FAIL", "PENDING"}}}, "op-2 op-3", ""},
		{"status as documented", []sd.OperationFilter{{Name: "STATUS", Values: []string{"SUCCEED"}}}, "op-1", ""},
		{"type", []sd.OperationFilter{{Name: "TYPE", Values: []string{"UPDATE_SERVICE"}}}, "op-3", ""},
		{"update date", []sd.OperationFilter{{Name: "UPDATE_DATE", Condition: "BETWEEN", Values: []string{"150", "300"}}}, "op-2 op-3", ""},
		{"update date RFC 3339", []sd.OperationFilter{{Name: "UPDATE_DATE", Condition: "BETWEEN", Values: []string{"1970-01-01T00:00:00Z", "1970-01-01T00:02:00Z"}}}, "op-1", ""},
		{"combined", []sd.OperationFilter{{Name: "NAMESPACE_ID", Values: []string{"ns-1"}}, {Name: "STATUS", Values: []string{"FAIL"}}}, "op-2", ""},
		{"update date reversed", []sd.OperationFilter{{Name: "UPDATE_DATE", Condition: "BETWEEN", Values: []string{"300", "100"}}}, "", "after"},
		{"update date not a date", []sd.OperationFilter{{Name: "UPDATE_DATE", Condition: "BETWEEN", Values: []string{"x", "100"}}}, "", "Unix time"},
		{"update date with EQ", []sd.OperationFilter{{Name: "UPDATE_DATE", Values: []string{"100"}}}, "", "BETWEEN"},
		{"IN on a service", []sd.OperationFilter{{Name: "SERVICE_ID", Condition: "IN", Values: []string{"srv-1"}}}, "", "IN"},
		{"bad status", []sd.OperationFilter{{Name: "STATUS", Values: []string{"DONE"}}}, "", "DONE"},
		{"bad type", []sd.OperationFilter{{Name: "TYPE", Values: []string{"DELETE_SERVICE"}}}, "", "DELETE_SERVICE"},
		{"IN without values", []sd.OperationFilter{{Name: "TYPE", Condition: "IN", Values: []string{}}}, "", "at least one"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			match, err := operationFilter(c.filters)
			wantInvalid(t, err, c.msg)
			if err != nil {
				return
			}
			var got []string
			for _, op := range ops {
				if match(op) {
					got = append(got, op.Id)
				}
			}
			if strings.Join(got, " ") != c.want {
				t.Fatalf("got %v, want %s", got, c.want)
			}
		})
	}
}

func TestApplyDefaults(t *testing.T) {
	decode := func(body string, v any) {
		t.Helper()
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(body), &raw); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(body), v); err != nil {
			t.Fatal(err)
		}
		applyDefaults(v, raw)
	}
	var list sd.ListNamespacesRequest
	decode(`{}`, &list)
	if list.MaxResults != 100 || list.Validate() != nil {
		t.Fatalf("absent MaxResults: %d, %v", list.MaxResults, list.Validate())
	}
	list = sd.ListNamespacesRequest{}
	decode(`{"MaxResults":0}`, &list)
	if list.Validate() == nil {
		t.Fatal("MaxResults 0 passed validation")
	}
	var disc sd.DiscoverInstancesRequest
	decode(`{"NamespaceName":"n","ServiceName":"s","MaxResults":null}`, &disc)
	if disc.MaxResults != 100 || disc.Validate() != nil {
		t.Fatalf("null MaxResults: %d, %v", disc.MaxResults, disc.Validate())
	}
	var create sd.CreateServiceRequest
	decode(`{"Name":"s","HealthCheckCustomConfig":{},"HealthCheckConfig":{"Type":"TCP"}}`, &create)
	if create.HealthCheckCustomConfig.FailureThreshold != 1 || create.HealthCheckConfig.FailureThreshold != 3 || create.Validate() != nil {
		t.Fatalf("create %+v %+v: %v", create.HealthCheckCustomConfig, create.HealthCheckConfig, create.Validate())
	}
	create = sd.CreateServiceRequest{}
	decode(`{"Name":"s","HealthCheckConfig":{"Type":"TCP","FailureThreshold":5}}`, &create)
	if create.HealthCheckConfig.FailureThreshold != 5 {
		t.Fatalf("given FailureThreshold replaced: %d", create.HealthCheckConfig.FailureThreshold)
	}
	var update sd.UpdateServiceRequest
	decode(`{"Id":"srv-1","Service":{"HealthCheckConfig":{"Type":"HTTP"}}}`, &update)
	if update.Service.HealthCheckConfig.FailureThreshold != 3 || update.Validate() != nil {
		t.Fatalf("update %+v: %v", update.Service.HealthCheckConfig, update.Validate())
	}
}

func TestWithListsEncoding(t *testing.T) {
	b, err := json.Marshal(withLists{v: &sd.DiscoverInstancesResponse{InstancesRevision: 3}, lists: outputLists["DiscoverInstances"]})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"Instances":[],"InstancesRevision":3}` {
		t.Fatalf("encoded %s", b)
	}
	b, _ = json.Marshal(withLists{v: &sd.GetInstancesHealthStatusResponse{}, lists: outputLists["GetInstancesHealthStatus"]})
	if string(b) != `{"Status":{}}` {
		t.Fatalf("encoded %s", b)
	}
}

func TestParseARN(t *testing.T) {
	s := &Service{account: "123456789012"}
	c := call{region: "us-east-1"}
	cases := []struct {
		arn, kind, id string
		ok            bool
	}{
		{"arn:aws:servicediscovery:us-east-1:123456789012:namespace/ns-abc", "namespace", "ns-abc", true},
		{"arn:aws:servicediscovery:us-east-1:123456789012:service/srv-abc", "service", "srv-abc", true},
		{"arn:aws:servicediscovery:eu-west-1:123456789012:service/srv-abc", "", "", false},
		{"arn:aws:servicediscovery:us-east-1:000000000000:service/srv-abc", "", "", false},
		{"arn:aws:servicediscovery:us-east-1:123456789012:service/", "", "", false},
		{"arn:aws:servicediscovery:us-east-1:123456789012:service/a/b", "", "", false},
		{"arn:aws:ecs:us-east-1:123456789012:service/srv-abc", "", "", false},
	}
	for _, tc := range cases {
		kind, id, ok := s.parseARN(c, tc.arn)
		if kind != tc.kind || id != tc.id || ok != tc.ok {
			t.Errorf("parseARN(%q) = %q %q %v", tc.arn, kind, id, ok)
		}
	}
	if id, ok := s.resolveID(c, "namespace", "ns-plain"); !ok || id != "ns-plain" {
		t.Errorf("plain id resolved to %q %v", id, ok)
	}
	if _, ok := s.resolveID(c, "namespace", "arn:aws:servicediscovery:us-east-1:123456789012:service/srv-abc"); ok {
		t.Error("a service ARN resolved as a namespace")
	}
}
