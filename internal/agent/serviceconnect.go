package agent

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/wharfhq/wharf/internal/agent/hostnet"
	"github.com/wharfhq/wharf/internal/api/agentapi"
	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/runtime"
	"github.com/wharfhq/wharf/internal/sidecar"
)

// Service Connect on the node. Every task the control plane assigns with a
// ServiceConnect configuration gets an extra container running `wharf
// proxy` in the task's network namespace (a pause container's, which bridge
// tasks get too). The proxy long-polls its configuration from the agent's
// metadata server; the agent renders it, and the task's /etc/hosts (bind
// mounted into every application container and rewritten in place), from
// the task's assignment and the live view of its namespace.

const (
	// proxyContainerPrefix starts the injected container's name, as ECS
	// names it.
	proxyContainerPrefix = "ecs-service-connect-"

	// The proxy's share of the task's resources, taken from the task's
	// reservation rather than added to it (ECS's guidance: 256 CPU units
	// and 64 MiB).
	proxyCPU       = 256
	proxyMemoryMiB = 64
	// proxyAdminPort serves the proxy's /metrics and /ready in the task's
	// network namespace.
	proxyAdminPort = 15090
	// proxyDrain bounds the proxy's drain on SIGTERM; it gets a little
	// more before SIGKILL.
	proxyDrain = 20 * time.Second
	// viewWait bounds how long a starting task waits for its namespace's
	// view, so that its applications start with the aliases that exist.
	viewWait = 5 * time.Second
	// proxyConfigWait is how long a proxy's configuration request waits
	// for a change.
	proxyConfigWait = 20 * time.Second
)

// scTask is a Service Connect task's state on the node.
type scTask struct {
	m    *taskManager
	conf agentapi.TaskServiceConnect
	// proxy is the proxy container's name; hidden when the control plane
	// does not list it among the task's containers (it is then neither
	// reported nor shown by the metadata endpoint).
	proxy  string
	hidden bool
	dir    string

	mu       sync.Mutex
	prepared bool
	ip       string // where the agent reaches the proxy's admin port
	base     hostsBase
	vips     *vipTable
	hosts    []byte // the hosts file's content
	config   []byte // the configuration last rendered, without its index
	index    int64
	doc      []byte        // the Document served
	changed  chan struct{} // closed when doc changes
	ready    bool          // the proxy has applied index
	// view and trust are the namespace's view and the certificate
	// authority's bundle last rendered with (view nil before it arrived).
	view  *agentapi.NamespaceView
	trust string
	// cert is the task's TLS certificate, when it needs one; renewAt is
	// when to ask for the next, retryAt when to try again after a failure.
	cert             *sidecar.TLSMaterial
	renewAt, retryAt time.Time
	retryDelay       time.Duration
	skipped          []string // what the last render left out, and why
}

// serviceConnectMode reports whether the agent runs Service Connect for a
// task of network mode nm: awsvpc and bridge tasks (the control plane
// refuses host mode).
func serviceConnectMode(nm ecsapi.NetworkMode) bool {
	return nm == ecsapi.NetworkModeAwsvpc || nm == ecsapi.NetworkModeBridge || nm == ""
}

