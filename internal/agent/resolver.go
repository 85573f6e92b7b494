package agent

import (
	"net"
	"sync"
	"time"

	"github.com/miekg/dns"
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
	for _, proto := range []string{"udp", "tcp"} {
		srv := &dns.Server{Addr: addr, Net: proto, Handler: r, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
		started := make(chan error, 1)
		srv.NotifyStartedFunc = func() { started <- nil }
		go func() { started <- srv.ListenAndServe() }()
		if err := <-started; err != nil {
			a.log.Warn("containers will use their default resolvers: cannot listen for DNS on the gateway", "addr", addr, "err", err)
			for _, s := range r.servers {
				s.Shutdown()
			}
			return false
		}
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
