package github

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/sethvargo/go-githubactions"
)

// MaxSummaryBytes is the most GitHub accepts in one step's job summary; a
// larger summary is dropped by the runner with only a line in the log.
const MaxSummaryBytes = 1 << 20

// outputDelimiter is the heredoc delimiter go-githubactions writes around
// every output value; a value holding it on a line of its own would end the
// value early and let the rest be read as further outputs.
const outputDelimiter = "_GitHubActionsFileCommandDelimeter_"

// minDerivedMask is the shortest line or decoded value Mask registers on its
// own; masking "-" or "}" would blank out ordinary log text.
const minDerivedMask = 4

// Action writes workflow commands and runner files for one step. Unlike the
// go-githubactions value it wraps, no method panics or exits the process: a
// missing runner file variable or a failed write comes back as an error.
// An Action is safe for concurrent use.
type Action struct {
	gha    *githubactions.Action
	getenv func(string) string

	// mu keeps concurrent commands from interleaving on stdout and in files.
	mu sync.Mutex
}

// NewAction returns an Action that reads the runner's variables through
// getenv and writes workflow commands to stdout.
func NewAction(getenv func(string) string, stdout io.Writer) *Action {
	return &Action{
		gha:    githubactions.New(githubactions.WithGetenv(getenv), githubactions.WithWriter(stdout)),
		getenv: getenv,
	}
}

// Annotation places a message on a file, shown in the run and the pull
// request's diff. Zero fields are left out.
type Annotation struct {
	Title     string
	File      string
	Line      int
	EndLine   int
	Col       int
	EndColumn int
}

// properties returns the workflow command properties for a.
func (a Annotation) properties() map[string]string {
	p := map[string]string{}
	add := func(k, v string) {
		if v != "" {
			p[k] = v
		}
	}
	num := func(n int) string {
		if n <= 0 {
			return ""
		}
		return strconv.Itoa(n)
	}
	add("title", a.Title)
	add("file", a.File)
	add("line", num(a.Line))
	add("endLine", num(a.EndLine))
	add("col", num(a.Col))
	add("endColumn", num(a.EndColumn))
	return p
}

// safely runs f, turning a go-githubactions panic into an error.
func (a *Action) safely(what string, f func()) (err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: %v", what, r)
		}
	}()
	f()
	return nil
}

