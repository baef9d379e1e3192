package testcluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RealNodeFor starts a cluster of its own with a real node for one test
// or benchmark, stopped when it ends; with -short, or without root (the
// node needs bridges, routes, iptables, mounts and cgroups), it skips.
// The machine's one real node is a lock: other starts wait for it.
func RealNodeFor(t testing.TB) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("the real node starts its own cluster; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("the real node needs root (bridge, routes, iptables, mounts, cgroups); skipped")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	c, err := Start(ctx, Options{Log: os.Stderr, RealNode: true})
	if err != nil {
		t.Fatalf("start a cluster with a real node: %v", err)
	}
	t.Cleanup(c.Stop)
	return c
}

// Shared starts one cluster for a whole test binary, on first use, so tests
// that do not need it (or `go test -short`) pay nothing. Stop it from
// TestMain after m.Run.
type Shared struct {
	// OIDC starts the cluster with Options.OIDC.
	OIDC    bool
	once    sync.Once
	cluster *Cluster
	err     error
}

// Get returns the shared cluster, starting it on first use. Under -short the
// test is skipped.
func (s *Shared) Get(t testing.TB) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the test cluster; skipped with -short")
	}
	s.once.Do(func() {
		// Timed generously: the first start may build Kubernetes.
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
		defer cancel()
		var log io.Writer = os.Stderr
		s.cluster, s.err = Start(ctx, Options{Log: log, OIDC: s.OIDC})
	})
	if s.err != nil {
		t.Fatalf("start test cluster: %v", s.err)
	}
	return s.cluster
}

// Stop stops the shared cluster if it was started.
func (s *Shared) Stop() {
	if s.cluster != nil {
		s.cluster.Stop()
	}
}

// Main runs a package's tests with a shared cluster and stops it afterwards;
// use it as `func TestMain(m *testing.M) { os.Exit(testcluster.Main(m, &shared)) }`.
func Main(m *testing.M, s *Shared) int {
	code := m.Run()
	s.Stop()
	return code
}

var nonName = regexp.MustCompile(`[^a-z0-9-]+`)

// NewNamespace creates a namespace named after the test and deletes it when
// the test ends, so tests sharing a cluster do not see each other.
func (c *Cluster) NewNamespace(t testing.TB) string {
	t.Helper()
	base := strings.Trim(nonName.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(base) > 40 {
		base = strings.Trim(base[:40], "-")
	}
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	name := fmt.Sprintf("%s-%s", base, hex.EncodeToString(suffix))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = c.client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}
