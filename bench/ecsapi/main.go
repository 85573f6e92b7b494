// Command ecsapi compares Wharf's ECS API with moto's: it starts both on
// loopback, gives them the same cluster, task definition and container
// instance, and drives DescribeTasks and RunTask/StopTask through the AWS
// SDK for Go v2 from concurrent workers. See README.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/wharfhq/wharf/bench/internal/apibench"
)

const region = "us-east-1"

// Config is what one run measures.
type Config struct {
	Workers  int           // concurrent workers per phase
	Duration time.Duration // measured time per phase and system, at most
	Requests int           // measured iterations per phase and system, at most
	Warmup   time.Duration // unmeasured time before each phase
	Rounds   int           // slices each phase alternates the systems in
	Tasks    int           // tasks created up front for DescribeTasks
	Wharf    string        // prebuilt wharf binary; empty builds ./cmd/wharf
	Python   string        // interpreter that runs moto.server
	JSON     bool
	Keep     bool // keep the temporary directory with both servers' logs
}

func main() {
	var cfg Config
	flag.IntVar(&cfg.Workers, "c", 8, "concurrent workers")
	flag.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time per phase and system, at most")
	flag.IntVar(&cfg.Requests, "requests", 5000, "measured iterations per phase and system, at most (a RunTask iteration is RunTask then StopTask)")
	flag.DurationVar(&cfg.Warmup, "warmup", time.Second, "unmeasured warm-up per phase and system")
	flag.IntVar(&cfg.Rounds, "rounds", 5, "slices of -duration and -requests in which each phase alternates between the systems")
	flag.IntVar(&cfg.Tasks, "tasks", 100, "tasks created up front; DescribeTasks asks for 10 of them at a time")
	flag.StringVar(&cfg.Wharf, "wharf", "", "wharf binary to run (default: build ./cmd/wharf)")
	flag.StringVar(&cfg.Python, "python", "python3", "Python interpreter with moto[server] installed")
	flag.BoolVar(&cfg.JSON, "json", false, "print the results as JSON")
	flag.BoolVar(&cfg.Keep, "keep", false, "keep the temporary directory with the servers' logs")
	flag.Parse()
	if cfg.Workers < 1 || cfg.Rounds < 1 || cfg.Requests < cfg.Rounds || cfg.Duration <= 0 || cfg.Tasks < 10 {
		fmt.Fprintln(os.Stderr, "ecsapi: -c, -rounds and -duration must be positive, -requests at least -rounds, and -tasks at least 10")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := Run(ctx, cfg, os.Stdout)
	interrupted := ctx.Err() != nil
	stop()
	if interrupted {
		fmt.Fprintln(os.Stderr, "ecsapi: interrupted")
		os.Exit(130)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ecsapi: %v\n", err)
		os.Exit(1)
	}
}

// system is one server under test with the objects the workload uses.
type system struct {
	name   string
	client *ecs.Client
	tasks  []string // task ARNs for DescribeTasks
}

const (
	cluster       = "bench"
	family        = "bench"
	describeBatch = 10
)

// Run starts both servers, measures them and writes the report to out.
func Run(ctx context.Context, cfg Config, out io.Writer) (err error) {
	host := apibench.Host(cfg.Python)
	dir, err := os.MkdirTemp("", "wharf-ecsapi-")
	if err != nil {
		return err
	}
	defer func() {
		if cfg.Keep || err != nil && ctx.Err() == nil {
			fmt.Fprintf(os.Stderr, "logs kept in %s\n", dir)
			return
		}
		os.RemoveAll(dir)
	}()

	wharfBin := cfg.Wharf
	if wharfBin == "" {
		wharfBin = filepath.Join(dir, "wharf")
		if err := apibench.BuildWharf(ctx, wharfBin); err != nil {
			return err
		}
	}
	wp, wenv, err := apibench.StartWharf(ctx, wharfBin, dir)
	if wp != nil {
		defer wp.Stop()
	}
	if err != nil {
		return err
	}
	mp, motoEndpoint, err := apibench.StartMoto(ctx, cfg.Python, dir)
	if mp != nil {
		defer mp.Stop()
	}
	if err != nil {
		return err
	}

	// One identity document for both: moto needs an EC2 instance it knows.
	instanceID, err := motoRunInstance(ctx, motoEndpoint)
	if err != nil {
		return fmt.Errorf("moto: run an EC2 instance: %w", err)
	}
	doc := identityDocument(instanceID)
	systems := []*system{
		{name: "wharf", client: newClient(cfg, wenv.Endpoint, wenv.KeyID, wenv.Secret)},
		{name: "moto", client: newClient(cfg, motoEndpoint, wenv.KeyID, wenv.Secret)}, // moto takes any key
	}
	for _, s := range systems {
		if err := s.setup(ctx, doc, cfg.Tasks); err != nil {
			return fmt.Errorf("%s: set up: %w", s.name, err)
		}
	}

	// DescribeTasks first: moto scans every task it holds, so it is measured
	// with the same -tasks tasks as Wharf, before RunTask adds more.
	phases := []struct {
		name string
		iter func(s *system) apibench.Iteration
	}{
		{"DescribeTasks", func(s *system) apibench.Iteration { return s.describe }},
		{"RunTask+StopTask", func(s *system) apibench.Iteration { return s.runStop }},
	}
	// Each phase alternates between the systems in -rounds slices.
	load := apibench.Load{Workers: cfg.Workers, Warmup: cfg.Warmup, Duration: cfg.Duration, Requests: cfg.Requests, Rounds: cfg.Rounds}
	var names []string
	for _, s := range systems {
		names = append(names, s.name)
	}
	var results []apibench.Result
	for _, p := range phases {
		fmt.Fprintf(os.Stderr, "%s: warm-up %v each, then %d rounds alternating wharf and moto, up to %v or %d iterations each in all, %d workers\n",
			p.name, cfg.Warmup, cfg.Rounds, cfg.Duration, cfg.Requests, cfg.Workers)
		res, err := apibench.Measure(ctx, load, names, func(i int) apibench.Iteration { return p.iter(systems[i]) })
		if err != nil {
			return err
		}
		results = append(results, res...)
	}
	rep := apibench.Report{
		Machine: host,
		Config: Settings{
			Workers: cfg.Workers, DurationS: cfg.Duration.Seconds(), Requests: cfg.Requests,
			WarmupS: cfg.Warmup.Seconds(), Rounds: cfg.Rounds, Tasks: cfg.Tasks, DescribeOf: describeBatch,
		},
		Results: results,
		Ratios:  apibench.Ratios(results),
	}
	if cfg.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	apibench.PrintTable(out, &rep, fmt.Sprintf("workers %d; per phase and system %gs or %d iterations in %d alternating rounds, after %gs warm-up; DescribeTasks of %d among %d tasks",
		cfg.Workers, cfg.Duration.Seconds(), cfg.Requests, cfg.Rounds, cfg.Warmup.Seconds(), describeBatch, cfg.Tasks))
	return nil
}

// Settings are the run's parameters, as the JSON report gives them.
type Settings struct {
	Workers    int     `json:"workers"`
	DurationS  float64 `json:"duration_s"`
	Requests   int     `json:"requests"`
	WarmupS    float64 `json:"warmup_s"`
	Rounds     int     `json:"rounds"`
	Tasks      int     `json:"tasks"`
	DescribeOf int     `json:"describe_tasks_per_request"`
}

// identityDocument is an EC2 instance identity document for instanceID.
func identityDocument(instanceID string) string {
	b, _ := json.Marshal(map[string]string{
		"instanceId":       instanceID,
		"instanceType":     "t2.micro",
		"availabilityZone": "us-east-1a",
		"region":           region,
		"imageId":          "ami-12c6146b",
		"privateIp":        "10.0.0.10",
		"accountId":        "123456789012",
	})
	return string(b)
}

// setup creates the cluster, the task definition, one large container
// instance and the tasks DescribeTasks reads.
func (s *system) setup(ctx context.Context, doc string, tasks int) error {
	if _, err := s.client.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(cluster)}); err != nil {
		return fmt.Errorf("create cluster: %w", err)
	}
	_, err := s.client.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name:      aws.String("app"),
			Image:     aws.String("public.ecr.aws/docker/library/busybox:latest"),
			Cpu:       1,
			Memory:    aws.Int32(6),
			Essential: aws.Bool(true),
			Command:   []string{"sleep", "3600"},
		}},
	})
	if err != nil {
		return fmt.Errorf("register task definition: %w", err)
	}
	// moto ignores totalResources and gives every instance 4096 CPU units
	// and 7482 MiB, room for over a thousand of these tasks.
	_, err = s.client.RegisterContainerInstance(ctx, &ecs.RegisterContainerInstanceInput{
		Cluster:                  aws.String(cluster),
		InstanceIdentityDocument: aws.String(doc),
		TotalResources: []types.Resource{
			{Name: aws.String("CPU"), Type: aws.String("INTEGER"), IntegerValue: 1_000_000},
			{Name: aws.String("MEMORY"), Type: aws.String("INTEGER"), IntegerValue: 10_000_000},
		},
	})
	if err != nil {
		return fmt.Errorf("register container instance: %w", err)
	}
	for len(s.tasks) < tasks {
		n := min(10, tasks-len(s.tasks))
		out, err := s.client.RunTask(ctx, &ecs.RunTaskInput{
			Cluster: aws.String(cluster), TaskDefinition: aws.String(family), Count: aws.Int32(int32(n)),
		})
		if err := runError(out, err, n); err != nil {
			return fmt.Errorf("run tasks: %w", err)
		}
		for _, t := range out.Tasks {
			s.tasks = append(s.tasks, aws.ToString(t.TaskArn))
		}
	}
	return nil
}

