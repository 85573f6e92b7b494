package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/wharfhq/wharf/internal/agent/metadata"
	"github.com/wharfhq/wharf/internal/api/agentapi"
	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/runtime"
	"github.com/wharfhq/wharf/internal/sidecar"
)

func TestVIPTable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vips.json")
	v := loadVIPs(path)
	addr := func(v *vipTable, name string) string {
		t.Helper()
		a, err := v.addr(name)
		if err != nil {
			t.Fatal(err)
		}
		if !sidecar.VIPPrefix.Contains(a) {
			t.Fatalf("%s got %s, outside %s", name, a, sidecar.VIPPrefix)
		}
		return a.String()
	}
	apple, banana := addr(v, "apple"), addr(v, "banana")
	if apple != "127.255.0.1" || banana != "127.255.0.2" || addr(v, "apple") != apple {
		t.Fatalf("apple %s banana %s", apple, banana)
	}
	if err := v.save(path); err != nil {
		t.Fatal(err)
	}
	// A restarted agent keeps every address, and gives new services new
	// ones, even when a service left the namespace meanwhile.
	w := loadVIPs(path)
	if addr(w, "banana") != banana || addr(w, "apple") != apple {
		t.Fatal("addresses moved across a reload")
	}
	if cherry := addr(w, "cherry"); cherry == apple || cherry == banana || cherry != "127.255.0.3" {
		t.Fatalf("cherry got %s", cherry)
	}
	if w.dirty != true || w.save(path) != nil || w.dirty {
		t.Fatal("a new address is saved once")
	}

	// Addresses ending in .0 and .255 are skipped; the prefix runs out.
	x := &vipTable{Next: 255}
	if a := addr(x, "a"); a != "127.255.1.1" {
		t.Fatalf("after .254 came %s", a)
	}
	x.Next = 1<<16 - 2
	if a := addr(x, "y"); a != "127.255.255.254" {
		t.Fatalf("the last address is %s", a)
	}
	if _, err := x.addr("z"); err == nil {
		t.Fatal("the prefix's last address was given")
	}
	seen := map[string]bool{}
	y := &vipTable{}
	for i := range 600 {
		a := addr(y, "svc"+string(rune('a'+i%26))+strings.Repeat("x", i/26))
		if seen[a] {
			t.Fatalf("%s given twice", a)
		}
		seen[a] = true
		if p := netip.MustParseAddr(a).As4(); p[3] == 0 || p[3] == 255 {
			t.Fatalf("gave %s", a)
		}
	}
}

