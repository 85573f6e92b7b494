package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/wharfhq/wharf/internal/api/agentapi"
	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/runtime"
)

// ctr is the agent's view of one container of a task.
type ctr struct {
	def      *ecsapi.ContainerDefinition
	id       string
	status   string // PENDING, RUNNING, STOPPED
	exitCode *int32
	reason   string
	health   ecsapi.HealthStatus // "" without a health check
	started  bool
	oom      bool // the engine reported an OOM kill
	bindings []types.NetworkBinding
	token    string // task metadata endpoint token
	reported string // status last reported
	// role is roleTaskContainer, or roleProxy for the Service Connect
	// proxy the agent injects; hidden containers are neither reported
	// nor shown by the metadata endpoint.
	role   string
	hidden bool

	// dockerName is the engine's name of the container: made up for a new
	// one, the engine's for an adopted one.
	dockerName string
}

func (c *ctr) essential() bool { return c.def.Essential == nil || *c.def.Essential }

// errStopRequested ends a start-up when the task is to stop instead.
var errStopRequested = errors.New("stop requested")

// taskManager drives one task through its lifecycle.
type taskManager struct {
	a   *Agent
	log *slog.Logger

	// Set at creation, read-only afterwards.
	td   ecsapi.TaskDefinition
	done chan struct{}

	events chan runtime.Event
	// resyncs asks for every container to be read from the engine
	// again: an event was dropped, the event stream broke, or it is time.
	resyncs chan struct{}
	wake    chan struct{} // desired status changed

	mu         sync.Mutex
	task       ecsapi.Task // as assigned; LastStatus tracks what was reported
	desired    string
	stopWithin time.Duration // caps stop timeouts: a Spot interruption's notice
	status     string        // the lifecycle status reached locally
	containers map[string]*ctr
	order      []string // container names in task definition order
	pauseID    string
	cgroup     *taskCgroup // a Fargate task's, holding it to its size
	ip, mac    string
	// pauseIP and pauseHostname are a bridge Service Connect task's
	// address and host name: its pause container's.
	pauseIP, pauseHostname string
	// sc is set for Service Connect tasks.
	sc        *scTask
	pullStart *time.Time
	pullStop  *time.Time
}

func newTaskManager(a *Agent, at agentapi.AssignedTask) *taskManager {
	m := &taskManager{
		a:          a,
		log:        a.log.With("task_arn", at.Task.TaskArn),
		td:         at.TaskDefinition,
		done:       make(chan struct{}),
		events:     make(chan runtime.Event, 64),
		resyncs:    make(chan struct{}, 1),
		wake:       make(chan struct{}, 1),
		task:       at.Task,
		desired:    at.Task.DesiredStatus,
		stopWithin: time.Duration(at.StopWithinSeconds) * time.Second,
		status:     at.Task.LastStatus,
		containers: map[string]*ctr{},
	}
	if at.ServiceConnect != nil {
		if serviceConnectMode(m.td.NetworkMode) {
			m.injectServiceConnect(&at)
		} else {
			m.log.Warn("Service Connect is not available in this network mode; running the task without it", "network_mode", m.td.NetworkMode)
		}
	}
	for i := range m.td.ContainerDefinitions {
		cd := &m.td.ContainerDefinitions[i]
		c := &ctr{def: cd, dockerName: containerName(m.td.Family, m.td.Revision, cd.Name), status: "PENDING", token: metadataToken(), role: roleTaskContainer}
		if m.sc != nil && cd.Name == m.sc.proxy {
			c.role, c.hidden = roleProxy, m.sc.hidden
		}
		if cd.HealthCheck != nil {
			c.health = ecsapi.HealthStatusUnknown
		}
		for _, tc := range at.Task.Containers {
			if tc.Name == cd.Name {
				c.reported = tc.LastStatus
			}
		}
		m.containers[cd.Name] = c
		m.order = append(m.order, cd.Name)
	}
	for _, a := range at.Task.Attachments {
		for _, d := range a.Details {
			switch d.Name {
			case "privateIPv4Address":
				m.ip = d.Value
			case "macAddress":
				m.mac = d.Value
			}
		}
	}
	for name, c := range m.containers {
		a.metadata.Add(c.token, m, name)
	}
	return m
}

