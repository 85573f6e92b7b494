package main

import (
	"context"
	"fmt"
	"runtime/debug"
)

// Set at build time with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = ""
)

func versionString() string {
	c := commit
	if c == "" {
		if info, ok := debug.ReadBuildInfo(); ok {
			for _, s := range info.Settings {
				if s.Key == "vcs.revision" {
					c = s.Value
				}
			}
		}
	}
	if c == "" {
		c = "unknown"
	}
	return fmt.Sprintf("wharf %s (commit %s)", version, c)
}

func runVersion(ctx context.Context, args []string) error {
	fs := flagSet("version", "Print the version and commit.")
	if err := parse(fs, args); err != nil {
		return helpRequested(err)
	}
	fmt.Println(versionString())
	return nil
}
