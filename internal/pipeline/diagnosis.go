package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/kube"
	"github.com/ebeautything/greenlight/internal/redact"
)

// FindingLog is the kind of finding that holds the end of a container's
// log; its Subject is "pod/container", its Reason says which instance.
const FindingLog = "log"

// diagnosis is the evidence about the new version's pods for a stage that
// failed: failing pods, their events and log tails. A rollout failure
// carries its own (read before the rollout was undone); a failed check
// before traffic left its diagnosis in r.preview; verify and monitor read
// the new version's pods now, before any rollback touches them.
func (r *run) diagnosis(ctx context.Context, s event.Stage, err error) []event.Finding {
	if r.deps.Client == nil {
		return nil
	}
	if d := r.previewDiagnosis; d != nil {
		r.previewDiagnosis = nil
		return diagnosisFindings(*d)
	}
	var rf *kube.RolloutFailure
	if errors.As(err, &rf) || (s != event.Verify && s != event.Monitor) || r.out.Deployed.Deployment == "" {
		return nil
	}
	sel, _, serr := kube.CurrentPodSelector(context.WithoutCancel(ctx), r.deps.Client, r.cfg.Namespace, r.out.Deployed.Deployment)
	if serr != nil {
		return []event.Finding{{Kind: "diagnosis", Message: fmt.Sprintf("no diagnosis of %s's pods: %v", r.out.Deployed.Deployment, serr)}}
	}
	return r.diagnose(ctx, sel)
}

// diagnose reads the diagnosis of the pods selector matches.
func (r *run) diagnose(ctx context.Context, selector map[string]string) []event.Finding {
	d, err := kube.Diagnoser{Client: r.deps.Client}.Diagnose(ctx, r.cfg.Namespace, selector)
	if err != nil {
		return []event.Finding{{Kind: "diagnosis", Message: "no diagnosis: " + err.Error()}}
	}
	return diagnosisFindings(d)
}

// diagnosisFindings turns a diagnosis into report findings. Pure.
func diagnosisFindings(d kube.Diagnosis) []event.Finding {
	var out []event.Finding
	for _, p := range d.Pods {
		out = append(out, event.Finding{Kind: "pod", Subject: p.Pod, Reason: p.Reason, Message: p.Summary()})
	}
	for _, e := range d.Events {
		out = append(out, event.Finding{Kind: "event", Subject: e.Object, Reason: e.Reason, Message: e.Message})
	}
	return append(out, logFindings(d.Logs)...)
}

// logFindings are the log tails as findings. Pure.
func logFindings(logs []kube.LogTail) []event.Finding {
	out := make([]event.Finding, 0, len(logs))
	for _, l := range logs {
		f := event.Finding{Kind: FindingLog, Subject: l.Pod + "/" + l.Container, Reason: "current", Message: l.Text}
		if l.Previous {
			f.Reason = "previous"
		}
		if l.Err != "" {
			f.Message = l.Err
			f.Reason = "unreadable"
		}
		if f.Message == "" {
			f.Message = "(empty)"
		}
		out = append(out, f)
	}
	return out
}

// redacted replaces the run's secrets in findings: an app may log the
// token it was sent.
func (r *run) redacted(findings []event.Finding) []event.Finding {
	secrets := r.cfg.Secrets()
	for i := range findings {
		f := &findings[i]
		f.Subject = redact.Secrets(f.Subject, secrets)
		f.Reason = redact.Secrets(f.Reason, secrets)
		f.Message = redact.Secrets(f.Message, secrets)
	}
	return findings
}
