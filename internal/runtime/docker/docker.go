package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"

	"github.com/wharfhq/wharf/internal/runtime"
)

var _ runtime.Runtime = (*Docker)(nil)

// Docker is a runtime.Runtime backed by a Docker engine. It is safe for
// concurrent use.
type Docker struct {
	cli *client.Client
	log *slog.Logger

	mu         sync.Mutex
	apiVersion string // negotiated with the engine; "" until the first need

	networkMu sync.Mutex // serialises EnsureNetwork
}

type options struct {
	host   string
	logger *slog.Logger
}

// Option configures New.
type Option func(*options)

// WithHost sets the engine's address (unix:///var/run/docker.sock,
// tcp://host:2376, ...) instead of DOCKER_HOST or the default socket.
func WithHost(host string) Option {
	return func(o *options) { o.host = host }
}

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// New returns a runtime that talks to the engine at DOCKER_HOST (with
// DOCKER_TLS_VERIFY, DOCKER_CERT_PATH and DOCKER_API_VERSION as the docker
// CLI reads them) or the default socket. It negotiates the API version with
// the engine on first use, so it works with engines from API 1.41 (Docker
// 20.10) on. New does not contact the engine.
func New(opts ...Option) (*Docker, error) {
	o := options{logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	copts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if o.host != "" {
		copts = append(copts, client.WithHost(o.host))
	}
	cli, err := client.NewClientWithOpts(copts...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return &Docker{cli: cli, log: o.logger}, nil
}

// Close releases the client's connections.
func (d *Docker) Close() error { return d.cli.Close() }

// Info describes the engine and its host.
func (d *Docker) Info(ctx context.Context) (runtime.Info, error) {
	info, err := d.cli.Info(ctx)
	if err != nil {
		return runtime.Info{}, d.engineError("docker info", err)
	}
	v, err := d.cli.ServerVersion(ctx)
	if err != nil {
		return runtime.Info{}, d.engineError("docker version", err)
	}
	runtimes := map[string]string{}
	for name, r := range info.Runtimes {
		runtimes[name] = r.Path
	}
	return runtime.Info{
		Runtimes:     runtimes,
		Version:      info.ServerVersion,
		APIVersion:   v.APIVersion,
		OS:           info.OSType,
		Architecture: info.Architecture,
		CPUs:         info.NCPU,
		MemoryBytes:  info.MemTotal,
		CgroupDriver: info.CgroupDriver,
	}, nil
}

// engineError wraps an error of a call to the engine; when no engine
// answers, it says where it was looked for and how to start one.
func (d *Docker) engineError(op string, err error) error {
	if client.IsErrConnectionFailed(err) {
		return fmt.Errorf("no Docker engine answers at %s; start it with `dockerd` or the system's service (`systemctl start docker`), or set DOCKER_HOST to one that runs: %w", d.cli.DaemonHost(), err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// negotiatedVersion returns the API version requests use, negotiating it
// with the engine the first time.
func (d *Docker) negotiatedVersion(ctx context.Context) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.apiVersion != "" {
		return d.apiVersion, nil
	}
	ping, err := d.cli.Ping(ctx)
	if err != nil {
		return "", fmt.Errorf("reach docker engine at %s: %w", d.cli.DaemonHost(), err)
	}
	d.cli.NegotiateAPIVersionPing(ping)
	d.apiVersion = d.cli.ClientVersion()
	return d.apiVersion, nil
}

// classError carries the engine's error and the runtime error class it
// belongs to, so that errors.Is works for both while the message stays the
// engine's.
type classError struct {
	class error
	err   error
}

func (e *classError) Error() string   { return e.err.Error() }
func (e *classError) Unwrap() []error { return []error{e.class, e.err} }

// classify tags engine errors with the runtime error class they belong to.
func classify(err error) error {
	if cerrdefs.IsNotFound(err) && !errors.Is(err, runtime.ErrNotFound) {
		return &classError{class: runtime.ErrNotFound, err: err}
	}
	return err
}
