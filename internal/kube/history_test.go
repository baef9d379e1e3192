package kube

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

var historyStart = time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)

// deployRecord is the n-th deployment of the shop, with an optional report
// of about reportSize bytes.
func deployRecord(n, reportSize int) Record {
	r := Record{
		ID:            fmt.Sprintf("deploy-%d", n),
		Environment:   "production",
		Image:         fmt.Sprintf("ghcr.io/acme/shop:v%d", n),
		PreviousImage: fmt.Sprintf("ghcr.io/acme/shop:v%d", n-1),
		Strategy:      "rolling",
		Status:        RecordSucceeded,
		Revision:      int64(n),
		Actor:         "octocat",
		RunURL:        fmt.Sprintf("https://github.com/acme/shop/actions/runs/%d", n),
		StartedAt:     historyStart.Add(time.Duration(n) * time.Minute),
		FinishedAt:    historyStart.Add(time.Duration(n)*time.Minute + 30*time.Second),
	}
	if reportSize > 0 {
		r.Report = json.RawMessage(fmt.Sprintf(`{"id":%q,"log":%q}`, r.ID, strings.Repeat("x", reportSize)))
	}
	return r
}

func recordIDs(records []Record) []string {
	ids := make([]string, len(records))
	for i, r := range records {
		ids[i] = r.ID
	}
	return ids
}

func TestFitHistory(t *testing.T) {
	t.Parallel()
	records := func(sizes ...int) []Record {
		out := make([]Record, len(sizes))
		for i, size := range sizes {
			out[i] = deployRecord(len(sizes)-i, size) // newest first
		}
		return out
	}
	withReports := func(rs []Record) []string {
		var out []string
		for _, r := range rs {
			if len(r.Report) > 0 {
				out = append(out, r.ID)
			}
		}
		return out
	}
	omitted := func(rs []Record) []string {
		var out []string
		for _, r := range rs {
			if r.ReportOmitted {
				out = append(out, r.ID)
			}
		}
		return out
	}
	tests := []struct {
		name        string
		in          []Record
		limit       int
		budget      int
		ids         []string
		withReports []string
		omitted     []string
	}{
		{
			name: "fits", in: records(100, 100, 100), limit: 50, budget: 10_000,
			ids: []string{"deploy-3", "deploy-2", "deploy-1"}, withReports: []string{"deploy-3", "deploy-2", "deploy-1"},
		},
		{
			name: "over the limit", in: records(0, 0, 0, 0), limit: 2, budget: 10_000,
			ids: []string{"deploy-4", "deploy-3"},
		},
		{
			name: "oldest reports go first", in: records(2000, 2000, 2000), limit: 50, budget: 4000,
			ids: []string{"deploy-3", "deploy-2", "deploy-1"}, withReports: []string{"deploy-3"}, omitted: []string{"deploy-2", "deploy-1"},
		},
		{
			name: "newest report goes last", in: records(9000, 0, 0), limit: 50, budget: 5000,
			ids: []string{"deploy-3", "deploy-2", "deploy-1"}, omitted: []string{"deploy-3"},
		},
		{
			name: "then the oldest records", in: records(0, 0, 0, 0), limit: 50, budget: 800,
			ids: []string{"deploy-4", "deploy-3"},
		},
		{
			name: "the newest record always stays", in: records(0, 0), limit: 50, budget: 10,
			ids: []string{"deploy-2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := append([]Record(nil), tt.in...)
			got, lines, err := fitHistory(in, tt.limit, tt.budget)
			require.NoError(t, err)
			assert.Equal(t, tt.ids, recordIDs(got))
			assert.Equal(t, tt.withReports, withReports(got))
			assert.Equal(t, tt.omitted, omitted(got))
			assert.Equal(t, tt.in, in, "the input is not changed")
			data := encodeHistory(lines)
			if len(got) > 1 {
				assert.LessOrEqual(t, len(data), tt.budget)
			}
		})
	}
}

func TestEncodeHistoryRoundTrip(t *testing.T) {
	t.Parallel()
	for _, records := range [][]Record{nil, {deployRecord(1, 10)}, {deployRecord(2, 0), deployRecord(1, 10)}} {
		fitted, lines, err := fitHistory(records, HistoryLimit, historyBudget)
		require.NoError(t, err)
		data := encodeHistory(lines)
		assert.True(t, json.Valid(data))

		got, err := decodeHistory(&corev1.ConfigMap{Data: map[string]string{historyKey: string(data)}})
		require.NoError(t, err)
		require.Len(t, got, len(fitted))
		for i := range records {
			assert.Equal(t, records[i].ID, got[i].ID)
			assert.True(t, records[i].StartedAt.Equal(got[i].StartedAt))
			assert.JSONEq(t, string(orEmptyJSON(records[i].Report)), string(orEmptyJSON(got[i].Report)))
		}
	}
}

func orEmptyJSON(m json.RawMessage) json.RawMessage {
	if len(m) == 0 {
		return json.RawMessage("null")
	}
	return m
}

