package control

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/controller"
	"github.com/wharfhq/wharf/internal/ecs/state"
	"github.com/wharfhq/wharf/internal/scheduler"
	"github.com/wharfhq/wharf/internal/store"
)

// ControllerConfig tunes the service scheduler.
type SchedulerConfig struct {
	// HealthyAfter is how long after RUNNING a task without health checks
	// counts as healthy. Default 40 s, as ECS.
	HealthyAfter time.Duration
	// LostAfter is how long an instance's agent may stay disconnected
	// before its service tasks are replaced. Default 5 minutes.
	LostAfter time.Duration
	// BackoffBase and BackoffCap shape the delay after tasks fail to
	// start. Defaults 10 s and 15 minutes.
	BackoffBase, BackoffCap time.Duration
	// Resync is how often every service is looked at without a change.
	// Default 5 s.
	Resync time.Duration
}

func (cc *SchedulerConfig) defaults() {
	if cc.HealthyAfter == 0 {
		cc.HealthyAfter = 40 * time.Second
	}
	if cc.LostAfter == 0 {
		cc.LostAfter = 5 * time.Minute
	}
	if cc.BackoffBase == 0 {
		cc.BackoffBase = 10 * time.Second
	}
	if cc.BackoffCap == 0 {
		cc.BackoffCap = 15 * time.Minute
	}
	if cc.Resync == 0 {
		cc.Resync = 5 * time.Second
	}
}

// maxStartsPerPass bounds the tasks one pass places, so that other
// services get their turn.
const maxStartsPerPass = 40

// A pass's transaction stays within etcd's limit of operations
// (store.MaxOps): a task takes at most opsPerStart compares or writes (the
// task, its index entry, its instance, an address and its read), and
// opsReserve are left for the service's own records.
const (
	opsPerStart = 5
	opsReserve  = 8
)

// maxPassesInARow bounds the passes one service gets in a row while it
// still has tasks to place, so that other services get their turn.
const maxPassesInARow = 25

// maxEvents is how many events a service keeps, newest first.
const maxEvents = 100

// RunController runs the service scheduler while this server leads the
// controller election, and campaigns again when leadership is lost. It
// returns when ctx ends.
func (s *Loops) RunScheduler(ctx context.Context, cc SchedulerConfig) {
	cc.defaults()
	s.st.WhileLeading(ctx, "controller", "the service scheduler", 10, func(ctx context.Context, l *store.Leadership) {
		s.control(ctx, l, cc)
	})
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

type clusterRef struct{ region, cluster string }

// control reconciles services as their clusters change, until ctx ends.
func (s *Loops) control(ctx context.Context, l *store.Leadership, cc SchedulerConfig) {
	events := s.st.Follow(ctx, "ecs/")
	dirty := map[clusterRef]bool{}
	retry := map[clusterRef]time.Time{}
	resync := time.NewTicker(cc.Resync)
	defer resync.Stop()
	markAll := func() {
		refs, err := s.allClusters(ctx)
		if err != nil {
			s.log.Warn("controller: listing clusters failed", "err", err)
		}
		for _, r := range refs {
			dirty[r] = true
		}
	}
	for ctx.Err() == nil {
		// Gather what changed for a moment, then act on it all.
		timer := time.NewTimer(50 * time.Millisecond)
	gather:
		for {
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case ev, ok := <-events:
				switch {
				case !ok:
					timer.Stop()
					return
				case ev.Restart:
					markAll()
				}
				if region, cluster, ok := state.ClusterOf(ev.Key); ok {
					if cluster == state.FargatePool {
						// The pool's hosts serve every cluster's Fargate tasks.
						markAll()
						continue
					}
					dirty[clusterRef{region: region, cluster: cluster}] = true
				}
			case <-resync.C:
				markAll()
			case <-timer.C:
				break gather
			}
		}
		now := s.now()
		for ref, at := range retry {
			if !now.Before(at) {
				dirty[ref] = true
				delete(retry, ref)
			}
		}
		for ref := range dirty {
			delete(dirty, ref)
			next, err := s.reconcileCluster(ctx, l, ref, cc)
			if errors.Is(err, store.ErrNotLeader) {
				return
			}
			if err != nil && ctx.Err() == nil {
				s.log.Warn("controller: reconcile failed; retrying", "cluster", ref.cluster, "region", ref.region, "err", err)
				next = now.Add(time.Second)
			}
			if !next.IsZero() {
				if at, ok := retry[ref]; !ok || next.Before(at) {
					retry[ref] = next
				}
			}
		}
	}
}

