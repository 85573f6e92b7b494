package telemetry

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharfhq/wharf/internal/api/agentapi"
	"github.com/wharfhq/wharf/internal/proxy"
)

// proxyText is what a proxy of service serves: requests so far (a counter)
// and active connections (a gauge).
func proxyText(service string, requests, active int) string {
	return fmt.Sprintf(`# HELP RequestCount Requests processed by the proxy.
# TYPE RequestCount counter
RequestCount{DiscoveryName=%[1]q,ServiceName=%[1]q,ClusterName="prod"} %[2]d
# HELP ActiveConnectionCount Connections open on the proxy's listeners.
# TYPE ActiveConnectionCount gauge
ActiveConnectionCount{DiscoveryName=%[1]q,ServiceName=%[1]q,ClusterName="prod"} %[3]d
`, service, requests, active)
}

// key is the aggregation key of a series of proxyText.
func key(name, service string) string {
	return fmt.Sprintf(`%s{ClusterName="prod",DiscoveryName=%q,ServiceName=%q}`, name, service, service)
}

func pm(task, metrics string) agentapi.ProxyMetrics {
	return agentapi.ProxyMetrics{TaskArn: task, Metrics: metrics}
}

// fakeClock is a Config.Now the test advances.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// aggregate returns what a writes, parsed back, by series key.
func aggregate(t *testing.T, a *Aggregator) map[string]float64 {
	t.Helper()
	var b strings.Builder
	if _, err := a.WriteTo(&b); err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	txt, err := parse(b.String(), 1<<20)
	if err != nil {
		t.Fatalf("output does not parse: %v\n%s", err, b.String())
	}
	got := make(map[string]float64)
	for k, s := range txt.samples {
		got[k] = s.value
	}
	return got
}

