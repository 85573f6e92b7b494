// Package sim is a container runtime that runs nothing: containers are
// records that start, exit and report health at once. Hollow nodes (real
// agents on this runtime) test and benchmark the control plane at a scale
// no machine could run for real.
//
// A container behaves as its command says:
//
//	["sim-exit", "<code>"]   exits with code right after it starts
//	["sim-ignore-term"]      ignores SIGTERM, so Stop waits for its timeout
//	["sim-oom"]              is killed by the OOM killer right after it starts
//
// and any other command runs until it is stopped, exiting 0 on SIGTERM. A
// health check whose test contains "sim-unhealthy" reports unhealthy; any
// other health check reports healthy once the container runs, and a
// stopped container with a health check is unhealthy.
//
// Otherwise it behaves as the Docker engine does where the agent looks
// (runtimetest is the suite both pass): every image but the missing ones
// can be pulled, and is present once pulled or built; a container on a
// network that does not exist cannot be created; a running container has
// an address (and a MAC address) on its network, the default bridge's
// being 172.17.0.0/16, and its published ports bound on 0.0.0.0, which it
// gives up when it exits; a zero Stop timeout kills at once, a negative one
// waits the container's own stop timeout; removing a running container
// kills it first.
package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wharfhq/wharf/internal/runtime"
)

// Runtime is an in-memory runtime.Runtime.
type Runtime struct {
	// StartDelay is how long Start takes.
	StartDelay time.Duration
	// MissingImages lists images whose pulls fail.
	MissingImages map[string]bool

	mu         sync.Mutex
	next       int
	containers map[string]*container
	byName     map[string]string
	networks   map[string]runtime.NetworkSpec
	// inUse are the addresses taken on each network, "bridge" included.
	inUse  map[string]map[netip.Addr]bool
	images map[string]bool
	subs   map[chan runtime.Event]struct{}
}

// bridgeSubnet is the default bridge's, as the engine's default.
var bridgeSubnet = netip.MustParsePrefix("172.17.0.0/16")

var _ runtime.Runtime = (*Runtime)(nil)

type container struct {
	spec  runtime.ContainerSpec
	state runtime.State
}

// New returns an empty runtime.
func New() *Runtime {
	return &Runtime{
		containers: map[string]*container{}, byName: map[string]string{},
		networks: map[string]runtime.NetworkSpec{}, images: map[string]bool{}, inUse: map[string]map[netip.Addr]bool{},
		subs: map[chan runtime.Event]struct{}{}, MissingImages: map[string]bool{},
	}
}

func (r *Runtime) emit(c *container, action string) {
	ev := runtime.Event{ContainerID: c.state.ID, Action: action, Labels: c.state.Labels, Time: time.Now()}
	for ch := range r.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

// Info describes a generous hollow host.
func (r *Runtime) Info(context.Context) (runtime.Info, error) {
	return runtime.Info{Version: "sim", APIVersion: "1.41", OS: "linux", Architecture: "x86_64", CPUs: 4, MemoryBytes: 16 << 30}, nil
}

// EnsureImage pulls every image but those in MissingImages and those whose
// name has "does-not-exist" (unless present already, for policies that
// take a local copy).
func (r *Runtime) EnsureImage(_ context.Context, image string, policy runtime.PullPolicy) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	local := r.images[image] && policy != runtime.PullAlways
	if !local && (r.MissingImages[image] || strings.Contains(image, "does-not-exist")) {
		return "", fmt.Errorf("%w: pull access denied for %s, repository does not exist", runtime.ErrPull, image)
	}
	r.images[image] = true
	return "sha256:sim-" + image, nil
}

func (r *Runtime) ImageExists(_ context.Context, image string) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.images[image], nil
}

func (r *Runtime) BuildImage(_ context.Context, tag string, buildContext io.Reader, _ map[string]string) error {
	io.Copy(io.Discard, buildContext)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.images[tag] = true
	return nil
}

func (r *Runtime) Create(_ context.Context, spec *runtime.ContainerSpec) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, taken := r.byName[spec.Name]; taken {
		return "", fmt.Errorf("conflict: the container name %q is already in use", spec.Name)
	}
	network := networkOf(spec)
	if _, ok := r.networks[network]; network != "" && !ok && !builtinNetworks[network] {
		return "", fmt.Errorf("%w: network %s not found", runtime.ErrNotFound, network)
	}
	r.next++
	id := fmt.Sprintf("%064x", r.next)
	labels := map[string]string{}
	for k, v := range spec.Labels {
		labels[k] = v
	}
	c := &container{spec: *spec, state: runtime.State{ID: id, Name: spec.Name, Image: spec.Image, ImageID: "sha256:sim-" + spec.Image, Labels: labels, Status: "created",
		Networks: map[string]string{}, MacAddresses: map[string]string{}}}
	if network != "" {
		// Addresses come with the start.
		c.state.Networks[network], c.state.MacAddresses[network] = "", ""
	}
	r.containers[id] = c
	r.byName[spec.Name] = id
	r.emit(c, "create")
	return id, nil
}

