// Command wharf runs Wharf: a container orchestrator that speaks the Amazon
// ECS API. See `wharf help`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand.
type command struct {
	name  string
	short string
	run   func(ctx context.Context, args []string) error
}

var commands = []command{
	{"dev", "run everything on this machine: control plane, embedded etcd, a local agent", runDev},
	{"server", "run the control plane", runServer},
	{"agent", "run a node agent that runs tasks on this machine's Docker engine", runAgent},
	{"spot-interrupt", "interrupt a FARGATE_SPOT task, as Fargate does when it takes the capacity back", runSpotInterrupt},
	{"pause", "hold a task's network namespace (the process of Wharf's pause image)", runPause},
	{"proxy", "run a task's Service Connect proxy (the process of Wharf's proxy image)", runProxy},
	{"version", "print the version and commit", runVersion},
}

func usage() {
	fmt.Fprintf(os.Stderr, "Wharf runs containers on your own machines behind the Amazon ECS API.\n\nUsage: wharf <command> [flags]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(os.Stderr, "  %-14s %s\n", c.name, c.short)
	}
	fmt.Fprintf(os.Stderr, "\nRun `wharf <command> --help` for a command's flags. Every flag can also be set\nthrough an environment variable WHARF_<FLAG>, e.g. WHARF_LISTEN for --listen.\n")
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	name := os.Args[1]
	if name == "help" || name == "-h" || name == "--help" {
		usage()
		return
	}
	for _, c := range commands {
		if c.name != name {
			continue
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := c.run(ctx, os.Args[2:])
		stop()
		if err != nil {
			fmt.Fprintf(os.Stderr, "wharf %s: %v\n", name, err)
			os.Exit(1)
		}
		return
	}
	fmt.Fprintf(os.Stderr, "wharf: unknown command %q\n\n", name)
	usage()
	os.Exit(2)
}
