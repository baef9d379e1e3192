package packaging_test

import (
	"bytes"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/ebeautything/greenlight/internal/config"
)

var update = flag.Bool("update", false, "rewrite action.yml at the repository root from config.Names")

// ---------------------------------------------------------------------------
// action.yml

// actionOutput is one output of action.yml. Outputs describe a run's result,
// which config does not know about, so they are listed here.
type actionOutput struct{ name, description string }

func actionOutputs() []actionOutput {
	return []actionOutput{
		{"status", "How the run ended: succeeded, failed, rolled-back (the new version misbehaved and the previous one serves again) or rollback-failed (the rollback itself failed; someone must look); with promotion manual, awaiting-promotion (the new color is verified, without traffic) and, for command reject, rejected."},
		{"deployment-id", "Identifier of this deployment in history records, locks and reports: the deployment-id input, or the commit SHA."},
		{"image", "Image reference the run deployed."},
		{"previous-image", "Image that was serving before the run, the one a rollback returns to. Empty on the first deployment."},
		{"revision", "What serves after the run: the Deployment's revision number for a rolling update (as kubectl rollout history shows it), or the color, blue or green, for blue-green."},
		{"traffic-proof", "How verify proved that traffic reaches the new version: version (every answer reported the expected version) or endpoints (the Service's EndpointSlices listed only ready pods of the new version and 10 answers in a row were healthy). Empty when verify did not run."},
		{"rolled-back", "true when the run rolled the new version back, false otherwise."},
		{"environment-url", "Public URL of the environment (the url input), also set on the GitHub Deployment. Empty when url is not set."},
		{"report-path", "Path of the run's JSON report, relative to the workspace, for a later step such as actions/upload-artifact."},
		{"p95-ms", "95th percentile response time of the probes while monitoring, in milliseconds. Empty when monitoring did not run."},
		{"error-rate", "Share of failed probes while monitoring, as a fraction from 0 to 1 such as 0.0125. Empty when monitoring did not run."},
		{"availability", "Share of successful probes while monitoring, as a fraction from 0 to 1 such as 0.9990. Empty when monitoring did not run."},
		{"throughput-rps", "Requests per second the new version's pods served while monitoring, from their own metrics (metrics-path), or as prometheus-url counts them when metrics-path is not set. Empty when neither source was read."},
		{"requests-error-rate", "Share of the pods' requests answered with 5xx while monitoring, as a fraction from 0 to 1, from the same source as throughput-rps. Empty when that source was not read or counted no request."},
		{"requests-p95-ms", "95th percentile response time of the pods' requests in the last judged window, from the latency histogram, in milliseconds, from the same source as throughput-rps. Empty when no window was judged or there is no histogram."},
	}
}

// actionDefault is the `default:` action.yml declares for an input, and how
// its description shows it; "" for every input but github-token. A default
// reaches the binary as INPUT_* on every run and would beat the config file
// (see config.Input); the token is safe because the file may not hold
// secrets, and without it every workflow would have to pass it.
func actionDefault(name string) (value, shown string) {
	if name == "github-token" {
		return "${{ github.token }}", "the job's own token, github.token"
	}
	return "", ""
}

// expression matches a ${{ }} expression. GitHub evaluates expressions in
// action.yml descriptions when it loads the action, and refuses to load it
// when one names a context it does not have there (such as github), so an
// example expression in a description is written bare.
var expression = regexp.MustCompile(`\$\{\{\s*(.*?)\s*\}\}`)

// inputDescription is an input's action.yml description: config's
// description, then its default and its accepted forms, one per line.
func inputDescription(in config.Input) string {
	lines := []string{expression.ReplaceAllString(in.Description, "$1")}
	def := in.Default
	if _, shown := actionDefault(in.Name); shown != "" {
		def = shown
	}
	if def != "" {
		lines = append(lines, "Default: "+def+".")
	}
	lines = append(lines, "Accepted: "+in.Accepted+".")
	return strings.Join(lines, "\n")
}

