package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ebeautything/greenlight/internal/testcluster"
)

var (
	// cluster trusts a GitHub-style OIDC issuer, for the github-oidc tests.
	cluster = testcluster.Shared{OIDC: true}
	// binary is greenlight built as the Dockerfile builds it, or with the
	// race detector when the tests run under -race.
	binary string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "greenlight-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "greenlight")
	build := exec.Command("go", "build", "-trimpath", "-o", binary, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if raceEnabled {
		// Under `go test -race` the binary the end-to-end tests run is a
		// race build too (which needs cgo), and a race it hits fails it.
		build = exec.Command("go", "build", "-race", "-trimpath", "-o", binary, ".")
		build.Env = append(os.Environ(), "CGO_ENABLED=1")
	}
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build greenlight: %v\n%s", err, out)
		os.Exit(1)
	}
	code := testcluster.Main(m, &cluster)
	actRunner.cleanup()
	os.RemoveAll(dir)
	os.Exit(code)
}
