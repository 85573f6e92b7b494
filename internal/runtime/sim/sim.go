// Package sim is a container runtime that runs nothing: containers are
// records that start, exit and report health at once. Hollow nodes (real
// agents on this runtime) test and benchmark the control plane at a scale
// no machine could run for real.
//
// A container behaves as its command says:
//
//	["sim-exit", "<code>"]   exits with code right after it starts
//	["sim-ignore-term"]      ignores SIGTERM, so Stop waits for its timeout
//
// and a health check whose test contains "sim-unhealthy" reports unhealthy;
// any other health check reports healthy once the container runs.
package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
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
	images     map[string]bool
	subs       map[chan runtime.Event]struct{}
}

var _ runtime.Runtime = (*Runtime)(nil)

type container struct {
	spec  runtime.ContainerSpec
	state runtime.State
}

// New returns an empty runtime.
func New() *Runtime {
	return &Runtime{
		containers: map[string]*container{}, byName: map[string]string{},
		networks: map[string]runtime.NetworkSpec{}, images: map[string]bool{},
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

func (r *Runtime) EnsureImage(_ context.Context, image string, _ runtime.PullPolicy) (string, error) {
	if r.MissingImages[image] || strings.Contains(image, "does-not-exist") {
		return "", fmt.Errorf("%w: pull access denied for %s, repository does not exist", runtime.ErrPull, image)
	}
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
	r.next++
	id := fmt.Sprintf("%064x", r.next)
	labels := map[string]string{}
	for k, v := range spec.Labels {
		labels[k] = v
	}
	c := &container{spec: *spec, state: runtime.State{ID: id, Name: spec.Name, Image: spec.Image, ImageID: "sha256:sim-" + spec.Image, Labels: labels, Status: "created",
		Networks: map[string]string{}, MacAddresses: map[string]string{}}}
	if spec.IPv4Address != "" {
		c.state.Networks[spec.NetworkMode] = spec.IPv4Address
		c.state.MacAddresses[spec.NetworkMode] = spec.MacAddress
	}
	r.containers[id] = c
	r.byName[spec.Name] = id
	r.emit(c, "create")
	return id, nil
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
	c.state.Running, c.state.Status, c.state.StartedAt = true, "running", time.Now()
	for i, p := range c.spec.PortBindings {
		if p.HostPort == 0 {
			p.HostPort = 40000 + (r.next*7+i)%20000
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
	if len(c.spec.Command) == 2 && c.spec.Command[0] == "sim-exit" {
		code, _ := strconv.Atoi(c.spec.Command[1])
		r.exit(c, code)
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

func (r *Runtime) Stop(ctx context.Context, id string, timeout time.Duration) error {
	r.mu.Lock()
	c, err := r.get(id)
	ignores := err == nil && len(c.spec.Command) == 1 && c.spec.Command[0] == "sim-ignore-term"
	r.mu.Unlock()
	if err != nil {
		return err
	}
	code := 0
	if ignores {
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
