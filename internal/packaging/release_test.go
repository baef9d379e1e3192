package packaging_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ebeautything/greenlight/internal/config"
)

// pinnedImage is an image reference as the release pins it.
const pinnedImage = "docker://ghcr.io/ebeautything/greenlight@sha256:" +
	"4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945"

// runScript runs a script of .github/scripts/ in dir and returns its exit code and
// combined output.
func runScript(t *testing.T, dir, script string, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(repoRoot(t), ".github", "scripts", script), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), string(out)
	}
	require.NoError(t, err, "%s", out)
	return 0, string(out)
}

// TestPinActionImage runs the rewrite on copies of action.yml.
func TestPinActionImage(t *testing.T) {
	t.Parallel()
	original, err := os.ReadFile(filepath.Join(repoRoot(t), "action.yml"))
	require.NoError(t, err)
	for _, tc := range []struct {
		name    string
		file    string // content; the repository's action.yml when empty
		image   string
		code    int
		message string
	}{
		{name: "release digest", image: pinnedImage},
		{name: "local tag", image: "docker://greenlight-act:test-1"},
		{name: "not docker://", image: "ghcr.io/ebeautything/greenlight:v1", code: 2, message: "is not docker://NAME"},
		{name: "shell or sed characters", image: "docker://x#y;rm", code: 2, message: "is not docker://NAME"},
		{name: "upper case", image: "docker://GHCR.io/x", code: 2, message: "in lower case"},
		{name: "already pinned", file: strings.Replace(string(original), "  image: Dockerfile\n", "  image: "+pinnedImage+"\n", 1), image: pinnedImage, code: 1, message: `has 0 lines "  image: Dockerfile"`},
		{name: "not a container action", file: "runs:\n  using: node20\n  image: Dockerfile\n", image: pinnedImage, code: 1, message: "is not a container action"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			content := tc.file
			if content == "" {
				content = string(original)
			}
			path := filepath.Join(t.TempDir(), "action.yml")
			require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
			code, out := runScript(t, t.TempDir(), "pin-action-image.sh", nil, path, tc.image)
			assert.Equal(t, tc.code, code, out)
			got, err := os.ReadFile(path)
			require.NoError(t, err)
			if tc.code != 0 {
				assert.Contains(t, out, tc.message)
				assert.Equal(t, content, string(got), "a refused rewrite leaves the file as it was")
				return
			}
			assert.Equal(t, strings.Replace(content, "  image: Dockerfile\n", "  image: "+tc.image+"\n", 1), string(got))
		})
	}
	code, out := runScript(t, t.TempDir(), "pin-action-image.sh", nil, "/nonexistent/action.yml", pinnedImage)
	assert.Equal(t, 2, code, out)
}

// git runs git in dir with a fixed identity and returns its trimmed output.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), gitIdentity...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "git %s: %s", strings.Join(args, " "), out)
	return strings.TrimSpace(string(out))
}

var gitIdentity = []string{"GIT_AUTHOR_NAME=release", "GIT_AUTHOR_EMAIL=release@example.com",
	"GIT_COMMITTER_NAME=release", "GIT_COMMITTER_EMAIL=release@example.com", "GIT_CONFIG_GLOBAL=/dev/null"}