// renderActionYAML is action.yml for the inputs ins, in their order.
func renderActionYAML(ins []config.Input) string {
	var b strings.Builder
	b.WriteString(`# greenlight: deploy to Kubernetes, verify, watch, and roll back by itself.
#
#   - uses: ebeautything/greenlight@v1
#     with:
#       environment: production
#       kubeconfig: ${{ secrets.KUBE_CONFIG_PRODUCTION }}
#       image: ghcr.io/acme/api:1.4.2
#
# This file is generated from the inputs in internal/config (Names) by
#   go test ./internal/packaging -run TestActionYAMLMatchesConfig -update
# so the Action, the CLI flags and the config file share one list. Change an
# input there, not here.
#
# Inputs declare no default: the runner would pass a default as INPUT_<NAME>
# on every run, and that would override .github/greenlight.yml. Each default
# is written in the description instead. github-token is the exception: a
# secret cannot be in the config file, so its default overrides nothing.
`)
	b.WriteString("name: greenlight\n")
	b.WriteString("description: ")
	folded(&b, "  ", "Deploy to Kubernetes (rolling or blue-green), verify health, watch the new version, and roll back by itself.")
	b.WriteString("author: ebeautything\n")
	b.WriteString("branding:\n  icon: check-circle\n  color: green\n")

	b.WriteString("\ninputs:\n")
	for _, in := range ins {
		fmt.Fprintf(&b, "  %s:\n    description: ", in.Name)
		folded(&b, "      ", inputDescription(in))
		fmt.Fprintf(&b, "    required: %t\n", in.Required)
		if v, _ := actionDefault(in.Name); v != "" {
			fmt.Fprintf(&b, "    default: %s\n", quoted(v))
		}
	}

	b.WriteString("\noutputs:\n")
	for _, out := range actionOutputs() {
		fmt.Fprintf(&b, "  %s:\n    description: ", out.name)
		folded(&b, "      ", out.description)
	}

	b.WriteString(`
runs:
  using: docker
  # The runner builds the Dockerfile at the start of every job that uses the
  # action, which takes a few minutes. For a fast start, point at the image
  # release.yml publishes, pinned by its digest (printed in the release's job
  # summary):
  #   image: docker://ghcr.io/ebeautything/greenlight@sha256:<digest>
  # No args: the binary reads its inputs from the INPUT_* variables.
  image: Dockerfile
`)
	return b.String()
}

// folded writes text as a folded block scalar (>-) wrapped to fit 78
// columns: the lines of a paragraph are joined by spaces when read, and
// each line break in text becomes a blank line, which reads back as one line
// break. Paragraphs must not start with a space.
func folded(b *strings.Builder, indent, text string) {
	b.WriteString(">-\n")
	for i, para := range strings.Split(text, "\n") {
		if i > 0 {
			b.WriteString("\n")
		}
		line := ""
		for _, word := range strings.Fields(para) {
			if line != "" && len(indent)+len(line)+1+len(word) > 78 {
				b.WriteString(indent + line + "\n")
				line = ""
			}
			if line != "" {
				line += " "
			}
			line += word
		}
		b.WriteString(indent + line + "\n")
	}
}

// quoted is s as a double-quoted YAML scalar.
func quoted(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

// actionFile is the part of action.yml the tests read.
type actionFile struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Author      string `json:"author"`
	Branding    struct {
		Icon  string `json:"icon"`
		Color string `json:"color"`
	} `json:"branding"`
	Inputs map[string]struct {
		Description string  `json:"description"`
		Required    bool    `json:"required"`
		Default     *string `json:"default"`
	} `json:"inputs"`
	Outputs map[string]struct {
		Description string `json:"description"`
	} `json:"outputs"`
	Runs struct {
		Using      string   `json:"using"`
		Image      string   `json:"image"`
		Args       []string `json:"args"`
		Entrypoint string   `json:"entrypoint"`
	} `json:"runs"`
}

func parseAction(t *testing.T, data []byte) actionFile {
	t.Helper()
	var a actionFile
	require.NoError(t, yaml.UnmarshalStrict(data, &a), "parse action.yml")
	return a
}

// TestActionYAMLMatchesConfig regenerates action.yml from config.Names and
// compares it with the file at the repository root; -update rewrites it.
func TestActionYAMLMatchesConfig(t *testing.T) {
	path := filepath.Join(repoRoot(t), "action.yml")
	got := renderActionYAML(config.Names())
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, string(want), got, "action.yml is out of date with internal/config; run go test ./internal/packaging -run TestActionYAMLMatchesConfig -update")
}

// TestActionYAMLRoundTrip reads the generated text back as YAML and checks
// every description arrives exactly as written: wrapping and folding must
// not change a word.
func TestActionYAMLRoundTrip(t *testing.T) {
	t.Parallel()
	ins := config.Names()
	a := parseAction(t, []byte(renderActionYAML(ins)))
	for _, in := range ins {
		assert.Equal(t, inputDescription(in), a.Inputs[in.Name].Description, "input %s", in.Name)
	}
	for _, out := range actionOutputs() {
		assert.Equal(t, out.description, a.Outputs[out.name].Description, "output %s", out.name)
	}
}

// TestActionYAMLParses checks the committed action.yml for what the runner
// and the config package rely on.
func TestActionYAMLParses(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "action.yml"))
	require.NoError(t, err)
	checkActionYAML(t, data, "Dockerfile")
}

// releaseImage is runs.image of a release tag's action.yml: the published
// image pinned by digest (see .github/scripts/release-tags.sh).
var releaseImage = regexp.MustCompile(`^docker://ghcr\.io/ebeautything/greenlight@sha256:[0-9a-f]{64}$`)

