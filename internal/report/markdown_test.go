package report

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/health"
	"github.com/ebeautything/greenlight/internal/monitor"
)

// hostile is text a compromised pod or app could put in a message, a
// status, a version or a name.
const hostile = "<script>alert(1)</script><img src=x onerror=alert(2)> </details><details open> | x | y |\n# Owned\n```\n" +
	"[click](javascript:alert(3)) ![p](https://evil.example/p.png) $\\LaTeX$ https://evil.example/phish \x1b[2J\u202Egnp.exe"

// hostileDocument puts hostile text in every field that comes from the
// cluster or the app.
func hostileDocument() Document {
	rec := NewRecorder()
	run := event.Run{Environment: "production", Image: "app:1", PreviousImage: "app:0", DeploymentID: "d-1", StartedAt: t0}
	rec.Handle(event.Event{Kind: event.RunStarted, Run: &run})
	rec.Handle(event.Event{Kind: event.StageStarted, Time: t0, Stage: event.Deploy})
	f := []event.Finding{
		{Kind: "pod", Subject: hostile, Reason: hostile, Message: hostile},
		{Kind: "event", Subject: hostile, Reason: hostile, Message: hostile},
		{Kind: "permission", Subject: hostile, Reason: hostile, Message: hostile},
		{Kind: hostile, Subject: hostile, Reason: hostile, Message: hostile},
		{Kind: "fix", Message: hostile},
	}
	rec.Handle(event.Event{Kind: event.StageFinished, Time: t0.Add(time.Minute), Stage: event.Deploy, Outcome: event.Failed, Message: hostile, Findings: f})
	h := health.Result{Mode: health.ModePostDeployment, Target: hostile, Reason: hostile, Version: hostile, Endpoints: []health.EndpointResult{{
		Endpoint: health.EndpointDetailed, Path: hostile, StatusCode: 503, Version: hostile, Failure: hostile, Note: hostile,
		Detailed: &health.Detailed{Status: hostile, Components: []health.Component{{Name: hostile, Status: hostile, Message: hostile, ObservedValue: hostile, ObservedUnit: hostile}}},
	}}}
	rec.Handle(event.Event{Kind: event.HealthChecked, Health: &h})
	rec.Handle(event.Event{Kind: event.SmokeTested, Smoke: []health.SmokeResult{{Name: hostile, Method: hostile, Path: hostile, Failure: hostile}}})
	tr := health.TrafficResult{Target: hostile, Want: hostile, Summary: hostile, Reason: hostile, Versions: []health.VersionCount{{Version: hostile, Count: 3}}, Failed: 1, LastError: hostile}
	rec.Handle(event.Event{Kind: event.TrafficVerified, Traffic: &tr})
	v := monitor.Verdict{Rule: monitor.RuleID(hostile), Action: monitor.Rollback, Message: hostile, Unit: hostile}
	a := monitor.AlertChange{State: monitor.AlertRaised, Rule: monitor.RuleID(hostile), Time: t0, Verdict: v}
	rec.Handle(event.Event{Kind: event.AlertRaised, Alert: &a})
	rec.Handle(event.Event{Kind: event.MonitorProgress, Series: series(3, t0)})
	rec.Handle(event.Event{Kind: event.RollbackStarted, Time: t0.Add(20 * time.Second), Message: hostile, Verdict: &v, Evidence: []monitor.Sample{{Time: t0, Endpoint: hostile, Err: hostile}}})
	rec.Handle(event.Event{Kind: event.RollbackFinished, Outcome: event.Failed, Message: hostile, Findings: f})
	rec.Handle(event.Event{Kind: event.Warning, Stage: event.Stage(hostile), Message: hostile})
	rec.Handle(event.Event{Kind: event.RunFinished, Result: &event.Result{Status: event.StatusRollbackFailed, Reason: hostile, Revision: hostile, ActiveColor: hostile, ManualCommand: hostile, FinishedAt: t0.Add(time.Hour)}})
	return rec.Document()
}

