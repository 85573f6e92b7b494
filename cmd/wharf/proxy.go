package main

import (
	"context"
	"os"
	"time"

	"github.com/wharfhq/wharf/internal/sidecar"
)

// runProxy is the process of Wharf's Service Connect proxy image: it
// follows the configuration the node agent serves for its task and proxies
// the task's Service Connect traffic. With --check it is the container's
// health check instead.
func runProxy(ctx context.Context, args []string) error {
	var opts sidecar.Options
	var check bool
	var logs logFlags
	fs := flagSet("proxy", "Run a task's Service Connect proxy (the process of Wharf's proxy image, which\nthe agent injects into Service Connect tasks). It long-polls its configuration\nfrom --config-uri, serves Prometheus metrics at /metrics and readiness at\n/ready on --admin-listen, writes access logs to standard output, and drains\non SIGTERM.")
	fs.StringVar(&opts.ConfigURI, "config-uri", os.Getenv("WHARF_PROXY_CONFIG_URI"), "the agent's configuration endpoint for this proxy (default WHARF_PROXY_CONFIG_URI)")
	fs.StringVar(&opts.AdminAddress, "admin-listen", sidecar.DefaultAdminAddress, "address serving /metrics and /ready")
	fs.DurationVar(&opts.DrainTimeout, "drain-timeout", 20*time.Second, "how long connections may finish on SIGTERM")
	fs.StringVar(&opts.Capture, "capture", sidecar.CaptureNone, "how connections to alias addresses reach the proxy: none (listen on them) or nftables (nat rules in the task's network namespace; needs CAP_NET_ADMIN)")
	fs.BoolVar(&check, "check", false, "exit 0 when the proxy at --admin-listen is ready, 1 otherwise (the container's health check)")
	logs.register(fs)
	if err := parse(fs, args); err != nil {
		return helpRequested(err)
	}
	if check {
		return sidecar.Check(ctx, opts.AdminAddress)
	}
	logger, err := logs.logger(os.Stderr)
	if err != nil {
		return err
	}
	opts.Logger, opts.AccessLog = logger.With("component", "proxy"), os.Stdout
	return sidecar.Run(ctx, opts)
}
