// Command greenlight deploys a service to Kubernetes and refuses to leave a
// broken version serving. Run by GitHub Actions (GITHUB_ACTIONS=true, no
// arguments) it reads its inputs from INPUT_* variables and reports to the
// job; run by a person it is a CLI with the same inputs as flags.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes.
const (
	exitOK       = 0
	exitFailed   = 1
	exitBadInput = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run is the whole program with its world injected.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if getenv("GITHUB_ACTIONS") == "true" && len(args) == 0 {
		return runAction(ctx, getenv, stdout, stderr)
	}
	return runCLI(ctx, args, getenv, stdout, stderr)
}
