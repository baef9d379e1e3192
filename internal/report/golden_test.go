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

// streamNames lists the recorded streams, so every one has goldens.
func streamNames(t testing.TB) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "streams", "*.jsonl"))
	require.NoError(t, err)
	require.NotEmpty(t, paths, "no recorded streams")
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = strings.TrimSuffix(filepath.Base(p), ".jsonl")
	}
	return names
}

// recordStream replays a recorded stream into a Recorder.
func recordStream(t testing.TB, name string) Document {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "streams", name+".jsonl"))
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
		{"awaiting-promotion", []string{
			"## ⏸️ Awaiting promotion · production", "### Awaiting promotion", "port-forward service/storefront-preview 8080:http",
			"kubectl get --raw /api/v1/namespaces/shop/services/storefront-preview:http/proxy/health", "```yaml\n- uses: ebeautything/greenlight@v1\n  with:\n    command: promote\n",
			"`greenlight reject --environment=production --namespace=shop --deployment=storefront`", "storefront-green-7d9f8c6b5-x2k4p",
		}, []string{"### Evidence", "### By hand"}},
		{"skip-tests-production", []string{"> [!WARNING]\n> Tests were skipped for this production deploy", "⏭️ skipped"}, nil},
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
	summary := Markdown(recordStream(t, "skip-tests-production"))
	assert.True(t, strings.HasPrefix(summary, "> [!WARNING]\n"), "warning must open the summary")
}
