package pipeline

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/ebeautything/greenlight/internal/config"
	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/kube"
)

func TestDiagnosisFindings(t *testing.T) {
	t.Parallel()
	d := kube.Diagnosis{
		Pods:   []kube.Failure{{Kind: kube.FailureCrashLoop, Pod: "shop-7d9-x", Container: "app", Reason: "CrashLoopBackOff", RestartCount: 3}},
		Events: []kube.EventLine{{Object: "Pod/shop-7d9-x", Reason: "BackOff", Message: "Back-off restarting failed container"}},
		Logs: []kube.LogTail{
			{Pod: "shop-7d9-x", Container: "app", Previous: true, Text: "panic: no DATABASE_URL"},
			{Pod: "shop-7d9-y", Container: "app", Text: ""},
			{Pod: "shop-7d9-z", Container: "app", Err: "read the log of shop-7d9-z/app: forbidden"},
		},
	}
	got := diagnosisFindings(d)
	assert.Equal(t, []event.Finding{
		{Kind: "pod", Subject: "shop-7d9-x", Reason: "CrashLoopBackOff", Message: d.Pods[0].Summary()},
		{Kind: "event", Subject: "Pod/shop-7d9-x", Reason: "BackOff", Message: "Back-off restarting failed container"},
		{Kind: FindingLog, Subject: "shop-7d9-x/app", Reason: "previous", Message: "panic: no DATABASE_URL"},
		{Kind: FindingLog, Subject: "shop-7d9-y/app", Reason: "current", Message: "(empty)"},
		{Kind: FindingLog, Subject: "shop-7d9-z/app", Reason: "unreadable", Message: "read the log of shop-7d9-z/app: forbidden"},
	}, got)
}

// TestFindingsAreRedacted: an app may log the bearer token it was sent.
func TestFindingsAreRedacted(t *testing.T) {
	t.Parallel()
	r := &run{cfg: config.Config{HealthCheckToken: "tok-3f9a77c1"}, out: &Outcome{}}
	got := r.redacted([]event.Finding{{Kind: FindingLog, Subject: "p/c", Message: `GET /health/detailed authorization="Bearer tok-3f9a77c1"`}})
	assert.Equal(t, `GET /health/detailed authorization="Bearer ***"`, got[0].Message)
}
