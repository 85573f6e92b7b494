// Command proxy benchmarks Wharf's sidecar proxy against a direct
// connection and against HAProxy, in one run on one machine: latency added
// at a fixed 1,000 requests/s on the Service Connect path (client proxy
// then server proxy), throughput per core at saturation, and memory. See
// README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

type config struct {
	rate       int
	duration   time.Duration
	sequential bool
	rounds     int
	conns      int
	satTime    time.Duration
	satConns   int
	satRounds  int
	procs      int
	body       int
	haproxy    string
	wrk        string
	cpuprofile string
	keep       bool
}

func main() {
	var cfg config
	flag.IntVar(&cfg.rate, "rate", 1000, "requests per second of the fixed-rate (open-loop) phase")
	flag.DurationVar(&cfg.duration, "duration", 10*time.Second, "fixed-rate time per path")
	flag.BoolVar(&cfg.sequential, "sequential", false, "run the paths one after the other in -rounds rounds, instead of all at once with staggered requests")
	flag.IntVar(&cfg.rounds, "rounds", 5, "with -sequential: rounds, each running every path in turn for -duration/-rounds")
	flag.IntVar(&cfg.conns, "conns", 16, "keep-alive connections of the fixed-rate phase")
	flag.DurationVar(&cfg.satTime, "sat-duration", 10*time.Second, "saturation time per proxy, split over -sat-rounds")
	flag.IntVar(&cfg.satConns, "sat-conns", 32, "wrk connections at saturation")
	flag.IntVar(&cfg.satRounds, "sat-rounds", 2, "saturation rounds, alternating Wharf and HAProxy")
	flag.IntVar(&cfg.procs, "procs", 1, "GOMAXPROCS of the Wharf proxy processes (HAProxy runs one thread)")
	flag.IntVar(&cfg.body, "body", 100, "response body size in bytes")
	flag.StringVar(&cfg.haproxy, "haproxy", "haproxy", "HAProxy binary")
	flag.StringVar(&cfg.wrk, "wrk", "wrk", "wrk binary")
	flag.StringVar(&cfg.cpuprofile, "cpuprofile", "", "write the one-hop Wharf proxy's CPU profile to this file")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the temporary directory (proxyd binary, HAProxy config)")
	flag.Parse()
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench/proxy:", err)
		os.Exit(1)
	}
}

