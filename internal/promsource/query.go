package promsource

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Queries are the PromQL templates run every interval. In each, {{pods}}
// becomes a regex matching exactly the pods' names and {{window}} the range,
// such as 30s.
type Queries struct {
	// Requests counts the requests served in the window.
	Requests string
	// ErrorShare is the share (0 to 1) of them answered with a 5xx.
	ErrorShare string
	// Latency is their p95 response time in seconds.
	Latency string
}

// DefaultQueries builds the queries from the names of the request counter,
// its status label and the latency histogram, over the `pod` label that
// Prometheus's Kubernetes discovery gives a pod's series when relabelled
// from __meta_kubernetes_pod_name. A window without a single 5xx has no 5xx
// series: `or vector(0)` makes its share 0 rather than no answer.
func DefaultQueries(requests, statusLabel, duration string) Queries {
	sel := `{pod=~"{{pods}}"}`
	errSel := `{pod=~"{{pods}}",` + statusLabel + `=~"5.."}`
	return Queries{
		Requests:   "sum(increase(" + requests + sel + "[{{window}}]))",
		ErrorShare: "(sum(rate(" + requests + errSel + "[{{window}}])) or vector(0)) / sum(rate(" + requests + sel + "[{{window}}]))",
		Latency:    "histogram_quantile(0.95, sum by (le) (rate(" + duration + "_bucket" + sel + "[{{window}}])))",
	}
}

// Expand fills a template in with the pods and the window. Each pod name is
// regex-escaped, then escaped again for the double-quoted PromQL string the
// placeholder sits in (PromQL strings take Go's escapes, so the regex's
// backslashes are doubled). Prometheus anchors label regexes itself. Pure.
func Expand(template string, pods []string, window time.Duration) string {
	alts := make([]string, len(pods))
	for i, p := range pods {
		alts[i] = strings.ReplaceAll(regexp.QuoteMeta(p), `\`, `\\`)
	}
	return strings.NewReplacer("{{pods}}", strings.Join(alts, "|"), "{{window}}", Range(window)).Replace(template)
}

// Range is a window as a PromQL range in whole seconds, rounded up, at
// least one second. Pure.
func Range(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	return strconv.FormatInt(max(s, 1), 10) + "s"
}
