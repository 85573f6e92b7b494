// Package controller decides what the service scheduler does: given a
// snapshot of a service, its deployments and its tasks, Reconcile returns a
// plan (tasks to start and stop, rollout state changes, a rollback). It is a
// pure function, so its invariants can be tested exhaustively; the ecs
// package reads the snapshot from the store and applies the plan.
package controller

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// Rollout states of a deployment, as ECS reports them.
const (
	InProgress = "IN_PROGRESS"
	Completed  = "COMPLETED"
	Failed     = "FAILED"
)

// Deployment is one deployment of a service; the first is the PRIMARY.
type Deployment struct {
	ID           string
	RolloutState string
	// CountFrom is when the deployment last became PRIMARY: the circuit
	// breaker and the start back-off count only its tasks that stopped
	// since, so that a deployment a rollback brings back starts afresh.
	CountFrom time.Time
}

// Task is one task of the service, as far as scheduling cares.
type Task struct {
	ID            string
	Deployment    string // the deployment that started it (startedBy)
	LastStatus    string
	DesiredStatus string
	// HealthChecked is true when an essential container has a health check.
	HealthChecked bool
	Health        string // HEALTHY, UNHEALTHY or UNKNOWN
	RunningSince  time.Time
	StoppedAt     time.Time
	StopCode      string
	// FailedHealth is set on tasks the scheduler stopped for failing their
	// health checks.
	FailedHealth bool
	// Draining: the task's instance is DRAINING. Lost: its agent has been
	// gone longer than the grace period.
	Draining, Lost bool
}

// Service is a service's snapshot.
type Service struct {
	Name                  string
	Desired               int
	MinHealthyPercent     int
	MaxPercent            int
	CircuitBreaker        bool
	Rollback              bool
	Deleting              bool // DeleteService was called
	HealthCheckGrace      time.Duration
	Deployments           []Deployment
	Tasks                 []Task
	LastCompleted         string // id of the last deployment that completed
	Steady                bool   // the service was at steady state at the last pass
	Now                   time.Time
	HealthyAfter          time.Duration // a task without health checks counts as healthy this long after RUNNING
	BackoffBase, Backoff  time.Duration // start-failure back-off: first delay and cap
	UnableToStartReported bool
	// LostAt is when the first task on a disconnected instance counts as
	// lost, for the caller to look again then; zero for none.
	LostAt time.Time
}

// Stop asks for a task to stop.
type Stop struct {
	ID     string
	Reason string
	// Health is set when the task is stopped for failing health checks.
	Health bool
}

// Plan is what to do next.
type Plan struct {
	// Start is how many tasks of the PRIMARY deployment to place.
	Start int
	// Stop lists tasks to stop.
	Stop []Stop
	// ScaleIn is how many more healthy PRIMARY tasks to stop; the caller
	// picks them with its placement strategies from ScaleInFrom.
	ScaleIn     int
	ScaleInFrom []string
	// Rollout sets the PRIMARY deployment's rollout state and reason.
	Rollout, RolloutReason string
	// RollbackTo names the deployment whose task definition a new
	// deployment rolls back to.
	RollbackTo string
	// Drop lists older deployments left without tasks (now INACTIVE).
	Drop []string
	// Steady tells whether the service is at steady state after the plan.
	Steady bool
	// Events are service events to record, oldest first.
	Events []string
	// UnableToStart is set while start failures keep the back-off on.
	UnableToStart bool
	// RetryAt is when to look again although nothing changed (a back-off
	// ends, a task becomes healthy by age); zero for none.
	RetryAt time.Time
}

// FailureThreshold is the circuit breaker's threshold for a desired count:
// half of it, at least 3 and at most 200.
func FailureThreshold(desired int) int {
	return min(max(int(math.Ceil(0.5*float64(desired))), 3), 200)
}

func live(t *Task) bool { return t.DesiredStatus == "RUNNING" && t.LastStatus != "STOPPED" }

// stopping: asked to stop, not stopped yet. It still counts against the
// maximum, as in ECS.
func stopping(t *Task) bool { return t.DesiredStatus == "STOPPED" && t.LastStatus != "STOPPED" }

func running(t *Task) bool { return t.LastStatus == "RUNNING" }

// serving reports a task that runs and has not failed its health checks.
// Such a task may not count toward the minimum healthy yet (it is too
// young, or its health is still UNKNOWN), but it is not stopped as an
// unhealthy one: an old deployment's serving tasks are only stopped as far
// as the healthy count stays at or above the minimum.
func serving(t *Task) bool {
	return live(t) && running(t) && !t.Lost && !(t.HealthChecked && t.Health == "UNHEALTHY")
}

