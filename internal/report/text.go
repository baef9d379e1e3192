package report

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/monitor"
)

// textLimit bounds one value on a terminal line.
const textLimit = 160

// Text renders doc compactly for a terminal: one labelled line per fact,
// no colour, no Markdown. Text from the app or the cluster is folded onto
// one line with control characters removed, so it cannot move the cursor
// or recolour the terminal.
func Text(doc Document) string {
	var b strings.Builder
	put := func(label, value string) {
		if value == "" {
			return
		}
		fmt.Fprintf(&b, "  %-9s %s\n", label, value)
	}
	t := func(s string) string { return truncate(oneLine(s), textLimit) }

	r := doc.Run
	head := []string{strings.ToUpper(textStatus(doc.Status()))}
	for _, s := range []string{r.Environment, joinNonEmpty("/", r.Namespace, r.Deployment), r.Strategy} {
		if s != "" {
			head = append(head, t(s))
		}
	}
	if doc.Duration > 0 {
		head = append(head, fmtDuration(doc.Duration))
	}
	b.WriteString(strings.Join(head, "  ") + "\n")
	if r.SkipTests && r.Production {
		put("WARNING", "tests were skipped for this production deploy")
	}
	if doc.Status() != event.StatusSucceeded {
		put("reason", truncate(oneLine(runReason(doc)), sentenceLimit))
	}
	img := t(r.Image)
	if r.PreviousImage != "" {
		img += " (previous " + t(r.PreviousImage) + ")"
	}
	put("image", img)
	var id []string
	if r.DeploymentID != "" {
		id = append(id, t(r.DeploymentID))
	}
	if r.SHA != "" {
		id = append(id, "sha "+t(r.SHA[:min(12, len(r.SHA))]))
	}
	if r.Actor != "" {
		id = append(id, "by "+t(r.Actor))
	}
	put("id", strings.Join(id, "  "))
	if u := safeURL(r.EnvironmentURL); u != "" {
		put("url", u)
	}
	if u := safeURL(r.RunURL); u != "" {
		put("run", u)
	}

	var stages []string
	for _, s := range doc.Stages {
		st := string(s.Name) + " " + outcomeMark(s.Outcome)
		if s.Duration > 0 {
			st += " " + fmtDuration(s.Duration)
		}
		stages = append(stages, t(st))
	}
	put("stages", strings.Join(stages, " · "))
	for _, s := range doc.Stages {
		if s.Finding != "" && s.Outcome != event.Succeeded {
			put(string(s.Name), t(s.Finding))
		}
	}

	for _, h := range doc.Health {
		state := "healthy"
		if !h.Healthy {
			state = "UNHEALTHY"
		}
		var eps []string
		for _, e := range h.Endpoints {
			code := "-"
			if e.StatusCode != 0 {
				code = strconv.Itoa(e.StatusCode)
			}
			ep := joinNonEmpty(" ", t(e.Path), code, fmtDuration(e.Timing.Total), t(e.Version))
			eps = append(eps, ep)
		}
		put("health", joinNonEmpty(": ", string(h.Mode)+" "+state, strings.Join(eps, " · ")))
		if !h.Healthy && h.Reason != "" {
			put("", t(h.Reason))
		}
	}
	if len(doc.Smoke) > 0 {
		passed := 0
		var failed []string
		for _, s := range doc.Smoke {
			if s.Passed {
				passed++
			} else {
				failed = append(failed, t(s.Name+": "+s.Failure))
			}
		}
		put("smoke", fmt.Sprintf("%d of %d passed", passed, len(doc.Smoke)))
		for _, f := range failed {
			put("", "FAILED "+f)
		}
	}
	for _, tr := range doc.Traffic {
		mark := "ok"
		if !tr.Passed {
			mark = "FAILED"
		}
		put("traffic", string(tr.Mode)+" "+mark+": "+t(tr.Summary))
	}

	if m := doc.Monitoring; m != nil {
		s := m.Snapshot
		put("monitor", fmt.Sprintf("p50 %s  p95 %s  p99 %s  max %s  errors %s  availability %s  probes %d",
			fmtDuration(s.Latency.P50), fmtDuration(s.Latency.P95), fmtDuration(s.Latency.P99), fmtDuration(s.Latency.Max),
			fmtPercent(s.ErrorRate), fmtPercent(s.Availability), s.Count))
		base := monitorStart(doc)
		for _, a := range m.Alerts {
			line := fmtOffset(a.Time, base) + " " + t(string(a.Rule)) + " " + string(a.State)
			if a.State == monitor.AlertRaised {
				line += ": " + t(a.Verdict.Message)
			}
			put("alert", line)
		}
		if v := m.Verdict; v != nil && v.Action == monitor.Rollback {
			put("verdict", t(string(v.Rule))+": "+t(v.Message))
			// The failed samples are the evidence a terminal reader needs;
			// the JSON report has the whole window.
			failed := 0
			for _, sm := range m.Evidence {
				if !sm.OK {
					failed++
					put("", joinNonEmpty(" ", fmtOffset(sm.Time, base), t(sm.Endpoint), sampleStatusText(sm), fmtDuration(sm.Latency), t(sm.Err)))
				}
			}
			if len(m.Evidence) > 0 {
				put("", fmt.Sprintf("%d of %d samples in the window failed", failed, len(m.Evidence)))
			}
		}
	}

	for _, f := range evidenceFindings(doc) {
		if strings.EqualFold(f.Kind, "fix") {
			label := "fix"
			for line := range strings.SplitSeq(strings.TrimSpace(f.Message), "\n") {
				put(label, truncate(keepIndent(line), 2*textLimit))
				label = ""
			}
			continue
		}
		put("finding", joinNonEmpty(" ", string(f.stage)+":", t(f.Kind), t(f.Subject), t(f.Reason)+":", t(f.Message)))
	}
	for _, o := range doc.Objects {
		put("object", joinNonEmpty(" ", t(o.Object)+":", t(o.Change)+",", t(o.Result)))
	}
	if rb := doc.Rollback; rb != nil {
		put("rollback", joinNonEmpty(": ", outcomeMark(rb.Outcome), t(rb.Message)))
	}
	for _, x := range doc.Warnings {
		put("warning", t(x.Message))
	}
	if doc.Result != nil && doc.Result.ManualCommand != "" {
		label := "by hand"
		for line := range strings.SplitSeq(strings.TrimSpace(doc.Result.ManualCommand), "\n") {
			put(label, truncate(keepIndent(line), 2*textLimit))
			label = ""
		}
	}
	if doc.Dropped > 0 {
		put("note", fmt.Sprintf("%d items left out to keep the report bounded", doc.Dropped))
	}
	return b.String()
}

// keepIndent is oneLine for a line of a recipe whose indentation matters,
// such as YAML.
func keepIndent(line string) string {
	trimmed := strings.TrimLeft(line, " ")
	return strings.Repeat(" ", len(line)-len(trimmed)) + oneLine(trimmed)
}

func textStatus(s event.Status) string {
	if s == "" {
		return "running"
	}
	return string(s)
}

func sampleStatusText(s monitor.Sample) string {
	if s.StatusCode == 0 {
		return "no-answer"
	}
	return strconv.Itoa(s.StatusCode)
}