// injectServiceConnect adds the proxy container to the task's definition
// (the manager's own copy) and makes every application container depend on
// it. It runs before the manager builds its containers.
func (m *taskManager) injectServiceConnect(at *agentapi.AssignedTask) {
	sc := &scTask{m: m, conf: *at.ServiceConnect, dir: m.a.serviceConnectDir(at.Task.TaskArn), changed: make(chan struct{})}
	// ECS lists the proxy among the task's containers: when the control
	// plane does, its name is the one to use and report.
	defined := map[string]bool{}
	for _, cd := range m.td.ContainerDefinitions {
		defined[cd.Name] = true
	}
	for _, c := range at.Task.Containers {
		if strings.HasPrefix(c.Name, proxyContainerPrefix) && !defined[c.Name] {
			sc.proxy = c.Name
		}
	}
	if sc.proxy == "" {
		sc.proxy, sc.hidden = proxyContainerPrefix+taskID(at.Task.TaskArn)[:6], true
	}
	cds := make([]ecsapi.ContainerDefinition, 0, len(m.td.ContainerDefinitions)+1)
	for _, cd := range m.td.ContainerDefinitions {
		cd.DependsOn = append(slices.Clip(cd.DependsOn), ecsapi.ContainerDependency{ContainerName: sc.proxy, Condition: ecsapi.ContainerConditionStart})
		cds = append(cds, cd)
	}
	interval, timeout, retries := int32(10), int32(2), int32(3)
	mem := int32(proxyMemoryMiB)
	cds = append(cds, ecsapi.ContainerDefinition{
		Name:             sc.proxy,
		Essential:        aws.Bool(true),
		Cpu:              proxyCPU,
		Memory:           &mem,
		HealthCheck:      &ecsapi.HealthCheck{Command: []string{"CMD", "/wharf", "proxy", "--check"}, Interval: &interval, Timeout: &timeout, Retries: &retries},
		LogConfiguration: sc.conf.ProxyLogConfiguration,
	})
	m.td.ContainerDefinitions = cds
	m.sc = sc
}

// proxySpec is the engine's form of the proxy container.
func (m *taskManager) proxySpec(c *ctr) *runtime.ContainerSpec {
	gateway := m.a.metadataHost(m.td.NetworkMode)
	spec := &runtime.ContainerSpec{
		Name:  c.dockerName,
		Image: c.def.Image,
		// nftables capture lets the proxy's alias listeners coexist with
		// applications listening on the aliases' ports on every address.
		Command: []string{"--capture=" + sidecar.CaptureNFTables, "--drain-timeout=" + proxyDrain.String()},
		Env: []string{
			"AWS_EXECUTION_ENV=AWS_ECS_EC2",
			fmt.Sprintf("ECS_CONTAINER_METADATA_URI=http://%s/v3/%s", gateway, c.token),
			fmt.Sprintf("ECS_CONTAINER_METADATA_URI_V4=http://%s/v4/%s", gateway, c.token),
			// The garbage collector works harder before the limit kills.
			fmt.Sprintf("GOMEMLIMIT=%dMiB", proxyMemoryMiB*3/4),
			fmt.Sprintf("WHARF_PROXY_CONFIG_URI=http://%s/wharf/proxy/%s", gateway, c.token),
		},
		Labels:         m.labels(c.def.Name, roleProxy),
		NetworkMode:    "container:" + m.pauseID,
		CPUShares:      proxyCPU,
		MemoryLimit:    proxyMemoryMiB << 20,
		CapAdd:         []string{"NET_ADMIN"}, // in the task's namespace only
		ReadonlyRootfs: true,
		StopTimeout:    proxyDrain + 5*time.Second,
	}
	spec.Labels[labelMetadataToken] = c.token
	if hc := c.def.HealthCheck; hc != nil {
		spec.HealthCheck = &runtime.HealthCheck{Test: hc.Command, Interval: time.Duration(*hc.Interval) * time.Second, Timeout: time.Duration(*hc.Timeout) * time.Second, Retries: int(*hc.Retries)}
	}
	applyLogConfiguration(spec, c.def.LogConfiguration)
	return spec
}

