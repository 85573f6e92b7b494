package state

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/store"
)

// The state's changes against a real embedded etcd, without the API: what a
// task reserves and gives back, addresses, conflicts and transaction
// sizes.

const account = "123456789012"

func newState(t *testing.T, subnet string) (*State, Scope) {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &State{Store: st, Account: account, Subnet: netip.MustParsePrefix(subnet)}, Scope{Region: "us-east-1", Now: time.Unix(1_800_000_000, 0).UTC()}
}

// instance writes a container instance with cpu units and memory MiB and
// awsvpc room for eni tasks, and returns it.
func instance(t *testing.T, s *State, c Scope, id string, cpu, mem, eni int32) *InstanceRecord {
	t.Helper()
	r := &InstanceRecord{ContainerInstance: ContainerInstance{
		ContainerInstanceArn: s.ARN(c, "container-instance/c/"+id),
		Status:               "ACTIVE",
		AgentConnected:       true,
		RemainingResources: []Resource{
			{Name: "CPU", Type: "INTEGER", IntegerValue: cpu},
			{Name: "MEMORY", Type: "INTEGER", IntegerValue: mem},
			{Name: "ENI", Type: "INTEGER", IntegerValue: eni},
			{Name: "PORTS", Type: "STRINGSET", StringSetValue: []string{"22"}},
			{Name: "PORTS_UDP", Type: "STRINGSET", StringSetValue: []string{}},
		},
	}}
	if err := s.Store.Update(context.Background(), func(tx *store.Tx) error { return tx.Put(s.InstanceKey(c, r.ContainerInstanceArn), r) }); err != nil {
		t.Fatal(err)
	}
	return r
}

func launch(s *State, c Scope, mode ecsapi.NetworkMode, hostPort int32) *Launch {
	td := ecsapi.TaskDefinition{
		TaskDefinitionArn: s.ARN(c, "task-definition/web:1"), Family: "web", Revision: 1, NetworkMode: mode,
		ContainerDefinitions: []ecsapi.ContainerDefinition{{Name: "app", Image: "busybox", Cpu: 256, Memory: ptrTo(int32(128))}},
	}
	if hostPort != 0 {
		td.ContainerDefinitions[0].PortMappings = []ecsapi.PortMapping{{ContainerPort: ptrTo(int32(80)), HostPort: ptrTo(hostPort)}}
	}
	return &Launch{
		Cluster: &ClusterRecord{Cluster: Cluster{ClusterName: "c", ClusterArn: s.ARN(c, "cluster/c")}},
		TD:      &TaskDefRecord{TaskDefinition: TaskDefinitionFromWire(&td)},
	}
}

func ptrTo[T any](v T) *T { return &v }

// place creates a task of l on instance id in one transaction, as RunTask
// does, and returns it.
func place(t *testing.T, s *State, c Scope, id string, l *Launch) (*TaskRecord, error) {
	t.Helper()
	var out *TaskRecord
	err := s.Store.Update(context.Background(), func(tx *store.Tx) error {
		r, err := Get[InstanceRecord](tx, s.InstanceKey(c, s.ARN(c, "container-instance/c/"+id)))
		if err != nil {
			return err
		}
		d := DemandOf(WireTD(l.TD), nil)
		if n := NodeOf(r); n.CPU < d.CPU || n.Memory < d.Memory {
			return Limit(KindInstance, id, "full")
		}
		out, err = s.NewTask(tx, c, l, r, d)
		return err
	})
	return out, err
}

func remaining(t *testing.T, s *State, c Scope, id string) (cpu, mem int32, ports []string) {
	t.Helper()
	r, err := Get[InstanceRecord](StoreReader{Ctx: context.Background(), Store: s.Store}, s.InstanceKey(c, s.ARN(c, "container-instance/c/"+id)))
	if err != nil || r == nil {
		t.Fatalf("instance %s: %v", id, err)
	}
	return ResourceNamed(r.RemainingResources, "CPU").IntegerValue, ResourceNamed(r.RemainingResources, "MEMORY").IntegerValue, ResourceNamed(r.RemainingResources, "PORTS").StringSetValue
}

func TestTaskReservesAndReleases(t *testing.T) {
	s, c := newState(t, "10.88.0.0/16")
	instance(t, s, c, "i1", 1024, 1000, 3)
	task, err := place(t, s, c, "i1", launch(s, c, ecsapi.NetworkModeBridge, 8080))
	if err != nil {
		t.Fatal(err)
	}
	if cpu, mem, ports := remaining(t, s, c, "i1"); cpu != 768 || mem != 872 || len(ports) != 2 || ports[1] != "8080" {
		t.Fatalf("after placing: cpu %d mem %d ports %v; want 768, 872, [22 8080]", cpu, mem, ports)
	}
	if task.Reserved.CPU != 256 || task.Reserved.Memory != 128 || task.LastStatus != "PENDING" {
		t.Fatalf("task %+v", task)
	}
	// Stopping a task no agent has seen stops it at once and gives its
	// resources back.
	err = s.Store.Update(context.Background(), func(tx *store.Tx) error {
		return s.Stop(tx, c, task, ecsapi.TaskStopCodeUserInitiated, "test")
	})
	if err != nil {
		t.Fatal(err)
	}
	if cpu, mem, ports := remaining(t, s, c, "i1"); cpu != 1024 || mem != 1000 || len(ports) != 1 {
		t.Fatalf("after stopping: cpu %d mem %d ports %v; want everything back", cpu, mem, ports)
	}
	if task.LastStatus != "STOPPED" || task.StopCode != ecsapi.TaskStopCodeUserInitiated || task.StoppedAt == nil {
		t.Fatalf("stopped task %+v", task.Task)
	}
}

