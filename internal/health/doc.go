// Package health checks a deployed service over HTTP.
//
// It probes the service's health endpoints (/health, /health/ready and
// /health/detailed), times each request with net/http/httptrace, parses
// detailed component health in plain JSON or application/health+json, finds
// the version the service reports, verifies that traffic reaches an expected
// version and runs smoke tests described in YAML.
//
// The package only reports what it observed. Whether a result means "roll
// back" or "carry on" is for the caller to decide.
//
// Every request uses a fresh connection. Behind a connection-balancing proxy
// such as kube-proxy a reused connection would keep talking to one pod, and a
// traffic check would prove nothing about the others.
//
// Nothing this package returns contains a bearer token, a URL's userinfo or a
// URL's query: results are written to job summaries and pull requests.
package health