// update passes the task's desired status from the control plane.
func (m *taskManager) update(desired string, stopWithin time.Duration) {
	m.mu.Lock()
	changed := m.desired != desired && desired == "STOPPED"
	if changed {
		m.desired, m.stopWithin = desired, stopWithin
	}
	m.mu.Unlock()
	if changed {
		select {
		case m.wake <- struct{}{}:
		default:
		}
	}
}

func (m *taskManager) stopWanted() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.desired == "STOPPED"
}

// event passes a container event of the task.
func (m *taskManager) event(ev runtime.Event) {
	if ev.Action == "oom" {
		m.markOOM(ev.ContainerID)
	}
	select {
	case m.events <- ev:
	default:
		// The queued events may all be of other containers: read them
		// all again.
		m.log.Debug("container event queue full; reading the task's containers again", "container_id", ev.ContainerID, "action", ev.Action)
		m.resync()
	}
}

// resync asks the manager to read every container of the task from the
// engine again.
func (m *taskManager) resync() {
	select {
	case m.resyncs <- struct{}{}:
	default: // one is pending
	}
}

const reasonOOM = "OutOfMemoryError: Container killed due to memory usage"

// markOOM records that the engine reported the kernel's OOM killer in a
// container. The engine's inspect flag alone misses kills whose event it
// handles after the exit, so the event counts as well.
func (m *taskManager) markOOM(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.containers {
		if c.id != id || id == "" {
			continue
		}
		c.oom = true
		if c.status == "STOPPED" {
			c.reason = reasonOOM
		}
	}
}

// run drives the task until it has stopped, or until ctx ends (the agent
// stops; the containers keep running).
func (m *taskManager) run(ctx context.Context) {
	defer close(m.done)
	defer m.a.metadata.RemoveSource(m)
	stopped := false
	if m.sc != nil {
		defer func() { m.sc.remove(stopped) }()
	}
	if err := m.adopt(ctx); err != nil {
		if ctx.Err() != nil {
			return
		}
		m.log.Warn("inspecting existing containers failed", "err", err)
	}
	reason := ""
	if err := m.start(ctx); err != nil {
		if ctx.Err() != nil {
			return
		}
		if !errors.Is(err, errStopRequested) {
			reason = err.Error()
			m.log.Warn("task failed to start", "reason", reason)
		}
	} else {
		reason = m.supervise(ctx)
		if ctx.Err() != nil {
			return
		}
	}
	m.stop(ctx, reason)
	if ctx.Err() != nil {
		return
	}
	stopped = true
	m.a.forget(m.task.TaskArn)
}

// adopt finds the task's containers left by an earlier agent.
func (m *taskManager) adopt(ctx context.Context) error {
	states, err := m.a.rt.List(ctx, map[string]string{labelTaskArn: m.task.TaskArn, labelInstance: m.a.InstanceArn()})
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, st := range states {
		if st.Labels[labelRole] == rolePause {
			m.pauseID = st.ID
			continue
		}
		c := m.containers[st.Labels[labelContainerName]]
		if c == nil {
			continue
		}
		c.id = st.ID
		if st.Name != "" {
			c.dockerName = st.Name
		}
		if tok := st.Labels[labelMetadataToken]; tok != "" && tok != c.token {
			m.a.metadata.Remove(c.token)
			m.a.metadata.Add(tok, m, c.def.Name)
			c.token = tok
		}
		m.apply(c, &st)
	}
	return nil
}

