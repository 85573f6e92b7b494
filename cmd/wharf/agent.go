package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/wharfhq/wharf/internal/ecs/state"

	"github.com/wharfhq/wharf/internal/agent"
	"github.com/wharfhq/wharf/internal/runtime"
	"github.com/wharfhq/wharf/internal/runtime/docker"
)

// agentFlags are the node agent's flags, shared by `agent` and `dev`.
type agentFlags struct {
	name             string
	stateDir         string
	availabilityZone string
	instanceType     string
	attributes       attrFlag
	cpu              int
	memory           int
	memoryReserve    int
	eniLimit         int
	trunkENILimit    int
	pullBehavior     string
	stopTimeout      time.Duration
	cleanupDelay     time.Duration
	scDrain          time.Duration
	dockerHost       string
	fargateRuntime   string
}

type attrFlag map[string]string

func (a *attrFlag) String() string {
	var parts []string
	for k, v := range *a {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ",")
}

func (a *attrFlag) Set(s string) error {
	if *a == nil {
		*a = attrFlag{}
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("attributes are name=value, got %q", kv)
		}
		(*a)[k] = v
	}
	return nil
}

func (f *agentFlags) register(fs *flag.FlagSet, nodeFlags bool) {
	if nodeFlags {
		fs.StringVar(&f.name, "name", hostname(), "name of this node among those sharing a container engine")
		fs.StringVar(&f.stateDir, "state-dir", "/var/lib/wharf/agent", "directory keeping the agent's identity across restarts")
		fs.StringVar(&f.availabilityZone, "availability-zone", "", "availability zone of the node (default REGIONa)")
		fs.StringVar(&f.instanceType, "instance-type", "wharf.node", "instance type attribute of the node")
		fs.IntVar(&f.cpu, "cpu", 0, "CPU units to offer (default 1024 per core)")
		fs.IntVar(&f.memory, "memory", 0, "memory to offer in MiB (default the host's less --memory-reserve)")
	}
	fs.Var(&f.attributes, "attribute", "custom attribute name=value for placement constraints (repeatable)")
	fs.IntVar(&f.memoryReserve, "memory-reserve", 256, "MiB of the host's memory kept for the system")
	fs.IntVar(&f.eniLimit, "eni-limit", 3, "how many awsvpc tasks the node holds")
	fs.IntVar(&f.trunkENILimit, "trunk-eni-limit", 12, "how many awsvpc tasks the node holds when registered with awsvpcTrunking enabled")
	fs.StringVar(&f.pullBehavior, "image-pull-behavior", "default", "when images are pulled: default, always, once or prefer-cached")
	fs.DurationVar(&f.stopTimeout, "stop-timeout", 30*time.Second, "time between SIGTERM and SIGKILL for containers without a stopTimeout")
	fs.DurationVar(&f.cleanupDelay, "cleanup-delay", time.Hour, "how long stopped tasks' containers are kept")
	fs.DurationVar(&f.scDrain, "service-connect-drain", 3*time.Second, "how long a stopping Service Connect task keeps serving, so that callers move away, before its containers get SIGTERM (0 for none)")
	fs.StringVar(&f.dockerHost, "docker-host", "", "Docker Engine API address (default DOCKER_HOST or the local socket)")
	fs.StringVar(&f.fargateRuntime, "fargate-runtime", "runsc", "engine runtime (gVisor's runsc, with --network=host) that Fargate tasks' containers run in")
}

// fargateENILimit is how many tasks a Fargate host holds at most: each
// Fargate task has an ENI of its own, and the host's CPU and memory bound
// them first.
const fargateENILimit = 1000

// fargateHost makes cfg a host of Fargate capacity.
func (f *agentFlags) fargateHost(cfg *agent.Config) {
	cfg.Cluster, cfg.FargateRuntime = state.FargatePool, f.fargateRuntime
	cfg.ENILimit, cfg.TrunkENILimit = fargateENILimit, fargateENILimit
}