func TestAggregate(t *testing.T) {
	type step struct {
		after   time.Duration // clock advance first
		source  string        // "": only advance the clock
		proxies []agentapi.ProxyMetrics
	}
	apple := func(name string) string { return key(name, "apple") }
	cases := []struct {
		name  string
		steps []step
		want  map[string]float64
	}{
		{"two proxies of a service are summed",
			[]step{{0, "i-1", []agentapi.ProxyMetrics{pm("t1", proxyText("apple", 3, 1)), pm("t2", proxyText("apple", 4, 2))}}},
			map[string]float64{apple("RequestCount"): 7, apple("ActiveConnectionCount"): 3}},
		{"two sources are summed",
			[]step{
				{0, "i-1", []agentapi.ProxyMetrics{pm("t1", proxyText("apple", 3, 1))}},
				{0, "i-2", []agentapi.ProxyMetrics{pm("t2", proxyText("apple", 4, 2))}},
			},
			map[string]float64{apple("RequestCount"): 7, apple("ActiveConnectionCount"): 3}},
		{"two services stay separate",
			[]step{{0, "i-1", []agentapi.ProxyMetrics{pm("t1", proxyText("apple", 3, 1)), pm("t2", proxyText("banana", 4, 2))}}},
			map[string]float64{
				apple("RequestCount"): 3, apple("ActiveConnectionCount"): 1,
				key("RequestCount", "banana"): 4, key("ActiveConnectionCount", "banana"): 2,
			}},
		{"label order does not split series",
			[]step{{0, "i-1", []agentapi.ProxyMetrics{
				pm("t1", "# TYPE RequestCount counter\nRequestCount{DiscoveryName=\"apple\",ServiceName=\"apple\",ClusterName=\"prod\"} 3\n"),
				pm("t2", "# TYPE RequestCount counter\nRequestCount{ClusterName=\"prod\",ServiceName=\"apple\",DiscoveryName=\"apple\"} 4\n"),
			}}},
			map[string]float64{apple("RequestCount"): 7}},
		{"a retired proxy's counters stay, its gauges go",
			[]step{
				{0, "i-1", []agentapi.ProxyMetrics{pm("t1", proxyText("apple", 3, 1)), pm("t2", proxyText("apple", 4, 2))}},
				{time.Second, "i-1", []agentapi.ProxyMetrics{pm("t1", proxyText("apple", 5, 1))}},
			},
			map[string]float64{apple("RequestCount"): 9, apple("ActiveConnectionCount"): 1}},
		{"the last proxy of a service retires",
			[]step{
				{0, "i-1", []agentapi.ProxyMetrics{pm("t1", proxyText("apple", 3, 1))}},
				{time.Second, "i-1", nil},
			},
			map[string]float64{apple("RequestCount"): 3}},
		{"counters grow",
			[]step{
				{0, "i-1", []agentapi.ProxyMetrics{pm("t1", proxyText("apple", 10, 2))}},
				{time.Second, "i-1", []agentapi.ProxyMetrics{pm("t1", proxyText("apple", 12, 1))}},
			},
			map[string]float64{apple("RequestCount"): 12, apple("ActiveConnectionCount"): 1}},
		{"a restarted proxy's previous counters are folded",
			[]step{
				{0, "i-1", []agentapi.ProxyMetrics{pm("t1", proxyText("apple", 10, 2))}},
				{time.Second, "i-1", []agentapi.ProxyMetrics{pm("t1", proxyText("apple", 3, 1))}},
				{time.Second, "i-1", []agentapi.ProxyMetrics{pm("t1", proxyText("apple", 6, 1))}},
			},
			map[string]float64{apple("RequestCount"): 16, apple("ActiveConnectionCount"): 1}},
		{"a counter a proxy no longer reports stays",
			[]step{
				{0, "i-1", []agentapi.ProxyMetrics{pm("t1", proxyText("apple", 10, 2))}},
				{time.Second, "i-1", []agentapi.ProxyMetrics{pm("t1", "# TYPE NewConnectionCount counter\nNewConnectionCount 1\n")}},
			},
			map[string]float64{apple("RequestCount"): 10, "NewConnectionCount{}": 1}},
		{"a source is alive until the expiry",
			[]step{
				{0, "i-1", []agentapi.ProxyMetrics{pm("t1", proxyText("apple", 3, 1))}},
				{59 * time.Second, "", nil},
			},
			map[string]float64{apple("RequestCount"): 3, apple("ActiveConnectionCount"): 1}},
		{"an expired source's proxies retire",
			[]step{
				{0, "i-1", []agentapi.ProxyMetrics{pm("t1", proxyText("apple", 3, 1))}},
				{30 * time.Second, "i-2", []agentapi.ProxyMetrics{pm("t2", proxyText("apple", 4, 2))}},
				{30 * time.Second, "", nil},
			},
			map[string]float64{apple("RequestCount"): 7, apple("ActiveConnectionCount"): 2}},
		{"a proxy reported by another source moves",
			[]step{
				{0, "i-1", []agentapi.ProxyMetrics{pm("t1", proxyText("apple", 3, 1))}},
				{10 * time.Second, "i-2", []agentapi.ProxyMetrics{pm("t1", proxyText("apple", 5, 2))}},
				// Neither i-1's report without t1 nor its expiry retires t1 again.
				{10 * time.Second, "i-1", nil},
				{45 * time.Second, "i-2", []agentapi.ProxyMetrics{pm("t1", proxyText("apple", 6, 2))}},
			},
			map[string]float64{apple("RequestCount"): 9, apple("ActiveConnectionCount"): 2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeClock{now: time.Unix(1700000000, 0)}
			a := New(Config{Now: clock.Now})
			for i, s := range tc.steps {
				clock.advance(s.after)
				if s.source == "" {
					continue
				}
				if err := a.Report(s.source, s.proxies); err != nil {
					t.Fatalf("step %d: Report: %v", i, err)
				}
			}
			if got := aggregate(t, a); !maps.Equal(got, tc.want) {
				t.Errorf("aggregate:\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestReportMalformedProxy(t *testing.T) {
	a := New(Config{})
	if err := a.Report("i-1", []agentapi.ProxyMetrics{pm("t1", proxyText("apple", 1, 1)), pm("t2", proxyText("apple", 2, 1))}); err != nil {
		t.Fatal(err)
	}
	err := a.Report("i-1", []agentapi.ProxyMetrics{
		pm("t1", proxyText("apple", 10, 1)),
		pm("t2", "RequestCount{DiscoveryName=\"apple} 3\n"),
		pm("t3", proxyText("apple", 100, 1)),
	})
	if err == nil || !strings.Contains(err.Error(), "task t2: line 1") || strings.Contains(err.Error(), "t1") || strings.Contains(err.Error(), "t3") {
		t.Fatalf("Report: got error %v, want one naming t2 only", err)
	}
	// t2 keeps its previous values; t1 and t3 are applied.
	want := map[string]float64{key("RequestCount", "apple"): 112, key("ActiveConnectionCount", "apple"): 3}
	if got := aggregate(t, a); !maps.Equal(got, want) {
		t.Errorf("aggregate:\n got %v\nwant %v", got, want)
	}
}

func TestReportTooManySeries(t *testing.T) {
	a := New(Config{MaxSeriesPerProxy: 1})
	err := a.Report("i-1", []agentapi.ProxyMetrics{pm("t1", proxyText("apple", 1, 1))})
	if err == nil || !strings.Contains(err.Error(), "more than 1 series") {
		t.Fatalf("Report: got error %v, want more than 1 series", err)
	}
	if got := aggregate(t, a); len(got) != 0 {
		t.Errorf("aggregate: got %v, want nothing", got)
	}
}

func TestWriteTo(t *testing.T) {
	hist := func(b1, b2, inf int, sum float64) string {
		return fmt.Sprintf(`# HELP TargetResponseTime Milliseconds.
# TYPE TargetResponseTime histogram
TargetResponseTime_bucket{TargetDiscoveryName="apple",ServiceName="pear",ClusterName="prod",le="0.5"} %d
TargetResponseTime_bucket{TargetDiscoveryName="apple",ServiceName="pear",ClusterName="prod",le="10"} %d
TargetResponseTime_bucket{TargetDiscoveryName="apple",ServiceName="pear",ClusterName="prod",le="+Inf"} %d
TargetResponseTime_sum{TargetDiscoveryName="apple",ServiceName="pear",ClusterName="prod"} %g
TargetResponseTime_count{TargetDiscoveryName="apple",ServiceName="pear",ClusterName="prod"} %[3]d
# HELP wharf_proxy_local_replies_total Replies.
# TYPE wharf_proxy_local_replies_total counter
wharf_proxy_local_replies_total{TargetDiscoveryName="apple",ServiceName="pear",ClusterName="prod",code="503"} 1
wharf_proxy_local_replies_total{TargetDiscoveryName="apple",ServiceName="pear",ClusterName="prod",code="504"} 2
`, b1, b2, inf, sum)
	}
	a := New(Config{})
	err := a.Report("i-1", []agentapi.ProxyMetrics{
		pm("t1", hist(1, 2, 3, 1.25)),
		pm("t2", hist(10, 20, 3000000, 0.5)),
		pm("t3", proxyText("apple", 5, 1)),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `# HELP ActiveConnectionCount Connections open on the proxy's listeners.
# TYPE ActiveConnectionCount gauge
ActiveConnectionCount{DiscoveryName="apple",ServiceName="apple",ClusterName="prod"} 1
# HELP RequestCount Requests processed by the proxy.
# TYPE RequestCount counter
RequestCount{DiscoveryName="apple",ServiceName="apple",ClusterName="prod"} 5
# HELP TargetResponseTime Milliseconds.
# TYPE TargetResponseTime histogram
TargetResponseTime_bucket{TargetDiscoveryName="apple",ServiceName="pear",ClusterName="prod",le="0.5"} 11
TargetResponseTime_bucket{TargetDiscoveryName="apple",ServiceName="pear",ClusterName="prod",le="10"} 22
TargetResponseTime_bucket{TargetDiscoveryName="apple",ServiceName="pear",ClusterName="prod",le="+Inf"} 3000003
TargetResponseTime_sum{TargetDiscoveryName="apple",ServiceName="pear",ClusterName="prod"} 1.75
TargetResponseTime_count{TargetDiscoveryName="apple",ServiceName="pear",ClusterName="prod"} 3000003
# HELP wharf_proxy_local_replies_total Replies.
# TYPE wharf_proxy_local_replies_total counter
wharf_proxy_local_replies_total{TargetDiscoveryName="apple",ServiceName="pear",ClusterName="prod",code="503"} 2
wharf_proxy_local_replies_total{TargetDiscoveryName="apple",ServiceName="pear",ClusterName="prod",code="504"} 4
`
	var b strings.Builder
	n, err := a.WriteTo(&b)
	if err != nil || n != int64(b.Len()) {
		t.Fatalf("WriteTo: %d, %v; wrote %d bytes", n, err, b.Len())
	}
	if b.String() != want {
		t.Errorf("WriteTo:\n%s\nwant:\n%s", b.String(), want)
	}

	// Histograms retire like counters.
	if err := a.Report("i-1", []agentapi.ProxyMetrics{pm("t1", hist(1, 2, 3, 1.25))}); err != nil {
		t.Fatal(err)
	}
	if got := aggregate(t, a); got[`TargetResponseTime_count{ClusterName="prod",ServiceName="pear",TargetDiscoveryName="apple"}`] != 3000003 ||
		got[`TargetResponseTime_bucket{ClusterName="prod",ServiceName="pear",TargetDiscoveryName="apple",le="10"}`] != 22 {
		t.Errorf("after t2 retired: %v", got)
	}
}

func TestHandler(t *testing.T) {
	a := New(Config{})
	if err := a.Report("i-1", []agentapi.ProxyMetrics{pm("t1", proxyText("apple", 5, 1))}); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if ct := rec.Header().Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if !strings.Contains(rec.Body.String(), "\nRequestCount{DiscoveryName=\"apple\",ServiceName=\"apple\",ClusterName=\"prod\"} 5\n") {
		t.Errorf("body:\n%s", rec.Body.String())
	}
}

func TestConcurrentUse(t *testing.T) {
	a := New(Config{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for n := range 50 {
				a.Report(fmt.Sprintf("i-%d", i), []agentapi.ProxyMetrics{pm(fmt.Sprintf("t%d", n%3), proxyText("apple", n, 1))})
				a.WriteTo(io.Discard)
			}
		})
	}
	wg.Wait()
}

// TestProxyMetrics aggregates the text of real proxies.
func TestProxyMetrics(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "apple\n")
	}))
	t.Cleanup(app.Close)
	run := func(requests int) string {
		p := proxy.New(nil)
		t.Cleanup(func() { p.Close() })
		err := p.Apply(proxy.Config{
			ServiceName: "apple", ClusterName: "prod", DiscoveryName: "apple",
			Listeners: []proxy.Listener{{Address: "127.0.0.1:0", Ingress: &proxy.Ingress{
				Protocol: proxy.ProtocolHTTP, AppAddress: app.Listener.Addr().String(),
			}}},
		})
		if err != nil {
			t.Fatalf("Apply: %v", err)
		}
		url := "http://" + p.Addr("127.0.0.1:0").String() + "/"
		for range requests {
			resp, err := http.Get(url)
			if err != nil {
				t.Fatalf("GET %s: %v", url, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		want := fmt.Sprintf("\nRequestCount{DiscoveryName=\"apple\",ServiceName=\"apple\",ClusterName=\"prod\"} %d\n", requests)
		var text string
		for deadline := time.Now().Add(5 * time.Second); ; {
			rec := httptest.NewRecorder()
			p.Metrics().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
			if text = rec.Body.String(); strings.Contains(text, want) {
				return text
			}
			if time.Now().After(deadline) {
				t.Fatalf("the proxy did not count %d requests:\n%s", requests, text)
			}
			time.Sleep(2 * time.Millisecond) // poll interval
		}
	}
	a := New(Config{})
	if err := a.Report("i-1", []agentapi.ProxyMetrics{pm("t1", run(3)), pm("t2", run(2))}); err != nil {
		t.Fatal(err)
	}
	if got := aggregate(t, a)[key("RequestCount", "apple")]; got != 5 {
		t.Errorf("aggregated RequestCount = %v, want 5", got)
	}
}