func (s *Loops) allClusters(ctx context.Context) ([]clusterRef, error) {
	regions, err := s.st.Regions(ctx)
	if err != nil {
		return nil, err
	}
	var out []clusterRef
	for _, region := range regions {
		c := state.Scope{Region: region}
		kvs, err := s.st.List(ctx, c.Keys().Services(""))
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		for _, kv := range kvs {
			cluster, _, _ := strings.Cut(strings.TrimPrefix(kv.Key, c.Keys().Services("")), "/")
			if !seen[cluster] {
				seen[cluster] = true
				out = append(out, clusterRef{region: region, cluster: cluster})
			}
		}
	}
	return out, nil
}

// reconcileCluster runs a pass over a cluster's services and says when to
// look again.
func (s *Loops) reconcileCluster(ctx context.Context, l *store.Leadership, ref clusterRef, cc SchedulerConfig) (time.Time, error) {
	c := state.Scope{Region: ref.region, Now: s.now().UTC()}
	kvs, err := s.st.List(ctx, c.Keys().Services(ref.cluster))
	if err != nil {
		return time.Time{}, err
	}
	var next time.Time
	for _, kv := range kvs {
		var svc state.ServiceRecord
		if err := kv.Decode(&svc); err != nil {
			return time.Time{}, err
		}
		if svc.Status == "INACTIVE" {
			continue
		}
		var at time.Time
		for range maxPassesInARow {
			var more bool
			at, more, err = s.reconcileService(ctx, l, c, ref.cluster, svc.ServiceName, cc)
			if err != nil {
				return time.Time{}, err
			}
			if !more {
				break
			}
		}
		if !at.IsZero() && (next.IsZero() || at.Before(next)) {
			next = at
		}
	}
	return next, nil
}

// reconcileService takes one step toward a service's desired state, in one
// fenced transaction, and says when to look again and whether tasks are
// left to place now.
//
// The cluster's tasks are read outside the transaction: only this leader
// starts a service's tasks, one pass after the other, so a pass sees every
// task the previous ones started; other changes to tasks (agents' reports)
// at worst make a pass do less than it could, and the next pass catches
// up. Instances, whose resources placement takes, are read inside it.
func (s *Loops) reconcileService(ctx context.Context, l *store.Leadership, c state.Scope, cluster, name string, cc SchedulerConfig) (time.Time, bool, error) {
	defer s.Serialize(c, cluster)()
	var retryAt time.Time
	var more bool
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		tx.Fence(l)
		c.Now = s.now().UTC()
		k := c.Keys().Service(cluster, name)
		svc, err := state.Get[state.ServiceRecord](tx, k)
		if err != nil || svc == nil || svc.Status == "INACTIVE" {
			return err
		}
		tasks, err := state.ClusterTasks(s.reader(ctx), c.Keys(), cluster)
		if err != nil {
			return err
		}
		instances, err := state.ClusterInstances(tx, c.Keys(), cluster)
		if err != nil {
			return err
		}
		snap, mine, err := s.snapshot(tx, c, svc, tasks, instances, cc)
		if err != nil {
			return err
		}
		daemonCount := svc.SchedulingStrategy == ecsapi.SchedulingStrategyDaemon && int(svc.DesiredCount) != snap.Desired
		if daemonCount {
			svc.DesiredCount = int32(snap.Desired)
			svc.Deployments[0].DesiredCount = svc.DesiredCount
		}
		plan := controller.Reconcile(snap)
		retryAt = plan.RetryAt
		if !snap.LostAt.IsZero() && (retryAt.IsZero() || snap.LostAt.Before(retryAt)) {
			retryAt = snap.LostAt
		}
		a := &applier{s: s, tx: tx, c: c, svc: svc, cluster: cluster, mine: mine, tasks: tasks, instances: instances, changed: daemonCount}
		if err := a.apply(&plan); err != nil {
			return err
		}
		more = a.full || a.placed == maxStartsPerPass && plan.Start > maxStartsPerPass
		if !a.changed {
			return nil
		}
		if len(svc.Events) > maxEvents {
			svc.Events = svc.Events[:maxEvents]
		}
		return tx.Put(k, svc)
	})
	return retryAt, more && err == nil, err
}