// checkActionYAML checks an action.yml for what the runner and the config
// package rely on; image is what runs.image must be: "Dockerfile" on main,
// or "release" for the image pinned by digest a release tag runs.
func checkActionYAML(t *testing.T, data []byte, image string) {
	t.Helper()
	a := parseAction(t, data)

	assert.Equal(t, "greenlight", a.Name)
	assert.NotEmpty(t, a.Author)
	assert.LessOrEqual(t, len(a.Description), 125, "one short line for the Marketplace listing")
	assert.NotEmpty(t, a.Branding.Icon)
	assert.NotEmpty(t, a.Branding.Color)

	assert.Equal(t, "docker", a.Runs.Using)
	if image == "release" {
		assert.Regexp(t, releaseImage, a.Runs.Image)
	} else {
		assert.Equal(t, image, a.Runs.Image)
	}
	assert.Empty(t, a.Runs.Args, "the binary reads INPUT_* variables, not arguments")
	assert.Empty(t, a.Runs.Entrypoint, "the Dockerfile's ENTRYPOINT runs the binary")

	var names, required []string
	for _, in := range config.Names() {
		names = append(names, in.Name)
		if in.Required {
			required = append(required, in.Name)
		}
	}
	assert.ElementsMatch(t, names, keys(a.Inputs), "action.yml inputs are config.Names")
	assert.Equal(t, []string{"environment"}, required)
	for name, in := range a.Inputs {
		assert.Equal(t, slices.Contains(required, name), in.Required, "required of %s", name)
		if name == "github-token" {
			require.NotNil(t, in.Default, "github-token needs its default")
			assert.Equal(t, "${{ github.token }}", *in.Default)
		} else {
			assert.Nil(t, in.Default, "%s declares a default, which would override the config file", name)
		}
		assert.NotContains(t, in.Description, "${{", "%s: GitHub would evaluate this expression when loading the action", name)
		assert.Contains(t, in.Description, "Accepted: ", name)
	}

	var outputs []string
	for _, out := range actionOutputs() {
		outputs = append(outputs, out.name)
	}
	assert.ElementsMatch(t, []string{"status", "deployment-id", "image", "previous-image", "revision", "rolled-back",
		"environment-url", "report-path", "p95-ms", "error-rate", "availability", "traffic-proof", "throughput-rps", "requests-error-rate", "requests-p95-ms"}, outputs)
	assert.ElementsMatch(t, outputs, keys(a.Outputs))
	for name, out := range a.Outputs {
		assert.True(t, strings.HasSuffix(out.Description, "."), "output %s has a full-sentence description", name)
		assert.NotContains(t, out.Description, "${{", name)
	}
}

func keys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// ---------------------------------------------------------------------------
// Dockerfile and .dockerignore

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line int
	cmd  string // upper case, such as RUN
	args string
}

// stage is one FROM and the instructions under it.
type stage struct {
	image, name string
	body        []instruction
}

// parseDockerfile splits a Dockerfile into stages. It knows what this
// repository's Dockerfile uses: comments, continuation lines, FROM … AS.
func parseDockerfile(data string) ([]stage, error) {
	var stages []stage
	var pending strings.Builder
	start := 0
	for i, raw := range strings.Split(data, "\n") {
		line := strings.TrimSpace(raw)
		// Docker skips blank and comment lines, also inside a continuation.
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if pending.Len() == 0 {
			start = i + 1
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			pending.WriteString(strings.TrimSpace(cont) + " ")
			continue
		}
		pending.WriteString(line)
		text := pending.String()
		pending.Reset()

		cmd, args, _ := strings.Cut(text, " ")
		in := instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			s := stage{image: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			} else if len(f) != 1 {
				return nil, fmt.Errorf("line %d: FROM %q is not IMAGE or IMAGE AS NAME", start, in.args)
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			return nil, fmt.Errorf("line %d: %s before the first FROM", start, in.cmd)
		}
		stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
	}
	if pending.Len() > 0 {
		return nil, errors.New("the last line ends with a continuation")
	}
	return stages, nil
}

// shellWords splits a plain shell command into words, honouring quotes and
// backslashes. Operators (;, &&, |, redirections, subshells) are refused:
// such a command cannot be run word for word.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("unclosed ' in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case c == '"':
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) && strings.IndexByte(`"\$`+"`", s[j+1]) >= 0 {
					j++
				}
				cur.WriteByte(s[j])
			}
			if j == len(s) {
				return nil, fmt.Errorf("unclosed \" in %q", s)
			}
			i = j
			inWord = true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case strings.IndexByte(";&|<>()`", c) >= 0:
			return nil, fmt.Errorf("shell operator %q in %q", c, s)
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// goBuild is a `go build` command line: its environment assignments, the
// arguments after `go` without the -o pair, and the -o path.
type goBuild struct {
	env    []string
	args   []string
	output string
}

func parseGoBuild(command string) (goBuild, error) {
	words, err := shellWords(command)
	if err != nil {
		return goBuild{}, err
	}
	var b goBuild
	assignment := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)
	for len(words) > 0 && assignment.MatchString(words[0]) {
		b.env = append(b.env, words[0])
		words = words[1:]
	}
	if len(words) < 2 || words[0] != "go" || words[1] != "build" {
		return goBuild{}, fmt.Errorf("%q is not a go build command", command)
	}
	for i := 1; i < len(words); i++ {
		if words[i] == "-o" && i+1 < len(words) {
			b.output = words[i+1]
			i++
			continue
		}
		b.args = append(b.args, words[i])
	}
	if b.output == "" {
		return goBuild{}, fmt.Errorf("%q has no -o", command)
	}
	return b, nil
}

