// Command proxyd runs one Wharf proxy from flags, as its own process, so
// that the proxy benchmark can measure its CPU time and memory the way it
// measures HAProxy's. It is not the `wharf proxy` subcommand: it has one
// listener and one upstream, and no control plane.
//
//	proxyd -listen 127.0.0.1:0 -to 127.0.0.1:8080            # egress: to an upstream "app"
//	proxyd -listen 127.0.0.1:0 -to 127.0.0.1:8080 -ingress   # ingress: to the application
//
// It prints "listening <address>" once it accepts connections, drains on
// SIGTERM or SIGINT, and writes a CPU profile there with -cpuprofile.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/wharfhq/wharf/internal/proxy"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	to := flag.String("to", "", "endpoint (egress) or application (ingress) address")
	ingress := flag.Bool("ingress", false, "be an ingress listener to the application rather than an egress one")
	protocol := flag.String("protocol", proxy.ProtocolHTTP, "http, http2, grpc or tcp")
	procs := flag.Int("procs", 0, "GOMAXPROCS (0: Go's default)")
	metrics := flag.String("metrics", "", "serve /metrics on this address")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile here until the process is told to stop")
	flag.Parse()
	if *to == "" {
		fmt.Fprintln(os.Stderr, "proxyd: -to is required")
		os.Exit(2)
	}
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	if err := run(*listen, *to, *protocol, *ingress, *metrics, *cpuprofile); err != nil {
		fmt.Fprintln(os.Stderr, "proxyd:", err)
		os.Exit(1)
	}
}

func run(listen, to, protocol string, ingress bool, metrics, cpuprofile string) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := proxy.Config{ServiceName: "bench", ClusterName: "bench", DiscoveryName: "app"}
	if ingress {
		cfg.Listeners = []proxy.Listener{{Address: listen, Ingress: &proxy.Ingress{Protocol: protocol, AppAddress: to}}}
	} else {
		cfg.Listeners = []proxy.Listener{{Address: listen, Upstream: "app"}}
		cfg.Upstreams = []proxy.Upstream{{Name: "app", Protocol: protocol, Endpoints: []proxy.Endpoint{{Address: to}}}}
	}
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	p := proxy.New(log)
	if err := p.Apply(cfg); err != nil {
		return err
	}
	if metrics != "" {
		go http.ListenAndServe(metrics, p.Metrics())
	}
	fmt.Printf("listening %s\n", p.Addr(listen))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	<-ctx.Done()
	dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p.Drain(dctx)
	return nil
}