// snapshot builds the controller's view of a service.
func (s *Loops) snapshot(tx *store.Tx, c state.Scope, svc *state.ServiceRecord, tasks []*state.TaskRecord, instances []*state.InstanceRecord, cc SchedulerConfig) (*controller.Service, map[string]*state.TaskRecord, error) {
	dc := svc.DeploymentConfiguration
	snap := &controller.Service{
		Name:              svc.ServiceName,
		Desired:           int(svc.DesiredCount),
		MinHealthyPercent: int(ptrValue(dc.MinimumHealthyPercent)),
		MaxPercent:        int(ptrValue(dc.MaximumPercent)),
		Deleting:          svc.Status == "DRAINING",
		Now:               c.Now,
		HealthyAfter:      cc.HealthyAfter,
		BackoffBase:       cc.BackoffBase,
		Backoff:           cc.BackoffCap,
		Steady:            svc.Steady,

		UnableToStartReported: svc.UnableToStart,
	}
	if cb := dc.DeploymentCircuitBreaker; cb != nil {
		snap.CircuitBreaker, snap.Rollback = cb.Enable, cb.Rollback
	}
	if svc.HealthCheckGracePeriodSeconds != nil {
		snap.HealthCheckGrace = time.Duration(*svc.HealthCheckGracePeriodSeconds) * time.Second
	}
	if svc.LastCompleted != nil {
		snap.LastCompleted = svc.LastCompleted.Id
	}
	for _, d := range svc.Deployments {
		snap.Deployments = append(snap.Deployments, controller.Deployment{ID: d.Id, RolloutState: string(d.RolloutState), CountFrom: svc.CountFrom[d.Id]})
	}
	byArn := map[string]*state.InstanceRecord{}
	for _, r := range instances {
		byArn[r.ContainerInstanceArn] = r
	}
	poolRead := false
	checked := map[string]bool{} // task definition ARN → has an essential health check
	mine := map[string]*state.TaskRecord{}
	for _, t := range tasks {
		if t.Service != svc.ServiceName {
			continue
		}
		// Stopped tasks only matter for the circuit breaker and back-off
		// of the deployments still listed.
		if t.LastStatus == "STOPPED" && !svc.HasDeployment(t.StartedBy) {
			continue
		}
		hc, ok := checked[t.TaskDefinitionArn]
		if !ok {
			td, err := s.FindTaskDef(tx, c, t.TaskDefinitionArn)
			if err != nil {
				return nil, nil, err
			}
			for _, cd := range td.ContainerDefinitions {
				hc = hc || (cd.HealthCheck != nil && (cd.Essential == nil || *cd.Essential))
			}
			checked[t.TaskDefinitionArn] = hc
		}
		ct := controller.Task{
			ID: t.TaskArn, Deployment: t.StartedBy, LastStatus: t.LastStatus, DesiredStatus: t.DesiredStatus,
			HealthChecked: hc, Health: string(t.HealthStatus), StopCode: string(t.StopCode), FailedHealth: t.FailedHealth,
		}
		if t.StartedAt != nil {
			ct.RunningSince = t.StartedAt.Time
		}
		if t.StoppedAt != nil {
			ct.StoppedAt = t.StoppedAt.Time
		}
		if _, ok := byArn[t.ContainerInstanceArn]; !ok && !poolRead && s.OnPool(c, t.ContainerInstanceArn) {
			// Fargate tasks run on the pool's hosts, not the cluster's.
			pool, err := state.ClusterInstances(tx, c.Keys(), state.FargatePool)
			if err != nil {
				return nil, nil, err
			}
			for _, r := range pool {
				byArn[r.ContainerInstanceArn] = r
			}
			poolRead = true
		}
		if r := byArn[t.ContainerInstanceArn]; r != nil {
			ct.Draining = r.Status == "DRAINING"
			if !r.AgentConnected && r.DisconnectedAt != nil {
				lostAt := r.DisconnectedAt.Add(cc.LostAfter)
				ct.Lost = !c.Now.Before(lostAt)
				if !ct.Lost && (snap.LostAt.IsZero() || lostAt.Before(snap.LostAt)) {
					snap.LostAt = lostAt
				}
			}
		} else {
			ct.Lost = true
		}
		snap.Tasks = append(snap.Tasks, ct)
		mine[t.TaskArn] = t
	}
	if svc.SchedulingStrategy == ecsapi.SchedulingStrategyDaemon && len(svc.Deployments) > 0 && !snap.Deleting {
		td, err := s.FindTaskDef(tx, c, svc.Deployments[0].TaskDefinition)
		if err != nil {
			return nil, nil, err
		}
		targets, err := daemonInstances(state.Nodes(instances, tasks), state.WireTD(td), state.Each(svc.PlacementConstraints, (*state.PlacementConstraint).Wire))
		if err != nil {
			return nil, nil, err
		}
		// One task per target instance; a task elsewhere goes as from a
		// draining instance, without a replacement.
		snap.Desired = len(targets)
		for i := range snap.Tasks {
			if t := mine[snap.Tasks[i].ID]; !targets[t.ContainerInstanceArn] {
				snap.Tasks[i].Draining = true
			}
		}
	}
	return snap, mine, nil
}

