package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/servicediscovery"
	"github.com/aws/aws-sdk-go-v2/service/servicediscovery/types"

	sdapi "github.com/wharfhq/wharf/internal/api/servicediscovery"
	"github.com/wharfhq/wharf/internal/awsproto"
	"github.com/wharfhq/wharf/internal/cloudmap"
	"github.com/wharfhq/wharf/internal/server"
	"github.com/wharfhq/wharf/internal/store"
	"github.com/wharfhq/wharf/internal/testenv"
)

// cmEnv is a Wharf control plane with the Cloud Map API served the way
// internal/server serves its APIs, over the server's store.
type cmEnv struct {
	srv      *testenv.Server // nil when paused
	st       *store.Store
	svc      *cloudmap.Service
	endpoint string
	sd       *servicediscovery.Client
	stopRun  func()
}

// newCloudMap starts a server with Cloud Map. With paused, Cloud Map runs
// alone over a store of its own behind a handler configured by opts, its
// background work (the operations worker) waiting for start, so that tests
// can see operations in flight.
func newCloudMap(t *testing.T, paused bool, opts ...func(*awsproto.Config)) *cmEnv {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	if os.Getenv("WHARF_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if !paused {
		srv := testenv.StartServer(t, "", func(c *server.Config) { c.HealthCheckInterval = 100 * time.Millisecond })
		e := &cmEnv{srv: srv, svc: srv.CloudMap, endpoint: srv.Endpoint(), stopRun: func() {}}
		e.sd = servicediscovery.NewFromConfig(testenv.AWSConfig(srv.Endpoint(), testenv.Region), testenv.WithoutHostPrefix)
		return e
	}
	st, err := store.Open(context.Background(), store.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc, err := cloudmap.New(context.Background(), cloudmap.Config{
		Store:               st,
		Account:             testenv.Account,
		DefaultRegion:       testenv.Region,
		HealthCheckInterval: 100 * time.Millisecond,
		Logger:              logger,
	})
	if err != nil {
		t.Fatalf("cloudmap.New: %v", err)
	}
	hcfg := awsproto.Config{
		Services: []awsproto.Service{{
			TargetPrefix: sdapi.TargetPrefix,
			SigningName:  sdapi.SigningName,
			Operations:   cloudmap.Operations(svc),
			MessageField: "Message",
			ThrottleCode: "RequestLimitExceeded",
		}},
		Verifier: &awsproto.Verifier{Credentials: awsproto.StaticCredentials{testenv.AccessKeyID: testenv.SecretAccessKey}},
		Logger:   logger,
	}
	for _, o := range opts {
		o(&hcfg)
	}
	hs := httptest.NewServer(awsproto.NewHandler(hcfg))
	e := &cmEnv{st: st, svc: svc, endpoint: hs.URL, stopRun: func() {}}
	e.sd = servicediscovery.NewFromConfig(testenv.AWSConfig(hs.URL, testenv.Region), testenv.WithoutHostPrefix)
	t.Cleanup(func() {
		hs.Close()
		e.stop()
	})
	return e
}

// store is the store Cloud Map works on.
func (e *cmEnv) store() *store.Store {
	if e.srv != nil {
		return e.srv.Store()
	}
	return e.st
}

// start runs Cloud Map's background work until stop.
func (e *cmEnv) start() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.svc.Run(ctx)
	}()
	e.stopRun = func() {
		cancel()
		<-done
	}
}

func (e *cmEnv) stop() {
	e.stopRun()
	e.stopRun = func() {}
}

