// Package server assembles the Wharf control plane: the store, the AWS API
// services and the HTTP endpoint that serves them.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/wharfhq/wharf/internal/api/agentapi"
	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	sdapi "github.com/wharfhq/wharf/internal/api/servicediscovery"
	"github.com/wharfhq/wharf/internal/awsproto"
	"github.com/wharfhq/wharf/internal/cloudmap"
	"github.com/wharfhq/wharf/internal/dns"
	"github.com/wharfhq/wharf/internal/ecs"
	"github.com/wharfhq/wharf/internal/ecs/agentserver"
	"github.com/wharfhq/wharf/internal/ecs/control"
	"github.com/wharfhq/wharf/internal/store"
	"github.com/wharfhq/wharf/internal/telemetry"
)

// Config configures a control plane.
type Config struct {
	// Listen is the API's host:port; port 0 picks a free one.
	Listen string
	Store  store.Config
	// Account is the 12-digit account id in ARNs.
	Account string
	// Region serves in-process calls; signed requests carry their own.
	Region      string
	Credentials awsproto.Credentials
	// MaxClockSkew is how far a request's signing time may be from the
	// server's clock. Default 15 minutes.
	MaxClockSkew time.Duration
	Limits       awsproto.Limits
	// Retention is how long stopped tasks and deleted resources stay
	// describable. Default one hour.
	Retention time.Duration
	// DeploymentHistory is how long service deployments and revisions
	// stay after a deployment ends. Default 90 days.
	DeploymentHistory time.Duration
	// SweepInterval is how often expired state is removed. Default 30 s.
	SweepInterval time.Duration
	// AgentGrace is how long an instance stays agentConnected after its
	// agent's last poll. Default 30 s.
	AgentGrace time.Duration
	// AwsvpcSubnet is the range awsvpc tasks get addresses from.
	AwsvpcSubnet string
	// SpotInterruptionNotice is how long an interrupted Fargate Spot task
	// has between SIGTERM and its stop. Default 2 minutes.
	SpotInterruptionNotice time.Duration
	// Controller tunes the service scheduler.
	Controller control.SchedulerConfig
	// CertificateLifetime is how long Service Connect TLS certificates
	// are valid. Default 7 days.
	CertificateLifetime time.Duration
	// HealthCheckInterval is how often Cloud Map health checks run.
	// Default 10 s.
	HealthCheckInterval time.Duration
	// DNSListen is where the DNS server for Cloud Map's DNS namespaces
	// listens (UDP and TCP); port 0 picks a free one, "" runs none.
	DNSListen string
	// DNSForward lists resolvers asked about names outside Wharf's zones;
	// empty answers REFUSED.
	DNSForward []string
	Logger     *slog.Logger
}

// Server is a running control plane.
type Server struct {
	cfg      Config
	store    *store.Store
	ECS      *ecs.Service
	agents   *agentserver.Server
	loops    *control.Loops
	CloudMap *cloudmap.Service
	DNS      *dns.Server // nil without DNSListen
	http     *http.Server
	ln       net.Listener
	log      *slog.Logger
}