func readDockerfile(t *testing.T) []stage {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "Dockerfile"))
	require.NoError(t, err)
	stages, err := parseDockerfile(string(data))
	require.NoError(t, err)
	require.Len(t, stages, 2, "a build stage and a runtime stage")
	require.NotEmpty(t, stages[1].body)
	return stages
}

// dockerfileBuild is the build stage's go build RUN line.
func dockerfileBuild(t *testing.T, stages []stage) goBuild {
	t.Helper()
	require.Equal(t, "build", stages[0].name)
	var runs []string
	for _, in := range stages[0].body {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			runs = append(runs, in.args)
		}
	}
	require.Len(t, runs, 1, "one go build RUN line in the build stage")
	b, err := parseGoBuild(runs[0])
	require.NoError(t, err)
	return b
}

// TestDockerfileStages checks what the runner and the release need from the
// Dockerfile, beyond that it builds.
func TestDockerfileStages(t *testing.T) {
	t.Parallel()
	stages := readDockerfile(t)
	build, final := stages[0], stages[1]

	assert.True(t, strings.HasPrefix(build.image, "golang:1.26"), "build stage image %s", build.image)
	var buildCmds []string
	for _, in := range build.body {
		buildCmds = append(buildCmds, in.cmd+" "+in.args)
	}
	assert.Equal(t, []string{
		"WORKDIR /src",
		"COPY go.mod go.sum ./",
		"RUN go mod download",
		"COPY . .",
	}, buildCmds[:4], "modules are downloaded in their own layer")

	b := dockerfileBuild(t, stages)
	assert.Equal(t, []string{"CGO_ENABLED=0"}, b.env, "a static binary: the runtime image has no libc")
	assert.Equal(t, []string{"build", "-trimpath", "-ldflags=-s -w", "./cmd/greenlight"}, b.args)

	assert.Regexp(t, `^gcr\.io/distroless/static-debian12(:latest)?@sha256:[0-9a-f]{64}$`, final.image,
		"the runtime base is distroless static, running as root, pinned by digest")
	var cmds []string
	for _, in := range final.body {
		cmds = append(cmds, in.cmd)
		switch in.cmd {
		case "USER":
			t.Errorf("line %d: USER %s: the action could not write $GITHUB_OUTPUT or the workspace", in.line, in.args)
		case "WORKDIR":
			t.Errorf("line %d: WORKDIR %s: the runner sets the working directory to the workspace", in.line, in.args)
		}
	}
	assert.Equal(t, []string{"COPY", "ENTRYPOINT"}, cmds)
	assert.Equal(t, "--from=build "+b.output+" /greenlight", final.body[0].args, "the runtime stage copies what the build stage built")
	assert.Equal(t, `["/greenlight"]`, final.body[len(final.body)-1].args, "exec form with an absolute path")
}

// TestDockerfileBuildCommand runs the Dockerfile's go build line as written,
// in a copy of the build context that .dockerignore leaves, as the image
// build does after `COPY . .`.
func TestDockerfileBuildCommand(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "cmd", "greenlight")); errors.Is(err, fs.ErrNotExist) {
		t.Skip("cmd/greenlight does not exist yet, so there is nothing to build")
	}
	b := dockerfileBuild(t, readDockerfile(t))

	ctx := t.TempDir()
	ignore := readDockerignore(t)
	n, err := copyContext(root, ctx, ignore)
	require.NoError(t, err)
	t.Logf("build context: %d files", n)

	out := filepath.Join(t.TempDir(), "greenlight")
	args := slices.Insert(slices.Clone(b.args), 1, "-o", out)
	cmd := exec.Command("go", args...)
	cmd.Dir = ctx
	cmd.Env = append(os.Environ(), b.env...)
	started := time.Now()
	output, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s %s\n%s", strings.Join(b.env, " "), strings.Join(cmd.Args, " "), output)

	info, err := os.Stat(out)
	require.NoError(t, err)
	t.Logf("binary size: %d bytes (%.1f MiB), built in %s", info.Size(), float64(info.Size())/(1<<20), time.Since(started).Round(time.Second))

	// distroless static has no dynamic loader: the binary must not ask for one.
	f, err := elf.Open(out)
	require.NoError(t, err)
	defer f.Close()
	for _, p := range f.Progs {
		assert.NotEqual(t, elf.PT_INTERP, p.Type, "the binary is dynamically linked")
	}
	assert.Nil(t, f.Section(".symtab"), "-s strips the symbol table")
}

// TestCIBuildMatchesDockerfile keeps ci.yml's build step the Dockerfile's
// command, so CI proves what the runner will build.
func TestCIBuildMatchesDockerfile(t *testing.T) {
	t.Parallel()
	want := dockerfileBuild(t, readDockerfile(t))
	data, err := os.ReadFile(filepath.Join(repoRoot(t), ".github", "workflows", "ci.yml"))
	require.NoError(t, err)
	var found []goBuild
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); strings.Contains(line, "go build") && strings.Contains(line, "./cmd/greenlight") {
			b, err := parseGoBuild(line)
			require.NoError(t, err)
			found = append(found, b)
		}
	}
	require.Len(t, found, 1, "ci.yml builds ./cmd/greenlight once")
	assert.Equal(t, want.env, found[0].env)
	assert.Equal(t, want.args, found[0].args)
}