// apply updates a container from the engine's state. Call with m.mu held.
func (m *taskManager) apply(c *ctr, st *runtime.State) {
	switch {
	case st.Running:
		c.status, c.started = "RUNNING", true
	case !st.StartedAt.IsZero() && (st.Status == "exited" || st.Status == "dead"):
		c.status, c.started = "STOPPED", true
		code := int32(st.ExitCode)
		c.exitCode = &code
		if st.OOMKilled || c.oom {
			c.reason = reasonOOM
		}
	}
	if c.def.HealthCheck != nil {
		switch st.Health {
		case "healthy":
			c.health = ecsapi.HealthStatusHealthy
		case "unhealthy":
			c.health = ecsapi.HealthStatusUnhealthy
		default:
			c.health = ecsapi.HealthStatusUnknown
		}
	}
	if len(st.Ports) > 0 {
		c.bindings = c.bindings[:0]
		for _, p := range st.Ports {
			ip := p.HostIP
			if ip == "" {
				ip = "0.0.0.0"
			}
			c.bindings = append(c.bindings, types.NetworkBinding{
				BindIP: aws.String(ip), ContainerPort: aws.Int32(int32(p.ContainerPort)), HostPort: aws.Int32(int32(p.HostPort)),
				Protocol: types.TransportProtocol(orDefault(p.Protocol, "tcp")),
			})
		}
	}
}

// refresh re-reads a container's state from the engine.
func (m *taskManager) refresh(ctx context.Context, c *ctr) error {
	if c.id == "" {
		return nil
	}
	st, err := m.a.rt.Inspect(ctx, c.id)
	if errors.Is(err, runtime.ErrNotFound) {
		m.mu.Lock()
		if c.status != "STOPPED" && c.started {
			c.status, c.reason = "STOPPED", "container removed from the engine"
			c.exitCode = aws.Int32(137)
		}
		c.id = ""
		m.mu.Unlock()
		return nil
	}
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.apply(c, st)
	m.mu.Unlock()
	return nil
}

// start provisions the task's network, pulls its images and starts its
// containers in dependency order. It returns once every container has
// started, with an error whose text is the stop reason when it fails.
func (m *taskManager) start(ctx context.Context) error {
	if m.stopWanted() {
		return errStopRequested
	}
	if m.fargate() {
		if err := m.limitToSize(); err != nil {
			return fmt.Errorf("ResourceInitializationError: %w", err)
		}
	}
	// An awsvpc task's network namespace starts while its images are
	// checked and its containers created, which may join it before it
	// runs; they start once it does.
	var namespace chan error
	if m.td.NetworkMode == ecsapi.NetworkModeAwsvpc {
		if err := m.provision(ctx); err != nil {
			return fmt.Errorf("ResourceInitializationError: %w", err)
		}
		namespace = make(chan error, 1)
		go func() { namespace <- m.startPause(ctx) }()
	} else if m.sc != nil {
		if err := m.provisionBridge(ctx); err != nil {
			return fmt.Errorf("ResourceInitializationError: %w", err)
		}
	}
	namespaceReady := func() error {
		if namespace == nil {
			return nil
		}
		err := <-namespace
		namespace = nil
		if err != nil {
			return fmt.Errorf("ResourceInitializationError: %w", err)
		}
		return nil
	}
	defer namespaceReady()
	if m.sc != nil {
		if err := namespaceReady(); err != nil {
			return err
		}
		if err := m.sc.prepare(ctx); err != nil {
			if errors.Is(err, errStopRequested) || ctx.Err() != nil {
				return err
			}
			return fmt.Errorf("ResourceInitializationError: %w", err)
		}
	}
	m.advance(ctx, "PENDING")
	if err := m.pull(ctx); err != nil {
		return err
	}
	if err := m.create(ctx); err != nil {
		return err
	}
	if err := namespaceReady(); err != nil {
		return err
	}
	m.advance(ctx, "ACTIVATING")
	timeout := time.NewTimer(m.startTimeout())
	defer timeout.Stop()
	for {
		pending, err := m.startReady(ctx)
		if err != nil {
			return err
		}
		if !pending {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.wake:
			return errStopRequested
		case ev := <-m.events:
			if err := m.onEvent(ctx, ev); err != nil {
				return err
			}
		case <-m.resyncs:
			if err := m.resyncAll(ctx); err != nil {
				return err
			}
		case <-timeout.C:
			if m.sc != nil && !m.sc.proxyReady() {
				return fmt.Errorf("DependencyConditionNotMet: the Service Connect proxy did not apply its configuration within the start timeout; see `docker logs %s`", m.containers[m.sc.proxy].dockerName)
			}
			return errors.New("DependencyConditionNotMet: a container's dependsOn conditions were not met within its start timeout")
		}
	}
	m.advance(ctx, "RUNNING")
	return nil
}

