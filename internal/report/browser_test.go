//go:build unix

package report

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// browserCheckDir holds the Node script that renders a summary to HTML.
const browserCheckDir = "browsercheck"

// browserTimeout bounds each chromium, node or npm run.
const browserTimeout = 60 * time.Second

// TestSummariesRenderInBrowser renders every golden summary the way a
// Markdown viewer with Mermaid does and proves, in a real headless browser,
// that every chart draws; a chart with a syntax error would only show up
// on GitHub otherwise.
func TestSummariesRenderInBrowser(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (apt-get install chromium)")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	ensureNodeModules(t)

	dir := t.TempDir()
	for _, name := range streamNames(t) {
		t.Run(name, func(t *testing.T) {
			summary, err := os.ReadFile(filepath.Join(goldenDir, name+".md"))
			require.NoError(t, err)
			page := renderPage(t, node, dir, name, summary)
			dom := dumpDOM(t, chromium, page)
			charts := strings.Count(string(summary), "```mermaid\n")
			checkCharts(t, dom, charts)

			if name == "podinfo-rollback-monitor" {
				shot := filepath.Join(dir, "summary-rollback.png")
				runBounded(t, chromium, chromiumArgs(t, "--screenshot="+shot, "--window-size=1000,1600", fileURL(page))...)
				png, err := os.ReadFile(shot)
				require.NoError(t, err)
				require.True(t, bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")), "screenshot is a PNG")
				if *update {
					require.NoError(t, os.WriteFile(filepath.Join(goldenDir, "summary-rollback.png"), png, 0o644))
				}
			}
		})
	}

	// Hostile text from a pod must not become markup in the browser either.
	t.Run("hostile", func(t *testing.T) {
		page := renderPage(t, node, dir, "hostile", []byte(Markdown(hostileDocument())))
		dom := dumpDOM(t, chromium, page)
		checkCharts(t, dom, 2)
		assert.NotContains(t, dom, "<img")
		assert.NotContains(t, dom, "<h1")
		assert.NotRegexp(t, `(?i)<[a-z][^<>]*\sonerror=`, dom, "no element has an event handler")
		assert.NotRegexp(t, `(?i)href="javascript:`, dom)
		assert.NotRegexp(t, `(?i)<a [^>]*href="https://evil`, dom, "no link to a URL from a pod")
		assert.Equal(t, 2, strings.Count(dom, "<script"), "only the page's own scripts")
		assert.Equal(t, 1, strings.Count(dom, "<details"), "only the summary's own details")
	})
}

// ensureNodeModules installs the pinned marked and mermaid from the lock
// file when they are missing, or skips when that is impossible.
func ensureNodeModules(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(browserCheckDir, "node_modules", "mermaid", "dist", "mermaid.min.js")); err == nil {
		return
	}
	if _, err := os.Stat(filepath.Join(browserCheckDir, "package-lock.json")); err != nil {
		t.Skip("browsercheck/package-lock.json is missing, so its node_modules cannot be installed")
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skip("npm is not installed, so browsercheck/node_modules cannot be installed")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--prefix", browserCheckDir)
	bound(cmd)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "npm ci --prefix %s:\n%s", browserCheckDir, out)
}

// renderPage writes summary to dir and turns it into an HTML page.
func renderPage(t *testing.T, node, dir, name string, summary []byte) string {
	t.Helper()
	md := filepath.Join(dir, name+".md")
	page := filepath.Join(dir, name+".html")
	require.NoError(t, os.WriteFile(md, summary, 0o644))
	runBounded(t, node, filepath.Join(browserCheckDir, "render.mjs"), md, page)
	return page
}

// dumpDOM loads page in headless chromium and returns the DOM after its
// scripts ran.
func dumpDOM(t *testing.T, chromium, page string) string {
	t.Helper()
	return string(runBounded(t, chromium, chromiumArgs(t, "--dump-dom", fileURL(page))...))
}

// chromiumArgs isolates each run: a fresh profile, no network chatter, and
// virtual time so Mermaid's asynchronous rendering finishes before the
// DOM is dumped.
func chromiumArgs(t *testing.T, extra ...string) []string {
	return append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
		"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=10000",
	}, extra...)
}

func fileURL(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "file://" + path
	}
	return "file://" + filepath.ToSlash(abs)
}

var (
	mermaidBlock = regexp.MustCompile(`(?s)<pre class="mermaid"([^>]*)>(.*?)</pre>`)
	dataError    = regexp.MustCompile(`data-error="([^"]*)"`)
)

// checkCharts asserts the page finished drawing and every Mermaid block
// became an SVG without an error.
func checkCharts(t *testing.T, dom string, want int) {
	t.Helper()
	require.Contains(t, dom, `data-mermaid="done"`, "the page's render script did not finish")
	blocks := mermaidBlock.FindAllStringSubmatch(dom, -1)
	require.Len(t, blocks, want, "mermaid blocks on the page")
	for i, b := range blocks {
		if m := dataError.FindStringSubmatch(b[1]); m != nil {
			t.Errorf("chart %d did not render: %s", i+1, m[1])
			continue
		}
		assert.Contains(t, b[1], `data-rendered="ok"`, "chart %d", i+1)
		assert.True(t, strings.HasPrefix(strings.TrimSpace(b[2]), "<svg"), "chart %d became an <svg", i+1)
		assert.NotContains(t, b[2], "Syntax error", "chart %d", i+1)
	}
}

// runBounded runs a command for at most browserTimeout, killing its whole
// process group on timeout (chromium starts helpers that would outlive
// it), and returns its standard output.
func runBounded(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), browserTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	bound(cmd)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("%s did not finish within %s", filepath.Base(name), browserTimeout)
	}
	require.NoError(t, err, "%s %s:\n%s", filepath.Base(name), strings.Join(args, " "), tail(stderr.String(), 2000))
	return stdout.Bytes()
}

// bound puts cmd in its own process group and makes cancellation kill the
// whole group.
func bound(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