// waitOp waits until an operation has finished and returns it.
func (e *cmEnv) waitOp(t *testing.T, id string) *types.Operation {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := must(e.sd.GetOperation(ctxT(t), &servicediscovery.GetOperationInput{OperationId: aws.String(id)}))(t)
		if st := out.Operation.Status; st == types.OperationStatusSuccess || st == types.OperationStatusFail {
			return out.Operation
		}
		if time.Now().After(deadline) {
			t.Fatalf("operation %s still %s after 10s", id, out.Operation.Status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// succeed waits for an operation and fails the test unless it succeeded.
func (e *cmEnv) succeed(t *testing.T, id *string) *types.Operation {
	t.Helper()
	op := e.waitOp(t, aws.ToString(id))
	if op.Status != types.OperationStatusSuccess {
		t.Fatalf("operation %s: %s %s: %s", aws.ToString(op.Id), op.Status, aws.ToString(op.ErrorCode), aws.ToString(op.ErrorMessage))
	}
	return op
}

func (e *cmEnv) httpNamespace(t *testing.T, name string) string {
	t.Helper()
	op := e.succeed(t, must(e.sd.CreateHttpNamespace(ctxT(t), &servicediscovery.CreateHttpNamespaceInput{Name: aws.String(name)}))(t).OperationId)
	return op.Targets["NAMESPACE"]
}

func (e *cmEnv) privateNamespace(t *testing.T, name, vpc string) string {
	t.Helper()
	op := e.succeed(t, must(e.sd.CreatePrivateDnsNamespace(ctxT(t), &servicediscovery.CreatePrivateDnsNamespaceInput{Name: aws.String(name), Vpc: aws.String(vpc)}))(t).OperationId)
	return op.Targets["NAMESPACE"]
}

func (e *cmEnv) publicNamespace(t *testing.T, name string) string {
	t.Helper()
	op := e.succeed(t, must(e.sd.CreatePublicDnsNamespace(ctxT(t), &servicediscovery.CreatePublicDnsNamespaceInput{Name: aws.String(name)}))(t).OperationId)
	return op.Targets["NAMESPACE"]
}

func (e *cmEnv) register(t *testing.T, serviceID, id string, attrs map[string]string) {
	t.Helper()
	e.succeed(t, must(e.sd.RegisterInstance(ctxT(t), &servicediscovery.RegisterInstanceInput{
		ServiceId: aws.String(serviceID), InstanceId: aws.String(id), Attributes: attrs,
	}))(t).OperationId)
}

func (e *cmEnv) discover(t *testing.T, in *servicediscovery.DiscoverInstancesInput) (ids []string, rev int64) {
	t.Helper()
	out := must(e.sd.DiscoverInstances(ctxT(t), in))(t)
	for _, i := range out.Instances {
		ids = append(ids, aws.ToString(i.InstanceId))
	}
	sort.Strings(ids)
	return ids, aws.ToInt64(out.InstancesRevision)
}

func (e *cmEnv) revision(t *testing.T, ns, svc string) int64 {
	t.Helper()
	out := must(e.sd.DiscoverInstancesRevision(ctxT(t), &servicediscovery.DiscoverInstancesRevisionInput{NamespaceName: aws.String(ns), ServiceName: aws.String(svc)}))(t)
	return aws.ToInt64(out.InstancesRevision)
}

// errAs checks that err is the typed SDK error T and returns it.
func errAs[T error](t *testing.T, err error) T {
	t.Helper()
	var target T
	if !errors.As(err, &target) {
		t.Fatalf("got %v, want a %T", err, target)
	}
	return target
}

var (
	namespaceIDPattern = regexp.MustCompile(`^ns-[a-z0-9]{16}$`)
	serviceIDPattern   = regexp.MustCompile(`^srv-[a-z0-9]{16}$`)
	zoneIDPattern      = regexp.MustCompile(`^Z[A-Z0-9]{13}$`)
)

func TestCloudMapNamespaces(t *testing.T) {
	e := newCloudMap(t, false)
	ctx := ctxT(t)

	created := must(e.sd.CreateHttpNamespace(ctx, &servicediscovery.CreateHttpNamespaceInput{
		Name: aws.String("shared"), Description: aws.String("S3 buckets and tables"), CreatorRequestId: aws.String("req-shared"),
	}))(t)
	op := e.succeed(t, created.OperationId)
	if op.Type != types.OperationTypeCreateNamespace || op.CreateDate == nil || op.UpdateDate == nil {
		t.Fatalf("operation %+v", op)
	}
	shared := op.Targets["NAMESPACE"]
	if !namespaceIDPattern.MatchString(shared) {
		t.Fatalf("namespace id %q", shared)
	}
	ns := must(e.sd.GetNamespace(ctx, &servicediscovery.GetNamespaceInput{Id: aws.String(shared)}))(t).Namespace
	if got, want := aws.ToString(ns.Arn), "arn:aws:servicediscovery:us-east-1:123456789012:namespace/"+shared; got != want {
		t.Fatalf("ARN %s, want %s", got, want)
	}
	if ns.Type != types.NamespaceTypeHttp || aws.ToString(ns.Name) != "shared" || aws.ToString(ns.Description) != "S3 buckets and tables" ||
		aws.ToString(ns.Properties.HttpProperties.HttpName) != "shared" || aws.ToString(ns.CreatorRequestId) != "req-shared" || aws.ToInt32(ns.ServiceCount) != 0 {
		t.Fatalf("namespace %+v", ns)
	}
	byARN := must(e.sd.GetNamespace(ctx, &servicediscovery.GetNamespaceInput{Id: ns.Arn}))(t).Namespace
	if aws.ToString(byARN.Id) != shared {
		t.Fatalf("GetNamespace by ARN returned %s", aws.ToString(byARN.Id))
	}

	t.Run("idempotent retry and reused request id", func(t *testing.T) {
		again := must(e.sd.CreateHttpNamespace(ctx, &servicediscovery.CreateHttpNamespaceInput{
			Name: aws.String("shared"), Description: aws.String("S3 buckets and tables"), CreatorRequestId: aws.String("req-shared"),
		}))(t)
		if aws.ToString(again.OperationId) != aws.ToString(created.OperationId) {
			t.Fatalf("retry got operation %s, want %s", aws.ToString(again.OperationId), aws.ToString(created.OperationId))
		}
		_, err := e.sd.CreateHttpNamespace(ctx, &servicediscovery.CreateHttpNamespaceInput{Name: aws.String("other"), CreatorRequestId: aws.String("req-shared")})
		dup := errAs[*types.DuplicateRequest](t, err)
		if aws.ToString(dup.DuplicateOperationId) != aws.ToString(created.OperationId) {
			t.Fatalf("DuplicateOperationId %s", aws.ToString(dup.DuplicateOperationId))
		}
	})

	t.Run("duplicate name", func(t *testing.T) {
		_, err := e.sd.CreateHttpNamespace(ctx, &servicediscovery.CreateHttpNamespaceInput{Name: aws.String("shared"), CreatorRequestId: aws.String("another")})
		exists := errAs[*types.NamespaceAlreadyExists](t, err)
		if aws.ToString(exists.NamespaceId) != shared || aws.ToString(exists.CreatorRequestId) != "req-shared" {
			t.Fatalf("NamespaceAlreadyExists members: NamespaceId %q CreatorRequestId %q", aws.ToString(exists.NamespaceId), aws.ToString(exists.CreatorRequestId))
		}
	})

	private := e.privateNamespace(t, "internal.local", "vpc-1")
	t.Run("private DNS namespaces", func(t *testing.T) {
		ns := must(e.sd.GetNamespace(ctx, &servicediscovery.GetNamespaceInput{Id: aws.String(private)}))(t).Namespace
		dp := ns.Properties.DnsProperties
		if ns.Type != types.NamespaceTypeDnsPrivate || !zoneIDPattern.MatchString(aws.ToString(dp.HostedZoneId)) || dp.SOA == nil || aws.ToInt64(dp.SOA.TTL) != 15 {
			t.Fatalf("namespace %+v, dns %+v", ns, dp)
		}
		if aws.ToString(ns.Properties.HttpProperties.HttpName) != "internal.local" {
			t.Fatalf("HttpName %q", aws.ToString(ns.Properties.HttpProperties.HttpName))
		}
		_, err := e.sd.CreatePrivateDnsNamespace(ctx, &servicediscovery.CreatePrivateDnsNamespaceInput{Name: aws.String("INTERNAL.local"), Vpc: aws.String("vpc-1")})
		errAs[*types.NamespaceAlreadyExists](t, err)
		// The same name in another VPC is another namespace, with an HTTP
		// name of its own.
		other := e.privateNamespace(t, "internal.local", "vpc-2")
		hn := aws.ToString(must(e.sd.GetNamespace(ctx, &servicediscovery.GetNamespaceInput{Id: aws.String(other)}))(t).Namespace.Properties.HttpProperties.HttpName)
		if hn == "internal.local" || !strings.HasPrefix(hn, "internal.local-") {
			t.Fatalf("second namespace's HttpName %q", hn)
		}
		_, err = e.sd.CreatePrivateDnsNamespace(ctx, &servicediscovery.CreatePrivateDnsNamespaceInput{Name: aws.String("bad..name"), Vpc: aws.String("vpc-1")})
		wantCode(t, err, "InvalidInput", "domain name")
	})

	public := e.succeed(t, must(e.sd.CreatePublicDnsNamespace(ctx, &servicediscovery.CreatePublicDnsNamespaceInput{
		Name:       aws.String("example.com"),
		Properties: &types.PublicDnsNamespaceProperties{DnsProperties: &types.PublicDnsPropertiesMutable{SOA: &types.SOA{TTL: aws.Int64(60)}}},
	}))(t).OperationId).Targets["NAMESPACE"]
	if ttl := must(e.sd.GetNamespace(ctx, &servicediscovery.GetNamespaceInput{Id: aws.String(public)}))(t).Namespace.Properties.DnsProperties.SOA.TTL; aws.ToInt64(ttl) != 60 {
		t.Fatalf("public SOA TTL %d", aws.ToInt64(ttl))
	}

	t.Run("list with filters and pages", func(t *testing.T) {
		list := func(filters ...types.NamespaceFilter) []string {
			t.Helper()
			var names []string
			p := servicediscovery.NewListNamespacesPaginator(e.sd, &servicediscovery.ListNamespacesInput{Filters: filters})
			for p.HasMorePages() {
				for _, n := range must(p.NextPage(ctx))(t).Namespaces {
					names = append(names, string(n.Type)+":"+aws.ToString(n.Name))
				}
			}
			sort.Strings(names)
			return names
		}
		all := list()
		if want := []string{"DNS_PRIVATE:internal.local", "DNS_PRIVATE:internal.local", "DNS_PUBLIC:example.com", "HTTP:shared"}; !slices.Equal(all, want) {
			t.Fatalf("all namespaces %v, want %v", all, want)
		}
		cases := []struct {
			filter types.NamespaceFilter
			want   []string
		}{
			{types.NamespaceFilter{Name: types.NamespaceFilterNameType, Values: []string{"DNS_PUBLIC"}}, []string{"DNS_PUBLIC:example.com"}},
			{types.NamespaceFilter{Name: types.NamespaceFilterNameType, Condition: types.FilterConditionIn, Values: []string{"HTTP", "DNS_PUBLIC"}}, []string{"DNS_PUBLIC:example.com", "HTTP:shared"}},
			{types.NamespaceFilter{Name: types.NamespaceFilterNameType, Condition: types.FilterConditionBeginsWith, Values: []string{"DNS"}}, []string{"DNS_PRIVATE:internal.local", "DNS_PRIVATE:internal.local", "DNS_PUBLIC:example.com"}},
			{types.NamespaceFilter{Name: types.NamespaceFilterNameName, Condition: types.FilterConditionBeginsWith, Values: []string{"intern"}}, []string{"DNS_PRIVATE:internal.local", "DNS_PRIVATE:internal.local"}},
			{types.NamespaceFilter{Name: types.NamespaceFilterNameHttpName, Values: []string{"internal.local"}}, []string{"DNS_PRIVATE:internal.local"}},
			{types.NamespaceFilter{Name: types.NamespaceFilterNameName, Values: []string{"nothing"}}, nil},
		}
		for _, c := range cases {
			if got := list(c.filter); !slices.Equal(got, c.want) {
				t.Errorf("filter %s %s %v: got %v, want %v", c.filter.Name, c.filter.Condition, c.filter.Values, got, c.want)
			}
		}
		_, err := e.sd.ListNamespaces(ctx, &servicediscovery.ListNamespacesInput{Filters: []types.NamespaceFilter{{Name: types.NamespaceFilterNameName, Condition: types.FilterConditionBetween, Values: []string{"a", "b"}}}})
		wantCode(t, err, "InvalidInput", "BETWEEN")
		_, err = e.sd.ListNamespaces(ctx, &servicediscovery.ListNamespacesInput{Filters: []types.NamespaceFilter{{Name: types.NamespaceFilterNameType, Values: []string{"FTP"}}}})
		wantCode(t, err, "InvalidInput", "FTP")

		// One by one: every namespace exactly once.
		var seen []string
		in := &servicediscovery.ListNamespacesInput{MaxResults: aws.Int32(1)}
		for {
			out := must(e.sd.ListNamespaces(ctx, in))(t)
			if len(out.Namespaces) > 1 {
				t.Fatalf("page of %d with MaxResults 1", len(out.Namespaces))
			}
			for _, n := range out.Namespaces {
				seen = append(seen, aws.ToString(n.Id))
			}
			if out.NextToken == nil {
				break
			}
			in.NextToken = out.NextToken
		}
		if len(seen) != 4 || len(slices.Compact(slices.Sorted(slices.Values(seen)))) != 4 {
			t.Fatalf("paged through %v", seen)
		}
		_, err = e.sd.ListNamespaces(ctx, &servicediscovery.ListNamespacesInput{NextToken: aws.String("forged")})
		wantCode(t, err, "InvalidInput", "NextToken")
		_, err = e.sd.ListNamespaces(ctx, &servicediscovery.ListNamespacesInput{MaxResults: aws.Int32(0)})
		wantCode(t, err, "InvalidInput", "MaxResults")
	})

	t.Run("updates", func(t *testing.T) {
		e.succeed(t, must(e.sd.UpdateHttpNamespace(ctx, &servicediscovery.UpdateHttpNamespaceInput{
			Id: aws.String(shared), Namespace: &types.HttpNamespaceChange{Description: aws.String("changed")},
		}))(t).OperationId)
		if d := must(e.sd.GetNamespace(ctx, &servicediscovery.GetNamespaceInput{Id: aws.String(shared)}))(t).Namespace.Description; aws.ToString(d) != "changed" {
			t.Fatalf("description %q", aws.ToString(d))
		}
		op := e.succeed(t, must(e.sd.UpdatePrivateDnsNamespace(ctx, &servicediscovery.UpdatePrivateDnsNamespaceInput{
			Id: aws.String(private),
			Namespace: &types.PrivateDnsNamespaceChange{Properties: &types.PrivateDnsNamespacePropertiesChange{
				DnsProperties: &types.PrivateDnsPropertiesMutableChange{SOA: &types.SOAChange{TTL: aws.Int64(300)}}}},
		}))(t).OperationId)
		if op.Type != types.OperationTypeUpdateNamespace {
			t.Fatalf("operation type %s", op.Type)
		}
		if ttl := must(e.sd.GetNamespace(ctx, &servicediscovery.GetNamespaceInput{Id: aws.String(private)}))(t).Namespace.Properties.DnsProperties.SOA.TTL; aws.ToInt64(ttl) != 300 {
			t.Fatalf("SOA TTL %d", aws.ToInt64(ttl))
		}
		e.succeed(t, must(e.sd.UpdatePublicDnsNamespace(ctx, &servicediscovery.UpdatePublicDnsNamespaceInput{
			Id: aws.String(public), Namespace: &types.PublicDnsNamespaceChange{Description: aws.String("public")},
		}))(t).OperationId)
		_, err := e.sd.UpdateHttpNamespace(ctx, &servicediscovery.UpdateHttpNamespaceInput{Id: aws.String(private), Namespace: &types.HttpNamespaceChange{Description: aws.String("x")}})
		wantCode(t, err, "InvalidInput", "DNS_PRIVATE")
		_, err = e.sd.UpdateHttpNamespace(ctx, &servicediscovery.UpdateHttpNamespaceInput{Id: aws.String("ns-doesnotexist0000"), Namespace: &types.HttpNamespaceChange{Description: aws.String("x")}})
		errAs[*types.NamespaceNotFound](t, err)
	})

	t.Run("unknown namespace and operation", func(t *testing.T) {
		_, err := e.sd.GetNamespace(ctx, &servicediscovery.GetNamespaceInput{Id: aws.String("ns-doesnotexist0000")})
		errAs[*types.NamespaceNotFound](t, err)
		_, err = e.sd.DeleteNamespace(ctx, &servicediscovery.DeleteNamespaceInput{Id: aws.String("ns-doesnotexist0000")})
		errAs[*types.NamespaceNotFound](t, err)
		_, err = e.sd.GetOperation(ctx, &servicediscovery.GetOperationInput{OperationId: aws.String("nope")})
		errAs[*types.OperationNotFound](t, err)
	})

	t.Run("list operations", func(t *testing.T) {
		ids := func(filters ...types.OperationFilter) []string {
			t.Helper()
			var out []string
			p := servicediscovery.NewListOperationsPaginator(e.sd, &servicediscovery.ListOperationsInput{Filters: filters, MaxResults: aws.Int32(2)})
			for p.HasMorePages() {
				for _, o := range must(p.NextPage(ctx))(t).Operations {
					out = append(out, aws.ToString(o.Id))
				}
			}
			return out
		}
		all := ids()
		creates := ids(types.OperationFilter{Name: types.OperationFilterNameType, Values: []string{"CREATE_NAMESPACE"}})
		updates := ids(types.OperationFilter{Name: types.OperationFilterNameType, Condition: types.FilterConditionIn, Values: []string{"UPDATE_NAMESPACE", "UPDATE_SERVICE"}})
		if len(creates) != 4 || len(updates) != 3 || len(all) != 7 {
			t.Fatalf("%d operations, %d creates, %d updates", len(all), len(creates), len(updates))
		}
		if got := ids(types.OperationFilter{Name: types.OperationFilterNameNamespaceId, Values: []string{shared}}); len(got) != 2 {
			t.Fatalf("operations on %s: %v", shared, got)
		}
		if got := ids(types.OperationFilter{Name: types.OperationFilterNameStatus, Condition: types.FilterConditionIn, Values: []string{"SUBMITTED", "PENDING", "FAIL"}}); len(got) != 0 {
			t.Fatalf("unfinished or failed operations: %v", got)
		}
		now := time.Now()
		within := ids(types.OperationFilter{Name: types.OperationFilterNameUpdateDate, Condition: types.FilterConditionBetween,
			Values: []string{strconv.FormatInt(now.Add(-time.Hour).Unix(), 10), strconv.FormatInt(now.Add(time.Minute).Unix(), 10)}})
		before := ids(types.OperationFilter{Name: types.OperationFilterNameUpdateDate, Condition: types.FilterConditionBetween,
			Values: []string{"0", strconv.FormatInt(now.Add(-time.Hour).Unix(), 10)}})
		if len(within) != 7 || len(before) != 0 {
			t.Fatalf("UPDATE_DATE: %d within the last hour, %d before", len(within), len(before))
		}
		_, err := e.sd.ListOperations(ctx, &servicediscovery.ListOperationsInput{Filters: []types.OperationFilter{{Name: types.OperationFilterNameServiceId, Condition: types.FilterConditionIn, Values: []string{"a", "b"}}}})
		wantCode(t, err, "InvalidInput", "IN")
		_, err = e.sd.ListOperations(ctx, &servicediscovery.ListOperationsInput{Filters: []types.OperationFilter{{Name: types.OperationFilterNameUpdateDate, Condition: types.FilterConditionBetween, Values: []string{"1"}}}})
		wantCode(t, err, "InvalidInput", "BETWEEN")
	})

	t.Run("delete", func(t *testing.T) {
		op := e.succeed(t, must(e.sd.DeleteNamespace(ctx, &servicediscovery.DeleteNamespaceInput{Id: aws.String(public)}))(t).OperationId)
		if op.Type != types.OperationTypeDeleteNamespace || op.Targets["NAMESPACE"] != public {
			t.Fatalf("operation %+v", op)
		}
		_, err := e.sd.GetNamespace(ctx, &servicediscovery.GetNamespaceInput{Id: aws.String(public)})
		errAs[*types.NamespaceNotFound](t, err)
	})
}

func TestCloudMapServices(t *testing.T) {
	e := newCloudMap(t, false)
	ctx := ctxT(t)
	httpNS := e.httpNamespace(t, "shop")
	privateNS := e.privateNamespace(t, "shop.local", "vpc-1")
	publicNS := e.publicNamespace(t, "shop.example.com")

	logs := must(e.sd.CreateService(ctx, &servicediscovery.CreateServiceInput{
		Name: aws.String("logs"), NamespaceId: aws.String(httpNS), CreatorRequestId: aws.String("req-logs"), Description: aws.String("log shards"),
	}))(t).Service
	logsID := aws.ToString(logs.Id)
	if !serviceIDPattern.MatchString(logsID) || aws.ToString(logs.Arn) != "arn:aws:servicediscovery:us-east-1:123456789012:service/"+logsID ||
		logs.Type != types.ServiceTypeHttp || aws.ToString(logs.NamespaceId) != httpNS || logs.DnsConfig != nil {
		t.Fatalf("service %+v", logs)
	}

	t.Run("duplicate name and retry", func(t *testing.T) {
		_, err := e.sd.CreateService(ctx, &servicediscovery.CreateServiceInput{Name: aws.String("logs"), NamespaceId: aws.String(httpNS)})
		exists := errAs[*types.ServiceAlreadyExists](t, err)
		if aws.ToString(exists.ServiceId) != logsID || aws.ToString(exists.ServiceArn) != aws.ToString(logs.Arn) || aws.ToString(exists.CreatorRequestId) != "req-logs" {
			t.Fatalf("ServiceAlreadyExists members: %q %q %q", aws.ToString(exists.ServiceId), aws.ToString(exists.ServiceArn), aws.ToString(exists.CreatorRequestId))
		}
		again := must(e.sd.CreateService(ctx, &servicediscovery.CreateServiceInput{Name: aws.String("logs"), NamespaceId: aws.String(httpNS), CreatorRequestId: aws.String("req-logs")}))(t)
		if aws.ToString(again.Service.Id) != logsID {
			t.Fatalf("retry created %s", aws.ToString(again.Service.Id))
		}
		// Names differing by case are different services in HTTP
		// namespaces only.
		must(e.sd.CreateService(ctx, &servicediscovery.CreateServiceInput{Name: aws.String("LOGS"), NamespaceId: aws.String(httpNS)}))(t)
	})

	dnsRecords := func(ts ...types.RecordType) []types.DnsRecord {
		var out []types.DnsRecord
		for _, rt := range ts {
			out = append(out, types.DnsRecord{Type: rt, TTL: aws.Int64(60)})
		}
		return out
	}
	t.Run("bad configurations", func(t *testing.T) {
		cases := []struct {
			name string
			in   servicediscovery.CreateServiceInput
			msg  string
		}{
			{"DnsConfig in an HTTP namespace", servicediscovery.CreateServiceInput{NamespaceId: aws.String(httpNS), DnsConfig: &types.DnsConfig{DnsRecords: dnsRecords(types.RecordTypeA)}}, "HTTP namespaces"},
			{"no DnsConfig in a DNS namespace", servicediscovery.CreateServiceInput{NamespaceId: aws.String(privateNS)}, "DnsConfig"},
			{"CNAME with MULTIVALUE", servicediscovery.CreateServiceInput{NamespaceId: aws.String(privateNS), DnsConfig: &types.DnsConfig{RoutingPolicy: types.RoutingPolicyMultivalue, DnsRecords: dnsRecords(types.RecordTypeCname)}}, "WEIGHTED"},
			{"CNAME with A", servicediscovery.CreateServiceInput{NamespaceId: aws.String(privateNS), DnsConfig: &types.DnsConfig{RoutingPolicy: types.RoutingPolicyWeighted, DnsRecords: dnsRecords(types.RecordTypeCname, types.RecordTypeA)}}, "CNAME"},
			{"a type twice", servicediscovery.CreateServiceInput{NamespaceId: aws.String(privateNS), DnsConfig: &types.DnsConfig{DnsRecords: dnsRecords(types.RecordTypeA, types.RecordTypeA)}}, "more than once"},
			{"HealthCheckConfig in a private namespace", servicediscovery.CreateServiceInput{NamespaceId: aws.String(privateNS), DnsConfig: &types.DnsConfig{DnsRecords: dnsRecords(types.RecordTypeA)}, HealthCheckConfig: &types.HealthCheckConfig{Type: types.HealthCheckTypeTcp}}, "HealthCheckCustomConfig"},
			{"both health checks", servicediscovery.CreateServiceInput{NamespaceId: aws.String(publicNS), DnsConfig: &types.DnsConfig{DnsRecords: dnsRecords(types.RecordTypeA)}, HealthCheckConfig: &types.HealthCheckConfig{Type: types.HealthCheckTypeTcp}, HealthCheckCustomConfig: &types.HealthCheckCustomConfig{}}, "both"},
			{"TCP check with a path", servicediscovery.CreateServiceInput{NamespaceId: aws.String(publicNS), DnsConfig: &types.DnsConfig{DnsRecords: dnsRecords(types.RecordTypeA)}, HealthCheckConfig: &types.HealthCheckConfig{Type: types.HealthCheckTypeTcp, ResourcePath: aws.String("/x")}}, "ResourcePath"},
			{"health check with a CNAME", servicediscovery.CreateServiceInput{NamespaceId: aws.String(publicNS), DnsConfig: &types.DnsConfig{RoutingPolicy: types.RoutingPolicyWeighted, DnsRecords: dnsRecords(types.RecordTypeCname)}, HealthCheckConfig: &types.HealthCheckConfig{Type: types.HealthCheckTypeHttp}}, "CNAME"},
			{"bad failure threshold", servicediscovery.CreateServiceInput{NamespaceId: aws.String(publicNS), DnsConfig: &types.DnsConfig{DnsRecords: dnsRecords(types.RecordTypeA)}, HealthCheckConfig: &types.HealthCheckConfig{Type: types.HealthCheckTypeTcp, FailureThreshold: aws.Int32(11)}}, "FailureThreshold"},
			{"no namespace", servicediscovery.CreateServiceInput{}, "NamespaceId"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				c.in.Name = aws.String("bad")
				_, err := e.sd.CreateService(ctx, &c.in)
				wantCode(t, err, "InvalidInput", c.msg)
			})
		}
		_, err := e.sd.CreateService(ctx, &servicediscovery.CreateServiceInput{Name: aws.String("x"), NamespaceId: aws.String("ns-doesnotexist0000")})
		errAs[*types.NamespaceNotFound](t, err)
	})

	var web *types.Service
	t.Run("good configurations", func(t *testing.T) {
		web = must(e.sd.CreateService(ctx, &servicediscovery.CreateServiceInput{
			Name: aws.String("web"), NamespaceId: aws.String(privateNS),
			DnsConfig:               &types.DnsConfig{DnsRecords: dnsRecords(types.RecordTypeA, types.RecordTypeAaaa, types.RecordTypeSrv)},
			HealthCheckCustomConfig: &types.HealthCheckCustomConfig{},
		}))(t).Service
		if web.Type != types.ServiceTypeDnsHttp || web.DnsConfig.RoutingPolicy != types.RoutingPolicyMultivalue || len(web.DnsConfig.DnsRecords) != 3 ||
			aws.ToInt32(web.HealthCheckCustomConfig.FailureThreshold) != 1 {
			t.Fatalf("service %+v %+v", web, web.DnsConfig)
		}
		_, err := e.sd.CreateService(ctx, &servicediscovery.CreateServiceInput{Name: aws.String("WEB"), NamespaceId: aws.String(privateNS), DnsConfig: &types.DnsConfig{DnsRecords: dnsRecords(types.RecordTypeA)}})
		errAs[*types.ServiceAlreadyExists](t, err)
		alias := must(e.sd.CreateService(ctx, &servicediscovery.CreateServiceInput{
			Name: aws.String("alias"), DnsConfig: &types.DnsConfig{NamespaceId: aws.String(privateNS), RoutingPolicy: types.RoutingPolicyWeighted, DnsRecords: dnsRecords(types.RecordTypeCname)},
		}))(t).Service
		if aws.ToString(alias.NamespaceId) != privateNS {
			t.Fatalf("DnsConfig.NamespaceId not used: %+v", alias)
		}
		api := must(e.sd.CreateService(ctx, &servicediscovery.CreateServiceInput{Name: aws.String("api"), NamespaceId: aws.String(privateNS), Type: types.ServiceTypeOptionHttp}))(t).Service
		if api.Type != types.ServiceTypeHttp {
			t.Fatalf("Type HTTP in a DNS namespace gave %s", api.Type)
		}
		checked := must(e.sd.CreateService(ctx, &servicediscovery.CreateServiceInput{
			Name: aws.String("checked"), NamespaceId: aws.String(publicNS), DnsConfig: &types.DnsConfig{DnsRecords: dnsRecords(types.RecordTypeA)},
			HealthCheckConfig: &types.HealthCheckConfig{Type: types.HealthCheckTypeHttp},
		}))(t).Service
		if hc := checked.HealthCheckConfig; aws.ToString(hc.ResourcePath) != "/" || aws.ToInt32(hc.FailureThreshold) != 3 {
			t.Fatalf("health check defaults %+v", hc)
		}
	})

	t.Run("get and list", func(t *testing.T) {
		got := must(e.sd.GetService(ctx, &servicediscovery.GetServiceInput{Id: web.Arn}))(t).Service
		if aws.ToString(got.Id) != aws.ToString(web.Id) || aws.ToInt32(got.InstanceCount) != 0 {
			t.Fatalf("GetService %+v", got)
		}
		_, err := e.sd.GetService(ctx, &servicediscovery.GetServiceInput{Id: aws.String("srv-doesnotexist000")})
		errAs[*types.ServiceNotFound](t, err)
		count := func(filters ...types.ServiceFilter) int {
			n := 0
			p := servicediscovery.NewListServicesPaginator(e.sd, &servicediscovery.ListServicesInput{Filters: filters, MaxResults: aws.Int32(1)})
			for p.HasMorePages() {
				n += len(must(p.NextPage(ctx))(t).Services)
			}
			return n
		}
		if all, inPrivate := count(), count(types.ServiceFilter{Name: types.ServiceFilterNameNamespaceId, Values: []string{privateNS}}); all != 6 || inPrivate != 3 {
			t.Fatalf("%d services, %d in the private namespace", all, inPrivate)
		}
		ns := must(e.sd.GetNamespace(ctx, &servicediscovery.GetNamespaceInput{Id: aws.String(privateNS)}))(t).Namespace
		if aws.ToInt32(ns.ServiceCount) != 3 {
			t.Fatalf("ServiceCount %d", aws.ToInt32(ns.ServiceCount))
		}
	})

	t.Run("update", func(t *testing.T) {
		op := e.succeed(t, must(e.sd.UpdateService(ctx, &servicediscovery.UpdateServiceInput{Id: web.Id, Service: &types.ServiceChange{
			Description: aws.String("front end"),
			DnsConfig:   &types.DnsConfigChange{DnsRecords: []types.DnsRecord{{Type: types.RecordTypeA, TTL: aws.Int64(5)}, {Type: types.RecordTypeAaaa, TTL: aws.Int64(6)}, {Type: types.RecordTypeSrv, TTL: aws.Int64(7)}}},
		}}))(t).OperationId)
		if op.Type != types.OperationTypeUpdateService || op.Targets["SERVICE"] != aws.ToString(web.Id) {
			t.Fatalf("operation %+v", op)
		}
		got := must(e.sd.GetService(ctx, &servicediscovery.GetServiceInput{Id: web.Id}))(t).Service
		if aws.ToString(got.Description) != "front end" || aws.ToInt64(got.DnsConfig.DnsRecords[0].TTL) != 5 || aws.ToInt32(got.HealthCheckCustomConfig.FailureThreshold) != 1 {
			t.Fatalf("updated service %+v %+v", got, got.DnsConfig.DnsRecords)
		}
		_, err := e.sd.UpdateService(ctx, &servicediscovery.UpdateServiceInput{Id: web.Id, Service: &types.ServiceChange{DnsConfig: &types.DnsConfigChange{DnsRecords: dnsRecords(types.RecordTypeCname)}}})
		wantCode(t, err, "InvalidInput", "types")
		_, err = e.sd.UpdateService(ctx, &servicediscovery.UpdateServiceInput{Id: aws.String("srv-doesnotexist000"), Service: &types.ServiceChange{Description: aws.String("x")}})
		errAs[*types.ServiceNotFound](t, err)

		// A health check is added, and removed by an update without it.
		checked := must(e.sd.CreateService(ctx, &servicediscovery.CreateServiceInput{Name: aws.String("later"), NamespaceId: aws.String(publicNS), DnsConfig: &types.DnsConfig{DnsRecords: dnsRecords(types.RecordTypeA)}}))(t).Service
		e.succeed(t, must(e.sd.UpdateService(ctx, &servicediscovery.UpdateServiceInput{Id: checked.Id, Service: &types.ServiceChange{
			HealthCheckConfig: &types.HealthCheckConfig{Type: types.HealthCheckTypeTcp, FailureThreshold: aws.Int32(2)}}}))(t).OperationId)
		if hc := must(e.sd.GetService(ctx, &servicediscovery.GetServiceInput{Id: checked.Id}))(t).Service.HealthCheckConfig; hc == nil || aws.ToInt32(hc.FailureThreshold) != 2 {
			t.Fatalf("health check after update: %+v", hc)
		}
		e.succeed(t, must(e.sd.UpdateService(ctx, &servicediscovery.UpdateServiceInput{Id: checked.Id, Service: &types.ServiceChange{Description: aws.String("unchecked")}}))(t).OperationId)
		if hc := must(e.sd.GetService(ctx, &servicediscovery.GetServiceInput{Id: checked.Id}))(t).Service.HealthCheckConfig; hc != nil {
			t.Fatalf("health check kept: %+v", hc)
		}
	})

	t.Run("attributes", func(t *testing.T) {
		must(e.sd.UpdateServiceAttributes(ctx, &servicediscovery.UpdateServiceAttributesInput{ServiceId: aws.String(logsID), Attributes: map[string]string{"team": "ops", "tier": "1"}}))(t)
		attrs := must(e.sd.GetServiceAttributes(ctx, &servicediscovery.GetServiceAttributesInput{ServiceId: aws.String(logsID)}))(t).ServiceAttributes
		if aws.ToString(attrs.ServiceArn) != aws.ToString(logs.Arn) || attrs.Attributes["team"] != "ops" || len(attrs.Attributes) != 2 {
			t.Fatalf("attributes %+v", attrs)
		}
		many := map[string]string{}
		for i := range 29 {
			many[fmt.Sprintf("k%02d", i)] = "v"
		}
		_, err := e.sd.UpdateServiceAttributes(ctx, &servicediscovery.UpdateServiceAttributesInput{ServiceId: aws.String(logsID), Attributes: many})
		errAs[*types.ServiceAttributesLimitExceededException](t, err)
		must(e.sd.DeleteServiceAttributes(ctx, &servicediscovery.DeleteServiceAttributesInput{ServiceId: aws.String(logsID), Attributes: []string{"tier", "absent"}}))(t)
		attrs = must(e.sd.GetServiceAttributes(ctx, &servicediscovery.GetServiceAttributesInput{ServiceId: aws.String(logsID)}))(t).ServiceAttributes
		if len(attrs.Attributes) != 1 || attrs.Attributes["team"] != "ops" {
			t.Fatalf("attributes after delete %v", attrs.Attributes)
		}
		_, err = e.sd.GetServiceAttributes(ctx, &servicediscovery.GetServiceAttributesInput{ServiceId: aws.String("srv-doesnotexist000")})
		errAs[*types.ServiceNotFound](t, err)
		_, err = e.sd.UpdateServiceAttributes(ctx, &servicediscovery.UpdateServiceAttributesInput{ServiceId: aws.String(logsID), Attributes: map[string]string{"k": strings.Repeat("v", 1025)}})
		wantCode(t, err, "InvalidInput", "1024")
	})

	t.Run("tags", func(t *testing.T) {
		tagged := must(e.sd.CreateHttpNamespace(ctx, &servicediscovery.CreateHttpNamespaceInput{Name: aws.String("tagged"), Tags: []types.Tag{{Key: aws.String("env"), Value: aws.String("test")}}}))(t)
		nsID := e.succeed(t, tagged.OperationId).Targets["NAMESPACE"]
		nsARN := "arn:aws:servicediscovery:us-east-1:123456789012:namespace/" + nsID
		tags := func(arn string) map[string]string {
			out := map[string]string{}
			for _, tg := range must(e.sd.ListTagsForResource(ctx, &servicediscovery.ListTagsForResourceInput{ResourceARN: aws.String(arn)}))(t).Tags {
				out[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
			}
			return out
		}
		if got := tags(nsARN); len(got) != 1 || got["env"] != "test" {
			t.Fatalf("namespace tags %v", got)
		}
		must(e.sd.TagResource(ctx, &servicediscovery.TagResourceInput{ResourceARN: logs.Arn, Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("1")}, {Key: aws.String("b"), Value: aws.String("2")}}}))(t)
		must(e.sd.TagResource(ctx, &servicediscovery.TagResourceInput{ResourceARN: logs.Arn, Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("3")}}}))(t)
		must(e.sd.UntagResource(ctx, &servicediscovery.UntagResourceInput{ResourceARN: logs.Arn, TagKeys: []string{"b", "absent"}}))(t)
		if got := tags(aws.ToString(logs.Arn)); len(got) != 1 || got["a"] != "3" {
			t.Fatalf("service tags %v", got)
		}
		var fifty []types.Tag
		for i := range 50 {
			fifty = append(fifty, types.Tag{Key: aws.String(fmt.Sprintf("t%d", i)), Value: aws.String("v")})
		}
		_, err := e.sd.TagResource(ctx, &servicediscovery.TagResourceInput{ResourceARN: logs.Arn, Tags: fifty})
		tooMany := errAs[*types.TooManyTagsException](t, err)
		if aws.ToString(tooMany.ResourceName) != aws.ToString(logs.Arn) {
			t.Fatalf("ResourceName %q", aws.ToString(tooMany.ResourceName))
		}
		_, err = e.sd.TagResource(ctx, &servicediscovery.TagResourceInput{ResourceARN: aws.String("arn:aws:servicediscovery:us-east-1:123456789012:service/srv-doesnotexist000"), Tags: fifty[:1]})
		errAs[*types.ResourceNotFoundException](t, err)
		_, err = e.sd.TagResource(ctx, &servicediscovery.TagResourceInput{ResourceARN: logs.Arn, Tags: []types.Tag{{Key: aws.String("aws:reserved"), Value: aws.String("v")}}})
		wantCode(t, err, "InvalidInput", "aws:")
		_, err = e.sd.ListTagsForResource(ctx, &servicediscovery.ListTagsForResourceInput{ResourceARN: aws.String("arn:aws:servicediscovery:eu-west-1:123456789012:namespace/" + nsID)})
		errAs[*types.ResourceNotFoundException](t, err)
	})

	t.Run("deleting non-empty services and namespaces", func(t *testing.T) {
		e.register(t, logsID, "shard-1", map[string]string{"path": "/mylogs"})
		if n := must(e.sd.GetService(ctx, &servicediscovery.GetServiceInput{Id: aws.String(logsID)}))(t).Service.InstanceCount; aws.ToInt32(n) != 1 {
			t.Fatalf("InstanceCount %d", aws.ToInt32(n))
		}
		_, err := e.sd.DeleteService(ctx, &servicediscovery.DeleteServiceInput{Id: aws.String(logsID)})
		wantCode(t, err, "ResourceInUse", "instances")
		_, err = e.sd.DeleteNamespace(ctx, &servicediscovery.DeleteNamespaceInput{Id: aws.String(httpNS)})
		wantCode(t, err, "ResourceInUse", "services")
		e.succeed(t, must(e.sd.DeregisterInstance(ctx, &servicediscovery.DeregisterInstanceInput{ServiceId: aws.String(logsID), InstanceId: aws.String("shard-1")}))(t).OperationId)
		out := must(e.sd.ListServices(ctx, &servicediscovery.ListServicesInput{Filters: []types.ServiceFilter{{Name: types.ServiceFilterNameNamespaceId, Values: []string{httpNS}}}}))(t)
		for _, s := range out.Services {
			must(e.sd.DeleteService(ctx, &servicediscovery.DeleteServiceInput{Id: s.Id}))(t)
		}
		_, err = e.sd.DeleteService(ctx, &servicediscovery.DeleteServiceInput{Id: aws.String(logsID)})
		errAs[*types.ServiceNotFound](t, err)
		e.succeed(t, must(e.sd.DeleteNamespace(ctx, &servicediscovery.DeleteNamespaceInput{Id: aws.String(httpNS)}))(t).OperationId)
	})
}