// runError turns a RunTask that placed fewer than want tasks into an error.
func runError(out *ecs.RunTaskOutput, err error, want int) error {
	switch {
	case err != nil:
		return err
	case len(out.Tasks) != want:
		why := "no failures reported"
		if len(out.Failures) > 0 {
			why = aws.ToString(out.Failures[0].Reason)
		}
		return fmt.Errorf("placed %d of %d tasks: %s", len(out.Tasks), want, why)
	}
	return nil
}

// describe asks for 10 of the tasks made in setup, a different window each
// iteration.
func (s *system) describe(ctx context.Context, i int, rec apibench.Recorder) {
	arns := make([]string, describeBatch)
	for k := range arns {
		arns[k] = s.tasks[(i*describeBatch+k)%len(s.tasks)]
	}
	start := time.Now()
	out, err := s.client.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: arns})
	if err == nil && len(out.Tasks) != describeBatch {
		err = fmt.Errorf("described %d of %d tasks", len(out.Tasks), describeBatch)
	}
	rec("DescribeTasks", time.Since(start), err)
}

// runStop runs one task and stops it again, so that the instance never
// fills up.
func (s *system) runStop(ctx context.Context, i int, rec apibench.Recorder) {
	start := time.Now()
	out, err := s.client.RunTask(ctx, &ecs.RunTaskInput{
		Cluster: aws.String(cluster), TaskDefinition: aws.String(family), Count: aws.Int32(1),
	})
	err = runError(out, err, 1)
	rec("RunTask", time.Since(start), err)
	if err != nil {
		return
	}
	start = time.Now()
	_, err = s.client.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String(cluster), Task: out.Tasks[0].TaskArn})
	rec("StopTask", time.Since(start), err)
}