func TestFindRecord(t *testing.T) {
	t.Parallel()
	records := []Record{
		{ID: "b", Status: RecordRolledBack, Revision: 3},
		{ID: "a", Status: RecordSucceeded, Revision: 2},
		{ID: "b", Status: RecordSucceeded, Revision: 1},
	}
	got, ok := FindRecord(records, "b")
	require.True(t, ok)
	assert.Equal(t, int64(3), got.Revision, "the newest record of that id")
	_, ok = FindRecord(records, "c")
	assert.False(t, ok)
	_, ok = FindRecord(nil, "a")
	assert.False(t, ok)
}

func TestTruncateText(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "short", truncateText("short", 10))
	assert.Equal(t, "abcdefg…", truncateText("abcdefghijklmnop", 10))
	got := truncateText(strings.Repeat("é", 10), 10) // two bytes each
	assert.Equal(t, "ééé…", got)
	assert.LessOrEqual(t, len(got), 10)
}

func TestHistoryKeepsLast50NewestFirst(t *testing.T) {
	t.Parallel()
	c := cluster.Get(t)
	ns := c.NewNamespace(t)
	client := c.Client()

	records, err := ReadHistory(t.Context(), client, ns, "shop")
	require.NoError(t, err)
	assert.Empty(t, records, "no history before the first deployment")

	for n := 1; n <= 55; n++ {
		require.NoError(t, AppendHistory(t.Context(), client, ns, "shop", deployRecord(n, 0)))
	}
	records, err = ReadHistory(t.Context(), client, ns, "shop")
	require.NoError(t, err)
	require.Len(t, records, 50)
	assert.Equal(t, "deploy-55", records[0].ID)
	assert.Equal(t, "deploy-6", records[49].ID)
	for i := 1; i < len(records); i++ {
		assert.True(t, records[i-1].StartedAt.After(records[i].StartedAt), "newest first at %d", i)
	}
	got, ok := FindRecord(records, "deploy-30")
	require.True(t, ok)
	want := deployRecord(30, 0)
	assert.Equal(t, want.Image, got.Image)
	assert.Equal(t, want.PreviousImage, got.PreviousImage)
	assert.Equal(t, want.RunURL, got.RunURL)
	assert.True(t, want.FinishedAt.Equal(got.FinishedAt))
	_, ok = FindRecord(records, "deploy-5")
	assert.False(t, ok, "the oldest records were dropped")

	cm, err := client.CoreV1().ConfigMaps(ns).Get(t.Context(), "greenlight-history-shop", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "greenlight", cm.Labels["app.kubernetes.io/managed-by"])
	lines := strings.Split(strings.TrimSpace(cm.Data["records.json"]), "\n")
	assert.Len(t, lines, 50+2, "one record per line, between the brackets")
}

func TestHistoryConcurrentAppendsKeepEveryRecord(t *testing.T) {
	t.Parallel()
	c := cluster.Get(t)
	ns := c.NewNamespace(t)
	client := c.Client()

	const writers, each = 2, 15
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				assert.NoError(t, AppendHistory(t.Context(), client, ns, "shop", deployRecord(w*100+i, 0)))
			}
		})
	}
	wg.Wait()

	records, err := ReadHistory(t.Context(), client, ns, "shop")
	require.NoError(t, err)
	assert.Len(t, records, writers*each)
	for w := range writers {
		for i := range each {
			_, ok := FindRecord(records, fmt.Sprintf("deploy-%d", w*100+i))
			assert.True(t, ok, "record %d of writer %d", i, w)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestHistoryAppendRedoesAfterConflict(t *testing.T) {
	t.Parallel()
	c := cluster.Get(t)
	ns := c.NewNamespace(t)
	require.NoError(t, AppendHistory(t.Context(), c.Client(), ns, "shop", deployRecord(1, 0)))

	// Between this client's read and its write, another run appends: the
	// write must conflict, and the append be redone on the other's result.
	var (
		interfere sync.Once
		conflicts atomic.Int32
	)
	cfg := c.Config()
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.Method == http.MethodPut {
				interfere.Do(func() {
					assert.NoError(t, AppendHistory(t.Context(), c.Client(), ns, "shop", deployRecord(99, 0)))
				})
			}
			resp, err := rt.RoundTrip(r)
			if err == nil && resp.StatusCode == http.StatusConflict {
				conflicts.Add(1)
			}
			return resp, err
		})
	}
	client, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	require.NoError(t, AppendHistory(t.Context(), client, ns, "shop", deployRecord(2, 0)))

	assert.Equal(t, int32(1), conflicts.Load())
	records, err := ReadHistory(t.Context(), client, ns, "shop")
	require.NoError(t, err)
	assert.Equal(t, []string{"deploy-2", "deploy-99", "deploy-1"}, recordIDs(records))
}

