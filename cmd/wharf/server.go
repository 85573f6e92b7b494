package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/wharfhq/wharf/internal/awsproto"
	"github.com/wharfhq/wharf/internal/ecs/control"
	"github.com/wharfhq/wharf/internal/server"
)

// serverFlags are the control plane's flags, shared by `server` and `dev`.
type serverFlags struct {
	listen          string
	dataDir         string
	etcdEndpoints   string
	etcdPrefix      string
	account         string
	region          string
	accessKeyID     string
	secretAccessKey string
	credentialsFile string
	maxClockSkew    time.Duration
	maxBodyBytes    int64
	readRate        float64
	writeRate       float64
	retention       time.Duration
	history         time.Duration
	agentGrace      time.Duration
	agentLostAfter  time.Duration
	healthyAfter    time.Duration
	awsvpcSubnet    string
	dnsListen       string
	dnsForward      string
	certLifetime    time.Duration
	spotNotice      time.Duration
	log             logFlags
}

func (f *serverFlags) register(fs *flag.FlagSet, listen, dataDir string) {
	fs.StringVar(&f.listen, "listen", listen, "address of the API endpoint, host:port; port 0 picks a free port")
	fs.StringVar(&f.dataDir, "data-dir", dataDir, "directory for state: the embedded etcd's data (and, in dev mode, keys and the env file)")
	fs.StringVar(&f.etcdEndpoints, "etcd-endpoints", "", "comma-separated client URLs of an external etcd cluster; empty runs an embedded etcd under --data-dir")
	fs.StringVar(&f.etcdPrefix, "etcd-prefix", "/wharf", "key prefix in etcd, to share one etcd between installations")
	fs.StringVar(&f.account, "account-id", "000000000000", "12-digit AWS account id used in ARNs")
	fs.StringVar(&f.region, "region", "us-east-1", "default region; signed requests are served for whatever region they are signed for")
	fs.StringVar(&f.accessKeyID, "access-key-id", "", "access key id clients sign requests with")
	fs.StringVar(&f.secretAccessKey, "secret-access-key", "", "secret of --access-key-id (prefer WHARF_SECRET_ACCESS_KEY or --credentials-file over the command line)")
	fs.StringVar(&f.credentialsFile, "credentials-file", "", `JSON file of access keys: {"AKID": "secret", ...}`)
	fs.DurationVar(&f.maxClockSkew, "max-clock-skew", 15*time.Minute, "how far a request's signing time may be from the server's clock")
	fs.Int64Var(&f.maxBodyBytes, "max-body-bytes", 1<<20, "largest request body accepted")
	fs.Float64Var(&f.readRate, "read-rate", 500, "read requests per second per access key before ThrottlingException (0: unlimited); bursts of twice as many pass")
	fs.Float64Var(&f.writeRate, "write-rate", 200, "mutating requests per second per access key before ThrottlingException (0: unlimited); bursts of twice as many pass")
	fs.DurationVar(&f.retention, "retention", time.Hour, "how long stopped tasks and deleted clusters, services and instances stay describable")
	fs.DurationVar(&f.history, "deployment-history", 90*24*time.Hour, "how long service deployments and service revisions stay after a deployment ends")
	fs.DurationVar(&f.agentGrace, "agent-grace", 30*time.Second, "how long a container instance stays agentConnected after its agent's last contact")
	fs.DurationVar(&f.agentLostAfter, "agent-lost-after", 5*time.Minute, "how long an agent may stay disconnected before its service tasks are replaced elsewhere")
	fs.DurationVar(&f.healthyAfter, "healthy-after", 40*time.Second, "how long after RUNNING a service task without health checks counts as healthy in deployments")
	fs.StringVar(&f.awsvpcSubnet, "awsvpc-subnet", "10.88.0.0/16", "address range awsvpc tasks get their addresses from")
	fs.StringVar(&f.dnsListen, "dns-listen", "127.0.0.1:0", "UDP and TCP address of the DNS server for Cloud Map's DNS namespaces; port 0 picks a free one, empty runs none")
	fs.DurationVar(&f.certLifetime, "service-connect-cert-lifetime", 7*24*time.Hour, "how long Service Connect TLS certificates from Wharf's certificate authority are valid; proxies renew them five sevenths in")
	fs.StringVar(&f.dnsForward, "dns-forward", "auto", "comma-separated resolvers (host:port) for names outside Wharf's zones; auto takes /etc/resolv.conf's, none answers REFUSED")
	fs.DurationVar(&f.spotNotice, "spot-interruption-notice", 2*time.Minute, "how long an interrupted FARGATE_SPOT task (`wharf spot-interrupt`) has between SIGTERM and its stop, at most its containers' stopTimeout")
	f.log.register(fs)
}

