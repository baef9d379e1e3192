package pipeline

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/ebeautything/greenlight/internal/config"
	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/kube"
	"github.com/ebeautything/greenlight/internal/strategy"
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

// TestPreDeployLogTailIsRedacted: a migration that fails may print the
// connection string it was given; its log tail and the objects' details
// reach the summary with the run's secrets masked.
func TestPreDeployLogTailIsRedacted(t *testing.T) {
	t.Parallel()
	const secret = "tok-9c1e55d2"
	var got []event.Event
	r := &run{cfg: config.Config{HealthCheckToken: secret}, out: &Outcome{},
		deps: Deps{Sink: event.SinkFunc(func(e event.Event) { got = append(got, e) }), Now: time.Now}}
	rf := &kube.RolloutFailure{Object: "Job/migrate", Deployment: "migrate", Reason: "BackoffLimitExceeded",
		Logs: []kube.LogTail{{Pod: "migrate-x7k2p", Container: "migrate", Text: "connecting with token " + secret + "\nmigration failed"}}}
	err := fmt.Errorf("pre-deploy %w; nothing else was applied", rf)
	findings := r.redacted(findingsOf(err))
	assert.Equal(t, []event.Finding{{Kind: FindingLog, Subject: "migrate-x7k2p/migrate", Reason: "current", Message: "connecting with token ***\nmigration failed"}}, findings)

	r.out.Deployed.Objects = []strategy.ObjectResult{{Object: "Job/migrate", Change: "created", Result: "failed", Detail: "token " + secret + " refused"}}
	r.emitObjects(event.Deploy)
	assert.Equal(t, []event.ObjectChange{{Object: "Job/migrate", Change: "created", Result: "failed", Detail: "token *** refused"}}, got[0].Objects)
}