// failed reports a stopped task that counts against the circuit breaker:
// it never ran, an essential container exited, or it failed its health
// checks.
func failed(t *Task) bool {
	if t.LastStatus != "STOPPED" {
		return false
	}
	return t.StopCode == "TaskFailedToStart" || t.StopCode == "EssentialContainerExited" || t.FailedHealth
}

// Reconcile returns the next step for s.
func Reconcile(s *Service) Plan {
	var p Plan
	if len(s.Deployments) == 0 {
		return p
	}
	primary := s.Deployments[0]
	isPrimary := func(t *Task) bool { return t.Deployment == primary.ID }
	// counts: a PRIMARY task whose stop the circuit breaker and the
	// back-off consider.
	counts := func(t *Task) bool {
		return isPrimary(t) && failed(t) && !t.StoppedAt.Before(primary.CountFrom)
	}

	healthy := func(t *Task) bool {
		if !live(t) || !running(t) || t.Lost {
			return false
		}
		if t.HealthChecked {
			return t.Health == "HEALTHY"
		}
		return s.Now.Sub(t.RunningSince) >= s.HealthyAfter
	}
	if s.Deleting {
		for i := range s.Tasks {
			if t := &s.Tasks[i]; live(t) {
				p.Stop = append(p.Stop, Stop{ID: t.ID, Reason: "Service is being deleted"})
			}
		}
		return p
	}

	var keep, stale []*Task // keep: live primary tasks on good instances
	total, healthyCount := 0, 0
	for i := range s.Tasks {
		t := &s.Tasks[i]
		if stopping(t) && !t.Lost {
			total++
		}
		if !live(t) {
			continue
		}
		if !t.Lost {
			total++
		}
		if healthy(t) {
			healthyCount++
		}
		unhealthy := running(t) && t.HealthChecked && t.Health == "UNHEALTHY" && s.Now.Sub(t.RunningSince) >= s.HealthCheckGrace
		switch {
		case unhealthy:
			p.Stop = append(p.Stop, Stop{ID: t.ID, Reason: "Task failed container health checks", Health: true})
		case isPrimary(t) && !t.Draining && !t.Lost:
			keep = append(keep, t)
		default:
			stale = append(stale, t)
		}
	}
	// Tasks on lost instances no longer count: they are stopped and
	// replaced without waiting.
	for _, t := range stale {
		if t.Lost {
			p.Stop = append(p.Stop, Stop{ID: t.ID, Reason: "Task stopped because its container instance lost contact with the control plane"})
		}
	}

	desired := s.Desired
	maxTotal := int(math.Floor(float64(desired) * float64(s.MaxPercent) / 100))
	minHealthy := int(math.Ceil(float64(desired) * float64(s.MinHealthyPercent) / 100))

	// Circuit breaker and back-off look at the PRIMARY's stopped tasks.
	failures, consecutive := 0, 0
	var lastFailure, lastRun time.Time
	for i := range s.Tasks {
		t := &s.Tasks[i]
		if !isPrimary(t) {
			continue
		}
		if !t.RunningSince.IsZero() && t.RunningSince.After(lastRun) {
			lastRun = t.RunningSince
		}
		if counts(t) {
			failures++
		}
	}
	for i := range s.Tasks {
		t := &s.Tasks[i]
		if counts(t) && t.RunningSince.IsZero() && t.StoppedAt.After(lastRun) {
			consecutive++
			if t.StoppedAt.After(lastFailure) {
				lastFailure = t.StoppedAt
			}
		}
	}
	state := primary.RolloutState
	if s.CircuitBreaker && state == InProgress && failures >= FailureThreshold(desired) {
		state = Failed
		p.Rollout = Failed
		p.RolloutReason = fmt.Sprintf("ECS deployment circuit breaker: tasks failed to start. %d tasks failed (threshold %d).", failures, FailureThreshold(desired))
		p.Events = append(p.Events, fmt.Sprintf("(service %s) (deployment %s) deployment failed: tasks failed to start.", s.Name, primary.ID))
		if s.Rollback && s.LastCompleted != "" && s.LastCompleted != primary.ID {
			p.RollbackTo = s.LastCompleted
			p.Events = append(p.Events, fmt.Sprintf("(service %s) (deployment %s) rolling back to deployment %s.", s.Name, primary.ID, s.LastCompleted))
			return p
		}
	}

	// Start primary tasks up to the desired count within the maximum.
	need := desired - len(keep)
	room := maxTotal - total
	start := max(min(need, room), 0)
	if state == Failed {
		start = 0
	}
	if start > 0 && consecutive > 0 {
		delay := s.BackoffBase << min(consecutive-1, 20)
		if delay > s.Backoff || delay <= 0 {
			delay = s.Backoff
		}
		if until := lastFailure.Add(delay); s.Now.Before(until) {
			start = 0
			p.RetryAt = until
		}
		if consecutive >= 3 {
			p.UnableToStart = true
			if !s.UnableToStartReported {
				p.Events = append(p.Events, fmt.Sprintf("(service %s) is unable to consistently start tasks successfully. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.", s.Name))
			}
		}
	}
	p.Start = start

	// Stop stale tasks: those that do not serve at once, serving ones only
	// as far as the healthy count stays at or above the minimum, and none
	// while the PRIMARY has failed: its tasks would not replace them. Of
	// the serving ones, those that do not count as healthy yet go first.
	sort.SliceStable(stale, func(i, j int) bool {
		if hi, hj := healthy(stale[i]), healthy(stale[j]); hi != hj {
			return hj
		}
		return deploymentIndex(s, stale[i].Deployment) > deploymentIndex(s, stale[j].Deployment)
	})
	spare := healthyCount - minHealthy
	for _, t := range stale {
		if t.Lost {
			continue
		}
		reason := fmt.Sprintf("Scaling activity initiated by (deployment %s)", primary.ID)
		if t.Draining {
			reason = "Container instance is draining"
		}
		switch {
		case !serving(t):
			p.Stop = append(p.Stop, Stop{ID: t.ID, Reason: reason})
		case spare > 0 && state != Failed:
			p.Stop = append(p.Stop, Stop{ID: t.ID, Reason: reason})
			if healthy(t) {
				spare--
			}
		}
	}

	// Scale in: stop primary tasks beyond the desired count, those that
	// do not serve first, then those that do not count as healthy yet;
	// the placement strategies choose among the healthy ones.
	if excess := len(keep) - desired; excess > 0 {
		rank := func(t *Task) int {
			switch {
			case healthy(t):
				return 2
			case serving(t):
				return 1
			}
			return 0
		}
		sort.SliceStable(keep, func(i, j int) bool { return rank(keep[i]) < rank(keep[j]) })
		for _, t := range keep[:excess] {
			if healthy(t) {
				break
			}
			p.Stop = append(p.Stop, Stop{ID: t.ID, Reason: fmt.Sprintf("Scaling activity initiated by (deployment %s)", primary.ID)})
			excess--
		}
		if excess > 0 {
			p.ScaleIn = excess
			for _, t := range keep {
				if healthy(t) {
					p.ScaleInFrom = append(p.ScaleInFrom, t.ID)
				}
			}
		}
	}

	// A deployment that can neither start nor stop anything is stuck.
	if need > 0 && room <= 0 && len(p.Stop) == 0 && spare <= 0 && len(stale) > 0 && state != Failed {
		p.Events = append(p.Events, fmt.Sprintf("(service %s) was unable to stop or start tasks during a deployment because of the service deployment configuration. Update the minimumHealthyPercent or maximumPercent value and try again.", s.Name))
	}

	// Older deployments without tasks are done.
	liveBy := map[string]int{}
	for i := range s.Tasks {
		if t := &s.Tasks[i]; live(t) || stopping(t) {
			liveBy[t.Deployment]++
		}
	}
	for _, d := range s.Deployments[1:] {
		if liveBy[d.ID] == 0 {
			p.Drop = append(p.Drop, d.ID)
		}
	}

	// Steady state: the PRIMARY alone runs its desired count, all healthy.
	primaryHealthy := 0
	for _, t := range keep {
		if healthy(t) {
			primaryHealthy++
		}
	}
	p.Steady = primaryHealthy == desired && len(keep) == desired && len(stale) == 0 && len(p.Stop) == 0 &&
		len(s.Deployments)-len(p.Drop) == 1
	if p.Steady && state == InProgress {
		p.Rollout = Completed
		p.RolloutReason = fmt.Sprintf("ECS deployment %s completed.", primary.ID)
		p.Events = append(p.Events, fmt.Sprintf("(service %s) (deployment %s) deployment completed.", s.Name, primary.ID))
	}
	if p.Steady && !s.Steady {
		p.Events = append(p.Events, fmt.Sprintf("(service %s) has reached a steady state.", s.Name))
	}
	// Tasks without health checks become healthy by age.
	for _, t := range append(keep, stale...) {
		if live(t) && running(t) && !t.HealthChecked && !healthy(t) {
			at := t.RunningSince.Add(s.HealthyAfter)
			if p.RetryAt.IsZero() || at.Before(p.RetryAt) {
				p.RetryAt = at
			}
		}
	}
	return p
}

func deploymentIndex(s *Service, id string) int {
	for i, d := range s.Deployments {
		if d.ID == id {
			return i
		}
	}
	return len(s.Deployments)
}
