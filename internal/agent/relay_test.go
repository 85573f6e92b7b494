package agent_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/wharfhq/wharf/internal/agent"
	"github.com/wharfhq/wharf/internal/api/agentapi"
	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/runtime/sim"
)

// relayGateway is the awsvpc gateway the test's control plane announces:
// a loopback address nothing else listens on, where the agent's relay
// binds port 53.
const relayGateway = "127.0.0.153"

// startUpstreamDNS runs a DNS server on an ephemeral loopback port that
// answers every A query with 192.0.2.1.
func startUpstreamDNS(t *testing.T) (addr string, stop func()) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		resp := new(dns.Msg)
		resp.SetReply(q)
		resp.Answer = append(resp.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5}, A: net.IPv4(192, 0, 2, 1)})
		w.WriteMsg(resp)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	done := make(chan struct{})
	go func() { defer close(done); srv.ActivateAndServe() }()
	<-started
	// Stopping twice is harmless: the second Shutdown finds it stopped.
	return pc.LocalAddr().String(), func() { srv.Shutdown(); <-done }
}

func queryA(addr, name string) error {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeA)
	c := &dns.Client{Net: "udp", Timeout: time.Second}
	resp, _, err := c.Exchange(q, addr)
	if err != nil {
		return err
	}
	if len(resp.Answer) != 1 {
		return errors.New("no answer: " + resp.String())
	}
	return nil
}

// agentGoroutines lists the goroutines that run or were started by the
// agent's packages (hostnet's relays among them) or the DNS library.
func agentGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if slices.ContainsFunc(strings.Split(g, "\n"), isAgentFrame) {
			out = append(out, g)
		}
	}
	return out
}

// isAgentFrame reports whether a line of a goroutine's stack names a
// function of the agent's packages or of the DNS library (file lines,
// which start with a tab, do not count).
func isAgentFrame(line string) bool {
	if strings.HasPrefix(line, "\t") {
		return false
	}
	return strings.Contains(line, "wharf/internal/agent.") || strings.Contains(line, "wharf/internal/agent/") || strings.Contains(line, "github.com/miekg/dns.")
}

// TestRelayStopsWithAgent: the DNS relay an agent starts on a network's
// gateway relays queries while the agent runs and is gone, port and
// goroutines, once Run has returned.
func TestRelayStopsWithAgent(t *testing.T) {
	upstream, stopUpstream := startUpstreamDNS(t)
	defer stopUpstream()
	f := newFakeControlPlane(t)
	f.dns = upstream
	f.network = &agentapi.Network{Name: "wharf-awsvpc", Subnet: "127.0.0.152/30", Gateway: relayGateway}
	var logs syncWriter
	defer func() {
		if t.Failed() {
			t.Logf("agent log:\n%s", logs.String())
		}
	}()
	srv := httptest.NewServer(f)
	defer srv.Close()
	a, err := agent.New(agent.Config{Endpoint: srv.URL, Cluster: "sc", Runtime: sim.New(), StateDir: t.TempDir(),
		AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret", PauseImage: "wharf/pause:sim", Simulated: true,
		ReservedPorts: []string{"22"}, CPU: 1024, MemoryMiB: 1024, PollWait: time.Second, StopTimeout: time.Second,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()

	at := agentapi.AssignedTask{
		Task: ecsapi.Task{TaskArn: randomTaskArn(), DesiredStatus: "RUNNING", LastStatus: "PROVISIONING",
			Attachments: []ecsapi.Attachment{{Id: "eni-1", Type: "ElasticNetworkInterface", Details: []ecsapi.KeyValuePair{
				{Name: "privateIPv4Address", Value: "127.0.0.154"}, {Name: "macAddress", Value: "02:42:7f:00:00:9a"}}}}},
		TaskDefinition: ecsapi.TaskDefinition{Family: "vpc", Revision: 1, NetworkMode: ecsapi.NetworkModeAwsvpc,
			ContainerDefinitions: []ecsapi.ContainerDefinition{{Name: "app", Image: "app:1"}}},
	}
	f.assign(at)
	waitStatus(t, f, at.Task.TaskArn, "RUNNING", 10*time.Second)
	relay := net.JoinHostPort(relayGateway, "53")
	within(t, "the relay on the gateway answering", 5*time.Second, func() (bool, string) {
		err := queryA(relay, "app.example")
		return err == nil, errString(err)
	})

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	done <- nil // for the deferred stop
	if c, err := net.DialTimeout("tcp", relay, time.Second); err == nil {
		c.Close()
		t.Errorf("the relay still accepts TCP on %s after Run returned", relay)
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dialing the relay after Run returned: %v, want connection refused", err)
	}
	if err := queryA(relay, "app.example"); err == nil {
		t.Errorf("the relay still answers on %s after Run returned", relay)
	}
	stopUpstream() // its goroutines are the DNS library's too
	within(t, "the agent's goroutines to end", 5*time.Second, func() (bool, string) {
		left := agentGoroutines()
		return len(left) == 0, strings.Join(left, "\n\n")
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
