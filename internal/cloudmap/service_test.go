package cloudmap

import (
	"context"
	"sync"
	"testing"
	"time"

	sd "github.com/wharfhq/wharf/internal/api/servicediscovery"
	"github.com/wharfhq/wharf/internal/store"
)

// testService is a Service over an embedded etcd in a temporary directory,
// with a clock the test moves. Its background work does not run.
type testService struct {
	*Service
	mu  sync.Mutex
	now time.Time
}

func newTestService(t *testing.T) *testService {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ts := &testService{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	svc, err := New(context.Background(), Config{Store: st, Account: "123456789012", Retention: time.Hour, Now: ts.clock})
	if err != nil {
		t.Fatal(err)
	}
	ts.Service = svc
	return ts
}

func (ts *testService) clock() time.Time {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.now
}

func (ts *testService) advanceClock(d time.Duration) {
	ts.mu.Lock()
	ts.now = ts.now.Add(d)
	ts.mu.Unlock()
}

func (ts *testService) revision(t *testing.T, serviceID string) int64 {
	t.Helper()
	var n int64
	if _, err := ts.st.Get(context.Background(), RevisionKey("us-east-1", serviceID), &n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestPutInstanceBumpsRevisionOnVisibleChanges(t *testing.T) {
	ts := newTestService(t)
	ctx := context.Background()
	put := func(r InstanceRecord) {
		t.Helper()
		if err := ts.st.Update(ctx, func(tx *store.Tx) error { return PutInstance(tx, "us-east-1", &r) }); err != nil {
			t.Fatal(err)
		}
	}
	inst := InstanceRecord{Instance: sd.Instance{Id: "task", Attributes: map[string]string{"AWS_INSTANCE_IPV4": "10.88.0.2"}}, ServiceID: "srv-1", Health: sd.HealthStatusHealthy}
	steps := []struct {
		what string
		do   func()
		want int64
	}{
		{"new instance", func() { put(inst) }, 1},
		{"unchanged", func() { put(inst) }, 1},
		{"bookkeeping only", func() { r := inst; r.ECSTask = "arn:task"; put(r) }, 1},
		{"health", func() { r := inst; r.ECSTask, r.Health = "arn:task", sd.HealthStatusUnhealthy; put(r) }, 2},
		{"attributes", func() {
			r := inst
			r.ECSTask, r.Health, r.Attributes = "arn:task", sd.HealthStatusUnhealthy, map[string]string{"AWS_INSTANCE_IPV4": "10.88.0.3"}
			put(r)
		}, 3},
		{"deleted", func() {
			err := ts.st.Update(ctx, func(tx *store.Tx) error {
				found, err := DeleteInstance(tx, "us-east-1", "srv-1", "task")
				if !found {
					t.Error("DeleteInstance did not find the instance")
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}, 4},
		{"deleted again", func() {
			err := ts.st.Update(ctx, func(tx *store.Tx) error {
				found, err := DeleteInstance(tx, "us-east-1", "srv-1", "task")
				if found {
					t.Error("DeleteInstance found a deleted instance")
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}, 4},
	}
	for _, s := range steps {
		s.do()
		if got := ts.revision(t, "srv-1"); got != s.want {
			t.Fatalf("after %s: revision %d, want %d", s.what, got, s.want)
		}
	}
}

func TestSweepRemovesExpiredOperations(t *testing.T) {
	ts := newTestService(t)
	ctx := context.Background()
	out, err := ts.CreateHttpNamespace(ctx, &sd.CreateHttpNamespaceRequest{Name: "shop", CreatorRequestId: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	count := func(kind string) int64 {
		t.Helper()
		n, err := ts.st.Count(ctx, regionPrefix("us-east-1")+kind+"/")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if count("inflight") != 2 || count("requests") != 1 {
		t.Fatalf("submitted: %d inflight, %d requests", count("inflight"), count("requests"))
	}
	// Unfinished operations stay, however old.
	ts.advanceClock(2 * time.Hour)
	if err := ts.sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if count("operations") != 1 || count("inflight") != 2 {
		t.Fatalf("an unfinished operation was swept")
	}
	ts.advance(ctx, "us-east-1", out.OperationId)
	op, err := ts.GetOperation(ctx, &sd.GetOperationRequest{OperationId: out.OperationId})
	if err != nil || op.Operation.Status != sd.OperationStatusSuccess {
		t.Fatalf("operation %+v, %v", op, err)
	}
	if count("inflight") != 0 {
		t.Fatalf("%d inflight keys after success", count("inflight"))
	}
	// Finished within the retention: kept.
	ts.advanceClock(30 * time.Minute)
	if err := ts.sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if count("operations") != 1 {
		t.Fatal("a recent operation was swept")
	}
	ts.advanceClock(time.Hour)
	if err := ts.sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if count("operations") != 0 || count("requests") != 0 || count("namespaces") != 1 {
		t.Fatalf("after the retention: %d operations, %d requests, %d namespaces", count("operations"), count("requests"), count("namespaces"))
	}
	if _, err := ts.GetOperation(ctx, &sd.GetOperationRequest{OperationId: out.OperationId}); err == nil {
		t.Fatal("a swept operation is still readable")
	}
}