// dockerignore is a parsed .dockerignore, matched as Docker does: patterns
// in order, the last one that matches a path or one of its parent
// directories decides, and a leading ! lets a path back in.
type dockerignore []struct {
	re     *regexp.Regexp
	negate bool
	raw    string
}

func parseDockerignore(data string) (dockerignore, error) {
	var d dockerignore
	for _, line := range strings.Split(data, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		negate := strings.HasPrefix(line, "!")
		p := filepath.ToSlash(filepath.Clean(strings.TrimPrefix(strings.TrimPrefix(line, "!"), "/")))
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(p); i++ {
			switch {
			case strings.HasPrefix(p[i:], "**/"):
				re.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(p[i:], "**"):
				re.WriteString(".*")
				i++
			case p[i] == '*':
				re.WriteString("[^/]*")
			case p[i] == '?':
				re.WriteString("[^/]")
			case p[i] == '[' || p[i] == '\\':
				return nil, fmt.Errorf("pattern %q: character classes and escapes are not supported here", line)
			default:
				re.WriteString(regexp.QuoteMeta(p[i : i+1]))
			}
		}
		re.WriteString("$")
		d = append(d, struct {
			re     *regexp.Regexp
			negate bool
			raw    string
		}{regexp.MustCompile(re.String()), negate, line})
	}
	return d, nil
}

// excluded reports whether rel (slash-separated, relative to the context)
// stays out of the build context.
func (d dockerignore) excluded(rel string) bool {
	out := false
	for _, p := range d {
		for dir := rel; ; {
			if p.re.MatchString(dir) {
				out = !p.negate
				break
			}
			i := strings.LastIndexByte(dir, '/')
			if i < 0 {
				break
			}
			dir = dir[:i]
		}
	}
	return out
}

// mayReinclude reports whether a ! pattern could let back in something
// under the excluded directory rel, so the walk must enter it.
func (d dockerignore) mayReinclude(rel string) bool {
	for _, p := range d {
		if p.negate && (strings.HasPrefix(strings.TrimPrefix(p.raw, "!"), rel+"/") || strings.Contains(p.raw, "**")) {
			return true
		}
	}
	return false
}

func readDockerignore(t *testing.T) dockerignore {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), ".dockerignore"))
	require.NoError(t, err)
	d, err := parseDockerignore(string(data))
	require.NoError(t, err)
	return d
}

// copyContext copies the files of root that d leaves in the context to dst
// and returns how many it copied.
func copyContext(root, dst string, d dockerignore) (int, error) {
	n := 0
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if e.IsDir() {
			if d.excluded(rel) && !d.mayReinclude(rel) {
				return filepath.SkipDir
			}
			return nil
		}
		if !e.Type().IsRegular() || d.excluded(rel) {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read %s: %w", rel, err)
		}
		target := filepath.Join(dst, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return fmt.Errorf("create directory for %s: %w", rel, err)
		}
		if err := os.WriteFile(target, data, 0o644); err != nil {
			return fmt.Errorf("copy %s: %w", rel, err)
		}
		n++
		return nil
	})
	return n, err
}

// TestDockerignore pins what reaches the image build: the main module's
// source, and never credentials, tests or the nested modules.
func TestDockerignore(t *testing.T) {
	t.Parallel()
	d := readDockerignore(t)
	for _, tc := range []struct {
		path     string
		excluded bool
	}{
		{"go.mod", false},
		{"go.sum", false},
		{"cmd/greenlight/main.go", false},
		{"internal/config/load.go", false},
		{"internal/testcluster/sampleapp/app.go", false},
		{"Dockerfile", true},
		{"README.md", true},
		{".git/config", true},
		{".github/workflows/ci.yml", true},
		{".github/greenlight.yml", true},
		{"sandbox.kubeconfig", true},
		{"greenlight", true},
		{"internal/config/load_test.go", true},
		{"internal/config/testdata/greenlight.yml", true},
		{"internal/tools/go.mod", true},
		{"internal/testcluster/kubebin/go.sum", true},
		{"internal/report/browsercheck/node_modules/pkg/index.js", true},
	} {
		assert.Equal(t, tc.excluded, d.excluded(tc.path), tc.path)
	}
}

// TestDockerignoreMatcher checks the matcher the tests above rely on.
func TestDockerignoreMatcher(t *testing.T) {
	t.Parallel()
	d, err := parseDockerignore("*\n!keep/\nkeep/drop/\n**/*.tmp\n# comment\n")
	require.NoError(t, err)
	for path, excluded := range map[string]bool{
		"a":              true,
		"keep/a":         false,
		"keep/b/c":       false,
		"keep/drop/x":    true,
		"keep/b/x.tmp":   true,
		"keep/x.tmp":     true,
		"keep/x.tmpl":    false,
		"keepers/a":      true,
		"keep/drop.go":   false,
		"keep/b/drop/x":  false,
		"keep/b/c/d.tmp": true,
	} {
		assert.Equal(t, excluded, d.excluded(path), path)
	}
	_, err = parseDockerignore("[ab]\n")
	assert.Error(t, err)
}

