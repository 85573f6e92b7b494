package hostnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// Relays are the DNS relays one owner (an agent) runs on its containers'
// networks' gateways. Containers resolve names through a relay on their
// network's gateway (port 53, which is all a container's resolver
// configuration can name) that forwards every query to Wharf's DNS server.
// Owners sharing a host (the nodes of `wharf dev --nodes N`, or several
// processes) each listen on the gateway's port with SO_REUSEPORT: the
// kernel spreads queries over them, and the others keep answering when one
// stops. The zero value is not usable; call NewRelays.
type Relays struct {
	mu     sync.Mutex
	byIP   map[string]*relay
	closed bool
}

// ErrClosed is returned by Ensure after Close.
var ErrClosed = errors.New("the DNS relays are shut down")

// NewRelays returns an empty set of relays.
func NewRelays() *Relays { return &Relays{byIP: map[string]*relay{}} }

type relay struct {
	mu       sync.Mutex
	upstream string

	servers []*dns.Server
	conns   []io.Closer
	wg      sync.WaitGroup // the servers' goroutines
}

// Ensure makes sure a relay listens on ip:53, over UDP and TCP, and
// forwards to upstream (host:port), taking the new upstream when one
// listens already. It reports whether it started the relay now.
func (rs *Relays) Ensure(ip, upstream string) (started bool, err error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.closed {
		return false, ErrClosed
	}
	if r, ok := rs.byIP[ip]; ok {
		r.setUpstream(upstream)
		return false, nil
	}
	r, err := startRelay(net.JoinHostPort(ip, "53"), upstream)
	if err != nil {
		return false, err
	}
	rs.byIP[ip] = r
	return true, nil
}

// Close shuts every relay down and waits for their goroutines; later
// Ensure calls start none.
func (rs *Relays) Close() {
	rs.mu.Lock()
	rs.closed = true
	byIP := rs.byIP
	rs.byIP = map[string]*relay{}
	rs.mu.Unlock()
	for _, r := range byIP {
		r.shutdown()
	}
}

// startRelay listens on addr over UDP and TCP.
func startRelay(addr, upstream string) (*relay, error) {
	lc := net.ListenConfig{Control: reusePort}
	pc, err := lc.ListenPacket(context.Background(), "udp", addr)
	if err != nil {
		return nil, err
	}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		pc.Close()
		return nil, err
	}
	r := &relay{upstream: upstream, conns: []io.Closer{pc, ln}}
	for _, srv := range []*dns.Server{{PacketConn: pc}, {Listener: ln}} {
		srv.Handler, srv.ReadTimeout, srv.WriteTimeout = r, 5*time.Second, 5*time.Second
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		failed := make(chan error, 1)
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := srv.ActivateAndServe(); err != nil {
				failed <- err
			}
		}()
		// Shutdown refuses a server that has not started yet.
		select {
		case <-started:
		case err := <-failed:
			r.shutdown()
			return nil, fmt.Errorf("serve DNS on %s: %w", addr, err)
		}
		r.servers = append(r.servers, srv)
	}
	return r, nil
}

// shutdown stops the relay's servers and waits for them.
func (r *relay) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range r.servers {
		srv.ShutdownContext(ctx)
	}
	// The sockets close even when a server's shutdown timed out.
	for _, c := range r.conns {
		c.Close()
	}
	r.wg.Wait()
}

func (r *relay) setUpstream(addr string) {
	r.mu.Lock()
	r.upstream = addr
	r.mu.Unlock()
}

// ServeDNS forwards a query and relays the answer, retrying over TCP when
// a UDP answer was truncated.
func (r *relay) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	r.mu.Lock()
	upstream := r.upstream
	r.mu.Unlock()
	proto := "udp"
	if _, ok := w.LocalAddr().(*net.TCPAddr); ok {
		proto = "tcp"
	}
	c := &dns.Client{Net: proto, Timeout: 4 * time.Second}
	resp, _, err := c.Exchange(q, upstream)
	if err == nil && resp.Truncated && proto == "udp" {
		c.Net = "tcp"
		if full, _, err2 := c.Exchange(q, upstream); err2 == nil {
			full.Truncate(dnsSize(q))
			resp = full
		}
	}
	if err != nil {
		resp = new(dns.Msg)
		resp.SetRcode(q, dns.RcodeServerFailure)
	}
	w.WriteMsg(resp)
}

func dnsSize(q *dns.Msg) int {
	if opt := q.IsEdns0(); opt != nil {
		return int(opt.UDPSize())
	}
	return dns.MinMsgSize
}

func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return err
	}
	return serr
}
