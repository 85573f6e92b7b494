// Package runtime defines what the node agent needs from a container engine.
// runtime/docker implements it on the Docker Engine API; runtime/sim on
// hollow nodes for scale tests. runtime/runtimetest is the conformance
// suite both pass: where they would differ, the engine is the reference.
package runtime

import (
	"context"
	"errors"
	"io"
	"time"
)

// Errors implementations wrap so that the agent can tell failures apart.
var (
	// ErrNotFound: no such container, image or network.
	ErrNotFound = errors.New("not found")
	// ErrPull: an image could not be pulled (unknown, unauthorized or
	// unreachable registry).
	ErrPull = errors.New("cannot pull image")
)

// PullPolicy says when an image is pulled, as ECS_IMAGE_PULL_BEHAVIOR does.
type PullPolicy string

const (
	// PullDefault pulls, and falls back to a local copy when the pull fails.
	PullDefault PullPolicy = "default"
	// PullAlways pulls and fails when the pull fails.
	PullAlways PullPolicy = "always"
	// PullOnce pulls only when the image is not present.
	PullOnce PullPolicy = "once"
	// PullPreferCached uses a local copy when present, else pulls.
	PullPreferCached PullPolicy = "prefer-cached"
)

// Mount is a bind mount or named volume in a container.
type Mount struct {
	// Source is a host path (bind) or a volume name (volume).
	Source   string
	Target   string
	ReadOnly bool
	// Volume is true for a named volume, false for a bind mount.
	Volume bool
}

// Ulimit is a resource limit.
type Ulimit struct {
	Name       string
	Soft, Hard int64
}

// HealthCheck is a container health check, in Docker's terms.
type HealthCheck struct {
	Test        []string // ["CMD", ...] or ["CMD-SHELL", "..."]
	Interval    time.Duration
	Timeout     time.Duration
	Retries     int
	StartPeriod time.Duration
}

// PortBinding publishes a container port on the host. HostPort 0 picks a
// free port.
type PortBinding struct {
	ContainerPort int
	HostPort      int
	Protocol      string // "tcp" or "udp"
	HostIP        string // "" for all addresses
}

// ContainerSpec is everything needed to create a container.
type ContainerSpec struct {
	Name       string // engine-level container name; unique
	Image      string
	Command    []string
	Entrypoint []string
	Env        []string // KEY=VALUE
	WorkingDir string
	User       string
	Hostname   string
	Labels     map[string]string

	// NetworkMode is "bridge", "host", "none", "container:<id>" or the name
	// of a user-defined network.
	NetworkMode string
	// IPv4Address and MacAddress fix the container's address on a
	// user-defined network.
	IPv4Address string
	MacAddress  string
	// Aliases are DNS names of the container on a user-defined network.
	Aliases      []string
	PortBindings []PortBinding
	ExtraHosts   []string // "host:ip"
	DNSServers   []string
	DNSSearch    []string
	Links        []string

	CPUShares         int64 // relative weight; 0 for the engine default
	MemoryLimit       int64 // bytes; 0 for none
	MemoryReservation int64 // bytes; 0 for none
	Ulimits           []Ulimit
	Privileged        bool
	ReadonlyRootfs    bool
	Init              bool
	CapAdd, CapDrop   []string
	ShmSize           int64 // bytes; 0 for the engine default
	Tmpfs             map[string]string
	Sysctls           map[string]string

	Mounts      []Mount
	VolumesFrom []string // container ids

	HealthCheck *HealthCheck
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL.
	StopTimeout time.Duration
	StopSignal  string

	// LogDriver and LogOptions configure the engine's logging; "" keeps the
	// engine default (json-file).
	LogDriver  string
	LogOptions map[string]string

	// OCIRuntime names the engine runtime (of Info.Runtimes) the container
	// runs with; "" is the engine's default.
	OCIRuntime string
	// CgroupParent is the cgroup the container's goes under, whose limits
	// it shares; "" is the engine's default.
	CgroupParent string
}