// allowedTags are the only HTML tags a summary may contain: its own.
var (
	tagPattern  = regexp.MustCompile(`<(/?[A-Za-z][A-Za-z0-9-]*)`)
	allowedTags = map[string]bool{"details": true, "/details": true, "summary": true, "/summary": true}
)

// stripCode removes fenced code blocks and code spans, where HTML and
// Markdown are shown literally, leaving the text a renderer interprets.
func stripCode(s string) string {
	var out []string
	fence := ""
	for _, line := range strings.Split(s, "\n") {
		if fence != "" {
			if strings.TrimRight(line, " ") == fence {
				fence = ""
			}
			continue
		}
		if strings.HasPrefix(line, "```") {
			fence = line[:len(line)-len(strings.TrimLeft(line, "`"))]
			continue
		}
		out = append(out, stripCodeSpans(line))
	}
	return strings.Join(out, "\n")
}

func stripCodeSpans(line string) string {
	var b strings.Builder
	for i := 0; i < len(line); {
		if line[i] != '`' || (i > 0 && line[i-1] == '\\') {
			b.WriteByte(line[i])
			i++
			continue
		}
		n := 0
		for i+n < len(line) && line[i+n] == '`' {
			n++
		}
		run := strings.Repeat("`", n)
		end := -1
		for j := i + n; j < len(line); {
			k := strings.Index(line[j:], run)
			if k < 0 {
				break
			}
			k += j
			if k+n == len(line) || line[k+n] != '`' {
				end = k
				break
			}
			for k < len(line) && line[k] == '`' {
				k++
			}
			j = k
		}
		if end < 0 {
			b.WriteString(run)
			i += n
			continue
		}
		b.WriteString("CODE")
		i = end + n
	}
	return b.String()
}

func TestMarkdownEscapesHostileText(t *testing.T) {
	t.Parallel()
	summary := Markdown(hostileDocument())
	rendered := stripCode(summary)

	for _, m := range tagPattern.FindAllStringSubmatch(rendered, -1) {
		assert.True(t, allowedTags[strings.ToLower(m[1])], "unexpected tag <%s in summary", m[1])
	}
	// The one health check has one timing section.
	assert.Equal(t, 1, strings.Count(rendered, "<details>"), "hostile text cannot open details")
	assert.Equal(t, 1, strings.Count(rendered, "</details>"), "hostile text cannot close details")
	assert.NotRegexp(t, `(^|[^\\])\]\(javascript:`, rendered, "no link can be formed")
	assert.NotRegexp(t, `(^|[^\\])!\[`, rendered, "no image can be formed")
	assert.NotContains(t, rendered, "https://evil", "bare URLs are not left for autolinking")
	assert.NotContains(t, summary, "\x1b")
	assert.NotContains(t, summary, "\u202E")
	for _, line := range strings.Split(rendered, "\n") {
		if strings.HasPrefix(line, "#") {
			assert.Regexp(t, `^#{2,4} [^#]`, line, "only the summary's own headings start a line")
			assert.NotContains(t, line, "Owned")
		}
	}
	checkTables(t, summary)

	txt := Text(hostileDocument())
	assert.NotContains(t, txt, "\x1b", "no terminal escape reaches the terminal")
	assert.NotContains(t, txt, "\u202E")
}

// checkTables asserts every row of every table has as many cells as its
// header, counting only unescaped pipes.
func checkTables(t *testing.T, summary string) {
	t.Helper()
	unescapedPipe := regexp.MustCompile(`(?:^|[^\\])(?:\\\\)*\|`)
	cols := 0
	for _, line := range strings.Split(summary, "\n") {
		if !strings.HasPrefix(line, "| ") {
			cols = 0
			continue
		}
		n := len(unescapedPipe.FindAllString(line, -1))
		if cols == 0 {
			cols = n
			continue
		}
		assert.Equal(t, cols, n, "row has a different number of cells than its header: %s", line)
	}
}

func TestGoldenTablesAreWellFormed(t *testing.T) {
	t.Parallel()
	for _, name := range streamNames(t) {
		checkTables(t, Markdown(recordStream(t, name)))
	}
}