// New opens the store and binds the listener; Run serves.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = 30 * time.Second
	}
	if cfg.Credentials == nil {
		return nil, errors.New("no access keys configured: give --access-key-id and --secret-access-key, or --credentials-file")
	}
	cfg.Store.Logger = cfg.Logger.With("component", "store")
	st, err := store.Open(ctx, cfg.Store)
	if err != nil {
		return nil, err
	}
	proxyMetrics := telemetry.New(telemetry.Config{})
	svc, err := ecs.New(ctx, ecs.Config{
		Store:         st,
		Account:       cfg.Account,
		DefaultRegion: cfg.Region,
		AgentGrace:    cfg.AgentGrace,
		AwsvpcSubnet:  cfg.AwsvpcSubnet,
		Logger:        cfg.Logger.With("component", "ecs"),
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	agents := agentserver.New(agentserver.Config{
		State:                  svc.State,
		DefaultRegion:          cfg.Region,
		AgentGrace:             cfg.AgentGrace,
		CertificateLifetime:    cfg.CertificateLifetime,
		SpotInterruptionNotice: cfg.SpotInterruptionNotice,
		ProxyMetrics:           proxyMetrics,
		Logger:                 cfg.Logger.With("component", "agentserver"),
	})
	var subnets []netip.Prefix
	if cfg.AwsvpcSubnet != "" {
		p, err := netip.ParsePrefix(cfg.AwsvpcSubnet)
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("awsvpc subnet %q: %w", cfg.AwsvpcSubnet, err)
		}
		subnets = append(subnets, p)
	}
	cm, err := cloudmap.New(ctx, cloudmap.Config{
		Store:               st,
		Account:             cfg.Account,
		DefaultRegion:       cfg.Region,
		CheckableSubnets:    subnets,
		HealthCheckInterval: cfg.HealthCheckInterval,
		Logger:              cfg.Logger.With("component", "cloudmap"),
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	handler := awsproto.NewHandler(awsproto.Config{
		Services: []awsproto.Service{{
			TargetPrefix: ecsapi.TargetPrefix,
			SigningName:  ecsapi.SigningName,
			Operations:   ecs.Operations(svc),
		}, {
			TargetPrefix: sdapi.TargetPrefix,
			SigningName:  sdapi.SigningName,
			Operations:   cloudmap.Operations(cm),
			MessageField: "Message",
			ThrottleCode: "RequestLimitExceeded",
		}, {
			TargetPrefix: agentapi.TargetPrefix,
			SigningName:  agentapi.SigningName,
			Operations:   ecs.WithAWSErrors(agentapi.Operations(agents)),
		}},
		Verifier: &awsproto.Verifier{Credentials: cfg.Credentials, MaxSkew: cfg.MaxClockSkew},
		Limits:   cfg.Limits,
		Logger:   cfg.Logger.With("component", "api"),
	})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	// Service Connect's metrics, per service: the sum of what every
	// proxy's agent last reported to this server.
	mux.Handle("GET /metrics", proxyMetrics.Handler())
	mux.Handle("/", handler)
	var dnsServer *dns.Server
	if cfg.DNSListen != "" {
		dnsServer, err = dns.New(dns.Config{Store: st, Addr: cfg.DNSListen, Forward: cfg.DNSForward, Logger: cfg.Logger.With("component", "dns")})
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("DNS server on %s (choose another address with --dns-listen): %w", cfg.DNSListen, err)
		}
		agents.SetDNS(dnsServer.Addr())
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("listen on %s (choose another address with --listen): %w", cfg.Listen, err)
	}
	return &Server{
		cfg:    cfg,
		store:  st,
		ECS:    svc,
		agents: agents,
		loops: control.New(control.Config{
			State: svc.State, Retention: cfg.Retention, History: cfg.DeploymentHistory,
			Logger: cfg.Logger.With("component", "control"),
		}),
		CloudMap: cm,
		DNS:      dnsServer,
		ln:       ln,
		log:      cfg.Logger,
		http: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      60 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
		},
	}, nil
}

// Addr is the address the API listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Endpoint is the API's base URL.
func (s *Server) Endpoint() string { return "http://" + s.Addr() }

// Store is the server's store.
func (s *Server) Store() *store.Store { return s.store }

// Run serves until ctx ends, then shuts down cleanly: in-flight requests
// finish (up to 10 s) and the store is closed.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(s.ln) }()
	sweepCtx, stopSweep := context.WithCancel(ctx)
	sweepDone := make(chan struct{})
	go func() {
		defer close(sweepDone)
		s.loops.Sweep(sweepCtx, s.cfg.SweepInterval)
	}()
	monitorDone := make(chan struct{})
	go func() {
		defer close(monitorDone)
		s.loops.MonitorAgents(sweepCtx)
	}()
	assignDone := make(chan struct{})
	go func() {
		defer close(assignDone)
		s.agents.Run(sweepCtx)
	}()
	cloudMapDone := make(chan struct{})
	go func() {
		defer close(cloudMapDone)
		s.CloudMap.Run(sweepCtx)
	}()
	dnsDone := make(chan struct{})
	go func() {
		defer close(dnsDone)
		if s.DNS != nil {
			if err := s.DNS.Run(sweepCtx); err != nil && sweepCtx.Err() == nil {
				s.log.Error("DNS server stopped", "err", err)
			}
		}
	}()
	controllerDone := make(chan struct{})
	go func() {
		defer close(controllerDone)
		s.loops.RunScheduler(sweepCtx, s.cfg.Controller)
	}()
	s.log.Info("serving the ECS API", "endpoint", s.Endpoint())

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.http.Shutdown(shutdownCtx)
	stopSweep()
	<-sweepDone
	<-monitorDone
	<-controllerDone
	<-cloudMapDone
	<-dnsDone
	<-assignDone
	s.store.Close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