func (m *taskManager) startTimeout() time.Duration {
	d := 3 * time.Minute
	for _, cd := range m.td.ContainerDefinitions {
		if cd.StartTimeout != nil {
			d = max(d, time.Duration(*cd.StartTimeout)*time.Second)
		}
	}
	return d
}

// provision creates the pause container that holds an awsvpc task's
// network namespace and address.
func (m *taskManager) provision(ctx context.Context) error {
	if m.ip == "" {
		return errors.New("the task has no address attachment")
	}
	n, err := m.a.awsvpcNetwork(ctx)
	if err != nil {
		return err
	}
	return m.createPause(ctx, n.Name, func(spec *runtime.ContainerSpec) {
		spec.IPv4Address, spec.MacAddress = m.ip, m.mac
		// The task's containers share the pause container's resolver.
		if ip := m.a.resolver(n.Gateway); ip != "" {
			spec.DNSServers = []string{ip}
		}
	})
}

// limitToSize puts a Fargate task's containers in a cgroup of the task's
// CPU and memory, which they share as they share a VM on Fargate.
func (m *taskManager) limitToSize() error {
	cpu, _ := strconv.ParseInt(cmp.Or(m.task.Cpu, m.td.Cpu), 10, 64)
	mem, _ := strconv.ParseInt(cmp.Or(m.task.Memory, m.td.Memory), 10, 64)
	g, err := newTaskCgroup(cgroupRoot, taskID(m.task.TaskArn), cpu, mem)
	if err != nil {
		return fmt.Errorf("limit the task to its size: %w", err)
	}
	m.mu.Lock()
	m.cgroup = g
	m.mu.Unlock()
	return nil
}

// runPause creates the pause container holding the task's network
// namespace on network, unless it exists, with what configure adds, and
// starts it.
func (m *taskManager) runPause(ctx context.Context, network string, configure func(*runtime.ContainerSpec)) error {
	if err := m.createPause(ctx, network, configure); err != nil {
		return err
	}
	return m.startPause(ctx)
}

// createPause creates the pause container, unless it exists.
func (m *taskManager) createPause(ctx context.Context, network string, configure func(*runtime.ContainerSpec)) error {
	if m.pauseID == "" {
		spec := &runtime.ContainerSpec{
			Name:        containerName(m.td.Family, m.td.Revision, pauseContainerName),
			Image:       m.a.pauseImage,
			Labels:      m.labels(pauseContainerName, rolePause),
			NetworkMode: network,
			StopTimeout: 5 * time.Second,
		}
		configure(spec)
		if m.cgroup != nil {
			spec.CgroupParent = m.cgroup.Parent
		}
		id, err := m.a.rt.Create(ctx, spec)
		if err != nil {
			return fmt.Errorf("create the network namespace: %w", err)
		}
		m.mu.Lock()
		m.pauseID = id
		m.mu.Unlock()
	}
	return nil
}

// startPause starts the pause container.
func (m *taskManager) startPause(ctx context.Context) error {
	m.mu.Lock()
	id := m.pauseID
	m.mu.Unlock()
	if err := m.a.rt.Start(ctx, id); err != nil {
		return fmt.Errorf("start the network namespace: %w", err)
	}
	return nil
}

