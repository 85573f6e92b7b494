package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	httppprof "net/http/pprof"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Memory is the process's memory at one point. Server, embedded etcd and
// hollow agents share the process.
type Memory struct {
	At         string  `json:"at"`
	RSSMiB     float64 `json:"rss_mib"`      // VmRSS
	PeakRSSMiB float64 `json:"peak_rss_mib"` // VmHWM
	// HeapLiveMiB is the Go heap in use right after a collection.
	HeapLiveMiB float64 `json:"heap_live_mib"`
	// GoSysMiB is all memory the Go runtime obtained from the OS.
	GoSysMiB   float64 `json:"go_sys_mib"`
	Goroutines int     `json:"goroutines"`
}

// memory samples the process's memory, collecting garbage first so that
// the heap figure is the live heap.
func memory(at string) Memory {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := Memory{At: at, HeapLiveMiB: mib(ms.HeapInuse), GoSysMiB: mib(ms.Sys), Goroutines: runtime.NumGoroutine()}
	m.RSSMiB, m.PeakRSSMiB = procStatus()
	return m
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// procStatus reads VmRSS and VmHWM of this process in MiB.
func procStatus() (rss, hwm float64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kb, err := strconv.ParseFloat(fields[1], 64)
		if err != nil {
			continue
		}
		switch fields[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			hwm = kb / 1024
		}
	}
	return rss, hwm
}

// cpuTime is the CPU time this process has used, user plus system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// profiler writes CPU, heap, mutex and goroutine profiles into dir.
type profiler struct {
	dir     string
	cpuFile *os.File
	files   []string
}

func newProfiler(dir string) (*profiler, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &profiler{dir: dir}, nil
}

// startCPU starts a CPU profile into name.
func (p *profiler) startCPU(name string) error {
	f, err := os.Create(filepath.Join(p.dir, name))
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return err
	}
	p.cpuFile = f
	p.files = append(p.files, f.Name())
	return nil
}

// stopCPU ends the CPU profile, if one runs.
func (p *profiler) stopCPU() {
	if p.cpuFile == nil {
		return
	}
	pprof.StopCPUProfile()
	p.cpuFile.Close()
	p.cpuFile = nil
}

// write writes the named runtime profile (heap, mutex, goroutine) into
// name; debug as for pprof.Profile.WriteTo.
func (p *profiler) write(profile, name string, debug int) error {
	f, err := os.Create(filepath.Join(p.dir, name))
	if err != nil {
		return err
	}
	defer f.Close()
	if profile == "heap" {
		runtime.GC()
	}
	pr := pprof.Lookup(profile)
	if pr == nil {
		return fmt.Errorf("no %s profile", profile)
	}
	if err := pr.WriteTo(f, debug); err != nil {
		return err
	}
	p.files = append(p.files, f.Name())
	return nil
}

// phaseProfile profiles the first window of a phase: CPU while it runs,
// then the heap and mutex contention when it ends.
type phaseProfile struct {
	p       *profiler
	prefix  string
	window  time.Duration
	started time.Time
	running bool
	err     error
}

func (pp *phaseProfile) start() {
	if pp == nil || pp.running || !pp.started.IsZero() {
		return
	}
	runtime.SetMutexProfileFraction(100)
	pp.started = time.Now()
	if pp.err = pp.p.startCPU(pp.prefix + "-cpu.pprof"); pp.err == nil {
		pp.running = true
	}
}

func (pp *phaseProfile) active() bool { return pp != nil && pp.running }

// maybeStop ends the profile once its window has passed.
func (pp *phaseProfile) maybeStop() {
	if pp != nil && pp.running && time.Since(pp.started) >= pp.window {
		pp.stop()
	}
}

func (pp *phaseProfile) stop() {
	if pp == nil || !pp.running {
		return
	}
	pp.running = false
	pp.p.stopCPU()
	if err := pp.p.write("heap", pp.prefix+"-heap.pprof", 0); err != nil && pp.err == nil {
		pp.err = err
	}
	if err := pp.p.write("mutex", pp.prefix+"-mutex.pprof", 0); err != nil && pp.err == nil {
		pp.err = err
	}
	runtime.SetMutexProfileFraction(0)
}

// servePprof serves net/http/pprof's handlers on addr, which must be a
// loopback address, until the returned function is called.
func servePprof(addr string) (func(), error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("-pprof %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("-pprof %q: give a loopback address such as 127.0.0.1:6060", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", httppprof.Index)
	mux.HandleFunc("/debug/pprof/profile", httppprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", httppprof.Symbol)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return func() { srv.Close() }, nil
}

// WatchStall says whether this process's in-process etcd watch stream is
// stuck: the client's stream loop and the server's send loop both blocked
// sending to each other over the in-process channel adapter (etcd-io/etcd
// issues 18879 and 20716). Minutes is how long the client side has been
// blocked, as the goroutine dump says (0: under a minute).
type WatchStall struct {
	Stalled bool `json:"stalled"`
	Minutes int  `json:"minutes"`
}

// watchStall inspects a goroutine dump of this process.
func watchStall() WatchStall {
	var b strings.Builder
	if p := pprof.Lookup("goroutine"); p != nil {
		p.WriteTo(&b, 2)
	}
	var client, server bool
	minutes := 0
	for _, g := range strings.Split(b.String(), "\n\n") {
		if !strings.Contains(g, "adapter.(*chanStream).SendMsg") {
			continue
		}
		head, _, _ := strings.Cut(g, "\n")
		switch {
		case strings.Contains(g, "watchGRPCStream).run("):
			client = true
			if _, m, ok := strings.Cut(head, ", "); ok {
				fmt.Sscanf(m, "%d minutes", &minutes)
			}
		case strings.Contains(g, "serverWatchStream).sendLoop("):
			server = true
		}
	}
	return WatchStall{Stalled: client && server, Minutes: minutes}
}