// prepare readies a Service Connect task before its containers are
// created: it joins the agent's namespace watch, waits a little for the
// namespace's view, and writes the hosts file and the first proxy
// configuration.
func (sc *scTask) prepare(ctx context.Context) error {
	m := sc.m
	if err := os.MkdirAll(sc.dir, 0o700); err != nil {
		return fmt.Errorf("keep the task's Service Connect state: %w", err)
	}
	m.a.sc.add(sc)
	if m.td.NetworkMode != ecsapi.NetworkModeAwsvpc {
		m.a.linkNetworks() // its proxy may call awsvpc tasks
	}
	m.mu.Lock()
	base := hostsBase{IP: cmp.Or(m.ip, m.pauseIP)}
	if len(m.pauseID) >= 12 {
		base.Hostname = m.pauseID[:12] // the engine's default host name
	}
	if m.pauseHostname != "" {
		base.Hostname = m.pauseHostname
	}
	if m.td.NetworkMode != ecsapi.NetworkModeAwsvpc {
		for _, cd := range m.td.ContainerDefinitions {
			for _, h := range cd.ExtraHosts {
				base.Extra = append(base.Extra, hostEntry{addr: h.IpAddress, names: h.Hostname})
			}
		}
	}
	m.mu.Unlock()

	deadline := time.NewTimer(viewWait)
	defer deadline.Stop()
	var view *agentapi.NamespaceView
	var trust string
wait:
	for {
		var known bool
		var next <-chan struct{}
		view, trust, known, next = m.a.sc.view(sc.conf.Namespace)
		if known {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.wake:
			return errStopRequested
		case <-next:
		case <-deadline.C:
			m.log.Warn("the Service Connect namespace's view has not arrived; starting with the aliases known so far", "namespace", sc.conf.NamespaceName)
			break wait
		}
	}
	// The first configuration the proxy sees has the TLS it needs: an
	// adopted proxy would otherwise drop its TLS ingress meanwhile.
	if needsCertificate(&sc.conf, view) {
		if err := sc.obtainCertificate(ctx); err != nil {
			return err
		}
	}
	sc.setup(base, view, trust)
	return nil
}

func (sc *scTask) setup(base hostsBase, view *agentapi.NamespaceView, trust string) {
	sc.mu.Lock()
	sc.base, sc.ip = base, base.IP
	if sc.vips == nil {
		sc.vips = loadVIPs(sc.vipsPath())
	}
	sc.prepared = true
	sc.mu.Unlock()
	sc.refresh(view, trust)
}

func (sc *scTask) hostsPath() string { return filepath.Join(sc.dir, "hosts") }
func (sc *scTask) vipsPath() string  { return filepath.Join(sc.dir, "vips.json") }

// refresh renders the task's proxy configuration and hosts file for its
// namespace's view (nil before it arrived) and the certificate authority's
// trust bundle ("" without TLS services), publishes the configuration when
// it changed and rewrites the hosts file in place when it did.
func (sc *scTask) refresh(view *agentapi.NamespaceView, trust string) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.view = view
	if trust != "" {
		sc.trust = trust
	}
	sc.render()
}

// render is refresh with the view it has. Call with sc.mu held.
func (sc *scTask) render() {
	if !sc.prepared {
		return
	}
	cfg, aliases, skipped := proxyConfig(&sc.conf, sc.view, sc.vips, sc.m.a.cfg.AvailabilityZone, sc.cert, sc.trust)
	if !slices.Equal(skipped, sc.skipped) {
		for _, s := range skipped {
			sc.m.log.Warn("part of the Service Connect configuration is left out", "reason", s)
		}
		sc.skipped = skipped
	}
	if err := sc.vips.save(sc.vipsPath()); err != nil {
		sc.m.log.Warn("saving the Service Connect alias addresses failed; a restarted agent may move them", "err", err)
	}
	if hosts := renderHosts(sc.base, aliases); !slices.Equal(hosts, sc.hosts) {
		if err := writeInPlace(sc.hostsPath(), hosts); err != nil {
			sc.m.log.Warn("rewriting the task's hosts file failed", "err", err)
		} else {
			sc.hosts = hosts
		}
	}
	b, _ := json.Marshal(cfg)
	if slices.Equal(b, sc.config) {
		return
	}
	sc.config = b
	sc.index = nextIndex(sc.index)
	sc.doc, _ = json.Marshal(sidecar.Document{Index: sc.index, Config: cfg})
	sc.ready = false
	close(sc.changed)
	sc.changed = make(chan struct{})
}

// nextIndex returns a configuration index after prev that no earlier agent
// process handed out either (clock time), so that a proxy never mistakes
// a restarted agent's configuration for the one it has.
func nextIndex(prev int64) int64 {
	return max(prev+1, time.Now().UnixNano())
}