// pull makes every image available.
func (m *taskManager) pull(ctx context.Context) error {
	now := time.Now()
	m.mu.Lock()
	m.pullStart = &now
	m.mu.Unlock()
	for _, name := range m.order {
		c := m.containers[name]
		if c.id != "" {
			continue
		}
		if c.role == roleProxy {
			// A local image built from the agent's binary: nothing to pull.
			tag, err := m.a.proxyImageTag(ctx)
			if err != nil {
				m.mu.Lock()
				c.reason = "CannotPullContainerError: " + err.Error()
				m.mu.Unlock()
				return errors.New(c.reason)
			}
			m.mu.Lock()
			c.def.Image = tag
			m.mu.Unlock()
			continue
		}
		if _, err := m.a.rt.EnsureImage(ctx, c.def.Image, m.a.cfg.PullPolicy); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			msg := err.Error()
			if errors.Is(err, runtime.ErrPull) {
				msg = "CannotPullContainerError: " + strings.TrimPrefix(msg, runtime.ErrPull.Error()+": ")
			}
			m.mu.Lock()
			c.reason = msg
			m.mu.Unlock()
			return errors.New(msg)
		}
	}
	done := time.Now()
	m.mu.Lock()
	m.pullStop = &done
	m.mu.Unlock()
	return nil
}

// create makes every container that does not exist yet.
func (m *taskManager) create(ctx context.Context) error {
	// volumesFrom needs its sources created first.
	for _, name := range createOrder(m.td.ContainerDefinitions) {
		c := m.containers[name]
		if c.id != "" {
			continue
		}
		spec, err := m.spec(c)
		if err == nil {
			if m.cgroup != nil {
				spec.CgroupParent = m.cgroup.Parent
			}
			var id string
			id, err = m.a.rt.Create(ctx, spec)
			if err == nil {
				m.mu.Lock()
				c.id = id
				m.mu.Unlock()
				continue
			}
		}
		msg := "CannotCreateContainerError: " + err.Error()
		m.mu.Lock()
		c.reason = msg
		m.mu.Unlock()
		return errors.New(msg)
	}
	return nil
}

// createOrder lists containers so that volumesFrom sources come first.
func createOrder(cds []ecsapi.ContainerDefinition) []string {
	var out []string
	placed := map[string]bool{}
	for len(out) < len(cds) {
		progress := false
		for _, cd := range cds {
			if placed[cd.Name] {
				continue
			}
			ready := true
			for _, vf := range cd.VolumesFrom {
				ready = ready && (placed[vf.SourceContainer] || vf.SourceContainer == cd.Name)
			}
			if ready {
				out, placed[cd.Name], progress = append(out, cd.Name), true, true
			}
		}
		if !progress {
			for _, cd := range cds {
				if !placed[cd.Name] {
					out, placed[cd.Name] = append(out, cd.Name), true
				}
			}
		}
	}
	return out
}

// startReady starts the containers whose dependencies are met and reports
// whether any remain to start.
func (m *taskManager) startReady(ctx context.Context) (pending bool, err error) {
	for _, name := range m.order {
		c := m.containers[name]
		m.mu.Lock()
		started := c.started
		m.mu.Unlock()
		if started {
			continue
		}
		met, why := m.dependenciesMet(c)
		if why != "" {
			return false, errors.New("DependencyConditionNotMet: " + why)
		}
		// A Service Connect task's applications start once the proxy
		// serves their aliases: the proxy has applied its configuration.
		if !met || c.role != roleProxy && m.sc != nil && !m.sc.proxyReady() {
			pending = true
			continue
		}
		if err := m.a.rt.Start(ctx, c.id); err != nil {
			msg := "CannotStartContainerError: " + err.Error()
			m.mu.Lock()
			c.reason = msg
			m.mu.Unlock()
			return false, errors.New(msg)
		}
		m.mu.Lock()
		c.started = true
		m.mu.Unlock()
		if err := m.refresh(ctx, c); err != nil {
			return false, err
		}
		m.reportContainer(ctx, c)
	}
	return pending, nil
}

