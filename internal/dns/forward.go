package dns

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

const (
	// forwardTimeout bounds one exchange with one upstream.
	forwardTimeout = 2 * time.Second
	// maxForwards bounds the forwarded queries in flight.
	maxForwards = 256
)

var errBusy = errors.New("too many forwarded queries in flight")

// forwarder relays questions outside Wharf's zones to the configured
// upstream resolvers, and nowhere else.
type forwarder struct {
	upstreams []string
	udp, tcp  *dns.Client
	slots     chan struct{}
}

func newForwarder(upstreams []string) *forwarder {
	return &forwarder{
		upstreams: slices.Clone(upstreams),
		udp:       &dns.Client{Net: "udp", UDPSize: maxUDPSize, Timeout: forwardTimeout},
		tcp:       &dns.Client{Net: "tcp", Timeout: forwardTimeout},
		slots:     make(chan struct{}, maxForwards),
	}
}

// resolve asks the upstreams in turn and returns the first answer that is
// neither SERVFAIL nor REFUSED (or the last answer, if all were).
func (f *forwarder) resolve(ctx context.Context, q dns.Question, cd, do bool) (*dns.Msg, error) {
	select {
	case f.slots <- struct{}{}:
	default:
		return nil, errBusy
	}
	defer func() { <-f.slots }()
	req := new(dns.Msg)
	req.SetQuestion(q.Name, q.Qtype)
	req.Question[0].Qclass = q.Qclass
	req.CheckingDisabled = cd
	req.SetEdns0(maxUDPSize, do)
	var last *dns.Msg
	var lastErr error
	for _, up := range f.upstreams {
		if ctx.Err() != nil {
			break
		}
		r, err := f.exchange(ctx, req, up)
		if err != nil {
			lastErr = fmt.Errorf("forward to %s: %w", up, err)
			continue
		}
		if r.Rcode == dns.RcodeServerFailure || r.Rcode == dns.RcodeRefused {
			last = r
			continue
		}
		return r, nil
	}
	if last != nil {
		return last, nil
	}
	if lastErr == nil {
		lastErr = ctx.Err()
	}
	return nil, lastErr
}

// exchange asks one upstream over UDP, and over TCP when the UDP answer is
// truncated.
func (f *forwarder) exchange(ctx context.Context, req *dns.Msg, upstream string) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	r, _, err := f.udp.ExchangeContext(ctx, req, upstream)
	if err == nil && r.Truncated {
		r, _, err = f.tcp.ExchangeContext(ctx, req, upstream)
	}
	if err != nil {
		return nil, err
	}
	q := req.Question[0]
	if !r.Response || r.Opcode != dns.OpcodeQuery || len(r.Question) != 1 ||
		!strings.EqualFold(r.Question[0].Name, q.Name) || r.Question[0].Qtype != q.Qtype {
		return nil, errors.New("answer does not match the question")
	}
	return r, nil
}
