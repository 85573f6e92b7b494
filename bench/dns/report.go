package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// Print writes the results as a table.
func (r *Result) Print(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "DNS: %d instances (%d zones x %d services x %d), the same records in both servers\n",
		r.Instances, r.Zones, c.Services, c.Instances)
	fmt.Fprintf(w, "%d CPUs, %s, nsd %s, dnsperf %s\n", r.CPUs, r.GoVersion, r.NSDVersion, r.PerfVersion)
	fmt.Fprintf(w, "queries: %d (40%% A, 20%% SRV, 30%% SRV-target A, 10%% NXDOMAIN), UDP, no EDNS\n", r.Queries)
	if r.LoadAvg[0] != "" {
		fmt.Fprintf(w, "load average (1 min) before and after the measurements: %s, %s\n", r.LoadAvg[0], r.LoadAvg[1])
	}
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "throughput: dnsperf -c %d -q %d -T %d, %d x %v per server\t Wharf\t nsd\t Wharf/nsd\t\n",
		c.Clients, c.Outstanding, c.Threads, c.Rounds, c.Duration)
	fmt.Fprintf(tw, "queries per second\t %.0f\t %.0f\t %.2f\t\n", r.Wharf.QPS, r.NSD.QPS, ratio(r.Wharf.QPS, r.NSD.QPS))
	for i := range r.WharfRounds {
		if i < len(r.NSDRounds) {
			fmt.Fprintf(tw, "  round %d\t %.0f\t %.0f\t %.2f\t\n", i+1, r.WharfRounds[i].QPS, r.NSDRounds[i].QPS, ratio(r.WharfRounds[i].QPS, r.NSDRounds[i].QPS))
		}
	}
	fmt.Fprintf(tw, "average latency (dnsperf)\t %s\t %s\t %.2f\t\n", ms(r.Wharf.AvgLatency), ms(r.NSD.AvgLatency), ratio(r.Wharf.AvgLatency, r.NSD.AvgLatency))
	fmt.Fprintf(tw, "latency stddev (dnsperf)\t %s\t %s\t\t\n", ms(r.Wharf.StdDev), ms(r.NSD.StdDev))
	fmt.Fprintf(tw, "max latency (dnsperf)\t %s\t %s\t\t\n", ms(r.Wharf.MaxLatency), ms(r.NSD.MaxLatency))
	fmt.Fprintf(tw, "queries lost\t %d\t %d\t\t\n", r.Wharf.Lost, r.NSD.Lost)
	fmt.Fprintf(tw, "\t\t\t\t\n")
	fmt.Fprintf(tw, "latency at %d QPS: dnsperf -Q %d -v, %v per server\t Wharf\t nsd\t Wharf/nsd\t\n", c.Rate, c.Rate, c.LatencyTime)
	fmt.Fprintf(tw, "answers timed\t %d\t %d\t\t\n", r.WharfLat.Samples, r.NSDLat.Samples)
	fmt.Fprintf(tw, "average\t %s\t %s\t %.2f\t\n", ms(r.WharfLat.AvgLatency), ms(r.NSDLat.AvgLatency), ratio(r.WharfLat.AvgLatency, r.NSDLat.AvgLatency))
	fmt.Fprintf(tw, "p50\t %s\t %s\t %.2f\t\n", ms(r.WharfLat.P50), ms(r.NSDLat.P50), ratio(r.WharfLat.P50, r.NSDLat.P50))
	fmt.Fprintf(tw, "p99\t %s\t %s\t %.2f\t\n", ms(r.WharfLat.P99), ms(r.NSDLat.P99), ratio(r.WharfLat.P99, r.NSDLat.P99))
	fmt.Fprintf(tw, "p99.9\t %s\t %s\t %.2f\t\n", ms(r.WharfLat.P999), ms(r.NSDLat.P999), ratio(r.WharfLat.P999, r.NSDLat.P999))
	fmt.Fprintf(tw, "max\t %s\t %s\t\t\n", ms(r.WharfLat.MaxLatency), ms(r.NSDLat.MaxLatency))
	tw.Flush()

	fmt.Fprintf(w, "\nWharf DNS memory for %d instances: %.1f MiB live heap (%d bytes per instance)\n",
		r.Instances, mib(r.IndexHeap), r.IndexHeap/int64(max(r.Instances, 1)))
	fmt.Fprintf(w, "  this process (Wharf DNS + embedded etcd + bench): %.0f MiB RSS; nsd processes: %.0f MiB RSS summed\n",
		mib(r.ProcessRSS), mib(r.NSDRSS))
	fmt.Fprintf(w, "load: records written to etcd in %v; Wharf DNS listed and indexed them in %v\n",
		r.StoreLoad.Round(time.Millisecond), r.WharfReady.Round(time.Millisecond))
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func ms(s float64) string { return fmt.Sprintf("%.3f ms", s*1000) }

func mib(b int64) float64 { return float64(b) / (1 << 20) }
