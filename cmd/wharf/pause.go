package main

import (
	"context"
)

// runPause holds a task's network namespace: it does nothing until told to
// stop. It is the process of Wharf's pause image.
func runPause(ctx context.Context, args []string) error {
	<-ctx.Done()
	return nil
}
