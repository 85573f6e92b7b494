package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// perf is one dnsperf run's figures.
type perf struct {
	Sent       int64   `json:"sent"`
	Completed  int64   `json:"completed"`
	Lost       int64   `json:"lost"`
	RunTime    float64 `json:"run_time_s"`
	QPS        float64 `json:"qps"`
	AvgLatency float64 `json:"avg_latency_s"`
	MinLatency float64 `json:"min_latency_s"`
	MaxLatency float64 `json:"max_latency_s"`
	StdDev     float64 `json:"latency_stddev_s"`
	Rcodes     string  `json:"rcodes"`
	// From the per-query lines of -v runs only.
	Samples int     `json:"samples,omitempty"`
	P50     float64 `json:"p50_s,omitempty"`
	P99     float64 `json:"p99_s,omitempty"`
	P999    float64 `json:"p999_s,omitempty"`
}

// dnsperfRun is how to run dnsperf once.
type dnsperfRun struct {
	bin, addr, queries string
	duration           time.Duration
	clients, q, t      int
	rate               int    // -Q, 0 for none
	out                string // file for dnsperf's output
	verbose            bool   // -v: one line per query, for percentiles
}

func (r dnsperfRun) run(ctx context.Context) (perf, error) {
	host, port, _ := strings.Cut(r.addr, ":")
	args := []string{"-s", host, "-p", port, "-d", r.queries, "-l", strconv.FormatFloat(r.duration.Seconds(), 'f', -1, 64),
		"-c", strconv.Itoa(r.clients), "-q", strconv.Itoa(r.q), "-T", strconv.Itoa(r.t), "-t", "2"}
	if r.rate > 0 {
		args = append(args, "-Q", strconv.Itoa(r.rate))
	}
	if r.verbose {
		args = append(args, "-v")
	}
	ctx, cancel := context.WithTimeout(ctx, r.duration+30*time.Second)
	defer cancel()
	f, err := os.Create(r.out)
	if err != nil {
		return perf{}, err
	}
	cmd := exec.CommandContext(ctx, r.bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Run()
	f.Close()
	if err != nil {
		out, _ := os.ReadFile(r.out)
		return perf{}, fmt.Errorf("dnsperf %s: %w\n%s", strings.Join(args, " "), err, tail(out, 2000))
	}
	return parseDNSPerf(r.out, r.verbose)
}

var (
	reCount   = regexp.MustCompile(`Queries (sent|completed|lost):\s+(\d+)`)
	reQPS     = regexp.MustCompile(`Queries per second:\s+([\d.]+)`)
	reRunTime = regexp.MustCompile(`Run time \(s\):\s+([\d.]+)`)
	reAvg     = regexp.MustCompile(`Average Latency \(s\):\s+([\d.]+) \(min ([\d.]+), max ([\d.]+)\)`)
	reStdDev  = regexp.MustCompile(`Latency StdDev \(s\):\s+([\d.]+)`)
	reRcodes  = regexp.MustCompile(`Response codes:\s+(.*)`)
)

func parseDNSPerf(path string, verbose bool) (perf, error) {
	f, err := os.Open(path)
	if err != nil {
		return perf{}, err
	}
	defer f.Close()
	var p perf
	var lat []float64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	num := func(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }
	for sc.Scan() {
		line := sc.Text()
		if verbose && strings.HasPrefix(line, "> ") {
			// "> NOERROR name type 0.000123"; timeouts are "> T name type".
			fields := strings.Fields(line)
			if len(fields) == 5 {
				if v, err := strconv.ParseFloat(fields[4], 64); err == nil {
					lat = append(lat, v)
				}
			}
			continue
		}
		if m := reCount.FindStringSubmatch(line); m != nil {
			v, _ := strconv.ParseInt(m[2], 10, 64)
			switch m[1] {
			case "sent":
				p.Sent = v
			case "completed":
				p.Completed = v
			case "lost":
				p.Lost = v
			}
		} else if m := reQPS.FindStringSubmatch(line); m != nil {
			p.QPS = num(m[1])
		} else if m := reRunTime.FindStringSubmatch(line); m != nil {
			p.RunTime = num(m[1])
		} else if m := reAvg.FindStringSubmatch(line); m != nil {
			p.AvgLatency, p.MinLatency, p.MaxLatency = num(m[1]), num(m[2]), num(m[3])
		} else if m := reStdDev.FindStringSubmatch(line); m != nil {
			p.StdDev = num(m[1])
		} else if m := reRcodes.FindStringSubmatch(line); m != nil {
			p.Rcodes = m[1]
		}
	}
	if err := sc.Err(); err != nil {
		return perf{}, err
	}
	if p.Completed == 0 {
		return perf{}, errors.New("dnsperf completed no query; see " + path)
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		p.Samples = len(lat)
		p.P50, p.P99, p.P999 = quantile(lat, 0.50), quantile(lat, 0.99), quantile(lat, 0.999)
	}
	return p, nil
}

// quantile is the nearest-rank quantile of sorted values.
func quantile(sorted []float64, q float64) float64 {
	i := int(float64(len(sorted))*q+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// combine sums throughput runs: counts add up, QPS is completed over run
// time, latencies are weighted by completed queries, max is the max.
func combine(runs []perf) perf {
	var c perf
	var wAvg, wVar float64
	for _, r := range runs {
		c.Sent += r.Sent
		c.Completed += r.Completed
		c.Lost += r.Lost
		c.RunTime += r.RunTime
		wAvg += r.AvgLatency * float64(r.Completed)
		wVar += (r.StdDev*r.StdDev + r.AvgLatency*r.AvgLatency) * float64(r.Completed)
		c.MaxLatency = max(c.MaxLatency, r.MaxLatency)
		if c.MinLatency == 0 || r.MinLatency < c.MinLatency {
			c.MinLatency = r.MinLatency
		}
		c.Rcodes = r.Rcodes
	}
	if c.Completed > 0 {
		c.AvgLatency = wAvg / float64(c.Completed)
		v := wVar/float64(c.Completed) - c.AvgLatency*c.AvgLatency
		c.StdDev = math.Sqrt(max(v, 0))
	}
	if c.RunTime > 0 {
		c.QPS = float64(c.Completed) / c.RunTime
	}
	return c
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
