package agent

import (
	"context"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// Containers resolve names through a relay on their network's gateway
// (port 53, which is all a container's resolver configuration can name)
// that forwards every query to Wharf's DNS server. The agents of a process
// share the relays.
var relays = struct {
	sync.Mutex
	byIP map[string]*relay
}{byIP: map[string]*relay{}}

type relay struct {
	mu       sync.Mutex
	upstream string
	servers  []*dns.Server
}

// ensureRelay makes sure a relay listens on ip:53 and forwards to
// upstream. It reports whether containers can use ip as their resolver.
func (a *Agent) ensureRelay(ip, upstream string) bool {
	if ip == "" || upstream == "" {
		return false
	}
	relays.Lock()
	defer relays.Unlock()
	if r, ok := relays.byIP[ip]; ok {
		r.setUpstream(upstream)
		return true
	}
	r := &relay{upstream: upstream}
	addr := net.JoinHostPort(ip, "53")
	fail := func(err error) bool {
		a.log.Warn("containers will use their default resolvers: cannot listen for DNS on the gateway", "addr", addr, "err", err)
		for _, s := range r.servers {
			s.Shutdown()
		}
		return false
	}
	// Agent processes sharing a host (several nodes on one engine) share
	// the gateway's port: the kernel spreads queries over them.
	lc := net.ListenConfig{Control: reusePort}
	pc, err := lc.ListenPacket(context.Background(), "udp", addr)
	if err != nil {
		return fail(err)
	}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		pc.Close()
		return fail(err)
	}
	for _, srv := range []*dns.Server{{PacketConn: pc}, {Listener: ln}} {
		srv.Handler, srv.ReadTimeout, srv.WriteTimeout = r, 5*time.Second, 5*time.Second
		go srv.ActivateAndServe()
		r.servers = append(r.servers, srv)
	}
	relays.byIP[ip] = r
	a.log.Info("relaying containers' DNS queries to Wharf", "listen", addr, "upstream", upstream)
	return true
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
