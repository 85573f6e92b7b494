package controller

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// world simulates a service's tasks around Reconcile: what the agents and
// the ecs package would do with each plan, with tasks of any age and
// health, revisions that fail to start or exit at once, and tasks that die.
type world struct {
	t    *testing.T
	r    *rand.Rand
	s    *Service
	next int
	// bad tells, per deployment, how its tasks fail: "" (they run),
	// "exit" (they exit as soon as they run) or "nostart" (they never
	// reach RUNNING).
	bad map[string]string
	// chaos is the chance per step that a running task dies.
	chaos float64
	// checked: tasks of every deployment have an essential health check.
	checked bool
	log     []string
}

func newWorld(t *testing.T, seed uint64, s *Service) *world {
	return &world{t: t, r: rand.New(rand.NewPCG(seed, 7)), s: s, bad: map[string]string{}}
}

func (w *world) logf(format string, args ...any) {
	w.log = append(w.log, fmt.Sprintf("%s: ", w.s.Now.Sub(t0))+fmt.Sprintf(format, args...))
}

func (w *world) fatalf(format string, args ...any) {
	w.t.Helper()
	w.t.Fatalf("%s\n%s\nlast steps:\n  %s", fmt.Sprintf(format, args...), w.state(), strings.Join(w.log[max(0, len(w.log)-30):], "\n  "))
}

func (w *world) state() string {
	var b strings.Builder
	fmt.Fprintf(&b, "desired %d %d%%/%d%%, deployments", w.s.Desired, w.s.MinHealthyPercent, w.s.MaxPercent)
	for _, d := range w.s.Deployments {
		fmt.Fprintf(&b, " %s(%s,%s)", d.ID, d.RolloutState, w.bad[d.ID])
	}
	for _, t := range w.s.Tasks {
		if t.LastStatus != "STOPPED" {
			fmt.Fprintf(&b, "\n  %s %s %s/%s health %s since %s", t.ID, t.Deployment, t.LastStatus, t.DesiredStatus, t.Health, w.s.Now.Sub(t.RunningSince))
		}
	}
	return b.String()
}

// countsHealthy is ECS's rule for the minimum healthy percent, written out
// apart from the reconciler's own: a RUNNING task counts once HEALTHY when
// it has health checks, else HealthyAfter after it started running.
func (w *world) countsHealthy(t *Task) bool {
	if t.DesiredStatus != "RUNNING" || t.LastStatus != "RUNNING" || t.Lost {
		return false
	}
	if t.HealthChecked {
		return t.Health == "HEALTHY"
	}
	return !w.s.Now.Before(t.RunningSince.Add(w.s.HealthyAfter))
}

// serves: a task that runs and has not failed its health checks, whether
// or not it counts as healthy yet.
func serves(t *Task) bool {
	return t.DesiredStatus == "RUNNING" && t.LastStatus == "RUNNING" && !t.Lost && t.Health != "UNHEALTHY"
}

// deploy starts a new deployment, as UpdateService does.
func (w *world) deploy(id, fails string) {
	w.bad[id] = fails
	w.s.Deployments = append([]Deployment{{ID: id, RolloutState: InProgress}}, w.s.Deployments...)
	w.logf("deploy %s (%q)", id, fails)
}