// daemonInstances returns the container instances a DAEMON service runs a
// task on: the ACTIVE ones that satisfy its placement constraints, whether
// their agents are connected or not (an agent that is away for a moment
// neither gains nor loses a task), and whatever their free resources (a
// full instance is reported as one the task cannot be placed on).
func daemonInstances(ns []scheduler.Node, td *ecsapi.TaskDefinition, constraints []ecsapi.PlacementConstraint) (map[string]bool, error) {
	for i := range ns {
		ns[i].AgentConnected = true
		ns[i].CPU, ns[i].Memory, ns[i].Ports, ns[i].PortsUDP, ns[i].ENI = 0, 0, nil, nil, -1
	}
	// As many tasks as instances, spread over them: every instance that
	// can take one gets one before any gets a second.
	req := state.PlacementRequest(td, scheduler.Demand{}, len(ns), "wharf:daemon-targets", constraints, nil)
	req.Strategies = []scheduler.Strategy{{Type: "spread", Field: "instanceId"}}
	res, err := scheduler.Place(ns, req)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(res.Chosen))
	for _, i := range res.Chosen {
		out[ns[i].ID] = true
	}
	return out, nil
}

// applier carries out a plan inside the service's transaction.
type applier struct {
	s         *Loops
	tx        *store.Tx
	c         state.Scope
	svc       *state.ServiceRecord
	cluster   string
	mine      map[string]*state.TaskRecord
	tasks     []*state.TaskRecord
	instances []*state.InstanceRecord
	changed   bool
	placed    int
	// full is set when the transaction had no room for more starts.
	full bool
}

