// Command greenlight-sandbox runs greenlight's test cluster on this machine:
// `up` starts it and keeps it running for you to deploy to, `demo` runs a
// short scripted tour against a fresh one.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ebeautything/greenlight/internal/testcluster"
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
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `greenlight-sandbox runs a real Kubernetes control plane on this machine
(etcd, kube-apiserver, kube-controller-manager; built once from the Go module
proxy), a node that runs every pod as a sample app, and a router that serves
each Service at http://ROUTER/<namespace>/<service>/.

Usage:
  greenlight-sandbox up [--kubeconfig PATH] [--router-addr 127.0.0.1:PORT] [--node stand-in|real]
                        [--oidc [--oidc-repository OWNER/NAME] [--oidc-environment NAME]
                                [--oidc-ref REF] [--oidc-namespace NAMESPACE]]
      Start the cluster, write an administrator kubeconfig, print it and the
      router's URL, and run until interrupted (Ctrl-C). --node=real runs pods
      as containers on a real node (kubelet, containerd, runc, CNI bridge,
      kube-proxy; needs root and those packages) and the router forwards to
      each Service's ClusterIP. --oidc makes the API server trust a
      GitHub-style issuer served on loopback, prints the two
      ACTIONS_ID_TOKEN_REQUEST_* values a runner gives a job (tokens for the
      repository, environment and ref flags; the cluster accepts jobs of
      acme/*), binds the job's subject to the Role greenlight needs in the
      namespace, and prints the inputs of a step with auth: github-oidc.
  greenlight-sandbox demo [--node stand-in|real]
      Start a fresh cluster, deploy sampleapp:v1, update it to v2, then ship a
      v3 that breaks after it went live and watch it get rolled back.
      --node=real does the same with podinfo's own manifests (6.9.1, 6.9.2,
      then a 6.9.3 whose pods fail their readiness once live), as containers
      on a real node, traffic through kube-proxy.

Example:
  go run ./cmd/greenlight-sandbox up --kubeconfig ./sandbox.kubeconfig
  KUBECONFIG=./sandbox.kubeconfig kubectl get pods -A
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return exitBadInput
		}
		return exitOK
	}
	switch args[0] {
	case "up":
		return up(ctx, args[1:], stdout, stderr)
	case "demo":
		return demo(ctx, args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "greenlight-sandbox: unknown command %q; accepted: up, demo\n", args[0])
		return exitBadInput
	}
}

func up(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kubeconfig := fs.String("kubeconfig", "sandbox.kubeconfig", "where to write the administrator kubeconfig")
	routerAddr := fs.String("router-addr", "127.0.0.1:0", "address of the router (loopback only)")
	nodeKind := fs.String("node", "stand-in", "the node pods run on: stand-in (in-process apps) or real (kubelet and containerd; needs root)")
	oidc := fs.Bool("oidc", false, "trust a GitHub-style OIDC issuer served on loopback and serve a job's ID tokens, as the runner does")
	var of oidcFlags
	fs.StringVar(&of.repository, "oidc-repository", testcluster.OIDCOwner+"/shop", "with --oidc: the repository claim of the job's ID tokens (owner/name); the cluster accepts repositories of "+testcluster.OIDCOwner)
	fs.StringVar(&of.environment, "oidc-environment", "production", "with --oidc: the environment claim of the job's ID tokens (empty: a job without environment)")
	fs.StringVar(&of.ref, "oidc-ref", "refs/heads/main", "with --oidc: the ref claim of the job's ID tokens")
	fs.StringVar(&of.namespace, "oidc-namespace", "default", "with --oidc: the namespace where the job's subject is bound to the Role greenlight needs")
	if err := fs.Parse(args); err != nil {
		return exitBadInput
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "greenlight-sandbox: up takes no arguments, got %q\n", fs.Args())
		return exitBadInput
	}
	var badFlag error
	fs.Visit(func(f *flag.Flag) {
		if badFlag == nil && !*oidc && strings.HasPrefix(f.Name, "oidc-") {
			badFlag = fmt.Errorf("--%s: %w", f.Name, errOIDCFlagWithoutOIDC)
		}
	})
	if badFlag == nil && *oidc {
		badFlag = of.check()
	}
	if badFlag != nil {
		fmt.Fprintf(stderr, "greenlight-sandbox: %v\n", badFlag)
		return exitBadInput
	}
	if err := checkLoopback(*routerAddr); err != nil {
		fmt.Fprintf(stderr, "greenlight-sandbox: --router-addr: %v\n", err)
		return exitBadInput
	}
	if *nodeKind != "stand-in" && *nodeKind != "real" {
		fmt.Fprintf(stderr, "greenlight-sandbox: --node: %q is not a node kind; accepted: stand-in, real\n", *nodeKind)
		return exitBadInput
	}
	c, err := testcluster.Start(ctx, testcluster.Options{Log: stderr, RouterAddr: *routerAddr, RealNode: *nodeKind == "real", OIDC: *oidc})
	if err != nil {
		fmt.Fprintf(stderr, "greenlight-sandbox: %v\n", err)
		return exitFailed
	}
	defer c.Stop()
	path, err := filepath.Abs(*kubeconfig)
	if err == nil {
		err = os.WriteFile(path, c.Kubeconfig(), 0o600)
	}
	if err != nil {
		fmt.Fprintf(stderr, "greenlight-sandbox: write kubeconfig: %v\n", err)
		return exitFailed
	}
	defer os.Remove(path)
	if *oidc {
		if err := setUpOIDC(ctx, c, of, stdout); err != nil {
			fmt.Fprintf(stderr, "greenlight-sandbox: set up GitHub OIDC: %v\n", err)
			return exitFailed
		}
	}
	fmt.Fprintf(stdout, "kubeconfig: %s\nrouter:     %s  (a Service is at %s/<namespace>/<service>/)\nkubectl:    %s\n\nRunning until interrupted (Ctrl-C).\n",
		path, c.RouterURL(), c.RouterURL(), c.Binaries().Kubectl)
	<-ctx.Done()
	fmt.Fprintln(stdout, "stopping")
	return exitOK
}

func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host != "127.0.0.1" && host != "localhost" && host != "::1" {
		return errors.New("the router listens on loopback only: want 127.0.0.1:PORT")
	}
	return nil
}

// elapsed formats a duration for the demo's narration.
func elapsed(start time.Time) string { return time.Since(start).Round(100 * time.Millisecond).String() }
