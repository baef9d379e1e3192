package report

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ebeautything/greenlight/internal/monitor"
)

var update = flag.Bool("update", false, "rewrite the goldens under the repository's testdata/golden (and the browser screenshot) from the current output")

// The streams are the event logs of real runs on the test cluster (podinfo,
// and the sample app for a component report), recorded by cmd/greenlight's
// TestRecordedStreams into the repository's testdata/streams; their goldens
// live beside them in testdata/golden.
var (
	streamDir = filepath.Join("..", "..", "testdata", "streams")
	goldenDir = filepath.Join("..", "..", "testdata", "golden")
)

// recordedRules are the thresholds the recorded runs monitored with: the
// defaults and cmd/greenlight's streamAlertResponseTime, so the latency chart
// draws the alert threshold the run had even when no alert fired.
func recordedRules() monitor.Rules {
	r := monitor.DefaultRules()
	r.AlertResponseTime = 500 * time.Millisecond
	return r
}

// streamNames lists the recorded streams, so every one has goldens.
func streamNames(t testing.TB) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(streamDir, "*.jsonl"))
	require.NoError(t, err)
	require.NotEmpty(t, paths, "no streams in %s", streamDir)
	var names []string
	for _, p := range paths {
		names = append(names, strings.TrimSuffix(filepath.Base(p), ".jsonl"))
	}
	return names
}

// streamPath is the file of a recorded stream.
func streamPath(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(streamDir, name+".jsonl")
	_, err := os.Stat(p)
	require.NoError(t, err, "no recorded stream %s", name)
	return p
}

// recordStream replays a stream into a Recorder.
func recordStream(t testing.TB, name string) Document {
	t.Helper()
	f, err := os.Open(streamPath(t, name))
	require.NoError(t, err)
	defer f.Close()
	rec := NewRecorder(WithRules(recordedRules()))
	require.NoError(t, DecodeStream(f, rec))
	return rec.Document()
}

// golden compares got with testdata/golden/<file>, rewriting it with -update.
func golden(t *testing.T, file string, got []byte) {
	t.Helper()
	path := filepath.Join(goldenDir, file)
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file; run go test ./internal/report -update")
	assert.Equal(t, string(want), string(got), "output differs from %s; run with -update if the change is intended", path)
}

func TestGolden(t *testing.T) {
	t.Parallel()
	for _, name := range streamNames(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			doc := recordStream(t, name)
			require.Equal(t, SchemaVersion, doc.SchemaVersion)

			var js bytes.Buffer
			require.NoError(t, WriteJSON(&js, doc))
			golden(t, name+".json", js.Bytes())

			summary := Markdown(doc)
			assert.LessOrEqual(t, len(summary), DefaultBudget)
			golden(t, name+".md", []byte(summary))
			golden(t, name+".txt", []byte(Text(doc)))

			// The JSON report is enough to render the same summary again.
			back, err := ReadJSON(bytes.NewReader(js.Bytes()))
			require.NoError(t, err)
			assert.Equal(t, doc, back)
			assert.Equal(t, summary, Markdown(back))
			assert.Equal(t, Text(doc), Text(back))
		})
	}
}

// TestGoldenContent checks what the recorded summaries must and must not
// say beyond their highlights, so a careless -update cannot bless a summary
// that lost its point.
func TestGoldenContent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		stream string
		want   []string
		absent []string
	}{
		{"podinfo-success", []string{
			"(previous: `ghcr.io/acme/podinfo:", "<details><summary>Request timing (httptrace)</summary>",
			"```mermaid\n---\nconfig:\n", "---\nxychart-beta\n", "x-axis [\"0.0s\", ", "    bar [", "**Alerts:**",
		}, []string{"**Reason:**", "### Evidence", "[!WARNING]", "xychart-beta horizontal", "⟲"}},
		{"podinfo-fail-validate", nil, []string{"```mermaid", "### By hand"}},
		{"podinfo-fail-permissions", nil, []string{"```mermaid", "### By hand", "get deployments.apps in namespace"}},
		{"podinfo-fail-deploy", []string{"#### Recent events", "### By hand", "rollout undo deployment/podinfo --to-revision="}, nil},
		{"podinfo-rollback-monitor", []string{
			"**Reason:** rolled back to ghcr.io/acme/podinfo:", " ⟲\"]", "⟲ marks the rollback at +",
			"**After the rollback**", "To roll forward to this image anyway", "#### Container logs", "#### Recent events",
		}, nil},
		{"podinfo-rollback-failed", []string{"#### Failing pods", "#### Recent events", "**Reason:** the rollback failed: "}, []string{"```mermaid"}},
	}
	for _, tc := range tests {
		t.Run(tc.stream, func(t *testing.T) {
			t.Parallel()
			summary := Markdown(recordStream(t, tc.stream))
			for _, w := range tc.want {
				assert.Contains(t, summary, w)
			}
			for _, a := range tc.absent {
				assert.NotContains(t, summary, a)
			}
		})
	}
	// The production warning comes before everything else.
	summary := Markdown(recordStream(t, "podinfo-skip-tests-production"))
	assert.True(t, strings.HasPrefix(summary, "> [!WARNING]\n"), "warning must open the summary")
}