func TestHostsFile(t *testing.T) {
	base := hostsBase{IP: "10.0.0.5", Hostname: "abc123def456", Extra: []hostEntry{{"10.9.9.9", "db.internal"}}}
	aliases := []hostAlias{
		{netip.MustParseAddr("127.255.0.2"), []string{"banana.ns", "banana"}},
		{netip.MustParseAddr("127.255.0.1"), []string{"apple"}},
	}
	got := string(renderHosts(base, aliases))
	for _, want := range []string{"127.0.0.1\tlocalhost\n", "10.0.0.5\tabc123def456\n", "10.9.9.9\tdb.internal\n", "127.255.0.1\tapple\n127.255.0.2\tbanana.ns banana\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("hosts file lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(string(renderHosts(hostsBase{}, nil)), "Service Connect") {
		t.Error("a header without aliases")
	}

	path := filepath.Join(t.TempDir(), "hosts")
	inode := func() uint64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	if err := writeInPlace(path, []byte(got)); err != nil {
		t.Fatal(err)
	}
	ino := inode()
	for _, content := range []string{got + "127.255.0.3\tcherry\n", "127.0.0.1\tlocalhost\n", got} {
		if err := writeInPlace(path, []byte(content)); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(path)
		if string(b) != content || inode() != ino {
			t.Fatalf("after rewriting, the file holds %q (inode %d, was %d)", b, inode(), ino)
		}
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v: containers running as other users cannot read it", fi.Mode())
	}
}

func i32(v int32) *int32 { return &v }

func TestProxyConfig(t *testing.T) {
	sc := &agentapi.TaskServiceConnect{
		Namespace: "arn:ns", NamespaceName: "fruit", ServiceName: "apple-svc", ClusterName: "default", AccessLog: "JSON",
		Services: []agentapi.ServiceConnectIngress{{DiscoveryName: "apple", ContainerName: "app", ContainerPort: 8080, IngressPort: 15000, Protocol: "HTTP", IdleTimeoutSeconds: i32(0)}},
	}
	view := &agentapi.NamespaceView{Arn: "arn:ns", Name: "fruit", Services: []agentapi.ServiceView{
		{DiscoveryName: "banana", DNSName: "banana.fruit", Port: 80, Protocol: "tcp", PerRequestTimeoutSeconds: i32(5), IdleTimeoutSeconds: i32(60),
			Endpoints: []agentapi.Endpoint{{Address: "10.0.0.7:15000", Zone: "us-east-1b"}, {Address: "10.0.0.7:15000"}, {Address: "10.0.0.8:15000", Zone: "us-east-1a"}}},
		{DiscoveryName: "apple", DNSName: "apple", Port: 8080, Protocol: "http", Endpoints: []agentapi.Endpoint{{Address: "10.0.0.5:15000"}},
			Routing: &agentapi.Routing{Balancer: "least_request", Retries: i32(0)}},
		{DiscoveryName: "portless", DNSName: "portless.fruit"},
	}}
	vips := &vipTable{}
	cfg, aliases, skipped := proxyConfig(sc, view, vips, "us-east-1a", nil, "")
	if len(skipped) != 0 {
		t.Fatalf("skipped %v", skipped)
	}
	if cfg.ServiceName != "apple-svc" || cfg.ClusterName != "default" || cfg.DiscoveryName != "apple" || cfg.Zone != "us-east-1a" || cfg.AccessLog == nil || cfg.AccessLog.Format != "JSON" {
		t.Fatalf("config %+v", cfg)
	}
	// Services in discovery name order: apple, banana, portless.
	want := []sidecar.Listener{
		{Address: "0.0.0.0:15000", Ingress: &sidecar.Ingress{DiscoveryName: "apple", Protocol: "http", AppAddress: "127.0.0.1:8080", IdleTimeoutMs: new(int64)}},
		{Address: "127.255.0.1:8080", Upstream: "apple"},
		{Address: "127.255.0.2:80", Upstream: "banana"},
	}
	if g, _ := json.Marshal(cfg.Listeners); !bytes.Equal(g, must(json.Marshal(want))) {
		t.Fatalf("listeners\n got %s\nwant %s", g, must(json.Marshal(want)))
	}
	if len(cfg.Upstreams) != 2 {
		t.Fatalf("upstreams %+v", cfg.Upstreams)
	}
	apple, banana := cfg.Upstreams[0], cfg.Upstreams[1]
	if apple.Balancer != "least_request" || apple.Retries == nil || *apple.Retries != 0 || apple.PerRequestTimeoutMs != nil {
		t.Fatalf("apple %+v", apple)
	}
	if banana.Protocol != "tcp" || banana.PerRequestTimeoutMs != nil || *banana.IdleTimeoutMs != 60000 || len(banana.Endpoints) != 2 || banana.Endpoints[0].Zone != "us-east-1b" {
		t.Fatalf("banana %+v", banana)
	}
	gotAliases := []string{}
	for _, a := range aliases {
		gotAliases = append(gotAliases, a.addr.String()+"="+strings.Join(a.names, ","))
	}
	if strings.Join(gotAliases, " ") != "127.255.0.1=apple 127.255.0.2=banana.fruit,banana 127.255.0.3=portless.fruit,portless" {
		t.Fatalf("aliases %v", gotAliases)
	}

	// The document converts to a configuration the proxy accepts.
	pc, err := cfg.Proxy(nil, &sidecar.Certificates{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pc.Listeners) != 3 || pc.Upstreams[1].IdleTimeout == nil || *pc.Upstreams[1].IdleTimeout != time.Minute {
		t.Fatalf("proxy config %+v", pc)
	}

	// A new service gets a new address; the others keep theirs, also when
	// one of them leaves.
	view.Services = append(view.Services[1:], agentapi.ServiceView{DiscoveryName: "cherry", DNSName: "cherry", Port: 80})
	cfg, aliases, _ = proxyConfig(sc, view, vips, "us-east-1a", nil, "")
	if i := slices.IndexFunc(aliases, func(a hostAlias) bool { return a.names[0] == "cherry" }); i < 0 || aliases[i].addr.String() != "127.255.0.4" {
		t.Fatalf("cherry in %+v", aliases)
	}
	if !slices.ContainsFunc(cfg.Listeners, func(l sidecar.Listener) bool { return l.Address == "127.255.0.1:8080" }) {
		t.Fatalf("apple moved: %+v", cfg.Listeners)
	}

	// Before the view: the ingress only.
	cfg, aliases, _ = proxyConfig(sc, nil, vips, "", nil, "")
	if len(cfg.Listeners) != 1 || len(aliases) != 0 || len(cfg.Upstreams) != 0 {
		t.Fatalf("without a view: %+v %v", cfg, aliases)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestBridgeBindings(t *testing.T) {
	p := func(port int32) *int32 { return &port }
	cds := []ecsapi.ContainerDefinition{
		{Name: "web", PortMappings: []ecsapi.PortMapping{{ContainerPort: p(8080)}, {ContainerPort: p(9090), HostPort: p(9090)}}},
		{Name: "dns", PortMappings: []ecsapi.PortMapping{{ContainerPort: p(53), Protocol: ecsapi.TransportProtocolUdp}}},
	}
	ingress := []agentapi.ServiceConnectIngress{{DiscoveryName: "web", ContainerName: "web", ContainerPort: 8080, IngressPort: 15000}}
	ports := []runtime.PortBinding{
		{ContainerPort: 53, HostPort: 32770, Protocol: "udp", HostIP: "0.0.0.0"},
		{ContainerPort: 8080, HostPort: 32768, Protocol: "tcp", HostIP: "0.0.0.0"},
		{ContainerPort: 8080, HostPort: 32768, Protocol: "tcp", HostIP: "::"},
		{ContainerPort: 9090, HostPort: 9090, Protocol: "tcp", HostIP: "0.0.0.0"},
		{ContainerPort: 15000, HostPort: 32769, Protocol: "tcp", HostIP: "0.0.0.0"},
		// Docker 20.10 binds IPv6 to another host port.
		{ContainerPort: 15000, HostPort: 32767, Protocol: "tcp", HostIP: "::"},
	}
	got := map[string][]string{}
	for name, bs := range bridgeBindings(cds, ingress, ports) {
		for _, b := range bs {
			got[name] = append(got[name], aws.ToString(b.BindIP)+":"+itoa(b.HostPort)+"->"+itoa(b.ContainerPort)+"/"+string(b.Protocol))
		}
	}
	want := map[string][]string{
		"web": {"0.0.0.0:9090->9090/tcp", "0.0.0.0:32768->8080/tcp", ":::32768->8080/tcp", "0.0.0.0:32769->15000/tcp", ":::32767->15000/tcp"},
		"dns": {"0.0.0.0:32770->53/udp"},
	}
	for name := range want {
		if !slices.Equal(got[name], want[name]) {
			t.Errorf("%s: %v, want %v", name, got[name], want[name])
		}
	}
}

func itoa(p *int32) string { return string(must(json.Marshal(aws.ToInt32(p)))) }

// scTestManager is a task manager of an awsvpc Service Connect task with
// one application container, enough for the pure parts.
func scTestManager(t *testing.T, listed bool) *taskManager {
	t.Helper()
	a := &Agent{cfg: Config{Cluster: "c", StopTimeout: 30e9, StateDir: t.TempDir(), AvailabilityZone: "us-east-1a", ServiceConnectDrain: time.Second},
		metadata: metadata.New(nil), metadataPort: 51679, instanceArn: "arn:ci", sc: newSCRegistry()}
	a.log = slogDiscard()
	at := agentapi.AssignedTask{
		Task: ecsapi.Task{TaskArn: "arn:aws:ecs:r:1:task/c/0123456789abcdef0123456789abcdef", Attachments: []ecsapi.Attachment{{Details: []ecsapi.KeyValuePair{{Name: "privateIPv4Address", Value: "10.0.0.5"}}}}},
		TaskDefinition: ecsapi.TaskDefinition{Family: "f", NetworkMode: ecsapi.NetworkModeAwsvpc, ContainerDefinitions: []ecsapi.ContainerDefinition{
			{Name: "app", Image: "img", DependsOn: []ecsapi.ContainerDependency{{ContainerName: "init", Condition: ecsapi.ContainerConditionSuccess}}},
			{Name: "init", Image: "img", Essential: aws.Bool(false)},
		}},
		ServiceConnect: &agentapi.TaskServiceConnect{Namespace: "arn:ns", NamespaceName: "fruit", ServiceName: "apple", ClusterName: "c",
			Services: []agentapi.ServiceConnectIngress{{DiscoveryName: "apple", ContainerName: "app", ContainerPort: 8080, IngressPort: 15000, Protocol: "http"}}},
	}
	if listed {
		at.Task.Containers = []ecsapi.Container{{Name: "app"}, {Name: "init"}, {Name: "ecs-service-connect-Ab12Cd"}}
	}
	return newTaskManager(a, at)
}

func TestServiceConnectInjection(t *testing.T) {
	m := scTestManager(t, false)
	proxy := m.containers["ecs-service-connect-012345"]
	if m.sc == nil || proxy == nil || proxy.role != roleProxy || !proxy.hidden || !proxy.essential() {
		t.Fatalf("proxy %+v (containers %v)", proxy, m.order)
	}
	for _, name := range []string{"app", "init"} {
		deps := m.containers[name].def.DependsOn
		if !slices.Contains(deps, ecsapi.ContainerDependency{ContainerName: proxy.def.Name, Condition: ecsapi.ContainerConditionStart}) {
			t.Fatalf("%s depends on %v", name, deps)
		}
	}
	if len(m.containers["app"].def.DependsOn) != 2 {
		t.Fatal("the task's own dependencies were lost")
	}
	if w := stopWaves(m.td.ContainerDefinitions); !slices.Equal(w[len(w)-1], []string{proxy.def.Name}) {
		t.Fatalf("the proxy does not stop last: %v", w)
	}
	// Hidden: neither reported nor in the task metadata.
	for _, cs := range m.containerChanges() {
		if strings.HasPrefix(aws.ToString(cs.ContainerName), proxyContainerPrefix) {
			t.Fatal("a hidden proxy is reported")
		}
	}
	if tm := m.TaskMetadata(context.Background()); len(tm.Containers) != 2 || slices.ContainsFunc(tm.Containers, func(c metadata.Container) bool {
		return strings.HasPrefix(c.Name, proxyContainerPrefix)
	}) {
		t.Fatalf("task metadata shows containers %+v, want app and init only", tm.Containers)
	}
	if _, ok := m.ProxyConfig(context.Background(), "app", 0); ok {
		t.Fatal("an application container is served a proxy configuration")
	}

	m.pauseID = "0123456789abcdef"
	proxy.def.Image = "wharf/proxy:abc"
	spec, err := m.spec(proxy)
	if err != nil {
		t.Fatal(err)
	}
	env := strings.Join(spec.Env, " ")
	if spec.NetworkMode != "container:0123456789abcdef" || spec.CPUShares != proxyCPU || spec.MemoryLimit != 64<<20 || spec.Labels[labelRole] != roleProxy ||
		!slices.Contains(spec.CapAdd, "NET_ADMIN") || spec.HealthCheck == nil || !slices.Equal(spec.HealthCheck.Test, []string{"CMD", "/wharf", "proxy", "--check"}) ||
		!strings.Contains(env, "WHARF_PROXY_CONFIG_URI=http://127.0.0.1:51679/wharf/proxy/"+proxy.token) || !slices.Contains(spec.Command, "--capture=nftables") {
		t.Fatalf("proxy spec %+v", spec)
	}
	app, err := m.spec(m.containers["app"])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(app.Mounts, runtime.Mount{Source: m.sc.hostsPath(), Target: "/etc/hosts", ReadOnly: true}) {
		t.Fatalf("app mounts %+v", app.Mounts)
	}

	// Bridge tasks join their pause container too.
	m.td.NetworkMode = ecsapi.NetworkModeBridge
	app, _ = m.spec(m.containers["app"])
	if app.NetworkMode != "container:0123456789abcdef" || len(app.PortBindings) != 0 || app.Hostname != "" {
		t.Fatalf("bridge app spec %+v", app)
	}

	// When the control plane lists the proxy, its name is used and it is
	// reported.
	m = scTestManager(t, true)
	if c := m.containers["ecs-service-connect-Ab12Cd"]; c == nil || c.hidden || len(m.containers) != 3 {
		t.Fatalf("listed proxy %+v %v", c, m.order)
	}
}

func TestProxyConfigLongPoll(t *testing.T) {
	m := scTestManager(t, false)
	sc := m.sc
	if err := os.MkdirAll(sc.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	sc.setup(hostsBase{IP: "10.0.0.5"}, nil, "")
	sc.mu.Lock()
	first := sc.index
	sc.mu.Unlock()
	var doc sidecar.Document
	if err := json.Unmarshal(sc.serve(context.Background(), 0, time.Second), &doc); err != nil || doc.Index != first || len(doc.Config.Listeners) != 1 {
		t.Fatalf("first answer %+v %v", doc, err)
	}
	if sc.proxyReady() {
		t.Fatal("ready before the proxy said it applied the configuration")
	}

	// The proxy asks with the index it applied: that makes it ready and
	// wakes the task's start; the answer waits for a change.
	answers := make(chan []byte, 1)
	go func() { answers <- sc.serve(context.Background(), first, 10*time.Second) }()
	select {
	case ev := <-m.events:
		if ev.Action != "proxy-ready" {
			t.Fatalf("event %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event after the proxy acknowledged its configuration")
	}
	if !sc.proxyReady() {
		t.Fatal("not ready after the acknowledgement")
	}
	b, err := os.ReadFile(sc.hostsPath())
	if err != nil || strings.Contains(string(b), "banana") {
		t.Fatalf("hosts before the view: %q %v", b, err)
	}
	start := time.Now()
	sc.refresh(&agentapi.NamespaceView{Arn: "arn:ns", Services: []agentapi.ServiceView{{DiscoveryName: "banana", DNSName: "banana.fruit", Port: 80, Endpoints: []agentapi.Endpoint{{Address: "10.0.0.9:15000"}}}}}, "")
	select {
	case b := <-answers:
		if err := json.Unmarshal(b, &doc); err != nil || doc.Index <= first || len(doc.Config.Upstreams) != 1 {
			t.Fatalf("second answer %s %v", b, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("the waiting request answered %v after the change", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting request did not answer the change")
	}
	if b, _ := os.ReadFile(sc.hostsPath()); !strings.Contains(string(b), "127.255.0.1\tbanana.fruit banana\n") {
		t.Fatalf("hosts after the view:\n%s", b)
	}
	// The same view again changes nothing.
	sc.mu.Lock()
	idx := sc.index
	sc.mu.Unlock()
	sc.refresh(&agentapi.NamespaceView{Arn: "arn:ns", Services: []agentapi.ServiceView{{DiscoveryName: "banana", DNSName: "banana.fruit", Port: 80, Endpoints: []agentapi.Endpoint{{Address: "10.0.0.9:15000"}}}}}, "")
	if sc.mu.Lock(); sc.index != idx {
		t.Fatal("an unchanged view published a new configuration")
	}
	sc.mu.Unlock()
	// A restarted agent's index differs from anything the proxy has.
	if nextIndex(idx) <= idx {
		t.Fatal("indexes must grow")
	}
}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }
