package kube

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// HistoryLimit is how many records a deployment's history keeps; older ones
// are dropped.
const HistoryLimit = 50

const (
	// historyKey is the ConfigMap key holding the records, newest first.
	historyKey = "records.json"
	// historyBudget keeps the records well under the 1 MiB an object may
	// take in etcd, leaving room for metadata.
	historyBudget = 900 << 10
	// historyReasonLimit bounds a record's reason, which may quote logs, so
	// one record can never fill the history alone.
	historyReasonLimit = 4 << 10
	// historyAttempts bounds how often an append re-reads after losing a
	// race with another writer; each loss means another append succeeded.
	historyAttempts = 20
)

// RecordStatus is how a deployment ended.
type RecordStatus string

// The ways a deployment ends.
const (
	// RecordSucceeded means the new version was deployed and stayed healthy.
	RecordSucceeded RecordStatus = "succeeded"
	// RecordFailed means the deployment failed without a rollback.
	RecordFailed RecordStatus = "failed"
	// RecordRolledBack means the new version was rolled back.
	RecordRolledBack RecordStatus = "rolled-back"
	// RecordRollbackFailed means the rollback itself failed.
	RecordRollbackFailed RecordStatus = "rollback-failed"
)

// Record is one deployment in a Deployment's history.
type Record struct {
	// ID identifies the deployment, such as the commit SHA.
	ID string `json:"id"`
	// Environment is the environment deployed to.
	Environment string `json:"environment,omitempty"`
	// Image is the image deployed.
	Image string `json:"image"`
	// PreviousImage is the image that ran before.
	PreviousImage string `json:"previousImage,omitempty"`
	// Strategy is "rolling" or "blue-green".
	Strategy string `json:"strategy,omitempty"`
	// Status is how the deployment ended.
	Status RecordStatus `json:"status"`
	// Reason explains a failure or rollback.
	Reason string `json:"reason,omitempty"`
	// Revision is the Deployment revision the rollout made.
	Revision int64 `json:"revision,omitempty"`
	// EnvSecret is the Secret holding the app-env this deployment ran
	// with; only its name, never a value.
	EnvSecret string `json:"envSecret,omitempty"`
	// ActiveColor is the colour serving traffic afterwards (blue-green).
	ActiveColor string `json:"activeColor,omitempty"`
	// Actor is who started the run.
	Actor string `json:"actor,omitempty"`
	// RunURL links to the workflow run; credentials and query are dropped.
	RunURL string `json:"runURL,omitempty"`
	// StartedAt is when the deployment started.
	StartedAt time.Time `json:"startedAt,omitzero"`
	// FinishedAt is when it ended.
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	// Report is the run's JSON report, if any. It is left out when the
	// history would grow too large, oldest records' reports first.
	Report json.RawMessage `json:"report,omitempty"`
	// ReportOmitted is set when Report was left out for size.
	ReportOmitted bool `json:"reportOmitted,omitempty"`
}

// HistoryName is the ConfigMap holding a Deployment's history.
func HistoryName(deployment string) string { return "greenlight-history-" + deployment }

// FindRecord returns the newest record with the given deployment id.
func FindRecord(records []Record, id string) (Record, bool) {
	for _, r := range records {
		if r.ID == id {
			return r, true
		}
	}
	return Record{}, false
}

// sameRecord tells whether two records are one deployment, so a retried
// append replaces rather than repeats it.
func sameRecord(a, b Record) bool {
	return a.ID == b.ID && a.Environment == b.Environment && a.StartedAt.Equal(b.StartedAt)
}

// addRecord puts rec first, dropping an earlier copy of it, and fits the
// result into limit records and budget bytes (see fitHistory).
func addRecord(records []Record, rec Record, limit, budget int) ([]Record, [][]byte, error) {
	out := make([]Record, 0, len(records)+1)
	out = append(out, rec)
	for _, r := range records {
		if !sameRecord(r, rec) {
			out = append(out, r)
		}
	}
	return fitHistory(out, limit, budget)
}

// fitHistory keeps the newest limit records and makes their encoding fit in
// budget bytes: it leaves out reports from the oldest record on, the newest
// record's last, and only then drops the oldest records (the newest always
// stays). It returns the records and each one's JSON line for
// encodeHistory, so nothing is marshalled twice.
func fitHistory(records []Record, limit, budget int) ([]Record, [][]byte, error) {
	if len(records) > limit {
		records = records[:limit]
	}
	records = append([]Record(nil), records...)
	lines := make([][]byte, len(records))
	total := historyOverhead(len(records))
	for i, r := range records {
		line, err := json.Marshal(r)
		if err != nil {
			return nil, nil, fmt.Errorf("encode history record %q: %w", r.ID, err)
		}
		lines[i] = line
		total += len(line)
	}
	for i := len(records) - 1; i >= 0 && total > budget; i-- {
		if len(records[i].Report) == 0 {
			continue
		}
		records[i].Report, records[i].ReportOmitted = nil, true
		line, err := json.Marshal(records[i])
		if err != nil {
			return nil, nil, fmt.Errorf("encode history record %q: %w", records[i].ID, err)
		}
		total += len(line) - len(lines[i])
		lines[i] = line
	}
	for len(records) > 1 && total > budget {
		last := len(records) - 1
		total -= len(lines[last]) + historyOverhead(len(records)) - historyOverhead(len(records)-1)
		records, lines = records[:last], lines[:last]
	}
	return records, lines, nil
}