// TestRecordedRunHighlights: the summaries of real runs on the test
// cluster, with podinfo, say what happened in each.
func TestRecordedRunHighlights(t *testing.T) {
	t.Parallel()
	tests := []struct {
		stream string
		want   []string
	}{
		{"podinfo-success", []string{"## ✅ Deploy succeeded · production", "### Smoke tests\n\n1 of 1 passed.", "proof: **endpoints**", "```mermaid"}},
		{"podinfo-awaiting-promotion", []string{
			"## ⏸️ Awaiting promotion · production", "### Awaiting promotion", "podinfo reports its version",
			"kubectl -n shop port-forward service/podinfo-preview 8080:http", "kubectl get --raw /api/v1/namespaces/shop/services/podinfo-preview:http/proxy/healthz",
			"```yaml\n- uses: ebeautything/greenlight@v1\n  with:\n    command: promote\n", "`greenlight reject --environment=production --namespace=shop --deployment=podinfo`",
		}},
		{"podinfo-skip-tests-production", []string{"> [!WARNING]\n> Tests were skipped for this production deploy: its smoke tests did not run", "smoke tests skipped (skip-tests) in production", "### Traffic verification"}},
		{"podinfo-fail-validate", []string{"## ❌ Deploy failed · staging", "server-side dry run", "spec.minReadySeconds: Invalid value: -3"}},
		{"podinfo-fail-permissions", []string{
			"## ❌ Deploy failed · staging", "user \"deployer-shop-staging\"", "nothing was changed", "#### Missing permissions",
			"`patch deployments.apps in namespace \"shop-staging\"`", "#### How to fix\n\n```\n", "kubectl create role greenlight-deployer-", "kind: Role",
		}},
		{"podinfo-fail-deploy", []string{"## ↩️ Rolled back · staging", "#### Failing pods", "ImagePullBackOff", "missing-6.9.3"}},
		{"podinfo-fail-verify", []string{"## ❌ Deploy failed · production", "podinfo reports its version", "#### Container logs", "Starting podinfo"}},
		{"podinfo-random-errors", []string{"## ↩️ Rolled back · production", "**Reason:** rolled back to ghcr.io/acme/podinfo:1111111111111111111111111111111111111111 because "}},
		{"podinfo-rollback-monitor", []string{"## ↩️ Rolled back · production", "**Rollback rule `error-rate`:**", "#### Samples that tripped the rule", "❌ 503"}},
		{"sampleapp-rollback-monitor", []string{
			"## ↩️ Rolled back · production", "**Reason:** rolled back to sampleapp:v2 because monitoring", "**Rollback rule `error-rate`:**",
			"Components of `/health/detailed`, overall ✅ pass:", "| database:responseTime | ✅ pass | 3ms | observed 3 ms |",
			"#### Container logs", "answered 500: injected failure", "⟲ marks the rollback at +", "```mermaid",
		}},
		{"podinfo-rollback-failed", []string{"## 🚨 Rollback failed · staging", "> [!CAUTION]", "missing-6.9.1"}},
	}
	for _, tc := range tests {
		t.Run(tc.stream, func(t *testing.T) {
			t.Parallel()
			summary := Markdown(recordStream(t, tc.stream))
			for _, w := range tc.want {
				assert.Contains(t, summary, w)
			}
		})
	}
}
