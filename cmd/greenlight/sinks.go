package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ebeautything/greenlight/internal/config"
	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/notify"
)

// fanOut hands each event to every sink in order; sinks do not block.
func fanOut(sinks []event.Sink) event.Sink {
	return event.SinkFunc(func(e event.Event) {
		for _, s := range sinks {
			s.Handle(e)
		}
	})
}

// terminalSink prints one line per event. In the action log each stage is
// a collapsible group; on a terminal, rollout and monitor progress update
// one line in place.
type terminalSink struct {
	w        io.Writer
	tty      bool
	groups   bool
	inGroup  bool
	progress bool
	lives    int
	lastLive string
}

func newTerminalSink(w io.Writer, tty, groups bool) *terminalSink {
	return &terminalSink{w: w, tty: tty, groups: groups}
}

func (t *terminalSink) Handle(e event.Event) {
	switch e.Kind {
	case event.RunStarted:
		r := e.Run
		if r.Image == "" {
			// promote and reject: the image is the one waiting in the cluster
			t.line("greenlight: %s (%s, %s/%s)", r.Environment, r.Strategy, r.Namespace, r.Deployment)
			return
		}
		t.line("greenlight: deploying %s to %s (%s, %s/%s)", r.Image, r.Environment, r.Strategy, r.Namespace, r.Deployment)
	case event.StageStarted:
		if t.groups {
			t.line("::group::%s", e.Stage)
			t.inGroup = true
		} else {
			t.line("▶ %s", e.Stage)
		}
	case event.StageFinished:
		t.line("%s %s: %s", mark(e.Outcome), e.Stage, e.Message)
		for _, f := range e.Findings {
			t.line("    %s", findingLine(f))
		}
		if t.inGroup {
			t.line("::endgroup::")
			t.inGroup = false
		}
	case event.StepFinished:
		t.line("  · %s", e.Message)
	case event.RolloutProgress:
		t.live("  … %s", e.Message)
	case event.HealthChecked:
		h := e.Health
		t.line("  health (%s) %s: %s", h.Mode, okText(h.Healthy), firstNonEmpty(h.Reason, fmt.Sprintf("%d endpoints healthy, version %s", len(h.Endpoints), h.Version)))
	case event.SmokeTested:
		passed := 0
		for _, s := range e.Smoke {
			if s.Passed {
				passed++
			}
		}
		t.line("  smoke tests: %d of %d passed", passed, len(e.Smoke))
	case event.TrafficVerified:
		t.line("  traffic %s: %s", okText(e.Traffic.Passed), firstNonEmpty(e.Traffic.Reason, e.Traffic.Summary))
	case event.MonitorProgress:
		s := e.Snapshot
		if s == nil || s.Count == 0 {
			return // nothing probed yet: no figures to show
		}
		t.live("  probes %d  p95 %s  errors %.1f%%  availability %.1f%%", s.Count, s.Latency.P95.Round(time.Millisecond), s.ErrorRate*100, s.Availability*100)
	case event.AlertRaised:
		t.line("  ⚠ alert: %s", e.Message)
	case event.AlertResolved:
		t.line("  ✓ resolved: %s", e.Alert.Rule)
	case event.RollbackStarted:
		t.line("↩ rolling back: %s", e.Message)
	case event.Warning:
		if t.groups {
			t.line("::warning::%s", escapeCommand(e.Message))
		} else {
			t.line("warning: %s", e.Message)
		}
	case event.RunFinished:
		t.line("%s %s: %s", statusMark(e.Result.Status), e.Result.Status, e.Result.Reason)
		if e.Result.ManualCommand != "" && e.Result.Status != event.StatusSucceeded {
			t.line("  by hand: %s", e.Result.ManualCommand)
		}
		if p := e.Result.Promotion; p != nil {
			t.line("  look at %s: %s", p.Color, p.PortForward)
			t.line("  promote: %s", p.PromoteCLI)
			t.line("  reject:  %s", p.RejectCLI)
		}
	}
}

// live prints a progress line: in place on a terminal, else as a line.
func (t *terminalSink) live(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if t.tty {
		fmt.Fprintf(t.w, "\r\033[K%s", msg)
		t.progress = true
		return
	}
	// In a log, repeat nothing and keep monitor progress to one line in ten.
	t.lives++
	if msg == t.lastLive || (strings.HasPrefix(msg, "  probes") && t.lives%10 != 1) {
		return
	}
	t.lastLive = msg
	t.line("%s", msg)
}

func (t *terminalSink) line(format string, args ...any) {
	if t.progress {
		fmt.Fprintln(t.w)
		t.progress = false
	}
	fmt.Fprintf(t.w, format+"\n", args...)
}

func (t *terminalSink) flush() {
	if t.progress {
		fmt.Fprintln(t.w)
		t.progress = false
	}
}

func mark(o event.Outcome) string {
	switch o {
	case event.Succeeded:
		return "✓"
	case event.Skipped:
		return "–"
	case event.Cancelled:
		return "⊘"
	}
	return "✗"
}

func statusMark(s event.Status) string {
	switch s {
	case event.StatusSucceeded:
		return "✅"
	case event.StatusRolledBack:
		return "↩️"
	case event.StatusRollbackFailed:
		return "🚨"
	case event.StatusAwaitingPromotion:
		return "⏸️"
	case event.StatusRejected:
		return "🚫"
	}
	return "❌"
}

func okText(ok bool) string {
	if ok {
		return "ok"
	}
	return "FAILED"
}

// escapeCommand keeps a message on one workflow-command line.
func escapeCommand(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// findingLine is one finding for the log, naming its subject once.
func findingLine(f event.Finding) string {
	msg := strings.ReplaceAll(f.Message, "\n", "\n    ")
	switch {
	case f.Subject == "" || strings.Contains(f.Message, f.Subject):
		return msg
	case f.Kind == "permission":
		return "missing permission: " + f.Subject
	}
	return fmt.Sprintf("%s %s: %s", f.Kind, f.Subject, msg)
}

// notifiers starts the Slack and webhook sinks for the commands people
// must hear about (deploy, rollback, promote, reject) and returns their
// closers.
func (a *app) notifiers() []func(context.Context) []string {
	switch a.cfg.Command {
	case config.CommandDeploy, config.CommandRollback, config.CommandPromote, config.CommandReject:
	default:
		return nil
	}
	var closers []func(context.Context) []string
	secrets := a.cfg.Secrets()
	if url := a.cfg.SlackWebhookURL.Reveal(); url != "" {
		s := notify.NewSlack(notify.SlackOptions{WebhookURL: url, Secrets: secrets})
		a.sinks = append(a.sinks, s)
		closers = append(closers, s.Close)
	}
	if url := a.cfg.AlertWebhookURL.Reveal(); url != "" {
		s := notify.NewWebhook(notify.WebhookOptions{URL: url, Secret: a.cfg.AlertWebhookSecret.Reveal(), Secrets: secrets})
		a.sinks = append(a.sinks, s)
		closers = append(closers, s.Close)
	}
	return closers
}

// closeNotifiers waits, within a bound, for the notifications to leave.
func (a *app) closeNotifiers(ctx context.Context, closers []func(context.Context) []string, warn func(string)) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sinkCloseBound)
	defer cancel()
	for _, c := range closers {
		for _, w := range c(cctx) {
			warn(w)
		}
	}
}
