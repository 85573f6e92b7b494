// Package agent is Wharf's node agent: it registers a container instance,
// learns the tasks placed on it through a blocking poll of the control
// plane, runs them as containers through a runtime.Runtime with ECS's task
// lifecycle, and reports every change back through the ECS API.
//
// What it needs of the host has packages of its own, which the agent
// wires: hostnet (the host's side of the task networks), metadata (the
// task metadata endpoint, which asks the task managers) and helperimage
// (the pause and proxy images).
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/wharfhq/wharf/internal/agent/helperimage"
	"github.com/wharfhq/wharf/internal/agent/hostnet"
	"github.com/wharfhq/wharf/internal/agent/metadata"
	"github.com/wharfhq/wharf/internal/api/agentapi"
	"github.com/wharfhq/wharf/internal/runtime"
)

// Config configures an agent.
type Config struct {
	// Endpoint is the control plane's URL; Region, AccessKeyID and
	// SecretAccessKey sign the agent's calls.
	Endpoint, Region, AccessKeyID, SecretAccessKey string
	Cluster                                        string
	Runtime                                        runtime.Runtime
	// Name identifies the node among the agents sharing one container
	// engine, such as node-1.
	Name string
	// StateDir keeps the agent's identity across restarts.
	StateDir         string
	AvailabilityZone string
	InstanceType     string
	Attributes       map[string]string
	// CPU is the instance's CPU units; 0 means 1024 per core.
	CPU int
	// MemoryMiB is the instance's memory; 0 means the host's memory less
	// ReservedMemoryMiB.
	MemoryMiB         int
	ReservedMemoryMiB int
	// ReservedPorts are the host ports registered as taken; nil means
	// ECS's reserved ports and those the host listens on.
	ReservedPorts []string
	// ENILimit is how many awsvpc tasks the instance holds; TrunkENILimit
	// how many with ENI trunking enabled.
	ENILimit, TrunkENILimit int
	PullPolicy              runtime.PullPolicy
	// StopTimeout is the default time between SIGTERM and SIGKILL.
	StopTimeout time.Duration
	// CleanupDelay is how long stopped tasks' containers are kept.
	CleanupDelay time.Duration
	// PollWait is how long a poll waits for changes. Default 20 s.
	PollWait time.Duration
	// ResyncInterval is how often every task's containers are read again
	// from the engine, in case an event was missed. 0 means 30 s.
	ResyncInterval time.Duration
	// MetadataPort is the task metadata endpoint's port; 0 picks one.
	MetadataPort int
	// Binary is the executable the helper images are built from; empty
	// means this process's.
	Binary string
	// PauseImage and ProxyImage, when set, are used as the pause and the
	// Service Connect proxy images instead of ones built from Binary.
	PauseImage, ProxyImage string
	// ServiceConnectDrain is how long a stopping client-server Service
	// Connect task keeps running after its stop was asked for (when the
	// control plane deregistered it), so that callers stop sending to it
	// before its containers get SIGTERM. 0 means 3 s; negative, none.
	ServiceConnectDrain time.Duration
	// FargateRuntime, when set, makes this a host of Fargate capacity: it
	// registers in the Fargate pool (Cluster is then state.FargatePool),
	// and runs the containers of FARGATE tasks, and only those, with this
	// engine runtime, which must be gVisor's runsc.
	FargateRuntime string
	// Simulated says that the runtime runs no processes (hollow nodes, for
	// tests and scale runs): Service Connect proxies count as ready once
	// started, and the host's firewall is left alone.
	Simulated bool
	Version   string
	Logger    *slog.Logger
}

// Agent runs the tasks of one container instance.
type Agent struct {
	cfg Config
	cp  *controlPlane
	rt  runtime.Runtime
	log *slog.Logger

	instanceArn string
	pauseImage  string
	// metadata is the task metadata endpoint, listening on metadataPort
	// once Run has started it.
	metadata     *metadata.Server
	metadataPort int
	// stateDir is cfg.StateDir made absolute, and host this host's name:
	// the installation its containers' labels name.
	stateDir, host string

	proxyImageMu sync.Mutex
	proxyImage   string // built on first use
	sc           *scRegistry
	// scrapeEvery is how often the proxies' metrics are read.
	scrapeEvery time.Duration

	linkMu             sync.Mutex
	linked, linkWarned bool // the bridge and awsvpc networks reach each other

	// synced is set once the first poll has said which tasks are this
	// instance's; cleanup waits for it.
	synced atomic.Bool

	mu    sync.Mutex
	tasks map[string]*taskManager // by task ARN
	// finished are tasks whose managers are done, until the control plane
	// stops listing them: a poll answered before their STOPPED report
	// landed must not start them again.
	finished map[string]bool
	network  *agentapi.Network
	awsvpc   bool   // the awsvpc network exists
	dns      string // Wharf's DNS server, host:port
	relays   *hostnet.Relays
}

// New checks cfg and returns an agent; Run starts it.
func New(cfg Config) (*Agent, error) {
	if cfg.Endpoint == "" || cfg.Cluster == "" || cfg.Runtime == nil {
		return nil, errors.New("agent: endpoint, cluster and runtime are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Name == "" {
		cfg.Name = "node"
	}
	if cfg.PullPolicy == "" {
		cfg.PullPolicy = runtime.PullDefault
	}
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = 30 * time.Second
	}
	if cfg.CleanupDelay == 0 {
		cfg.CleanupDelay = time.Hour
	}
	if cfg.PollWait == 0 {
		cfg.PollWait = 20 * time.Second
	}
	if cfg.ResyncInterval <= 0 {
		cfg.ResyncInterval = 30 * time.Second
	}
	if cfg.ENILimit == 0 {
		cfg.ENILimit = 3
	}
	if cfg.ServiceConnectDrain == 0 {
		cfg.ServiceConnectDrain = 3 * time.Second
	}
	if cfg.TrunkENILimit == 0 {
		cfg.TrunkENILimit = 12
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.AvailabilityZone == "" {
		cfg.AvailabilityZone = cfg.Region + "a"
	}
	if cfg.InstanceType == "" {
		cfg.InstanceType = "wharf.node"
	}
	stateDir := ""
	if cfg.StateDir != "" {
		abs, err := filepath.Abs(cfg.StateDir)
		if err != nil {
			return nil, fmt.Errorf("agent: state directory %s: %w", cfg.StateDir, err)
		}
		stateDir = abs
	}
	host, _ := os.Hostname() // without one, containers carry no host and are never taken for orphans
	return &Agent{
		cfg:   cfg,
		cp:    newControlPlane(cfg.Endpoint, cfg.Region, cfg.AccessKeyID, cfg.SecretAccessKey),
		rt:    cfg.Runtime,
		log:   cfg.Logger.With("node", cfg.Name, "cluster", cfg.Cluster),
		tasks: map[string]*taskManager{},

		finished: map[string]bool{},
		metadata: metadata.New(cfg.Runtime),
		sc:       newSCRegistry(),
		relays:   hostnet.NewRelays(),
		stateDir: stateDir,
		host:     host,

		scrapeEvery: 10 * time.Second,
	}, nil
}

// InstanceArn is the container instance the agent registered, once it has.
func (a *Agent) InstanceArn() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.instanceArn
}

// Run registers the instance and runs its tasks until ctx ends. Tasks keep
// running when the agent stops; a new agent with the same state directory
// picks them up again.
func (a *Agent) Run(ctx context.Context) error {
	// The task managers, which start relays, have ended when this runs.
	defer a.relays.Close()
	info, err := a.waitForRuntime(ctx)
	if err != nil {
		return err
	}
	if !a.cfg.Simulated {
		if mac, err := hostnet.PinBridgeMAC(hostnet.BridgeInterface); err != nil {
			a.log.Warn("the default bridge's hardware address may change as containers join it, leaving containers briefly unable to reach the agent", "bridge", hostnet.BridgeInterface, "err", err)
		} else if mac != "" {
			a.log.Info("fixed the default bridge's hardware address, which would otherwise follow its ports", "bridge", hostnet.BridgeInterface, "mac", mac)
		}
	}
	a.pauseImage = a.cfg.PauseImage
	if a.pauseImage == "" {
		if a.pauseImage, err = helperimage.Ensure(ctx, a.rt, a.cfg.Binary, "pause", map[string]string{labelManaged: "true"}); err != nil {
			return fmt.Errorf("build the pause image: %w", err)
		}
	}
	port := a.cfg.MetadataPort
	if port == 0 {
		port = a.loadState().MetadataPort
	}
	a.metadataPort, err = a.metadata.Listen(port)
	if err != nil && port != a.cfg.MetadataPort {
		a.log.Warn("the task metadata endpoint's previous port is taken; running containers will not reach it", "port", port, "err", err)
		a.metadataPort, err = a.metadata.Listen(a.cfg.MetadataPort)
	}
	if err != nil {
		return err
	}
	defer a.metadata.Close()
	if rt := a.cfg.FargateRuntime; rt != "" {
		if _, ok := info.Runtimes[rt]; !ok {
			return fmt.Errorf("the engine has no runtime %q for Fargate tasks (it has %v); add gVisor's runsc to the engine as docs/architecture.md (Fargate) shows, or start the agent without --fargate", rt, slices.Sorted(maps.Keys(info.Runtimes)))
		}
		if info.CgroupDriver != "" && info.CgroupDriver != "cgroupfs" {
			return fmt.Errorf("the engine makes cgroups with %s, and a host of Fargate capacity needs cgroupfs to hold each task to its size; set \"exec-opts\": [\"native.cgroupdriver=cgroupfs\"] in /etc/docker/daemon.json, or start the agent without --fargate", info.CgroupDriver)
		}
	}
	if err := a.register(ctx, info); err != nil {
		return err
	}
	a.log.Info("agent registered", "container_instance_arn", a.InstanceArn(), "docker_version", info.Version)

	var wg sync.WaitGroup
	wg.Add(6)
	go func() { defer wg.Done(); a.watchEvents(ctx) }()
	go func() { defer wg.Done(); a.resyncEvery(ctx, a.cfg.ResyncInterval) }()
	go func() { defer wg.Done(); a.janitor(ctx) }()
	go func() { defer wg.Done(); a.followServiceConnect(ctx) }()
	go func() { defer wg.Done(); a.scrapeProxies(ctx, a.scrapeEvery) }()
	go func() { defer wg.Done(); a.renewCertificates(ctx) }()
	a.pollLoop(ctx, info)
	wg.Wait()
	a.mu.Lock()
	managers := make([]*taskManager, 0, len(a.tasks))
	for _, m := range a.tasks {
		managers = append(managers, m)
	}
	a.mu.Unlock()
	for _, m := range managers {
		<-m.done
	}
	return nil
}

// Running counts the containers of this agent's instance that run on the
// engine, and the tasks they belong to: after Run has returned, what it
// leaves running for the next agent with its state directory to adopt.
func (a *Agent) Running(ctx context.Context) (tasks, containers int, err error) {
	arn := a.InstanceArn()
	if arn == "" {
		return 0, 0, nil
	}
	states, err := a.rt.List(ctx, map[string]string{labelInstance: arn})
	if err != nil {
		return 0, 0, fmt.Errorf("list the containers of %s: %w", arn, err)
	}
	seen := map[string]bool{}
	for _, st := range states {
		if st.Running {
			containers++
			seen[st.Labels[labelTaskArn]] = true
		}
	}
	return len(seen), containers, nil
}

// waitForRuntime waits for the container engine, which may be restarting.
func (a *Agent) waitForRuntime(ctx context.Context) (runtime.Info, error) {
	return WaitForRuntime(ctx, a.rt, a.log)
}

// WaitForRuntime waits until the container engine answers and describes
// it. It logs once that the engine is not reachable, with what the
// runtime says about it, and once that it was found; the attempts in
// between, backing off to every 10 s, log at debug level.
func WaitForRuntime(ctx context.Context, rt runtime.Runtime, log *slog.Logger) (runtime.Info, error) {
	delay := 500 * time.Millisecond
	var since time.Time // of the first failure
	for {
		info, err := rt.Info(ctx)
		if err == nil {
			if !since.IsZero() {
				log.Info("container engine found", "docker_version", info.Version, "waited", time.Since(since).Round(time.Millisecond))
			}
			return info, nil
		}
		if ctx.Err() != nil {
			return runtime.Info{}, ctx.Err()
		}
		if since.IsZero() {
			since = time.Now()
			log.Warn("container engine not reachable; waiting for it, and running no tasks until it answers", "err", err)
		} else {
			log.Debug("container engine still not reachable", "err", err, "retry_in", delay)
		}
		select {
		case <-ctx.Done():
			return runtime.Info{}, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 10*time.Second)
	}
}

