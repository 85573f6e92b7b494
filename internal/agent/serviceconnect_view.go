package agent

import (
	"context"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wharfhq/wharf/internal/api/agentapi"
)

// scRegistry is the agent's Service Connect state: the tasks, the views of
// their namespaces, and the proxies' latest metrics.
type scRegistry struct {
	mu    sync.Mutex
	tasks map[string]*scTask // by task ARN
	// views are the namespaces' latest views by ARN; a namespace is
	// present once its view has arrived.
	views map[string]*agentapi.NamespaceView
	// trust is the certificate authority's bundle the last view carried.
	trust string
	// viewed is closed and replaced whenever views change.
	viewed chan struct{}
	// changed holds a signal when the set of tasks changed.
	changed chan struct{}
	metrics map[string]string // by task ARN
}

func newSCRegistry() *scRegistry {
	return &scRegistry{
		tasks:   map[string]*scTask{},
		views:   map[string]*agentapi.NamespaceView{},
		viewed:  make(chan struct{}),
		changed: make(chan struct{}, 1),
		metrics: map[string]string{},
	}
}

func (r *scRegistry) add(t *scTask) {
	r.mu.Lock()
	r.tasks[t.m.task.TaskArn] = t
	r.mu.Unlock()
	r.signal()
}

func (r *scRegistry) remove(t *scTask) {
	r.mu.Lock()
	if r.tasks[t.m.task.TaskArn] == t {
		delete(r.tasks, t.m.task.TaskArn)
		delete(r.metrics, t.m.task.TaskArn)
	}
	r.mu.Unlock()
	r.signal()
}

// all returns the Service Connect tasks.
func (r *scRegistry) all() []*scTask {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Collect(maps.Values(r.tasks))
}

func (r *scRegistry) signal() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// namespaces returns the sorted namespace ARNs of the tasks.
func (r *scRegistry) namespaces() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, t := range r.tasks {
		if !slices.Contains(out, t.conf.Namespace) {
			out = append(out, t.conf.Namespace)
		}
	}
	slices.Sort(out)
	return out
}

// view returns a namespace's view, the trust bundle, whether the view has
// arrived, and a channel closed at the next change of the views.
func (r *scRegistry) view(ns string) (*agentapi.NamespaceView, string, bool, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.views[ns]
	return v, r.trust, ok, r.viewed
}

// update stores the views of the namespaces asked for (a namespace the
// answer leaves out has no client-server service) and re-renders every
// task of them.
func (r *scRegistry) update(asked []string, resp *agentapi.ServiceConnectViewResponse) {
	r.mu.Lock()
	clear(r.views)
	for _, ns := range asked {
		r.views[ns] = &agentapi.NamespaceView{Arn: ns}
	}
	for i := range resp.Namespaces {
		if v := &resp.Namespaces[i]; slices.Contains(asked, v.Arn) {
			r.views[v.Arn] = v
		}
	}
	views := maps.Clone(r.views)
	if resp.TrustBundle != "" {
		r.trust = resp.TrustBundle
	}
	trust := r.trust
	close(r.viewed)
	r.viewed = make(chan struct{})
	tasks := slices.Collect(maps.Values(r.tasks))
	r.mu.Unlock()
	for _, t := range tasks {
		if v := views[t.conf.Namespace]; v != nil {
			t.refresh(v, trust)
		}
	}
}

