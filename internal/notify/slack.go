package notify

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/monitor"
	"github.com/ebeautything/greenlight/internal/redact"
)

// SlackOptions configures a Slack sink.
type SlackOptions struct {
	// WebhookURL is the Slack incoming webhook. It is a credential: it
	// appears in no warning.
	WebhookURL string
	// HTTPClient sends the messages; nil means a new client with the default
	// transport. Redirects are never followed.
	HTTPClient *http.Client
	// Timeout bounds each POST; zero means DefaultTimeout.
	Timeout time.Duration
	// QueueSize bounds the messages waiting for delivery; zero means
	// DefaultQueueSize.
	QueueSize int
	// Secrets are replaced by "***" in every message.
	Secrets []string

	// retryWait replaces the pause before a second try; tests shorten it.
	retryWait time.Duration
}

// Slack posts Block Kit messages to a Slack incoming webhook when a run
// starts, when it ends (with its headline figures), when an alert is raised
// or resolved, and when a rollback starts, so a channel hears of every
// rollback as soon as the webhook does. Handle never blocks; Close waits for delivery within a deadline.
type Slack struct {
	sender  *sender
	secrets []string

	runs runMemory
}

// NewSlack starts a Slack sink. Close must be called to stop it.
func NewSlack(opts SlackOptions) *Slack {
	return &Slack{
		secrets: slices.Clone(opts.Secrets),
		sender: newSender(senderConfig{
			name: "the Slack webhook", noun: "Slack message",
			url: opts.WebhookURL, client: opts.HTTPClient, timeout: opts.Timeout,
			retryWait: opts.retryWait, queueSize: opts.QueueSize, secrets: opts.Secrets,
		}),
	}
}

// Handle renders a message for the events Slack is told about and queues
// it without blocking.
func (s *Slack) Handle(e event.Event) {
	defer func() {
		if r := recover(); r != nil {
			s.sender.warn(fmt.Sprintf("Slack message for %s not sent: rendering failed: %v", e.Kind, r))
		}
	}()
	run := s.runs.observe(e)

	var msg slackMessage
	var what string
	switch {
	case e.Kind == event.RunStarted && e.Run != nil:
		msg, what = slackRunStarted(run, s.secrets), "run start"
	case e.Kind == event.RunFinished && e.Result != nil:
		msg, what = slackRunFinished(run, *e.Result, s.secrets), "run end"
	case e.Kind == event.AlertRaised && e.Alert != nil:
		msg, what = slackAlert(run, *e.Alert, s.secrets), "alert "+string(e.Alert.Rule)
	case e.Kind == event.AlertResolved && e.Alert != nil:
		msg, what = slackAlertResolved(run, *e.Alert, s.secrets), "resolved alert "+string(e.Alert.Rule)
	case e.Kind == event.RollbackStarted:
		msg, what = slackRollbackStarted(run, e, s.secrets), "rollback start"
	default:
		return
	}
	body, err := marshal(msg)
	if err != nil {
		s.sender.warn(fmt.Sprintf("Slack message for %s not sent: %v", what, err))
		return
	}
	s.sender.enqueue(delivery{what: what, body: body, header: http.Header{
		"Content-Type": {"application/json"},
		"User-Agent":   {userAgent},
	}})
}

// Close stops accepting events, waits until the queued messages are
// delivered or ctx ends, and returns the warnings collected.
func (s *Slack) Close(ctx context.Context) []string { return s.sender.close(ctx) }

// userAgent identifies greenlight to receivers.
const userAgent = "greenlight"

// slackMessage is an incoming webhook payload: Text is the notification
// and fallback, Blocks the Block Kit layout.
type slackMessage struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

// slackBlock is a header, section or context block.
type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`
	Fields   []slackText `json:"fields,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

// slackText is a plain_text or mrkdwn text object.
type slackText struct {
	Type  string `json:"type"`
	Text  string `json:"text"`
	Emoji bool   `json:"emoji,omitempty"`
}

// Block Kit limits, in characters.
const (
	slackHeaderMax  = 150
	slackSectionMax = 3000
	slackFieldMax   = 2000
	slackFieldsMax  = 10
)

// header returns a header block.
func header(text string) slackBlock {
	return slackBlock{Type: "header", Text: &slackText{Type: "plain_text", Text: truncate(text, slackHeaderMax), Emoji: true}}
}

// section returns a section block with mrkdwn text.
func section(mrkdwn string) slackBlock {
	return slackBlock{Type: "section", Text: &slackText{Type: "mrkdwn", Text: truncate(mrkdwn, slackSectionMax)}}
}

// fields returns a section block of label/value fields.
func fields(pairs ...[2]string) slackBlock {
	b := slackBlock{Type: "section"}
	for _, p := range pairs {
		if p[1] == "" || len(b.Fields) == slackFieldsMax {
			continue
		}
		b.Fields = append(b.Fields, slackText{Type: "mrkdwn", Text: truncate("*"+p[0]+"*\n"+p[1], slackFieldMax)})
	}
	return b
}

