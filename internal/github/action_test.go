package github

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mapEnv is a getenv over a map.
func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

// failingWriter fails every write, like a closed stdout.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("stdout closed") }

const kubeconfig = `apiVersion: v1
kind: Config
clusters:
- cluster:
    server: https://10.0.0.1:6443
  name: prod
users:
- name: deployer
  user:
    token: kube-TOKEN-abcdef123456
`

func TestMaskValues(t *testing.T) {
	t.Parallel()
	b64 := base64.StdEncoding.EncodeToString([]byte(kubeconfig))
	kubeLines := []string{"apiVersion: v1", "kind: Config", "clusters:", "- cluster:", "server: https://10.0.0.1:6443",
		"name: prod", "users:", "- name: deployer", "user:", "token: kube-TOKEN-abcdef123456"}
	tests := []struct {
		name   string
		secret string
		want   []string
	}{
		{"empty", "", nil},
		{"blank", " \n ", nil},
		{"plain token", "ghp_plainTOKEN-0123", []string{"ghp_plainTOKEN-0123"}},
		{"multi-line kubeconfig", kubeconfig, append([]string{kubeconfig}, kubeLines...)},
		{"base64 kubeconfig", b64, append([]string{b64, strings.TrimSpace(kubeconfig)}, kubeLines...)},
		{"base64 of a word", "c2VjcmV0LXZhbHVl", []string{"c2VjcmV0LXZhbHVl", "secret-value"}},
		{"base64 without padding", "c2VjcmV0LXZhbA", []string{"c2VjcmV0LXZhbA", "secret-val"}},
		{"base64 of binary is not decoded", base64.StdEncoding.EncodeToString([]byte{0xff, 0x00, 0xfe, 0x01}), []string{"/wD+AQ=="}},
		{"short lines are not masked alone", "abc\nlonger-line\n}", []string{"abc\nlonger-line\n}", "longer-line"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, maskValues(tt.secret))
		})
	}
}

func TestMask(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	a := NewAction(mapEnv(nil), &out)
	require.NoError(t, a.Mask("ghp_plainTOKEN-0123", "first-line\nsecond-line", ""))
	assert.Equal(t, "::add-mask::ghp_plainTOKEN-0123\n"+
		"::add-mask::first-line%0Asecond-line\n"+
		"::add-mask::first-line\n"+
		"::add-mask::second-line\n", out.String())
}

func TestActionWriteFailuresAreErrors(t *testing.T) {
	t.Parallel()
	a := NewAction(mapEnv(nil), failingWriter{})
	assert.NotPanics(t, func() {
		err := a.Mask("ghp_plainTOKEN-0123")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "mask a secret")
		assert.NotContains(t, err.Error(), "ghp_plainTOKEN-0123")
		require.Error(t, a.Warning("w"))
		require.Error(t, a.Error("e"))
		require.Error(t, a.Notice("n"))
		a.Group("g")()
	})
}

func TestSetOutputs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "output")
	var out strings.Builder
	a := NewAction(mapEnv(map[string]string{"GITHUB_OUTPUT": path}), &out)
	require.NoError(t, a.SetOutputs(map[string]string{
		"status":        "rolled-back",
		"deployment-id": "gl-1",
		"reason":        "line one\nline two",
	}))
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	d := outputDelimiter
	assert.Equal(t, "deployment-id<<"+d+"\ngl-1\n"+d+"\n"+
		"reason<<"+d+"\nline one\nline two\n"+d+"\n"+
		"status<<"+d+"\nrolled-back\n"+d+"\n", string(got))
	assert.Empty(t, out.String(), "outputs go to the file, not stdout")
	require.NoError(t, a.SetOutputs(nil))
}

func TestSetOutputsErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name    string
		file    string
		outputs map[string]string
		want    string
	}{
		{"not in a runner", "", map[string]string{"status": "succeeded"}, "GITHUB_OUTPUT is not set"},
		{"empty name", "out", map[string]string{"": "x"}, "an output name is empty"},
		{"name with a line break", "out", map[string]string{"a\nb": "x"}, `output name "a\nb" must not contain`},
		{"name with heredoc marker", "out", map[string]string{"a<<b": "x"}, `output name "a<<b" must not contain`},
		{"value with the delimiter", "out", map[string]string{"status": "ok\n" + outputDelimiter + "\nevil<<X\ny\nX"}, `the value of output "status" contains the runner's heredoc delimiter`},
		{"unwritable file", ".", map[string]string{"status": "succeeded"}, `set step output "status": unable to write command`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := ""
			if tt.file != "" {
				path = filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+"-"+tt.file)
				if tt.file == "." {
					path = dir
				}
			}
			a := NewAction(mapEnv(map[string]string{"GITHUB_OUTPUT": path}), &strings.Builder{})
			var err error
			require.NotPanics(t, func() { err = a.SetOutputs(tt.outputs) })
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			if tt.file == "out" {
				assert.NoFileExists(t, path, "nothing is written when an output is refused")
			}
		})
	}
}

func TestAppendSummary(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "summary.md")
	a := NewAction(mapEnv(map[string]string{"GITHUB_STEP_SUMMARY": path}), &strings.Builder{})
	require.NoError(t, a.AppendSummary("# Deploy"))
	require.NoError(t, a.AppendSummary("All good."))
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "# Deploy\nAll good.\n", string(got))

	err = a.AppendSummary(strings.Repeat("x", MaxSummaryBytes))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "over GitHub's limit of 1048576 bytes (1 MiB)")
	got, _ = os.ReadFile(path)
	assert.Len(t, got, len("# Deploy\nAll good.\n"), "a refused summary is not written at all")

	// The limit applies to the whole file: it is reached by appending too.
	require.NoError(t, a.AppendSummary(strings.Repeat("y", MaxSummaryBytes-len(got)-1)))
	require.Error(t, a.AppendSummary("z"))
}

func TestAppendSummaryErrors(t *testing.T) {
	t.Parallel()
	for name, env := range map[string]map[string]string{
		"not in a runner": {},
		"a directory":     {"GITHUB_STEP_SUMMARY": t.TempDir()},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a := NewAction(mapEnv(env), &strings.Builder{})
			var err error
			require.NotPanics(t, func() { err = a.AppendSummary("# Deploy") })
			require.Error(t, err)
			assert.Contains(t, err.Error(), "append job summary")
		})
	}
}

func TestGroupAndAnnotations(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	a := NewAction(mapEnv(nil), &out)
	end := a.Group("Deploy to production")
	require.NoError(t, a.Warning("disk at 100% on node-1", Annotation{File: "k8s/deploy.yml", Line: 3, EndLine: 4, Title: "Image: v2, again"}))
	require.NoError(t, a.Error("rollout failed\nImagePullBackOff"))
	require.NoError(t, a.Notice("rolled back", Annotation{}))
	end()
	end()
	assert.Equal(t, "::group::Deploy to production\n"+
		"::warning endLine=4,file=k8s/deploy.yml,line=3,title=Image%3A v2%2C again::disk at 100%25 on node-1\n"+
		"::error::rollout failed%0AImagePullBackOff\n"+
		"::notice::rolled back\n"+
		"::endgroup::\n", out.String())
}