// step reconciles once, checks the plan, applies it, and lets time pass.
func (w *world) step() Plan {
	w.t.Helper()
	s := w.s
	p := Reconcile(s)
	minHealthy := int(math.Ceil(float64(s.Desired) * float64(s.MinHealthyPercent) / 100))
	maxTotal := int(math.Floor(float64(s.Desired) * float64(s.MaxPercent) / 100))

	stops := map[string]bool{}
	for _, st := range p.Stop {
		stops[st.ID] = true
	}
	// The plan's scale-in comes on top of its stops; the ecs package
	// picks those among ScaleInFrom, which here are the first ones.
	scaleIn := p.ScaleInFrom[:min(p.ScaleIn, len(p.ScaleInFrom))]
	for _, id := range scaleIn {
		stops[id] = true
	}
	before, after, servingBefore, servingAfter, total := 0, 0, 0, 0, 0
	for i := range s.Tasks {
		t := &s.Tasks[i]
		if w.countsHealthy(t) {
			before++
			if !stops[t.ID] {
				after++
			}
		}
		if serves(t) {
			servingBefore++
			if !stops[t.ID] {
				servingAfter++
			}
		}
		if t.LastStatus != "STOPPED" && !t.Lost {
			total++
		}
	}
	if !s.Deleting && after < min(before, minHealthy) {
		w.fatalf("the plan stops %v %v: %d tasks counted healthy before, %d after, minimum %d", p.Stop, scaleIn, before, after, minHealthy)
	}
	if !s.Deleting && servingAfter < min(servingBefore, minHealthy) {
		w.fatalf("the plan stops %v %v: %d tasks serving before, %d after, minimum %d", p.Stop, scaleIn, servingBefore, servingAfter, minHealthy)
	}
	if p.Start > 0 && total+p.Start > max(maxTotal, s.Desired) {
		w.fatalf("the plan starts %d with %d tasks already up: above the maximum %d", p.Start, total, maxTotal)
	}

	// Apply the plan as the ecs package does.
	if p.Rollout != "" {
		s.Deployments[0].RolloutState = p.Rollout
		w.logf("%s %s", s.Deployments[0].ID, p.Rollout)
		if p.Rollout == Completed {
			s.LastCompleted = s.Deployments[0].ID
		}
	}
	if p.RollbackTo != "" {
		w.logf("roll back to %s", p.RollbackTo)
		i := slices.IndexFunc(s.Deployments, func(d Deployment) bool { return d.ID == p.RollbackTo })
		d := Deployment{ID: p.RollbackTo}
		if i >= 0 {
			d = s.Deployments[i]
			s.Deployments = slices.Delete(s.Deployments, i, i+1)
		}
		d.RolloutState, d.CountFrom = InProgress, s.Now
		s.Deployments = append([]Deployment{d}, s.Deployments...)
	} else {
		for i := range s.Tasks {
			if t := &s.Tasks[i]; stops[t.ID] {
				t.DesiredStatus = "STOPPED"
				t.FailedHealth = t.FailedHealth || slices.ContainsFunc(p.Stop, func(st Stop) bool { return st.ID == t.ID && st.Health })
			}
		}
		for range p.Start {
			s.Tasks = append(s.Tasks, Task{ID: fmt.Sprint("t", w.next), Deployment: s.Deployments[0].ID, LastStatus: "PENDING", DesiredStatus: "RUNNING", HealthChecked: w.checked, Health: "UNKNOWN"})
			w.next++
		}
		s.Deployments = slices.DeleteFunc(s.Deployments, func(d Deployment) bool { return slices.Contains(p.Drop, d.ID) })
	}
	if len(p.Stop)+len(scaleIn)+p.Start > 0 {
		w.logf("start %d, stop %v %v", p.Start, p.Stop, scaleIn)
	}
	s.Steady, s.UnableToStartReported = p.Steady, p.UnableToStart

	// Time passes; the tasks move on.
	s.Now = s.Now.Add(time.Duration(w.r.IntN(15_000)) * time.Millisecond)
	for i := range s.Tasks {
		t := &s.Tasks[i]
		stop := func(code string) {
			t.LastStatus, t.StopCode, t.StoppedAt = "STOPPED", code, s.Now
		}
		switch {
		case t.LastStatus == "STOPPED":
		case t.DesiredStatus == "STOPPED":
			if w.r.IntN(2) == 0 {
				stop("ServiceSchedulerInitiated")
			}
		case t.LastStatus == "PENDING":
			if w.r.IntN(3) == 0 {
				continue
			}
			if w.bad[t.Deployment] == "nostart" {
				stop("TaskFailedToStart")
				continue
			}
			t.LastStatus, t.RunningSince = "RUNNING", s.Now
		case w.bad[t.Deployment] == "exit":
			stop("EssentialContainerExited")
		case w.r.Float64() < w.chaos:
			stop("EssentialContainerExited")
		case t.HealthChecked && t.Health == "UNKNOWN" && w.r.IntN(2) == 0:
			t.Health = "HEALTHY"
		case t.HealthChecked && w.chaos > 0 && w.r.Float64() < w.chaos:
			t.Health = "UNHEALTHY"
		}
	}
	return p
}

// run steps until the service is steady on its PRIMARY, or fails.
func (w *world) run(steps int) {
	w.t.Helper()
	for range steps {
		if p := w.step(); p.Steady {
			return
		}
	}
	w.fatalf("not steady after %d steps", steps)
}

func (w *world) running(dep string) int {
	n := 0
	for _, t := range w.s.Tasks {
		if t.Deployment == dep && t.LastStatus == "RUNNING" && t.DesiredStatus == "RUNNING" {
			n++
		}
	}
	return n
}

// settle steps n times without checking for steadiness.
func (w *world) settle(n int) {
	w.t.Helper()
	for range n {
		w.step()
	}
}

func scenario(t *testing.T, seed uint64, desired int) *world {
	s := &Service{Name: "web", Desired: desired, MinHealthyPercent: 100, MaxPercent: 200, Now: t0,
		HealthyAfter: 40 * time.Second, BackoffBase: 10 * time.Second, Backoff: 15 * time.Minute,
		CircuitBreaker: true, Rollback: true}
	w := newWorld(t, seed, s)
	w.deploy("d1", "")
	return w
}