func TestCloudMapInstances(t *testing.T) {
	e := newCloudMap(t, false)
	ctx := ctxT(t)
	nsID := e.privateNamespace(t, "apps.local", "vpc-1")
	svc := must(e.sd.CreateService(ctx, &servicediscovery.CreateServiceInput{
		Name: aws.String("api"), NamespaceId: aws.String(nsID),
		DnsConfig: &types.DnsConfig{DnsRecords: []types.DnsRecord{{Type: types.RecordTypeA, TTL: aws.Int64(10)}, {Type: types.RecordTypeSrv, TTL: aws.Int64(10)}}},
	}))(t).Service
	svcID := aws.ToString(svc.Id)
	cname := must(e.sd.CreateService(ctx, &servicediscovery.CreateServiceInput{
		Name: aws.String("ext"), NamespaceId: aws.String(nsID),
		DnsConfig: &types.DnsConfig{RoutingPolicy: types.RoutingPolicyWeighted, DnsRecords: []types.DnsRecord{{Type: types.RecordTypeCname, TTL: aws.Int64(10)}}},
	}))(t).Service

	t.Run("bad attributes", func(t *testing.T) {
		many := map[string]string{"AWS_INSTANCE_IPV4": "10.0.0.1", "AWS_INSTANCE_PORT": "80"}
		for i := range 31 {
			many[fmt.Sprintf("c%d", i)] = "v"
		}
		cases := []struct {
			name    string
			service *string
			attrs   map[string]string
			msg     string
		}{
			{"A without an address", svc.Id, map[string]string{"AWS_INSTANCE_PORT": "80"}, "AWS_INSTANCE_IPV4"},
			{"SRV without a port", svc.Id, map[string]string{"AWS_INSTANCE_IPV4": "10.0.0.1"}, "AWS_INSTANCE_PORT"},
			{"bad address", svc.Id, map[string]string{"AWS_INSTANCE_IPV4": "10.0.0.300", "AWS_INSTANCE_PORT": "80"}, "IPv4"},
			{"bad port", svc.Id, map[string]string{"AWS_INSTANCE_IPV4": "10.0.0.1", "AWS_INSTANCE_PORT": "http"}, "port"},
			{"initial health without custom health", svc.Id, map[string]string{"AWS_INSTANCE_IPV4": "10.0.0.1", "AWS_INSTANCE_PORT": "80", "AWS_INIT_HEALTH_STATUS": "HEALTHY"}, "HealthCheckCustomConfig"},
			{"CNAME without a target", cname.Id, map[string]string{"AWS_INSTANCE_IPV4": "10.0.0.1"}, "AWS_INSTANCE_CNAME"},
			{"EC2 instance in a DNS namespace", svc.Id, map[string]string{"AWS_EC2_INSTANCE_ID": "i-1"}, "HTTP namespaces"},
			{"too many custom attributes", svc.Id, many, "31 were given"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				_, err := e.sd.RegisterInstance(ctx, &servicediscovery.RegisterInstanceInput{ServiceId: c.service, InstanceId: aws.String("bad"), Attributes: c.attrs})
				wantCode(t, err, "InvalidInput", c.msg)
			})
		}
		_, err := e.sd.RegisterInstance(ctx, &servicediscovery.RegisterInstanceInput{ServiceId: aws.String("srv-doesnotexist000"), InstanceId: aws.String("i"), Attributes: map[string]string{}})
		errAs[*types.ServiceNotFound](t, err)
	})

	t.Run("register, replace, list, deregister", func(t *testing.T) {
		out := must(e.sd.RegisterInstance(ctx, &servicediscovery.RegisterInstanceInput{
			ServiceId: svc.Id, InstanceId: aws.String("task-1"), CreatorRequestId: aws.String("r1"),
			Attributes: map[string]string{"AWS_INSTANCE_IPV4": "10.88.0.5", "AWS_INSTANCE_PORT": "8080", "stage": "beta"},
		}))(t)
		op := e.succeed(t, out.OperationId)
		if op.Type != types.OperationTypeRegisterInstance || op.Targets["INSTANCE"] != "task-1" || op.Targets["SERVICE"] != svcID {
			t.Fatalf("operation %+v", op)
		}
		inst := must(e.sd.GetInstance(ctx, &servicediscovery.GetInstanceInput{ServiceId: svc.Id, InstanceId: aws.String("task-1")}))(t).Instance
		if aws.ToString(inst.CreatorRequestId) != "r1" || inst.Attributes["stage"] != "beta" || inst.Attributes["AWS_INSTANCE_IPV4"] != "10.88.0.5" {
			t.Fatalf("instance %+v", inst)
		}
		// A retry returns the same operation; reusing the request id for
		// another instance is refused.
		again := must(e.sd.RegisterInstance(ctx, &servicediscovery.RegisterInstanceInput{
			ServiceId: svc.Id, InstanceId: aws.String("task-1"), CreatorRequestId: aws.String("r1"),
			Attributes: map[string]string{"AWS_INSTANCE_IPV4": "10.88.0.5", "AWS_INSTANCE_PORT": "8080", "stage": "beta"},
		}))(t)
		if aws.ToString(again.OperationId) != aws.ToString(out.OperationId) {
			t.Fatalf("retry got operation %s", aws.ToString(again.OperationId))
		}
		_, err := e.sd.RegisterInstance(ctx, &servicediscovery.RegisterInstanceInput{
			ServiceId: svc.Id, InstanceId: aws.String("task-2"), CreatorRequestId: aws.String("r1"),
			Attributes: map[string]string{"AWS_INSTANCE_IPV4": "10.88.0.6", "AWS_INSTANCE_PORT": "8080"},
		})
		if dup := errAs[*types.DuplicateRequest](t, err); aws.ToString(dup.DuplicateOperationId) != aws.ToString(out.OperationId) {
			t.Fatalf("DuplicateOperationId %s", aws.ToString(dup.DuplicateOperationId))
		}

		// Registering the same id again replaces the instance.
		e.register(t, svcID, "task-1", map[string]string{"AWS_INSTANCE_IPV4": "10.88.0.7", "AWS_INSTANCE_PORT": "8080"})
		inst = must(e.sd.GetInstance(ctx, &servicediscovery.GetInstanceInput{ServiceId: svc.Id, InstanceId: aws.String("task-1")}))(t).Instance
		if inst.Attributes["AWS_INSTANCE_IPV4"] != "10.88.0.7" || inst.Attributes["stage"] != "" {
			t.Fatalf("replaced instance %+v", inst.Attributes)
		}
		for i := 2; i <= 3; i++ {
			e.register(t, svcID, fmt.Sprintf("task-%d", i), map[string]string{"AWS_INSTANCE_IPV4": fmt.Sprintf("10.88.0.%d", 10+i), "AWS_INSTANCE_PORT": "8080"})
		}
		var ids []string
		p := servicediscovery.NewListInstancesPaginator(e.sd, &servicediscovery.ListInstancesInput{ServiceId: svc.Id, MaxResults: aws.Int32(1)})
		for p.HasMorePages() {
			page := must(p.NextPage(ctx))(t)
			if len(page.Instances) > 1 {
				t.Fatalf("page of %d", len(page.Instances))
			}
			for _, i := range page.Instances {
				ids = append(ids, aws.ToString(i.Id))
			}
		}
		if !slices.Equal(ids, []string{"task-1", "task-2", "task-3"}) {
			t.Fatalf("listed %v", ids)
		}
		e.succeed(t, must(e.sd.DeregisterInstance(ctx, &servicediscovery.DeregisterInstanceInput{ServiceId: svc.Id, InstanceId: aws.String("task-3")}))(t).OperationId)
		_, err = e.sd.GetInstance(ctx, &servicediscovery.GetInstanceInput{ServiceId: svc.Id, InstanceId: aws.String("task-3")})
		errAs[*types.InstanceNotFound](t, err)
		_, err = e.sd.DeregisterInstance(ctx, &servicediscovery.DeregisterInstanceInput{ServiceId: svc.Id, InstanceId: aws.String("task-3")})
		errAs[*types.InstanceNotFound](t, err)
		_, err = e.sd.DeregisterInstance(ctx, &servicediscovery.DeregisterInstanceInput{ServiceId: aws.String("srv-doesnotexist000"), InstanceId: aws.String("task-1")})
		errAs[*types.ServiceNotFound](t, err)
		_, err = e.sd.ListInstances(ctx, &servicediscovery.ListInstancesInput{ServiceId: aws.String("srv-doesnotexist000")})
		errAs[*types.ServiceNotFound](t, err)
	})

	t.Run("health of a service without health checks", func(t *testing.T) {
		st := must(e.sd.GetInstancesHealthStatus(ctx, &servicediscovery.GetInstancesHealthStatusInput{ServiceId: svc.Id}))(t).Status
		if len(st) != 2 || st["task-1"] != types.HealthStatusUnknown {
			t.Fatalf("status %v", st)
		}
		_, err := e.sd.UpdateInstanceCustomHealthStatus(ctx, &servicediscovery.UpdateInstanceCustomHealthStatusInput{ServiceId: svc.Id, InstanceId: aws.String("task-1"), Status: types.CustomHealthStatusUnhealthy})
		errAs[*types.CustomHealthNotFound](t, err)
		_, err = e.sd.GetInstancesHealthStatus(ctx, &servicediscovery.GetInstancesHealthStatusInput{ServiceId: svc.Id, Instances: []string{"task-1", "ghost"}})
		errAs[*types.InstanceNotFound](t, err)
	})
}