func TestHistoryLargeReports(t *testing.T) {
	t.Parallel()
	c := cluster.Get(t)
	ns := c.NewNamespace(t)
	client := c.Client()

	// A report too large on its own is left out; the record stays.
	huge := deployRecord(1, 1<<20)
	require.NoError(t, AppendHistory(t.Context(), client, ns, "shop", huge))
	records, err := ReadHistory(t.Context(), client, ns, "shop")
	require.NoError(t, err)
	require.Len(t, records, 1)
	assert.Empty(t, records[0].Report)
	assert.True(t, records[0].ReportOmitted)
	assert.Equal(t, huge.Image, records[0].Image)

	// Reports that fit one by one but not together: the oldest give way.
	for n := 2; n <= 5; n++ {
		require.NoError(t, AppendHistory(t.Context(), client, ns, "shop", deployRecord(n, 300<<10)))
	}
	records, err = ReadHistory(t.Context(), client, ns, "shop")
	require.NoError(t, err)
	assert.Equal(t, []string{"deploy-5", "deploy-4", "deploy-3", "deploy-2", "deploy-1"}, recordIDs(records))
	assert.JSONEq(t, string(deployRecord(5, 300<<10).Report), string(records[0].Report), "the newest report is kept whole")
	assert.NotEmpty(t, records[1].Report)
	for _, r := range records[2:] {
		assert.Empty(t, r.Report, r.ID)
		assert.True(t, r.ReportOmitted, r.ID)
	}
	cm, err := client.CoreV1().ConfigMaps(ns).Get(t.Context(), "greenlight-history-shop", metav1.GetOptions{})
	require.NoError(t, err)
	assert.LessOrEqual(t, len(cm.Data["records.json"]), 900<<10)
}

func TestHistoryAppendIsIdempotentAndClean(t *testing.T) {
	t.Parallel()
	c := cluster.Get(t)
	ns := c.NewNamespace(t)
	client := c.Client()

	rec := deployRecord(1, 0)
	rec.Status = RecordRolledBack
	rec.Reason = strings.Repeat("pod crashed; ", 1000)
	rec.RunURL = "https://x-access-token:ghs_secret@github.com/acme/shop/actions/runs/1?token=ghs_secret2"
	rec.Report = json.RawMessage("{\n  \"status\": \"rolled-back\"\n}")
	require.NoError(t, AppendHistory(t.Context(), client, ns, "shop", rec))
	require.NoError(t, AppendHistory(t.Context(), client, ns, "shop", rec), "the same record again, as a retry would")

	records, err := ReadHistory(t.Context(), client, ns, "shop")
	require.NoError(t, err)
	require.Len(t, records, 1)
	got := records[0]
	assert.Equal(t, RecordRolledBack, got.Status)
	assert.Equal(t, "https://github.com/acme/shop/actions/runs/1", got.RunURL)
	assert.Equal(t, `{"status":"rolled-back"}`, string(got.Report), "stored compact")
	assert.LessOrEqual(t, len(got.Reason), 4<<10)
	assert.True(t, strings.HasSuffix(got.Reason, "…"))

	cm, err := client.CoreV1().ConfigMaps(ns).Get(t.Context(), "greenlight-history-shop", metav1.GetOptions{})
	require.NoError(t, err)
	assert.NotContains(t, cm.Data["records.json"], "ghs_secret")

	// Another start of the same deployment id is another record.
	again := deployRecord(1, 0)
	again.StartedAt = again.StartedAt.Add(time.Hour)
	require.NoError(t, AppendHistory(t.Context(), client, ns, "shop", again))
	records, err = ReadHistory(t.Context(), client, ns, "shop")
	require.NoError(t, err)
	assert.Len(t, records, 2)
}

func TestHistoryRejects(t *testing.T) {
	t.Parallel()
	c := cluster.Get(t)
	ns := c.NewNamespace(t)
	client := c.Client()

	err := AppendHistory(t.Context(), client, ns, "shop", Record{Image: "shop:v1"})
	require.ErrorContains(t, err, "no deployment id")

	bad := deployRecord(1, 0)
	bad.Report = json.RawMessage(`{"unterminated":`)
	err = AppendHistory(t.Context(), client, ns, "shop", bad)
	require.ErrorContains(t, err, "not valid JSON")

	// A history someone broke by hand is reported, not overwritten.
	_, err = client.CoreV1().ConfigMaps(ns).Create(t.Context(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "greenlight-history-broken"},
		Data:       map[string]string{"records.json": "not json"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = ReadHistory(t.Context(), client, ns, "broken")
	require.ErrorContains(t, err, "greenlight-history-broken: key records.json is not a JSON array of records")
	err = AppendHistory(t.Context(), client, ns, "broken", deployRecord(1, 0))
	require.ErrorContains(t, err, "not a JSON array")
	cm, err := client.CoreV1().ConfigMaps(ns).Get(t.Context(), "greenlight-history-broken", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "not json", cm.Data["records.json"])
}

func BenchmarkAppendRecord(b *testing.B) {
	records := make([]Record, HistoryLimit)
	for i := range records {
		records[i] = deployRecord(HistoryLimit-i, 16<<10)
	}
	next := deployRecord(HistoryLimit+1, 16<<10)
	b.ReportAllocs()
	for b.Loop() {
		_, lines, err := addRecord(records, next, HistoryLimit, historyBudget)
		if err != nil {
			b.Fatal(err)
		}
		_ = encodeHistory(lines)
	}
}
