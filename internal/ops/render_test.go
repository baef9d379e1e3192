package ops

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ebeautything/greenlight/internal/goldenfile"
	"github.com/ebeautything/greenlight/internal/kube"
)

// t0 is the fixed clock of every golden file.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func sampleEntries() []Entry {
	return Entries([]kube.Record{
		{ID: "scale-3f2a9c1", Environment: "production", Image: "ghcr.io/acme/payments:v2", Status: kube.RecordSucceeded,
			Reason: "scaled payments-blue to 5 replicas (from 2) by octocat", ActiveColor: "blue", Revision: 2, Actor: "octocat",
			StartedAt: t0.Add(-10 * time.Minute), FinishedAt: t0.Add(-10*time.Minute + 14*time.Second)},
		{ID: "0123456789abcdef0123456789abcdef01234567", Environment: "production", Image: "ghcr.io/acme/payments:v2", PreviousImage: "ghcr.io/acme/payments:v1",
			Status: kube.RecordSucceeded, ActiveColor: "blue", Revision: 2, Actor: "octocat", RunURL: "https://github.com/acme/payments/actions/runs/42",
			StartedAt: t0.Add(-3 * time.Hour), FinishedAt: t0.Add(-3*time.Hour + 4*time.Minute + 12*time.Second)},
		{ID: "89abcdef0123456789abcdef0123456789abcdef", Environment: "production", Image: "ghcr.io/acme/payments:v3", PreviousImage: "ghcr.io/acme/payments:v2",
			Status: kube.RecordRolledBack, Reason: "monitor: error rate 31.0% above the rollback threshold 25.0% | after 40 probes",
			ActiveColor: "green", Actor: "hubot", StartedAt: t0.Add(-50 * time.Hour), FinishedAt: t0.Add(-50*time.Hour + 9*time.Minute)},
		{ID: "local-20250226T080000Z", Environment: "production", Image: "ghcr.io/acme/payments:v1", Status: kube.RecordFailed,
			Reason:    "deployment payments-green did not become ready: pod payments-green-7d9c-x2b4q: ImagePullBackOff: Back-off pulling image \"ghcr.io/acme/payments:v1\"; the registry said the manifest is unknown",
			StartedAt: t0.Add(-76 * time.Hour)},
	}, 0)
}