func TestCloudMapDiscovery(t *testing.T) {
	e := newCloudMap(t, false)
	ctx := ctxT(t)
	e.httpNamespace(t, "shared")
	nsID := must(e.sd.ListNamespaces(ctx, &servicediscovery.ListNamespacesInput{}))(t).Namespaces[0].Id
	logs := must(e.sd.CreateService(ctx, &servicediscovery.CreateServiceInput{
		Name: aws.String("logs"), NamespaceId: nsID, HealthCheckCustomConfig: &types.HealthCheckCustomConfig{},
	}))(t).Service
	plain := must(e.sd.CreateService(ctx, &servicediscovery.CreateServiceInput{Name: aws.String("plain"), NamespaceId: nsID}))(t).Service
	e.register(t, aws.ToString(logs.Id), "i1", map[string]string{"stage": "beta", "version": "1"})
	e.register(t, aws.ToString(logs.Id), "i2", map[string]string{"stage": "prod", "version": "1"})
	e.register(t, aws.ToString(logs.Id), "i3", map[string]string{"stage": "beta", "version": "2", "AWS_INIT_HEALTH_STATUS": "UNHEALTHY"})
	e.register(t, aws.ToString(plain.Id), "p1", map[string]string{"k": "v"})

	in := func(health types.HealthStatusFilter, query, optional map[string]string) *servicediscovery.DiscoverInstancesInput {
		return &servicediscovery.DiscoverInstancesInput{NamespaceName: aws.String("shared"), ServiceName: aws.String("logs"), HealthStatus: health, QueryParameters: query, OptionalParameters: optional}
	}

	t.Run("the SDK's data- host prefix", func(t *testing.T) {
		// Without disabling it, the SDK sends DiscoverInstances to
		// data-127.0.0.1, which no resolver knows.
		plainClient := servicediscovery.NewFromConfig(testenv.AWSConfig(e.endpoint, testenv.Region), func(o *servicediscovery.Options) {
			o.RetryMaxAttempts = 1
		})
		_, err := plainClient.DiscoverInstances(ctx, in("", nil, nil))
		if err == nil || !strings.Contains(err.Error(), "data-127.0.0.1") {
			t.Fatalf("DiscoverInstances with the host prefix: %v", err)
		}
		// Any client that can use an HTTP proxy works too: Wharf's endpoint
		// answers proxy requests for data-<host> itself, so the name never
		// has to resolve.
		u, _ := url.Parse(e.endpoint)
		_, port, _ := net.SplitHostPort(u.Host)
		proxied := servicediscovery.NewFromConfig(testenv.AWSConfig("http://localhost:"+port, testenv.Region), func(o *servicediscovery.Options) {
			o.HTTPClient = &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(u)}}
		})
		out := must(proxied.DiscoverInstances(ctx, in(types.HealthStatusFilterAll, nil, nil)))(t)
		if len(out.Instances) != 3 {
			t.Fatalf("through the proxy: %d instances", len(out.Instances))
		}
	})

	t.Run("filters", func(t *testing.T) {
		cases := []struct {
			name            string
			health          types.HealthStatusFilter
			query, optional map[string]string
			want            []string
		}{
			{"healthy by default", "", nil, nil, []string{"i1", "i2"}},
			{"query parameters all match", "", map[string]string{"stage": "beta"}, nil, []string{"i1"}},
			{"all", types.HealthStatusFilterAll, map[string]string{"stage": "beta"}, nil, []string{"i1", "i3"}},
			{"unhealthy", types.HealthStatusFilterUnhealthy, nil, nil, []string{"i3"}},
			{"healthy or else all, some healthy", types.HealthStatusFilterHealthyOrElseAll, map[string]string{"stage": "beta"}, nil, []string{"i1"}},
			{"healthy or else all, none healthy", types.HealthStatusFilterHealthyOrElseAll, map[string]string{"version": "2"}, nil, []string{"i3"}},
			{"optional parameters preferred", types.HealthStatusFilterAll, map[string]string{"stage": "beta"}, map[string]string{"version": "2"}, []string{"i3"}},
			{"optional parameters ignored when nothing matches", types.HealthStatusFilterAll, map[string]string{"stage": "beta"}, map[string]string{"version": "9"}, []string{"i1", "i3"}},
			{"no match", "", map[string]string{"stage": "gamma"}, nil, nil},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				if got, _ := e.discover(t, in(c.health, c.query, c.optional)); !slices.Equal(got, c.want) {
					t.Fatalf("got %v, want %v", got, c.want)
				}
			})
		}
		out := must(e.sd.DiscoverInstances(ctx, &servicediscovery.DiscoverInstancesInput{NamespaceName: aws.String("shared"), ServiceName: aws.String("logs"), HealthStatus: types.HealthStatusFilterAll, MaxResults: aws.Int32(1)}))(t)
		if len(out.Instances) != 1 {
			t.Fatalf("MaxResults 1 gave %d", len(out.Instances))
		}
		s := out.Instances[0]
		if aws.ToString(s.NamespaceName) != "shared" || aws.ToString(s.ServiceName) != "logs" || s.Attributes["stage"] == "" {
			t.Fatalf("summary %+v", s)
		}
		// Health filters are ignored for services without health checks,
		// whose instances are UNKNOWN.
		out = must(e.sd.DiscoverInstances(ctx, &servicediscovery.DiscoverInstancesInput{NamespaceName: aws.String("shared"), ServiceName: aws.String("plain"), HealthStatus: types.HealthStatusFilterUnhealthy}))(t)
		if len(out.Instances) != 1 || out.Instances[0].HealthStatus != types.HealthStatusUnknown {
			t.Fatalf("plain service: %+v", out.Instances)
		}
		_, err := e.sd.DiscoverInstances(ctx, &servicediscovery.DiscoverInstancesInput{NamespaceName: aws.String("nowhere"), ServiceName: aws.String("logs")})
		errAs[*types.NamespaceNotFound](t, err)
		_, err = e.sd.DiscoverInstances(ctx, &servicediscovery.DiscoverInstancesInput{NamespaceName: aws.String("shared"), ServiceName: aws.String("nothing")})
		errAs[*types.ServiceNotFound](t, err)
		_, err = e.sd.DiscoverInstances(ctx, &servicediscovery.DiscoverInstancesInput{NamespaceName: aws.String("shared"), ServiceName: aws.String("logs"), HealthStatus: "SICK"})
		wantCode(t, err, "InvalidInput", "HealthStatus")
	})

	t.Run("custom health and health status", func(t *testing.T) {
		st := must(e.sd.GetInstancesHealthStatus(ctx, &servicediscovery.GetInstancesHealthStatusInput{ServiceId: logs.Id}))(t).Status
		if st["i1"] != types.HealthStatusHealthy || st["i3"] != types.HealthStatusUnhealthy || len(st) != 3 {
			t.Fatalf("status %v", st)
		}
		must(e.sd.UpdateInstanceCustomHealthStatus(ctx, &servicediscovery.UpdateInstanceCustomHealthStatusInput{ServiceId: logs.Id, InstanceId: aws.String("i3"), Status: types.CustomHealthStatusHealthy}))(t)
		must(e.sd.UpdateInstanceCustomHealthStatus(ctx, &servicediscovery.UpdateInstanceCustomHealthStatusInput{ServiceId: logs.Id, InstanceId: aws.String("i1"), Status: types.CustomHealthStatusUnhealthy}))(t)
		if got, _ := e.discover(t, in("", nil, nil)); !slices.Equal(got, []string{"i2", "i3"}) {
			t.Fatalf("healthy after flipping: %v", got)
		}
		if got, _ := e.discover(t, in(types.HealthStatusFilterUnhealthy, nil, nil)); !slices.Equal(got, []string{"i1"}) {
			t.Fatalf("unhealthy after flipping: %v", got)
		}
		_, err := e.sd.UpdateInstanceCustomHealthStatus(ctx, &servicediscovery.UpdateInstanceCustomHealthStatusInput{ServiceId: logs.Id, InstanceId: aws.String("i1"), Status: "SICK"})
		wantCode(t, err, "InvalidInput", "Status")
		_, err = e.sd.UpdateInstanceCustomHealthStatus(ctx, &servicediscovery.UpdateInstanceCustomHealthStatusInput{ServiceId: logs.Id, InstanceId: aws.String("ghost"), Status: types.CustomHealthStatusHealthy})
		errAs[*types.InstanceNotFound](t, err)
		_, err = e.sd.UpdateInstanceCustomHealthStatus(ctx, &servicediscovery.UpdateInstanceCustomHealthStatusInput{ServiceId: aws.String("srv-doesnotexist000"), InstanceId: aws.String("i1"), Status: types.CustomHealthStatusHealthy})
		errAs[*types.ServiceNotFound](t, err)
		_, err = e.sd.RegisterInstance(ctx, &servicediscovery.RegisterInstanceInput{ServiceId: logs.Id, InstanceId: aws.String("i9"), Attributes: map[string]string{"AWS_INIT_HEALTH_STATUS": "SICK"}})
		wantCode(t, err, "InvalidInput", "AWS_INIT_HEALTH_STATUS")

		var pages []map[string]types.HealthStatus
		p := servicediscovery.NewGetInstancesHealthStatusPaginator(e.sd, &servicediscovery.GetInstancesHealthStatusInput{ServiceId: logs.Id, MaxResults: aws.Int32(1)})
		for p.HasMorePages() {
			pages = append(pages, must(p.NextPage(ctx))(t).Status)
		}
		if len(pages) != 3 || len(pages[0]) != 1 {
			t.Fatalf("pages %v", pages)
		}
		named := must(e.sd.GetInstancesHealthStatus(ctx, &servicediscovery.GetInstancesHealthStatusInput{ServiceId: logs.Id, Instances: []string{"i1", "i2"}, MaxResults: aws.Int32(1)}))(t)
		if len(named.Status) != 1 || named.NextToken == nil {
			t.Fatalf("first page of named instances %+v", named)
		}
		named = must(e.sd.GetInstancesHealthStatus(ctx, &servicediscovery.GetInstancesHealthStatusInput{ServiceId: logs.Id, Instances: []string{"i1", "i2"}, MaxResults: aws.Int32(1), NextToken: named.NextToken}))(t)
		if named.Status["i2"] != types.HealthStatusHealthy || named.NextToken != nil {
			t.Fatalf("second page of named instances %+v", named)
		}
	})

	t.Run("revision changes exactly when the answer can", func(t *testing.T) {
		r0 := e.revision(t, "shared", "logs")
		if _, rev := e.discover(t, in(types.HealthStatusFilterAll, nil, nil)); rev != r0 {
			t.Fatalf("DiscoverInstances revision %d, DiscoverInstancesRevision %d", rev, r0)
		}
		step := func(what string, changes bool, do func()) {
			t.Helper()
			before := e.revision(t, "shared", "logs")
			do()
			after := e.revision(t, "shared", "logs")
			if changes && after <= before || !changes && after != before {
				t.Fatalf("%s: revision %d → %d", what, before, after)
			}
		}
		status := func(id string, s types.CustomHealthStatus) func() {
			return func() {
				must(e.sd.UpdateInstanceCustomHealthStatus(ctx, &servicediscovery.UpdateInstanceCustomHealthStatusInput{ServiceId: logs.Id, InstanceId: aws.String(id), Status: s}))(t)
			}
		}
		step("reads", false, func() {
			must(e.sd.ListInstances(ctx, &servicediscovery.ListInstancesInput{ServiceId: logs.Id}))(t)
			must(e.sd.GetService(ctx, &servicediscovery.GetServiceInput{Id: logs.Id}))(t)
			e.discover(t, in("", nil, nil))
		})
		step("health change", true, status("i1", types.CustomHealthStatusHealthy))
		step("same health again", false, status("i1", types.CustomHealthStatusHealthy))
		step("identical re-registration", false, func() {
			e.register(t, aws.ToString(logs.Id), "i2", map[string]string{"stage": "prod", "version": "1"})
		})
		step("changed attributes", true, func() {
			e.register(t, aws.ToString(logs.Id), "i2", map[string]string{"stage": "prod", "version": "2"})
		})
		step("new instance", true, func() { e.register(t, aws.ToString(logs.Id), "i4", map[string]string{"stage": "prod"}) })
		step("deregistration", true, func() {
			e.succeed(t, must(e.sd.DeregisterInstance(ctx, &servicediscovery.DeregisterInstanceInput{ServiceId: logs.Id, InstanceId: aws.String("i4")}))(t).OperationId)
		})
		step("another service's instances", false, func() { e.register(t, aws.ToString(plain.Id), "p2", map[string]string{"k": "v"}) })
		step("service attributes", false, func() {
			must(e.sd.UpdateServiceAttributes(ctx, &servicediscovery.UpdateServiceAttributesInput{ServiceId: logs.Id, Attributes: map[string]string{"a": "b"}}))(t)
		})
	})
}

