package monitor

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/name, rewriting it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "golden file missing; run go test -update")
	assert.Equal(t, string(want), string(got))
}

// t0 is a fixed origin so figures and golden files are reproducible.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// okSample and failSample build samples i seconds after t0.
func okSample(i int, latency time.Duration) Sample {
	return Sample{Time: t0.Add(time.Duration(i) * time.Second), Endpoint: "https://app.example.test/health", Latency: latency, StatusCode: 200, OK: true}
}

func failSample(i int, latency time.Duration) Sample {
	return Sample{Time: t0.Add(time.Duration(i) * time.Second), Endpoint: "https://app.example.test/health", Latency: latency, StatusCode: 503, Err: "status 503"}
}
