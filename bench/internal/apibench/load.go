package apibench

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/aws/smithy-go"
)

// iteration is one unit of a phase's work; it reports each call it makes.
type Iteration func(ctx context.Context, i int, rec Recorder)

type Recorder func(op string, d time.Duration, err error)

// phaseStats gathers the calls of one phase by operation.
type PhaseStats struct {
	mu    sync.Mutex
	order []string
	ops   map[string]*opStats
}

type opStats struct {
	lat    []time.Duration // of successful calls
	errors int
	seen   map[string]int // error messages, to show a few
}

func (p *PhaseStats) add(op string, d time.Duration, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	o := p.ops[op]
	if o == nil {
		o = &opStats{seen: map[string]int{}}
		p.ops[op] = o
		p.order = append(p.order, op)
	}
	if err != nil {
		o.errors++
		msg := errorKind(err)
		if _, ok := o.seen[msg]; ok || len(o.seen) < 5 {
			o.seen[msg]++
		}
		return
	}
	o.lat = append(o.lat, d)
}

var requestID = regexp.MustCompile(`RequestID: [^,]*, `)

// errorKind names an error without what differs between requests.
func errorKind(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode() + ": " + apiErr.ErrorMessage()
	}
	return requestID.ReplaceAllString(err.Error(), "")
}

func NewPhaseStats() *PhaseStats { return &PhaseStats{ops: map[string]*opStats{}} }

// drive runs iter from workers goroutines until dur has passed or n
// iterations have started, adds the calls to stats and returns the elapsed
// time.
func Drive(ctx context.Context, workers int, dur time.Duration, n int, iter Iteration, stats *PhaseStats) time.Duration {
	var (
		mu   sync.Mutex
		next int
		wg   sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(dur)
	claim := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if next >= n || ctx.Err() != nil || time.Now().After(deadline) {
			return 0, false
		}
		next++
		return next - 1, true
	}
	for range workers {
		wg.Go(func() {
			for {
				i, ok := claim()
				if !ok {
					return
				}
				iter(ctx, i, stats.add)
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

// Results are the phase's results on system sys, over elapsed, one per
// operation in the order they were first seen.
func (p *PhaseStats) Results(sys string, elapsed time.Duration) []Result {
	var out []Result
	for _, op := range p.order {
		out = append(out, p.ops[op].result(sys, op, elapsed))
	}
	return out
}

func (o *opStats) result(sys, op string, elapsed time.Duration) Result {
	slices.Sort(o.lat)
	r := Result{
		System: sys, Operation: op, OK: len(o.lat), Errors: o.errors,
		ElapsedS:  elapsed.Seconds(),
		PerSecond: float64(len(o.lat)) / elapsed.Seconds(),
		P50ms:     ms(percentile(o.lat, 0.50)),
		P99ms:     ms(percentile(o.lat, 0.99)),
	}
	for msg, k := range o.seen {
		r.ErrorsSeen = append(r.ErrorsSeen, fmt.Sprintf("%dx %s", k, msg))
	}
	slices.Sort(r.ErrorsSeen)
	return r
}

// percentile returns the q-quantile of sorted samples (nearest rank).
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Load is how hard and how long each phase drives each system.
type Load struct {
	Workers  int
	Warmup   time.Duration // per system, not measured
	Duration time.Duration // per system in all, at most
	Requests int           // iterations per system in all, at most
	Rounds   int           // slices alternating between the systems
}

// Measure runs one phase: a warm-up on each system, then l.Rounds rounds
// in which the systems take turns, so that other load on the machine falls
// on all alike. iter gives the i-th system's iteration; the results name
// it systems[i].
func Measure(ctx context.Context, l Load, systems []string, iter func(i int) Iteration) ([]Result, error) {
	stats := make([]*PhaseStats, len(systems))
	elapsed := make([]time.Duration, len(systems))
	for i := range systems {
		stats[i] = NewPhaseStats()
		if l.Warmup > 0 {
			Drive(ctx, l.Workers, l.Warmup, l.Requests, iter(i), NewPhaseStats())
		}
	}
	for r := range l.Rounds {
		dur := l.Duration / time.Duration(l.Rounds)
		n := l.Requests / l.Rounds
		if r < l.Requests%l.Rounds {
			n++
		}
		for i := range systems {
			elapsed[i] += Drive(ctx, l.Workers, dur, n, iter(i), stats[i])
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var results []Result
	for i, name := range systems {
		results = append(results, stats[i].Results(name, elapsed[i])...)
	}
	return results, nil
}