func TestCloudMapHealthChecks(t *testing.T) {
	e := newCloudMap(t, false)
	ctx := ctxT(t)
	nsID := e.publicNamespace(t, "checked.example.com")

	var failing atomic.Bool
	var probes atomic.Int64
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		probes.Add(1)
		if r.URL.Path != "/health" || r.Host != "web.checked.example.com" {
			http.Error(w, "wrong path or host "+r.Host+r.URL.Path, http.StatusNotFound)
			return
		}
		if failing.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		http.Redirect(w, r, "/elsewhere", http.StatusFound) // 3xx is healthy
	}))
	defer app.Close()
	_, appPort, _ := net.SplitHostPort(strings.TrimPrefix(app.URL, "http://"))

	web := must(e.sd.CreateService(ctx, &servicediscovery.CreateServiceInput{
		Name: aws.String("web"), NamespaceId: aws.String(nsID),
		DnsConfig:         &types.DnsConfig{DnsRecords: []types.DnsRecord{{Type: types.RecordTypeA, TTL: aws.Int64(10)}}},
		HealthCheckConfig: &types.HealthCheckConfig{Type: types.HealthCheckTypeHttp, ResourcePath: aws.String("/health"), FailureThreshold: aws.Int32(2)},
	}))(t).Service
	e.register(t, aws.ToString(web.Id), "local", map[string]string{"AWS_INSTANCE_IPV4": "127.0.0.1", "AWS_INSTANCE_PORT": appPort})
	// 192.0.2.0/24 is not Wharf's: it is never contacted and stays HEALTHY.
	e.register(t, aws.ToString(web.Id), "remote", map[string]string{"AWS_INSTANCE_IPV4": "192.0.2.10", "AWS_INSTANCE_PORT": "80"})

	waitHealth := func(id string, want types.HealthStatus) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			st := must(e.sd.GetInstancesHealthStatus(ctx, &servicediscovery.GetInstancesHealthStatusInput{ServiceId: web.Id}))(t).Status
			if st[id] == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("instance %s still %s after 10s, want %s (probes: %d)", id, st[id], want, probes.Load())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitProbes := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for probes.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("only %d probes after 10s, want %d", probes.Load(), n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitProbes(3)
	waitHealth("local", types.HealthStatusHealthy)
	failing.Store(true)
	waitHealth("local", types.HealthStatusUnhealthy)
	if got, _ := e.discover(t, &servicediscovery.DiscoverInstancesInput{NamespaceName: aws.String("checked.example.com"), ServiceName: aws.String("web")}); !slices.Equal(got, []string{"remote"}) {
		t.Fatalf("healthy instances while failing: %v", got)
	}
	failing.Store(false)
	waitHealth("local", types.HealthStatusHealthy)
	waitHealth("remote", types.HealthStatusHealthy)

	t.Run("TCP", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		tcp := must(e.sd.CreateService(ctx, &servicediscovery.CreateServiceInput{
			Name: aws.String("db"), NamespaceId: aws.String(nsID),
			DnsConfig:         &types.DnsConfig{DnsRecords: []types.DnsRecord{{Type: types.RecordTypeA, TTL: aws.Int64(10)}}},
			HealthCheckConfig: &types.HealthCheckConfig{Type: types.HealthCheckTypeTcp, FailureThreshold: aws.Int32(1)},
		}))(t).Service
		e.register(t, aws.ToString(tcp.Id), "db-1", map[string]string{"AWS_INSTANCE_IPV4": "127.0.0.1", "AWS_INSTANCE_PORT": port})
		health := func() types.HealthStatus {
			return must(e.sd.GetInstancesHealthStatus(ctx, &servicediscovery.GetInstancesHealthStatusInput{ServiceId: tcp.Id}))(t).Status["db-1"]
		}
		ln.Close()
		deadline := time.Now().Add(10 * time.Second)
		for health() != types.HealthStatusUnhealthy {
			if time.Now().After(deadline) {
				t.Fatal("a closed port did not make the instance UNHEALTHY within 10s")
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// TestCloudMapOperationLifecycle pauses the operations worker to see
// operations SUBMITTED, refused duplicates, and failures.
func TestCloudMapOperationLifecycle(t *testing.T) {
	e := newCloudMap(t, true)
	ctx := ctxT(t)

	created := must(e.sd.CreateHttpNamespace(ctx, &servicediscovery.CreateHttpNamespaceInput{Name: aws.String("later")}))(t)
	op := must(e.sd.GetOperation(ctx, &servicediscovery.GetOperationInput{OperationId: created.OperationId}))(t).Operation
	nsID := op.Targets["NAMESPACE"]
	if op.Status != types.OperationStatusSubmitted || nsID == "" {
		t.Fatalf("operation before the worker runs: %+v", op)
	}
	// Not visible before it succeeds; the name is held meanwhile.
	_, err := e.sd.GetNamespace(ctx, &servicediscovery.GetNamespaceInput{Id: aws.String(nsID)})
	errAs[*types.NamespaceNotFound](t, err)
	_, err = e.sd.CreateHttpNamespace(ctx, &servicediscovery.CreateHttpNamespaceInput{Name: aws.String("later")})
	if dup := errAs[*types.DuplicateRequest](t, err); aws.ToString(dup.DuplicateOperationId) != aws.ToString(created.OperationId) {
		t.Fatalf("DuplicateOperationId %s", aws.ToString(dup.DuplicateOperationId))
	}
	submitted := must(e.sd.ListOperations(ctx, &servicediscovery.ListOperationsInput{Filters: []types.OperationFilter{{Name: types.OperationFilterNameStatus, Values: []string{"SUBMITTED"}}}}))(t)
	if len(submitted.Operations) != 1 {
		t.Fatalf("submitted operations %+v", submitted.Operations)
	}

	// The worker takes it SUBMITTED → PENDING → SUCCESS.
	events, _ := e.store().Watch(ctx, cloudmap.OperationKey(testenv.Region, aws.ToString(created.OperationId)), 0)
	e.start()
	e.succeed(t, created.OperationId)
	var seen []string
	for len(seen) < 2 {
		select {
		case ev := <-events:
			var r cloudmap.OperationRecord
			if err := json.Unmarshal(ev.Value, &r); err != nil {
				t.Fatal(err)
			}
			seen = append(seen, string(r.Status))
		case <-time.After(10 * time.Second):
			t.Fatalf("operation states seen: %v", seen)
		}
	}
	if !slices.Equal(seen, []string{"PENDING", "SUCCESS"}) {
		t.Fatalf("operation went through %v after SUBMITTED", seen)
	}

	svc := must(e.sd.CreateService(ctx, &servicediscovery.CreateServiceInput{Name: aws.String("svc"), NamespaceId: aws.String(nsID)}))(t).Service
	e.stop()
	reg := must(e.sd.RegisterInstance(ctx, &servicediscovery.RegisterInstanceInput{ServiceId: svc.Id, InstanceId: aws.String("i1"), Attributes: map[string]string{"a": "1"}}))(t)
	_, err = e.sd.RegisterInstance(ctx, &servicediscovery.RegisterInstanceInput{ServiceId: svc.Id, InstanceId: aws.String("i1"), Attributes: map[string]string{"a": "2"}})
	if dup := errAs[*types.DuplicateRequest](t, err); aws.ToString(dup.DuplicateOperationId) != aws.ToString(reg.OperationId) {
		t.Fatalf("DuplicateOperationId %s", aws.ToString(dup.DuplicateOperationId))
	}
	_, err = e.sd.DeregisterInstance(ctx, &servicediscovery.DeregisterInstanceInput{ServiceId: svc.Id, InstanceId: aws.String("i1")})
	errAs[*types.DuplicateRequest](t, err)
	// The service goes before the registration runs: the operation fails.
	must(e.sd.DeleteService(ctx, &servicediscovery.DeleteServiceInput{Id: svc.Id}))(t)
	e.start()
	failed := e.waitOp(t, aws.ToString(reg.OperationId))
	if failed.Status != types.OperationStatusFail || aws.ToString(failed.ErrorCode) == "" || !strings.Contains(aws.ToString(failed.ErrorMessage), "deleted") {
		t.Fatalf("operation %+v", failed)
	}
	failures := must(e.sd.ListOperations(ctx, &servicediscovery.ListOperationsInput{Filters: []types.OperationFilter{{Name: types.OperationFilterNameStatus, Values: []string{"FAIL"}}}}))(t)
	if len(failures.Operations) != 1 || aws.ToString(failures.Operations[0].Id) != aws.ToString(reg.OperationId) {
		t.Fatalf("failed operations %+v", failures.Operations)
	}
}

func TestCloudMapThrottling(t *testing.T) {
	e := newCloudMap(t, true, func(c *awsproto.Config) {
		c.Limits = awsproto.Limits{ReadRate: 0.01, ReadBurst: 2}
	})
	e.start()
	client := servicediscovery.NewFromConfig(testenv.AWSConfig(e.endpoint, testenv.Region), testenv.WithoutHostPrefix, func(o *servicediscovery.Options) {
		o.RetryMaxAttempts = 1
	})
	var err error
	for range 3 {
		if _, err = client.ListNamespaces(ctxT(t), &servicediscovery.ListNamespacesInput{}); err != nil {
			break
		}
	}
	wantCode(t, err, "RequestLimitExceeded", "Rate exceeded")
}
