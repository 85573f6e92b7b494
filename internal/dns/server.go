package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/wharfhq/wharf/internal/store"
)

// Config says where the DNS server listens and what it serves.
type Config struct {
	Store *store.Store
	// Addr is host:port for UDP and TCP; port 0 picks one free port used
	// for both.
	Addr string
	// Forward, when non-empty, lists upstream resolvers (host:port) for
	// names outside Wharf's zones; empty means answer REFUSED.
	Forward []string
	Logger  *slog.Logger
}

// Server is Wharf's authoritative DNS server for Cloud Map namespaces.
type Server struct {
	cfg  Config
	log  *slog.Logger
	udp  net.PacketConn
	tcp  net.Listener
	addr string
	glue []net.IP
	fwd  *forwarder

	idx       atomic.Pointer[index]
	ready     chan struct{}
	readyOnce sync.Once
	runCtx    atomic.Pointer[context.Context]
	loads     atomic.Int64 // full loads done, for tests

	mu          sync.Mutex
	watchCancel context.CancelFunc // ends the current watch; tests break it
	afterLoad   func(rev int64)    // test hook, called after each full load
}

// New checks cfg and binds the UDP and TCP listeners; Run serves them.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("dns: no store")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("dns listen address %q: want host:port: %w", cfg.Addr, err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, ready: make(chan struct{})}
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		s.glue = []net.IP{ip}
	}
	if err := s.listen(host, port); err != nil {
		return nil, err
	}
	if len(cfg.Forward) > 0 {
		for _, up := range cfg.Forward {
			uh, up2, err := net.SplitHostPort(up)
			if err != nil {
				s.closeListeners()
				return nil, fmt.Errorf("dns forwarder %q: want host:port: %w", up, err)
			}
			if sameAddr(net.JoinHostPort(uh, up2), s.addr) {
				s.closeListeners()
				return nil, fmt.Errorf("dns forwarder %q is this server itself; forward to another resolver", up)
			}
		}
		s.fwd = newForwarder(cfg.Forward)
	}
	return s, nil
}

// listen binds UDP and TCP on one port. With port 0 the UDP socket picks
// it; if TCP cannot have the same port, both try again.
func (s *Server) listen(host, port string) error {
	var lastErr error
	for range 20 {
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, port))
		if err != nil {
			return fmt.Errorf("dns listen udp %s: %w", net.JoinHostPort(host, port), err)
		}
		_, bound, _ := net.SplitHostPort(pc.LocalAddr().String())
		l, err := net.Listen("tcp", net.JoinHostPort(host, bound))
		if err != nil {
			pc.Close()
			lastErr = err
			if port != "0" {
				break
			}
			continue
		}
		s.udp, s.tcp = pc, l
		s.addr = net.JoinHostPort(host, bound)
		return nil
	}
	return fmt.Errorf("dns listen tcp on the udp port: %w", lastErr)
}

func (s *Server) closeListeners() {
	s.udp.Close()
	s.tcp.Close()
}

func sameAddr(a, b string) bool {
	ah, ap, _ := net.SplitHostPort(a)
	bh, bp, _ := net.SplitHostPort(b)
	if ap != bp {
		return false
	}
	ai, bi := net.ParseIP(ah), net.ParseIP(bh)
	if ai == nil || bi == nil {
		return ah == bh
	}
	return ai.Equal(bi) || (ai.IsLoopback() && bi.IsUnspecified()) || (ai.IsUnspecified() && bi.IsLoopback())
}

// Addr is the bound address, the same port for UDP and TCP.
func (s *Server) Addr() string { return s.addr }

// Ready is closed once the first full load of the records is served.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Run loads the Cloud Map records, follows the store and serves queries
// until ctx ends. It returns once the listeners are closed; an error means
// a listener failed.
func (s *Server) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.runCtx.Store(&ctx)
	h := recoverer{s}
	servers := []*dns.Server{
		{PacketConn: s.udp, Handler: h, UDPSize: maxQuerySize, MsgAcceptFunc: accept},
		{Listener: s.tcp, Handler: h, MsgAcceptFunc: accept, IdleTimeout: func() time.Duration { return 10 * time.Second }},
	}
	errc := make(chan error, len(servers))
	var wg sync.WaitGroup
	for _, srv := range servers {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.ActivateAndServe(); err != nil {
				errc <- err
				cancel()
			}
		}()
		// Shutdown fails on a server that has not started yet.
		select {
		case <-started:
		case <-ctx.Done():
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.follow(ctx)
	}()
	s.log.Info("dns server listening", "address", s.addr, "forward", s.cfg.Forward)
	<-ctx.Done()
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	for _, srv := range servers {
		srv.ShutdownContext(sctx)
	}
	// A server that never started still holds its socket.
	s.closeListeners()
	wg.Wait()
	select {
	case err := <-errc:
		return fmt.Errorf("dns server on %s: %w", s.addr, err)
	default:
		return nil
	}
}

// maxQuerySize is the largest UDP query read whole; longer ones arrive
// cut and are answered FORMERR.
const maxQuerySize = 4096

// accept screens requests before they are parsed: miekg/dns's
// DefaultMsgAcceptFunc, except that only QUERY is implemented (it lets
// NOTIFY through).
func accept(dh dns.Header) dns.MsgAcceptAction {
	const qr = 1 << 15
	if dh.Bits&qr != 0 {
		return dns.MsgIgnore
	}
	if opcode := int(dh.Bits>>11) & 0xF; opcode != dns.OpcodeQuery {
		return dns.MsgRejectNotImplemented
	}
	return dns.DefaultMsgAcceptFunc(dh)
}