// Mask tells the runner to hide each secret in the log from now on. A
// multi-line secret such as a kubeconfig is also masked line by line, since
// the runner matches masks within a line, and a base64 value is masked in its
// decoded form too. It returns an error when stdout cannot be written.
func (a *Action) Mask(secrets ...string) error {
	var errs []error
	for _, s := range secrets {
		for _, v := range maskValues(s) {
			if err := a.safely("mask a secret", func() { a.gha.AddMask(v) }); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// maskValues lists what to mask for one secret: the value, its lines, its
// base64-decoded form and that form's lines, without duplicates.
func maskValues(secret string) []string {
	if strings.TrimSpace(secret) == "" {
		return nil
	}
	out := []string{secret}
	add := func(v string) {
		if len(v) >= minDerivedMask && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	addLines := func(v string) {
		if !strings.ContainsAny(v, "\r\n") {
			return
		}
		for line := range strings.Lines(v) {
			add(strings.TrimSpace(line))
		}
	}
	addLines(secret)
	if decoded, ok := decodeBase64(secret); ok {
		add(strings.TrimSpace(decoded))
		addLines(decoded)
	}
	return out
}

// decodeBase64 decodes s when it is standard base64 (padded or not, line
// breaks allowed, as base64(1) wraps) of printable text.
func decodeBase64(s string) (string, bool) {
	compact := strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
	if len(compact) < minDerivedMask {
		return "", false
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding} {
		b, err := enc.DecodeString(compact)
		if err != nil || len(b) == 0 || !utf8.Valid(b) {
			continue
		}
		text := string(b)
		if strings.ContainsFunc(text, func(r rune) bool { return unicode.IsControl(r) && !unicode.IsSpace(r) }) {
			continue
		}
		return text, true
	}
	return "", false
}

// SetOutputs writes step outputs to the $GITHUB_OUTPUT file, in key order.
// Multi-line values are written in heredoc form; a name or value that would
// break that form is refused before anything is written.
func (a *Action) SetOutputs(outputs map[string]string) error {
	if len(outputs) == 0 {
		return nil
	}
	if a.getenv("GITHUB_OUTPUT") == "" {
		return errors.New("set step outputs: GITHUB_OUTPUT is not set, so this is not running as a GitHub Actions step")
	}
	keys := slices.Sorted(maps.Keys(outputs))
	for _, k := range keys {
		if err := checkOutput(k, outputs[k]); err != nil {
			return fmt.Errorf("set step outputs: %w", err)
		}
	}
	for _, k := range keys {
		if err := a.safely(fmt.Sprintf("set step output %q", k), func() { a.gha.SetOutput(k, outputs[k]) }); err != nil {
			return err
		}
	}
	return nil
}

// checkOutput refuses names and values the heredoc form cannot carry.
func checkOutput(name, value string) error {
	switch {
	case name == "":
		return errors.New("an output name is empty")
	case strings.ContainsFunc(name, unicode.IsSpace), strings.Contains(name, "<<"), strings.Contains(name, "="):
		return fmt.Errorf("output name %q must not contain spaces, line breaks, \"=\" or \"<<\"", name)
	case strings.Contains(value, outputDelimiter):
		return fmt.Errorf("the value of output %q contains the runner's heredoc delimiter", name)
	}
	return nil
}

// AppendSummary appends markdown to the step's job summary file
// ($GITHUB_STEP_SUMMARY). It refuses, with an error, to let the file grow
// past MaxSummaryBytes, which the runner would silently discard.
func (a *Action) AppendSummary(markdown string) error {
	path := a.getenv("GITHUB_STEP_SUMMARY")
	if path == "" {
		return errors.New("append job summary: GITHUB_STEP_SUMMARY is not set, so this is not running as a GitHub Actions step")
	}
	var size int64
	if fi, err := os.Stat(path); err == nil {
		size = fi.Size()
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("append job summary: %w", err)
	}
	if total := size + int64(len(markdown)) + int64(len(githubactions.EOF)); total > MaxSummaryBytes {
		return fmt.Errorf("append job summary: it would grow to %d bytes, over GitHub's limit of %d bytes (1 MiB)", total, MaxSummaryBytes)
	}
	return a.safely("append job summary", func() { a.gha.AddStepSummary(markdown) })
}

// Group starts a collapsible group in the log and returns the function that
// ends it; calling that function more than once ends the group once. Write
// failures are ignored: a log without folds is still a log.
func (a *Action) Group(title string) func() {
	_ = a.safely("start log group", func() { a.gha.Group(title) })
	var once sync.Once
	return func() {
		once.Do(func() { _ = a.safely("end log group", func() { a.gha.EndGroup() }) })
	}
}

// Warning writes a warning annotation, placed by the first of at if given.
func (a *Action) Warning(msg string, at ...Annotation) error {
	return a.annotate("warning", msg, at, (*githubactions.Action).Warningf)
}

// Error writes an error annotation, placed by the first of at if given. It
// does not end the step; the exit code does.
func (a *Action) Error(msg string, at ...Annotation) error {
	return a.annotate("error", msg, at, (*githubactions.Action).Errorf)
}

// Notice writes a notice annotation, placed by the first of at if given.
func (a *Action) Notice(msg string, at ...Annotation) error {
	return a.annotate("notice", msg, at, (*githubactions.Action).Noticef)
}

// annotate issues one annotation command; msg is passed as an argument, not
// a format, so a "%" in it prints as written.
func (a *Action) annotate(kind, msg string, at []Annotation, issue func(*githubactions.Action, string, ...any)) error {
	gha := a.gha
	if len(at) > 0 {
		if p := at[0].properties(); len(p) > 0 {
			gha = gha.WithFieldsMap(p)
		}
	}
	return a.safely("write "+kind+" annotation", func() { issue(gha, "%s", msg) })
}