func (a *applier) event(msg string) {
	a.svc.Events = append([]state.ServiceEvent{{Id: state.NewUUID(), CreatedAt: a.c.Time(), Message: msg}}, a.svc.Events...)
	a.changed = true
}

// recentEvent reports whether msg is among the service's latest events.
func (a *applier) recentEvent(msg string) bool {
	for i, e := range a.svc.Events {
		if i >= 10 {
			break
		}
		if e.Message == msg {
			return true
		}
	}
	return false
}

func (a *applier) apply(p *controller.Plan) error {
	svc := a.svc
	primary := &svc.Deployments[0]
	for _, e := range p.Events {
		a.event(e)
	}
	if p.Rollout != "" && string(primary.RolloutState) != p.Rollout {
		primary.RolloutState, primary.RolloutStateReason = ecsapi.DeploymentRolloutState(p.Rollout), p.RolloutReason
		primary.UpdatedAt = a.c.Time()
		if p.Rollout == controller.Completed {
			done := *primary
			svc.LastCompleted = &done
		}
		a.changed = true
	}
	if p.Rollout != "" {
		if err := a.rolloutChanged(p); err != nil {
			return err
		}
	}
	if p.RollbackTo != "" && svc.LastCompleted != nil {
		if err := a.s.RollingBack(a.tx, a.c, svc, a.cluster, svc.LastCompleted.Id, p.RolloutReason); err != nil {
			return err
		}
		state.RollBack(svc, a.c.Now)
		a.changed = true
		return nil
	}
	if svc.Steady != p.Steady || svc.UnableToStart != p.UnableToStart {
		svc.Steady, svc.UnableToStart = p.Steady, p.UnableToStart
		a.changed = true
	}

	var stopped []string
	stop := func(t *state.TaskRecord, reason string, health bool) error {
		t.FailedHealth = t.FailedHealth || health
		if err := a.s.Stop(a.tx, a.c, t, ecsapi.TaskStopCodeServiceSchedulerInitiated, reason); err != nil {
			return err
		}
		stopped = append(stopped, state.IDOf(t.TaskArn))
		return nil
	}
	for _, st := range p.Stop {
		if t := a.mine[st.ID]; t != nil && t.DesiredStatus != "STOPPED" {
			if err := stop(t, st.Reason, st.Health); err != nil {
				return err
			}
		}
	}
	if p.ScaleIn > 0 {
		nodes := state.Nodes(a.instances, a.tasks)
		index := map[string]int{}
		for i, r := range a.instances {
			index[r.ContainerInstanceArn] = i
		}
		var running []scheduler.Running
		for _, id := range p.ScaleInFrom {
			if t := a.mine[id]; t != nil {
				running = append(running, scheduler.Running{Node: index[t.ContainerInstanceArn], ID: id})
			}
		}
		for _, i := range scheduler.ChooseStops(nodes, running, p.ScaleIn, a.strategies(), nil) {
			if err := stop(a.mine[running[i].ID], fmt.Sprintf("Scaling activity initiated by (deployment %s)", primary.Id), false); err != nil {
				return err
			}
		}
	}
	if len(stopped) > 0 {
		a.event(fmt.Sprintf("(service %s) has stopped %d running tasks: %s.", svc.ServiceName, len(stopped), taskList(stopped)))
	}
	if p.Start > 0 {
		if err := a.start(min(p.Start, maxStartsPerPass)); err != nil {
			return err
		}
	}
	if len(p.Drop) > 0 {
		kept := svc.Deployments[:0]
		for _, d := range svc.Deployments {
			if !slices.Contains(p.Drop, d.Id) {
				kept = append(kept, d)
			}
		}
		svc.Deployments = kept
		svc.PruneRevisions()
		a.changed = true
	}
	if svc.Status == "DRAINING" {
		live := false
		for _, t := range a.mine {
			live = live || t.LastStatus != "STOPPED"
		}
		if !live {
			a.s.Retire(a.c, svc)
			a.changed = true
		}
	}
	return nil
}