// budgetSections are what each trim step removes, in trim order.
var budgetSections = []string{
	"<details><summary>Request timing",
	"#### Container logs",
	"Components of ",
	"Failed probes (per",
	"Latency, ms (average",
	"#### Samples that tripped the rule",
	"#### Recent events",
	"| Version | Answers |",
	"#### Failing pods",
}

// checkTrimOrder shrinks the budget step by step and checks that a
// section is only gone once every section trimmed before it is gone, and
// that the top and the manual command stay; it returns the sections the
// document has.
func checkTrimOrder(t *testing.T, doc Document) []string {
	t.Helper()
	full := Markdown(doc)
	minimal := renderMinimal(doc)
	top, _, _ := strings.Cut(full, "\n")
	var reason, manual string
	for _, line := range strings.Split(full, "\n") {
		if strings.HasPrefix(line, "**Reason:**") {
			reason = line
			break
		}
	}
	if doc.Result != nil && strings.TrimSpace(doc.Result.ManualCommand) != "" {
		manual, _, _ = strings.Cut(strings.TrimSpace(doc.Result.ManualCommand), "\n")
		require.Contains(t, full, "```sh\n"+manual)
	}
	var present []string
	for _, s := range budgetSections {
		if strings.Contains(full, s) {
			present = append(present, s)
		}
	}
	for budget := len(full); budget >= 0; budget -= 97 {
		got := MarkdownWithBudget(doc, budget)
		require.LessOrEqual(t, len(got), budget)
		if budget < len(minimal) {
			continue
		}
		require.True(t, strings.HasPrefix(got, top+"\n"), "the top is never trimmed (budget %d)", budget)
		require.Contains(t, got, reason, "the reason is never trimmed (budget %d)", budget)
		require.Contains(t, got, manual, "the manual command is never trimmed (budget %d)", budget)
		if got == full {
			continue
		}
		require.Contains(t, got, "The JSON report has everything.", "trimming is announced (budget %d)", budget)
		kept := ""
		for _, s := range present {
			if strings.Contains(got, s) {
				kept = s
			} else if kept != "" {
				t.Fatalf("budget %d: %q dropped although %q, trimmed before it, was kept", budget, s, kept)
			}
		}
	}
	return present
}

// TestMarkdownBudget trims every recorded run's summary through every
// budget; together they hold a section of every trim step.
func TestMarkdownBudget(t *testing.T) {
	t.Parallel()
	require.Len(t, budgetSections, len(trimSteps))
	seen := map[string]bool{}
	for _, name := range streamNames(t) {
		t.Run(name, func(t *testing.T) {
			for _, s := range checkTrimOrder(t, recordStream(t, name)) {
				seen[s] = true
			}
		})
	}
	for _, s := range budgetSections {
		assert.True(t, seen[s], "no recorded run has %q, so its trim step is untested", s)
	}

	doc := recordStream(t, "sampleapp-rollback-monitor")
	full := Markdown(doc)
	minimal := renderMinimal(doc)
	require.True(t, strings.HasPrefix(full, "## ↩️ Rolled back · production\n"))
	require.Contains(t, full, "**Reason:** rolled back to sampleapp:v2 because monitoring")
	tests := []struct {
		name   string
		budget int
		want   []string
		absent []string
	}{
		{"fits", len(full), []string{"<details>"}, []string{"[!NOTE]"}},
		{"timing goes first", len(full) - 1, []string{"Components of ", "#### Container logs", "left out: request timing.", "```mermaid"}, []string{"<details><summary>Request timing"}},
		{"only the essentials", len(minimal), []string{"left out: every detail.", "**Reason:** rolled back to", "```sh\nkubectl -n shop scale deployment/shop-green"}, []string{"### Stages"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := MarkdownWithBudget(doc, tc.budget)
			for _, w := range tc.want {
				assert.Contains(t, got, w)
			}
			for _, a := range tc.absent {
				assert.NotContains(t, got, a)
			}
		})
	}
}