// statuses are the fixtures of the golden files, one per situation.
func statuses() map[string]Status {
	return map[string]Status{
		"rolling": {
			Time: t0, Environment: "staging", Namespace: "shop", Deployment: "shop", Service: "shop", Strategy: "rolling",
			Active:    Workload{Deployment: "shop", Revision: 3, Image: "sampleapp:v2", Desired: 2, Ready: 2, Updated: 2, Available: 2},
			Endpoints: Endpoints{Ready: []string{"shop-6d5f8c7b9-abcde", "shop-6d5f8c7b9-fghij"}},
			Health:    &HealthAnswer{Target: "http://127.0.0.1:8080/shop/shop", Path: "/health", StatusCode: 200, OK: true, Version: "v2", Latency: 12345 * time.Microsecond},
		},
		"blue-green": {
			Time: t0, Environment: "production", Namespace: "payments", Deployment: "payments", Service: "payments", Strategy: "blue-green",
			Active: Workload{Deployment: "payments-blue", Color: "blue", Revision: 2, Image: "ghcr.io/acme/payments:v2", Desired: 5, Ready: 4, Updated: 5, Available: 4,
				RestartedAt: "2025-03-01T11:50:00Z"},
			Idle: &Workload{Deployment: "payments-green", Color: "green", Revision: 4, Image: "ghcr.io/acme/payments:v3"},
			Endpoints: Endpoints{Ready: []string{"payments-blue-1", "payments-blue-2", "payments-blue-3", "payments-blue-4", "payments-blue-5", "payments-blue-6", "payments-blue-7"},
				NotReady: 1},
			Lock: &LockInfo{Holder: kube.Holder{ID: "run-42", Repository: "acme/payments", RunURL: "https://github.com/acme/payments/actions/runs/43", Actor: "octocat", Environment: "production"},
				Since: t0.Add(-3*time.Minute - 5*time.Second)},
			Recent: sampleEntries(),
			Health: &HealthAnswer{Target: "https://payments.acme.example", Path: "/health", StatusCode: 503, Version: "v2", Latency: 1234 * time.Millisecond},
		},
		"awaiting-promotion": {
			Time: t0, Environment: "production", Namespace: "payments", Deployment: "payments", Service: "payments", Strategy: "blue-green",
			Active:    Workload{Deployment: "payments-blue", Color: "blue", Revision: 2, Image: "ghcr.io/acme/payments:v2", Desired: 3, Ready: 3, Updated: 3, Available: 3},
			Idle:      &Workload{Deployment: "payments-green", Color: "green", Revision: 5, Image: "ghcr.io/acme/payments:v3", Desired: 3, Ready: 3, Updated: 3, Available: 3},
			Awaiting:  &Awaiting{Color: "green", Deployment: "payments-green", Image: "ghcr.io/acme/payments:v3", PreviousImage: "ghcr.io/acme/payments:v2", VerifiedAt: t0.Add(-25 * time.Minute), Actor: "octocat", RunURL: "https://github.com/acme/payments/actions/runs/44", DeploymentID: "89abcdef0123456789abcdef0123456789abcdef"},
			Endpoints: Endpoints{Ready: []string{"payments-blue-1", "payments-blue-2", "payments-blue-3"}},
		},
		"awaiting-edited": {
			Time: t0, Environment: "production", Namespace: "payments", Deployment: "payments", Service: "payments", Strategy: "blue-green",
			Active:    Workload{Deployment: "payments-blue", Color: "blue", Revision: 2, Image: "ghcr.io/acme/payments:v2", Desired: 3, Ready: 3, Updated: 3, Available: 3},
			Idle:      &Workload{Deployment: "payments-green", Color: "green", Revision: 6, Image: "ghcr.io/acme/payments:v3", Desired: 3, Ready: 3, Updated: 3, Available: 3},
			Awaiting:  &Awaiting{Color: "green", Deployment: "payments-green", Image: "ghcr.io/acme/payments:v3", VerifiedAt: t0.Add(-2 * time.Hour), Edited: true},
			Endpoints: Endpoints{Ready: []string{"payments-blue-1", "payments-blue-2", "payments-blue-3"}},
		},
		"unreachable": {
			Time: t0, Environment: "production", Namespace: "payments", Deployment: "payments", Service: "payments", Strategy: "blue-green",
			Active:   Workload{Deployment: "payments", Revision: 1, Image: "ghcr.io/acme/payments:v1", Desired: 2},
			Health:   &HealthAnswer{Target: "service payments/payments via API server https://10.0.0.1:6443", Path: "/health", Err: "dial tcp: connection refused", Latency: 3 * time.Millisecond},
			Problems: []string{"read deploy lock payments/greenlight-payments: forbidden: leases.coordination.k8s.io is forbidden"},
		},
	}
}

func TestStatusGolden(t *testing.T) {
	t.Parallel()
	for name, s := range statuses() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var table, colored, js bytes.Buffer
			WriteStatusTable(&table, s, false)
			goldenfile.Assert(t, "status-"+name+".txt", table.Bytes())
			assert.NotContains(t, table.String(), "\033[", "no colors off a terminal")

			WriteStatusTable(&colored, s, true)
			goldenfile.Assert(t, "status-"+name+".tty", colored.Bytes())
			assert.Equal(t, table.String(), stripANSI(colored.String()), "colors change nothing but colors")

			require.NoError(t, WriteStatusJSON(&js, s))
			goldenfile.Assert(t, "status-"+name+".json", js.Bytes())
			var back map[string]any
			require.NoError(t, json.Unmarshal(js.Bytes(), &back))
			assert.EqualValues(t, SchemaVersion, back["schemaVersion"])

			goldenfile.Assert(t, "status-"+name+".md", []byte(StatusMarkdown(s)))
		})
	}
}

