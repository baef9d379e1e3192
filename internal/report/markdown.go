package report

import (
	"fmt"
	"html"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/health"
	"github.com/ebeautything/greenlight/internal/monitor"
)

// DefaultBudget is the largest summary Markdown renders by default: GitHub
// refuses a step summary over 1 MiB, and the margin leaves room for what
// other steps of the job append.
const DefaultBudget = 1<<20 - 64<<10

// Rune limits for text in cells and sentences; the JSON report keeps the
// full text.
const (
	cellLimit     = 300
	sentenceLimit = 1000
	nameLimit     = 200
	// maxFindingRows keeps a findings table readable; a report read from
	// JSON may hold far more than the Recorder keeps.
	maxFindingRows = 100
)

// Markdown renders doc as a GitHub job summary of at most DefaultBudget
// bytes.
func Markdown(doc Document) string { return MarkdownWithBudget(doc, DefaultBudget) }

// MarkdownWithBudget renders doc as a GitHub job summary of at most budget
// bytes. When the full summary is larger it leaves out detail sections in a
// fixed order (request timing, components, charts, evidence samples,
// events, lists, tables) and says so; the headline, the reason and the
// manual command are always kept.
func MarkdownWithBudget(doc Document, budget int) string {
	var dropped []string
	d := fullDetail()
	top := renderTop(doc)
	body := renderBody(doc, d)
	out := top + body
	for _, step := range trimSteps {
		if len(out) <= budget {
			return out
		}
		step.apply(&d)
		// The note names only what this document actually lost.
		if next := renderBody(doc, d); next != body {
			dropped = append(dropped, step.what)
			body = next
		}
		out = top + trimNote(dropped) + body
	}
	if len(out) <= budget {
		return out
	}
	out = renderMinimal(doc)
	if len(out) <= budget {
		return out
	}
	return cutBytes(out, budget)
}

// detail says which sections a rendering includes.
type detail struct {
	timing, components, errorChart, latencyChart bool
	samples, events, lists, tables               bool
	logs                                         bool
}

func fullDetail() detail {
	return detail{true, true, true, true, true, true, true, true, true}
}

// trimSteps are applied in order until the summary fits: the least
// needed detail goes first.
var trimSteps = []struct {
	what  string
	apply func(*detail)
}{
	{"request timing", func(d *detail) { d.timing = false }},
	{"container logs", func(d *detail) { d.logs = false }},
	{"component health", func(d *detail) { d.components = false }},
	{"the error chart", func(d *detail) { d.errorChart = false }},
	{"the latency chart", func(d *detail) { d.latencyChart = false }},
	{"evidence samples", func(d *detail) { d.samples = false }},
	{"cluster events", func(d *detail) { d.events = false }},
	{"smoke tests, traffic counts, alerts and warnings", func(d *detail) { d.lists = false }},
	{"health tables and findings", func(d *detail) { d.tables = false }},
}

// mdWriter collects the summary; sections are separated by blank lines.
type mdWriter struct{ strings.Builder }

func (w *mdWriter) line(format string, args ...any) {
	fmt.Fprintf(&w.Builder, format, args...)
	w.WriteByte('\n')
}

func (w *mdWriter) blank() { w.WriteByte('\n') }

func (w *mdWriter) table(header []string, align string, rows [][]string) {
	w.line("| %s |", strings.Join(header, " | "))
	seps := make([]string, len(header))
	for i := range seps {
		seps[i] = "---"
		if i < len(align) && align[i] == 'r' {
			seps[i] = "---:"
		}
	}
	w.line("| %s |", strings.Join(seps, " | "))
	for _, r := range rows {
		w.line("| %s |", strings.Join(r, " | "))
	}
	w.blank()
}

// renderTop renders what must survive any trimming: the production
// warning, the headline and the reason.
func renderTop(doc Document) string {
	var w mdWriter
	writeTop(&w, doc)
	return w.String()
}

// trimNote says what was left out to fit the budget.
func trimNote(dropped []string) string {
	if len(dropped) == 0 {
		return ""
	}
	return "> [!NOTE]\n> This summary was shortened to fit the job summary size limit; left out: " +
		strings.Join(dropped, ", ") + ". The JSON report has everything.\n\n"
}

// renderBody renders everything under the headline with the given detail.
func renderBody(doc Document, d detail) string {
	var w mdWriter
	writeIdentity(&w, doc)
	writeEvidence(&w, doc, d)
	// A command to undo a good deploy is a footnote; after a failure it is
	// what the reader came for.
	succeeded := doc.Status() == event.StatusSucceeded
	if !succeeded {
		writeManual(&w, doc)
	}
	writePromotion(&w, doc)
	writeStages(&w, doc, d)
	writeObjects(&w, doc, d)
	writeHealth(&w, doc, d)
	writeSmoke(&w, doc, d)
	writeTraffic(&w, doc, d)
	writeMonitoring(&w, doc, d)
	writeWarnings(&w, doc, d)
	if succeeded {
		writeManual(&w, doc)
	}
	return w.String()
}