func TestShellWords(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want []string
		err  bool
	}{
		{in: `CGO_ENABLED=0 go build -ldflags='-s -w' ./x`, want: []string{"CGO_ENABLED=0", "go", "build", "-ldflags=-s -w", "./x"}},
		{in: `go build -o "$RUNNER_TEMP/out/a b" .`, want: []string{"go", "build", "-o", "$RUNNER_TEMP/out/a b", "."}},
		{in: `a\ b "c\"d"`, want: []string{"a b", `c"d`}},
		{in: `go build && rm -rf /`, err: true},
		{in: `go build 'x`, err: true},
		{in: `echo $(id)`, err: true},
	} {
		got, err := shellWords(tc.in)
		if tc.err {
			assert.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
}

func TestParseDockerfile(t *testing.T) {
	t.Parallel()
	stages, err := parseDockerfile("# c\nFROM a AS b\nRUN x \\\n  y\n\nFROM c\nCOPY --from=b /o /p\n")
	require.NoError(t, err)
	require.Len(t, stages, 2)
	assert.Equal(t, stage{image: "a", name: "b", body: []instruction{{line: 3, cmd: "RUN", args: "x y"}}}, stages[0])
	assert.Equal(t, "c", stages[1].image)

	for _, bad := range []string{"RUN x\n", "FROM a b c d\n", "FROM a\nRUN x \\\n"} {
		_, err := parseDockerfile(bad)
		assert.Error(t, err, bad)
	}
}

// ---------------------------------------------------------------------------
// Workflows

// buildActionlint builds the pinned actionlint from internal/tools.
func buildActionlint(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "actionlint")
	cmd := exec.Command("go", "build", "-C", filepath.Join(repoRoot(t), "internal", "tools"), "-o", bin, "github.com/rhysd/actionlint/cmd/actionlint")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "build actionlint: %s", out)
	return bin
}

// TestWorkflowsLint runs actionlint over .github/workflows and fails on any
// finding; a known-broken workflow proves the linter really reports.
func TestWorkflowsLint(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	bin := buildActionlint(t)

	var workflows []string
	for _, pattern := range []string{".github/workflows/*.yml", ".github/examples/*.yml", "testdata/act/*.yml"} {
		found, err := filepath.Glob(filepath.Join(root, filepath.FromSlash(pattern)))
		require.NoError(t, err)
		require.NotEmpty(t, found, pattern)
		workflows = append(workflows, found...)
	}
	for _, tc := range []struct {
		name  string
		files []string
		want  []string // substrings of the findings; none means clean
	}{
		{"repository workflows", workflows, nil},
		{"broken fixture", []string{filepath.Join("testdata", "workflows", "broken.yml")}, []string{"[job-needs]", "[expression]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"-shellcheck=", "-pyflakes=", "-no-color"}, tc.files...)
			cmd := exec.Command(bin, args...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			if len(tc.want) == 0 {
				assert.NoError(t, err, "actionlint findings:\n%s", out.String())
				return
			}
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, "actionlint found nothing in a broken workflow:\n%s", out.String())
			assert.Equal(t, 1, exit.ExitCode(), "exit code 1 means findings:\n%s", out.String())
			for _, w := range tc.want {
				assert.Contains(t, out.String(), w)
			}
		})
	}
}

// usesLine matches a step's or job's `uses:` and its trailing comment.
var usesLine = regexp.MustCompile(`^\s*(?:-\s+)?uses:\s*(\S+)(?:\s+#\s*(.*))?$`)

// pinProblems lists the `uses:` lines of the workflows (name → text) that
// are not pinned to a full commit SHA with the release in a comment, or that
// pin an action to another commit than its other uses do. greenlight itself
// is used by its major tag, as users will write it, and local actions need
// no pin. It also returns how many uses it read.
func pinProblems(workflows map[string]string) (problems []string, uses int) {
	pinned := regexp.MustCompile(`^([\w.-]+/[\w.-]+)(/[\w./-]+)?@([0-9a-f]{40})$`)
	release := regexp.MustCompile(`^v\d+\.\d+\.\d+$`)
	seen := map[string]string{} // owner/repo → "sha # release"
	for _, name := range keys(workflows) {
		for i, line := range strings.Split(workflows[name], "\n") {
			m := usesLine.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			uses++
			where := fmt.Sprintf("%s:%d: %s", name, i+1, m[1])
			if m[1] == "ebeautything/greenlight@v1" || strings.HasPrefix(m[1], "./") {
				continue
			}
			p := pinned.FindStringSubmatch(m[1])
			switch {
			case p == nil:
				problems = append(problems, where+" is not pinned to a full commit SHA")
				continue
			case !release.MatchString(m[2]):
				problems = append(problems, where+" has no comment naming its release, such as # v4.2.2")
			}
			pin := p[3] + " # " + m[2]
			if prev, ok := seen[p[1]]; ok && prev != pin {
				problems = append(problems, where+" is pinned to "+pin+" but elsewhere to "+prev)
			}
			seen[p[1]] = pin
		}
	}
	return problems, uses
}

// TestWorkflowActionsPinned requires every third-party action in the
// workflows to be pinned to a commit, the same one everywhere.
func TestWorkflowActionsPinned(t *testing.T) {
	t.Parallel()
	var paths []string
	for _, dir := range []string{"workflows", "examples"} {
		found, err := filepath.Glob(filepath.Join(repoRoot(t), ".github", dir, "*.yml"))
		require.NoError(t, err)
		paths = append(paths, found...)
	}
	workflows := map[string]string{}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		workflows[filepath.Base(p)] = string(data)
	}
	problems, uses := pinProblems(workflows)
	assert.Empty(t, problems)
	assert.Greater(t, uses, 20)

	const sha = "11bd71901bbe5b1630ceea73d27597364c9af683"
	problems, uses = pinProblems(map[string]string{"bad.yml": `
steps:
  - uses: actions/checkout@v4
  - uses: actions/checkout@11bd719 # v4.2.2
  - uses: actions/checkout@` + sha + `
  - uses: actions/checkout@` + sha + ` # v4.2.2
  - uses: actions/checkout@` + strings.Repeat("0", 40) + ` # v4.2.2
  - uses: ebeautything/greenlight@v1
  - uses: ./local-action
`})
	assert.Equal(t, 7, uses)
	assert.Equal(t, []string{
		"bad.yml:3: actions/checkout@v4 is not pinned to a full commit SHA",
		"bad.yml:4: actions/checkout@11bd719 is not pinned to a full commit SHA",
		"bad.yml:5: actions/checkout@" + sha + " has no comment naming its release, such as # v4.2.2",
		"bad.yml:6: actions/checkout@" + sha + " is pinned to " + sha + " # v4.2.2 but elsewhere to " + sha + " # ",
		"bad.yml:7: actions/checkout@" + strings.Repeat("0", 40) + " is pinned to " + strings.Repeat("0", 40) + " # v4.2.2 but elsewhere to " + sha + " # v4.2.2",
	}, problems)
}

// TestPipelineUsesRealInputs checks that every input the example pipeline
// gives greenlight is one action.yml declares, and that each required input
// is given, so the example cannot drift from the action.
func TestPipelineUsesRealInputs(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	data, err := os.ReadFile(filepath.Join(root, "action.yml"))
	require.NoError(t, err)
	a := parseAction(t, data)

	data, err = os.ReadFile(filepath.Join(root, ".github", "examples", "deployment-pipeline.yml"))
	require.NoError(t, err)
	var wf struct {
		Jobs map[string]struct {
			Environment any `json:"environment"`
			Steps       []struct {
				ID   string            `json:"id"`
				Uses string            `json:"uses"`
				With map[string]string `json:"with"`
			} `json:"steps"`
		} `json:"jobs"`
	}
	require.NoError(t, yaml.Unmarshal(data, &wf))

	deploys := 0
	commands := map[string]string{} // command → its job's environment
	for job, j := range wf.Jobs {
		for _, s := range j.Steps {
			if !strings.HasPrefix(s.Uses, "ebeautything/greenlight@") {
				continue
			}
			if c := s.With["command"]; c != "" {
				env, _ := j.Environment.(map[string]any)
				commands[c], _ = env["name"].(string)
			} else {
				deploys++
				if s.With["environment"] == "production" {
					assert.Equal(t, "manual", s.With["promotion"], "job %s: production waits for its reviewers", job)
				}
			}
			for name := range s.With {
				assert.Contains(t, a.Inputs, name, "job %s gives an input action.yml does not declare", job)
			}
			for name, in := range a.Inputs {
				if in.Required {
					assert.Contains(t, s.With, name, "job %s leaves out required input %s", job, name)
				}
			}
			assert.Equal(t, "greenlight", s.ID, "job %s: the report upload reads steps.greenlight.outputs", job)
		}
	}
	assert.Equal(t, 2, deploys, "staging and production")
	assert.Equal(t, map[string]string{"promote": "production-promotion", "reject": ""}, commands,
		"production is promoted by a job whose environment carries the reviewers")
}

// ---------------------------------------------------------------------------
// The example config file

