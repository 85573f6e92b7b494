package main

import (
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
)

// Report is the machine-readable result of a run.
type Report struct {
	Machine      Machine        `json:"machine"`
	Config       Settings       `json:"config"`
	Store        *StoreProbe    `json:"store_probe,omitempty"`
	Registration *Registration  `json:"registration,omitempty"`
	Service      *ServiceResult `json:"service,omitempty"`
	RunTask      *RunTaskResult `json:"runtask,omitempty"`
	Memory       []Memory       `json:"memory"`
	OutDir       string         `json:"out_dir"`
	Profiles     []string       `json:"profiles"`
	Errors       []string       `json:"errors,omitempty"`
	TotalS       float64        `json:"total_s"`
}

// Machine says where the run happened.
type Machine struct {
	CPU        string  `json:"cpu"`
	NumCPU     int     `json:"num_cpu"`
	GOMAXPROCS int     `json:"gomaxprocs"`
	MemGiB     float64 `json:"mem_gib"`
	Load       string  `json:"loadavg_at_start"`
	LoadEnd    string  `json:"loadavg_at_end"`
	OS         string  `json:"os"`
	Go         string  `json:"go"`
	Commit     string  `json:"commit"`
}

// Settings are the run's parameters.
type Settings struct {
	Nodes          int     `json:"nodes"`
	Tasks          int     `json:"tasks"`
	TimeoutS       float64 `json:"timeout_s"`
	NodeCPU        int     `json:"node_cpu"`
	NodeMemoryMiB  int     `json:"node_memory_mib"`
	TaskCPU        int     `json:"task_cpu"`
	TaskMemoryMiB  int     `json:"task_memory_mib"`
	StartDelayS    float64 `json:"start_delay_s"`
	HealthyAfterS  float64 `json:"healthy_after_s"`
	SampleS        float64 `json:"sample_s"`
	RunTaskS       float64 `json:"runtask_s"`
	RunTaskNodes   int     `json:"runtask_nodes"`
	RunTaskClients int     `json:"runtask_clients"`
}

// Registration is how long N agents took to join.
type Registration struct {
	Nodes       int     `json:"nodes"`
	RegisteredS float64 `json:"registered_s"` // every agent has its instance ARN
	ConnectedS  float64 `json:"connected_s"`  // the server shows every instance agentConnected
	PerS        float64 `json:"registered_per_s"`
	CPUSeconds  float64 `json:"cpu_s"`
}