func run(cfg config) error {
	for _, bin := range []*string{&cfg.haproxy, &cfg.wrk} {
		p, err := exec.LookPath(*bin)
		if err != nil {
			return fmt.Errorf("%s not found; on Debian: apt-get install -y haproxy wrk", *bin)
		}
		*bin = p
	}
	dir, err := os.MkdirTemp("", "wharf-bench-proxy-")
	if err != nil {
		return err
	}
	if cfg.keep {
		fmt.Println("temporary directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}

	// The backend: Go's net/http on loopback, a small fixed body.
	body := []byte(strings.Repeat("x", cfg.body-1) + "\n")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	backend := ln.Addr().String()

	fmt.Println("building proxyd ...")
	proxyd := filepath.Join(dir, "proxyd")
	build := exec.Command("go", "build", "-o", proxyd, "./bench/proxy/proxyd")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building proxyd (run from the module root): %w", err)
	}
	procs := "-procs=" + strconv.Itoa(cfg.procs)

	// The Service Connect path: client proxy (egress) -> server proxy
	// (ingress) -> backend. Then one-hop Wharf and HAProxy.
	server, err := startProxyd(proxyd, "wharf server proxy", procs, "-ingress", "-to", backend)
	if err != nil {
		return err
	}
	defer server.stop()
	client, err := startProxyd(proxyd, "wharf client proxy", procs, "-to", server.addr)
	if err != nil {
		return err
	}
	defer client.stop()
	args := []string{procs, "-to", backend}
	if cfg.cpuprofile != "" {
		args = append(args, "-cpuprofile", cfg.cpuprofile)
	}
	one, err := startProxyd(proxyd, "wharf proxy", args...)
	if err != nil {
		return err
	}
	defer one.stop()
	hap, err := startHAProxy(cfg.haproxy, dir, backend)
	if err != nil {
		return err
	}
	defer hap.stop()

	idle := map[*proc]int64{}
	for _, p := range []*proc{server, client, one, hap} {
		rss, _, err := memory(p.pid())
		if err != nil {
			return err
		}
		idle[p] = rss
	}

	header(cfg)
	busy0 := machineBusy()

	// Fixed rate.
	type path struct {
		name    string
		addr    string
		procs   []*proc
		pool    *pool
		lat     []time.Duration
		errs    int
		cpu     time.Duration
		elapsed time.Duration
	}
	paths := []*path{
		{name: "direct", addr: backend},
		{name: "Wharf, 2 hops (client + server proxy)", addr: client.addr, procs: []*proc{client, server}},
		{name: "Wharf, 1 hop", addr: one.addr, procs: []*proc{one}},
		{name: "HAProxy, 1 hop", addr: hap.addr, procs: []*proc{hap}},
	}
	for _, p := range paths {
		if p.pool, err = newPool(p.addr, cfg.conns); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		defer p.pool.close()
		if err := p.pool.warm(1000); err != nil {
			return fmt.Errorf("%s: warm-up: %w", p.name, err)
		}
	}
	if cfg.sequential {
		per := cfg.duration / time.Duration(cfg.rounds)
		fmt.Printf("fixed rate: %d req/s per path, %d keep-alive connections each, %d rounds of %s per path, one path at a time ...\n", cfg.rate, cfg.conns, cfg.rounds, per)
		for range cfg.rounds {
			for _, p := range paths {
				cpu0 := cpuOf(p.procs)
				t0 := time.Now()
				lat, errs := p.pool.openLoop(cfg.rate, per, 0)
				p.elapsed += time.Since(t0)
				p.cpu += cpuOf(p.procs) - cpu0
				p.lat = append(p.lat, lat...)
				p.errs += errs
			}
		}
	} else {
		// Every path at once, each at the full rate, their requests
		// staggered: whatever else the machine does meanwhile falls on
		// all paths alike.
		fmt.Printf("fixed rate: %d req/s per path, %d keep-alive connections each, all paths at once (staggered) for %s ...\n", cfg.rate, cfg.conns, cfg.duration)
		var wg sync.WaitGroup
		for i, p := range paths {
			offset := time.Second / time.Duration(cfg.rate) * time.Duration(i) / time.Duration(len(paths))
			cpu0 := cpuOf(p.procs)
			wg.Go(func() {
				t0 := time.Now()
				p.lat, p.errs = p.pool.openLoop(cfg.rate, cfg.duration, offset)
				p.elapsed = time.Since(t0)
				p.cpu = cpuOf(p.procs) - cpu0
			})
		}
		wg.Wait()
	}
	fmt.Printf("machine during the phase: %s busy (every process: this run's and others'), load average %s\n", machineBusy().since(busy0), loadavg())
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "path\trequests\tp50\tp90\tp99\tp99.9\tmax\terrors\tproxy CPU at this rate\t")
	sums := map[string]percentiles{}
	for _, p := range paths {
		s := summarize(p.lat)
		sums[p.name] = s
		cpu := "-"
		if len(p.procs) > 0 {
			cpu = fmt.Sprintf("%.3f vCPU", p.cpu.Seconds()/p.elapsed.Seconds())
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t\n", p.name, s.n, ms(s.p50), ms(s.p90), ms(s.p99), ms(s.p999), ms(s.pmax), p.errs, cpu)
	}
	tw.Flush()
	d := sums["direct"]
	fmt.Println()
	fmt.Println("added over direct (same run):")
	tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "path\tp50\tp90\tp99\tp99.9\t")
	for _, p := range paths[1:] {
		s := sums[p.name]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", p.name, plus(s.p50-d.p50), plus(s.p90-d.p90), plus(s.p99-d.p99), plus(s.p999-d.p999))
	}
	tw.Flush()
	added := sums[paths[1].name].p99 - d.p99
	fmt.Printf("target: added p99 per hop pair <= 0.300 ms: %s (%s)\n\n", verdict(added <= 300*time.Microsecond), plus(added))

	// Saturation: closed loop with wrk, alternating.
	satPer := cfg.satTime / time.Duration(cfg.satRounds)
	fmt.Printf("saturation: wrk -t1 -c%d, %d rounds of %s per proxy, alternating ...\n", cfg.satConns, cfg.satRounds, satPer)
	type sat struct {
		p        *proc
		requests int64
		seconds  float64
		cpu      time.Duration
		bad      int64
		peakRSS  int64
	}
	sats := []*sat{{p: one}, {p: hap}}
	busy1 := machineBusy()
	for range cfg.satRounds {
		for _, s := range sats {
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() { // sample memory under load
				t := time.NewTicker(50 * time.Millisecond)
				defer t.Stop()
				for {
					select {
					case <-stop:
						return
					case <-t.C:
						if rss, _, err := memory(s.p.pid()); err == nil && rss > s.peakRSS {
							s.peakRSS = rss
						}
					}
				}
			})
			cpu0, _ := cpuTime(s.p.pid())
			r, err := runWrk(context.Background(), cfg.wrk, s.p.addr, 1, cfg.satConns, satPer)
			cpu1, _ := cpuTime(s.p.pid())
			close(stop)
			wg.Wait()
			if err != nil {
				return err
			}
			s.requests += r.requests
			s.seconds += r.seconds
			s.cpu += cpu1 - cpu0
			s.bad += r.non2xx + r.errors
		}
	}
	fmt.Printf("machine during the phase: %s busy, load average %s\n", machineBusy().since(busy1), loadavg())
	tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "proxy\trequests\treq/s\tproxy CPU (cores)\treq/s per core\terrors\t")
	perCore := map[*proc]float64{}
	for _, s := range sats {
		perCore[s.p] = float64(s.requests) / s.cpu.Seconds()
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.2f\t%.0f\t%d\t\n", s.p.name, s.requests, float64(s.requests)/s.seconds,
			s.cpu.Seconds()/s.seconds, perCore[s.p], s.bad)
	}
	tw.Flush()
	ratio := perCore[one] / perCore[hap]
	fmt.Printf("target: throughput per core >= HAProxy's: %s (Wharf/HAProxy = %.2f)\n\n", verdict(ratio >= 1), ratio)

	fmt.Println("memory (VmRSS):")
	tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "process\tidle (at start)\tunder load (peak)\tVmHWM at end\t")
	for _, s := range sats {
		_, hwm, _ := memory(s.p.pid())
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", s.p.name, mib(idle[s.p]), mib(s.peakRSS), mib(hwm))
	}
	for _, p := range []*proc{client, server} {
		_, hwm, _ := memory(p.pid())
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", p.name, mib(idle[p]), "-", mib(hwm))
	}
	tw.Flush()
	fmt.Printf("target: idle memory < 20 MiB: %s (%s)\n", verdict(idle[one] < 20<<20), mib(idle[one]))
	return nil
}

