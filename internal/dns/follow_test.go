package dns

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	clientv3 "go.etcd.io/etcd/client/v3"

	sd "github.com/wharfhq/wharf/internal/api/servicediscovery"
	"github.com/wharfhq/wharf/internal/cloudmap"
	"github.com/wharfhq/wharf/internal/store"
)

// visibleWithin is how soon a store write must show in answers.
const visibleWithin = time.Second

// logBuffer collects a server's log for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestAnswersFollowTheStore(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	f := fixture{t, st}
	f.namespace(region, "ns-1", "app.local", 15, time.Now())
	f.service(region, "srv-web", "ns-1", "web", sd.RoutingPolicyMultivalue, rec(sd.RecordTypeA, 5))
	f.instance(region, "srv-web", "i-1", healthy, ipv4("10.0.0.1"))
	s := startServer(t, st)
	addr := s.Addr()
	const web = "web.app.local."
	if got := answers(addr, web, dns.TypeA); !sameSet(got, "10.0.0.1") {
		t.Fatalf("initial answer %v", got)
	}
	serial := func() uint32 {
		r := query(t, addr, "app.local.", dns.TypeSOA)
		return r.Answer[0].(*dns.SOA).Serial
	}
	before := serial()

	steps := []struct {
		name  string
		write func()
		qname string
		want  []string // nil: the name must not resolve (NXDOMAIN or REFUSED)
		ttl   uint32   // when not 0, the answers' TTL
	}{
		{"register", func() { f.instance(region, "srv-web", "i-2", healthy, ipv4("10.0.0.2")) }, web, []string{"10.0.0.1", "10.0.0.2"}, 0},
		{"health flips to UNHEALTHY", func() { f.instance(region, "srv-web", "i-2", unhealthy, ipv4("10.0.0.2")) }, web, []string{"10.0.0.1"}, 0},
		{"health flips back", func() { f.instance(region, "srv-web", "i-2", healthy, ipv4("10.0.0.2")) }, web, []string{"10.0.0.1", "10.0.0.2"}, 0},
		{"re-register with a new address", func() { f.instance(region, "srv-web", "i-2", healthy, ipv4("10.0.0.22")) }, web, []string{"10.0.0.1", "10.0.0.22"}, 0},
		{"deregister", func() { f.delete(cloudmap.InstanceKey(region, "srv-web", "i-1")) }, web, []string{"10.0.0.22"}, 0},
		{"deregister the last", func() { f.delete(cloudmap.InstanceKey(region, "srv-web", "i-2")) }, web, nil, 0},
		{"zone appears with a service and an instance", func() {
			write(t, st, func(tx *store.Tx) error {
				tx.Put(cloudmap.NamespaceKey(region, "ns-2"), namespaceRecord("ns-2", "other.local", sd.NamespaceTypeDnsPublic, 15, time.Now()))
				tx.Put(cloudmap.ServiceKey(region, "srv-db"), serviceRecord("srv-db", "ns-2", "db", sd.RoutingPolicyWeighted, rec(sd.RecordTypeA, 5)))
				return tx.Put(cloudmap.InstanceKey(region, "srv-db", "d-1"), instanceRecord("srv-db", "d-1", healthy, ipv4("10.9.0.1")))
			})
		}, "db.other.local.", []string{"10.9.0.1"}, 5},
		{"service changes its records", func() {
			f.service(region, "srv-db", "ns-2", "db", sd.RoutingPolicyWeighted, rec(sd.RecordTypeA, 7))
		}, "db.other.local.", []string{"10.9.0.1"}, 7},
		{"service deleted", func() {
			write(t, st, func(tx *store.Tx) error {
				tx.Delete(cloudmap.InstanceKey(region, "srv-db", "d-1"))
				tx.Delete(cloudmap.ServiceKey(region, "srv-db"))
				return nil
			})
		}, "db.other.local.", nil, 0},
		{"zone disappears", func() { f.delete(cloudmap.NamespaceKey(region, "ns-2")) }, "other.local.", nil, 0},
	}
	var worst time.Duration
	for _, step := range steps {
		start := time.Now()
		step.write()
		written := time.Since(start)
		took := waitFor(t, 5*time.Second, step.name, func() bool {
			r, err := exchange(addr, step.qname, dns.TypeA)
			if err != nil {
				return false
			}
			if step.want == nil {
				return r.Rcode == dns.RcodeNameError || r.Rcode == dns.RcodeRefused
			}
			if step.ttl != 0 && (len(r.Answer) == 0 || r.Answer[0].Header().Ttl != step.ttl) {
				return false
			}
			return r.Rcode == dns.RcodeSuccess && sameSet(values(r.Answer), step.want...)
		})
		t.Logf("%-45s visible %v after the write returned (write took %v)", step.name, took.Round(time.Microsecond), written.Round(time.Microsecond))
		if took > visibleWithin {
			t.Errorf("%s: visible after %v, want within %v", step.name, took, visibleWithin)
		}
		worst = max(worst, took)
	}
	t.Logf("slowest: %v", worst)
	if r := query(t, addr, "db.other.local.", dns.TypeA); r.Rcode != dns.RcodeRefused {
		t.Errorf("name of a deleted zone: %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
	if after := serial(); after <= before {
		t.Errorf("SOA serial %d after the changes, want more than %d", after, before)
	}
	if r := query(t, addr, web, dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Errorf("web without instances: %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
}

func TestReloadsWhenTheWatchBreaks(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	f := fixture{t, st}
	f.namespace(region, "ns-1", "app.local", 15, time.Now())
	f.service(region, "srv-web", "ns-1", "web", sd.RoutingPolicyMultivalue, rec(sd.RecordTypeA, 5))
	f.instance(region, "srv-web", "i-1", healthy, ipv4("10.0.0.1"))

	var logs logBuffer
	hookErr := make(chan error, 1)
	s := startServerWith(t, Config{Store: st, Logger: logs.logger()}, func(s *Server) {
		// After the second load, change the store and compact it past the
		// revision the next watch starts from: that watch fails with
		// ErrCompacted and the server must load a third time.
		s.afterLoad = func(rev int64) {
			if s.loads.Load() != 2 {
				return
			}
			ctx := context.Background()
			err := st.Update(ctx, func(tx *store.Tx) error {
				return tx.Put(cloudmap.InstanceKey(region, "srv-web", "i-3"), instanceRecord("srv-web", "i-3", healthy, ipv4("10.0.0.3")))
			})
			if err == nil {
				// One more revision, so that the compaction passes rev+1.
				err = st.Update(ctx, func(tx *store.Tx) error { return tx.Put("test/probe", 1) })
			}
			if err == nil {
				var resp *clientv3.GetResponse
				if resp, err = st.Client().Get(ctx, "probe"); err == nil {
					_, err = st.Client().Compact(ctx, resp.Header.Revision)
				}
			}
			hookErr <- err
		}
	})
	addr := s.Addr()
	const web = "web.app.local."

	// Break the running watch, as a lost connection to etcd would, and
	// write while it is down.
	// Ready comes with the first load, the watch just after it.
	var cancelWatch context.CancelFunc
	waitFor(t, 5*time.Second, "the watch to start", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		cancelWatch = s.watchCancel
		return cancelWatch != nil
	})
	cancelWatch()
	f.instance(region, "srv-web", "i-2", healthy, ipv4("10.0.0.2"))
	took := waitFor(t, 5*time.Second, "answers after the watch broke and the store was compacted", func() bool {
		return sameSet(answers(addr, web, dns.TypeA), "10.0.0.1", "10.0.0.2", "10.0.0.3")
	})
	if err := <-hookErr; err != nil {
		t.Fatalf("compact the store: %v", err)
	}
	t.Logf("reloaded and answering %v after the watch broke; %d full loads", took.Round(time.Millisecond), s.loads.Load())
	if n := s.loads.Load(); n < 3 {
		t.Errorf("%d full loads, want 3: the first, after the broken watch, after ErrCompacted", n)
	}
	log := logs.String()
	if !strings.Contains(log, "store watch broke") || !strings.Contains(log, store.ErrCompacted.Error()) {
		t.Errorf("log does not tell of the broken and the compacted watch:\n%s", log)
	}
	// And it follows the store again.
	f.delete(cloudmap.InstanceKey(region, "srv-web", "i-3"))
	took = waitFor(t, 5*time.Second, "deregistration after the reload", func() bool {
		return sameSet(answers(addr, web, dns.TypeA), "10.0.0.1", "10.0.0.2")
	})
	if took > visibleWithin {
		t.Errorf("deregistration visible after %v, want within %v", took, visibleWithin)
	}
}

func TestZoneInSeveralRegions(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	f := fixture{t, st}
	older := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.namespace(region, "ns-us", "Shared.Local", 15, older.Add(time.Hour))
	f.service(region, "srv-us", "ns-us", "web", sd.RoutingPolicyMultivalue, rec(sd.RecordTypeA, 5))
	f.instance(region, "srv-us", "i-1", healthy, ipv4("10.1.0.1"))
	f.namespace("eu-west-1", "ns-eu", "shared.local", 15, older)
	f.service("eu-west-1", "srv-eu", "ns-eu", "web", sd.RoutingPolicyMultivalue, rec(sd.RecordTypeA, 5))
	f.instance("eu-west-1", "srv-eu", "i-1", healthy, ipv4("10.2.0.1"))

	var logs logBuffer
	s := startServerWith(t, Config{Store: st, Logger: logs.logger()}, nil)
	if got := answers(s.Addr(), "web.shared.local.", dns.TypeA); !sameSet(got, "10.2.0.1") {
		t.Errorf("answer %v, want the older namespace's (eu-west-1) 10.2.0.1", got)
	}
	if !strings.Contains(logs.String(), "several namespaces share a zone") {
		t.Errorf("the shadowed namespace is not logged:\n%s", logs.String())
	}
	// A change to the shadowed namespace changes nothing.
	f.instance(region, "srv-us", "i-2", healthy, ipv4("10.1.0.2"))
	// The older one goes: the other takes over.
	f.delete(cloudmap.NamespaceKey("eu-west-1", "ns-eu"))
	waitFor(t, visibleWithin, "the remaining namespace serving the zone", func() bool {
		return sameSet(answers(s.Addr(), "web.shared.local.", dns.TypeA), "10.1.0.1", "10.1.0.2")
	})
}