// dependenciesMet tells whether c may start; why is set when it never can.
func (m *taskManager) dependenciesMet(c *ctr) (met bool, why string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	met = true
	for _, d := range c.def.DependsOn {
		dep := m.containers[d.ContainerName]
		if dep == nil {
			return false, fmt.Sprintf("container %s depends on unknown container %s", c.def.Name, d.ContainerName)
		}
		exited := dep.status == "STOPPED"
		switch d.Condition {
		case ecsapi.ContainerConditionStart:
			met = met && dep.started
		case ecsapi.ContainerConditionComplete:
			met = met && exited
		case ecsapi.ContainerConditionSuccess:
			if exited && deref(dep.exitCode) != 0 {
				return false, fmt.Sprintf("container %s needed %s to exit successfully, and it exited with code %d", c.def.Name, dep.def.Name, deref(dep.exitCode))
			}
			met = met && exited
		case ecsapi.ContainerConditionHealthy:
			if exited {
				return false, fmt.Sprintf("container %s needed %s to be healthy, and it exited", c.def.Name, dep.def.Name)
			}
			met = met && dep.health == ecsapi.HealthStatusHealthy
		}
	}
	return met, ""
}

// onEvent handles a container event while the task starts or runs. It
// returns an error when an essential container exited.
func (m *taskManager) onEvent(ctx context.Context, ev runtime.Event) error {
	c := m.containers[ev.Labels[labelContainerName]]
	if c == nil {
		return nil
	}
	m.mu.Lock()
	before := c.health
	m.mu.Unlock()
	if err := m.refresh(ctx, c); err != nil {
		if ctx.Err() == nil {
			m.log.Warn("reading a container's state after its event failed; the next resync reads it again", "container", c.def.Name, "action", ev.Action, "err", err)
		}
		return nil
	}
	m.mu.Lock()
	healthChanged := c.health != before
	m.mu.Unlock()
	if healthChanged {
		m.reportHealth(ctx)
	}
	return m.checkExits(ctx)
}

// resyncAll reads every container of the task from the engine again, for
// the events the agent missed, and reports what changed. It returns an
// error when an essential container exited.
func (m *taskManager) resyncAll(ctx context.Context) error {
	healthChanged := false
	for _, name := range m.order {
		c := m.containers[name]
		m.mu.Lock()
		before := c.health
		m.mu.Unlock()
		if err := m.refresh(ctx, c); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			m.log.Warn("reading a container's state from the engine failed; the next resync tries again", "container", name, "err", err)
			continue
		}
		m.mu.Lock()
		healthChanged = healthChanged || c.health != before
		m.mu.Unlock()
	}
	if healthChanged {
		m.reportHealth(ctx)
	}
	return m.checkExits(ctx)
}

// checkExits reports the containers that stopped, and returns an error
// when an essential one did.
func (m *taskManager) checkExits(ctx context.Context) error {
	for _, name := range m.order {
		c := m.containers[name]
		m.mu.Lock()
		stopped, essential, reported := c.status == "STOPPED", c.essential(), c.reported
		m.mu.Unlock()
		if stopped && reported != "STOPPED" {
			m.reportContainer(ctx, c)
		}
		if stopped && essential {
			return errors.New("Essential container in task exited")
		}
	}
	return nil
}

// supervise watches a running task until it is to stop, and returns why.
func (m *taskManager) supervise(ctx context.Context) string {
	// A container may have exited while no agent was watching.
	if err := m.resyncAll(ctx); err != nil {
		return err.Error()
	}
	m.reportHealth(ctx)
	for {
		select {
		case <-ctx.Done():
			return ""
		case <-m.wake:
			return ""
		case ev := <-m.events:
			if err := m.onEvent(ctx, ev); err != nil {
				return err.Error()
			}
		case <-m.resyncs:
			if err := m.resyncAll(ctx); err != nil {
				return err.Error()
			}
		}
	}
}