// State is what the engine says about a container.
type State struct {
	ID      string
	Name    string
	Image   string
	ImageID string // the image digest or id the container runs
	Labels  map[string]string
	Status  string // created, running, paused, restarting, removing, exited, dead
	Running bool
	// ExitCode is valid when the container has exited.
	ExitCode   int
	OOMKilled  bool
	Error      string
	StartedAt  time.Time
	FinishedAt time.Time
	// Health is "", "starting", "healthy" or "unhealthy"; "" without a
	// health check, "unhealthy" once a container with one has stopped.
	Health string
	// Ports are the published ports with the host ports the engine chose.
	Ports []PortBinding
	// Networks maps the names of the networks the container is attached
	// to to its IPv4 address there, "" unless it runs (and on host and
	// none); a container in another's namespace has none.
	Networks map[string]string
	// MacAddresses maps network names to the container's MAC address there.
	MacAddresses map[string]string
	Pid          int
}

// Event is a change of a container's state.
type Event struct {
	ContainerID string
	// Action is the engine's verb: create, start, die, stop, kill, oom,
	// destroy, health_status, ...
	Action string
	Labels map[string]string
	Time   time.Time
}

// NetworkSpec describes a user-defined bridge network.
type NetworkSpec struct {
	Name    string
	Subnet  string // CIDR
	Gateway string
	Labels  map[string]string
}

// Info describes the engine and its host.
type Info struct {
	Version      string // e.g. 28.2.2
	APIVersion   string
	OS           string // linux
	Architecture string // x86_64, aarch64
	CPUs         int
	MemoryBytes  int64
	// Runtimes are the OCI runtimes the engine can run containers with,
	// by name and path (runc, and gVisor's runsc where configured).
	Runtimes map[string]string
	// CgroupDriver is how the engine makes containers' cgroups: cgroupfs
	// or systemd.
	CgroupDriver string
}

// Stats is one sample of a container's resource use, in the engine's own
// JSON format (what ECS's task metadata endpoint returns).
type Stats []byte

// Runtime is a container engine.
type Runtime interface {
	Info(ctx context.Context) (Info, error)

	// EnsureImage makes image available locally according to policy and
	// returns its id/digest. A failed pull wraps ErrPull.
	EnsureImage(ctx context.Context, image string, policy PullPolicy) (string, error)
	// ImageExists reports whether image is present locally.
	ImageExists(ctx context.Context, image string) (bool, error)
	// BuildImage builds an image tagged tag from a tar build context
	// holding a Dockerfile.
	BuildImage(ctx context.Context, tag string, buildContext io.Reader, labels map[string]string) error

	// Create makes a container and returns its id. An existing container
	// of the same name is an error.
	Create(ctx context.Context, spec *ContainerSpec) (string, error)
	// Start starts a container; starting a running one does nothing. A
	// container on a network that does not exist fails (on Create or
	// here) with ErrNotFound.
	Start(ctx context.Context, id string) error
	// Stop sends the stop signal, waits up to timeout, then kills; a zero
	// timeout kills at once. It returns once the container has stopped;
	// stopping a stopped container is not an error.
	Stop(ctx context.Context, id string, timeout time.Duration) error
	// Remove removes a container (forcibly, with its anonymous volumes).
	// Removing a missing container is not an error.
	Remove(ctx context.Context, id string) error
	// Inspect returns a container's state; ErrNotFound when it is gone.
	Inspect(ctx context.Context, id string) (*State, error)
	// List returns the containers, running or not, carrying all the given
	// labels (label value "" matches any value).
	List(ctx context.Context, labels map[string]string) ([]State, error)
	// Events streams container events from now on. The channel closes when
	// ctx ends or the stream breaks; the error channel then says why.
	Events(ctx context.Context) (<-chan Event, <-chan error)
	// Stats returns one sample of a container's resource use.
	Stats(ctx context.Context, id string) (Stats, error)
	// DiskUsage returns the bytes a container has written to its
	// writable layer.
	DiskUsage(ctx context.Context, id string) (int64, error)
	// Logs returns a container's output so far (stdout and stderr
	// interleaved as text). Start, Stop, Stats and Logs of an unknown
	// container fail with ErrNotFound.
	Logs(ctx context.Context, id string, tail int) ([]byte, error)

	// EnsureNetwork creates a bridge network unless one of that name
	// exists; an existing one with another subnet is an error.
	EnsureNetwork(ctx context.Context, spec NetworkSpec) error
	RemoveNetwork(ctx context.Context, name string) error
}
