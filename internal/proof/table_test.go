package proof

import (
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// golden compares got with testdata/name, rewriting it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run with -update to create %s", path)
	assert.Equal(t, string(want), got)
}

func TestFigureRatioAndBehind(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		f         Figure
		ratio     float64
		hasRatio  bool
		behind    bool
		reasoning string
	}{
		{name: "faster than kubectl", f: Figure{Ours: 1, Peer: "kubectl", PeerValue: 4, Judgement: AgainstPeer}, ratio: 0.25, hasRatio: true},
		{name: "slower than kubectl", f: Figure{Ours: 8, Peer: "kubectl", PeerValue: 4, Judgement: AgainstPeer}, ratio: 2, hasRatio: true, behind: true},
		{name: "equal is not behind", f: Figure{Ours: 4, Peer: "kubectl", PeerValue: 4, Judgement: AgainstPeer}, ratio: 1, hasRatio: true},
		{name: "above the bound", f: Figure{Ours: 700, Peer: "bound", PeerValue: 600, Judgement: AgainstBound}, ratio: 700.0 / 600, hasRatio: true, behind: true},
		{name: "informational above 1 is not behind", f: Figure{Ours: 3, Peer: "before", PeerValue: 1}, ratio: 3, hasRatio: true},
		{name: "target zero met", f: Figure{Ours: 0, Peer: "target", PeerValue: 0, Judgement: AgainstTarget}},
		{name: "target zero missed", f: Figure{Ours: 2, Peer: "target", PeerValue: 0, Judgement: AgainstTarget}, behind: true},
		{name: "no peer", f: Figure{Ours: 61}},
		{name: "zero peer has no ratio", f: Figure{Ours: 3, Peer: "kubectl", PeerValue: 0, Judgement: AgainstPeer}},
		{name: "negative peer has no ratio", f: Figure{Ours: 3, Peer: "kubectl", PeerValue: -1, Judgement: AgainstPeer}},
		{name: "NaN has no ratio", f: Figure{Ours: math.NaN(), Peer: "kubectl", PeerValue: 1, Judgement: AgainstPeer}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, ok := tc.f.Ratio()
			assert.Equal(t, tc.hasRatio, ok)
			assert.InDelta(t, tc.ratio, r, 1e-9)
			assert.Equal(t, tc.behind, tc.f.Behind())
		})
	}
}

func TestTable(t *testing.T) {
	t.Parallel()
	figures := []Figure{
		{Order: 21, Name: "API requests per deploy", Unit: "requests", Ours: 42, Peer: "kubectl apply + rollout status", PeerValue: 11, Judgement: AgainstPeer,
			Why: "it checks   first\nand records what it did"},
		{Order: 11, Name: "rollout detection, median", Unit: "ms", Ours: 0.3624, Peer: "kubectl rollout status", PeerValue: 2.975, Judgement: AgainstPeer, Why: "never printed: ahead"},
		{Order: 23, Name: "API requests per blue-green deploy", Unit: "requests", Ours: 61},
		{Order: 31, Name: "time to safety | blue-green", Unit: "ms", Ours: 700, Peer: "bound", PeerValue: 612.5, Judgement: AgainstBound},
		{Order: 41, Name: "failed requests", Unit: "requests", Ours: 0, Peer: "target", PeerValue: 0, Judgement: AgainstTarget, Why: "never printed: met"},
		{Order: 45, Name: "latency p50 during the switch", Unit: "ms", Ours: 0.34, Peer: "before", PeerValue: 0.21},
		{Order: 46, Name: "latency p95, empty window", Unit: "ms", Ours: math.NaN(), Peer: "before", PeerValue: 1.16},
		{Order: 52, Name: "binary size", Unit: "MiB", Ours: 30.62, Peer: "kubectl", PeerValue: 75.66, Judgement: AgainstPeer},
		{Order: 54, Name: "peak memory", Unit: "MiB", Ours: 1234.5, Peer: "1000 probes", PeerValue: 1234.4},
	}
	got := Table("## figures", figures, "a note\nwrapped")
	golden(t, "table.golden", got)
	assert.Contains(t, got, "| 11 | rollout detection, median |", "sorted by Order")
	assert.NotContains(t, got, "never printed")
	assert.Contains(t, got, "time to safety \\| blue-green", "a pipe cannot break the table")
	assert.Contains(t, got, "why #31 (time to safety | blue-green) is behind bound: not explained", "a missing why is visible")
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	samples := []float64{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	for _, tc := range []struct {
		p    float64
		want float64
	}{{0.5, 5}, {0.95, 10}, {0.1, 1}, {1, 10}, {0.01, 1}} {
		assert.Equal(t, tc.want, Percentile(samples, tc.p), "p=%v", tc.p)
	}
	assert.True(t, math.IsNaN(Percentile(nil, 0.5)), "no samples is not zero")
	assert.Equal(t, []float64{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}, samples, "the input is not reordered")
}

func TestFormatValue(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		v    float64
		unit string
		want string
	}{
		{42, "requests", "42 requests"},
		{0.3624, "ms", "0.36 ms"},
		{56.23, "MiB", "56.2 MiB"},
		{1052.7, "ms", "1053 ms"},
		{-0.46, "ms", "-0.46 ms"},
		{math.NaN(), "ms", "n/a"},
		{7, "", "7"},
	} {
		assert.Equal(t, tc.want, formatValue(tc.v, tc.unit))
	}
}

func TestSpliceReadme(t *testing.T) {
	t.Parallel()
	readme := "# x\n\n" + ReadmeTableStart + "\nold table\n" + ReadmeTableEnd + "\nrest\n"
	got, err := SpliceReadme(readme, "new table\n")
	require.NoError(t, err)
	assert.Equal(t, "# x\n\n"+ReadmeTableStart+"\nnew table\n"+ReadmeTableEnd+"\nrest\n", got)
	_, err = SpliceReadme("# no markers\n", "t")
	assert.Error(t, err)
	_, err = SpliceReadme(ReadmeTableEnd+"\n"+ReadmeTableStart, "t")
	assert.Error(t, err)
}
