package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wharfhq/wharf/internal/agent"
	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/runtime"
	"github.com/wharfhq/wharf/internal/server"
)

func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "wharf")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "wharf")
	}
	return ".wharf"
}

func runDev(ctx context.Context, args []string) error {
	var f serverFlags
	var af agentFlags
	var nodes int
	fs := flagSet("dev", "Run Wharf on this machine in one process: the control plane with an embedded\netcd under --data-dir, and node agents on the local Docker engine. The first\nstart creates an access key; later starts resume with the same state, keys\nand nodes. The endpoint and credentials are printed and written to DIR/env as\nshell exports.")
	f.register(fs, "127.0.0.1:0", defaultDataDir())
	fs.IntVar(&nodes, "nodes", 1, "how many node agents to run, each a container instance in its own availability zone (0 for none)")
	fargateNodes := fs.Int("fargate-nodes", 1, "how many hosts of Fargate capacity to run, in availability zones of their own, where the engine has gVisor's runtime (--fargate-runtime)")
	af.register(fs, false)
	if err := parse(fs, args); err != nil {
		return helpRequested(err)
	}
	if err := os.MkdirAll(f.dataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	if f.accessKeyID == "" && f.credentialsFile == "" {
		id, secret, err := devKey(f.dataDir)
		if err != nil {
			return err
		}
		f.accessKeyID, f.secretAccessKey = id, secret
	}
	if f.listen == "127.0.0.1:0" {
		f.listen = lastListen(f.dataDir)
	}
	cfg, err := f.config()
	if err != nil {
		return err
	}
	srv, err := server.New(ctx, cfg)
	if err != nil {
		return err
	}
	os.WriteFile(filepath.Join(f.dataDir, "listen"), []byte(srv.Addr()+"\n"), 0o600)
	if _, err := srv.ECS.CreateCluster(ctx, &ecsapi.CreateClusterRequest{}); err != nil {
		return fmt.Errorf("create the default cluster: %w", err)
	}
	dnsAddr := ""
	if srv.DNS != nil {
		dnsAddr = srv.DNS.Addr()
	}
	env := devEnv(srv.Endpoint(), f.accessKeyID, f.secretAccessKey, f.region, dnsAddr)
	envFile := filepath.Join(f.dataDir, "env")
	if err := os.WriteFile(envFile, []byte(env), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", envFile, err)
	}
	fmt.Printf("Wharf %s is running.\n\n  endpoint  %s\n  region    %s\n  data      %s\n  nodes     %d, and %d of Fargate capacity\n\n%s\nUse it from another shell:\n\n  source %s\n  aws --endpoint-url $AWS_ENDPOINT_URL ecs list-container-instances\n\nPress Ctrl-C to stop; the state stays in %s.\n",
		version, srv.Endpoint(), f.region, f.dataDir, nodes, max(*fargateNodes, 0), env, envFile, f.dataDir)
	nodesCtx, stopNodes := context.WithCancel(ctx)
	defer stopNodes()
	agents, err := newDevAgents(nodesCtx, &f, &af, nodes, *fargateNodes, srv.Endpoint(), cfg.Logger)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	err = <-done
	stopNodes()
	agents.wait()
	agents.report(f.dataDir)
	return err
}

// devAgents are `wharf dev`'s node agents on the local Docker engine.
type devAgents struct {
	agents  []*agent.Agent
	fargate []*agent.Agent // hosts of Fargate capacity, run where the engine has the runtime
	rt      runtime.Runtime
	closeRT func()
	wg      sync.WaitGroup
	found   atomic.Bool // the engine answered
}

// newDevAgents starts n agents, named node-1... node-n, in availability
// zones REGIONa, REGIONb, ..., and nf hosts of Fargate capacity,
// fargate-1..., once the engine answers, until ctx ends. Until the engine
// answers, the API serves on and the agents wait.
func newDevAgents(ctx context.Context, f *serverFlags, af *agentFlags, n, nf int, endpoint string, logger *slog.Logger) (*devAgents, error) {
	d := &devAgents{}
	if n <= 0 && nf <= 0 {
		return d, nil
	}
	rt, closeRT, err := af.runtime()
	if err != nil {
		return nil, err
	}
	d.rt, d.closeRT = rt, closeRT
	alog := logger.With("component", "agent")
	newAgent := func(name string, zone int, fargate bool) (*agent.Agent, error) {
		cfg, err := af.config()
		if err != nil {
			return nil, err
		}
		cfg.Name = name
		cfg.StateDir = filepath.Join(f.dataDir, "agents", cfg.Name)
		cfg.AvailabilityZone = f.region + string(rune('a'+zone%26))
		cfg.Endpoint, cfg.Cluster, cfg.Region = endpoint, "default", f.region
		cfg.AccessKeyID, cfg.SecretAccessKey = f.accessKeyID, f.secretAccessKey
		cfg.Runtime, cfg.Logger = rt, alog
		if fargate {
			af.fargateHost(&cfg)
		}
		return agent.New(cfg)
	}
	for i := range n + max(nf, 0) {
		fargate, zone, name := false, i, fmt.Sprintf("node-%d", i+1)
		if i >= n {
			fargate, zone, name = true, i-n, fmt.Sprintf("fargate-%d", i-n+1)
		}
		a, err := newAgent(name, zone, fargate)
		if err != nil {
			closeRT()
			return nil, err
		}
		if fargate {
			d.fargate = append(d.fargate, a)
		} else {
			d.agents = append(d.agents, a)
		}
	}
	d.wg.Go(func() {
		// One wait for the engine the nodes share, so that a missing
		// engine is reported once rather than by every node.
		info, err := agent.WaitForRuntime(ctx, rt, alog)
		if err != nil {
			return
		}
		d.found.Store(true)
		run := d.agents
		if _, ok := info.Runtimes[af.fargateRuntime]; ok {
			run = append(run, d.fargate...)
		} else if len(d.fargate) > 0 {
			alog.Warn("no Fargate capacity: the engine has no runtime "+af.fargateRuntime+", so FARGATE tasks find no host; add gVisor's runsc to the engine as docs/architecture.md (Fargate) shows, and restart `wharf dev`",
				"runtimes", slices.Sorted(maps.Keys(info.Runtimes)))
		}
		var nodes sync.WaitGroup
		for _, a := range run {
			nodes.Go(func() {
				if err := a.Run(ctx); err != nil && ctx.Err() == nil {
					logger.Error("agent stopped", "node", a.Name(), "err", err)
				}
			})
		}
		nodes.Wait()
	})
	return d, nil
}

// wait waits for the agents, which stop with the context they started
// with.
func (d *devAgents) wait() { d.wg.Wait() }

// report says what the stopped agents leave running, which the next start
// with the same data directory adopts, and releases the engine.
func (d *devAgents) report(dataDir string) {
	if d.rt == nil {
		return
	}
	defer d.closeRT()
	if !d.found.Load() {
		return // nothing ran
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var tasks, containers int
	for _, a := range slices.Concat(d.agents, d.fargate) {
		t, c, err := a.Running(ctx)
		if err != nil {
			fmt.Printf("Could not list the task containers left running: %v\n", err)
			return
		}
		tasks, containers = tasks+t, containers+c
	}
	if containers == 0 {
		fmt.Println("Stopped; no task containers are left running.")
		return
	}
	fmt.Printf("Stopped, leaving %s of %s running; `wharf dev --data-dir %s` adopts them when it starts again (or delete %s, and the next `wharf dev` removes them).\n",
		plural(containers, "container"), plural(tasks, "task"), dataDir, dataDir)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func devEnv(endpoint, id, secret, region, dnsAddr string) string {
	var b strings.Builder
	for _, kv := range [][2]string{
		{"AWS_ENDPOINT_URL", endpoint},
		{"AWS_ACCESS_KEY_ID", id},
		{"AWS_SECRET_ACCESS_KEY", secret},
		{"AWS_REGION", region},
		{"AWS_DEFAULT_REGION", region},
		{"WHARF_DNS", dnsAddr},
	} {
		if kv[1] == "" {
			continue
		}
		fmt.Fprintf(&b, "export %s=%s\n", kv[0], kv[1])
	}
	return b.String()
}

// lastListen returns the address the previous run listened on when it is
// free again, so that a restart keeps the endpoint; else a free port.
func lastListen(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "listen"))
	if err != nil {
		return "127.0.0.1:0"
	}
	addr := strings.TrimSpace(string(b))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "127.0.0.1:0"
	}
	ln.Close()
	return addr
}

// devKey loads the dev mode access key from dir, creating it on first use.
func devKey(dir string) (id, secret string, err error) {
	path := filepath.Join(dir, "credentials.json")
	b, err := os.ReadFile(path)
	if err == nil {
		var creds map[string]string
		if err := json.Unmarshal(b, &creds); err != nil || len(creds) != 1 {
			return "", "", fmt.Errorf("%s is damaged; delete it to create a new key", path)
		}
		for id, secret = range creds {
		}
		return id, secret, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", "", err
	}
	id = "AKIA" + randomString("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
	secret = randomString("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 40)
	b, _ = json.Marshal(map[string]string{id: secret})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return "", "", fmt.Errorf("save the access key: %w", err)
	}
	return id, secret, nil
}

func randomString(alphabet string, n int) string {
	out := make([]byte, n)
	for i := range out {
		k, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		out[i] = alphabet[k.Int64()]
	}
	return string(out)
}