// TestMarkdownHugeDocumentFitsDefaultBudget builds a document far larger
// than GitHub accepts, as a JSON report read from disk can be, and checks
// the summary still fits.
func TestMarkdownHugeDocumentFitsDefaultBudget(t *testing.T) {
	t.Parallel()
	doc := recordStream(t, "sampleapp-rollback-monitor")
	long := strings.Repeat("x", 280)
	failed := slices.IndexFunc(doc.Stages, func(s Stage) bool { return s.Outcome == event.Failed })
	require.GreaterOrEqual(t, failed, 0, "the run has a failed stage")
	for i := range 4000 {
		doc.Stages[failed].Findings = append(doc.Stages[failed].Findings, event.Finding{Kind: "pod", Subject: fmt.Sprintf("pod-%d", i), Reason: "CrashLoopBackOff", Message: long})
	}
	// Health checks from a report file are not bounded by the Recorder.
	h := doc.Health[0]
	detailed := slices.IndexFunc(h.Endpoints, func(e health.EndpointResult) bool { return e.Detailed != nil })
	require.GreaterOrEqual(t, detailed, 0, "the run reports components")
	for i := range 60 {
		c := health.Component{Name: fmt.Sprintf("dependency-%d", i), Status: "fail", Message: long}
		h.Endpoints[detailed].Detailed.Components = append(h.Endpoints[detailed].Detailed.Components, c)
	}
	for i := range 300 {
		h.Target = fmt.Sprintf("https://replica-%d.shop.example", i)
		doc.Health = append(doc.Health, h)
	}
	full := renderTop(doc) + renderBody(doc, fullDetail())
	require.Greater(t, len(full), 1<<20, "the document renders to more than GitHub accepts")

	got := Markdown(doc)
	assert.LessOrEqual(t, len(got), DefaultBudget)
	assert.Contains(t, got, "The JSON report has everything.")
	assert.Contains(t, got, "**Reason:** rolled back to sampleapp:v2 because monitoring")
	assert.Contains(t, got, "```sh\nkubectl -n shop scale deployment/shop-green")
	assert.Contains(t, got, "3900 more left out; see the JSON report.")
}

func TestMermaidCharts(t *testing.T) {
	t.Parallel()
	xAxis := regexp.MustCompile(`(?m)^    x-axis \[("[^"\n]+")(, "[^"\n]+")*\]$`)
	values := regexp.MustCompile(`(?m)^    (line|bar) \[([0-9., ]+)\]$`)
	for _, name := range []string{"podinfo-success", "podinfo-rollback-monitor", "podinfo-skip-tests-production", "sampleapp-rollback-monitor"} {
		summary := Markdown(recordStream(t, name))
		blocks := strings.Split(summary, "```mermaid\n")[1:]
		require.Len(t, blocks, 2, name)
		for _, b := range blocks {
			b = b[:strings.Index(b, "```")]
			assert.Contains(t, b, "\nxychart-beta\n")
			assert.NotContains(t, b, "horizontal")
			axis := xAxis.FindString(b)
			require.NotEmpty(t, axis, "x-axis labels are quoted strings:\n%s", b)
			labels := strings.Count(axis, `"`) / 2
			assert.LessOrEqual(t, labels, monitor.MaxSeriesPoints)
			for _, m := range values.FindAllStringSubmatch(b, -1) {
				assert.Equal(t, labels, len(strings.Split(m[2], ", ")), "one value per label in %s", m[1])
			}
		}
		if strings.Contains(blocks[0], "far above") {
			assert.Equal(t, 1, strings.Count(blocks[0], "\n    line ["), "latency line; the threshold is named in the title")
		} else {
			assert.Equal(t, 2, strings.Count(blocks[0], "\n    line ["), "latency and threshold lines")
		}
		assert.Equal(t, 1, strings.Count(blocks[1], "\n    bar ["), "error bars")
	}
}