func hostname() string {
	h, _ := os.Hostname()
	if h == "" {
		h = "node"
	}
	return h
}

func (f *agentFlags) runtime() (runtime.Runtime, func(), error) {
	var opts []docker.Option
	if f.dockerHost != "" {
		opts = append(opts, docker.WithHost(f.dockerHost))
	}
	d, err := docker.New(opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to Docker: %w", err)
	}
	return d, func() { d.Close() }, nil
}

func (f *agentFlags) config() (agent.Config, error) {
	switch p := runtime.PullPolicy(f.pullBehavior); p {
	case runtime.PullDefault, runtime.PullAlways, runtime.PullOnce, runtime.PullPreferCached:
	default:
		return agent.Config{}, fmt.Errorf("--image-pull-behavior %q: use default, always, once or prefer-cached", f.pullBehavior)
	}
	return agent.Config{
		Name:              f.name,
		StateDir:          f.stateDir,
		AvailabilityZone:  f.availabilityZone,
		InstanceType:      f.instanceType,
		Attributes:        f.attributes,
		CPU:               f.cpu,
		MemoryMiB:         f.memory,
		ReservedMemoryMiB: f.memoryReserve,
		ENILimit:          f.eniLimit,
		TrunkENILimit:     f.trunkENILimit,
		PullPolicy:        runtime.PullPolicy(f.pullBehavior),
		StopTimeout:       f.stopTimeout,
		CleanupDelay:      f.cleanupDelay,
		// The agent reads 0 as its default; the flag's 0 means none.
		ServiceConnectDrain: cmp.Or(f.scDrain, -1),
		Version:             version,
	}, nil
}

func runAgent(ctx context.Context, args []string) error {
	var f agentFlags
	var endpoint, cluster, region, accessKeyID, secret string
	var logs logFlags
	fs := flagSet("agent", "Run a node agent: register this machine as a container instance of a cluster\nand run the tasks placed on it as Docker containers. Credentials default to\nAWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, the endpoint to AWS_ENDPOINT_URL.")
	fs.StringVar(&endpoint, "server", os.Getenv("AWS_ENDPOINT_URL"), "URL of the Wharf control plane")
	fs.StringVar(&cluster, "cluster", "default", "cluster to join")
	fargate := fs.Bool("fargate", false, "offer Fargate capacity instead of joining --cluster: run FARGATE tasks of every cluster, each container in a gVisor sandbox")
	fs.StringVar(&region, "region", firstNonEmpty(os.Getenv("AWS_REGION"), os.Getenv("AWS_DEFAULT_REGION"), "us-east-1"), "region of the cluster")
	fs.StringVar(&accessKeyID, "access-key-id", os.Getenv("AWS_ACCESS_KEY_ID"), "access key id the agent signs with")
	fs.StringVar(&secret, "secret-access-key", os.Getenv("AWS_SECRET_ACCESS_KEY"), "secret of --access-key-id (prefer the environment)")
	f.register(fs, true)
	logs.register(fs)
	if err := parse(fs, args); err != nil {
		return helpRequested(err)
	}
	if endpoint == "" || accessKeyID == "" || secret == "" {
		return fmt.Errorf("give --server and credentials (or AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
	}
	logger, err := logs.logger(os.Stderr)
	if err != nil {
		return err
	}
	cfg, err := f.config()
	if err != nil {
		return err
	}
	rt, closeRT, err := f.runtime()
	if err != nil {
		return err
	}
	defer closeRT()
	cfg.Endpoint, cfg.Cluster, cfg.Region, cfg.AccessKeyID, cfg.SecretAccessKey = endpoint, cluster, region, accessKeyID, secret
	cfg.Runtime, cfg.Logger = rt, logger.With("component", "agent")
	if *fargate {
		f.fargateHost(&cfg)
	}
	a, err := agent.New(cfg)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