// renderMinimal is the summary when even the shortest full rendering is
// too large: headline, reason and manual command.
func renderMinimal(doc Document) string {
	var w mdWriter
	writeTop(&w, doc)
	w.WriteString(trimNote([]string{"every detail"}))
	writeManual(&w, doc)
	return w.String()
}

// cutBytes cuts s to at most n bytes on a line or rune boundary.
func cutBytes(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n {
		return s
	}
	s = s[:n]
	if i := strings.LastIndexByte(s, '\n'); i > 0 {
		return s[:i+1]
	}
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// writeTop writes the production warning, the headline and the reason.
func writeTop(w *mdWriter, doc Document) {
	if doc.Run.SkipTests && doc.Run.Production {
		w.line("> [!WARNING]")
		w.line("> Tests were skipped for this production deploy: its smoke tests did not run (skip-tests); health checks and traffic verification still gated it.")
		w.blank()
	}
	emoji, title := statusTitle(doc.Status())
	head := fmt.Sprintf("## %s %s", emoji, title)
	if doc.Run.Environment != "" {
		head += " · " + md(doc.Run.Environment, nameLimit)
	}
	w.line("%s", head)
	w.blank()
	if reason := runReason(doc); reason != "" && doc.Status() != event.StatusSucceeded {
		w.line("**Reason:** %s", md(sentence(reason), sentenceLimit))
		w.blank()
	}
	if doc.Status() == event.StatusRollbackFailed {
		w.line("> [!CAUTION]")
		w.line("> The rollback did not bring the previous version back. Check what is serving now and restore it by hand.")
		w.blank()
	}
}

// sentence ends s with a full stop unless it already ends a sentence.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || strings.HasSuffix(s, ".") || strings.HasSuffix(s, "!") || strings.HasSuffix(s, "?") || strings.HasSuffix(s, "…") {
		return s
	}
	return s + "."
}

// runReason is the one sentence that says why the run ended as it did.
func runReason(doc Document) string {
	if doc.Result != nil && doc.Result.Reason != "" {
		return doc.Result.Reason
	}
	if doc.Rollback != nil && doc.Rollback.Reason != "" {
		return doc.Rollback.Reason
	}
	for _, s := range doc.Stages {
		if s.Outcome == event.Failed && s.Finding != "" {
			return s.Finding
		}
	}
	return ""
}

var (
	hexSHA   = regexp.MustCompile(`^[0-9a-fA-F]{7,64}$`)
	repoName = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)
)

// commitURL links the deployment to its commit when the run knows where
// the commit lives.
func commitURL(r event.Run) string {
	if r.ServerURL == "" || !repoName.MatchString(r.Repository) || !hexSHA.MatchString(r.SHA) {
		return ""
	}
	return safeURL(strings.TrimRight(r.ServerURL, "/") + "/" + r.Repository + "/commit/" + r.SHA)
}

func writeIdentity(w *mdWriter, doc Document) {
	r := doc.Run
	var items []string
	if r.Image != "" {
		img := "**Image:** " + code(r.Image, nameLimit, false)
		if r.PreviousImage != "" {
			img += " (previous: " + code(r.PreviousImage, nameLimit, false) + ")"
		}
		items = append(items, img)
	}
	var where []string
	if r.Strategy != "" {
		where = append(where, "**Strategy:** "+md(r.Strategy, nameLimit))
	}
	if r.Deployment != "" {
		where = append(where, "**Deployment:** "+code(joinNonEmpty("/", r.Namespace, r.Deployment), nameLimit, false))
	}
	if r.Service != "" {
		where = append(where, "**Service:** "+code(r.Service, nameLimit, false))
	}
	if doc.Result != nil && doc.Result.Revision != "" {
		where = append(where, "**Revision:** "+md(doc.Result.Revision, nameLimit))
	}
	if doc.Result != nil && doc.Result.ActiveColor != "" {
		where = append(where, "**Active:** "+md(doc.Result.ActiveColor, nameLimit))
	}
	if len(where) > 0 {
		items = append(items, strings.Join(where, " · "))
	}
	if r.DeploymentID != "" {
		id := "**Deployment ID:** " + code(r.DeploymentID, nameLimit, false)
		if u := commitURL(r); u != "" {
			id = "**Deployment ID:** [" + code(r.DeploymentID, nameLimit, false) + "](" + u + ")"
			id += " at " + code(r.SHA[:min(7, len(r.SHA))], 7, false)
		}
		items = append(items, id)
	}
	var who []string
	if doc.Duration > 0 {
		who = append(who, "**Duration:** "+fmtDuration(doc.Duration))
	}
	if r.Actor != "" {
		who = append(who, "**Actor:** "+md(r.Actor, nameLimit))
	}
	if r.SkipTests {
		who = append(who, "**Tests:** skipped")
	}
	if len(who) > 0 {
		items = append(items, strings.Join(who, " · "))
	}
	var links []string
	if u := safeURL(r.EnvironmentURL); u != "" {
		links = append(links, "**Environment:** "+link(md(displayURL(u), nameLimit), u))
	}
	if u := safeURL(r.RunURL); u != "" {
		links = append(links, link("Workflow run", u))
	}
	if len(links) > 0 {
		items = append(items, strings.Join(links, " · "))
	}
	for _, it := range items {
		w.line("- %s", it)
	}
	if len(items) > 0 {
		w.blank()
	}
}

