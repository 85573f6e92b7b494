// Command scale measures Wharf's control plane at cluster scale on one
// machine: N hollow nodes (real agents on the in-memory runtime) register
// with a server in the same process, one service is scaled from 0 to T
// tasks in a single UpdateService, and, optionally, clients call
// RunTask(count=10) in a loop on a second cluster. It reports registration
// time, placements per second over time, the time to the service's steady
// state, zone balance, memory and CPU, and writes CPU, heap and mutex
// profiles of the scale-up. See README.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

type config struct {
	nodes, tasks            int
	timeout                 time.Duration
	nodeCPU, nodeMemory     int
	taskCPU, taskMemory     int
	startDelay              time.Duration
	healthyAfter            time.Duration
	sample                  time.Duration
	cpuWindow               time.Duration
	runtask                 time.Duration
	runtaskNodes            int
	runtaskClients          int
	runtaskMaxCalls         int
	out                     string
	jsonOut, keep, logDebug bool
	pprofAddr               string
}

func main() {
	var cfg config
	flag.IntVar(&cfg.nodes, "nodes", 1000, "hollow nodes in the service's cluster")
	flag.IntVar(&cfg.tasks, "tasks", 10000, "desired count the service is scaled to")
	flag.DurationVar(&cfg.timeout, "timeout", 10*time.Minute, "bound on the whole run, every phase included (stopping the agents and the server may add up to 30 s)")
	flag.IntVar(&cfg.nodeCPU, "node-cpu", 4096, "CPU units each node registers")
	flag.IntVar(&cfg.nodeMemory, "node-memory", 8192, "MiB each node registers")
	flag.IntVar(&cfg.taskCPU, "task-cpu", 32, "CPU units of a task")
	flag.IntVar(&cfg.taskMemory, "task-memory", 64, "MiB of a task")
	flag.DurationVar(&cfg.startDelay, "start-delay", 0, "how long a simulated container takes to start")
	flag.DurationVar(&cfg.healthyAfter, "healthy-after", time.Second, "how long after RUNNING the service scheduler counts a task healthy")
	flag.DurationVar(&cfg.sample, "sample", time.Second, "DescribeServices interval while the service scales")
	flag.DurationVar(&cfg.cpuWindow, "cpu-profile", 60*time.Second, "CPU-profile the first this much of the scale-up (0: no profiles)")
	flag.DurationVar(&cfg.runtask, "runtask", 10*time.Second, "then call RunTask(count=10) in a loop this long on a second cluster (0: skip)")
	flag.IntVar(&cfg.runtaskNodes, "runtask-nodes", 100, "hollow nodes of the RunTask cluster")
	flag.IntVar(&cfg.runtaskClients, "runtask-clients", 1, "clients calling RunTask at once")
	flag.IntVar(&cfg.runtaskMaxCalls, "runtask-max-calls", 5000, "bound on RunTask calls in all")
	flag.StringVar(&cfg.out, "out", "", "directory for profiles, the log and report.json (default: a new one under $TMPDIR)")
	flag.BoolVar(&cfg.jsonOut, "json", false, "print the report as JSON")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the embedded etcd's data directory")
	flag.BoolVar(&cfg.logDebug, "debug", false, "log at debug level (default: warnings) into the output directory")
	flag.StringVar(&cfg.pprofAddr, "pprof", "", "serve net/http/pprof on this loopback address (such as 127.0.0.1:6060) while the run lasts")
	flag.Parse()
	if cfg.nodes < 1 || cfg.tasks < 1 || cfg.timeout <= 0 || cfg.sample <= 0 || cfg.runtaskClients < 1 || cfg.runtaskNodes < 1 || cfg.runtaskMaxCalls < 1 {
		fmt.Fprintln(os.Stderr, "scale: -nodes, -tasks, -timeout, -sample and the -runtask-* counts must be positive")
		os.Exit(2)
	}
	if room := cfg.nodes * min(cfg.nodeCPU/max(cfg.taskCPU, 1), cfg.nodeMemory/max(cfg.taskMemory, 1)); room < cfg.tasks {
		fmt.Fprintf(os.Stderr, "scale: %d nodes of %d CPU / %d MiB hold only %d tasks of %d CPU / %d MiB, fewer than -tasks %d\n",
			cfg.nodes, cfg.nodeCPU, cfg.nodeMemory, room, cfg.taskCPU, cfg.taskMemory, cfg.tasks)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	rep, err := run(ctx, cfg)
	interrupted := ctx.Err() != nil
	stop()
	if rep != nil {
		if cfg.jsonOut {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			enc.Encode(rep)
		} else {
			rep.print(os.Stdout)
		}
	}
	if interrupted {
		fmt.Fprintln(os.Stderr, "scale: interrupted")
		os.Exit(130)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "scale: %v\n", err)
		os.Exit(1)
	}
}

func progress(msg string) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), msg)
}

// run runs every phase inside cfg.timeout and returns what it measured,
// also when a phase ran out of time.
func run(ctx context.Context, cfg config) (rep *Report, err error) {
	begin := time.Now()
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	if cfg.out == "" {
		if cfg.out, err = os.MkdirTemp("", "wharf-scale-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return nil, err
	}
	data, err := os.MkdirTemp("", "wharf-scale-data-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if !cfg.keep {
			os.RemoveAll(data)
		}
	}()
	logFile, err := os.Create(filepath.Join(cfg.out, "wharf.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	level := slog.LevelWarn
	if cfg.logDebug {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: level}))
	prof, err := newProfiler(cfg.out)
	if err != nil {
		return nil, err
	}
	if cfg.pprofAddr != "" {
		stopPprof, err := servePprof(cfg.pprofAddr)
		if err != nil {
			return nil, err
		}
		defer stopPprof()
	}

	// The agents of this process share net/http's default transport; each
	// real agent, in its own process, keeps its own idle connection to
	// the server. Let the shared pool keep one per agent likewise.
	tr := http.DefaultTransport.(*http.Transport)
	tr.MaxIdleConns = 2*(cfg.nodes+cfg.runtaskNodes) + 100
	tr.MaxIdleConnsPerHost = tr.MaxIdleConns

	rep = &Report{Machine: machine(), Config: settings(cfg), OutDir: cfg.out}
	defer func() {
		rep.TotalS = time.Since(begin).Seconds()
		if b, err := os.ReadFile("/proc/loadavg"); err == nil {
			rep.Machine.LoadEnd = strings.TrimSpace(string(b))
		}
		rep.Profiles = prof.files
		if b, err := json.MarshalIndent(rep, "", "  "); err == nil {
			os.WriteFile(filepath.Join(cfg.out, "report.json"), b, 0o644)
		}
	}()
	fail := func(err error) (*Report, error) {
		rep.Errors = append(rep.Errors, err.Error())
		return rep, err
	}

	rep.Memory = append(rep.Memory, memory("start, nothing running"))
	cp, err := startServer(data, cfg.healthyAfter, logger)
	if err != nil {
		return fail(err)
	}
	var fleets []*fleet
	defer func() {
		for _, f := range fleets {
			if err := f.stop(15 * time.Second); err != nil {
				progress(err.Error())
			}
		}
		if err := cp.stop(15 * time.Second); err != nil {
			progress("server: " + err.Error())
		}
	}()
	c := cp.client(3)
	const cluster = "scale"
	taskDef, err := setup(ctx, c, cluster, cfg.taskCPU, cfg.taskMemory)
	if err != nil {
		return fail(err)
	}
	rep.Memory = append(rep.Memory, memory("server idle"))
	if rep.Store, err = probeStore(ctx, cp.srv.Store(), 300); err != nil {
		return fail(fmt.Errorf("store probe: %w", err))
	}

	// Phase 1: registration.
	progress(fmt.Sprintf("starting %d hollow nodes", cfg.nodes))
	shape := nodeShape{cpu: cfg.nodeCPU, memoryMiB: cfg.nodeMemory, startDelay: cfg.startDelay, pollWait: 20 * time.Second}
	regCtx, regCancel := context.WithTimeout(ctx, min(5*time.Minute, cfg.timeout/2))
	if cfg.cpuWindow > 0 {
		if err := prof.startCPU("register-cpu.pprof"); err != nil {
			rep.Errors = append(rep.Errors, "profiles: "+err.Error())
		}
	}
	t := time.Now()
	cpu0 := cpuTime()
	f, err := startFleet(cp, cluster, cfg.nodes, shape, filepath.Join(data, "agents"), logger)
	if err != nil {
		regCancel()
		prof.stopCPU()
		return fail(err)
	}
	fleets = append(fleets, f)
	registered, connected, err := waitRegistered(regCtx, c, f, cluster, t, progress)
	regCancel()
	prof.stopCPU()
	rep.Registration = &Registration{Nodes: cfg.nodes, RegisteredS: registered.Seconds(), ConnectedS: connected.Seconds(), CPUSeconds: (cpuTime() - cpu0).Seconds()}
	if registered > 0 {
		rep.Registration.PerS = float64(cfg.nodes) / registered.Seconds()
	}
	if err != nil {
		return fail(fmt.Errorf("registration: %w", err))
	}
	progress(fmt.Sprintf("%d nodes registered in %.1fs, all connected after %.1fs", cfg.nodes, registered.Seconds(), connected.Seconds()))
	// Let the agents' first polls and the server's bookkeeping settle
	// before taking the agents' share of memory.
	sleepCtx(ctx, 3*time.Second)
	rep.Memory = append(rep.Memory, memory(fmt.Sprintf("%d agents registered, no task", cfg.nodes)))

	// Phase 2: one service from 0 to cfg.tasks.
	reserve := 90 * time.Second // collecting the tasks
	if cfg.runtask > 0 {
		reserve += cfg.runtask + 60*time.Second
	}
	deadline, _ := ctx.Deadline()
	reserve = min(reserve, time.Until(deadline)/2) // short -timeout: give the scale-up half
	svcCtx, svcCancel := context.WithDeadline(ctx, deadline.Add(-reserve))
	var pp, late *phaseProfile
	if cfg.cpuWindow > 0 {
		pp = &phaseProfile{p: prof, prefix: "scaleup", window: cfg.cpuWindow}
		late = &phaseProfile{p: prof, prefix: "scaleup-late", window: min(cfg.cpuWindow, 30*time.Second)}
	}
	progress(fmt.Sprintf("scaling service to %d tasks (phase ends by %s)", cfg.tasks, deadline.Add(-reserve).Format("15:04:05")))
	svc, err := scaleService(svcCtx, c, cluster, "web", taskDef, cfg.tasks, cfg.sample, 90*time.Second, pp, late, progress)
	if svc != nil && svc.TimedOut {
		// Where everything waits, and for how long, when the phase did
		// not finish.
		prof.write("goroutine", "scaleup-goroutines.txt", 2)
	}
	svcCancel()
	for _, p := range []*phaseProfile{pp, late} {
		if p != nil && p.err != nil {
			rep.Errors = append(rep.Errors, "profiles: "+p.err.Error())
		}
	}
	rep.Service = svc
	if err != nil {
		return fail(fmt.Errorf("service: %w", err))
	}
	rep.Memory = append(rep.Memory, memory(fmt.Sprintf("service phase over, %d tasks placed", svc.Placed)))

	// Phase 3: RunTask on a cluster of its own.
	if cfg.runtask > 0 && ctx.Err() == nil {
		const rtCluster = "runtask"
		rtDef, err := setup(ctx, c, rtCluster, cfg.taskCPU, cfg.taskMemory)
		if err != nil {
			return fail(err)
		}
		progress(fmt.Sprintf("starting %d hollow nodes for RunTask", cfg.runtaskNodes))
		regCtx, regCancel := context.WithTimeout(ctx, 60*time.Second)
		t := time.Now()
		rf, err := startFleet(cp, rtCluster, cfg.runtaskNodes, shape, filepath.Join(data, "agents"), logger)
		if err != nil {
			regCancel()
			return fail(err)
		}
		fleets = append(fleets, rf)
		_, connected, err := waitRegistered(regCtx, c, rf, rtCluster, t, progress)
		regCancel()
		if err != nil {
			return fail(fmt.Errorf("runtask registration: %w", err))
		}
		progress(fmt.Sprintf("calling RunTask(count=10) for %s with %d clients", cfg.runtask, cfg.runtaskClients))
		rc := cp.client(1) // no retries: a throttle or error counts as such
		rep.RunTask = runTasks(ctx, rc, rtCluster, rtDef, cfg.runtaskClients, cfg.runtask, cfg.runtaskMaxCalls)
		rep.RunTask.Nodes, rep.RunTask.RegisterS = cfg.runtaskNodes, connected.Seconds()
		rep.RunTask.WatchStall = watchStall()
		rep.Memory = append(rep.Memory, memory("after RunTask"))
	}
	if svc.TimedOut {
		return rep, fmt.Errorf("the service did not reach a steady state with %d tasks in time; %d placed, %d running", cfg.tasks, svc.Placed, svc.Running)
	}
	return rep, nil
}

func settings(cfg config) Settings {
	return Settings{
		Nodes: cfg.nodes, Tasks: cfg.tasks, TimeoutS: cfg.timeout.Seconds(),
		NodeCPU: cfg.nodeCPU, NodeMemoryMiB: cfg.nodeMemory, TaskCPU: cfg.taskCPU, TaskMemoryMiB: cfg.taskMemory,
		StartDelayS: cfg.startDelay.Seconds(), HealthyAfterS: cfg.healthyAfter.Seconds(), SampleS: cfg.sample.Seconds(),
		RunTaskS: cfg.runtask.Seconds(), RunTaskNodes: cfg.runtaskNodes, RunTaskClients: cfg.runtaskClients,
	}
}

func machine() Machine {
	m := Machine{NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		fmt.Sscanf(string(b), "MemTotal: %f kB", &kb)
		m.MemGiB = kb / (1 << 20)
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.Load = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
			m.Commit += " (with uncommitted changes)"
		}
	}
	return m
}