// TestLatencyChartScale: 2 ms probes under a 3 s threshold are drawn on
// an axis that fits them, the threshold named in the title; a threshold near
// the data is drawn as a line. Points half a second wide get labels of their
// own and a title that says so.
func TestLatencyChartScale(t *testing.T) {
	t.Parallel()
	var points []monitor.SeriesPoint
	for i := range 6 {
		points = append(points, monitor.SeriesPoint{Start: t0.Add(time.Duration(i) * 500 * time.Millisecond),
			Width: 500 * time.Millisecond, Count: 1, Avg: 2 * time.Millisecond})
	}
	c := newChartData(points, time.Time{})
	assert.Equal(t, []string{"0.0s", "0.5s", "1.0s", "1.5s", "2.0s", "2.5s"}, c.labels)

	far := latencyChart(c, 3*time.Second)
	assert.Contains(t, far, `title "Latency, ms (average per 500ms); alert threshold 3000 ms, far above"`)
	assert.Contains(t, far, `y-axis "ms" 0 --> 2.5`)
	assert.Equal(t, 1, strings.Count(far, "\n    line ["))

	near := latencyChart(c, 5*time.Millisecond)
	assert.Contains(t, near, `title "Latency, ms (average per 500ms)"`)
	assert.Contains(t, near, `y-axis "ms" 0 --> 6`)
	assert.Equal(t, 2, strings.Count(near, "\n    line ["))

	assert.Equal(t, "1m", fmtTick(time.Minute, 10*time.Second))
	assert.Equal(t, "1m02.5s", fmtTick(62500*time.Millisecond, 500*time.Millisecond))
}

func TestMergePoints(t *testing.T) {
	t.Parallel()
	in := series(120, t0)
	for i := range in {
		in[i].Min = 5 * time.Millisecond
	}
	in[7].Errors, in[7].Max, in[8].Min = 3, time.Second, time.Millisecond
	in[5].Avg, in[5].Count = 100*time.Millisecond, 6
	out := mergePoints(in, maxChartPoints)
	require.Len(t, out, 60)
	var count, errs int64
	for _, p := range out {
		count += p.Count
		errs += p.Errors
		assert.Equal(t, 20*time.Second, p.Width)
	}
	assert.Equal(t, int64(2*120+4), count)
	assert.Equal(t, int64(3), errs)
	assert.Equal(t, time.Second, out[3].Max)
	assert.Equal(t, time.Millisecond, out[4].Min)
	assert.Equal(t, 85*time.Millisecond, out[2].Avg, "averages are weighted by count")
	assert.Len(t, mergePoints(series(61, t0), 60), 31)
}

func TestRollbackMarkedOnChart(t *testing.T) {
	t.Parallel()
	s := series(6, t0)
	tests := []struct {
		at   time.Time
		want int
	}{
		{time.Time{}, -1},
		{t0.Add(25 * time.Second), 2},
		{t0.Add(time.Hour), 5},
		{t0.Add(-time.Second), -1},
	}
	for _, tc := range tests {
		c := newChartData(s, tc.at)
		assert.Equal(t, tc.want, c.marked, "%v", tc.at)
		if tc.want >= 0 {
			assert.True(t, strings.HasSuffix(c.labels[tc.want], " ⟲"))
		}
	}
}

func TestTrippingSamples(t *testing.T) {
	t.Parallel()
	samples := []monitor.Sample{
		{Endpoint: "fast", OK: true, Latency: 40 * time.Millisecond},
		{Endpoint: "slow", OK: true, Latency: 2 * time.Second},
		{Endpoint: "failed", Latency: 30 * time.Millisecond},
	}
	tests := []struct {
		rule monitor.RuleID
		want []string
	}{
		{monitor.RuleErrorRate, []string{"failed"}},
		{monitor.RuleConsecutiveFailures, []string{"failed"}},
		{monitor.RuleAvailability, []string{"failed"}},
		{monitor.RuleResponseTime, []string{"slow"}},
		{"future-rule", []string{"fast", "slow", "failed"}},
	}
	for _, tc := range tests {
		got := trippingSamples(monitor.Verdict{Rule: tc.rule, Threshold: 1}, samples)
		var names []string
		for _, s := range got {
			names = append(names, s.Endpoint)
		}
		assert.Equal(t, tc.want, names, tc.rule)
	}
	ok := []monitor.Sample{{Endpoint: "fast", OK: true}}
	assert.Equal(t, ok, trippingSamples(monitor.Verdict{Rule: monitor.RuleErrorRate}, ok), "never an empty table")
}