// TestFailedDeploymentKeepsCapacity is the scenario of a service of 6 that
// moves to a revision whose container exits at once, with the circuit
// breaker and rollback on, at 100%/200%.
func TestFailedDeploymentKeepsCapacity(t *testing.T) {
	for seed := range uint64(50) {
		t.Run(fmt.Sprint("completed first deployment/", seed), func(t *testing.T) {
			w := scenario(t, seed, 6)
			w.run(100)
			w.s.Now = w.s.Now.Add(time.Minute)
			w.run(5)
			w.deploy("d2", "exit")
			w.run(200)
			if w.s.Deployments[0].ID != "d1" || len(w.s.Deployments) != 1 || w.running("d1") != 6 {
				w.fatalf("after the rollback: want d1 alone with 6 running")
			}
			if !slices.ContainsFunc(w.log, func(l string) bool { return strings.HasSuffix(l, "roll back to d1") }) {
				w.fatalf("no rollback")
			}
		})
		t.Run(fmt.Sprint("update right after RUNNING/", seed), func(t *testing.T) {
			// The first deployment never completed: there is nothing to
			// roll back to, and its tasks keep running.
			w := scenario(t, seed, 6)
			for w.running("d1") < 6 {
				w.step()
			}
			w.deploy("d2", "exit")
			w.settle(200)
			if w.s.Deployments[0].RolloutState != Failed || w.running("d1") != 6 {
				w.fatalf("want d2 FAILED and d1's 6 tasks running")
			}
		})
		t.Run(fmt.Sprint("tasks that never start, without rollback/", seed), func(t *testing.T) {
			w := scenario(t, seed, 6)
			w.s.Rollback = false
			w.run(100)
			w.s.Now = w.s.Now.Add(time.Minute)
			w.deploy("d2", "nostart")
			w.settle(200)
			if w.s.Deployments[0].RolloutState != Failed || w.running("d1") != 6 {
				w.fatalf("want d2 FAILED and d1's 6 tasks running")
			}
		})
		t.Run(fmt.Sprint("two updates in quick succession/", seed), func(t *testing.T) {
			w := scenario(t, seed, 6)
			w.run(100)
			w.s.Now = w.s.Now.Add(time.Minute)
			w.deploy("d2", "")
			w.step()
			w.deploy("d3", "")
			w.run(300)
			if w.s.Deployments[0].ID != "d3" || len(w.s.Deployments) != 1 || w.running("d3") != 6 {
				w.fatalf("want d3 alone with 6 running")
			}
		})
		t.Run(fmt.Sprint("update during a scale-out/", seed), func(t *testing.T) {
			w := scenario(t, seed, 3)
			w.run(100)
			w.s.Now = w.s.Now.Add(time.Minute)
			w.s.Desired = 6
			w.step()
			w.deploy("d2", "")
			w.run(300)
			if w.s.Deployments[0].ID != "d2" || len(w.s.Deployments) != 1 || w.running("d2") != 6 {
				w.fatalf("want d2 alone with 6 running")
			}
		})
	}
}

// TestReconcileNeverDropsHealthyTasks drives random services through
// random deployments (good ones, ones whose tasks exit at once, ones whose
// tasks never start), desired count changes and task deaths, with tasks of
// every age and health: no plan ever stops tasks counted healthy below the
// minimum healthy count, nor running tasks that have not failed their
// health checks (counted or not yet) below it, nor starts tasks above the
// maximum; and once the
// last deployment is a good one and nothing dies any more, the service
// settles on it.
func TestReconcileNeverDropsHealthyTasks(t *testing.T) {
	for seed := range uint64(400) {
		r := rand.New(rand.NewPCG(seed, 11))
		s := &Service{
			Name: "web", Desired: 1 + r.IntN(10), Now: t0,
			MinHealthyPercent: []int{0, 50, 75, 100}[r.IntN(4)],
			MaxPercent:        []int{100, 150, 200}[r.IntN(3)],
			HealthyAfter:      []time.Duration{0, 10 * time.Second, 40 * time.Second}[r.IntN(3)],
			BackoffBase:       10 * time.Second, Backoff: time.Minute,
			CircuitBreaker: r.IntN(4) > 0, Rollback: r.IntN(2) == 0,
			HealthCheckGrace: time.Duration(r.IntN(3)) * 10 * time.Second,
		}
		w := newWorld(t, seed, s)
		w.checked = r.IntN(2) == 0
		w.chaos = 0.02
		w.deploy("d1", "")
		dep := 1
		for range 150 {
			switch r.IntN(20) {
			case 0:
				dep++
				w.deploy(fmt.Sprint("d", dep), []string{"", "", "exit", "nostart"}[r.IntN(4)])
			case 1:
				s.Desired = max(1, s.Desired+r.IntN(5)-2)
				w.logf("desired %d", s.Desired)
			}
			w.step()
			if t.Failed() {
				return
			}
		}
		w.chaos = 0
		maxTotal := int(math.Floor(float64(s.Desired) * float64(s.MaxPercent) / 100))
		minHealthy := int(math.Ceil(float64(s.Desired) * float64(s.MinHealthyPercent) / 100))
		if maxTotal <= minHealthy && maxTotal <= s.Desired {
			s.MinHealthyPercent = 0 // a configuration that allows no progress
		}
		dep++
		last := fmt.Sprint("d", dep)
		w.deploy(last, "")
		w.run(1000)
		if w.s.Deployments[0].ID != last || len(w.s.Deployments) != 1 {
			w.fatalf("seed %d: steady, but not on %s alone", seed, last)
		}
	}
}