// serve answers a proxy's configuration request: at once when the proxy
// has another index than the current one, else when the configuration
// changes or after wait. A request with the current index also says that
// the proxy applied it.
func (sc *scTask) serve(ctx context.Context, index int64, wait time.Duration) []byte {
	sc.mu.Lock()
	doc, changed, current := sc.doc, sc.changed, index == sc.index && sc.doc != nil
	becameReady := current && !sc.ready
	if current {
		sc.ready = true
	}
	sc.mu.Unlock()
	if becameReady {
		sc.m.event(runtime.Event{Action: "proxy-ready"}) // wakes a start waiting for it
	}
	if doc != nil && !current {
		return doc
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-changed:
	case <-t.C:
	case <-ctx.Done():
		return nil
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.doc
}

// proxyReady reports whether the proxy has applied its current
// configuration, which application containers wait for.
func (sc *scTask) proxyReady() bool {
	if sc.m.a.cfg.Simulated {
		return true
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.ready
}

// drainCallers gives the task's callers time to stop sending to it before
// its containers stop: the control plane deregistered the task when its
// stop was asked for, and callers' proxies learn that within moments.
func (sc *scTask) drainCallers(ctx context.Context) {
	d := sc.m.a.cfg.ServiceConnectDrain
	if d <= 0 || len(sc.conf.Services) == 0 {
		return
	}
	sc.m.log.Info("letting Service Connect callers drain before stopping", "delay", d)
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// remove forgets the task's Service Connect state; files too once the task
// has stopped.
func (sc *scTask) remove(stopped bool) {
	sc.m.a.sc.remove(sc)
	if stopped {
		os.RemoveAll(sc.dir)
	}
}

// proxyConfig renders a task's proxy configuration from its Service Connect
// assignment and its namespace's view (nil: not known yet), giving new
// services addresses from vips. It also returns the aliases for the hosts
// file, and why anything was left out.
//
// TLS needs the task's certificate (cert) for TLS ingresses and mutual TLS
// upstreams, and the certificate authority's bundle (trust) for TLS
// upstreams and mutual TLS ingresses; what lacks them is left out until
// they arrive.
func proxyConfig(sc *agentapi.TaskServiceConnect, view *agentapi.NamespaceView, vips *vipTable, zone string, cert *sidecar.TLSMaterial, trust string) (sidecar.Config, []hostAlias, []string) {
	cfg := sidecar.Config{
		ServiceName: sc.ServiceName,
		ClusterName: sc.ClusterName,
		Zone:        zone,
		Listeners:   []sidecar.Listener{},
		Upstreams:   []sidecar.Upstream{},
		TLS:         cert,
		TrustBundle: trust,
	}
	var skipped []string
	if sc.AccessLog != "" {
		cfg.AccessLog = &sidecar.AccessLog{Format: sc.AccessLog, IncludeQueryParameters: sc.AccessLogQueryStrings}
	}
	listening := map[string]bool{}
	for _, in := range sc.Services {
		addr := net.JoinHostPort("0.0.0.0", strconv.Itoa(int(in.IngressPort)))
		if listening[addr] {
			skipped = append(skipped, fmt.Sprintf("ingress of %s: port %d is another service's", in.DiscoveryName, in.IngressPort))
			continue
		}
		cfg.DiscoveryName = cmp.Or(cfg.DiscoveryName, in.DiscoveryName)
		if in.TLS != nil && (cert == nil || in.TLS.Mutual && trust == "") {
			skipped = append(skipped, fmt.Sprintf("ingress of %s: TLS without a certificate yet", in.DiscoveryName))
			continue
		}
		listening[addr] = true
		proto := strings.ToLower(in.Protocol)
		cfg.Listeners = append(cfg.Listeners, sidecar.Listener{Address: addr, Ingress: &sidecar.Ingress{
			DiscoveryName:       in.DiscoveryName,
			Protocol:            proto,
			AppAddress:          net.JoinHostPort("127.0.0.1", strconv.Itoa(int(in.ContainerPort))),
			PerRequestTimeoutMs: perRequest(proto, in.PerRequestTimeoutSeconds),
			IdleTimeoutMs:       sidecar.Millis(in.IdleTimeoutSeconds),
			TLS:                 in.TLS != nil,
			Mutual:              in.TLS != nil && in.TLS.Mutual,
		}})
	}
	if view == nil {
		return cfg, nil, skipped
	}
	services := slices.Clone(view.Services)
	sort.Slice(services, func(i, j int) bool { return services[i].DiscoveryName < services[j].DiscoveryName })
	var aliases []hostAlias
	for _, s := range services {
		if s.DiscoveryName == "" {
			continue
		}
		vip, err := vips.addr(s.DiscoveryName)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("%s: %v", s.DiscoveryName, err))
			continue
		}
		var names []string
		for _, n := range []string{s.DNSName, s.DiscoveryName} {
			if n != "" && !slices.ContainsFunc(names, func(x string) bool { return strings.EqualFold(x, n) }) {
				names = append(names, n)
			}
		}
		aliases = append(aliases, hostAlias{addr: vip, names: names})
		if s.Port <= 0 || s.Port > 65535 {
			continue
		}
		if s.TLS != nil && (trust == "" || s.TLS.Mutual && cert == nil) {
			skipped = append(skipped, fmt.Sprintf("%s: TLS without a certificate or trust bundle yet", s.DiscoveryName))
			continue
		}
		proto := strings.ToLower(s.Protocol)
		u := sidecar.Upstream{
			Name:                s.DiscoveryName,
			Protocol:            proto,
			Endpoints:           []sidecar.Endpoint{},
			PerRequestTimeoutMs: perRequest(proto, s.PerRequestTimeoutSeconds),
			IdleTimeoutMs:       sidecar.Millis(s.IdleTimeoutSeconds),
		}
		if s.TLS != nil {
			// Every certificate of a TLS service names its discovery name
			// (its DNS names too, unless the alias leaves it defaulted).
			u.TLS, u.Mutual, u.ServerName = true, s.TLS.Mutual, s.DiscoveryName
		}
		if r := s.Routing; r != nil {
			u.Balancer, u.ZoneAware, u.RetryNonIdempotent = r.Balancer, r.ZoneAware, r.RetryNonIdempotent
			if r.Retries != nil {
				n := int(*r.Retries)
				u.Retries = &n
			}
		}
		seen := map[string]bool{}
		for _, e := range s.Endpoints {
			if e.Address != "" && !seen[e.Address] {
				seen[e.Address] = true
				u.Endpoints = append(u.Endpoints, sidecar.Endpoint{Address: e.Address, Zone: e.Zone})
			}
		}
		cfg.Upstreams = append(cfg.Upstreams, u)
		cfg.Listeners = append(cfg.Listeners, sidecar.Listener{Address: net.JoinHostPort(vip.String(), strconv.Itoa(int(s.Port))), Upstream: s.DiscoveryName})
	}
	return cfg, aliases, skipped
}

// perRequest is a per-request timeout for the proxy: TCP has none.
func perRequest(protocol string, seconds *int32) *int64 {
	if protocol == "" || protocol == "tcp" {
		return nil
	}
	return sidecar.Millis(seconds)
}

// provisionBridge creates and starts the pause container holding a bridge
// Service Connect task's network namespace, on the default bridge, with
// the task's port mappings and its ingress ports published on it; the
// task's containers and the proxy join it. It records where the engine
// bound each port.
func (m *taskManager) provisionBridge(ctx context.Context) error {
	err := m.runPause(ctx, "bridge", func(spec *runtime.ContainerSpec) {
		spec.Hostname = m.bridgeHostname()
		for _, cd := range m.td.ContainerDefinitions {
			if cd.Name == m.sc.proxy {
				continue
			}
			if len(spec.DNSServers) == 0 {
				spec.DNSServers, spec.DNSSearch = cd.DnsServers, cd.DnsSearchDomains
			}
			for _, pm := range cd.PortMappings {
				if pm.ContainerPort != nil {
					spec.PortBindings = append(spec.PortBindings, runtime.PortBinding{ContainerPort: int(*pm.ContainerPort), HostPort: int(deref(pm.HostPort)), Protocol: string(orDefault(pm.Protocol, ecsapi.TransportProtocolTcp))})
				}
			}
		}
		for _, in := range m.sc.conf.Services {
			spec.PortBindings = append(spec.PortBindings, runtime.PortBinding{ContainerPort: int(in.IngressPort), Protocol: "tcp"})
		}
		if len(spec.DNSServers) == 0 {
			if ip := m.a.resolver(hostnet.BridgeGateway()); ip != "" {
				spec.DNSServers = []string{ip}
			}
		}
	})
	if err != nil {
		return err
	}
	st, err := m.a.rt.Inspect(ctx, m.pauseID)
	if err != nil {
		return fmt.Errorf("inspect the network namespace: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pauseIP, m.pauseHostname = st.Networks["bridge"], m.bridgeHostname()
	for name, bs := range bridgeBindings(m.td.ContainerDefinitions, m.sc.conf.Services, st.Ports) {
		if c := m.containers[name]; c != nil {
			c.bindings = bs
		}
	}
	return nil
}

// bridgeHostname is the host name of a bridge Service Connect task: the
// first its containers ask for, as they cannot have one each.
func (m *taskManager) bridgeHostname() string {
	for _, cd := range m.td.ContainerDefinitions {
		if cd.Hostname != "" {
			return cd.Hostname
		}
	}
	return ""
}

// bridgeBindings attributes the ports published on a bridge Service
// Connect task's pause container to the task's containers: each container
// gets its port mappings with the host ports the engine chose, and the
// container an ingress names gets a binding of the ingress port too, which
// is how the control plane learns the host port callers use. The engine
// may bind a container port on each host address (0.0.0.0 and ::) with a
// different host port; each request takes one of each address.
func bridgeBindings(cds []ecsapi.ContainerDefinition, ingress []agentapi.ServiceConnectIngress, ports []runtime.PortBinding) map[string][]types.NetworkBinding {
	type key struct {
		port          int
		proto, hostIP string
	}
	free := map[key][]int{} // host ports not yet attributed, ascending
	var hostIPs []string
	for _, p := range ports {
		k := key{p.ContainerPort, cmp.Or(p.Protocol, "tcp"), cmp.Or(p.HostIP, "0.0.0.0")}
		free[k] = append(free[k], p.HostPort)
		if !slices.Contains(hostIPs, k.hostIP) {
			hostIPs = append(hostIPs, k.hostIP)
		}
	}
	for k := range free {
		slices.Sort(free[k])
	}
	slices.Sort(hostIPs)
	type request struct {
		container string
		port      int
		proto     string
		host      int // 0: any
	}
	var fixed, dynamic []request
	for _, cd := range cds {
		for _, pm := range cd.PortMappings {
			if pm.ContainerPort == nil {
				continue
			}
			r := request{cd.Name, int(*pm.ContainerPort), string(orDefault(pm.Protocol, ecsapi.TransportProtocolTcp)), int(deref(pm.HostPort))}
			if r.host != 0 {
				fixed = append(fixed, r)
			} else {
				dynamic = append(dynamic, r)
			}
		}
	}
	for _, in := range ingress {
		dynamic = append(dynamic, request{in.ContainerName, int(in.IngressPort), "tcp", 0})
	}
	out := map[string][]types.NetworkBinding{}
	for _, r := range append(fixed, dynamic...) {
		for _, ip := range hostIPs {
			k := key{r.port, r.proto, ip}
			i := slices.IndexFunc(free[k], func(hp int) bool { return r.host == 0 || hp == r.host })
			if i < 0 {
				continue
			}
			hp := free[k][i]
			free[k] = slices.Delete(free[k], i, i+1)
			out[r.container] = append(out[r.container], types.NetworkBinding{
				BindIP: aws.String(ip), ContainerPort: aws.Int32(int32(r.port)), HostPort: aws.Int32(int32(hp)), Protocol: types.TransportProtocol(r.proto),
			})
		}
	}
	return out
}
