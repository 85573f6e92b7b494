// Command agent measures how fast Wharf's node agent turns a RunTask into a
// running container, next to `docker run -d` of the same image and command
// in the same run, and how much memory the agent holds with the tasks
// running. See README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/wharfhq/wharf/internal/testenv"
)

const (
	// fargatePool is where hosts of Fargate capacity register.
	fargatePool = "~fargate"
	region      = "us-east-1"
	cluster     = "bench"
	keyID       = "AKIAWHARFBENCHKEY001"
	secret      = "wharf-bench-secret-key-000000000000000000"
	// script keeps a container running and lets it stop at once on
	// SIGTERM; the same for tasks and for docker run.
	script     = `trap 'exit 0' TERM; while true; do sleep 1; done`
	benchLabel = "wharf-bench.run"
)

type config struct {
	tasks      int
	concurrent int
	idle       int
	poll       time.Duration
	wharf      string
	keep       bool
	fargate    bool
}

func main() {
	var cfg config
	flag.IntVar(&cfg.tasks, "tasks", 50, "tasks (and docker run containers) started one at a time")
	flag.IntVar(&cfg.concurrent, "concurrent", 10, "then start as many again this many at a time (0: skip)")
	flag.BoolVar(&cfg.fargate, "fargate", false, "run FARGATE tasks on a host of Fargate capacity (gVisor), next to docker run -d with runc and with runsc")
	flag.IntVar(&cfg.idle, "idle", 20, "with -fargate, then start this many idle tasks and as many docker run -d, and report the memory each takes (0: skip)")
	flag.DurationVar(&cfg.poll, "poll", 20*time.Millisecond, "DescribeTasks interval while waiting for RUNNING")
	flag.StringVar(&cfg.wharf, "wharf", "", "wharf binary to run (default: build ./cmd/wharf)")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the temporary directory with the server's and the agent's logs")
	flag.Parse()
	if cfg.tasks < 1 || cfg.concurrent < 0 || cfg.idle < 0 || cfg.poll <= 0 {
		fmt.Fprintln(os.Stderr, "agent: -tasks must be positive, -concurrent and -idle not negative, -poll positive")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, cfg, os.Stdout)
	interrupted := ctx.Err() != nil
	stop()
	if interrupted {
		fmt.Fprintln(os.Stderr, "agent: interrupted")
		os.Exit(130)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "agent: %v\n", err)
		os.Exit(1)
	}
}

// bench is a running server and agent, and the containers to remove.
type bench struct {
	cfg      config
	runID    string
	bin      string
	image    string
	dir      string
	ecs      *ecs.Client
	docker   *client.Client
	server   *process
	agent    *process
	instance string
	td       string
}

func run(ctx context.Context, cfg config, w io.Writer) (err error) {
	b := &bench{cfg: cfg, runID: strconv.FormatInt(time.Now().UnixNano(), 36)}
	if b.docker, err = testenv.DockerClient(); err != nil {
		return err
	}
	defer b.docker.Close()
	info, err := b.docker.Info(ctx)
	if err != nil {
		return fmt.Errorf("the benchmark needs Docker: %w", err)
	}
	if b.bin = cfg.wharf; b.bin == "" {
		fmt.Fprintln(os.Stderr, "building ./cmd/wharf")
		if b.bin, err = testenv.BuildWharf(); err != nil {
			return err
		}
	}
	if b.image, err = testenv.BuildBusyboxImage(ctx); err != nil {
		return err
	}
	if b.dir, err = os.MkdirTemp("", "wharf-bench-agent-"); err != nil {
		return err
	}
	defer func() {
		if err != nil || cfg.keep {
			fmt.Fprintf(os.Stderr, "logs are in %s\n", b.dir)
			return
		}
		os.RemoveAll(b.dir)
	}()
	defer b.cleanup()
	if err := b.start(ctx); err != nil {
		return err
	}

	if _, ok := info.Runtimes["runsc"]; cfg.fargate && !ok {
		return errors.New("-fargate needs the engine's runsc runtime (docs/architecture.md, Fargate)")
	}
	kind := "EC2"
	if cfg.fargate {
		kind = "FARGATE (gVisor, runsc)"
	}
	fmt.Fprintf(w, "Docker %s, %d CPUs, %.1f GiB; image %s; %s: %d tasks one at a time", info.ServerVersion, info.NCPU, float64(info.MemTotal)/(1<<30), b.image, kind, cfg.tasks)
	if cfg.concurrent > 0 {
		fmt.Fprintf(w, ", then %d more %d at a time", cfg.tasks, cfg.concurrent)
	}
	fmt.Fprintln(w)
	idle, err := rss(b.agent.cmd.Process.Pid)
	if err != nil {
		return err
	}

	// Warm up both paths once: the first container of an image costs more.
	if _, err := b.wharfOnce(ctx); err != nil {
		return err
	}
	if _, err := b.dockerRun(ctx, ""); err != nil {
		return err
	}
	if cfg.fargate {
		if _, err := b.dockerRun(ctx, "runsc"); err != nil {
			return err
		}
	}

	var seq samples
	for range cfg.tasks {
		s, err := b.wharfOnce(ctx)
		if err != nil {
			return err
		}
		d, err := b.dockerRun(ctx, "")
		if err != nil {
			return err
		}
		api, err := b.dockerAPI(ctx)
		if err != nil {
			return err
		}
		seq.add(s, d, api)
		if cfg.fargate {
			d, err := b.dockerRun(ctx, "runsc")
			if err != nil {
				return err
			}
			seq.runsc = append(seq.runsc, d)
		}
	}
	running := cfg.tasks + 1
	mem := []memRow{{"idle, no task", idle}}
	if m, err := rss(b.agent.cmd.Process.Pid); err == nil {
		mem = append(mem, memRow{fmt.Sprintf("%d tasks running", running), m})
	}

	var par samples
	if cfg.concurrent > 0 {
		for done := 0; done < cfg.tasks; done += cfg.concurrent {
			n := min(cfg.concurrent, cfg.tasks-done)
			if err := b.wave(ctx, n, &par); err != nil {
				return err
			}
		}
		running += cfg.tasks
		if m, err := rss(b.agent.cmd.Process.Pid); err == nil {
			mem = append(mem, memRow{fmt.Sprintf("%d tasks running", running), m})
		}
	}
	var idleMem []idleRow
	if cfg.fargate && cfg.idle > 0 {
		if idleMem, err = b.idleMemory(ctx, cfg.idle); err != nil {
			return err
		}
	}
	srv, _ := rss(b.server.cmd.Process.Pid)

	fmt.Fprintln(w)
	report(w, "one at a time", &seq)
	if cfg.concurrent > 0 {
		fmt.Fprintln(w)
		report(w, fmt.Sprintf("%d at a time", cfg.concurrent), &par)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "wharf agent memory (pid %d)\tVmRSS\tVmHWM\t\n", b.agent.cmd.Process.Pid)
	for _, m := range mem {
		fmt.Fprintf(tw, "%s\t%.1f MiB\t%.1f MiB\t\n", m.what, mib(m.rss.rss), mib(m.rss.hwm))
	}
	fmt.Fprintf(tw, "(wharf server with etcd, for reference)\t%.1f MiB\t%.1f MiB\t\n", mib(srv.rss), mib(srv.hwm))
	if err := tw.Flush(); err != nil || len(idleMem) == 0 {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%d idle ones, MemAvailable before - after\tper task\tidle ones in %.1f GiB\t\n", cfg.idle, float64(info.MemTotal)/(1<<30))
	for _, r := range idleMem {
		fmt.Fprintf(tw, "%s\t%.1f MiB\t%d\t\n", r.what, mib(r.each), info.MemTotal/max(r.each, 1))
	}
	fmt.Fprintf(tw, "(a 0.25 vCPU, 512 MiB task's reservation: %d by memory, %d by CPU units)\t\t\t\n", info.MemTotal/(512<<20), int64(info.NCPU)*1024/256)
	return tw.Flush()
}

type idleRow struct {
	what string
	each int64 // bytes
}

// idleMemory starts n idle FARGATE tasks, then n docker run -d (runc),
// and returns what each took of the host's MemAvailable once settled.
func (b *bench) idleMemory(ctx context.Context, n int) ([]idleRow, error) {
	measure := func(what string, start func() error) (idleRow, error) {
		before, err := memAvailable()
		if err != nil {
			return idleRow{}, err
		}
		for range n {
			if err := start(); err != nil {
				return idleRow{}, err
			}
		}
		time.Sleep(5 * time.Second) // let the sandboxes settle
		after, err := memAvailable()
		if err != nil {
			return idleRow{}, err
		}
		return idleRow{what, (before - after) / int64(n)}, nil
	}
	fargate, err := measure("FARGATE task (pause + gVisor sandbox)", func() error { _, err := b.wharfOnce(ctx); return err })
	if err != nil {
		return nil, err
	}
	runc, err := measure("docker run -d (runc)", func() error { _, err := b.dockerRun(ctx, ""); return err })
	if err != nil {
		return nil, err
	}
	return []idleRow{fargate, runc}, nil
}

// memAvailable reads MemAvailable from /proc/meminfo, in bytes.
func memAvailable() (int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "MemAvailable:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no MemAvailable in /proc/meminfo")
}

type memRow struct {
	what string
	rss  memory
}

// start runs `wharf server` and one `wharf agent` and waits until the
// agent's instance is registered and connected.
func (b *bench) start(ctx context.Context) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	ln.Close()
	endpoint := "http://" + addr
	b.server, err = startProcess(b.dir, "server", b.bin, "server", "--listen", addr,
		"--data-dir", filepath.Join(b.dir, "server"), "--access-key-id", keyID, "--secret-access-key", secret,
		"--read-rate", "0", "--write-rate", "0")
	if err != nil {
		return err
	}
	b.ecs = ecs.NewFromConfig(aws.Config{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider(keyID, secret, ""),
		BaseEndpoint: aws.String(endpoint),
	})
	err = waitFor(ctx, b.server, 60*time.Second, "the server to answer", func() (bool, error) {
		_, err := b.ecs.ListClusters(ctx, &ecs.ListClustersInput{})
		return err == nil, nil
	})
	if err != nil {
		return err
	}
	if _, err := b.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(cluster)}); err != nil {
		return err
	}
	args := []string{"agent", "--server", endpoint, "--cluster", cluster,
		"--name", "bench-1", "--state-dir", filepath.Join(b.dir, "agent"), "--stop-timeout", "2s",
		"--access-key-id", keyID, "--secret-access-key", secret}
	instances := cluster
	if b.cfg.fargate {
		// Room for every task of the run, whatever their reservations.
		args = append(args, "--fargate", "--cpu", "1048576", "--memory", "1048576")
		instances = fargatePool
	}
	b.agent, err = startProcess(b.dir, "agent", b.bin, args...)
	if err != nil {
		return err
	}
	err = waitFor(ctx, b.agent, 60*time.Second, "the agent to register", func() (bool, error) {
		out, err := b.ecs.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String(instances)})
		if err != nil || len(out.ContainerInstanceArns) == 0 {
			return false, nil
		}
		b.instance = out.ContainerInstanceArns[0]
		d, err := b.ecs.DescribeContainerInstances(ctx, &ecs.DescribeContainerInstancesInput{Cluster: aws.String(instances), ContainerInstances: []string{b.instance}})
		return err == nil && len(d.ContainerInstances) == 1 && d.ContainerInstances[0].AgentConnected, nil
	})
	if err != nil {
		return err
	}
	in := &ecs.RegisterTaskDefinitionInput{
		Family:      aws.String("bench"),
		NetworkMode: types.NetworkModeBridge,
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("app"), Image: aws.String(b.image), Essential: aws.Bool(true),
			Command: []string{"sh", "-c", script}, MemoryReservation: aws.Int32(8),
		}},
	}
	if b.cfg.fargate {
		in.RequiresCompatibilities = []types.Compatibility{types.CompatibilityFargate}
		in.NetworkMode, in.Cpu, in.Memory = types.NetworkModeAwsvpc, aws.String("256"), aws.String("512")
	}
	td, err := b.ecs.RegisterTaskDefinition(ctx, in)
	if err != nil {
		return err
	}
	b.td = aws.ToString(td.TaskDefinition.TaskDefinitionArn)
	return nil
}

