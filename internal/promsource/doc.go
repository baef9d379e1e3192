// Package promsource reads the new version's requests from the team's
// Prometheus: every interval it runs instant queries over the last window
// through the Prometheus HTTP API (/api/v1/query) for the request count, the
// 5xx share and the p95 latency of the pods it is told about, and hands
// the figures on as one window. A Prometheus that cannot be reached, refuses
// the token, fails a query or knows no series is the source's own finding,
// never a figure about the app.
package promsource
