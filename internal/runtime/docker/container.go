package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"

	"github.com/wharfhq/wharf/internal/runtime"
)

// Create makes a container from spec and returns its id. A container of
// the same name is an error (the engine's conflict; cerrdefs.IsConflict
// tells it apart).
func (d *Docker) Create(ctx context.Context, spec *runtime.ContainerSpec) (string, error) {
	version, err := d.negotiatedVersion(ctx)
	if err != nil {
		return "", fmt.Errorf("create container %q: %w", spec.Name, err)
	}
	req, err := createRequestFor(spec, version)
	if err != nil {
		return "", err
	}
	resp, err := d.cli.ContainerCreate(ctx, req.config, req.host, req.network, nil, spec.Name)
	if err != nil {
		return "", fmt.Errorf("create container %q: %w", spec.Name, classify(err))
	}
	for _, w := range resp.Warnings {
		d.log.Warn("engine warning on container create", "container", spec.Name, "container_id", resp.ID, "warning", w)
	}
	return resp.ID, nil
}

// Start starts a created or stopped container; starting a running one does
// nothing.
func (d *Docker) Start(ctx context.Context, id string) error {
	if err := d.cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return fmt.Errorf("start container %s: %w", id, classify(err))
	}
	return nil
}

// Stop sends the container's stop signal (its StopSignal, else SIGTERM),
// waits up to timeout, rounded up to whole seconds, then sends SIGKILL. A
// zero timeout kills at once; a negative one uses the container's own stop
// timeout (StopTimeout, else the engine's 10s). Stopping a container that
// is not running is not an error. ctx should allow for the timeout.
func (d *Docker) Stop(ctx context.Context, id string, timeout time.Duration) error {
	if timeout == 0 {
		// No grace at all: the engine's stop would still send the stop
		// signal first, and a container quick to exit on it would not be
		// killed.
		err := d.cli.ContainerKill(ctx, id, "KILL")
		if err != nil && !(cerrdefs.IsConflict(err) && strings.Contains(err.Error(), "is not running")) {
			return fmt.Errorf("stop container %s: %w", id, classify(err))
		}
		waited, errc := d.cli.ContainerWait(ctx, id, container.WaitConditionNotRunning)
		select {
		case <-waited:
		case err := <-errc:
			if err != nil && !cerrdefs.IsNotFound(err) {
				return fmt.Errorf("stop container %s: %w", id, classify(err))
			}
		}
		return nil
	}
	var opts container.StopOptions
	if timeout >= 0 {
		s := ceilSeconds(timeout)
		opts.Timeout = &s
	}
	if err := d.cli.ContainerStop(ctx, id, opts); err != nil {
		return fmt.Errorf("stop container %s: %w", id, classify(err))
	}
	return nil
}

// Remove removes a container, killing it if it runs, with its anonymous
// volumes. A missing container, or one already being removed, is not an
// error.
func (d *Docker) Remove(ctx context.Context, id string) error {
	err := d.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	switch {
	case err == nil, cerrdefs.IsNotFound(err):
		return nil
	case cerrdefs.IsConflict(err) && strings.Contains(err.Error(), "already in progress"):
		return nil
	default:
		return fmt.Errorf("remove container %s: %w", id, err)
	}
}

// Inspect returns a container's state; the error wraps runtime.ErrNotFound
// when there is no such container.
func (d *Docker) Inspect(ctx context.Context, id string) (*runtime.State, error) {
	c, err := d.cli.ContainerInspect(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("inspect container %s: %w", id, classify(err))
	}
	return stateOf(c), nil
}

// DiskUsage returns the size of the container's writable layer, which the
// engine computes on request.
func (d *Docker) DiskUsage(ctx context.Context, id string) (int64, error) {
	c, _, err := d.cli.ContainerInspectWithRaw(ctx, id, true)
	if err != nil {
		return 0, fmt.Errorf("inspect container %s: %w", id, classify(err))
	}
	if c.SizeRw == nil {
		return 0, nil
	}
	return *c.SizeRw, nil
}

