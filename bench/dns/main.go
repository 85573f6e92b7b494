// Command dns measures Wharf's DNS server next to NSD: it loads 10,000
// Cloud Map instances into an embedded store, serves them with Wharf's DNS
// server in this process and, from a zone file of the same records, with
// Debian's nsd on another loopback port, then drives both with dnsperf
// from the same query file. See README.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Config is what one run measures.
type Config struct {
	Namespaces  int           // DNS namespaces (zones)
	Services    int           // services per namespace
	Instances   int           // instances per service
	Duration    time.Duration // dnsperf throughput run per server
	Rounds      int           // throughput runs per server, alternating
	Clients     int           // dnsperf -c
	Outstanding int           // dnsperf -q
	Threads     int           // dnsperf -T
	Rate        int           // queries per second of the latency run (dnsperf -Q)
	LatencyTime time.Duration // latency run per server
	JSON        bool
	Keep        bool   // keep the temporary directory (zone files, nsd log, dnsperf output)
	CPUProfile  string // file for a CPU profile of this process during Wharf's throughput runs
}

func main() {
	var cfg Config
	flag.IntVar(&cfg.Namespaces, "namespaces", 2, "DNS namespaces")
	flag.IntVar(&cfg.Services, "services", 625, "services per namespace")
	flag.IntVar(&cfg.Instances, "instances", 8, "instances per service (8: both servers answer every record)")
	flag.DurationVar(&cfg.Duration, "duration", 5*time.Second, "dnsperf run per server and round (throughput)")
	flag.IntVar(&cfg.Rounds, "rounds", 4, "throughput runs per server, alternating Wharf and nsd")
	flag.IntVar(&cfg.Clients, "c", 4, "dnsperf clients (-c)")
	flag.IntVar(&cfg.Outstanding, "q", 100, "dnsperf queries outstanding (-q)")
	flag.IntVar(&cfg.Threads, "T", 1, "dnsperf threads (-T)")
	flag.IntVar(&cfg.Rate, "rate", 5000, "queries per second of the latency run (dnsperf -Q -v)")
	flag.DurationVar(&cfg.LatencyTime, "latency-duration", 5*time.Second, "latency run per server")
	flag.BoolVar(&cfg.JSON, "json", false, "print the results as JSON")
	flag.BoolVar(&cfg.Keep, "keep", false, "keep the temporary directory")
	flag.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a CPU profile of Wharf's throughput runs to this file")
	flag.Parse()
	if cfg.Namespaces < 1 || cfg.Services < 1 || cfg.Instances < 1 || cfg.Duration <= 0 || cfg.Rounds < 1 ||
		cfg.Clients < 1 || cfg.Outstanding < 1 || cfg.Threads < 1 || cfg.Rate < 1 || cfg.LatencyTime <= 0 {
		fmt.Fprintln(os.Stderr, "dns: every count and duration must be positive")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	res, err := Run(ctx, cfg, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "dns:", err)
		os.Exit(1)
	}
	if cfg.JSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(res)
		return
	}
	res.Print(os.Stdout)
}