// strategies are the service's placement strategies, ECS's service
// default when it has none.
func (a *applier) strategies() []scheduler.Strategy {
	if len(a.svc.PlacementStrategy) == 0 {
		return scheduler.ServiceDefault()
	}
	var out []scheduler.Strategy
	for _, st := range a.svc.PlacementStrategy {
		out = append(out, scheduler.Strategy{Type: string(st.Type), Field: st.Field})
	}
	return out
}

// start places n tasks of the PRIMARY deployment.
func (a *applier) start(n int) error {
	svc := a.svc
	primary := &svc.Deployments[0]
	cl, err := a.s.ActiveCluster(a.tx, a.c, a.cluster)
	if err != nil {
		return err
	}
	td, err := a.s.FindTaskDef(a.tx, a.c, primary.TaskDefinition)
	if err != nil {
		return err
	}
	l := &state.Launch{
		Cluster: cl, TD: td, Group: "service:" + svc.ServiceName, StartedBy: primary.Id, Service: svc.ServiceName,
		Execute: svc.EnableExecuteCommand, LaunchType: ecsapi.LaunchTypeEc2, Propagate: svc.PropagateTags,
	}
	if svc.PropagateTags == ecsapi.PropagateTagsService {
		l.Tags = state.WireTags(svc.Tags)
	}
	d := state.DemandOf(state.WireTD(td), nil)
	if primary.LaunchType == ecsapi.LaunchTypeFargate || len(primary.CapacityProviderStrategy) > 0 {
		l.LaunchType = ecsapi.LaunchTypeFargate
		return a.startFargate(l, d, n)
	}
	req := state.PlacementRequest(state.WireTD(td), d, n, l.Group, state.Each(svc.PlacementConstraints, (*state.PlacementConstraint).Wire), nil)
	req.Strategies = a.strategies()
	if svc.SchedulingStrategy == ecsapi.SchedulingStrategyDaemon {
		// One per instance: the instances without one of the service's
		// tasks, as many as lack one.
		req.Constraints = append(req.Constraints, scheduler.Constraint{Type: "distinctInstance"})
		req.Strategies = nil
	}
	nodes := state.Nodes(a.instances, a.tasks)
	res, err := scheduler.Place(nodes, req)
	if err != nil {
		return err
	}
	var started []string
	for _, idx := range res.Chosen {
		if compares, writes := a.tx.Size(); max(compares, writes)+opsPerStart > store.MaxOps-opsReserve {
			a.full = true
			break
		}
		r := a.instances[idx]
		t, err := a.s.NewTask(a.tx, a.c, l, r, d)
		if err != nil {
			return err
		}
		started = append(started, state.IDOf(t.TaskArn))
	}
	a.placed = len(started)
	if len(started) > 0 {
		a.event(fmt.Sprintf("(service %s) has started %d tasks: %s.", svc.ServiceName, len(started), taskList(started)))
	}
	if len(res.Chosen) < n && !a.full {
		msg := unplaceable(svc.ServiceName, res.Failures, len(a.instances))
		if !a.recentEvent(msg) {
			a.event(msg)
		}
	}
	return nil
}

