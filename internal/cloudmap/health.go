package cloudmap

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	sd "github.com/wharfhq/wharf/internal/api/servicediscovery"
	"github.com/wharfhq/wharf/internal/store"
)

// Health checks of services with a HealthCheckConfig. One elected server
// checks every instance each HealthCheckInterval: TCP connects to the
// instance's address and AWS_INSTANCE_PORT (default 80, or 443 for HTTPS);
// HTTP and HTTPS also GET the ResourcePath and want a status from 200 to
// 399, without following redirects or verifying certificates, as Route 53
// does. FailureThreshold consecutive results that disagree with the
// instance's health flip it.
//
// Only addresses Wharf manages are contacted: loopback and
// Config.CheckableSubnets (the awsvpc subnet). An instance elsewhere is
// never contacted and keeps its health, so a Wharf server cannot be made to
// probe arbitrary hosts through the API.

// streak is an instance's run of equal check results.
type streak struct {
	healthy bool
	n       int
}

const maxParallelChecks = 32

// runHealthChecks checks health while this server leads the health
// checkers' election, and campaigns again when leadership is lost, until
// ctx ends.
func (s *Service) runHealthChecks(ctx context.Context) {
	s.st.WhileLeading(ctx, "cloudmap-health", "the Cloud Map health checker", 10, func(ctx context.Context, l *store.Leadership) {
		t := time.NewTicker(s.interval)
		defer t.Stop()
		for ctx.Err() == nil {
			if err := s.checkAll(ctx, l); err != nil && ctx.Err() == nil {
				s.log.Warn("cloudmap: health checks failed; retrying at the next interval", "err", err)
			}
			select {
			case <-ctx.Done():
			case <-t.C:
			}
		}
	})
}

// checkAll runs one round of checks in every region.
func (s *Service) checkAll(ctx context.Context, l *store.Leadership) error {
	regions, err := s.st.Regions(ctx)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, region := range regions {
		nsKVs, err := s.st.List(ctx, regionPrefix(region)+"namespaces/")
		if err != nil {
			return err
		}
		nsNames := map[string]string{}
		for _, kv := range nsKVs {
			var ns NamespaceRecord
			if kv.Decode(&ns) == nil && ns.Type != sd.NamespaceTypeHttp {
				nsNames[ns.Id] = ns.Name
			}
		}
		kvs, err := s.st.List(ctx, regionPrefix(region)+"services/")
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			var svc ServiceRecord
			if err := kv.Decode(&svc); err != nil {
				return err
			}
			if err := s.settleHealth(ctx, region, svc.Id); err != nil {
				return err
			}
			if svc.HealthCheckConfig == nil {
				continue
			}
			host := ""
			if n, ok := nsNames[svc.NamespaceId]; ok {
				host = svc.Name + "." + strings.TrimSuffix(n, ".")
			}
			if err := s.checkService(ctx, l, region, &svc, host, seen); err != nil {
				return err
			}
		}
	}
	s.healthMu.Lock()
	for k := range s.health {
		if !seen[k] {
			delete(s.health, k)
		}
	}
	s.healthMu.Unlock()
	return nil
}