type agentState struct {
	ContainerInstanceArn string `json:"containerInstanceArn"`
	EC2InstanceID        string `json:"ec2InstanceId"`
	// MetadataPort is where the task metadata endpoint listened; running
	// containers have it in their environment, so a restart keeps it.
	MetadataPort int `json:"metadataPort,omitempty"`
}

func (a *Agent) statePath() string { return filepath.Join(a.cfg.StateDir, "agent-state.json") }

func (a *Agent) loadState() agentState {
	var st agentState
	if b, err := os.ReadFile(a.statePath()); err == nil {
		json.Unmarshal(b, &st)
	}
	if st.EC2InstanceID == "" {
		st.EC2InstanceID = "i-" + randomHex(17)
	}
	return st
}

func (a *Agent) saveState(st agentState) error {
	if a.cfg.StateDir == "" {
		return nil
	}
	if err := os.MkdirAll(a.cfg.StateDir, 0o700); err != nil {
		return err
	}
	b, _ := json.Marshal(st)
	return os.WriteFile(a.statePath(), b, 0o600)
}

// register registers the instance, or re-registers the one in the state
// directory, retrying until the control plane answers.
func (a *Agent) register(ctx context.Context, info runtime.Info) error {
	st := a.loadState()
	delay := 500 * time.Millisecond
	for {
		arn, err := a.registerOnce(ctx, info, &st)
		if err == nil {
			st.ContainerInstanceArn, st.MetadataPort = arn, a.metadataPort
			a.mu.Lock()
			a.instanceArn = arn
			a.mu.Unlock()
			return a.saveState(st)
		}
		if st.ContainerInstanceArn != "" && isClientError(err) {
			// The control plane forgot the instance: start afresh.
			a.log.Warn("re-registration refused; registering as a new instance", "err", err)
			st.ContainerInstanceArn = ""
			continue
		}
		if isAuthError(err) {
			return fmt.Errorf("register with %s: %w (check the access key)", a.cfg.Endpoint, err)
		}
		if isClientError(err) {
			return fmt.Errorf("register with %s: %w", a.cfg.Endpoint, err)
		}
		a.log.Warn("registration failed; retrying", "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 10*time.Second)
	}
}

func (a *Agent) registerOnce(ctx context.Context, info runtime.Info, st *agentState) (string, error) {
	cpu := a.cfg.CPU
	if cpu == 0 {
		cpu = 1024 * max(info.CPUs, 1)
	}
	mem := a.cfg.MemoryMiB
	if mem == 0 {
		mem = int(info.MemoryBytes>>20) - a.cfg.ReservedMemoryMiB
	}
	if mem <= 0 {
		return "", fmt.Errorf("no memory left to register after reserving %d MiB", a.cfg.ReservedMemoryMiB)
	}
	ports, udp := a.cfg.ReservedPorts, []string{}
	if ports == nil {
		ports = append([]string{"22", "2375", "2376", "51678", "51679"}, listeningPorts("tcp")...)
		udp = listeningPorts("udp")
	}
	doc, _ := json.Marshal(map[string]string{
		"instanceId": st.EC2InstanceID, "availabilityZone": a.cfg.AvailabilityZone,
		"instanceType": a.cfg.InstanceType, "region": a.cfg.Region,
	})
	arch := info.Architecture
	if arch == "aarch64" {
		arch = "arm64"
	}
	attrs := []types.Attribute{
		{Name: aws.String("ecs.availability-zone"), Value: aws.String(a.cfg.AvailabilityZone)},
		{Name: aws.String("ecs.instance-type"), Value: aws.String(a.cfg.InstanceType)},
		{Name: aws.String("ecs.os-type"), Value: aws.String("linux")},
		{Name: aws.String("ecs.os-family"), Value: aws.String("LINUX")},
		{Name: aws.String("ecs.cpu-architecture"), Value: aws.String(arch)},
		{Name: aws.String("com.amazonaws.ecs.capability.docker-remote-api.1.41")},
		{Name: aws.String("ecs.capability.task-eni")},
		{Name: aws.String("ecs.capability.container-health-check")},
		{Name: aws.String("ecs.capability.container-ordering")},
		{Name: aws.String("com.amazonaws.ecs.capability.logging-driver.awslogs")},
		{Name: aws.String("com.amazonaws.ecs.capability.logging-driver.json-file")},
		{Name: aws.String("wharf.node"), Value: aws.String(a.cfg.Name)},
		{Name: aws.String("wharf.sandbox"), Value: aws.String(a.sandbox())},
		// Where bridge and host mode tasks are reached, for service
		// registries.
		{Name: aws.String("wharf.host-ip"), Value: aws.String(hostnet.BridgeGateway())},
	}
	names := make([]string, 0, len(a.cfg.Attributes))
	for k := range a.cfg.Attributes {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		attrs = append(attrs, types.Attribute{Name: aws.String(k), Value: aws.String(a.cfg.Attributes[k])})
	}
	in := &ecs.RegisterContainerInstanceInput{
		Cluster:                  aws.String(a.cfg.Cluster),
		InstanceIdentityDocument: aws.String(string(doc)),
		TotalResources: []types.Resource{
			{Name: aws.String("CPU"), Type: aws.String("INTEGER"), IntegerValue: int32(cpu)},
			{Name: aws.String("MEMORY"), Type: aws.String("INTEGER"), IntegerValue: int32(mem)},
			{Name: aws.String("PORTS"), Type: aws.String("STRINGSET"), StringSetValue: ports},
			{Name: aws.String("PORTS_UDP"), Type: aws.String("STRINGSET"), StringSetValue: udp},
			{Name: aws.String("ENI"), Type: aws.String("INTEGER"), IntegerValue: int32(a.cfg.ENILimit)},
			{Name: aws.String("ENI_TRUNK"), Type: aws.String("INTEGER"), IntegerValue: int32(a.cfg.TrunkENILimit)},
		},
		VersionInfo: &types.VersionInfo{
			AgentVersion:  aws.String(a.cfg.Version),
			AgentHash:     aws.String("wharf"),
			DockerVersion: aws.String("DockerVersion: " + info.Version),
		},
		Attributes: attrs,
	}
	if st.ContainerInstanceArn != "" {
		in.ContainerInstanceArn = aws.String(st.ContainerInstanceArn)
	}
	out, err := a.cp.ecs.RegisterContainerInstance(ctx, in)
	if err != nil {
		return "", err
	}
	return aws.ToString(out.ContainerInstance.ContainerInstanceArn), nil
}

// Name is the node's name.
func (a *Agent) Name() string { return a.cfg.Name }

// sandbox is the kind of sandbox this node runs Fargate tasks in: gvisor,
// or none when it offers no Fargate capacity.
func (a *Agent) sandbox() string {
	if a.cfg.FargateRuntime == "" {
		return "none"
	}
	return "gvisor"
}

// pollLoop keeps the task set in step with the control plane until ctx
// ends, re-registering when the control plane no longer knows the instance.
func (a *Agent) pollLoop(ctx context.Context, info runtime.Info) {
	var index int64
	delay := 500 * time.Millisecond
	for ctx.Err() == nil {
		resp, err := a.cp.poll(ctx, &agentapi.PollRequest{
			Cluster: a.cfg.Cluster, ContainerInstance: a.InstanceArn(),
			Index: index, WaitSeconds: int32(a.cfg.PollWait / time.Second),
		})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var ae *agentapi.Error
			if errors.As(err, &ae) && ae.Code == agentapi.CodeInstanceNotRegistered {
				a.log.Warn("the control plane no longer knows this instance; registering again", "err", err)
				if err := a.register(ctx, info); err != nil {
					if ctx.Err() == nil {
						a.log.Error("registering again failed; this node runs no new tasks until the agent restarts", "err", err)
					}
					return
				}
				index = 0
				continue
			}
			a.log.Warn("poll failed; retrying", "err", err, "retry_in", delay)
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			delay = min(delay*2, 10*time.Second)
			// The index stays: the next poll resumes after what this
			// agent has seen.
			continue
		}
		delay = 500 * time.Millisecond
		index = resp.Index
		a.reconcile(ctx, resp)
	}
}

