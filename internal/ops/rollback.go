package ops

import (
	"fmt"
	"strings"
	"time"
)

// RollbackSummary is what a job summary shows of a rollback asked for by
// a person.
type RollbackSummary struct {
	// Environment is the environment rolled back.
	Environment string
	// Status is rolled-back, rollback-failed or failed; Result says why.
	Status, Result string
	// From is the image that served before; To the one serving after.
	From, To string
	// Actor asked for it; Reason is why.
	Actor, Reason string
	// AnsweredBy is the running deploy that rolled back on request.
	AnsweredBy string
	// TookOverFrom is the lock holder that lost the lock to --force.
	TookOverFrom string
	// Switch is how long until only the previous version served.
	Switch time.Duration
	// Verified says how the previous version was proven to serve.
	Verified string
	// RecordID is the history record.
	RecordID string
	// Steps are the strategy's steps, one line each.
	Steps []string
}

// RollbackMarkdown is a rollback as a job summary. Pure.
func RollbackMarkdown(s RollbackSummary) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### greenlight rollback: %s\n\n", mdCell(s.Environment))
	mark := "✅"
	if s.Status != "rolled-back" {
		mark = "❌"
	}
	fmt.Fprintf(&b, "%s **%s**: %s\n\n", mark, mdCell(s.Status), mdCell(s.Result))
	row := func(label, raw string, format func(string) string) {
		if raw != "" {
			fmt.Fprintf(&b, "| %s | %s |\n", label, format(raw))
		}
	}
	b.WriteString("| | |\n|---|---|\n")
	row("Asked by", s.Actor, mdCell)
	row("Reason", s.Reason, mdCell)
	if s.From != "" || s.To != "" {
		row("Image", mdCode(s.From)+" → "+mdCode(s.To), func(v string) string { return v })
	}
	row("Rolled back by", s.AnsweredBy, mdCell)
	row("Lock taken over from", s.TookOverFrom, mdCell)
	if s.Switch > 0 {
		row("Previous version serving after", formatDuration(s.Switch), func(v string) string { return v })
	}
	row("Verified", s.Verified, mdCell)
	row("History record", s.RecordID, mdCode)
	if len(s.Steps) > 0 {
		b.WriteString("\n")
		for _, st := range s.Steps {
			fmt.Fprintf(&b, "- %s\n", mdCell(st))
		}
	}
	return b.String()
}
