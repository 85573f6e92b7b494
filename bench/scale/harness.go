package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/wharfhq/wharf/internal/agent"
	"github.com/wharfhq/wharf/internal/awsproto"
	"github.com/wharfhq/wharf/internal/ecs/control"
	"github.com/wharfhq/wharf/internal/runtime/sim"
	"github.com/wharfhq/wharf/internal/server"
	"github.com/wharfhq/wharf/internal/store"
)

// Credentials and place of the server this program starts.
const (
	region  = "us-east-1"
	account = "123456789012"
	keyID   = "AKIAWHARFSCALEBENCH1"
	secret  = "wharf-scale-bench-secret-0000000000000000"
)

// controlPlane is the server, run in this process.
type controlPlane struct {
	srv    *server.Server
	cancel context.CancelFunc
	done   chan error
}

// startServer starts a server with embedded etcd in dir, no request
// limits, and a service scheduler that counts tasks healthy after
// healthyAfter.
func startServer(dir string, healthyAfter time.Duration, logger *slog.Logger) (*controlPlane, error) {
	cfg := server.Config{
		Listen:      "127.0.0.1:0",
		Account:     account,
		Region:      region,
		Credentials: awsproto.StaticCredentials{keyID: secret},
		Limits:      awsproto.Limits{}, // ReadRate and WriteRate 0: unlimited
		Controller:  control.SchedulerConfig{HealthyAfter: healthyAfter},
		Logger:      logger.With("component", "server"),
	}
	cfg.Store.DataDir = dir
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("start server: %w", err)
	}
	cp := &controlPlane{srv: srv, cancel: cancel, done: make(chan error, 1)}
	go func() { cp.done <- srv.Run(ctx) }()
	return cp, nil
}

// stop shuts the server down, waiting at most wait.
func (cp *controlPlane) stop(wait time.Duration) error {
	cp.cancel()
	select {
	case err := <-cp.done:
		return err
	case <-time.After(wait):
		return fmt.Errorf("server did not stop within %s", wait)
	}
}

// client returns an ECS client of the server with its own connections,
// apart from the agents'. retries is the SDK's attempts per call.
func (cp *controlPlane) client(retries int) *ecs.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return ecs.NewFromConfig(aws.Config{
		Region:           region,
		Credentials:      credentials.NewStaticCredentialsProvider(keyID, secret, ""),
		BaseEndpoint:     aws.String(cp.srv.Endpoint()),
		HTTPClient:       &http.Client{Transport: tr},
		RetryMaxAttempts: retries,
	})
}

// fleet is a set of hollow nodes: real agents on simulated runtimes.
type fleet struct {
	agents []*agent.Agent
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// nodeShape is what each hollow node offers and how its runtime behaves.
type nodeShape struct {
	cpu, memoryMiB int
	startDelay     time.Duration
	pollWait       time.Duration
}

// startFleet starts n agents joined to cluster, in zones us-east-1a, b and
// c in turn, each with a state directory under dir. It does not wait for
// them to register.
func startFleet(cp *controlPlane, cluster string, n int, shape nodeShape, dir string, logger *slog.Logger) (*fleet, error) {
	ctx, cancel := context.WithCancel(context.Background())
	f := &fleet{cancel: cancel}
	for i := range n {
		rt := sim.New()
		rt.StartDelay = shape.startDelay
		name := fmt.Sprintf("%s-%d", cluster, i+1)
		state := filepath.Join(dir, name)
		if err := os.MkdirAll(state, 0o700); err != nil {
			f.stop(time.Second)
			return nil, err
		}
		a, err := agent.New(agent.Config{
			Endpoint: cp.srv.Endpoint(), Region: region, AccessKeyID: keyID, SecretAccessKey: secret,
			Cluster: cluster, Runtime: rt, Name: name, StateDir: state,
			AvailabilityZone: fmt.Sprintf("%s%c", region, 'a'+i%3),
			PauseImage:       "wharf/pause:sim", ProxyImage: "wharf/proxy:sim", Simulated: true,
			ReservedPorts: []string{"22"},
			CPU:           shape.cpu, MemoryMiB: shape.memoryMiB,
			PollWait:     shape.pollWait,
			StopTimeout:  2 * time.Second,
			CleanupDelay: time.Hour,
			Logger:       logger.With("component", "agent"),
		})
		if err != nil {
			f.stop(time.Second)
			return nil, err
		}
		f.agents = append(f.agents, a)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			if err := a.Run(ctx); err != nil && ctx.Err() == nil {
				logger.Warn("agent ended", "node", name, "err", err)
			}
		}()
	}
	return f, nil
}

// registered counts the agents that have registered their instance.
func (f *fleet) registered() int {
	n := 0
	for _, a := range f.agents {
		if a.InstanceArn() != "" {
			n++
		}
	}
	return n
}

// stop ends every agent, waiting at most wait for them.
func (f *fleet) stop(wait time.Duration) error {
	f.cancel()
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(wait):
		return fmt.Errorf("%d agents did not stop within %s", len(f.agents), wait)
	}
}