// reconcile starts a manager for every newly assigned task and passes each
// manager its task's latest desired state.
func (a *Agent) reconcile(ctx context.Context, resp *agentapi.PollResponse) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.network, a.dns = resp.Network, resp.DNS
	assigned := map[string]bool{}
	for _, at := range resp.Tasks {
		assigned[at.Task.TaskArn] = true
		if a.finished[at.Task.TaskArn] {
			continue
		}
		m, ok := a.tasks[at.Task.TaskArn]
		if !ok {
			m = newTaskManager(a, at)
			a.tasks[at.Task.TaskArn] = m
			go m.run(ctx)
		}
		m.update(at.Task.DesiredStatus, time.Duration(at.StopWithinSeconds)*time.Second)
	}
	// A task the control plane stopped without this agent must stop here.
	for arn, m := range a.tasks {
		if !assigned[arn] {
			m.update("STOPPED", 0)
		}
	}
	for arn := range a.finished {
		if !assigned[arn] {
			delete(a.finished, arn)
		}
	}
	a.synced.Store(true)
}

// forget drops a finished task's manager.
func (a *Agent) forget(arn string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.tasks, arn)
	a.finished[arn] = true
}

func (a *Agent) manager(arn string) *taskManager {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.tasks[arn]
}

// proxyImageTag returns the Service Connect proxy image, building it from
// the agent's binary on first use.
func (a *Agent) proxyImageTag(ctx context.Context) (string, error) {
	a.proxyImageMu.Lock()
	defer a.proxyImageMu.Unlock()
	if a.proxyImage != "" {
		return a.proxyImage, nil
	}
	tag := a.cfg.ProxyImage
	if tag == "" {
		var err error
		if tag, err = helperimage.Ensure(ctx, a.rt, a.cfg.Binary, "proxy", map[string]string{labelManaged: "true"}); err != nil {
			return "", fmt.Errorf("build the Service Connect proxy image: %w", err)
		}
	}
	a.proxyImage = tag
	return tag, nil
}