func (r *Report) print(w io.Writer) {
	m, c := r.Machine, r.Config
	fmt.Fprintf(w, "Wharf scale: %d hollow nodes (%d CPU, %d MiB each), one service 0 -> %d tasks (%d CPU, %d MiB)\n",
		c.Nodes, c.NodeCPU, c.NodeMemoryMiB, c.Tasks, c.TaskCPU, c.TaskMemoryMiB)
	fmt.Fprintf(w, "%s, %d CPUs (GOMAXPROCS %d), %.1f GiB, load %s; %s %s; commit %s\n",
		m.CPU, m.NumCPU, m.GOMAXPROCS, m.MemGiB, m.Load, m.Go, m.OS, m.Commit)
	fmt.Fprintf(w, "server, embedded etcd, agents and client in one process; no request limits; healthy %gs after RUNNING; container start delay %gs\n\n",
		c.HealthyAfterS, c.StartDelayS)

	if p := r.Store; p != nil {
		fmt.Fprintf(w, "Store probe    read-compare-write commits: one at a time p50 %.1f ms, p99 %.1f ms = %.0f/s; %d at once %.0f/s\n",
			p.SerialP50ms, p.SerialP99ms, p.SerialPerS, p.Parallel, p.ParallelPerS)
	}
	if g := r.Registration; g != nil {
		fmt.Fprintf(w, "Registration   %d agents registered in %.1f s (%.0f/s); all agentConnected after %.1f s; %.1f CPU-s\n",
			g.Nodes, g.RegisteredS, g.PerS, g.ConnectedS, g.CPUSeconds)
	}
	if s := r.Service; s != nil {
		r.printService(w, s)
	}
	if t := r.RunTask; t != nil {
		fmt.Fprintf(w, "\nRunTask        cluster of %d nodes (connected in %.1f s); %d client(s) x RunTask(count=10) for %.1f s\n", t.Nodes, t.RegisterS, t.Clients, t.DurationS)
		fmt.Fprintf(w, "  placed       %d tasks in %d calls: %.0f tasks/s; call p50 %.0f ms, p99 %.0f ms, max %.0f ms; %d errors, %d placement failures\n",
			t.Placed, t.Calls, t.PlacedPS, t.P50ms, t.P99ms, t.MaxMs, t.Errors, t.Failures)
		fmt.Fprintf(w, "  running      %d of %d within 15 s; createdAt -> startedAt p50 %.0f ms, p99 %.0f ms\n", t.Running, t.Placed, t.ToRunningP50ms, t.ToRunningP99ms)
		if t.WatchStall.Stalled {
			fmt.Fprintf(w, "  DIAGNOSIS    the in-process etcd watch stream is still deadlocked: agents learn of new tasks only when a poll times out (90 s)\n")
		}
		for _, e := range t.ErrorSeen {
			fmt.Fprintf(w, "  error seen   %s\n", e)
		}
	}

	if len(r.Memory) > 0 {
		fmt.Fprintf(w, "\nMemory (whole process)\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "  \tVmRSS MiB\tVmHWM MiB\tlive heap MiB\tGo sys MiB\tgoroutines\t")
		for _, x := range r.Memory {
			fmt.Fprintf(tw, "  %s\t%.0f\t%.0f\t%.0f\t%.0f\t%d\t\n", x.At, x.RSSMiB, x.PeakRSSMiB, x.HeapLiveMiB, x.GoSysMiB, x.Goroutines)
		}
		tw.Flush()
		idle, agents := find(r.Memory, "server idle"), find(r.Memory, "agents registered")
		if idle != nil && agents != nil && c.Nodes > 0 {
			n := float64(c.Nodes)
			fmt.Fprintf(w, "  per node (agent and its server-side poll, watch and records): RSS +%.0f MiB = %.0f KiB/node, live heap +%.0f MiB = %.0f KiB/node, %.1f goroutines/node\n",
				agents.RSSMiB-idle.RSSMiB, (agents.RSSMiB-idle.RSSMiB)*1024/n, agents.HeapLiveMiB-idle.HeapLiveMiB, (agents.HeapLiveMiB-idle.HeapLiveMiB)*1024/n,
				float64(agents.Goroutines-idle.Goroutines)/n)
		}
	}
	if len(r.Profiles) > 0 {
		fmt.Fprintf(w, "\nProfiles in %s: ", r.OutDir)
		var names []string
		for _, p := range r.Profiles {
			names = append(names, filepath.Base(p))
		}
		fmt.Fprintf(w, "%s\n  go tool pprof -top %s\n", strings.Join(names, ", "), filepath.Join(r.OutDir, "scaleup-cpu.pprof"))
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
	fmt.Fprintf(w, "total %.0f s; load average at the end %s (other work on the machine skews the figures)\n", r.TotalS, r.Machine.LoadEnd)
}

func (r *Report) printService(w io.Writer, s *ServiceResult) {
	fmt.Fprintf(w, "\nService        UpdateService(desiredCount %d) took %.0f ms; phase %.1f s", s.Desired, s.UpdateCallS*1000, s.PhaseS)
	if s.TimedOut {
		fmt.Fprintf(w, ", CUT SHORT by the deadline")
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  placed       %d of %d; first %.2f s, last %.1f s after the update; mean %.0f/s, best 1 s %.0f/s, best 10 s %.0f/s\n",
		s.Placed, s.Desired, s.FirstPlacedS, s.LastPlacedS, s.MeanPlacedPerS, s.PeakPlacedPerS, s.Peak10sPerS)
	fmt.Fprintf(w, "  running      %d; first %.2f s, last %.1f s\n", s.Running, s.FirstRunningS, s.LastRunningS)
	if s.SteadyS >= 0 {
		fmt.Fprintf(w, "  steady state event at %.1f s; rollout %s\n", s.SteadyS, s.RolloutState)
	} else {
		fmt.Fprintf(w, "  steady state not reached; rollout %s\n", s.RolloutState)
	}
	if len(s.TasksPerAZ) > 0 {
		var zones []string
		for z := range s.TasksPerAZ {
			zones = append(zones, z)
		}
		slices.Sort(zones)
		var parts []string
		for _, z := range zones {
			parts = append(parts, fmt.Sprintf("%s %d", z, s.TasksPerAZ[z]))
		}
		fmt.Fprintf(w, "  balance      per AZ: %s (max-min %d); per instance %d..%d\n", strings.Join(parts, ", "), s.AZSpread, s.InstanceMin, s.InstanceMax)
	}
	if s.PhaseS > 0 {
		fmt.Fprintf(w, "  CPU          %.0f CPU-s in %.0f s (%.2f cores busy); %.1f CPU-s per 1,000 placements\n", s.CPUSeconds, s.PhaseS, s.CPUSeconds/s.PhaseS, s.CPUsPer1000)
	}
	if s.WatchStall.Stalled {
		fmt.Fprintf(w, "  DIAGNOSIS    the server's in-process etcd watch stream is deadlocked (blocked %d+ min): client run loop and server send loop\n"+
			"               both stuck in adapter.chanStream.SendMsg (etcd-io/etcd#18879, #20716); every Poll, the controller's and the\n"+
			"               agent monitor's watches hang until the process restarts\n", s.WatchStall.Minutes)
	}
	fmt.Fprintf(w, "  sampling     %d DescribeServices calls, p50 %.0f ms, max %.0f ms, %d failed\n", len(s.Samples)+s.SampleFailures, s.SampleP50ms, s.SampleMaxMs, s.SampleFailures)
	if s.Placed > 0 && r.Store != nil && s.LastPlacedS > 0 {
		fmt.Fprintf(w, "  ratio        mean placements/s over one-at-a-time store commits/s (same run): %.3f\n", s.MeanPlacedPerS/r.Store.SerialPerS)
	}
	if s.Note != "" {
		fmt.Fprintf(w, "  note: %s (%s)\n", s.Note, s.CollectErrorS)
	}
	curve := s.Curve
	source := "the tasks' createdAt / startedAt"
	if len(curve) == 0 {
		curve, source = s.Samples, "DescribeServices samples"
	}
	if len(curve) == 0 {
		return
	}
	fmt.Fprintf(w, "  over time (from %s):\n", source)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "    t s\tplaced\trunning\tplaced/s in step\t")
	step := stepFor(curve[len(curve)-1].T)
	prevT, prev := 0.0, 0
	next := step
	for i, p := range curve {
		if p.T+1e-9 < next && i != len(curve)-1 {
			continue
		}
		rate := float64(p.Placed-prev) / math.Max(p.T-prevT, 1e-9)
		fmt.Fprintf(tw, "    %.0f\t%d\t%d\t%.0f\t\n", p.T, p.Placed, p.Running, rate)
		prevT, prev = p.T, p.Placed
		for next <= p.T+1e-9 {
			next += step
		}
	}
	tw.Flush()
}

// stepFor picks a print interval giving at most about 20 rows.
func stepFor(total float64) float64 {
	for _, s := range []float64{1, 2, 5, 10, 15, 30, 60, 120} {
		if total/s <= 20 {
			return s
		}
	}
	return 300
}

func find(ms []Memory, part string) *Memory {
	for i := range ms {
		if strings.Contains(ms[i].At, part) {
			return &ms[i]
		}
	}
	return nil
}
