package agentserver

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"time"

	"github.com/wharfhq/wharf/internal/api"
	"github.com/wharfhq/wharf/internal/api/agentapi"
	"github.com/wharfhq/wharf/internal/cloudmap"
	"github.com/wharfhq/wharf/internal/ecs/state"
	"github.com/wharfhq/wharf/internal/pki"
	"github.com/wharfhq/wharf/internal/store"
)

// ServiceConnectView describes namespaces' client-server services to the
// agents whose tasks call them, waiting for a change after the index the
// agent has.
func (s *Server) ServiceConnectView(ctx context.Context, in *agentapi.ServiceConnectViewRequest) (*agentapi.ServiceConnectViewResponse, error) {
	c := s.call(ctx)
	if in.Index > 0 && in.WaitSeconds > 0 {
		s.discovery.wait(ctx, c.Region, in.Index, min(time.Duration(in.WaitSeconds)*time.Second, maxPollWait))
	}
	rev, err := s.st.Revision(ctx)
	if err != nil {
		return nil, err
	}
	out := &agentapi.ServiceConnectViewResponse{Index: rev, Namespaces: []agentapi.NamespaceView{}}
	tls := false
	err = s.st.Update(ctx, func(tx *store.Tx) error {
		out.Namespaces, tls = out.Namespaces[:0], false
		for _, ref := range in.Namespaces {
			ns, err := cloudmap.FindNamespace(tx, c.Region, ref)
			if err != nil {
				return err
			}
			if ns == nil {
				continue
			}
			view := agentapi.NamespaceView{Arn: ns.Arn, Name: ns.Name, Services: []agentapi.ServiceView{}}
			svcs, err := cloudmap.ServicesOf(tx, c.Region, ns.Id)
			if err != nil {
				return err
			}
			for _, cm := range svcs {
				port, err := strconv.Atoi(cm.Attributes[state.AttrPort])
				if err != nil || cm.Attributes[state.AttrDNSName] == "" {
					continue // not a Service Connect service
				}
				sv := agentapi.ServiceView{DiscoveryName: cm.Name, DNSName: cm.Attributes[state.AttrDNSName], Port: int32(port), Protocol: cm.Attributes[state.AttrProtocol], Endpoints: []agentapi.Endpoint{}}
				if v, err := strconv.Atoi(cm.Attributes[state.AttrPerRequestTimeout]); err == nil {
					sv.PerRequestTimeoutSeconds = ptr(int32(v))
				}
				if v, err := strconv.Atoi(cm.Attributes[state.AttrIdleTimeout]); err == nil {
					sv.IdleTimeoutSeconds = ptr(int32(v))
				}
				switch cm.Attributes[state.AttrTLS] {
				case "tls":
					sv.TLS = &agentapi.ServiceTLS{}
				case "mutual":
					sv.TLS = &agentapi.ServiceTLS{Mutual: true}
				}
				sv.Routing = routing(cm.Attributes)
				insts, err := cloudmap.InstancesOf(tx, c.Region, cm.Id)
				if err != nil {
					return err
				}
				for _, r := range insts {
					if r.Health != "HEALTHY" || r.Attributes["AWS_INSTANCE_IPV4"] == "" {
						continue
					}
					sv.Endpoints = append(sv.Endpoints, agentapi.Endpoint{
						Address: r.Attributes["AWS_INSTANCE_IPV4"] + ":" + r.Attributes["AWS_INSTANCE_PORT"],
						Zone:    r.Attributes["AVAILABILITY_ZONE"],
						TaskArn: r.ECSTask,
					})
				}
				sort.Slice(sv.Endpoints, func(i, j int) bool { return sv.Endpoints[i].Address < sv.Endpoints[j].Address })
				view.Services = append(view.Services, sv)
			}
			sort.Slice(view.Services, func(i, j int) bool { return view.Services[i].DiscoveryName < view.Services[j].DiscoveryName })
			out.Namespaces = append(out.Namespaces, view)
			for _, sv := range view.Services {
				tls = tls || sv.TLS != nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if tls {
		ca, err := s.certificateAuthority(ctx)
		if err != nil {
			return nil, err
		}
		out.TrustBundle = string(ca.BundlePEM())
	}
	return out, nil
}

// routing is the Routing a Cloud Map service's attributes describe, or nil
// for the defaults.
func routing(attrs map[string]string) *agentapi.Routing {
	r := agentapi.Routing{
		Balancer:           attrs[state.AttrBalancer],
		ZoneAware:          attrs[state.AttrZoneAware] == "true",
		RetryNonIdempotent: attrs[state.AttrRetryNonIdempotent] == "true",
	}
	if n, err := strconv.Atoi(attrs[state.AttrRetries]); err == nil {
		r.Retries = ptr(int32(n))
	}
	if r == (agentapi.Routing{}) {
		return nil
	}
	return &r
}

// certificateAuthority is Wharf's certificate authority, created in the
// store on first use.
func (s *Server) certificateAuthority(ctx context.Context) (*pki.CA, error) {
	s.caMu.Lock()
	defer s.caMu.Unlock()
	if s.ca != nil {
		return s.ca, nil
	}
	ca, err := pki.Ensure(ctx, s.st, time.Now())
	if err != nil {
		return nil, err
	}
	s.ca = ca
	return ca, nil
}

// IssueCertificate signs the key of a Service Connect task's proxy for
// the names of the task's TLS services.
func (s *Server) IssueCertificate(ctx context.Context, in *agentapi.IssueCertificateRequest) (*agentapi.IssueCertificateResponse, error) {
	c := s.call(ctx)
	cluster, err := s.ClusterName(c, in.Cluster)
	if err != nil {
		return nil, err
	}
	t, err := s.FindTask(s.reader(ctx), c, cluster, in.Task)
	if err != nil {
		return nil, err
	}
	if t == nil || t.DesiredStatus == "STOPPED" {
		return nil, invalidParameter("Task %s is not running in cluster %s; only running Service Connect tasks get certificates.", in.Task, cluster)
	}
	sc, err := s.TaskServiceConnect(s.reader(ctx), c, t, map[string]*state.ServiceRecord{})
	if err != nil {
		return nil, err
	}
	if sc == nil {
		return nil, invalidParameter("Task %s is not a Service Connect task.", in.Task)
	}
	id := pki.Identity{CommonName: sc.ServiceName}
	for _, sv := range sc.Services {
		if sv.TLS == nil {
			continue
		}
		id.DNSNames = append(id.DNSNames, sv.DiscoveryName)
		if sv.DNSName != "" && sv.DNSName != sv.DiscoveryName {
			id.DNSNames = append(id.DNSNames, sv.DNSName)
		}
	}
	ca, err := s.certificateAuthority(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	chain, notAfter, err := ca.Issue([]byte(in.CSR), id, now, s.certLifetime)
	if errors.Is(err, pki.ErrBadCSR) {
		return nil, invalidParameter("%s", err)
	}
	if err != nil {
		return nil, err
	}
	return &agentapi.IssueCertificateResponse{
		Certificate: string(chain),
		TrustBundle: string(ca.BundlePEM()),
		RenewAfter:  api.Time{Time: now.Add(s.certLifetime * 5 / 7)},
		NotAfter:    api.Time{Time: notAfter},
	}, nil
}

// ReportProxyMetrics passes the metrics of an instance's proxies on to the
// control plane's /metrics.
func (s *Server) ReportProxyMetrics(ctx context.Context, in *agentapi.ReportProxyMetricsRequest) (*agentapi.ReportProxyMetricsResponse, error) {
	if s.proxyMetrics != nil {
		if err := s.proxyMetrics.Report(in.ContainerInstance, in.Proxies); err != nil {
			return nil, invalidParameter("%s", err)
		}
	}
	return &agentapi.ReportProxyMetricsResponse{}, nil
}