// resolver returns the address containers on a network with the given
// gateway should use as their DNS server, or "" for the engine's default.
func (a *Agent) resolver(gateway string) string {
	a.mu.Lock()
	upstream := a.dns
	a.mu.Unlock()
	if a.ensureRelay(gateway, upstream) {
		return gateway
	}
	return ""
}

// ensureRelay makes sure a DNS relay of this agent listens on ip:53 and
// forwards to upstream. It reports whether containers can use ip as their
// resolver.
func (a *Agent) ensureRelay(ip, upstream string) bool {
	if ip == "" || upstream == "" {
		return false
	}
	addr := net.JoinHostPort(ip, "53")
	started, err := a.relays.Ensure(ip, upstream)
	switch {
	case errors.Is(err, hostnet.ErrClosed):
		return false
	case err != nil:
		a.log.Warn("containers will use their default resolvers: cannot listen for DNS on the gateway", "addr", addr, "err", err)
		return false
	case started:
		a.log.Info("relaying containers' DNS queries to Wharf", "listen", addr, "upstream", upstream)
	}
	return true
}

// networkInfo is the awsvpc network the control plane last described.
func (a *Agent) networkInfo() *agentapi.Network {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.network
}

// awsvpcNetwork ensures the awsvpc network exists and returns it.
func (a *Agent) awsvpcNetwork(ctx context.Context) (*agentapi.Network, error) {
	a.mu.Lock()
	n, ready := a.network, a.awsvpc
	a.mu.Unlock()
	if n == nil {
		return nil, errors.New("the control plane sent no awsvpc network")
	}
	if ready {
		return n, nil
	}
	err := a.rt.EnsureNetwork(ctx, runtime.NetworkSpec{Name: n.Name, Subnet: n.Subnet, Gateway: n.Gateway, Labels: map[string]string{labelManaged: "true"}})
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.awsvpc = true
	a.mu.Unlock()
	a.linkNetworks()
	return n, nil
}

