package metadata

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/wharfhq/wharf/internal/runtime"
)

// Source is a task the endpoint answers for; the agent's task managers are
// Sources. Its methods are called concurrently.
type Source interface {
	// TaskMetadata returns the task's metadata, with the containers it
	// shows.
	TaskMetadata(ctx context.Context) Task
	// ContainerMetadata returns the metadata of the task's container name.
	ContainerMetadata(ctx context.Context, name string) Container
	// ContainerID returns the engine id of the task's container name, ""
	// before it is created.
	ContainerID(name string) string
	// ContainerIDs returns the engine ids of the task's created
	// containers.
	ContainerIDs() []string
	// ProxyConfig answers the configuration request of the task's Service
	// Connect proxy, the container name, that has applied the
	// configuration index: a sidecar.Document, or nil when there is none
	// yet. ok is false when name is not the task's proxy.
	ProxyConfig(ctx context.Context, name string, index int64) (doc []byte, ok bool)
}

// Stater samples a container's resource use; runtime.Runtime is one.
type Stater interface {
	Stats(ctx context.Context, id string) (runtime.Stats, error)
}

// Server is the task metadata endpoint. It is an http.Handler; Listen
// serves it on a port of the host.
type Server struct {
	stats   Stater
	handler http.Handler

	mu      sync.Mutex
	byToken map[string]ref
	srv     *http.Server
}

// ref is the container a token stands for.
type ref struct {
	src  Source
	name string
}

// New returns a server that reads containers' resource use from stats and
// knows no token yet.
func New(stats Stater) *Server {
	s := &Server{stats: stats, byToken: map[string]ref{}}
	mux := http.NewServeMux()
	for _, v := range []string{"v3", "v4"} {
		mux.HandleFunc("GET /"+v+"/{token}", s.container)
		mux.HandleFunc("GET /"+v+"/{token}/task", s.task)
		mux.HandleFunc("GET /"+v+"/{token}/stats", s.containerStats)
		mux.HandleFunc("GET /"+v+"/{token}/task/stats", s.taskStats)
	}
	// A Service Connect proxy's configuration (WHARF_PROXY_CONFIG_URI).
	mux.HandleFunc("GET /wharf/proxy/{token}", s.proxyConfig)
	s.handler = mux
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Listen serves the endpoint on port (0 picks one) of every host address,
// until Close, and returns the port. Containers reach it through their
// network's gateway, which is a host address; the tokens authenticate
// them.
func (s *Server) Listen(port int) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort("0.0.0.0", strconv.Itoa(port)))
	if err != nil {
		return 0, err
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go srv.Serve(ln)
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Close stops serving and closes the open connections.
func (s *Server) Close() error {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Close()
}

// Add makes token stand for the container name of src.
func (s *Server) Add(token string, src Source, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byToken[token] = ref{src: src, name: name}
}

// Remove forgets a token.
func (s *Server) Remove(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byToken, token)
}

// RemoveSource forgets every token of src.
func (s *Server) RemoveSource(src Source) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for tok, ref := range s.byToken {
		if ref.src == src {
			delete(s.byToken, tok)
		}
	}
}

func (s *Server) lookup(w http.ResponseWriter, r *http.Request) (ref, bool) {
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

func (s *Server) container(w http.ResponseWriter, r *http.Request) {
	if ref, ok := s.lookup(w, r); ok {
		writeJSON(w, ref.src.ContainerMetadata(r.Context(), ref.name))
	}
}

func (s *Server) task(w http.ResponseWriter, r *http.Request) {
	if ref, ok := s.lookup(w, r); ok {
		writeJSON(w, ref.src.TaskMetadata(r.Context()))
	}
}

func (s *Server) containerStats(w http.ResponseWriter, r *http.Request) {
	ref, ok := s.lookup(w, r)
	if !ok {
		return
	}
	id := ref.src.ContainerID(ref.name)
	if id == "" {
		writeJSON(w, nil)
		return
	}
	stats, err := s.stats.Stats(r.Context(), id)
	if err != nil {
		http.Error(w, `{"error":"stats unavailable"}`, http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(stats)
}

func (s *Server) taskStats(w http.ResponseWriter, r *http.Request) {
	ref, ok := s.lookup(w, r)
	if !ok {
		return
	}
	out := map[string]json.RawMessage{}
	for _, id := range ref.src.ContainerIDs() {
		if stats, err := s.stats.Stats(r.Context(), id); err == nil {
			out[id] = json.RawMessage(stats)
		} else {
			out[id] = json.RawMessage("null")
		}
	}
	writeJSON(w, out)
}

// proxyConfig serves a Service Connect proxy its configuration: GET
// ?index=N, with the index of the configuration the proxy applied, waits
// as the task's Source decides.
func (s *Server) proxyConfig(w http.ResponseWriter, r *http.Request) {
	ref, ok := s.lookup(w, r)
	if !ok {
		return
	}
	index, _ := strconv.ParseInt(r.URL.Query().Get("index"), 10, 64)
	doc, ok := ref.src.ProxyConfig(r.Context(), ref.name, index)
	if !ok {
		http.Error(w, `{"error":"not a Service Connect proxy"}`, http.StatusNotFound)
		return
	}
	if doc == nil {
		http.Error(w, `{"error":"the task's configuration is not ready yet"}`, http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(doc)
}