// credentials gathers the configured access keys.
func (f *serverFlags) credentials() (awsproto.StaticCredentials, error) {
	creds := awsproto.StaticCredentials{}
	if f.credentialsFile != "" {
		b, err := os.ReadFile(f.credentialsFile)
		if err != nil {
			return nil, fmt.Errorf("read --credentials-file: %w", err)
		}
		if err := json.Unmarshal(b, &creds); err != nil {
			return nil, fmt.Errorf("--credentials-file %s must be a JSON object of access key id to secret: %w", f.credentialsFile, err)
		}
	}
	if (f.accessKeyID == "") != (f.secretAccessKey == "") {
		return nil, fmt.Errorf("--access-key-id and --secret-access-key go together")
	}
	if f.accessKeyID != "" {
		creds[f.accessKeyID] = f.secretAccessKey
	}
	return creds, nil
}

func (f *serverFlags) config() (server.Config, error) {
	logger, err := f.log.logger(os.Stderr)
	if err != nil {
		return server.Config{}, err
	}
	creds, err := f.credentials()
	if err != nil {
		return server.Config{}, err
	}
	cfg := server.Config{
		Listen:       f.listen,
		Account:      f.account,
		Region:       f.region,
		MaxClockSkew: f.maxClockSkew,
		Limits: awsproto.Limits{
			MaxBodyBytes: f.maxBodyBytes,
			ReadRate:     f.readRate, ReadBurst: int(2 * f.readRate),
			WriteRate: f.writeRate, WriteBurst: int(2 * f.writeRate),
		},
		Retention:         f.retention,
		DeploymentHistory: f.history,
		AgentGrace:        f.agentGrace,
		AwsvpcSubnet:      f.awsvpcSubnet,
		Controller:        control.SchedulerConfig{HealthyAfter: f.healthyAfter, LostAfter: f.agentLostAfter},
		DNSListen:         f.dnsListen,
		DNSForward:        dnsForwarders(f.dnsForward),
		Logger:            logger,

		CertificateLifetime:    f.certLifetime,
		SpotInterruptionNotice: f.spotNotice,
	}
	if f.spotNotice <= 0 {
		return server.Config{}, fmt.Errorf("--spot-interruption-notice %v must be positive", f.spotNotice)
	}
	if f.certLifetime < 10*time.Second {
		return server.Config{}, fmt.Errorf("--service-connect-cert-lifetime %v is too short; give 10s or more", f.certLifetime)
	}
	if len(creds) > 0 {
		cfg.Credentials = creds
	}
	cfg.Store.Prefix = f.etcdPrefix
	if f.etcdEndpoints != "" {
		for _, e := range strings.Split(f.etcdEndpoints, ",") {
			if e = strings.TrimSpace(e); e != "" {
				cfg.Store.Endpoints = append(cfg.Store.Endpoints, e)
			}
		}
	} else {
		if f.dataDir == "" {
			return server.Config{}, fmt.Errorf("give --data-dir for the embedded etcd, or --etcd-endpoints for an external cluster")
		}
		cfg.Store.DataDir = f.dataDir
	}
	return cfg, nil
}

func runServer(ctx context.Context, args []string) error {
	var f serverFlags
	fs := flagSet("server", "Run the Wharf control plane: the ECS API on an etcd store. Several servers may\nshare one etcd cluster (--etcd-endpoints).")
	f.register(fs, "127.0.0.1:4566", "")
	if err := parse(fs, args); err != nil {
		return helpRequested(err)
	}
	cfg, err := f.config()
	if err != nil {
		return err
	}
	srv, err := server.New(ctx, cfg)
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}

// dnsForwarders turns --dns-forward into resolver addresses.
func dnsForwarders(flag string) []string {
	switch flag {
	case "", "none":
		return nil
	case "auto":
		b, err := os.ReadFile("/etc/resolv.conf")
		if err != nil {
			return nil
		}
		var out []string
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "nameserver" {
				out = append(out, net.JoinHostPort(f[1], "53"))
			}
		}
		return out
	}
	var out []string
	for _, a := range strings.Split(flag, ",") {
		if a = strings.TrimSpace(a); a != "" {
			if _, _, err := net.SplitHostPort(a); err != nil {
				a = net.JoinHostPort(a, "53")
			}
			out = append(out, a)
		}
	}
	return out
}
