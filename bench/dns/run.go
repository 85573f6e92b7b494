package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	wdns "github.com/wharfhq/wharf/internal/dns"
	"github.com/wharfhq/wharf/internal/store"
)

// Result is what a run measured.
type Result struct {
	Config      Config `json:"config"`
	Instances   int    `json:"instances"`
	Zones       int    `json:"zones"`
	Queries     int    `json:"queries"`
	CPUs        int    `json:"cpus"`
	GoVersion   string `json:"go"`
	NSDVersion  string `json:"nsd_version"`
	PerfVersion string `json:"dnsperf_version"`

	LoadAvg [2]string `json:"loadavg"` // /proc/loadavg's 1-minute figure before and after the measurements

	StoreLoad  time.Duration `json:"store_load"`  // writing the records into etcd
	WharfReady time.Duration `json:"wharf_ready"` // New → Ready: listing and indexing them
	IndexHeap  int64         `json:"index_heap"`  // live heap the DNS server added, after GC
	ProcessRSS int64         `json:"process_rss"` // this process: Wharf DNS + embedded etcd + the bench
	NSDRSS     int64         `json:"nsd_rss"`     // nsd's processes, summed

	Wharf       perf   `json:"wharf"`
	NSD         perf   `json:"nsd"`
	WharfRounds []perf `json:"wharf_rounds"`
	NSDRounds   []perf `json:"nsd_rounds"`
	WharfLat    perf   `json:"wharf_latency"`
	NSDLat      perf   `json:"nsd_latency"`
}

