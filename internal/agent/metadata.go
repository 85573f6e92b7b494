package agent

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wharfhq/wharf/internal/agent/hostnet"
	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
)

// metadataServer is the task metadata endpoint (version 4, and 3 with the
// same answers): containers find their own and their task's metadata and
// stats at ECS_CONTAINER_METADATA_URI_V4, which carries a per-container
// token.
type metadataServer struct {
	a    *Agent
	ln   net.Listener
	srv  *http.Server
	port int

	mu      sync.Mutex
	byToken map[string]tokenRef
}

type tokenRef struct {
	m    *taskManager
	name string
}

func startMetadata(a *Agent, port int) (*metadataServer, error) {
	// Containers reach it through their network's gateway, which is a
	// host address; the token authenticates them.
	ln, err := net.Listen("tcp", net.JoinHostPort("0.0.0.0", strconv.Itoa(port)))
	if err != nil {
		return nil, err
	}
	s := &metadataServer{a: a, ln: ln, port: ln.Addr().(*net.TCPAddr).Port, byToken: map[string]tokenRef{}}
	mux := http.NewServeMux()
	for _, v := range []string{"v3", "v4"} {
		mux.HandleFunc("GET /"+v+"/{token}", s.container)
		mux.HandleFunc("GET /"+v+"/{token}/task", s.taskMetadata)
		mux.HandleFunc("GET /"+v+"/{token}/stats", s.containerStats)
		mux.HandleFunc("GET /"+v+"/{token}/task/stats", s.taskStats)
	}
	// A Service Connect proxy's configuration (WHARF_PROXY_CONFIG_URI).
	mux.HandleFunc("GET /wharf/proxy/{token}", s.proxyConfig)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

func (s *metadataServer) Close() error { return s.srv.Close() }

func (s *metadataServer) register(m *taskManager) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, c := range m.containers {
		s.byToken[c.token] = tokenRef{m: m, name: name}
	}
}

func (s *metadataServer) unregister(m *taskManager) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for tok, ref := range s.byToken {
		if ref.m == m {
			delete(s.byToken, tok)
		}
	}
}

// retoken points the metadata endpoint at a container's adopted token.
func (s *metadataServer) retoken(m *taskManager, name, old, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byToken, old)
	s.byToken[token] = tokenRef{m: m, name: name}
}

