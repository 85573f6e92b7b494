package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"

	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	"github.com/wharfhq/wharf/internal/server"
)

func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "wharf")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "wharf")
	}
	return ".wharf"
}

func runDev(ctx context.Context, args []string) error {
	var f serverFlags
	fs := flagSet("dev", "Run Wharf on this machine in one process: the control plane with an embedded\netcd under --data-dir. The first start creates an access key; later starts\nresume with the same state and keys. The endpoint and credentials are printed\nand written to DIR/env as shell exports.")
	f.register(fs, "127.0.0.1:0", defaultDataDir())
	if err := parse(fs, args); err != nil {
		return helpRequested(err)
	}
	if err := os.MkdirAll(f.dataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	if f.accessKeyID == "" && f.credentialsFile == "" {
		id, secret, err := devKey(f.dataDir)
		if err != nil {
			return err
		}
		f.accessKeyID, f.secretAccessKey = id, secret
	}
	if f.listen == "127.0.0.1:0" {
		f.listen = lastListen(f.dataDir)
	}
	cfg, err := f.config()
	if err != nil {
		return err
	}
	srv, err := server.New(ctx, cfg)
	if err != nil {
		return err
	}
	os.WriteFile(filepath.Join(f.dataDir, "listen"), []byte(srv.Addr()+"\n"), 0o600)
	if _, err := srv.ECS.CreateCluster(ctx, &ecsapi.CreateClusterRequest{}); err != nil {
		return fmt.Errorf("create the default cluster: %w", err)
	}
	env := devEnv(srv.Endpoint(), f.accessKeyID, f.secretAccessKey, f.region)
	envFile := filepath.Join(f.dataDir, "env")
	if err := os.WriteFile(envFile, []byte(env), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", envFile, err)
	}
	fmt.Printf("Wharf %s is running.\n\n  endpoint  %s\n  region    %s\n  data      %s\n\n%s\nUse it from another shell:\n\n  source %s\n  aws --endpoint-url $AWS_ENDPOINT_URL ecs list-clusters\n\nPress Ctrl-C to stop; the state stays in %s.\n",
		version, srv.Endpoint(), f.region, f.dataDir, env, envFile, f.dataDir)
	return srv.Run(ctx)
}

func devEnv(endpoint, id, secret, region string) string {
	var b strings.Builder
	for _, kv := range [][2]string{
		{"AWS_ENDPOINT_URL", endpoint},
		{"AWS_ACCESS_KEY_ID", id},
		{"AWS_SECRET_ACCESS_KEY", secret},
		{"AWS_REGION", region},
		{"AWS_DEFAULT_REGION", region},
	} {
		fmt.Fprintf(&b, "export %s=%s\n", kv[0], kv[1])
	}
	return b.String()
}

// lastListen returns the address the previous run listened on when it is
// free again, so that a restart keeps the endpoint; else a free port.
func lastListen(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "listen"))
	if err != nil {
		return "127.0.0.1:0"
	}
	addr := strings.TrimSpace(string(b))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "127.0.0.1:0"
	}
	ln.Close()
	return addr
}

// devKey loads the dev mode access key from dir, creating it on first use.
func devKey(dir string) (id, secret string, err error) {
	path := filepath.Join(dir, "credentials.json")
	b, err := os.ReadFile(path)
	if err == nil {
		var creds map[string]string
		if err := json.Unmarshal(b, &creds); err != nil || len(creds) != 1 {
			return "", "", fmt.Errorf("%s is damaged; delete it to create a new key", path)
		}
		for id, secret = range creds {
		}
		return id, secret, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", "", err
	}
	id = "AKIA" + randomString("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
	secret = randomString("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 40)
	b, _ = json.Marshal(map[string]string{id: secret})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return "", "", fmt.Errorf("save the access key: %w", err)
	}
	return id, secret, nil
}

func randomString(alphabet string, n int) string {
	out := make([]byte, n)
	for i := range out {
		k, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		out[i] = alphabet[k.Int64()]
	}
	return string(out)
}