// stateOf converts an inspect result.
func stateOf(c container.InspectResponse) *runtime.State {
	s := &runtime.State{}
	if c.ContainerJSONBase != nil {
		s.ID = c.ID
		s.Name = strings.TrimPrefix(c.Name, "/")
		s.ImageID = c.Image
		if st := c.State; st != nil {
			s.Status = st.Status
			s.Running = st.Running
			s.ExitCode = st.ExitCode
			s.OOMKilled = st.OOMKilled
			s.Error = st.Error
			s.StartedAt = engineTime(st.StartedAt)
			s.FinishedAt = engineTime(st.FinishedAt)
			s.Pid = st.Pid
			if st.Health != nil && st.Health.Status != container.NoHealthcheck {
				s.Health = st.Health.Status
			}
		}
	}
	if c.Config != nil {
		s.Image = c.Config.Image
		s.Labels = c.Config.Labels
	}
	if ns := c.NetworkSettings; ns != nil {
		s.Ports = portsOf(ns.Ports)
		if len(ns.Networks) > 0 {
			s.Networks = make(map[string]string, len(ns.Networks))
			s.MacAddresses = make(map[string]string, len(ns.Networks))
			for name, ep := range ns.Networks {
				if ep == nil {
					continue
				}
				s.Networks[name] = ep.IPAddress
				s.MacAddresses[name] = ep.MacAddress
			}
		}
	}
	return s
}

// engineTime parses the engine's RFC 3339 timestamps; the engine's "never"
// (0001-01-01T00:00:00Z) and anything unparsable become the zero time.
func engineTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.IsZero() {
		return time.Time{}
	}
	return t
}

// portsOf lists the published ports in a stable order, one entry per host
// binding (an engine with IPv6 binds 0.0.0.0 and :: separately).
func portsOf(pm nat.PortMap) []runtime.PortBinding {
	var out []runtime.PortBinding
	for port, bindings := range pm {
		for _, b := range bindings {
			hp, err := strconv.Atoi(b.HostPort)
			if err != nil {
				continue
			}
			out = append(out, runtime.PortBinding{
				ContainerPort: port.Int(),
				HostPort:      hp,
				Protocol:      port.Proto(),
				HostIP:        b.HostIP,
			})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.ContainerPort != b.ContainerPort {
			return a.ContainerPort < b.ContainerPort
		}
		if a.Protocol != b.Protocol {
			return a.Protocol < b.Protocol
		}
		return a.HostIP < b.HostIP
	})
	return out
}

// List returns the state of every container, running or not, that carries
// all of labels (a "" value matches any value). It inspects each one, so
// the states are as complete as Inspect's.
func (d *Docker) List(ctx context.Context, labels map[string]string) ([]runtime.State, error) {
	f := filters.NewArgs()
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if v := labels[k]; v != "" {
			f.Add("label", k+"="+v)
		} else {
			f.Add("label", k)
		}
	}
	summaries, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	states := make([]runtime.State, 0, len(summaries))
	for _, sum := range summaries {
		s, err := d.Inspect(ctx, sum.ID)
		if errors.Is(err, runtime.ErrNotFound) {
			continue // removed since the list
		}
		if err != nil {
			return nil, fmt.Errorf("list containers: %w", err)
		}
		states = append(states, *s)
	}
	return states, nil
}

// Stats returns one sample of a container's resource use as the engine's
// JSON, taken with one-shot=1: the engine answers at once, so precpu_stats
// is empty and a CPU rate needs two samples.
func (d *Docker) Stats(ctx context.Context, id string) (runtime.Stats, error) {
	resp, err := d.cli.ContainerStatsOneShot(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("stats of container %s: %w", id, classify(err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("stats of container %s: %w", id, err)
	}
	return runtime.Stats(bytes.TrimSpace(b)), nil
}

// Logs returns the last tail lines (all when tail <= 0) of a container's
// stdout and stderr as plain text, in the order the engine logged them. It
// needs a log driver the engine can read back (json-file, local, journald).
func (d *Docker) Logs(ctx context.Context, id string, tail int) ([]byte, error) {
	c, err := d.cli.ContainerInspect(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("logs of container %s: %w", id, classify(err))
	}
	opts := container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "all"}
	if tail > 0 {
		opts.Tail = strconv.Itoa(tail)
	}
	body, err := d.cli.ContainerLogs(ctx, id, opts)
	if err != nil {
		return nil, fmt.Errorf("logs of container %s: %w", id, classify(err))
	}
	defer body.Close()
	var out bytes.Buffer
	if c.Config != nil && c.Config.Tty {
		// A TTY merges the streams; the engine sends the raw bytes.
		_, err = io.Copy(&out, body)
	} else {
		// Otherwise each chunk comes in a frame saying which stream it
		// belongs to; both go to one buffer, keeping their order.
		_, err = stdcopy.StdCopy(&out, &out, body)
	}
	if err != nil {
		return nil, fmt.Errorf("logs of container %s: %w", id, err)
	}
	return out.Bytes(), nil
}