// Run sets both servers up, measures them and tears them down; progress
// goes to log.
func Run(ctx context.Context, cfg Config, log io.Writer) (*Result, error) {
	perfBin, err := exec.LookPath("dnsperf")
	if err != nil {
		return nil, errors.New("dnsperf not found: apt-get install dnsperf")
	}
	if _, err := exec.LookPath("nsd"); err != nil {
		return nil, errors.New("nsd not found: apt-get install nsd")
	}
	l := layout{namespaces: cfg.Namespaces, services: cfg.Services, instances: cfg.Instances}
	res := &Result{Config: cfg, Instances: l.total(), Zones: l.namespaces, CPUs: runtime.NumCPU(), GoVersion: runtime.Version(),
		NSDVersion: version("nsd", "-v"), PerfVersion: version("dnsperf", "-h")}
	dir, err := os.MkdirTemp("", "wharf-bench-dns-")
	if err != nil {
		return nil, err
	}
	if cfg.Keep {
		fmt.Fprintf(log, "keeping %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}

	fmt.Fprintf(log, "starting the embedded store and writing %d instances\n", l.total())
	st, err := store.Open(ctx, store.Config{DataDir: filepath.Join(dir, "store")})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	start := time.Now()
	if err := l.load(ctx, st); err != nil {
		return nil, fmt.Errorf("write records: %w", err)
	}
	res.StoreLoad = time.Since(start)

	// The DNS server's own memory: live heap after GC, before and after.
	before := liveHeap()
	start = time.Now()
	srv, err := wdns.New(wdns.Config{Store: st, Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(sctx) }()
	defer func() {
		stop()
		<-done
	}()
	select {
	case <-srv.Ready():
	case err := <-done:
		return nil, fmt.Errorf("wharf dns: %w", err)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	res.WharfReady = time.Since(start)
	res.IndexHeap = liveHeap() - before
	fmt.Fprintf(log, "wharf dns on %s, ready in %v\n", srv.Addr(), res.WharfReady.Round(time.Millisecond))

	zones, err := l.writeZones(dir, 1)
	if err != nil {
		return nil, err
	}
	n, err := startNSD(ctx, dir, zones)
	if err != nil {
		return nil, err
	}
	defer n.stop()
	fmt.Fprintf(log, "nsd on %s\n", n.addr)

	if err := sameAnswers(l, srv.Addr(), n.addr); err != nil {
		return nil, err
	}
	queries := filepath.Join(dir, "queries.txt")
	res.Queries = 100_000
	if err := l.writeQueries(queries, res.Queries); err != nil {
		return nil, err
	}
	runFor := func(name, addr string, d time.Duration, rate int, verbose bool, tag string) (perf, error) {
		fmt.Fprintf(log, "dnsperf %-5s %-10s %v\n", name, tag, d)
		return dnsperfRun{
			bin: perfBin, addr: addr, queries: queries, duration: d,
			clients: cfg.Clients, q: cfg.Outstanding, t: cfg.Threads, rate: rate, verbose: verbose,
			out: filepath.Join(dir, fmt.Sprintf("dnsperf-%s-%s.txt", name, tag)),
		}.run(ctx)
	}
	res.LoadAvg[0] = loadAvg()
	servers := []struct{ name, addr string }{{"wharf", srv.Addr()}, {"nsd", n.addr}}
	for _, s := range servers {
		if _, err := runFor(s.name, s.addr, time.Second, 0, false, "warmup"); err != nil {
			return nil, err
		}
	}
	for round := range cfg.Rounds {
		order := servers
		if round%2 == 1 {
			order = []struct{ name, addr string }{servers[1], servers[0]}
		}
		for _, s := range order {
			stopProfile, err := startProfile(cfg.CPUProfile, s.name == "wharf")
			if err != nil {
				return nil, err
			}
			p, err := runFor(s.name, s.addr, cfg.Duration, 0, false, fmt.Sprintf("round%d", round+1))
			stopProfile()
			if err != nil {
				return nil, err
			}
			if s.name == "wharf" {
				res.WharfRounds = append(res.WharfRounds, p)
			} else {
				res.NSDRounds = append(res.NSDRounds, p)
			}
		}
	}
	res.Wharf, res.NSD = combine(res.WharfRounds), combine(res.NSDRounds)
	if res.WharfLat, err = runFor("wharf", srv.Addr(), cfg.LatencyTime, cfg.Rate, true, "latency"); err != nil {
		return nil, err
	}
	if res.NSDLat, err = runFor("nsd", n.addr, cfg.LatencyTime, cfg.Rate, true, "latency"); err != nil {
		return nil, err
	}
	res.LoadAvg[1] = loadAvg()
	res.ProcessRSS, _ = selfRSS()
	res.NSDRSS = n.rss()
	return res, nil
}

// liveHeap is the heap in use after a full collection.
func liveHeap() int64 {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// sameAnswers checks that both servers hold the same records: the A and
// SRV sets of some services (Wharf shuffles, so compare as sets) and a
// target address.
func sameAnswers(l layout, wharf, nsd string) error {
	r := rand.New(rand.NewPCG(3, 4))
	ask := func(addr, name string, qtype uint16) ([]string, error) {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		resp, _, err := (&dns.Client{Net: "tcp", Timeout: 2 * time.Second}).Exchange(m, addr)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, rr := range resp.Answer {
			out = append(out, strings.TrimPrefix(rr.String(), rr.Header().String()))
		}
		slices.Sort(out)
		return out, nil
	}
	for range 50 {
		z, s := r.IntN(l.namespaces), r.IntN(l.services)
		for _, q := range []struct {
			name  string
			qtype uint16
		}{{l.fqdn(z, s), dns.TypeA}, {l.fqdn(z, s), dns.TypeSRV}, {l.target(z, s, r.IntN(l.instances)), dns.TypeA}} {
			a, err := ask(wharf, q.name, q.qtype)
			if err != nil {
				return fmt.Errorf("ask wharf %s: %w", q.name, err)
			}
			b, err := ask(nsd, q.name, q.qtype)
			if err != nil {
				return fmt.Errorf("ask nsd %s: %w", q.name, err)
			}
			if l.instances <= 8 && !slices.Equal(a, b) {
				return fmt.Errorf("%s %s: wharf answers %q, nsd %q", q.name, dns.TypeToString[q.qtype], a, b)
			}
			if len(a) == 0 {
				return fmt.Errorf("%s %s: no answer", q.name, dns.TypeToString[q.qtype])
			}
		}
	}
	return nil
}

func version(bin string, arg string) string {
	out, _ := exec.Command(bin, arg).CombinedOutput()
	for line := range strings.SplitSeq(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "Version "); ok {
			return strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "NSD version "); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// startProfile starts a CPU profile into path when on and path is set; the
// profile of several runs is the last one's.
func startProfile(path string, on bool) (stop func(), err error) {
	if path == "" || !on {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// loadAvg is the 1-minute load average, which says whether other work
// shared the machine; "" where there is no /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}