// sample is one task's timings.
type sample struct {
	observed time.Duration // RunTask called → DescribeTasks shows RUNNING
	reported time.Duration // the task's startedAt - createdAt
}

// wharfOnce runs one task and waits until DescribeTasks shows it RUNNING.
func (b *bench) wharfOnce(ctx context.Context) (sample, error) {
	begin := time.Now()
	in := &ecs.RunTaskInput{Cluster: aws.String(cluster), TaskDefinition: aws.String(b.td)}
	if b.cfg.fargate {
		in.LaunchType = types.LaunchTypeFargate
		in.NetworkConfiguration = &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"subnet-bench"}}}
	}
	out, err := b.ecs.RunTask(ctx, in)
	if err != nil {
		return sample{}, fmt.Errorf("run task: %w", err)
	}
	if len(out.Tasks) != 1 {
		b, _ := json.Marshal(out.Failures)
		return sample{}, fmt.Errorf("run task: failures %s", b)
	}
	arn := aws.ToString(out.Tasks[0].TaskArn)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		d, err := b.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: []string{arn}})
		if err != nil {
			return sample{}, fmt.Errorf("describe task: %w", err)
		}
		if len(d.Tasks) == 1 {
			task := d.Tasks[0]
			switch aws.ToString(task.LastStatus) {
			case "RUNNING":
				s := sample{observed: time.Since(begin)}
				if task.StartedAt != nil && task.CreatedAt != nil {
					s.reported = task.StartedAt.Sub(*task.CreatedAt)
				}
				return s, nil
			case "STOPPED":
				return sample{}, fmt.Errorf("task %s stopped: %s", arn, aws.ToString(task.StoppedReason))
			}
		}
		if time.Now().After(deadline) {
			return sample{}, fmt.Errorf("task %s not RUNNING within 2 minutes", arn)
		}
		select {
		case <-ctx.Done():
			return sample{}, ctx.Err()
		case <-time.After(b.cfg.poll):
		}
	}
}

// dockerRun times `docker run -d` of the same image and command, with the
// OCI runtime given (or the engine's default): the CLI returns once the
// container runs.
func (b *bench) dockerRun(ctx context.Context, runtime string) (time.Duration, error) {
	args := []string{"run", "-d", "--label", benchLabel + "=" + b.runID, "--memory-reservation", "8m"}
	if runtime != "" {
		args = append(args, "--runtime", runtime)
	}
	begin := time.Now()
	out, err := exec.CommandContext(ctx, "docker", append(args, b.image, "sh", "-c", script)...).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("docker run: %v: %s", err, out)
	}
	return time.Since(begin), nil
}

// dockerAPI times the Engine API's create and start, which is what the
// agent calls, without the CLI's own start-up.
func (b *bench) dockerAPI(ctx context.Context) (time.Duration, error) {
	begin := time.Now()
	c, err := b.docker.ContainerCreate(ctx, &container.Config{
		Image: b.image, Cmd: []string{"sh", "-c", script}, Labels: map[string]string{benchLabel: b.runID},
	}, &container.HostConfig{Resources: container.Resources{MemoryReservation: 8 << 20}}, nil, nil, "")
	if err != nil {
		return 0, fmt.Errorf("create container: %w", err)
	}
	if err := b.docker.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		return 0, fmt.Errorf("start container: %w", err)
	}
	return time.Since(begin), nil
}

