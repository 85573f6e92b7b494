// Package testenv starts real Wharf servers for tests and tells tests what
// the machine offers (Docker, the AWS CLI v2, etcd binaries).
package testenv

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/wharfhq/wharf/internal/awsproto"
	"github.com/wharfhq/wharf/internal/server"
)

// Test credentials of servers started here.
const (
	AccessKeyID     = "AKIAWHARFTESTKEY0001"
	SecretAccessKey = "wharf-test-secret-key-0000000000000000000"
	Region          = "us-east-1"
	Account         = "123456789012"
)

// Server is a control plane started for a test.
type Server struct {
	*server.Server
	DataDir string
	cancel  context.CancelFunc
	done    chan error
}

// Options adjust a test server's configuration.
type Options func(*server.Config)

// StartServer starts a control plane on a free loopback port with an
// embedded etcd in dir (a new temporary directory when empty). It is
// stopped when the test ends.
func StartServer(t testing.TB, dir string, opts ...Options) *Server {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	cfg := server.Config{
		Listen:      "127.0.0.1:0",
		Account:     Account,
		Region:      Region,
		Credentials: awsproto.StaticCredentials{AccessKeyID: SecretAccessKey},
		Logger:      slog.New(slog.DiscardHandler),
	}
	cfg.Store.DataDir = dir
	if os.Getenv("WHARF_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("start server: %v", err)
	}
	s := &Server{Server: srv, DataDir: dir, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- srv.Run(ctx) }()
	t.Cleanup(s.Stop)
	return s
}

// Stop shuts the server down and waits for it; calling it again is a no-op.
func (s *Server) Stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		panic("test server did not stop within 30s")
	}
}

// AWSConfig returns an SDK configuration that reaches the server.
func (s *Server) AWSConfig() aws.Config {
	return AWSConfig(s.Endpoint(), Region)
}

// AWSConfig returns an SDK configuration for endpoint with the test key.
func AWSConfig(endpoint, region string) aws.Config {
	return aws.Config{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
		BaseEndpoint: aws.String(endpoint),
	}
}

// ECS returns an ECS client of the server.
func (s *Server) ECS() *ecs.Client { return ecs.NewFromConfig(s.AWSConfig()) }

// inCI reports whether the tests run under CI, where missing tools are
// failures rather than reasons to skip.
func inCI() bool { return os.Getenv("CI") != "" }

// LookPath returns the path of a program the test needs, skipping the test
// when it is missing (failing it under CI).
func LookPath(t testing.TB, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	if inCI() {
		t.Fatalf("%v not found, and CI is set: .ci/run must install it", names)
	}
	t.Skipf("%v not found; install it to run this test", names)
	return ""
}

// AWSCLI returns the path of the AWS CLI v2 (Debian's awscli package),
// which the PATH may hide behind a pip-installed v1.
func AWSCLI(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/aws", "/usr/local/bin/aws"} {
		out, err := exec.Command(p, "--version").CombinedOutput()
		if err == nil && len(out) > 8 && string(out[:8]) == "aws-cli/" && out[8] == '2' {
			return p
		}
	}
	if inCI() {
		t.Fatal("the AWS CLI v2 is not installed, and CI is set: .ci/run must install Debian's awscli")
	}
	t.Skip("the AWS CLI v2 is not installed (apt-get install awscli)")
	return ""
}