// linkNetworks lets tasks on the engine's default bridge and tasks on the
// awsvpc network reach each other's addresses (hostnet.Link). Service
// Connect needs it: a bridge task's proxy calls awsvpc tasks at their
// addresses. (awsvpc tasks reach bridge tasks through host ports, which the
// engine proxies.) It reports whether both ways are open; it does nothing
// before the awsvpc network exists on this host, nor on a hollow node.
func (a *Agent) linkNetworks() bool {
	a.linkMu.Lock()
	defer a.linkMu.Unlock()
	if a.linked || a.cfg.Simulated {
		return a.linked
	}
	n := a.networkInfo()
	if n == nil {
		return false
	}
	bridge, awsvpc, err := hostnet.Link(hostnet.BridgeGateway(), n.Gateway)
	if errors.Is(err, hostnet.ErrNoInterface) {
		return false
	}
	if err != nil {
		if !a.linkWarned {
			a.log.Warn("bridge tasks cannot reach awsvpc tasks' addresses, nor their Service Connect endpoints: accepting the traffic between the networks failed", "err", err)
			a.linkWarned = true
		}
		return false
	}
	a.log.Info("bridge and awsvpc tasks can reach each other", "bridge", bridge, "awsvpc", awsvpc)
	a.linked = true
	return true
}

// watchEvents feeds container events to the task managers, resubscribing
// when the engine restarts.
func (a *Agent) watchEvents(ctx context.Context) {
	for ctx.Err() == nil {
		events, errc := a.rt.Events(ctx)
		for ev := range events {
			if ev.Labels[labelInstance] != a.InstanceArn() {
				continue
			}
			if m := a.manager(ev.Labels[labelTaskArn]); m != nil {
				m.event(ev)
			}
		}
		if ctx.Err() != nil {
			return
		}
		err := <-errc
		a.log.Warn("container event stream broke; resubscribing", "err", err)
		if _, err := a.waitForRuntime(ctx); err != nil {
			return
		}
		// Events may have been missed while the stream was down.
		a.resyncTasks()
	}
}

// resyncEvery has every task's containers read from the engine again at
// each interval, so that a missed event delays what it tells by at most
// that long.
func (a *Agent) resyncEvery(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.resyncTasks()
		}
	}
}

func (a *Agent) resyncTasks() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, m := range a.tasks {
		m.resync()
	}
}

// reportTask sends a task state change, retrying until it is accepted or
// ctx ends.
func (a *Agent) report(ctx context.Context, what string, call func(context.Context) error) {
	delay := 200 * time.Millisecond
	for {
		err := call(ctx)
		if err == nil || ctx.Err() != nil {
			return
		}
		if isClientError(err) {
			a.log.Warn("state report refused", "report", what, "err", err)
			return
		}
		a.log.Warn("state report failed; retrying", "report", what, "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, 10*time.Second)
	}
}

// listeningPorts returns the host's listening ports of a protocol, as the
// ECS agent reports the ports in use when it registers.
func listeningPorts(proto string) []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range []string{"/proc/net/" + proto, "/proc/net/" + proto + "6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for i, line := range strings.Split(string(b), "\n") {
			fields := strings.Fields(line)
			if i == 0 || len(fields) < 4 {
				continue
			}
			// TCP sockets listen in state 0A; bound UDP sockets show 07.
			if proto == "tcp" && fields[3] != "0A" || proto == "udp" && fields[3] != "07" {
				continue
			}
			_, port, ok := strings.Cut(fields[1], ":")
			n, err := strconv.ParseUint(port, 16, 16)
			if !ok || err != nil || n == 0 {
				continue
			}
			p := strconv.Itoa(int(n))
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) < len(out[j]) || len(out[i]) == len(out[j]) && out[i] < out[j] })
	if len(out) > 100 {
		out = out[:100]
	}
	return out
}