func TestTransitionOnlyMovesForward(t *testing.T) {
	s, c := newState(t, "10.88.0.0/16")
	instance(t, s, c, "i1", 1024, 1000, 3)
	task, err := place(t, s, c, "i1", launch(s, c, ecsapi.NetworkModeBridge, 0))
	if err != nil {
		t.Fatal(err)
	}
	err = s.Store.Update(context.Background(), func(tx *store.Tx) error {
		for _, st := range []string{"RUNNING", "PENDING", "ACTIVATING"} {
			if err := s.Transition(tx, c, task, st); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if task.LastStatus != "RUNNING" || task.StartedAt == nil || task.Connectivity != ecsapi.ConnectivityConnected {
		t.Fatalf("after RUNNING then older statuses: %s, startedAt %v", task.LastStatus, task.StartedAt)
	}
}

func TestAddresses(t *testing.T) {
	// A /28 has 13 task addresses: .0 is the network, .1 the gateway and
	// .15 the broadcast address.
	s, c := newState(t, "10.99.0.0/28")
	instance(t, s, c, "i1", 100000, 100000, 100)
	seen := map[string]bool{}
	var tasks []*TaskRecord
	for range 13 {
		task, err := place(t, s, c, "i1", launch(s, c, ecsapi.NetworkModeAwsvpc, 0))
		if err != nil {
			t.Fatal(err)
		}
		ip := TaskIP(task)
		if seen[ip] || ip == "10.99.0.0" || ip == "10.99.0.1" || ip == "10.99.0.15" || !netip.MustParsePrefix("10.99.0.0/28").Contains(netip.MustParseAddr(ip)) {
			t.Fatalf("address %s given again or out of range (given: %v)", ip, seen)
		}
		seen[ip] = true
		tasks = append(tasks, task)
	}
	_, err := place(t, s, c, "i1", launch(s, c, ecsapi.NetworkModeAwsvpc, 0))
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrLimit) || e.Kind != KindAddress {
		t.Fatalf("a 14th awsvpc task: %v; want ErrLimit for the addresses", err)
	}
	// Stopping a task frees its address for the next.
	err = s.Store.Update(context.Background(), func(tx *store.Tx) error {
		return s.Stop(tx, c, tasks[0], ecsapi.TaskStopCodeUserInitiated, "test")
	})
	if err != nil {
		t.Fatal(err)
	}
	task, err := place(t, s, c, "i1", launch(s, c, ecsapi.NetworkModeAwsvpc, 0))
	if err != nil || TaskIP(task) != TaskIP(tasks[0]) {
		t.Fatalf("after a stop: %v, address %s; want %s again", err, TaskIP(task), TaskIP(tasks[0]))
	}
}

// TestRacingPlacementsNeverOvercommit: 20 writers place on one instance
// that holds 4 tasks; the transactions' compares make all but 4 see it
// full.
func TestRacingPlacementsNeverOvercommit(t *testing.T) {
	s, c := newState(t, "10.88.0.0/16")
	instance(t, s, c, "i1", 1024, 1000, 3)
	var wg sync.WaitGroup
	var mu sync.Mutex
	placed, full := 0, 0
	for range 20 {
		wg.Go(func() {
			_, err := place(t, s, c, "i1", launch(s, c, ecsapi.NetworkModeBridge, 0))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				placed++
			case errors.Is(err, ErrLimit):
				full++
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if cpu, _, _ := remaining(t, s, c, "i1"); placed != 4 || full != 16 || cpu != 0 {
		t.Fatalf("%d placed, %d refused, %d CPU left; want 4, 16, 0", placed, full, cpu)
	}
}

// TestTaskSize: a task's creation adds what the service scheduler budgets
// for (opsPerStart in internal/ecs/control: 5), so that a pass stays within
// etcd's limit of store.MaxOps.
func TestTaskSize(t *testing.T) {
	s, c := newState(t, "10.88.0.0/16")
	instance(t, s, c, "i1", 100000, 100000, 100)
	for _, mode := range []ecsapi.NetworkMode{ecsapi.NetworkModeBridge, ecsapi.NetworkModeAwsvpc} {
		err := s.Store.Update(context.Background(), func(tx *store.Tx) error {
			r, err := Get[InstanceRecord](tx, s.InstanceKey(c, s.ARN(c, "container-instance/c/i1")))
			if err != nil {
				return err
			}
			l := launch(s, c, mode, 0)
			for i := range 10 {
				cmp0, w0 := tx.Size()
				if _, err := s.NewTask(tx, c, l, r, DemandOf(WireTD(l.TD), nil)); err != nil {
					return err
				}
				cmp, w := tx.Size()
				// The instance is written once however many tasks it
				// takes.
				if i > 0 && (cmp-cmp0 > 1 || w-w0 > 3) {
					t.Errorf("%s task %d added %d compares and %d writes", mode, i, cmp-cmp0, w-w0)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