// waitRegistered waits until every agent of f has registered and the
// server sees every instance of cluster connected, or ctx ends. It
// returns when each of the two happened, measured from start.
func waitRegistered(ctx context.Context, c *ecs.Client, f *fleet, cluster string, start time.Time, progress func(string)) (registered, connected time.Duration, err error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	lastLog := time.Now()
	for registered == 0 {
		n := f.registered()
		if n == len(f.agents) {
			registered = time.Since(start)
			break
		}
		if time.Since(lastLog) >= 10*time.Second {
			progress(fmt.Sprintf("%s: %d of %d agents registered after %s", cluster, n, len(f.agents), time.Since(start).Round(time.Second)))
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return 0, 0, fmt.Errorf("%d of %d agents registered when the phase ran out of time: %w", n, len(f.agents), ctx.Err())
		case <-tick.C:
		}
	}
	for {
		n, err := connectedInstances(ctx, c, cluster)
		if err == nil && n == len(f.agents) {
			return registered, time.Since(start), nil
		}
		if err != nil && ctx.Err() == nil {
			progress(fmt.Sprintf("%s: counting connected instances: %v", cluster, err))
		}
		select {
		case <-ctx.Done():
			return registered, 0, fmt.Errorf("%d of %d instances connected when the phase ran out of time: %w", n, len(f.agents), ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// connectedInstances counts a cluster's instances with agentConnected.
func connectedInstances(ctx context.Context, c *ecs.Client, cluster string) (int, error) {
	n := 0
	p := ecs.NewListContainerInstancesPaginator(c, &ecs.ListContainerInstancesInput{Cluster: aws.String(cluster), MaxResults: aws.Int32(100)})
	for p.HasMorePages() {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		page, err := p.NextPage(cctx)
		if err != nil {
			cancel()
			return n, err
		}
		if len(page.ContainerInstanceArns) > 0 {
			out, err := c.DescribeContainerInstances(cctx, &ecs.DescribeContainerInstancesInput{Cluster: aws.String(cluster), ContainerInstances: page.ContainerInstanceArns})
			if err != nil {
				cancel()
				return n, err
			}
			for _, ci := range out.ContainerInstances {
				if ci.AgentConnected {
					n++
				}
			}
		}
		cancel()
	}
	return n, nil
}

// setup creates cluster and registers the benchmark's task definition,
// returning its ARN.
func setup(ctx context.Context, c *ecs.Client, cluster string, cpu, memoryMiB int) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := c.CreateCluster(cctx, &ecs.CreateClusterInput{ClusterName: aws.String(cluster)}); err != nil {
		return "", fmt.Errorf("create cluster %s: %w", cluster, err)
	}
	out, err := c.RegisterTaskDefinition(cctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("scale"),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("app"), Image: aws.String("wharf/app:sim"),
			Cpu: int32(cpu), Memory: aws.Int32(int32(memoryMiB)),
		}},
	})
	if err != nil {
		return "", fmt.Errorf("register the task definition: %w", err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn), nil
}

// StoreProbe is how fast the store commits small read-compare-write
// transactions on this machine, one at a time and several at once: the
// ceiling of any path that serializes its writes.
type StoreProbe struct {
	Commits      int     `json:"commits"`
	SerialP50ms  float64 `json:"serial_p50_ms"`
	SerialP99ms  float64 `json:"serial_p99_ms"`
	SerialPerS   float64 `json:"serial_per_s"`
	Parallel     int     `json:"parallel"`
	ParallelPerS float64 `json:"parallel_per_s"`
}

// probeStore commits n transactions one at a time, then n spread over 16
// goroutines, each reading and writing one key of its own.
func probeStore(ctx context.Context, st *store.Store, n int) (*StoreProbe, error) {
	p := &StoreProbe{Commits: n, Parallel: 16}
	commit := func(i int) error {
		return st.Update(ctx, func(tx *store.Tx) error {
			k := fmt.Sprintf("bench/probe/%d", i)
			var v int
			if _, err := tx.Get(k, &v); err != nil {
				return err
			}
			return tx.Put(k, v+1)
		})
	}
	lat := make([]float64, 0, n)
	start := time.Now()
	for i := range n {
		t := time.Now()
		if err := commit(i); err != nil {
			return nil, err
		}
		lat = append(lat, float64(time.Since(t).Microseconds())/1000)
	}
	p.SerialPerS = float64(n) / time.Since(start).Seconds()
	slices.Sort(lat)
	p.SerialP50ms, p.SerialP99ms = percentile(lat, 50), percentile(lat, 99)

	var wg sync.WaitGroup
	errc := make(chan error, p.Parallel)
	start = time.Now()
	for g := range p.Parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += p.Parallel {
				if err := commit(n + i); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	p.ParallelPerS = float64(n) / time.Since(start).Seconds()
	select {
	case err := <-errc:
		return nil, err
	default:
	}
	return p, nil
}