func cpuOf(ps []*proc) time.Duration {
	var total time.Duration
	for _, p := range ps {
		c, _ := cpuTime(p.pid())
		total += c
	}
	return total
}

func header(cfg config) {
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	hv, _ := exec.Command(cfg.haproxy, "-v").Output()
	hline, _, _ := strings.Cut(string(hv), "\n")
	fmt.Printf("machine: %d CPUs (%s), Linux %s, %s\n", runtime.NumCPU(), model, strings.TrimSpace(string(kernel)), runtime.Version())
	fmt.Printf("%s\n", hline)
	fmt.Printf("backend: Go net/http on loopback, %d-byte body; Wharf proxies: proxyd GOMAXPROCS=%d; HAProxy: nbthread 1\n\n", cfg.body, cfg.procs)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/1e6) }

func plus(d time.Duration) string { return fmt.Sprintf("%+.3f ms", float64(d)/1e6) }

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// cpuStat is the machine's CPU time from /proc/stat: busy and total ticks.
type cpuStat struct{ busy, total int64 }

func machineBusy() cpuStat {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuStat{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	var s cpuStat
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseInt(f, 10, 64)
		s.total += v
		if i != 3 && i != 4 { // idle, iowait
			s.busy += v
		}
	}
	return s
}

func (s cpuStat) since(o cpuStat) string {
	if s.total == o.total {
		return "?"
	}
	return fmt.Sprintf("%.0f%%", 100*float64(s.busy-o.busy)/float64(s.total-o.total))
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