// stop stops the task's containers, dependents first, and reports it
// STOPPED.
func (m *taskManager) stop(ctx context.Context, reason string) {
	m.mu.Lock()
	drain := m.sc != nil && m.desired == "STOPPED" && m.status == "RUNNING"
	stopWithin := m.stopWithin
	m.mu.Unlock()
	m.advance(ctx, "STOPPING")
	if drain {
		m.sc.drainCallers(ctx)
	}
	for _, wave := range stopWaves(m.td.ContainerDefinitions) {
		var wg sync.WaitGroup
		for _, name := range wave {
			c := m.containers[name]
			if c.id == "" {
				continue
			}
			timeout := m.a.cfg.StopTimeout
			if c.def.StopTimeout != nil {
				timeout = time.Duration(*c.def.StopTimeout) * time.Second
			}
			if stopWithin > 0 {
				timeout = min(timeout, stopWithin)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := m.a.rt.Stop(ctx, c.id, timeout); err != nil && !errors.Is(err, runtime.ErrNotFound) {
					m.log.Warn("stopping a container failed", "container", name, "err", err)
				}
				if err := m.refresh(ctx, c); err != nil && ctx.Err() == nil {
					m.log.Warn("reading a stopped container's state from the engine failed; its exit code is unknown", "container", name, "err", err)
				}
			}()
		}
		wg.Wait()
	}
	if ctx.Err() != nil {
		return
	}
	if m.pauseID != "" {
		m.advance(ctx, "DEPROVISIONING")
		if err := m.a.rt.Stop(ctx, m.pauseID, 5*time.Second); err != nil && !errors.Is(err, runtime.ErrNotFound) {
			m.log.Warn("stopping the network namespace failed", "err", err)
		}
	}
	if m.cgroup != nil {
		if err := m.cgroup.remove(); err != nil {
			m.log.Warn("removing the task's cgroup failed", "cgroup", m.cgroup.Parent, "err", err)
		}
	}
	m.mu.Lock()
	for _, c := range m.containers {
		if c.status != "STOPPED" {
			c.status = "STOPPED"
			if c.reason == "" && !c.started {
				c.reason = "the task stopped before the container started"
			}
		}
	}
	m.mu.Unlock()
	m.reportTask(ctx, "STOPPED", reason)
	m.log.Info("task stopped", "reason", reason)
}

// stopWaves groups containers for stopping: each wave stops together, after
// the containers that depend on them.
func stopWaves(cds []ecsapi.ContainerDefinition) [][]string {
	dependents := map[string]int{}
	for _, cd := range cds {
		for _, d := range cd.DependsOn {
			dependents[d.ContainerName]++
		}
	}
	stopped := map[string]bool{}
	var waves [][]string
	for len(stopped) < len(cds) {
		var wave []string
		for _, cd := range cds {
			if !stopped[cd.Name] && dependents[cd.Name] == 0 {
				wave = append(wave, cd.Name)
			}
		}
		if len(wave) == 0 { // a cycle: stop the rest together
			for _, cd := range cds {
				if !stopped[cd.Name] {
					wave = append(wave, cd.Name)
				}
			}
		}
		for _, name := range wave {
			stopped[name] = true
			for _, cd := range cds {
				if cd.Name == name {
					for _, d := range cd.DependsOn {
						dependents[d.ContainerName]--
					}
				}
			}
		}
		waves = append(waves, wave)
	}
	return waves
}

// advance records a lifecycle step and reports it when the control plane
// has not seen it yet.
func (m *taskManager) advance(ctx context.Context, status string) {
	m.mu.Lock()
	m.status = status
	seen := ecsapi.TaskStage(m.task.LastStatus) >= ecsapi.TaskStage(status)
	m.mu.Unlock()
	if !seen {
		m.reportTask(ctx, status, "")
	}
}