// historyOverhead is what encodeHistory adds around n records' lines.
func historyOverhead(n int) int {
	if n == 0 {
		return len("[]\n")
	}
	return len("[\n") + (n-1)*len(",\n") + len("\n]\n")
}

// encodeHistory writes a JSON array with one record per line, so `kubectl
// get configmap -o yaml` stays readable.
func encodeHistory(lines [][]byte) []byte {
	if len(lines) == 0 {
		return []byte("[]\n")
	}
	size := historyOverhead(len(lines))
	for _, line := range lines {
		size += len(line)
	}
	b := bytes.NewBuffer(make([]byte, 0, size))
	b.WriteString("[\n")
	for i, line := range lines {
		if i > 0 {
			b.WriteString(",\n")
		}
		b.Write(line)
	}
	b.WriteString("\n]\n")
	return b.Bytes()
}

func decodeHistory(cm *corev1.ConfigMap) ([]Record, error) {
	data, ok := cm.Data[historyKey]
	if !ok || data == "" {
		return nil, nil
	}
	var records []Record
	if err := json.Unmarshal([]byte(data), &records); err != nil {
		return nil, fmt.Errorf("history %s/%s: key %s is not a JSON array of records: %w", cm.Namespace, cm.Name, historyKey, err)
	}
	return records, nil
}

// AppendHistory adds rec as the newest record of deployment's history in
// namespace, creating the ConfigMap on first use. It keeps the last
// HistoryLimit records and stays under ~900 KiB by leaving out reports,
// oldest first. Concurrent appends are safe: a write that lost a race is
// redone on what the winner wrote. A record with the ID, Environment and
// StartedAt of a stored one replaces it, so a retried append stores it once.
func AppendHistory(ctx context.Context, client kubernetes.Interface, namespace, deployment string, rec Record) error {
	name := HistoryName(deployment)
	where := namespace + "/" + name
	if rec.ID == "" {
		return fmt.Errorf("append to history %s: the record has no deployment id", where)
	}
	rec.RunURL = publicURL(rec.RunURL)
	rec.Reason = truncateText(rec.Reason, historyReasonLimit)
	if len(rec.Report) > 0 {
		var compact bytes.Buffer
		if err := json.Compact(&compact, rec.Report); err != nil {
			return fmt.Errorf("append to history %s: record %q: the report is not valid JSON: %w", where, rec.ID, err)
		}
		rec.Report = compact.Bytes()
	}
	configMaps := client.CoreV1().ConfigMaps(namespace)

	for attempt := 1; ; attempt++ {
		var cm *corev1.ConfigMap
		err := Retry(ctx, RetryPolicy{}, func(ctx context.Context) (err error) {
			cm, err = configMaps.Get(ctx, name, metav1.GetOptions{})
			return err
		})
		exists := true
		switch {
		case apierrors.IsNotFound(err):
			exists = false
			cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
				Name:      name,
				Namespace: namespace,
				Labels:    managedLabels(),
			}}
		case err != nil:
			return fmt.Errorf("read history %s: %w", where, ClassifyAPIError(err))
		}
		records, err := decodeHistory(cm)
		if err != nil {
			return err
		}
		_, lines, err := addRecord(records, rec, HistoryLimit, historyBudget)
		if err != nil {
			return fmt.Errorf("append to history %s: %w", where, err)
		}
		data := encodeHistory(lines)
		next := cm.DeepCopy()
		if next.Data == nil {
			next.Data = map[string]string{}
		}
		next.Data[historyKey] = string(data)

		err = Retry(ctx, RetryPolicy{}, func(ctx context.Context) error {
			var err error
			if exists {
				_, err = configMaps.Update(ctx, next, metav1.UpdateOptions{})
			} else {
				_, err = configMaps.Create(ctx, next, metav1.CreateOptions{})
			}
			return err
		})
		if err == nil {
			return nil
		}
		if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) && !apierrors.IsNotFound(err) {
			return fmt.Errorf("write history %s: %w", where, ClassifyAPIError(err))
		}
		if attempt >= historyAttempts {
			return fmt.Errorf("write history %s: still conflicting with other writers after %d attempts: %w", where, attempt, err)
		}
		// Another writer won: wait a little, spread out, and redo on its
		// result.
		pause := time.Duration(attempt) * (5*time.Millisecond + rand.N(20*time.Millisecond))
		select {
		case <-ctx.Done():
			return fmt.Errorf("write history %s: %w", where, errors.Join(ctx.Err(), err))
		case <-time.After(pause):
		}
	}
}

// truncateText cuts s to at most limit bytes on a character boundary,
// marking the cut with an ellipsis.
func truncateText(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	const mark = "…"
	cut := limit - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// ReadHistory returns deployment's history in namespace, newest first;
// none at all before the first AppendHistory.
func ReadHistory(ctx context.Context, client kubernetes.Interface, namespace, deployment string) ([]Record, error) {
	name := HistoryName(deployment)
	var cm *corev1.ConfigMap
	err := Retry(ctx, RetryPolicy{}, func(ctx context.Context) (err error) {
		cm, err = client.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read history %s/%s: %w", namespace, name, ClassifyAPIError(err))
	}
	return decodeHistory(cm)
}
