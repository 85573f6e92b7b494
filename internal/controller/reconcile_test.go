package controller

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func svc(desired int, deployments ...string) *Service {
	s := &Service{Name: "web", Desired: desired, MinHealthyPercent: 100, MaxPercent: 200, Now: t0,
		HealthyAfter: 40 * time.Second, BackoffBase: 10 * time.Second, Backoff: 15 * time.Minute}
	for i, d := range deployments {
		st := InProgress
		if i > 0 {
			st = Completed
		}
		s.Deployments = append(s.Deployments, Deployment{ID: d, RolloutState: st})
	}
	return s
}

func healthyTasks(dep string, n int) []Task {
	var out []Task
	for i := range n {
		out = append(out, Task{ID: fmt.Sprintf("%s-%d", dep, i), Deployment: dep, LastStatus: "RUNNING", DesiredStatus: "RUNNING", RunningSince: t0.Add(-time.Hour)})
	}
	return out
}

func stopIDs(p Plan) string {
	var ids []string
	for _, s := range p.Stop {
		ids = append(ids, s.ID)
	}
	return strings.Join(ids, ",")
}

func TestReconcile(t *testing.T) {
	for _, tc := range []struct {
		name  string
		s     func() *Service
		check func(t *testing.T, p Plan)
	}{
		{"a new service starts its tasks", func() *Service { return svc(3, "d1") }, func(t *testing.T, p Plan) {
			if p.Start != 3 || len(p.Stop) != 0 || p.Steady {
				t.Fatalf("%+v", p)
			}
		}},
		{"running healthy tasks complete the rollout", func() *Service {
			s := svc(3, "d1")
			s.Tasks = healthyTasks("d1", 3)
			return s
		}, func(t *testing.T, p Plan) {
			if p.Start != 0 || !p.Steady || p.Rollout != Completed || len(p.Events) != 2 {
				t.Fatalf("%+v", p)
			}
		}},
		{"tasks without health checks are healthy 40s after RUNNING", func() *Service {
			s := svc(1, "d1")
			s.Tasks = healthyTasks("d1", 1)
			s.Tasks[0].RunningSince = t0.Add(-10 * time.Second)
			return s
		}, func(t *testing.T, p Plan) {
			if p.Steady || !p.RetryAt.Equal(t0.Add(30*time.Second)) {
				t.Fatalf("%+v", p)
			}
		}},
		{"100/200 starts the new revision first", func() *Service {
			s := svc(6, "d2", "d1")
			s.Tasks = healthyTasks("d1", 6)
			return s
		}, func(t *testing.T, p Plan) {
			if p.Start != 6 || len(p.Stop) != 0 {
				t.Fatalf("%+v", p)
			}
		}},
		{"100/200 stops the old revision once the new one is healthy", func() *Service {
			s := svc(6, "d2", "d1")
			s.Tasks = append(healthyTasks("d1", 6), healthyTasks("d2", 6)...)
			return s
		}, func(t *testing.T, p Plan) {
			if p.Start != 0 || len(p.Stop) != 6 || !strings.HasPrefix(stopIDs(p), "d1-") {
				t.Fatalf("%+v", p)
			}
		}},
		{"50/100 stops half first", func() *Service {
			s := svc(6, "d2", "d1")
			s.MinHealthyPercent, s.MaxPercent = 50, 100
			s.Tasks = healthyTasks("d1", 6)
			return s
		}, func(t *testing.T, p Plan) {
			if p.Start != 0 || len(p.Stop) != 3 {
				t.Fatalf("%+v", p)
			}
		}},
		{"unhealthy tasks are replaced", func() *Service {
			s := svc(2, "d1")
			s.Tasks = healthyTasks("d1", 2)
			s.Tasks[0].HealthChecked, s.Tasks[0].Health = true, "UNHEALTHY"
			return s
		}, func(t *testing.T, p Plan) {
			if p.Start != 1 || len(p.Stop) != 1 || !p.Stop[0].Health || p.Stop[0].ID != "d1-0" {
				t.Fatalf("%+v", p)
			}
		}},
		{"the health check grace period protects new tasks", func() *Service {
			s := svc(1, "d1")
			s.HealthCheckGrace = time.Minute
			s.Tasks = healthyTasks("d1", 1)
			s.Tasks[0].HealthChecked, s.Tasks[0].Health, s.Tasks[0].RunningSince = true, "UNHEALTHY", t0.Add(-30*time.Second)
			return s
		}, func(t *testing.T, p Plan) {
			if len(p.Stop) != 0 {
				t.Fatalf("%+v", p)
			}
		}},
		{"the circuit breaker fails the deployment and rolls back", func() *Service {
			s := svc(2, "d2", "d1")
			s.CircuitBreaker, s.Rollback, s.LastCompleted = true, true, "d1"
			s.Tasks = healthyTasks("d1", 2)
			for i := range 3 {
				s.Tasks = append(s.Tasks, Task{ID: fmt.Sprint("f", i), Deployment: "d2", LastStatus: "STOPPED", DesiredStatus: "STOPPED", StopCode: "TaskFailedToStart", StoppedAt: t0})
			}
			return s
		}, func(t *testing.T, p Plan) {
			if p.Rollout != Failed || p.RollbackTo != "d1" || p.Start != 0 {
				t.Fatalf("%+v", p)
			}
		}},
		{"a failed deployment without rollback starts nothing", func() *Service {
			s := svc(2, "d2")
			s.CircuitBreaker = true
			for i := range 3 {
				s.Tasks = append(s.Tasks, Task{ID: fmt.Sprint("f", i), Deployment: "d2", LastStatus: "STOPPED", DesiredStatus: "STOPPED", StopCode: "EssentialContainerExited", RunningSince: t0.Add(-time.Minute), StoppedAt: t0})
			}
			return s
		}, func(t *testing.T, p Plan) {
			if p.Rollout != Failed || p.Start != 0 || p.RollbackTo != "" {
				t.Fatalf("%+v", p)
			}
		}},
		{"repeated start failures back off", func() *Service {
			s := svc(1, "d1")
			for i := range 4 {
				s.Tasks = append(s.Tasks, Task{ID: fmt.Sprint("f", i), Deployment: "d1", LastStatus: "STOPPED", DesiredStatus: "STOPPED", StopCode: "TaskFailedToStart", StoppedAt: t0.Add(-time.Second)})
			}
			return s
		}, func(t *testing.T, p Plan) {
			// 4 failures: 10s·2³ = 80s after the last one.
			if p.Start != 0 || !p.RetryAt.Equal(t0.Add(79*time.Second)) || !p.UnableToStart || len(p.Events) != 1 {
				t.Fatalf("%+v", p)
			}
		}},
		{"scale in leaves the choice to the strategies", func() *Service {
			s := svc(2, "d1")
			s.Tasks = healthyTasks("d1", 4)
			s.Tasks = append(s.Tasks, Task{ID: "pending", Deployment: "d1", LastStatus: "PENDING", DesiredStatus: "RUNNING"})
			return s
		}, func(t *testing.T, p Plan) {
			if stopIDs(p) != "pending" || p.ScaleIn != 2 || len(p.ScaleInFrom) != 4 {
				t.Fatalf("%+v", p)
			}
		}},
		{"draining instances get their tasks replaced first", func() *Service {
			s := svc(2, "d1")
			s.Tasks = healthyTasks("d1", 2)
			s.Tasks[0].Draining = true
			return s
		}, func(t *testing.T, p Plan) {
			if p.Start != 1 || len(p.Stop) != 0 {
				t.Fatalf("%+v", p)
			}
		}},
		{"tasks of lost instances are replaced at once", func() *Service {
			s := svc(2, "d1")
			s.MaxPercent = 100
			s.Tasks = healthyTasks("d1", 2)
			s.Tasks[1].Lost = true
			return s
		}, func(t *testing.T, p Plan) {
			if p.Start != 1 || stopIDs(p) != "d1-1" {
				t.Fatalf("%+v", p)
			}
		}},
		{"a configuration that allows no progress says so", func() *Service {
			s := svc(2, "d2", "d1")
			s.MaxPercent = 100
			s.Tasks = healthyTasks("d1", 2)
			return s
		}, func(t *testing.T, p Plan) {
			if p.Start != 0 || len(p.Stop) != 0 || len(p.Events) != 1 || !strings.Contains(p.Events[0], "unable to stop or start") {
				t.Fatalf("%+v", p)
			}
		}},
		{"deleting stops everything", func() *Service {
			s := svc(0, "d1")
			s.Deleting = true
			s.Tasks = healthyTasks("d1", 3)
			return s
		}, func(t *testing.T, p Plan) {
			if len(p.Stop) != 3 || p.Start != 0 {
				t.Fatalf("%+v", p)
			}
		}},
		{"drained deployments drop off", func() *Service {
			s := svc(1, "d2", "d1")
			s.Tasks = healthyTasks("d2", 1)
			return s
		}, func(t *testing.T, p Plan) {
			if len(p.Drop) != 1 || p.Drop[0] != "d1" || !p.Steady {
				t.Fatalf("%+v", p)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, Reconcile(tc.s())) })
	}
}