// containerChanges renders the containers' states for a report. Call with
// m.mu held.
func (m *taskManager) containerChanges() []types.ContainerStateChange {
	var out []types.ContainerStateChange
	for _, name := range m.order {
		c := m.containers[name]
		if c.hidden {
			continue
		}
		cs := types.ContainerStateChange{
			ContainerName:   aws.String(name),
			Status:          aws.String(c.status),
			ExitCode:        c.exitCode,
			NetworkBindings: c.bindings,
		}
		if c.id != "" {
			cs.RuntimeId = aws.String(c.id)
		}
		if c.reason != "" {
			cs.Reason = aws.String(truncate(c.reason, 255))
		}
		out = append(out, cs)
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// reportTask reports a task status with every container's state.
func (m *taskManager) reportTask(ctx context.Context, status, reason string) {
	m.mu.Lock()
	in := &ecs.SubmitTaskStateChangeInput{
		Cluster:       aws.String(m.cluster()),
		Task:          aws.String(m.task.TaskArn),
		Status:        aws.String(status),
		Containers:    m.containerChanges(),
		PullStartedAt: m.pullStart,
		PullStoppedAt: m.pullStop,
	}
	if reason != "" {
		in.Reason = aws.String(truncate(reason, 255))
	}
	if status == "STOPPED" {
		in.ExecutionStoppedAt = aws.Time(time.Now())
	}
	for _, a := range m.task.Attachments {
		st := "ATTACHED"
		if status == "STOPPED" {
			st = "DETACHED"
		}
		in.Attachments = append(in.Attachments, types.AttachmentStateChange{AttachmentArn: aws.String(a.Id), Status: aws.String(st)})
	}
	m.mu.Unlock()
	m.a.report(ctx, "task "+status, func(ctx context.Context) error {
		_, err := m.a.cp.ecs.SubmitTaskStateChange(ctx, in)
		return err
	})
	m.mu.Lock()
	if ecsapi.TaskStage(status) > ecsapi.TaskStage(m.task.LastStatus) {
		m.task.LastStatus = status
	}
	for _, c := range m.containers {
		c.reported = c.status
	}
	m.mu.Unlock()
}

// reportContainer reports one container's state.
func (m *taskManager) reportContainer(ctx context.Context, c *ctr) {
	m.mu.Lock()
	if c.reported == c.status || c.hidden {
		c.reported = c.status
		m.mu.Unlock()
		return
	}
	in := &ecs.SubmitContainerStateChangeInput{
		Cluster:         aws.String(m.cluster()),
		Task:            aws.String(m.task.TaskArn),
		ContainerName:   aws.String(c.def.Name),
		Status:          aws.String(c.status),
		ExitCode:        c.exitCode,
		NetworkBindings: c.bindings,
	}
	if c.id != "" {
		in.RuntimeId = aws.String(c.id)
	}
	if c.reason != "" {
		in.Reason = aws.String(truncate(c.reason, 255))
	}
	c.reported = c.status
	m.mu.Unlock()
	m.a.report(ctx, "container "+c.def.Name, func(ctx context.Context) error {
		_, err := m.a.cp.ecs.SubmitContainerStateChange(ctx, in)
		return err
	})
}

// reportHealth reports the health of containers with health checks.
func (m *taskManager) reportHealth(ctx context.Context) {
	m.mu.Lock()
	in := &agentapi.ReportHealthRequest{Cluster: m.cluster(), Task: m.task.TaskArn}
	for _, name := range m.order {
		if c := m.containers[name]; c.health != "" && !c.hidden {
			in.Containers = append(in.Containers, agentapi.ContainerHealth{Name: name, HealthStatus: c.health})
		}
	}
	m.mu.Unlock()
	if len(in.Containers) == 0 {
		return
	}
	m.a.report(ctx, "health", func(ctx context.Context) error { return m.a.cp.reportHealth(ctx, in) })
}