// followServiceConnect keeps the views of the Service Connect tasks'
// namespaces current with one long-poll of the control plane, restarted
// when the set of namespaces changes, until ctx ends.
func (a *Agent) followServiceConnect(ctx context.Context) {
	r := a.sc
	var index int64
	var asked []string
	const minDelay = 500 * time.Millisecond
	delay := minDelay
	pause := func(d time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case <-r.changed:
			r.signal() // looked at again by the loop
		case <-time.After(d):
		}
		return true
	}
	for ctx.Err() == nil {
		nss := r.namespaces()
		if !slices.Equal(nss, asked) {
			asked, index = nss, 0 // a new namespace's view is wanted at once
		}
		if len(nss) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-r.changed:
			}
			continue
		}
		pctx, cancel := context.WithCancel(ctx)
		type answer struct {
			resp *agentapi.ServiceConnectViewResponse
			err  error
		}
		answers := make(chan answer, 1)
		began := time.Now()
		go func() {
			resp, err := a.cp.serviceConnectView(pctx, &agentapi.ServiceConnectViewRequest{
				Cluster: a.cfg.Cluster, Namespaces: nss, Index: index, WaitSeconds: int32(a.cfg.PollWait / time.Second),
			})
			answers <- answer{resp, err}
		}()
		var ans *answer
		for ans == nil {
			select {
			case got := <-answers:
				ans = &got
			case <-r.changed:
				if !slices.Equal(r.namespaces(), nss) {
					cancel()
				}
			}
		}
		cancel()
		if ans.err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(ans.err, context.Canceled) {
				continue // the namespaces changed
			}
			a.log.Warn("Service Connect view poll failed; retrying", "err", ans.err, "retry_in", delay)
			if !pause(delay) {
				return
			}
			delay = min(delay*2, 10*time.Second)
			continue
		}
		delay = minDelay
		r.update(nss, ans.resp)
		quick := time.Since(began) < 100*time.Millisecond
		if quick && ans.resp.Index == index {
			// An answer at once without progress: a control plane that
			// does not wait. Do not spin.
			if !pause(time.Second) {
				return
			}
		}
		index = ans.resp.Index
	}
}

// scrapeProxies keeps the latest metrics of every ready Service Connect
// proxy, read from its admin port every interval, and reports them to the
// control plane, until ctx ends.
func (a *Agent) scrapeProxies(ctx context.Context, every time.Duration) {
	client := &http.Client{Timeout: 3 * time.Second}
	t := time.NewTicker(every)
	defer t.Stop()
	reported := false // the last report had proxies
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		tasks := a.sc.all()
		var wg sync.WaitGroup
		for _, sc := range tasks {
			sc.mu.Lock()
			ip, ready := sc.ip, sc.ready
			sc.mu.Unlock()
			if ip == "" || !ready {
				continue
			}
			wg.Go(func() {
				text, err := scrape(ctx, client, "http://"+net.JoinHostPort(ip, strconv.Itoa(proxyAdminPort))+"/metrics")
				if err != nil {
					sc.m.log.Debug("reading the Service Connect proxy's metrics failed", "err", err)
					return
				}
				a.sc.mu.Lock()
				if a.sc.tasks[sc.m.task.TaskArn] == sc {
					a.sc.metrics[sc.m.task.TaskArn] = text
				}
				a.sc.mu.Unlock()
			})
		}
		wg.Wait()

		// Each report replaces the instance's previous one: proxies of
		// stopped tasks drop out of it.
		in := &agentapi.ReportProxyMetricsRequest{Cluster: a.cfg.Cluster, ContainerInstance: a.InstanceArn()}
		for arn, text := range a.ServiceConnectMetrics() {
			in.Proxies = append(in.Proxies, agentapi.ProxyMetrics{TaskArn: arn, Metrics: text})
		}
		if len(in.Proxies) == 0 && !reported {
			continue
		}
		slices.SortFunc(in.Proxies, func(x, y agentapi.ProxyMetrics) int { return strings.Compare(x.TaskArn, y.TaskArn) })
		if err := a.cp.Call(ctx, "ReportProxyMetrics", in, new(agentapi.ReportProxyMetricsResponse)); err != nil {
			if ctx.Err() == nil {
				a.log.Debug("reporting Service Connect metrics failed", "err", err)
			}
			continue
		}
		reported = len(in.Proxies) > 0
	}
}

func scrape(ctx context.Context, client *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", errors.New(resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return string(b), err
}

// ServiceConnectMetrics returns the latest Prometheus text of each Service
// Connect proxy on the node, by task ARN: cumulative counters since each
// proxy started, read every ~10 s.
func (a *Agent) ServiceConnectMetrics() map[string]string {
	a.sc.mu.Lock()
	defer a.sc.mu.Unlock()
	return maps.Clone(a.sc.metrics)
}
