package apibench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"text/tabwriter"
)

// Report is the machine-readable result of a run.
type Report struct {
	Machine Machine  `json:"machine"`
	Config  any      `json:"config"` // the benchmark's own settings
	Results []Result `json:"results"`
	Ratios  []Ratio  `json:"ratios"`
}

// Machine describes where the run happened.
type Machine struct {
	CPU    string `json:"cpu"`
	NumCPU int    `json:"num_cpu"`
	Load   string `json:"loadavg_at_start"` // /proc/loadavg: other work skews the figures
	OS     string `json:"os"`
	Go     string `json:"go"`
	Moto   string `json:"moto"`
}

// Result is one operation measured against one system.
type Result struct {
	System     string   `json:"system"`
	Operation  string   `json:"operation"`
	OK         int      `json:"ok"`
	Errors     int      `json:"errors"`
	ElapsedS   float64  `json:"elapsed_s"`
	PerSecond  float64  `json:"requests_per_s"`
	P50ms      float64  `json:"p50_ms"`
	P99ms      float64  `json:"p99_ms"`
	ErrorsSeen []string `json:"errors_seen,omitempty"`
}

// Ratio compares Wharf with moto on one operation: throughput above 1 and
// p99 below 1 favour Wharf.
type Ratio struct {
	Operation  string  `json:"operation"`
	Throughput float64 `json:"throughput_wharf_over_moto"`
	P99        float64 `json:"p99_wharf_over_moto"`
}

func Ratios(results []Result) []Ratio {
	find := func(sys, op string) *Result {
		for i := range results {
			if results[i].System == sys && results[i].Operation == op {
				return &results[i]
			}
		}
		return nil
	}
	var out []Ratio
	for _, r := range results {
		if r.System != "wharf" {
			continue
		}
		m := find("moto", r.Operation)
		if m == nil {
			continue
		}
		out = append(out, Ratio{Operation: r.Operation, Throughput: div(r.PerSecond, m.PerSecond), P99: div(r.P99ms, m.P99ms)})
	}
	return out
}

func div(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// PrintTable writes the report for people: the machine, settings (a line
// describing rep.Config), each result and the ratios.
func PrintTable(out io.Writer, rep *Report, settings string) {
	m := rep.Machine
	fmt.Fprintf(out, "%s, %d CPUs, %s, %s, moto %s; load average at start %s\n", m.CPU, m.NumCPU, m.OS, m.Go, m.Moto, m.Load)
	fmt.Fprintf(out, "%s\n\n", settings)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "system\toperation\treq/s\tp50 ms\tp99 ms\terrors\t")
	for _, r := range rep.Results {
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.2f\t%.2f\t%d\t\n", r.System, r.Operation, r.PerSecond, r.P50ms, r.P99ms, r.Errors)
	}
	tw.Flush()
	fmt.Fprintln(out)
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "operation\twharf/moto req/s\twharf/moto p99\t")
	for _, r := range rep.Ratios {
		fmt.Fprintf(tw, "%s\t%.2fx\t%.2fx\t\n", r.Operation, r.Throughput, r.P99)
	}
	tw.Flush()
	for _, r := range rep.Results {
		for _, e := range r.ErrorsSeen {
			fmt.Fprintf(out, "\n%s %s error: %s", r.System, r.Operation, e)
		}
	}
	fmt.Fprintln(out)
}

func Host(python string) Machine {
	m := Machine{NumCPU: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, Go: runtime.Version(), CPU: "unknown CPU"}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.Load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	if b, err := exec.Command(python, "-c", "import moto; print(moto.__version__)").Output(); err == nil {
		m.Moto = strings.TrimSpace(string(b))
	}
	return m
}