// contextBlock returns a context block of the non-empty parts, joined.
func contextBlock(parts ...string) slackBlock {
	var kept []string
	for _, p := range parts {
		if p != "" {
			kept = append(kept, p)
		}
	}
	return slackBlock{Type: "context", Elements: []slackText{{Type: "mrkdwn", Text: truncate(strings.Join(kept, " · "), slackSectionMax)}}}
}

// escaper makes text safe for mrkdwn: Slack reads "<", ">" and "&" as
// control characters, and secrets are replaced first.
type escaper []string

func (e escaper) text(s string) string {
	return mrkdwnEscapes.Replace(redact.Secrets(s, e))
}

// mrkdwnEscapes and linkEscapes are read-only replacers, built once
// because building one costs more than using it.
var (
	mrkdwnEscapes = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
	linkEscapes   = strings.NewReplacer("|", "%7C", ">", "%3E", "<", "%3C")
)

// code renders s as inline code; a backquote in s would end it early.
func (e escaper) code(s string) string {
	if s == "" {
		return ""
	}
	return "`" + strings.ReplaceAll(e.text(s), "`", "'") + "`"
}

// link renders a mrkdwn link to a public form of raw, or "" without one.
func (e escaper) link(raw, label string) string {
	u := redact.PublicURL(raw)
	if u == "" {
		return ""
	}
	u = linkEscapes.Replace(redact.Secrets(u, e))
	return "<" + u + "|" + e.text(label) + ">"
}

// runLinks are the links every message ends with.
func (e escaper) runLinks(run event.Run) slackBlock {
	commit := ""
	if run.SHA != "" {
		commit = e.code(run.SHA[:min(7, len(run.SHA))])
		if run.Repository != "" {
			commit += " in " + e.text(run.Repository)
		}
	}
	return contextBlock(e.link(run.RunURL, "Workflow run"), e.link(run.EnvironmentURL, orDefault(run.Environment, "Environment")), commit)
}

// orDefault returns s, or def when s is empty.
func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// target names where a run deploys: namespace/deployment.
func target(run event.Run) string {
	switch {
	case run.Namespace != "" && run.Deployment != "":
		return run.Namespace + "/" + run.Deployment
	default:
		return run.Deployment
	}
}

// slackRunStarted is the message sent when a run starts.
func slackRunStarted(run event.Run, secrets []string) slackMessage {
	e := escaper(secrets)
	env := orDefault(run.Environment, "an unnamed environment")
	return slackMessage{
		Text: e.text(fmt.Sprintf("Deploying %s to %s", run.Image, env)),
		Blocks: []slackBlock{
			header(redact.Secrets(":rocket: Deploying to "+env, secrets)),
			fields(
				[2]string{"Image", e.code(run.Image)},
				[2]string{"Replacing", e.code(run.PreviousImage)},
				[2]string{"Strategy", e.text(run.Strategy)},
				[2]string{"Target", e.code(target(run))},
				[2]string{"Started by", e.text(run.Actor)},
			),
			e.runLinks(run),
		},
	}
}

// slackRunFinished is the message sent when a run ends, with the figures a
// reader wants first.
func slackRunFinished(run event.Run, res event.Result, secrets []string) slackMessage {
	e := escaper(secrets)
	env := orDefault(run.Environment, "an unnamed environment")
	var title, plain string
	switch res.Status {
	case event.StatusSucceeded:
		title, plain = ":white_check_mark: Deployed to "+env, "Deployed "+run.Image+" to "+env
	case event.StatusRolledBack:
		title, plain = ":leftwards_arrow_with_hook: Rolled back in "+env, "Rolled back "+run.Image+" in "+env
	case event.StatusRollbackFailed:
		title, plain = ":rotating_light: Rollback failed in "+env+": needs attention", "Rollback of "+run.Image+" failed in "+env+": needs attention"
	case event.StatusFailed:
		title, plain = ":x: Deploy to "+env+" failed", "Deploy of "+run.Image+" to "+env+" failed"
	case event.StatusAwaitingPromotion:
		title, plain = ":double_vertical_bar: Awaiting promotion in "+env, run.Image+" is verified in "+env+" without traffic and awaits promotion"
	case event.StatusRejected:
		title, plain = ":no_entry_sign: Rejected in "+env, "Rejected "+run.Image+" in "+env+": it never got traffic"
	default:
		title, plain = fmt.Sprintf(":grey_question: Deploy to %s ended: %s", env, res.Status), fmt.Sprintf("Deploy of %s to %s ended: %s", run.Image, env, res.Status)
	}
	if r := strings.TrimSpace(res.Reason); r != "" {
		plain += ": " + r
	}

	blocks := []slackBlock{header(redact.Secrets(title, secrets))}
	if r := strings.TrimSpace(res.Reason); r != "" {
		blocks = append(blocks, section(e.text(r)))
	}
	var figures [][2]string
	figures = append(figures, [2]string{"Image", imageChange(e, run, res)})
	if m := res.Monitor; m != nil && m.Count > 0 {
		figures = append(figures,
			[2]string{"p95 latency", formatDuration(m.Latency.P95)},
			[2]string{"Error rate", formatPercent(m.ErrorRate)},
			[2]string{"Availability", formatPercent(m.Availability)},
		)
	}
	if !run.StartedAt.IsZero() && res.FinishedAt.After(run.StartedAt) {
		figures = append(figures, [2]string{"Duration", formatDuration(res.FinishedAt.Sub(run.StartedAt))})
	}
	figures = append(figures, [2]string{"Revision", e.text(res.Revision)})
	blocks = append(blocks, fields(figures...))
	if res.Status == event.StatusRollbackFailed && res.ManualCommand != "" {
		blocks = append(blocks, section("*Restore the previous version by hand:*\n```"+strings.ReplaceAll(e.text(res.ManualCommand), "```", "'''")+"```"))
	}
	blocks = append(blocks, e.runLinks(run))
	return slackMessage{Text: e.text(plain), Blocks: blocks}
}