// checkService checks a service's instances and flips the health of those
// whose streak reached the failure threshold.
func (s *Service) checkService(ctx context.Context, l *store.Leadership, region string, svc *ServiceRecord, host string, seen map[string]bool) error {
	kvs, err := s.st.List(ctx, InstancesPrefix(region, svc.Id))
	if err != nil {
		return err
	}
	type result struct {
		inst    *InstanceRecord
		healthy bool
	}
	var (
		mu      sync.Mutex
		results []result
		wg      sync.WaitGroup
		sem     = make(chan struct{}, maxParallelChecks)
	)
	for _, kv := range kvs {
		var inst InstanceRecord
		if err := kv.Decode(&inst); err != nil {
			return err
		}
		ap, ok := s.target(ctx, svc.HealthCheckConfig, inst.Attributes)
		if !ok {
			continue // not an address Wharf manages: never contacted
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ok := s.probe(ctx, svc.HealthCheckConfig, ap, host)
			mu.Lock()
			results = append(results, result{&inst, ok})
			mu.Unlock()
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	threshold := max(int(svc.HealthCheckConfig.FailureThreshold), 1)
	for _, r := range results {
		k := region + "/" + svc.Id + "/" + r.inst.Id
		seen[k] = true
		s.healthMu.Lock()
		st := s.health[k]
		if st == nil || st.healthy != r.healthy {
			st = &streak{healthy: r.healthy}
			s.health[k] = st
		}
		st.n++
		flip := st.n >= threshold
		s.healthMu.Unlock()
		want := sd.HealthStatusUnhealthy
		if r.healthy {
			want = sd.HealthStatusHealthy
		}
		if !flip || r.inst.Health == want {
			continue
		}
		err := s.st.Update(ctx, func(tx *store.Tx) error {
			tx.Fence(l)
			inst, err := getRecord[InstanceRecord](tx, InstanceKey(region, svc.Id, r.inst.Id))
			if err != nil || inst == nil || inst.Health == want {
				return err
			}
			inst.Health, inst.UpdatedAt = want, s.now().UTC()
			return PutInstance(tx, region, inst)
		})
		if err != nil {
			return err
		}
		s.log.Info("cloudmap instance health changed", "region", region, "service_id", svc.Id, "instance_id", r.inst.Id, "health", want)
	}
	return nil
}

// target is the address and port to check an instance at, when Wharf
// manages the address.
func (s *Service) target(ctx context.Context, hc *sd.HealthCheckConfig, attrs map[string]string) (netip.AddrPort, bool) {
	port := uint16(80)
	if hc.Type == sd.HealthCheckTypeHttps {
		port = 443
	}
	if v, ok := attrs[attrPort]; ok {
		p, err := strconv.ParseUint(v, 10, 16)
		if err != nil || p == 0 {
			return netip.AddrPort{}, false
		}
		port = uint16(p)
	}
	var addr netip.Addr
	for _, k := range []string{attrIPv4, attrIPv6} {
		if a, err := netip.ParseAddr(attrs[k]); err == nil {
			addr = a
			break
		}
	}
	if !addr.IsValid() && attrs[attrCNAME] != "" {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		addrs, err := net.DefaultResolver.LookupNetIP(rctx, "ip", attrs[attrCNAME])
		cancel()
		if err != nil || len(addrs) == 0 {
			return netip.AddrPort{}, false
		}
		for _, a := range addrs {
			if !s.checkableAddr(a) {
				return netip.AddrPort{}, false
			}
		}
		addr = addrs[0]
	}
	if !addr.IsValid() || !s.checkableAddr(addr) {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(addr.Unmap(), port), true
}

// checkableAddr reports whether health checks may contact a.
func (s *Service) checkableAddr(a netip.Addr) bool {
	a = a.Unmap()
	if a.IsLoopback() {
		return true
	}
	for _, p := range s.checkable {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// probe runs one check.
func (s *Service) probe(ctx context.Context, hc *sd.HealthCheckConfig, ap netip.AddrPort, host string) bool {
	timeout := min(max(s.interval, time.Second), 4*time.Second)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if hc.Type == sd.HealthCheckTypeTcp {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", ap.String())
		if err != nil {
			return false
		}
		conn.Close()
		return true
	}
	scheme := "http"
	if hc.Type == sd.HealthCheckTypeHttps {
		scheme = "https"
	}
	path := hc.ResourcePath
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+ap.String()+path, nil)
	if err != nil {
		return false
	}
	if host != "" {
		req.Host = host
	}
	req.Header.Set("User-Agent", "Wharf-Cloud-Map-Health-Check")
	resp, err := checkClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 400
}

// checkClient makes health checks: no proxy, no connection reuse, no
// redirects, no certificate verification.
var checkClient = &http.Client{
	Transport: &http.Transport{
		Proxy:             nil,
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
	},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// settleHealth makes a service's stored instance health agree with its
// configuration: instances of a service without health checks, and those
// with none recorded, are HEALTHY.
func (s *Service) settleHealth(ctx context.Context, region, serviceID string) error {
	var svc ServiceRecord
	found, err := s.st.Get(ctx, ServiceKey(region, serviceID), &svc)
	if err != nil || !found {
		return err
	}
	checked := svc.HealthCheckConfig != nil || svc.HealthCheckCustomConfig != nil
	kvs, err := s.st.List(ctx, InstancesPrefix(region, serviceID))
	if err != nil {
		return err
	}
	var fix []string
	for _, kv := range kvs {
		var inst InstanceRecord
		if err := kv.Decode(&inst); err != nil {
			return err
		}
		if inst.Health == "" || !checked && inst.Health != sd.HealthStatusHealthy {
			fix = append(fix, inst.Id)
		}
	}
	for len(fix) > 0 {
		batch := fix[:min(len(fix), 50)]
		fix = fix[len(batch):]
		err := s.st.Update(ctx, func(tx *store.Tx) error {
			svc, err := getRecord[ServiceRecord](tx, ServiceKey(region, serviceID))
			if err != nil || svc == nil {
				return err
			}
			checked := svc.HealthCheckConfig != nil || svc.HealthCheckCustomConfig != nil
			for _, id := range batch {
				inst, err := getRecord[InstanceRecord](tx, InstanceKey(region, serviceID, id))
				if err != nil {
					return err
				}
				if inst == nil || inst.Health != "" && (checked || inst.Health == sd.HealthStatusHealthy) {
					continue
				}
				inst.Health, inst.UpdatedAt = sd.HealthStatusHealthy, s.now().UTC()
				if err := PutInstance(tx, region, inst); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
