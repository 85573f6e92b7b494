// Package telemetry aggregates the metrics of Service Connect proxies, as
// node agents report them, into the per-service series the control plane
// serves on its /metrics: the sum over all tasks of every series with the
// same name and labels.
package telemetry

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/wharfhq/wharf/internal/api/agentapi"
)

// Defaults of Config.
const (
	DefaultExpiry            = 60 * time.Second
	DefaultMaxSeriesPerProxy = 5000
)

// Config configures an Aggregator.
type Config struct {
	// Expiry: a source (container instance) that has not reported for this
	// long has all its proxies retired. Default 60 s.
	Expiry time.Duration
	Now    func() time.Time // default time.Now
	// MaxSeriesPerProxy bounds what one proxy may contribute (default
	// 5000); beyond it the proxy's report is refused.
	MaxSeriesPerProxy int
}

// Aggregator sums the metrics of many proxies. Safe for concurrent use.
//
// Counters and histograms never go back in the sum: when a proxy is retired
// (left out of its source's next report, its source expired, or it moved
// to another source) or restarts (a counter went down), its last values are
// folded into a per-series retired accumulator that stays in the sum.
// Gauges and untyped series of a retired proxy disappear. A retired proxy
// reported again without a restart (its source comes back after the
// expiry) adds its cumulative counters on top of what was folded, counting
// them twice: the expiry should be well above the agents' report interval.
type Aggregator struct {
	expiry    time.Duration
	now       func() time.Time
	maxSeries int

	mu       sync.Mutex
	sources  map[string]*reporter   // by container instance ARN
	proxies  map[string]*proxyState // by task ARN
	retired  map[string]sample      // folded counters, by series key
	families map[string]family      // the last type and help seen, by name
}

// reporter is a source: when it last reported, and the tasks whose
// proxies it reports.
type reporter struct {
	seen  time.Time
	tasks map[string]struct{}
}

// proxyState is what a task's proxy reported last.
type proxyState struct {
	source  string
	samples map[string]sample
}

// New returns an empty Aggregator.
func New(cfg Config) *Aggregator {
	a := &Aggregator{
		expiry:    cfg.Expiry,
		now:       cfg.Now,
		maxSeries: cfg.MaxSeriesPerProxy,
		sources:   make(map[string]*reporter),
		proxies:   make(map[string]*proxyState),
		retired:   make(map[string]sample),
		families:  make(map[string]family),
	}
	if a.expiry <= 0 {
		a.expiry = DefaultExpiry
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.maxSeries <= 0 {
		a.maxSeries = DefaultMaxSeriesPerProxy
	}
	return a
}

// Report replaces what source (a container instance ARN) reported before:
// proxies absent from this report are retired. It returns an error that
// names each proxy whose text could not be parsed (those proxies keep their
// previous values); the others are applied.
func (a *Aggregator) Report(source string, proxies []agentapi.ProxyMetrics) error {
	if source == "" {
		return errors.New("metrics report without a container instance")
	}
	var errs []error
	parsed := make(map[string]*text, len(proxies))
	seen := make(map[string]struct{}, len(proxies))
	for _, pm := range proxies {
		if _, dup := seen[pm.TaskArn]; dup || pm.TaskArn == "" {
			errs = append(errs, fmt.Errorf("proxy of task %q: empty or repeated task ARN", pm.TaskArn))
			continue
		}
		seen[pm.TaskArn] = struct{}{}
		t, err := parse(pm.Metrics, a.maxSeries)
		if err != nil {
			errs = append(errs, fmt.Errorf("proxy of task %s: %w", pm.TaskArn, err))
			continue
		}
		parsed[pm.TaskArn] = t
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	a.expire(now)
	src := a.sources[source]
	if src == nil {
		src = &reporter{tasks: make(map[string]struct{})}
		a.sources[source] = src
	}
	src.seen = now
	for arn := range src.tasks {
		if _, ok := seen[arn]; !ok {
			a.retire(arn)
		}
	}
	for arn, t := range parsed {
		p := a.proxies[arn]
		if p != nil && p.source != source {
			a.retire(arn)
			p = nil
		}
		if p == nil {
			p = &proxyState{source: source}
			a.proxies[arn] = p
			src.tasks[arn] = struct{}{}
		}
		a.update(p, t)
		for name, f := range t.families {
			if f.help == "" {
				f.help = a.families[name].help
			}
			a.families[name] = f
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("metrics report from %s: %w", source, errors.Join(errs...))
	}
	return nil
}

// update replaces a proxy's samples with t's. If a counter went down the
// proxy restarted: all its previous counters are folded. Otherwise only the
// counters t no longer has are.
func (a *Aggregator) update(p *proxyState, t *text) {
	restarted := false
	for k, old := range p.samples {
		if s, ok := t.samples[k]; ok && old.cumulative && s.value < old.value {
			restarted = true
			break
		}
	}
	for k, old := range p.samples {
		if _, ok := t.samples[k]; restarted || !ok {
			a.fold(old)
		}
	}
	p.samples = t.samples
}

// retire removes a proxy, folding its counters.
func (a *Aggregator) retire(arn string) {
	p := a.proxies[arn]
	if p == nil {
		return
	}
	for _, s := range p.samples {
		a.fold(s)
	}
	delete(a.proxies, arn)
	if src := a.sources[p.source]; src != nil {
		delete(src.tasks, arn)
	}
}

func (a *Aggregator) fold(s sample) {
	if !s.cumulative {
		return
	}
	r := a.retired[s.key]
	a.retired[s.key] = sample{s.series, r.value + s.value}
}

// expire retires the proxies of sources that have not reported for the
// expiry.
func (a *Aggregator) expire(now time.Time) {
	for name, src := range a.sources {
		if now.Sub(src.seen) < a.expiry {
			continue
		}
		for arn := range src.tasks {
			a.retire(arn)
		}
		delete(a.sources, name)
	}
}

// WriteTo writes the aggregate in the Prometheus text format 0.0.4.
func (a *Aggregator) WriteTo(w io.Writer) (int64, error) {
	a.mu.Lock()
	a.expire(a.now())
	sum := make(map[string]sample, len(a.retired))
	add := func(samples map[string]sample) {
		for k, s := range samples {
			if t, ok := sum[k]; ok {
				s.value += t.value
			}
			sum[k] = s
		}
	}
	add(a.retired)
	for _, p := range a.proxies {
		add(p.samples)
	}
	families := make(map[string]family, len(a.families))
	for _, s := range sum {
		families[s.family] = a.families[s.family]
	}
	a.mu.Unlock()
	return writeText(w, families, sum)
}

// Handler serves WriteTo.
func (a *Aggregator) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		a.WriteTo(w)
	})
}