func (s *metadataServer) lookup(w http.ResponseWriter, r *http.Request) (tokenRef, bool) {
	s.mu.Lock()
	ref, ok := s.byToken[r.PathValue("token")]
	s.mu.Unlock()
	if !ok {
		http.Error(w, `{"error":"unknown container; use the URI in ECS_CONTAINER_METADATA_URI_V4"}`, http.StatusNotFound)
	}
	return ref, ok
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// metadataHost is the host:port containers of a network mode reach the
// endpoint at.
func (a *Agent) metadataHost(mode ecsapi.NetworkMode) string {
	host := "127.0.0.1"
	switch mode {
	case ecsapi.NetworkModeAwsvpc:
		if n := a.networkInfo(); n != nil {
			host = n.Gateway
		}
	case ecsapi.NetworkModeBridge, "":
		host = hostnet.BridgeGateway()
	}
	return net.JoinHostPort(host, strconv.Itoa(a.metadata.port))
}

type limits struct {
	CPU    float64 `json:"CPU"`
	Memory int64   `json:"Memory"`
}

type networkMetadata struct {
	NetworkMode              string   `json:"NetworkMode"`
	IPv4Addresses            []string `json:"IPv4Addresses,omitempty"`
	AttachmentIndex          *int     `json:"AttachmentIndex,omitempty"`
	MACAddress               string   `json:"MACAddress,omitempty"`
	IPv4SubnetCIDRBlock      string   `json:"IPv4SubnetCIDRBlock,omitempty"`
	PrivateDNSName           string   `json:"PrivateDNSName,omitempty"`
	SubnetGatewayIpv4Address string   `json:"SubnetGatewayIpv4Address,omitempty"`
}

type containerMetadata struct {
	DockerID      string            `json:"DockerId"`
	Name          string            `json:"Name"`
	DockerName    string            `json:"DockerName"`
	Image         string            `json:"Image"`
	ImageID       string            `json:"ImageID"`
	Labels        map[string]string `json:"Labels"`
	DesiredStatus string            `json:"DesiredStatus"`
	KnownStatus   string            `json:"KnownStatus"`
	ExitCode      *int32            `json:"ExitCode,omitempty"`
	Limits        limits            `json:"Limits"`
	CreatedAt     *time.Time        `json:"CreatedAt,omitempty"`
	StartedAt     *time.Time        `json:"StartedAt,omitempty"`
	FinishedAt    *time.Time        `json:"FinishedAt,omitempty"`
	Type          string            `json:"Type"`
	Networks      []networkMetadata `json:"Networks"`
	Health        *healthMetadata   `json:"Health,omitempty"`
	ContainerARN  string            `json:"ContainerARN"`
	LogDriver     string            `json:"LogDriver,omitempty"`
	LogOptions    map[string]string `json:"LogOptions,omitempty"`
}

type healthMetadata struct {
	Status string `json:"status"`
}

type taskMetadata struct {
	Cluster          string              `json:"Cluster"`
	TaskARN          string              `json:"TaskARN"`
	Family           string              `json:"Family"`
	Revision         string              `json:"Revision"`
	DesiredStatus    string              `json:"DesiredStatus"`
	KnownStatus      string              `json:"KnownStatus"`
	Limits           *limits             `json:"Limits,omitempty"`
	PullStartedAt    *time.Time          `json:"PullStartedAt,omitempty"`
	PullStoppedAt    *time.Time          `json:"PullStoppedAt,omitempty"`
	AvailabilityZone string              `json:"AvailabilityZone"`
	LaunchType       string              `json:"LaunchType"`
	Containers       []containerMetadata `json:"Containers"`
}

func (s *metadataServer) containerMeta(ctx context.Context, m *taskManager, name string) containerMetadata {
	m.mu.Lock()
	c := m.containers[name]
	cm := containerMetadata{
		DockerID:      c.id,
		Name:          name,
		DockerName:    c.dockerName,
		Image:         c.def.Image,
		Labels:        map[string]string{},
		DesiredStatus: m.desired,
		KnownStatus:   c.status,
		ExitCode:      c.exitCode,
		Limits:        limits{CPU: float64(c.def.Cpu)},
		Type:          "NORMAL",
		LogDriver:     "json-file",
	}
	if c.def.Memory != nil {
		cm.Limits.Memory = int64(*c.def.Memory)
	}
	if lc := c.def.LogConfiguration; lc != nil {
		cm.LogDriver, cm.LogOptions = string(lc.LogDriver), lc.Options
	}
	if c.health != "" {
		cm.Health = &healthMetadata{Status: string(c.health)}
	}
	for _, tc := range m.task.Containers {
		if tc.Name == name {
			cm.ContainerARN = tc.ContainerArn
		}
	}
	mode := string(m.td.NetworkMode)
	nm := networkMetadata{NetworkMode: mode}
	if m.ip != "" {
		zero := 0
		nm.IPv4Addresses, nm.MACAddress, nm.AttachmentIndex = []string{m.ip}, m.mac, &zero
		if n := m.a.networkInfo(); n != nil {
			nm.IPv4SubnetCIDRBlock, nm.SubnetGatewayIpv4Address = n.Subnet, n.Gateway+"/"+strings.SplitN(n.Subnet, "/", 2)[1]
		}
	}
	id := c.id
	m.mu.Unlock()
	if id != "" {
		if st, err := m.a.rt.Inspect(ctx, id); err == nil {
			cm.ImageID = st.ImageID
			cm.Labels = st.Labels
			if !st.StartedAt.IsZero() {
				cm.StartedAt = &st.StartedAt
			}
			if !st.FinishedAt.IsZero() && !st.Running {
				cm.FinishedAt = &st.FinishedAt
			}
			if m.ip == "" {
				for _, ip := range st.Networks {
					if ip != "" {
						nm.IPv4Addresses = append(nm.IPv4Addresses, ip)
					}
				}
			}
			if len(nm.IPv4Addresses) == 0 && m.pauseIP != "" {
				nm.IPv4Addresses = []string{m.pauseIP} // in its pause container's namespace
			}
		}
	}
	cm.Networks = []networkMetadata{nm}
	return cm
}

func (s *metadataServer) container(w http.ResponseWriter, r *http.Request) {
	if ref, ok := s.lookup(w, r); ok {
		writeJSON(w, s.containerMeta(r.Context(), ref.m, ref.name))
	}
}

func (s *metadataServer) taskMetadata(w http.ResponseWriter, r *http.Request) {
	ref, ok := s.lookup(w, r)
	if !ok {
		return
	}
	m := ref.m
	m.mu.Lock()
	tm := taskMetadata{
		Cluster:          m.a.cfg.Cluster,
		TaskARN:          m.task.TaskArn,
		Family:           m.td.Family,
		Revision:         strconv.Itoa(int(m.td.Revision)),
		DesiredStatus:    m.desired,
		KnownStatus:      m.status,
		PullStartedAt:    m.pullStart,
		PullStoppedAt:    m.pullStop,
		AvailabilityZone: m.a.cfg.AvailabilityZone,
		LaunchType:       "EC2",
	}
	if cpu, err := strconv.ParseFloat(m.td.Cpu, 64); err == nil {
		tm.Limits = &limits{CPU: cpu / 1024}
		tm.Limits.Memory, _ = strconv.ParseInt(m.td.Memory, 10, 64)
	}
	var names []string
	for _, name := range m.order {
		if !m.containers[name].hidden {
			names = append(names, name)
		}
	}
	m.mu.Unlock()
	for _, name := range names {
		tm.Containers = append(tm.Containers, s.containerMeta(r.Context(), m, name))
	}
	writeJSON(w, tm)
}

func (s *metadataServer) containerStats(w http.ResponseWriter, r *http.Request) {
	ref, ok := s.lookup(w, r)
	if !ok {
		return
	}
	ref.m.mu.Lock()
	id := ref.m.containers[ref.name].id
	ref.m.mu.Unlock()
	if id == "" {
		writeJSON(w, nil)
		return
	}
	stats, err := s.a.rt.Stats(r.Context(), id)
	if err != nil {
		http.Error(w, `{"error":"stats unavailable"}`, http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(stats)
}

func (s *metadataServer) taskStats(w http.ResponseWriter, r *http.Request) {
	ref, ok := s.lookup(w, r)
	if !ok {
		return
	}
	ref.m.mu.Lock()
	var ids []string
	for _, name := range ref.m.order {
		if id := ref.m.containers[name].id; id != "" {
			ids = append(ids, id)
		}
	}
	ref.m.mu.Unlock()
	out := map[string]json.RawMessage{}
	for _, id := range ids {
		if stats, err := s.a.rt.Stats(r.Context(), id); err == nil {
			out[id] = json.RawMessage(stats)
		} else {
			out[id] = json.RawMessage("null")
		}
	}
	writeJSON(w, out)
}

// proxyConfig serves a Service Connect proxy its configuration, a
// sidecar.Document: GET ?index=N answers at once when N is not the current
// index, else when the configuration changes or after proxyConfigWait.
func (s *metadataServer) proxyConfig(w http.ResponseWriter, r *http.Request) {
	ref, ok := s.lookup(w, r)
	if !ok {
		return
	}
	sc := ref.m.sc
	if sc == nil || ref.name != sc.proxy {
		http.Error(w, `{"error":"not a Service Connect proxy"}`, http.StatusNotFound)
		return
	}
	index, _ := strconv.ParseInt(r.URL.Query().Get("index"), 10, 64)
	doc := sc.serve(r.Context(), index, proxyConfigWait)
	if doc == nil {
		http.Error(w, `{"error":"the task's configuration is not ready yet"}`, http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(doc)
}