// wave starts n tasks at once, then n docker run at once.
func (b *bench) wave(ctx context.Context, n int, s *samples) error {
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			r, err := b.wharfOnce(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			s.wharf = append(s.wharf, r)
		})
	}
	wg.Wait()
	for range n {
		wg.Go(func() {
			d, err := b.dockerRun(ctx, "")
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			s.docker = append(s.docker, d)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// cleanup stops both processes and removes every container of the run,
// four at a time: gVisor's sandboxes take long to stop on a loaded host.
func (b *bench) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for _, p := range []*process{b.agent, b.server} {
		if p != nil {
			p.stop()
		}
	}
	var ids []string
	for _, label := range []string{"wharf.container-instance=" + b.instance, benchLabel + "=" + b.runID} {
		if strings.HasSuffix(label, "=") {
			continue
		}
		list, err := b.docker.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", label))})
		if err != nil {
			fmt.Fprintf(os.Stderr, "list containers: %v\n", err)
			continue
		}
		for _, c := range list {
			ids = append(ids, c.ID)
		}
	}
	fmt.Fprintf(os.Stderr, "removing %d containers\n", len(ids))
	work := make(chan string)
	var removed atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for id := range work {
				if err := b.docker.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
					fmt.Fprintf(os.Stderr, "remove container %s: %v\n", id, err)
					continue
				}
				removed.Add(1)
			}
		})
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	fmt.Fprintf(os.Stderr, "removed %d containers\n", removed.Load())
}

// samples are the timings of one phase.
type samples struct {
	wharf  []sample
	docker []time.Duration // docker run -d
	runsc  []time.Duration // docker run -d --runtime runsc
	api    []time.Duration // Engine API create + start
}

func (s *samples) add(w sample, d, api time.Duration) {
	s.wharf = append(s.wharf, w)
	s.docker = append(s.docker, d)
	s.api = append(s.api, api)
}

// percentile returns the nearest-rank percentile p of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func report(w io.Writer, phase string, s *samples) {
	var observed, reported []time.Duration
	for _, x := range s.wharf {
		observed = append(observed, x.observed)
		reported = append(reported, x.reported)
	}
	p50, p95 := percentile(s.docker, 0.50), percentile(s.docker, 0.95)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s (n=%d)\tp50\tp95\tmax\tp50 / docker run\tp95 / docker run\t\n", phase, len(observed))
	row := func(name string, ds []time.Duration) {
		if len(ds) == 0 {
			return
		}
		a, b := percentile(ds, 0.50), percentile(ds, 0.95)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.2f\t%.2f\t\n", name, ms(a), ms(b), ms(slices.Max(ds)), float64(a)/float64(p50), float64(b)/float64(p95))
	}
	row("wharf: RunTask → DescribeTasks RUNNING", observed)
	row("wharf: task startedAt - createdAt", reported)
	row("docker run -d (CLI)", s.docker)
	row("docker run -d --runtime runsc (CLI)", s.runsc)
	row("Engine API create + start", s.api)
	tw.Flush()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

func mib(b int64) float64 { return float64(b) / (1 << 20) }

type memory struct{ rss, hwm int64 }

// rss reads a process's resident set size and its peak from
// /proc/<pid>/status.
func rss(pid int) (memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, fmt.Errorf("memory of pid %d (Linux only): %w", pid, err)
	}
	var m memory
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			m.rss = kb << 10
		case "VmHWM":
			m.hwm = kb << 10
		}
	}
	return m, nil
}

// process is a wharf process in its own process group, killed should this
// program die first.
type process struct {
	name string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
}

func startProcess(dir, name, bin string, args ...string) (*process, error) {
	path := filepath.Join(dir, name+".log")
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WHARF_") && !strings.HasPrefix(kv, "AWS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, log: path, cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, and SIGKILL after 10 s.
func (p *process) stop() {
	if p.exited() {
		return
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		fmt.Fprintf(os.Stderr, "%s did not stop within 10s of SIGTERM; killing it\n", p.name)
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// waitFor polls cond every 100 ms until it holds, p exits or timeout
// passes.
func waitFor(ctx context.Context, p *process, timeout time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if p.exited() {
			return fmt.Errorf("%s exited while waiting for %s; see %s", p.name, what, p.log)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s; see %s", timeout, what, p.log)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