// TestExampleConfigLoads loads .github/greenlight.yml the way a run does.
func TestExampleConfigLoads(t *testing.T) {
	t.Parallel()
	path := filepath.Join(repoRoot(t), ".github", "greenlight.yml")
	const kubeconfig = "apiVersion: v1\nkind: Config\nclusters: []\n"
	for _, tc := range []struct {
		env      string
		strategy config.Strategy
		url      string
		replicas int
		monitor  time.Duration
		errRate  float64
	}{
		{"production", config.BlueGreen, "https://example.com", 4, 30 * time.Minute, 0.10},
		{"staging", config.Rolling, "https://staging.example.com", 2, 5 * time.Minute, 0.10},
	} {
		t.Run(tc.env, func(t *testing.T) {
			t.Parallel()
			lookup := config.MapLookup(map[string]string{
				"environment": tc.env,
				"kubeconfig":  kubeconfig,
				"image":       "ghcr.io/acme/payment-api:1.4.2",
				"config":      path,
			})
			c, err := config.Load(lookup, os.ReadFile, "0123456789abcdef0123456789abcdef01234567")
			require.NoError(t, err)
			assert.Equal(t, path, c.ConfigFile)
			assert.Equal(t, "payments", c.Namespace)
			assert.Equal(t, "payment-api", c.Deployment)
			assert.Equal(t, "payment-api", c.Service)
			assert.Equal(t, "api", c.Container)
			assert.Equal(t, []string{"/health", "/health/ready", "/health/detailed"}, c.HealthPaths)
			assert.Equal(t, tc.strategy, c.Strategy)
			assert.Equal(t, tc.url, c.URL)
			assert.Equal(t, tc.replicas, c.Replicas)
			assert.Equal(t, tc.monitor, c.MonitorDuration)
			assert.InDelta(t, tc.errRate, c.AlertErrorRate, 1e-9)
			// The guide's thresholds for every environment; a stricter
			// profile is shown only as a commented choice.
			assert.InDelta(t, 0.25, c.RollbackErrorRate, 1e-9)
			assert.InDelta(t, 0.95, c.AlertAvailability, 1e-9)
			assert.Equal(t, 3*time.Second, c.AlertResponseTime)
			assert.Equal(t, "0123456789abcdef0123456789abcdef01234567", c.DeploymentID)
		})
	}

	// The environments section is a closed list; the error names them and
	// does not carry the kubeconfig.
	_, err := config.Load(config.MapLookup(map[string]string{
		"environment": "qa", "kubeconfig": kubeconfig, "image": "ghcr.io/acme/payment-api:1.4.2", "config": path,
	}), os.ReadFile, "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "production, staging")
	assert.NotContains(t, err.Error(), "apiVersion")
}

// ---------------------------------------------------------------------------

// repoRoot is the repository root: two levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	require.NoError(t, err, "find the repository root")
	require.True(t, bytes.HasPrefix(mod, []byte("module github.com/ebeautything/greenlight\n")), "%s is not greenlight's root", root)
	return root
}

// TestPipelineDispatchOffersContinueOnUnhealthy checks that the example
// pipeline can be dispatched with continue_on_unhealthy beside skip_tests and
// that every greenlight step passes it on, as validate's refusal says.
func TestPipelineDispatchOffersContinueOnUnhealthy(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	var data []byte
	var err error
	for _, p := range []string{filepath.Join(".github", "examples", "deployment-pipeline.yml"), filepath.Join(".github", "workflows", "deployment-pipeline.yml")} {
		if data, err = os.ReadFile(filepath.Join(root, p)); err == nil {
			break
		}
	}
	require.NoError(t, err)
	type triggers struct {
		Dispatch struct {
			Inputs map[string]struct {
				Type    string `json:"type"`
				Default any    `json:"default"`
			} `json:"inputs"`
		} `json:"workflow_dispatch"`
	}
	var wf struct {
		On triggers `json:"on"`
		// YAML 1.1 reads the bare key on as true.
		OnAsTrue triggers `json:"true"`
		Jobs     map[string]struct {
			Steps []struct {
				Uses string            `json:"uses"`
				With map[string]string `json:"with"`
			} `json:"steps"`
		} `json:"jobs"`
	}
	require.NoError(t, yaml.Unmarshal(data, &wf))
	if wf.On.Dispatch.Inputs == nil {
		wf.On = wf.OnAsTrue
	}
	in, ok := wf.On.Dispatch.Inputs["continue_on_unhealthy"]
	require.True(t, ok, "workflow_dispatch has no continue_on_unhealthy input")
	assert.Equal(t, "boolean", in.Type)
	assert.Equal(t, false, in.Default)
	assert.Contains(t, wf.On.Dispatch.Inputs, "skip_tests")
	steps := 0
	for job, j := range wf.Jobs {
		for _, s := range j.Steps {
			if strings.HasPrefix(s.Uses, "ebeautything/greenlight@") {
				steps++
				assert.Contains(t, s.With["continue-on-unhealthy"], "inputs.continue_on_unhealthy", "job %s", job)
			}
		}
	}
	assert.Positive(t, steps)
}

// TestTopLevelLayout checks the repository's top level against the layout
// users and the release expect: the action, its sources, fixtures and build
// files, and dot-directories for CI and GitHub.
func TestTopLevelLayout(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	out, err := exec.Command("git", "-C", root, "ls-files").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	allowed := map[string]bool{
		"action.yml": true, "cmd": true, "internal": true, ".github": true, "testdata": true,
		"Dockerfile": true, "go.mod": true, "go.sum": true, "README.md": true,
		".ci": true, ".gitignore": true, ".dockerignore": true,
	}
	seen := map[string]bool{}
	for _, file := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		top, _, _ := strings.Cut(file, "/")
		if !allowed[top] && !seen[top] {
			t.Errorf("%s is tracked at the top level, which holds only action.yml, cmd, internal, .github, testdata, Dockerfile, go.mod, go.sum, README.md and dotfiles", top)
		}
		seen[top] = true
	}
	for _, want := range []string{"action.yml", "cmd", "internal", ".github", "testdata", "Dockerfile", "go.mod", "go.sum", "README.md"} {
		assert.True(t, seen[want], "%s is missing from the top level", want)
	}
}
