package ops

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/ebeautything/greenlight/internal/config"
	"github.com/ebeautything/greenlight/internal/goldenfile"
	"github.com/ebeautything/greenlight/internal/kube"
)

func TestCheckUnlock(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		force  bool
		reason string
		input  string
	}{
		{"no force", false, "runner died", "force"},
		{"no reason", true, "", "reason"},
		{"blank reason", true, "   ", "reason"},
		{"forced with a reason", true, "runner died", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := CheckUnlock(tt.force, tt.reason)
			if tt.input == "" {
				assert.NoError(t, err)
				return
			}
			var in *config.InputError
			if assert.True(t, errors.As(err, &in), "%v", err) {
				assert.Equal(t, tt.input, in.Input)
			}
		})
	}
}

func TestUnlockTextAndRecord(t *testing.T) {
	t.Parallel()
	held := &kube.LockHeldError{Namespace: "shop", Name: "greenlight-app", Since: t0,
		Holder: kube.Holder{ID: "x", RunURL: "https://github.com/acme/shop/actions/runs/9", Actor: "octocat"}}
	r := UnlockResult{Lock: "shop/greenlight-app", Held: held}
	assert.Equal(t, "deploy lock shop/greenlight-app cleared: it was held by run https://github.com/acme/shop/actions/runs/9 (octocat) since 12:00:00 UTC, held for 12m0s",
		UnlockText(r, t0.Add(12*time.Minute)))
	assert.Equal(t, "deploy lock shop/greenlight-app was free; nothing to unlock", UnlockText(UnlockResult{Lock: "shop/greenlight-app"}, t0))

	a := Audit{ID: "unlock-1", Environment: "production", Actor: "alice@laptop", StartedAt: t0, FinishedAt: t0}
	rec := UnlockRecord(a, r, "runner died", nil)
	assert.Equal(t, kube.RecordSucceeded, rec.Status)
	assert.Equal(t, "unlocked shop/greenlight-app by alice@laptop: runner died (held by run https://github.com/acme/shop/actions/runs/9 (octocat) since 12:00:00 UTC)", rec.Reason)
	assert.Equal(t, "alice@laptop", rec.Actor)
	failed := UnlockRecord(a, r, "runner died", errors.New("forbidden"))
	assert.Equal(t, kube.RecordFailed, failed.Status)
}

func TestRollbackMarkdown(t *testing.T) {
	t.Parallel()
	for name, s := range map[string]RollbackSummary{
		"done": {Environment: "production", Status: "rolled-back", Result: "rolled back to blue (shop:v2) from shop:v3 by alice@laptop: checkout errors",
			From: "shop:v3", To: "shop:v2", Actor: "alice@laptop", Reason: "checkout errors", Switch: 840 * time.Millisecond,
			Verified: "v2 answers and is healthy", RecordID: "rollback-1a2b3c4", Steps: []string{"switch back service shop → shop-blue", "confirm endpoints 2 ready endpoints"}},
		"answered": {Environment: "production", Status: "rolled-back", Result: "the running deploy run https://github.com/acme/shop/actions/runs/42 (octocat) rolled back on request",
			To: "shop:v2", Actor: "alice@laptop", Reason: "checkout errors", AnsweredBy: "run https://github.com/acme/shop/actions/runs/42 (octocat)", Verified: "v2 answers and is healthy"},
		"no-answer": {Environment: "production", Status: "failed", Result: "deploy lock shop/greenlight-shop is held by run 7 and did not answer the rollback request within 30s", Actor: "alice@laptop"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			goldenfile.Assert(t, "rollback-"+name+".md", []byte(RollbackMarkdown(s)))
		})
	}
}
