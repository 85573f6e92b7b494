// Command discover compares Wharf's Cloud Map data plane with moto's: it
// starts both on loopback, registers the same instances in an HTTP
// namespace on each, and drives DiscoverInstances (three queries) and
// DiscoverInstancesRevision through the AWS SDK for Go v2 from concurrent
// workers. See README.md.
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

	"github.com/wharfhq/wharf/bench/internal/apibench"
)

const region = "us-east-1"

// Config is what one run measures.
type Config struct {
	Instances int           // instances registered in the service
	Workers   int           // concurrent workers per phase
	Duration  time.Duration // measured time per phase and system, at most
	Requests  int           // measured requests per phase and system, at most
	Warmup    time.Duration // unmeasured time before each phase
	Rounds    int           // slices each phase alternates the systems in
	Wharf     string        // prebuilt wharf binary; empty builds ./cmd/wharf
	Python    string        // interpreter that runs moto.server
	JSON      bool
	Keep      bool // keep the temporary directory with both servers' logs
}

func main() {
	var cfg Config
	flag.IntVar(&cfg.Instances, "instances", 1000, "instances registered in the service")
	flag.IntVar(&cfg.Workers, "c", 8, "concurrent workers")
	flag.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time per phase and system, at most")
	flag.IntVar(&cfg.Requests, "requests", 20000, "measured requests per phase and system, at most")
	flag.DurationVar(&cfg.Warmup, "warmup", time.Second, "unmeasured warm-up per phase and system")
	flag.IntVar(&cfg.Rounds, "rounds", 5, "slices of -duration and -requests in which each phase alternates between the systems")
	flag.StringVar(&cfg.Wharf, "wharf", "", "wharf binary to run (default: build ./cmd/wharf)")
	flag.StringVar(&cfg.Python, "python", "python3", "Python interpreter with moto[server] installed")
	flag.BoolVar(&cfg.JSON, "json", false, "print the results as JSON")
	flag.BoolVar(&cfg.Keep, "keep", false, "keep the temporary directory with the servers' logs")
	flag.Parse()
	if cfg.Instances < 1 || cfg.Workers < 1 || cfg.Rounds < 1 || cfg.Requests < cfg.Rounds || cfg.Duration <= 0 {
		fmt.Fprintln(os.Stderr, "discover: -instances, -c, -rounds and -duration must be positive, and -requests at least -rounds")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := Run(ctx, cfg, os.Stdout)
	interrupted := ctx.Err() != nil
	stop()
	if interrupted {
		fmt.Fprintln(os.Stderr, "discover: interrupted")
		os.Exit(130)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "discover: %v\n", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

// phase is one kind of request, measured on every system.
type phase struct {
	name string
	iter func(s *system) apibench.Iteration
}

// Run starts both servers, measures them and writes the report to out.
func Run(ctx context.Context, cfg Config, out io.Writer) (err error) {
	host := apibench.Host(cfg.Python)
	dir, err := os.MkdirTemp("", "wharf-discover-")
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
	wp, wenv, err := apibench.StartWharf(ctx, wharfBin, dir, "--nodes", "0")
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

	systems := []*system{
		{name: "wharf", sd: newClient(cfg, wenv.Endpoint, wenv.KeyID, wenv.Secret)},
		{name: "moto", sd: newClient(cfg, motoEndpoint, wenv.KeyID, wenv.Secret)}, // moto takes any key
	}
	for _, s := range systems {
		if err := s.setup(ctx, cfg.Instances, cfg.Workers); err != nil {
			return fmt.Errorf("%s: set up: %w", s.name, err)
		}
	}

	var phases []phase
	for _, q := range queries(cfg.Instances) {
		phases = append(phases, phase{q.name, func(s *system) apibench.Iteration { return s.discover(q) }})
	}
	phases = append(phases, phase{revisionOp, func(s *system) apibench.Iteration { return s.revision }})

	// Each phase alternates between the systems in -rounds slices.
	load := apibench.Load{Workers: cfg.Workers, Warmup: cfg.Warmup, Duration: cfg.Duration, Requests: cfg.Requests, Rounds: cfg.Rounds}
	var names []string
	for _, s := range systems {
		names = append(names, s.name)
	}
	var results []apibench.Result
	for _, p := range phases {
		logf("%s: warm-up %v each, then %d rounds alternating wharf and moto, up to %v or %d requests each in all, %d workers",
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
			Instances: cfg.Instances, MaxResults: maxResults, Workers: cfg.Workers,
			DurationS: cfg.Duration.Seconds(), Requests: cfg.Requests,
			WarmupS: cfg.Warmup.Seconds(), Rounds: cfg.Rounds,
		},
		Results: results,
		Ratios:  apibench.Ratios(results),
	}
	if cfg.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	apibench.PrintTable(out, &rep, fmt.Sprintf("%d instances in one HTTP namespace service, MaxResults %d; workers %d; per phase and system %gs or %d requests in %d alternating rounds, after %gs warm-up",
		cfg.Instances, maxResults, cfg.Workers, cfg.Duration.Seconds(), cfg.Requests, cfg.Rounds, cfg.Warmup.Seconds()))
	return nil
}

// Settings are the run's parameters, as the JSON report gives them.
type Settings struct {
	Instances  int     `json:"instances"`
	MaxResults int     `json:"max_results"`
	Workers    int     `json:"workers"`
	DurationS  float64 `json:"duration_s"`
	Requests   int     `json:"requests"`
	WarmupS    float64 `json:"warmup_s"`
	Rounds     int     `json:"rounds"`
}