// builtinNetworks exist on every engine.
var builtinNetworks = map[string]bool{"bridge": true, "host": true, "none": true}

// networkOf is the network a container is attached to; "" when it joins
// another container's namespace.
func networkOf(spec *runtime.ContainerSpec) string {
	switch {
	case spec.NetworkMode == "", spec.NetworkMode == "default":
		return "bridge"
	case strings.HasPrefix(spec.NetworkMode, "container:"):
		return ""
	}
	return spec.NetworkMode
}

// attach gives a starting container its address on its network. Call with
// r.mu held.
func (r *Runtime) attach(c *container) error {
	network := networkOf(&c.spec)
	var subnet netip.Prefix
	switch network {
	case "", "host", "none":
		return nil
	case "bridge":
		subnet = bridgeSubnet
	default:
		nw, ok := r.networks[network]
		if !ok {
			return fmt.Errorf("%w: network %s not found", runtime.ErrNotFound, network)
		}
		p, err := netip.ParsePrefix(nw.Subnet)
		if err != nil {
			return fmt.Errorf("network %s has no usable subnet %q: %w", network, nw.Subnet, err)
		}
		subnet = p.Masked()
	}
	used := r.inUse[network]
	if used == nil {
		used = map[netip.Addr]bool{}
		r.inUse[network] = used
	}
	var addr netip.Addr
	if c.spec.IPv4Address != "" {
		a, err := netip.ParseAddr(c.spec.IPv4Address)
		if err != nil || !subnet.Contains(a) {
			return fmt.Errorf("invalid address %s: it does not belong to any of network %s's subnets", c.spec.IPv4Address, network)
		}
		if used[a] {
			return fmt.Errorf("address %s is already in use on network %s", a, network)
		}
		addr = a
	} else {
		// The first address is the gateway's.
		for a := subnet.Addr().Next().Next(); subnet.Contains(a); a = a.Next() {
			if !used[a] {
				addr = a
				break
			}
		}
		if !addr.IsValid() {
			return fmt.Errorf("no address left on network %s", network)
		}
	}
	used[addr] = true
	mac := c.spec.MacAddress
	if mac == "" {
		b := addr.As4()
		mac = fmt.Sprintf("02:42:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3])
	}
	c.state.Networks[network], c.state.MacAddresses[network] = addr.String(), mac
	return nil
}

// detach gives a container's address up. Call with r.mu held.
func (r *Runtime) detach(c *container) {
	for network, s := range c.state.Networks {
		if a, err := netip.ParseAddr(s); err == nil {
			delete(r.inUse[network], a)
		}
		c.state.Networks[network], c.state.MacAddresses[network] = "", ""
	}
}

func (r *Runtime) get(id string) (*container, error) {
	c, ok := r.containers[id]
	if !ok {
		return nil, fmt.Errorf("%w: no such container %s", runtime.ErrNotFound, id)
	}
	return c, nil
}

func (r *Runtime) Start(ctx context.Context, id string) error {
	if r.StartDelay > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(r.StartDelay):
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.get(id)
	if err != nil || c.state.Running {
		return err
	}
	if err := r.attach(c); err != nil {
		return fmt.Errorf("start container %s: %w", id, err)
	}
	c.state.Running, c.state.Status, c.state.StartedAt = true, "running", time.Now()
	c.state.ExitCode, c.state.OOMKilled = 0, false
	c.state.Ports = nil
	for i, p := range c.spec.PortBindings {
		if p.HostPort == 0 {
			p.HostPort = 40000 + (r.next*7+i)%20000
		}
		if p.HostIP == "" {
			p.HostIP = "0.0.0.0"
		}
		c.state.Ports = append(c.state.Ports, p)
	}
	r.emit(c, "start")
	if hc := c.spec.HealthCheck; hc != nil {
		c.state.Health = "healthy"
		if strings.Contains(strings.Join(hc.Test, " "), "sim-unhealthy") {
			c.state.Health = "unhealthy"
		}
		r.emit(c, "health_status")
	}
	switch cmd := c.spec.Command; {
	case len(cmd) == 2 && cmd[0] == "sim-exit":
		code, _ := strconv.Atoi(cmd[1])
		r.exit(c, code)
	case len(cmd) == 1 && cmd[0] == "sim-oom":
		c.state.OOMKilled = true
		r.emit(c, "oom")
		r.exit(c, 137)
	}
	return nil
}

// exit ends a running container. Call with r.mu held.
func (r *Runtime) exit(c *container, code int) {
	if !c.state.Running {
		return
	}
	c.state.Running, c.state.Status, c.state.ExitCode, c.state.FinishedAt = false, "exited", code, time.Now()
	c.state.Health = ""
	if c.spec.HealthCheck != nil {
		c.state.Health = "unhealthy" // as the engine has it once the checks stop
	}
	c.state.Ports = nil
	r.detach(c)
	r.emit(c, "die")
}

// Kill ends a container as if its process died with code.
func (r *Runtime) Kill(id string, code int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.get(id)
	if err == nil {
		r.exit(c, code)
	}
	return err
}

// Stop sends SIGTERM and kills after timeout: at once for 0, after the
// container's own stop timeout (10 s without one) when negative.
func (r *Runtime) Stop(ctx context.Context, id string, timeout time.Duration) error {
	r.mu.Lock()
	c, err := r.get(id)
	ignores := err == nil && len(c.spec.Command) == 1 && c.spec.Command[0] == "sim-ignore-term"
	if err == nil && timeout < 0 {
		timeout = c.spec.StopTimeout
		if timeout <= 0 {
			timeout = 10 * time.Second
		}
	}
	running := err == nil && c.state.Running
	r.mu.Unlock()
	if err != nil || !running {
		return err
	}
	code := 0
	if timeout == 0 {
		code = 137
	} else if ignores {
		code = 137
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(timeout):
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.exit(c, code)
	return nil
}

func (r *Runtime) Remove(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.containers[id]; ok {
		r.exit(c, 137)
		delete(r.byName, c.state.Name)
		delete(r.containers, id)
		r.emit(c, "destroy")
	}
	return nil
}

func (r *Runtime) Inspect(_ context.Context, id string) (*runtime.State, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.get(id)
	if err != nil {
		return nil, err
	}
	st := c.state
	return &st, nil
}

// DiskUsage is 0: simulated containers write nothing.
func (r *Runtime) DiskUsage(_ context.Context, id string) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, err := r.get(id)
	return 0, err
}

func (r *Runtime) List(_ context.Context, labels map[string]string) ([]runtime.State, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []runtime.State
	for _, c := range r.containers {
		match := true
		for k, v := range labels {
			have, ok := c.state.Labels[k]
			match = match && ok && (v == "" || have == v)
		}
		if match {
			out = append(out, c.state)
		}
	}
	return out, nil
}

func (r *Runtime) Events(ctx context.Context) (<-chan runtime.Event, <-chan error) {
	ch := make(chan runtime.Event, 256)
	errc := make(chan error, 1)
	r.mu.Lock()
	r.subs[ch] = struct{}{}
	r.mu.Unlock()
	out := make(chan runtime.Event, 256)
	go func() {
		defer close(out)
		defer func() {
			r.mu.Lock()
			delete(r.subs, ch)
			r.mu.Unlock()
		}()
		for {
			select {
			case <-ctx.Done():
				errc <- ctx.Err()
				return
			case ev := <-ch:
				select {
				case out <- ev:
				case <-ctx.Done():
					errc <- ctx.Err()
					return
				}
			}
		}
	}()
	return out, errc
}

func (r *Runtime) Stats(_ context.Context, id string) (runtime.Stats, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.get(id); err != nil {
		return nil, err
	}
	b, _ := json.Marshal(map[string]any{"id": id, "cpu_stats": map[string]any{"cpu_usage": map[string]any{"total_usage": 0}}, "memory_stats": map[string]any{"usage": 0}})
	return b, nil
}

func (r *Runtime) Logs(_ context.Context, id string, _ int) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, err := r.get(id)
	return nil, err
}

func (r *Runtime) EnsureNetwork(_ context.Context, spec runtime.NetworkSpec) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if have, ok := r.networks[spec.Name]; ok && have.Subnet != spec.Subnet {
		return fmt.Errorf("network %s exists with subnet %s, not %s", spec.Name, have.Subnet, spec.Subnet)
	}
	r.networks[spec.Name] = spec
	return nil
}

func (r *Runtime) RemoveNetwork(_ context.Context, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.networks, name)
	return nil
}
