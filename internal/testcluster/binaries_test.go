package testcluster

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lockedBuffer is a log several goroutines write.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestBuildModuleBinariesShowsProgress: each package of a module is
// announced before its build and counted when built.
func TestBuildModuleBinariesShowsProgress(t *testing.T) {
	t.Parallel()
	mod := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module example.test/tools\n\ngo 1.22\n"), 0o644))
	for _, name := range []string{"one", "two"} {
		require.NoError(t, os.MkdirAll(filepath.Join(mod, name), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(mod, name, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644))
	}
	var log lockedBuffer
	out := filepath.Join(t.TempDir(), "bin")
	pkgs := []struct{ pkg, name string }{{"./one", "one"}, {"./two", "two"}}
	require.NoError(t, buildModuleBinaries(mod, out, pkgs, []string{"GOFLAGS=-mod=mod"}, &log))
	got := log.String()
	for _, want := range []string{"[1/2] building one\n", "[1/2] built one (", "[2/2] building two\n", "[2/2] built two ("} {
		assert.Contains(t, got, want)
	}
	assert.Less(t, strings.Index(got, "[1/2] built one"), strings.Index(got, "[2/2] building two"), "in order:\n%s", got)
	for _, name := range []string{"one", "two"} {
		_, err := os.Stat(filepath.Join(out, name))
		assert.NoError(t, err, "%s built", name)
	}
}

// TestHeartbeatUntilStopped: a long step says it is still going, and says
// nothing more once stopped.
func TestHeartbeatUntilStopped(t *testing.T) {
	t.Parallel()
	var log lockedBuffer
	stop := heartbeat(&log, time.Millisecond, "[1/4] still building kube-apiserver", time.Now().Add(-90*time.Second))
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(log.String(), "\n") < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	stop()
	lines := log.String()
	require.GreaterOrEqual(t, strings.Count(lines, "\n"), 2)
	assert.Contains(t, lines, "testcluster: [1/4] still building kube-apiserver (1m30s elapsed)\n")
	time.Sleep(20 * time.Millisecond)
	assert.Equal(t, lines, log.String(), "nothing after stop")
}
