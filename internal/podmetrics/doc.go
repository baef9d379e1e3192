// Package podmetrics reads what the serving pods say about the requests
// they served: it scrapes each pod's Prometheus exposition through the API
// server's pod proxy, parses it with expfmt, and diffs the request counter
// and the latency histogram between scrapes, pod by pod.
//
// The package is split like monitor and health: Parse and Tracker are pure
// (an exposition in, constant-size figures out; successive readings in,
// the window's requests out, with counter resets, new and gone pods and
// silent endpoints reported as findings), and Scraper is the thin edge that
// lists the pods and fetches their expositions. It never decides whether a
// release is healthy: Window values go to the monitor, which does.
package podmetrics