// displayURL is a URL as link text: without its scheme, which would only
// be escaped anyway.
func displayURL(u string) string {
	if p, err := url.Parse(u); err == nil && p.Host != "" {
		return strings.TrimSuffix(p.Host+p.EscapedPath(), "/")
	}
	return u
}

func joinNonEmpty(sep string, parts ...string) string {
	var keep []string
	for _, p := range parts {
		if p != "" {
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, sep)
}

// stagedFinding is a finding with the stage that reported it.
type stagedFinding struct {
	stage event.Stage
	event.Finding
}

// evidenceFindings are the findings of the stages that did not succeed and
// of the rollback, each once.
func evidenceFindings(doc Document) []stagedFinding {
	var out []stagedFinding
	seen := map[stagedFinding]bool{}
	add := func(stage event.Stage, fs []event.Finding) {
		for _, f := range fs {
			sf := stagedFinding{stage, f}
			if !seen[sf] {
				seen[sf] = true
				out = append(out, sf)
			}
		}
	}
	for _, s := range doc.Stages {
		if s.Outcome == event.Failed || s.Outcome == event.Cancelled || s.Outcome == event.Pending {
			add(s.Name, s.Findings)
		}
	}
	if doc.Rollback != nil {
		add(event.Rollback, doc.Rollback.Findings)
	}
	return out
}

// findingTable writes findings as a table, with a stage column when they
// come from more than one stage.
func findingTable(w *mdWriter, header []string, fs []stagedFinding, row func(stagedFinding) []string) {
	staged := false
	for _, f := range fs {
		if f.stage != fs[0].stage {
			staged = true
		}
	}
	more := len(fs) - maxFindingRows
	fs = fs[:min(len(fs), maxFindingRows)]
	rows := make([][]string, 0, len(fs))
	for _, f := range fs {
		r := row(f)
		if staged {
			r = append([]string{md(string(f.stage), nameLimit)}, r...)
		}
		rows = append(rows, r)
	}
	if staged {
		header = append([]string{"Stage"}, header...)
	}
	w.table(header, "", rows)
	if more > 0 {
		w.line("%d more left out; see the JSON report.", more)
		w.blank()
	}
}

// monitorStart is where monitoring began, the base for sample times.
func monitorStart(doc Document) time.Time {
	if s, ok := doc.Stage(event.Monitor); ok && !s.Start.IsZero() {
		return s.Start
	}
	if m := doc.Monitoring; m != nil && len(m.Series) > 0 {
		return m.Series[0].Start
	}
	return doc.Run.StartedAt
}

func writeEvidence(w *mdWriter, doc Document, d detail) {
	if doc.Status() == event.StatusSucceeded || doc.Status() == "" {
		return
	}
	var (
		pods, events, perms, fixes, logs, other []stagedFinding
	)
	for _, f := range evidenceFindings(doc) {
		switch strings.ToLower(f.Kind) {
		case "pod":
			pods = append(pods, f)
		case "event":
			events = append(events, f)
		case "permission":
			perms = append(perms, f)
		case "fix":
			fixes = append(fixes, f)
		case "log":
			logs = append(logs, f)
		default:
			other = append(other, f)
		}
	}
	var failingHealth []health.Result
	for _, h := range doc.Health {
		if !h.Healthy {
			failingHealth = append(failingHealth, h)
		}
	}
	var failingTraffic []health.TrafficResult
	for _, t := range doc.Traffic {
		if !t.Passed {
			failingTraffic = append(failingTraffic, t)
		}
	}
	var verdict *monitor.Verdict
	var samples []monitor.Sample
	if m := doc.Monitoring; m != nil && m.Verdict != nil && m.Verdict.Action == monitor.Rollback {
		verdict, samples = m.Verdict, m.Evidence
	}
	if len(pods)+len(events)+len(perms)+len(fixes)+len(logs)+len(other)+len(failingHealth)+len(failingTraffic) == 0 && verdict == nil {
		return
	}

	w.line("### Evidence")
	w.blank()
	if verdict != nil {
		w.line("**Rollback rule %s:** %s (observed %s, limit %s, over %d probes).",
			code(string(verdict.Rule), nameLimit, false), md(strings.TrimSuffix(verdict.Message, "."), sentenceLimit),
			md(fmtObserved(verdict.Observed, verdict.Unit), cellLimit), md(fmtObserved(verdict.Threshold, verdict.Unit), cellLimit), verdict.Samples)
		w.blank()
	}
	for _, h := range failingHealth {
		w.line("- **Health check failed** (%s, %s): %s", md(string(h.Mode), nameLimit), code(h.Target, nameLimit, false), md(sentence(h.Reason), sentenceLimit))
	}
	for _, t := range failingTraffic {
		w.line("- **Traffic verification failed** (%s): %s", md(string(t.Mode), nameLimit), md(sentence(firstNonEmpty(t.Reason, t.Summary)), sentenceLimit))
	}
	if len(failingHealth)+len(failingTraffic) > 0 {
		w.blank()
	}
	if !d.tables {
		if n := len(pods) + len(events) + len(perms) + len(fixes) + len(logs) + len(other); n > 0 {
			w.line("%d findings left out; see the JSON report.", n)
			w.blank()
		}
		return
	}
	subjectRow := func(f stagedFinding) []string {
		return []string{code(f.Subject, nameLimit, true), md(f.Reason, nameLimit), md(f.Message, cellLimit)}
	}
	if len(perms) > 0 {
		w.line("#### Missing permissions")
		w.blank()
		findingTable(w, []string{"Permission", "Reason", "Detail"}, perms, subjectRow)
	}
	// A fix is a multi-line recipe (commands, a Role as YAML); a code block
	// keeps it copyable and shows it literally.
	for _, f := range fixes {
		w.line("#### How to fix")
		w.blank()
		w.WriteString(codeBlock("", f.Message))
		w.blank()
	}
	if len(pods) > 0 {
		w.line("#### Failing pods")
		w.blank()
		findingTable(w, []string{"Pod", "State", "Last message"}, pods, subjectRow)
	}
	if len(events) > 0 {
		if d.events {
			w.line("#### Recent events")
			w.blank()
			findingTable(w, []string{"Object", "Reason", "Message"}, events, subjectRow)
		} else {
			w.line("%d cluster events left out; see the JSON report.", len(events))
			w.blank()
		}
	}
	writeLogs(w, logs, d.logs)
	if len(other) > 0 {
		w.line("#### Other findings")
		w.blank()
		findingTable(w, []string{"Kind", "Subject", "Reason", "Message"}, other, func(f stagedFinding) []string {
			return append([]string{md(f.Kind, nameLimit)}, subjectRow(f)...)
		})
	}
	if len(samples) > 0 {
		if d.samples {
			w.line("#### Samples that tripped the rule")
			w.blank()
			shown := trippingSamples(*verdict, samples)
			if len(shown) < len(samples) {
				w.line("%d of the %d samples in the rule's window; the JSON report has them all.", len(shown), len(samples))
				w.blank()
			}
			base := monitorStart(doc)
			rows := make([][]string, 0, len(shown))
			for _, s := range shown {
				rows = append(rows, []string{
					fmtOffset(s.Time, base), code(s.Endpoint, nameLimit, true), sampleStatus(s),
					fmtDuration(s.Latency), md(s.Err, cellLimit),
				})
			}
			w.table([]string{"Time", "Endpoint", "Status", "Latency", "Error"}, "...r", rows)
		} else {
			w.line("%d evidence samples left out; see the JSON report.", len(samples))
			w.blank()
		}
	}
}

// writeLogs shows each container's log tail collapsed under its pod and
// container, so the evidence tables stay readable above them.
func writeLogs(w *mdWriter, logs []stagedFinding, show bool) {
	if len(logs) == 0 {
		return
	}
	if !show {
		w.line("%d container logs left out; see the JSON report.", len(logs))
		w.blank()
		return
	}
	w.line("#### Container logs")
	w.blank()
	for _, f := range logs {
		about := fmt.Sprintf("last %d lines", strings.Count(f.Message, "\n")+1)
		switch f.Reason {
		case "previous":
			about = "previous instance, the one that stopped · " + about
		case "unreadable":
			about = "unreadable"
		}
		// Markdown is not rendered inside <summary>: HTML, escaped.
		w.line("<details><summary><code>%s</code> · %s</summary>", html.EscapeString(truncate(f.Subject, nameLimit)), about)
		w.blank()
		w.WriteString(codeBlock("text", f.Message))
		w.blank()
		w.line("</details>")
		w.blank()
	}
}

// trippingSamples picks the samples that count against the verdict's rule:
// failures for the rate and streak rules, answers slower than the limit for
// the response-time rule. When none match, all are returned.
func trippingSamples(v monitor.Verdict, samples []monitor.Sample) []monitor.Sample {
	var out []monitor.Sample
	limit := time.Duration(v.Threshold * float64(time.Second))
	for _, s := range samples {
		switch v.Rule {
		case monitor.RuleResponseTime:
			if s.Latency > limit {
				out = append(out, s)
			}
		case monitor.RuleErrorRate, monitor.RuleAvailability, monitor.RuleConsecutiveFailures:
			if !s.OK {
				out = append(out, s)
			}
		default:
			return samples
		}
	}
	if len(out) == 0 {
		return samples
	}
	return out
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func sampleStatus(s monitor.Sample) string {
	mark := "✅"
	if !s.OK {
		mark = "❌"
	}
	if s.StatusCode == 0 {
		return mark + " no answer"
	}
	return mark + " " + strconv.Itoa(s.StatusCode)
}

func writeManual(w *mdWriter, doc Document) {
	if doc.Result == nil || strings.TrimSpace(doc.Result.ManualCommand) == "" {
		return
	}
	var intro string
	switch doc.Result.Status {
	case event.StatusRolledBack:
		intro = "The previous version is serving again. To roll forward to this image anyway, run:"
		if strings.HasPrefix(doc.Result.ManualCommand, "greenlight deploy ") {
			intro = "The previous version of every workload is serving again (see Objects). They roll forward together: re-run this job, or from a checkout of this commit run the following, with the other inputs the job sets (such as url and health-paths) as flags of the same names:"
		}
	case event.StatusRollbackFailed:
		intro = "The automatic rollback did not finish. To restore the previous version by hand, run:"
	case event.StatusFailed:
		intro = "Nothing was rolled back automatically. To roll back or clean up by hand, run:"
	default:
		intro = "To roll back by hand, run:"
	}
	w.line("### By hand")
	w.blank()
	w.line("%s", intro)
	w.blank()
	w.WriteString(codeBlock("sh", doc.Result.ManualCommand))
	w.blank()
}

// writePromotion tells the person who decides what waits, how to look at
// it before it gets traffic, and the exact step that promotes or rejects
// it; green's own checks follow in the health section.
func writePromotion(w *mdWriter, doc Document) {
	if doc.Result == nil || doc.Result.Promotion == nil {
		return
	}
	p := doc.Result.Promotion
	w.line("### Awaiting promotion")
	w.blank()
	w.line("%s (%s) is running %s and passed its checks before traffic (below); %s keeps all the traffic until a person decides.",
		md(p.Color, nameLimit), code(p.Deployment, nameLimit, false), code(p.Image, sentenceLimit, false), code(orText(p.Serving, "what served"), nameLimit, false))
	w.blank()
	w.line("**Reach %s without traffic** (a port-forward to its preview Service, or through the API server's service proxy):", md(p.Color, nameLimit))
	w.blank()
	w.WriteString(codeBlock("sh", p.PortForward+"\n"+p.ServiceProxy))
	w.blank()
	w.line("**Promote** in a later job (for example one using a GitHub environment with required reviewers):")
	w.blank()
	w.WriteString(codeBlock("yaml", p.PromoteStep))
	w.blank()
	w.line("or from a terminal: %s. **Reject** it with `command: reject` in the same step, or %s.", code(p.PromoteCLI, sentenceLimit, false), code(p.RejectCLI, sentenceLimit, false))
	w.blank()
}

func orText(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func writeStages(w *mdWriter, doc Document, d detail) {
	if len(doc.Stages) == 0 {
		return
	}
	w.line("### Stages")
	w.blank()
	rows := make([][]string, 0, len(doc.Stages))
	for _, s := range doc.Stages {
		dur := ""
		if s.Duration > 0 || (!s.End.IsZero() && s.Outcome != event.Skipped) {
			dur = fmtDuration(s.Duration)
		}
		finding := md(s.Finding, cellLimit)
		if !d.tables {
			finding = md(s.Finding, 120)
		}
		rows = append(rows, []string{md(string(s.Name), nameLimit), outcomeEmoji(s.Outcome) + " " + md(string(s.Outcome), nameLimit), dur, finding})
	}
	w.table([]string{"Stage", "Outcome", "Duration", "Finding"}, "..r.", rows)
}

// writeObjects lists each object of the manifests with what the deploy
// changed and how it ended.
func writeObjects(w *mdWriter, doc Document, d detail) {
	if len(doc.Objects) == 0 {
		return
	}
	w.line("### Objects")
	w.blank()
	if !d.lists {
		w.line("%d objects left out; see the JSON report.", len(doc.Objects))
		w.blank()
		return
	}
	rows := make([][]string, 0, len(doc.Objects))
	for _, o := range doc.Objects {
		detail := md(o.Detail, cellLimit)
		if !d.tables {
			detail = md(o.Detail, 120)
		}
		rows = append(rows, []string{code(o.Object, nameLimit, false), md(o.Change, nameLimit), md(o.Result, nameLimit), detail})
	}
	w.table([]string{"Object", "Change", "Result", "Detail"}, "....", rows)
}

func modeTitle(m health.Mode) string {
	switch m {
	case health.ModePreDeployment:
		return "Before the deploy"
	case health.ModePostDeployment:
		return "After the deploy"
	case health.ModeVerifyTraffic:
		return "Traffic"
	case health.ModeVerifyRollback:
		return "After the rollback"
	case "":
		return "Health check"
	default:
		return md(string(m), nameLimit)
	}
}

func writeHealth(w *mdWriter, doc Document, d detail) {
	if len(doc.Health) == 0 {
		return
	}
	w.line("### Health")
	w.blank()
	for _, h := range doc.Health {
		state := "✅ healthy"
		if !h.Healthy {
			state = "❌ unhealthy"
		}
		w.line("**%s** · %s · %s after %s in %s", modeTitle(h.Mode), code(h.Target, nameLimit, false), state, plural(h.Attempts, "attempt"), fmtDuration(h.Duration))
		w.blank()
		if !d.tables {
			continue
		}
		rows := make([][]string, 0, len(h.Endpoints))
		for _, e := range h.Endpoints {
			rows = append(rows, []string{
				code(e.Path, nameLimit, true), endpointStatus(e), fmtDuration(e.Timing.Total),
				code(e.Version, nameLimit, true), md(firstNonEmpty(e.Failure, e.Note), cellLimit),
			})
		}
		w.table([]string{"Endpoint", "Status", "Latency", "Version", "Detail"}, "..r..", rows)
		if d.timing && len(h.Endpoints) > 0 {
			w.line("<details><summary>Request timing (httptrace)</summary>")
			w.blank()
			rows := make([][]string, 0, len(h.Endpoints))
			for _, e := range h.Endpoints {
				t := e.Timing
				rows = append(rows, []string{code(e.Path, nameLimit, true), fmtDuration(t.DNS), fmtDuration(t.Connect), fmtDuration(t.TLSHandshake), fmtDuration(t.FirstByte), fmtDuration(t.Total)})
			}
			w.table([]string{"Endpoint", "DNS", "Connect", "TLS", "First byte", "Total"}, ".rrrrr", rows)
			w.line("</details>")
			w.blank()
		}
		if !d.components {
			continue
		}
		for _, e := range h.Endpoints {
			if e.Detailed == nil || len(e.Detailed.Components) == 0 {
				continue
			}
			overall := ""
			if e.Detailed.Status != "" {
				overall = ", overall " + componentStatus(e.Detailed.Status)
			}
			w.line("Components of %s%s:", code(e.Path, nameLimit, false), overall)
			w.blank()
			rows := make([][]string, 0, len(e.Detailed.Components))
			for _, c := range e.Detailed.Components {
				lat := ""
				if c.Latency > 0 {
					lat = fmtDuration(c.Latency)
				}
				msg := c.Message
				if c.ObservedValue != "" {
					msg = strings.TrimSpace(joinNonEmpty(" ", msg, "observed "+c.ObservedValue, c.ObservedUnit))
				}
				rows = append(rows, []string{md(c.Name, nameLimit), componentStatus(c.Status), lat, md(msg, cellLimit)})
			}
			w.table([]string{"Component", "Status", "Latency", "Message"}, "..r.", rows)
		}
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

func endpointStatus(e health.EndpointResult) string {
	mark := "✅"
	if !e.Healthy {
		mark = "❌"
	}
	if e.StatusCode == 0 {
		return mark + " no answer"
	}
	return mark + " " + strconv.Itoa(e.StatusCode)
}

// componentStatus marks a reported status word: failing, warning or fine.
func componentStatus(status string) string {
	s := md(status, 40)
	switch {
	case health.StatusFailing(status):
		return "❌ " + s
	case isWarnStatus(status):
		return "⚠️ " + s
	case status == "":
		return "❔"
	default:
		return "✅ " + s
	}
}

func isWarnStatus(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "warn", "warning", "degraded", "unknown":
		return true
	}
	return false
}

func writeSmoke(w *mdWriter, doc Document, d detail) {
	if len(doc.Smoke) == 0 {
		return
	}
	passed := 0
	for _, s := range doc.Smoke {
		if s.Passed {
			passed++
		}
	}
	w.line("### Smoke tests")
	w.blank()
	w.line("%d of %d passed.", passed, len(doc.Smoke))
	w.blank()
	if !d.lists {
		return
	}
	rows := make([][]string, 0, len(doc.Smoke))
	for _, s := range doc.Smoke {
		mark := "✅"
		if !s.Passed {
			mark = "❌"
		}
		status := ""
		if s.StatusCode != 0 {
			status = strconv.Itoa(s.StatusCode)
		}
		rows = append(rows, []string{
			mark + " " + md(s.Name, nameLimit), code(s.Method+" "+s.Path, nameLimit, true), status,
			fmtDuration(s.Latency), md(s.Failure, cellLimit),
		})
	}
	w.table([]string{"Test", "Request", "Status", "Latency", "Failure"}, "..rr.", rows)
}

func writeTraffic(w *mdWriter, doc Document, d detail) {
	if len(doc.Traffic) == 0 {
		return
	}
	w.line("### Traffic verification")
	w.blank()
	for _, t := range doc.Traffic {
		mark := "✅"
		if !t.Passed {
			mark = "❌"
		}
		head := fmt.Sprintf("%s **%s** · %s", mark, modeTitle(t.Mode), code(t.Target, nameLimit, false))
		if t.Want != "" || t.Proof != health.ProofEndpoints {
			head += " · want " + code(t.Want, nameLimit, false)
		}
		if t.Proof != "" {
			head += " · proof: **" + md(t.Proof, nameLimit) + "**"
		}
		w.line("%s: %s", head, md(sentence(firstNonEmpty(t.Summary, t.Reason)), sentenceLimit))
		w.blank()
		if t.ProofReason != "" {
			w.line("Proved by %s because %s.", md(t.Proof, nameLimit), md(t.ProofReason, sentenceLimit))
			w.blank()
		}
		if t.Endpoints != "" {
			w.line("%s", md(sentence(t.Endpoints), sentenceLimit))
			w.blank()
		}
		if !d.lists || len(t.Versions)+t.Failed == 0 {
			continue
		}
		rows := make([][]string, 0, len(t.Versions)+1)
		for _, v := range t.Versions {
			name := code(v.Version, nameLimit, true)
			if v.Version == "" {
				name = "no version"
			}
			if health.SameVersion(t.Want, v.Version) {
				name += " (wanted)"
			}
			rows = append(rows, []string{name, strconv.Itoa(v.Count)})
		}
		if t.Failed > 0 {
			rows = append(rows, []string{"failed: " + md(t.LastError, cellLimit), strconv.Itoa(t.Failed)})
		}
		w.table([]string{"Version", "Answers"}, ".r", rows)
	}
}

// ruleName is a verdict's rule, with its source when that is not the
// probes (the probes' rules read as they always have).
func ruleName(v monitor.Verdict) string {
	name := code(string(v.Rule), nameLimit, false)
	if v.Source != "" && v.Source != monitor.SourceProbes {
		name += " (" + md(string(v.Source), nameLimit) + ")"
	}
	return name
}

// writeSources shows every request source's figures beside the probes'.
func writeSources(w *mdWriter, s monitor.Snapshot) {
	if len(s.Sources) == 0 {
		writeRequests(w, s.Traffic)
		return
	}
	for i := range s.Sources {
		writeRequests(w, &s.Sources[i])
	}
}

// writeRequests shows one request source's figures.
func writeRequests(w *mdWriter, t *monitor.Traffic) {
	if t == nil {
		return
	}
	if t.Source == monitor.SourcePrometheus {
		w.line("Requests the pods served, as Prometheus counts them:")
	} else {
		w.line("Requests the pods served, from their own metrics:")
	}
	w.blank()
	if t.Windows == 0 {
		if t.Unread > 0 {
			w.line("No window could be read (%d tried); the findings say why.", t.Unread)
		} else {
			w.line("No window was read after the first, baseline reading.")
		}
		w.blank()
		return
	}
	p95, maxP95 := "–", "–"
	if t.HasLatency {
		p95, maxP95 = fmtDuration(t.P95), fmtDuration(t.MaxP95)
	}
	judged := fmt.Sprintf("%d of %d", t.Judged, t.Windows)
	w.table(
		[]string{"Throughput", "5xx rate", "p95 (last judged window)", "Worst window p95", "Requests", "Windows judged"}, "rrrrrr",
		[][]string{{
			fmt.Sprintf("%.1f req/s", t.Throughput), fmtPercent(t.ErrorRate), p95, maxP95,
			strconv.FormatFloat(t.Requests, 'f', 0, 64), judged,
		}},
	)
	if t.TooLittle > 0 {
		w.line("%d windows had too little traffic to judge (last: %s).", t.TooLittle, md(t.LastNote, sentenceLimit))
		w.blank()
	}
	if t.Unread > 0 {
		w.line("%d windows could not be read; the findings say why.", t.Unread)
		w.blank()
	}
}

func writeMonitoring(w *mdWriter, doc Document, d detail) {
	m := doc.Monitoring
	if m == nil {
		return
	}
	s := m.Snapshot
	w.line("### Monitoring")
	w.blank()
	if st, ok := doc.Stage(event.Monitor); ok && st.Duration > 0 {
		w.line("Watched for %s.", fmtDuration(st.Duration))
		w.blank()
	}
	probes := strconv.FormatInt(s.Count, 10)
	if s.Errors > 0 {
		probes += fmt.Sprintf(" (%d failed)", s.Errors)
	}
	w.table(
		[]string{"p50", "p95", "p99", "Max", "Error rate", "Availability", "Probes"}, "rrrrrrr",
		[][]string{{
			fmtDuration(s.Latency.P50), fmtDuration(s.Latency.P95), fmtDuration(s.Latency.P99), fmtDuration(s.Latency.Max),
			fmtPercent(s.ErrorRate), fmtPercent(s.Availability), probes,
		}},
	)
	writeSources(w, s)
	raised, resolved := 0, 0
	for _, a := range m.Alerts {
		if a.State == monitor.AlertRaised {
			raised++
		} else {
			resolved++
		}
	}
	alerts := fmt.Sprintf("**Alerts:** %d raised, %d resolved", raised, resolved)
	if m.AlertsDropped > 0 {
		alerts += fmt.Sprintf(", %d more left out", m.AlertsDropped)
	}
	w.line("%s", alerts)
	w.blank()
	if d.lists && len(m.Alerts) > 0 {
		base := monitorStart(doc)
		for _, a := range m.Alerts {
			if a.State == monitor.AlertResolved {
				w.line("- %s ✅ %s resolved (it last fired with: %s)", fmtOffset(a.Time, base), ruleName(a.Verdict), md(a.Verdict.Message, sentenceLimit))
				continue
			}
			w.line("- %s ⚠️ %s raised: %s", fmtOffset(a.Time, base), ruleName(a.Verdict), md(sentence(a.Verdict.Message), sentenceLimit))
		}
		w.blank()
	}
	if len(m.Series) == 0 || !(d.latencyChart || d.errorChart) {
		return
	}
	var rollbackAt time.Time
	if doc.Rollback != nil {
		rollbackAt = doc.Rollback.Start
	}
	c := newChartData(m.Series, rollbackAt)
	if d.latencyChart {
		w.WriteString(latencyChart(c, m.AlertThreshold))
		w.blank()
		note := "Line 1: average latency per " + fmtWidth(c.width)
		if thresholdDrawn(c, m.AlertThreshold) {
			note += "; line 2: alert threshold " + fmtDuration(m.AlertThreshold)
		}
		w.line("%s.", note)
		w.blank()
	}
	if d.errorChart {
		w.WriteString(errorChart(c))
		w.blank()
	}
	if c.marked >= 0 {
		w.line("%s marks the rollback at %s (%s).", rollbackMark, fmtOffset(rollbackAt, c.start), md(firstNonEmpty(doc.Rollback.Reason, "rollback started"), cellLimit))
		w.blank()
	}
}

func writeWarnings(w *mdWriter, doc Document, d detail) {
	if len(doc.Warnings) == 0 {
		return
	}
	w.line("### Warnings")
	w.blank()
	if !d.lists {
		w.line("%d warnings left out; see the JSON report.", len(doc.Warnings))
		w.blank()
		return
	}
	for _, x := range doc.Warnings {
		stage := ""
		if x.Stage != "" {
			stage = "**" + md(string(x.Stage), nameLimit) + ":** "
		}
		w.line("- ⚠️ %s%s", stage, md(x.Message, sentenceLimit))
	}
	w.blank()
}
