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
	row := func(label, value string) {
		if value != "" {
			fmt.Fprintf(&b, "| %s | %s |\n", label, value)
		}
	}
	b.WriteString("| | |\n|---|---|\n")
	row("Asked by", mdCell(s.Actor))
	row("Reason", mdCell(s.Reason))
	if s.From != "" || s.To != "" {
		row("Image", mdCode(s.From)+" → "+mdCode(s.To))
	}
	row("Rolled back by", mdCell(s.AnsweredBy))
	row("Lock taken over from", mdCell(s.TookOverFrom))
	if s.Switch > 0 {
		row("Previous version serving after", formatDuration(s.Switch))
	}
	row("Verified", mdCell(s.Verified))
	row("History record", mdCode(s.RecordID))
	if len(s.Steps) > 0 {
		b.WriteString("\n")
		for _, st := range s.Steps {
			fmt.Fprintf(&b, "- %s\n", mdCell(st))
		}
	}
	return b.String()
}
