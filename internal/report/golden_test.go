package report

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/golden (and the browser screenshot) from the current output")

// Streams come from two places: testdata/streams holds scenarios written
// by streams_test.go on a virtual clock (cases a short real run cannot
// reach, such as an alert raised and resolved over twelve minutes); the
// repository's testdata/streams holds the event logs of real runs on the
// test cluster, recorded by cmd/greenlight's TestRecordedStreams.
var streamDirs = []string{filepath.Join("testdata", "streams"), filepath.Join("..", "..", "testdata", "streams")}

// streamNames lists the streams of both places, so every one has goldens.
func streamNames(t testing.TB) []string {
	t.Helper()
	var names []string
	for _, dir := range streamDirs {
		paths, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
		require.NoError(t, err)
		require.NotEmpty(t, paths, "no streams in %s", dir)
		for _, p := range paths {
			names = append(names, strings.TrimSuffix(filepath.Base(p), ".jsonl"))
		}
	}
	return names
}

// streamPath is the file of a stream, in whichever place holds it.
func streamPath(t testing.TB, name string) string {
	t.Helper()
	for _, dir := range streamDirs {
		p := filepath.Join(dir, name+".jsonl")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("no stream %s in %v", name, streamDirs)
	return ""
}

// recordStream replays a stream into a Recorder.
func recordStream(t testing.TB, name string) Document {
	t.Helper()
	f, err := os.Open(streamPath(t, name))
	require.NoError(t, err)
	defer f.Close()
	rec := NewRecorder(WithRules(streamRules()))
	require.NoError(t, DecodeStream(f, rec))
	return rec.Document()
}

// golden compares got with testdata/golden/<file>, rewriting it with -update.
func golden(t *testing.T, file string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", file)
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

// TestGoldenContent checks what each scenario's summary must say, so a
// careless -update cannot bless a summary that lost its point.
func TestGoldenContent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		stream string
		want   []string
		absent []string
	}{
		{"success", []string{
			"## ✅ Deploy succeeded · production",
			"[`gl-storefront-20260314-0930`](https://github.com/acme/storefront/commit/4f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39)",
			"(previous: `ghcr.io/acme/storefront:2.7.3`)",
			"<details><summary>Request timing (httptrace)</summary>",
			"```mermaid\n---\nconfig:\n", "---\nxychart-beta\n", "x-axis [\"0s\", ", "    bar [",
			"**Alerts:** 1 raised, 1 resolved", "**Environment:** [shop.acme.example](https://shop.acme.example)", "[Workflow run](https://github.com/acme/storefront/actions/runs/8123456789)",
		}, []string{"**Reason:**", "### Evidence", "[!WARNING]", "xychart-beta horizontal", "⟲"}},
		{"fail-validate", []string{"## ❌ Deploy failed · staging", "**Reason:** Validation failed", "#### Missing permissions", "`patch deployments.apps in namespace \"shop-staging\"`", "#### How to fix\n\n```\n", "kind: Role"}, []string{"```mermaid"}},
		{"fail-deploy", []string{"#### Failing pods", "ImagePullBackOff", "#### Recent events", "ProgressDeadlineExceeded", "scale deployment/storefront-green --replicas=0"}, nil},
		{"fail-verify", []string{"**Health check failed**", "**Traffic verification failed**", "❌ 503", "4 of 10 answers came from 2.7.3", "rollout undo deployment/storefront --to-revision=13"}, nil},
		{"rollback-monitor", []string{
			"## ↩️ Rolled back · production", "**Reason:** Monitoring asked for a rollback", "**Rollback rule `error-rate`:**",
			"#### Samples that tripped the rule", "❌ 503", "OOMKilled", " ⟲\"", "⟲ marks the rollback at +12m30s",
			"**After the rollback**", "To roll forward to this image anyway",
		}, nil},
		{"rollback-failed", []string{"## 🚨 Rollback failed · staging", "> [!CAUTION]", "CreateContainerConfigError", "```sh\nkubectl --namespace shop-staging get events"}, nil},
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
		{"podinfo-fail-deploy", []string{"## ↩️ Rolled back · staging", "#### Failing pods", "ImagePullBackOff", "missing-6.9.3"}},
		{"podinfo-fail-verify", []string{"## ❌ Deploy failed · production", "podinfo reports its version", "#### Container logs", "Starting podinfo"}},
		{"podinfo-random-errors", []string{"## ↩️ Rolled back · production", "traffic verification failed"}},
		{"podinfo-rollback-monitor", []string{"## ↩️ Rolled back · production", "**Rollback rule `error-rate`:**", "#### Samples that tripped the rule", "❌ 503"}},
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