func TestFailureThreshold(t *testing.T) {
	for desired, want := range map[int]int{1: 3, 5: 3, 7: 4, 10: 5, 400: 200, 1000: 200} {
		if got := FailureThreshold(desired); got != want {
			t.Errorf("FailureThreshold(%d) = %d, want %d", desired, got, want)
		}
	}
}

// TestRollingUpdateInvariants simulates rolling updates under random
// configurations: started tasks run and turn healthy a step later, stopped
// tasks stop a step later. The number of tasks never exceeds the maximum,
// the healthy ones never fall below the minimum, and the deployment always
// completes with only new tasks.
func TestRollingUpdateInvariants(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for run := range 2000 {
		desired := 1 + r.IntN(12)
		minPct := []int{0, 25, 50, 75, 100}[r.IntN(5)]
		maxPct := []int{100, 125, 150, 200}[r.IntN(4)]
		maxTotal := int(math.Floor(float64(desired) * float64(maxPct) / 100))
		minHealthy := int(math.Ceil(float64(desired) * float64(minPct) / 100))
		if maxTotal <= minHealthy && !(maxTotal > desired) {
			continue // no progress possible; covered by its own test
		}
		s := svc(desired, "new", "old")
		s.MinHealthyPercent, s.MaxPercent, s.HealthyAfter = minPct, maxPct, 0
		s.Tasks = healthyTasks("old", desired)
		next := 0
		for step := 0; ; step++ {
			if step > 200 {
				t.Fatalf("run %d (desired %d, %d/%d): no convergence", run, desired, minPct, maxPct)
			}
			p := Reconcile(s)
			if p.Steady {
				for _, tk := range s.Tasks {
					if live(&tk) && tk.Deployment != "new" {
						t.Fatalf("run %d: steady with an old task", run)
					}
				}
				break
			}
			stops := map[string]bool{}
			for _, st := range p.Stop {
				stops[st.ID] = true
			}
			for i := range s.Tasks {
				tk := &s.Tasks[i]
				switch {
				case stops[tk.ID]:
					tk.DesiredStatus = "STOPPED"
				case tk.DesiredStatus == "STOPPED":
					tk.LastStatus = "STOPPED"
				case tk.LastStatus == "PENDING":
					tk.LastStatus, tk.RunningSince = "RUNNING", s.Now
				}
			}
			for range p.Start {
				s.Tasks = append(s.Tasks, Task{ID: fmt.Sprint("n", next), Deployment: "new", LastStatus: "PENDING", DesiredStatus: "RUNNING"})
				next++
			}
			total, healthy := 0, 0
			for _, tk := range s.Tasks {
				if tk.LastStatus != "STOPPED" {
					total++
				}
				if live(&tk) && tk.LastStatus == "RUNNING" {
					healthy++
				}
			}
			if total > max(maxTotal, desired) {
				t.Fatalf("run %d (desired %d, %d/%d) step %d: %d tasks above the maximum %d", run, desired, minPct, maxPct, step, total, maxTotal)
			}
			if healthy < minHealthy {
				t.Fatalf("run %d (desired %d, %d/%d) step %d: %d healthy below the minimum %d", run, desired, minPct, maxPct, step, healthy, minHealthy)
			}
			for _, d := range p.Drop {
				if d == "old" && len(s.Deployments) == 2 {
					s.Deployments = s.Deployments[:1]
				}
			}
		}
	}
}