// startFargate places n tasks of a Fargate service on the Fargate pool,
// split over the strategy's providers.
func (a *applier) startFargate(l *state.Launch, d scheduler.Demand, n int) error {
	primary := &a.svc.Deployments[0]
	if room := (store.MaxOps - opsReserve - max(a.tx.Size())) / opsPerStart; n > room {
		n, a.full = max(room, 0), true
	}
	providers := state.SplitStrategy(primary.CapacityProviderStrategy, state.ProviderCounts(a.tasks, l.Group), n)
	placed, short, err := a.s.PlaceFargate(a.tx, a.c, l, d, providers, a.tasks)
	if err != nil {
		return err
	}
	started := make([]string, len(placed))
	for i, t := range placed {
		started[i] = state.IDOf(t.TaskArn)
	}
	a.placed = len(started)
	if len(started) > 0 {
		a.event(fmt.Sprintf("(service %s) has started %d tasks: %s.", a.svc.ServiceName, len(started), taskList(started)))
	}
	if short > 0 {
		msg := fmt.Sprintf("(service %s) was unable to place a task. Reason: %s. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.", a.svc.ServiceName, state.FargateCapacityUnavailable)
		if !a.recentEvent(msg) {
			a.event(msg)
		}
	}
	return nil
}

// unplaceable words a placement failure as ECS's service events do.
func unplaceable(service string, failures []scheduler.Failure, instances int) string {
	if instances == 0 || len(failures) == 0 {
		return fmt.Sprintf("(service %s) was unable to place a task because no container instance met all of its requirements. Reason: No Container Instances were found in your cluster. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.", service)
	}
	f := failures[0]
	what := map[string]string{
		"RESOURCE:CPU":       "has insufficient CPU units available",
		"RESOURCE:MEMORY":    "has insufficient memory available",
		"RESOURCE:PORTS":     "is already using a port required by your task",
		"RESOURCE:PORTS_UDP": "is already using a UDP port required by your task",
		"RESOURCE:ENI":       "encountered error \"RESOURCE:ENI\": not enough available ENI attachment points",
		"AGENT":              "encountered error \"AGENT\"",
	}[f.Reason]
	if what == "" {
		what = "does not match " + f.Reason
	}
	return fmt.Sprintf("(service %s) was unable to place a task because no container instance met all of its requirements. The closest matching (container-instance %s) %s. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.", service, state.IDOf(f.NodeID), what)
}

func taskList(ids []string) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString("(task " + id + ")")
	}
	return b.String()
}

// rolloutChanged follows the PRIMARY deployment's rollout in the current
// service deployment: a completed deployment ends it (SUCCESSFUL, or
// ROLLBACK_SUCCESSFUL when it was the rollback's), a failed one ends it
// (STOPPED) or starts its rollback.
func (a *applier) rolloutChanged(p *controller.Plan) error {
	svc := a.svc
	primary := svc.Deployments[0]
	return a.s.UpdateServiceDeployment(a.tx, a.c, svc, a.cluster, func(sd *state.ServiceDeploymentRecord) {
		now := a.c.Time()
		switch {
		case p.Rollout == controller.Completed && sd.Status == ecsapi.ServiceDeploymentStatusRollbackInProgress:
			sd.Status, sd.FinishedAt = ecsapi.ServiceDeploymentStatusRollbackSuccessful, now
			sd.StatusReason = primary.RolloutStateReason
		case p.Rollout == controller.Completed && sd.Target == primary.Id:
			sd.Status, sd.FinishedAt = ecsapi.ServiceDeploymentStatusSuccessful, now
			sd.StatusReason = primary.RolloutStateReason
			if sd.DeploymentCircuitBreaker.Status == ecsapi.ServiceDeploymentRollbackMonitorsStatusMonitoring {
				sd.DeploymentCircuitBreaker.Status = ecsapi.ServiceDeploymentRollbackMonitorsStatusMonitoringComplete
			}
		case p.Rollout == controller.Failed && sd.Target == primary.Id:
			sd.DeploymentCircuitBreaker.Status = ecsapi.ServiceDeploymentRollbackMonitorsStatusTriggered
			sd.StatusReason = p.RolloutReason
			if p.RollbackTo == "" {
				sd.Status, sd.StoppedAt = ecsapi.ServiceDeploymentStatusStopped, now
			}
		default:
			return
		}
		state.Freeze(sd, svc, a.tasks)
	})
}