func TestStatusJSONNullsAndLists(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	require.NoError(t, WriteStatusJSON(&buf, Status{Time: t0, Active: Workload{Deployment: "shop"}}))
	var v map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &v))
	assert.Nil(t, v["lock"], "a free lock is null")
	assert.Nil(t, v["health"])
	assert.Nil(t, v["idle"])
	assert.Equal(t, []any{}, v["recent"], "lists are never null")
	assert.Equal(t, []any{}, v["problems"])
	assert.Equal(t, []any{}, v["endpoints"].(map[string]any)["ready"])
}

func TestHistoryGolden(t *testing.T) {
	t.Parallel()
	var table, colored, js bytes.Buffer
	WriteHistoryTable(&table, sampleEntries(), false)
	goldenfile.Assert(t, "history.txt", table.Bytes())
	WriteHistoryTable(&colored, sampleEntries(), true)
	goldenfile.Assert(t, "history.tty", colored.Bytes())
	assert.Equal(t, table.String(), stripANSI(colored.String()))
	require.NoError(t, WriteHistoryJSON(&js, sampleEntries()))
	goldenfile.Assert(t, "history.json", js.Bytes())
	goldenfile.Assert(t, "history.md", []byte(HistoryMarkdown("production", sampleEntries(), t0)))

	var empty bytes.Buffer
	WriteHistoryTable(&empty, nil, false)
	assert.Equal(t, "no deployments recorded yet\n", empty.String())
	var emptyJSON bytes.Buffer
	require.NoError(t, WriteHistoryJSON(&emptyJSON, nil))
	assert.Equal(t, "[]\n", emptyJSON.String())
}

func TestActionMarkdownGolden(t *testing.T) {
	t.Parallel()
	scale := ScaleResult{Active: Active{Deployment: "payments-blue", Color: "blue"}, From: 2, To: 5, Image: "ghcr.io/acme/payments:v2",
		Ready: kube.RolloutState{Done: true, Ready: 5, Desired: 5}, Endpoints: 5, Took: 14 * time.Second}
	state := MaintenanceState{Active: Active{Deployment: "payments-blue", Color: "blue"}, ConfigMap: "payments-config", Key: "MAINTENANCE_MODE",
		Exists: true, KeySet: true, Value: "false", Known: true}
	maint := MaintenanceResult{Before: state, On: true, Value: "true", Wrote: true, RestartedAt: "2025-03-01T12:00:00Z", FromRevision: 2, ToRevision: 3,
		Health: &HealthAnswer{StatusCode: 200, OK: true}, Took: 21 * time.Second}
	var b strings.Builder
	b.WriteString(ScaleMarkdown("production", scale, nil))
	b.WriteString(ScaleMarkdown("production", ScaleResult{Active: scale.Active, From: 5, To: 5, Unchanged: true, Ready: scale.Ready}, nil))
	b.WriteString(ScaleMarkdown("production", ScaleResult{Active: scale.Active, From: 5, To: 2, Image: scale.Image, Took: 300 * time.Millisecond}, nil))
	b.WriteString(ScaleMarkdown("production", ScaleResult{Active: scale.Active, To: 50}, assert.AnError))
	b.WriteString(MaintenanceMarkdown("production", maint, nil))
	b.WriteString(MaintenanceMarkdown("production", MaintenanceResult{Before: state, On: false, Unchanged: true}, nil))
	b.WriteString(MaintenanceMarkdown("production", MaintenanceResult{Before: state, On: true}, assert.AnError))
	goldenfile.Assert(t, "actions.md", []byte(b.String()))
}

// stripANSI removes the color sequences the painter writes.
func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\033' {
			for i < len(s) && s[i] != 'm' {
				i++
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