// TestReleaseDryRun runs the release's tag rewrite on a temporary tag in a
// scratch repository with a scratch remote: the full version tag and the
// major tag move to a commit whose action.yml runs the image by digest, the
// rest of the tree is the tagged commit's, and the pinned action.yml is
// what the generator renders with that one line changed.
func TestReleaseDryRun(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("needs git")
	}
	root := repoRoot(t)
	remote := filepath.Join(t.TempDir(), "origin.git")
	git(t, filepath.Dir(remote), "init", "--quiet", "--bare", remote)

	repo := t.TempDir()
	git(t, repo, "init", "--quiet", "--initial-branch=main")
	for _, name := range []string{"action.yml", "Dockerfile", "README.md"} {
		data, err := os.ReadFile(filepath.Join(root, name))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(repo, name), data, 0o644))
	}
	git(t, repo, "add", "--all")
	git(t, repo, "commit", "--quiet", "--message", "release candidate")
	git(t, repo, "remote", "add", "origin", remote)
	// v1 already names an older release; v1.4.2 is the tag just pushed.
	git(t, repo, "tag", "v1")
	git(t, repo, "commit", "--quiet", "--allow-empty", "--message", "fix")
	tagged := git(t, repo, "rev-parse", "HEAD")
	git(t, repo, "tag", "--annotate", "--message", "v1.4.2", "v1.4.2")
	git(t, repo, "push", "--quiet", "origin", "main", "refs/tags/v1", "refs/tags/v1.4.2")

	code, out := runScript(t, repo, "release-tags.sh", gitIdentity, "v1.4.2", pinnedImage, "origin")
	require.Equal(t, 0, code, out)
	t.Logf("release-tags.sh:\n%s", out)

	for _, dir := range []string{repo, remote} {
		release := git(t, dir, "rev-parse", "v1.4.2^{commit}")
		assert.Equal(t, release, git(t, dir, "rev-parse", "v1^{commit}"), "v1 moved with the release")
		assert.Equal(t, tagged, git(t, dir, "rev-parse", release+"^"), "the pinned commit sits on the tagged one")
		assert.Equal(t, "M\taction.yml", git(t, dir, "diff", "--name-status", tagged, release), "only action.yml changes")
		assert.Equal(t, tagged, git(t, dir, "rev-parse", "main"), "main keeps the Dockerfile")

		pinned := git(t, dir, "show", "v1:action.yml") + "\n"
		checkActionYAML(t, []byte(pinned), "release")
		want := strings.Replace(renderActionYAML(config.Names()), "  image: Dockerfile\n", "  image: "+pinnedImage+"\n", 1)
		assert.Equal(t, want, pinned, "the generator's action.yml with the image pinned")
	}
	assert.Empty(t, git(t, repo, "status", "--porcelain"), "the working tree is untouched")

	// Bad arguments are refused before anything moves.
	before := git(t, remote, "rev-parse", "v1")
	for _, args := range [][]string{
		{"v1.4", pinnedImage},
		{"v1.4.2", "docker://ghcr.io/ebeautything/greenlight:v1.4.2"},
		{"v9.9.9", pinnedImage},
	} {
		code, out := runScript(t, repo, "release-tags.sh", gitIdentity, append(args, "origin")...)
		assert.Equal(t, 2, code, "%v: %s", args, out)
	}
	assert.Equal(t, before, git(t, remote, "rev-parse", "v1"))
}

// TestActionImageMatchesDockerfile keeps the end-to-end tests' image
// (testdata/action-image, FROM scratch because registry bases cannot be
// pulled there) in step with the Dockerfile's runtime stage: the same binary
// path, entrypoint and user, plus what distroless brings that the action
// needs (CA certificates, /etc/passwd with root).
func TestActionImageMatchesDockerfile(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	final := readDockerfile(t)[1]
	data, err := os.ReadFile(filepath.Join(root, "testdata", "action-image", "Dockerfile"))
	require.NoError(t, err)
	stages, err := parseDockerfile(string(data))
	require.NoError(t, err)
	require.Len(t, stages, 1)
	scratch := stages[0]
	assert.Equal(t, "scratch", scratch.image)

	var copies, others []string
	for _, in := range scratch.body {
		if in.cmd == "COPY" {
			copies = append(copies, in.args)
		} else {
			others = append(others, in.cmd+" "+in.args)
		}
	}
	var want []string
	for _, in := range final.body {
		if in.cmd != "COPY" {
			want = append(want, in.cmd+" "+in.args)
		}
	}
	assert.Equal(t, want, others, "the same instructions as the Dockerfile's runtime stage (no USER, no WORKDIR)")
	binary := strings.Fields(final.body[0].args)
	assert.Equal(t, []string{
		"ca-certificates.crt /etc/ssl/certs/ca-certificates.crt",
		"passwd /etc/passwd",
		"greenlight " + binary[len(binary)-1],
	}, copies)

	passwd, err := os.ReadFile(filepath.Join(root, "testdata", "action-image", "passwd"))
	require.NoError(t, err)
	assert.True(t, bytes.HasPrefix(passwd, []byte("root:x:0:0:")), "the image runs as root, as distroless's latest does")
}