// imageChange shows which image was replaced by which: the new one after
// the previous one, or the way back after a rollback.
func imageChange(e escaper, run event.Run, res event.Result) string {
	switch {
	case run.PreviousImage == "":
		return e.code(run.Image)
	case res.Status == event.StatusRolledBack:
		return e.code(run.Image) + " → " + e.code(run.PreviousImage) + " (restored)"
	}
	return e.code(run.PreviousImage) + " → " + e.code(run.Image)
}

// slackAlert is the message sent when an alert is raised.
func slackAlert(run event.Run, a monitor.AlertChange, secrets []string) slackMessage {
	e := escaper(secrets)
	env := orDefault(run.Environment, "an unnamed environment")
	v := a.Verdict
	title := fmt.Sprintf(":warning: Alert in %s: %s", env, a.Rule)
	action := "alert only; the new version stays"
	if v.Action == monitor.Rollback {
		title = fmt.Sprintf(":rotating_light: Rollback threshold crossed in %s: %s", env, a.Rule)
		action = "roll back to the previous version"
	}
	observed := formatFigure(v.Observed, v.Unit) + " (threshold " + formatFigure(v.Threshold, v.Unit) + ")"
	samples := ""
	if v.Samples > 0 {
		samples = fmt.Sprint(v.Samples)
	}
	msg := orDefault(strings.TrimSpace(v.Message), fmt.Sprintf("%s is beyond its threshold", a.Rule))
	return slackMessage{
		Text: e.text(fmt.Sprintf("Alert in %s: %s", env, msg)),
		Blocks: []slackBlock{
			header(redact.Secrets(title, secrets)),
			section(e.text(msg)),
			fields(
				[2]string{"Rule", e.code(string(a.Rule))},
				[2]string{"Observed", e.text(observed)},
				[2]string{"Action", e.text(action)},
				[2]string{"Samples", samples},
				[2]string{"Image", e.code(run.Image)},
			),
			e.runLinks(run),
		},
	}
}

// slackAlertResolved is the message sent when an alert stops firing.
func slackAlertResolved(run event.Run, a monitor.AlertChange, secrets []string) slackMessage {
	e := escaper(secrets)
	env := orDefault(run.Environment, "an unnamed environment")
	last := orDefault(strings.TrimSpace(a.Verdict.Message), fmt.Sprintf("%s was beyond its threshold", a.Rule))
	return slackMessage{
		Text: e.text(fmt.Sprintf("Alert resolved in %s: %s no longer fires", env, a.Rule)),
		Blocks: []slackBlock{
			header(redact.Secrets(fmt.Sprintf(":large_green_circle: Alert resolved in %s: %s", env, a.Rule), secrets)),
			section(e.text("No longer fires; last seen: " + last)),
			fields(
				[2]string{"Rule", e.code(string(a.Rule))},
				[2]string{"Image", e.code(run.Image)},
			),
			e.runLinks(run),
		},
	}
}

// slackRollbackStarted is the message sent when a rollback starts, before
// its outcome is known: the channel learns that traffic is moving back.
func slackRollbackStarted(run event.Run, ev event.Event, secrets []string) slackMessage {
	e := escaper(secrets)
	env := orDefault(run.Environment, "an unnamed environment")
	why := strings.TrimSpace(ev.Message)
	if why == "" && ev.Verdict != nil {
		why = strings.TrimSpace(ev.Verdict.Message)
	}
	to := orDefault(run.PreviousImage, "the previous version")
	plain := "Rolling back " + orDefault(run.Image, "the new version") + " in " + env + " to " + to
	if why != "" {
		plain += ": " + why
	}
	blocks := []slackBlock{header(redact.Secrets(":rewind: Rolling back in "+env, secrets))}
	if why != "" {
		blocks = append(blocks, section(e.text(why)))
	}
	rule := ""
	if ev.Verdict != nil {
		rule = e.code(string(ev.Verdict.Rule))
	}
	blocks = append(blocks, fields(
		[2]string{"From", e.code(run.Image)},
		[2]string{"To", e.code(run.PreviousImage)},
		[2]string{"Rule", rule},
		[2]string{"Target", e.code(target(run))},
		[2]string{"Started by", e.text(run.Actor)},
	), e.runLinks(run))
	return slackMessage{Text: e.text(plain), Blocks: blocks}
}
