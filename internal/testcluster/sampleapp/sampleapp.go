// Package sampleapp is the service that the test cluster runs in every pod: a
// small payment backend whose version is its image tag and whose behaviour is
// set from the container's environment, so a test can stage a healthy, slow,
// failing or late-breaking version.
package sampleapp

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Environment variables that shape the app's behaviour.
const (
	EnvErrorRate   = "SAMPLEAPP_ERROR_RATE"   // 0..1 fraction of answers that are 500s
	EnvLatency     = "SAMPLEAPP_LATENCY"      // Go duration added to every answer
	EnvReady       = "SAMPLEAPP_READY"        // "false" makes /health/ready answer 503
	EnvFailAfter   = "SAMPLEAPP_FAIL_AFTER"   // healthy for this long, then errors
	EnvHealthToken = "SAMPLEAPP_HEALTH_TOKEN" // bearer token /health/detailed requires
	EnvCrash       = "SAMPLEAPP_CRASH"        // "true": the container crashes (handled by the node)
	EnvErrorScope  = "SAMPLEAPP_ERROR_SCOPE"  // "api": injected failures spare /health and /metrics
)

// Config is the behaviour of one app instance.
type Config struct {
	// Version is reported by /health; the node sets it to the image tag.
	Version string
	// ErrorRate is the fraction of answers that fail with 500, exactly: of
	// every n requests, round(n*ErrorRate) fail, spread evenly.
	ErrorRate float64
	// Latency is added to every answer.
	Latency time.Duration
	// NotReady makes /health/ready answer 503.
	NotReady bool
	// FailAfter, when positive, keeps the app healthy for that long after it
	// started and then applies ErrorRate (1.0 when ErrorRate is zero).
	FailAfter time.Duration
	// HealthToken, when set, is required as a bearer token by /health/detailed.
	HealthToken string
	// Crash asks the node to run this container as crashing.
	Crash bool
	// APIErrorsOnly keeps injected failures off /health* and /metrics: a
	// version whose users' requests fail while its health checks pass.
	APIErrorsOnly bool
	// Log receives what the app prints, as a process's stdout would: a
	// start line and a line per health check it fails. Nil prints nothing.
	Log io.Writer
	// Addr is where the app listens as its process sees it (":8080"); it
	// is only printed.
	Addr string
}

// ConfigFromEnv reads a Config from container environment variables.
// Malformed values are errors naming the variable, as a kubelet would refuse them.
func ConfigFromEnv(version string, env map[string]string) (Config, error) {
	cfg := Config{Version: version, HealthToken: env[EnvHealthToken]}
	if v := env[EnvErrorRate]; v != "" {
		rate, err := strconv.ParseFloat(v, 64)
		if err != nil || rate < 0 || rate > 1 || math.IsNaN(rate) {
			return Config{}, fmt.Errorf("%s=%q: want a fraction between 0 and 1", EnvErrorRate, v)
		}
		cfg.ErrorRate = rate
	}
	if v := env[EnvLatency]; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return Config{}, fmt.Errorf("%s=%q: want a Go duration such as 200ms", EnvLatency, v)
		}
		cfg.Latency = d
	}
	if v := env[EnvFailAfter]; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return Config{}, fmt.Errorf("%s=%q: want a Go duration such as 30s", EnvFailAfter, v)
		}
		cfg.FailAfter = d
	}
	cfg.NotReady = strings.EqualFold(env[EnvReady], "false")
	cfg.Crash = strings.EqualFold(env[EnvCrash], "true")
	switch v := env[EnvErrorScope]; v {
	case "", "all":
	case "api":
		cfg.APIErrorsOnly = true
	default:
		return Config{}, fmt.Errorf("%s=%q: want all or api", EnvErrorScope, v)
	}
	return cfg, nil
}

// App is one running instance. It is an http.Handler.
type App struct {
	cfg     Config
	started time.Time
	now     func() time.Time
	mux     *http.ServeMux

	log *log.Logger

	mu       sync.Mutex
	requests int // answers subject to the error rate so far
	// served counts answers by status and latency bucket for /metrics, in
	// Prometheus' conventions (what podinfo exports).
	served map[int]*served
}

// served is the answers of one status: a count and latency buckets.
type served struct {
	count   uint64
	sum     float64
	buckets [len(latencyBounds)]uint64
}

// latencyBounds are client_golang's default buckets, in seconds.
var latencyBounds = [...]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// New returns an app started now.
func New(cfg Config) *App {
	return newWithClock(cfg, time.Now)
}

func newWithClock(cfg Config, now func() time.Time) *App {
	out := cfg.Log
	if out == nil {
		out = io.Discard
	}
	a := &App{cfg: cfg, started: now(), now: now, mux: http.NewServeMux(), log: log.New(out, "", log.LstdFlags), served: map[int]*served{}}
	a.log.Printf("sampleapp: version %s listening on %s", cfg.Version, cfg.Addr)
	a.mux.HandleFunc("GET /health", a.health)
	a.mux.HandleFunc("GET /health/ready", a.ready)
	a.mux.HandleFunc("GET /health/detailed", a.detailed)
	a.mux.HandleFunc("GET /api/payments", a.payments)
	a.mux.HandleFunc("POST /api/payments", a.payments)
	a.mux.HandleFunc("GET /{$}", a.root)
	a.mux.HandleFunc("GET /metrics", a.metrics)
	return a
}

// Version is the version the app reports.
func (a *App) Version() string { return a.cfg.Version }

// ServeHTTP answers one request, after the configured latency.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/metrics" {
		a.mux.ServeHTTP(w, r)
		return
	}
	start := time.Now()
	rec := &statusWriter{ResponseWriter: w, code: http.StatusOK}
	a.serve(rec, r)
	a.count(rec.code, time.Since(start))
}

func (a *App) serve(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Latency > 0 {
		select {
		case <-time.After(a.cfg.Latency):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("X-App-Version", a.cfg.Version)
	spared := a.cfg.APIErrorsOnly && (r.URL.Path == "/health" || strings.HasPrefix(r.URL.Path, "/health/"))
	if !spared && a.shouldFail() {
		a.logHealthFailure(r, http.StatusInternalServerError, "injected failure")
		writeJSON(w, http.StatusInternalServerError, "application/json",
			map[string]string{"status": "error", "version": a.cfg.Version, "error": "injected failure"})
		return
	}
	a.mux.ServeHTTP(w, r)
}

// statusWriter remembers the status an answer was sent with.
type statusWriter struct {
	http.ResponseWriter
	code int
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// count records one answer for /metrics.
func (a *App) count(code int, took time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.served[code]
	if s == nil {
		s = &served{}
		a.served[code] = s
	}
	s.count++
	s.sum += took.Seconds()
	for i, ub := range latencyBounds {
		if took.Seconds() <= ub {
			s.buckets[i]++
		}
	}
}

// metrics answers a Prometheus text exposition of the answers so far:
// http_requests_total by status and http_request_duration_seconds.
func (a *App) metrics(w http.ResponseWriter, _ *http.Request) {
	a.mu.Lock()
	codes := make([]int, 0, len(a.served))
	for c := range a.served {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	var b strings.Builder
	b.WriteString("# HELP http_requests_total The total number of HTTP requests.\n# TYPE http_requests_total counter\n")
	for _, c := range codes {
		fmt.Fprintf(&b, "http_requests_total{status=\"%d\"} %d\n", c, a.served[c].count)
	}
	b.WriteString("# HELP http_request_duration_seconds Seconds spent serving HTTP requests.\n# TYPE http_request_duration_seconds histogram\n")
	for _, c := range codes {
		s := a.served[c]
		for i, ub := range latencyBounds {
			fmt.Fprintf(&b, "http_request_duration_seconds_bucket{status=\"%d\",le=\"%g\"} %d\n", c, ub, s.buckets[i])
		}
		fmt.Fprintf(&b, "http_request_duration_seconds_bucket{status=\"%d\",le=\"+Inf\"} %d\n", c, s.count)
		fmt.Fprintf(&b, "http_request_duration_seconds_sum{status=\"%d\"} %g\n", c, s.sum)
		fmt.Fprintf(&b, "http_request_duration_seconds_count{status=\"%d\"} %d\n", c, s.count)
	}
	a.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = io.WriteString(w, b.String())
}

// shouldFail spreads failures evenly: request n fails when
// floor(n*rate) moves past floor((n-1)*rate), so any run of requests fails
// at the configured fraction without randomness.
func (a *App) shouldFail() bool {
	rate := a.cfg.ErrorRate
	if a.cfg.FailAfter > 0 {
		if a.now().Sub(a.started) < a.cfg.FailAfter {
			return false
		}
		if rate == 0 {
			rate = 1
		}
	}
	if rate <= 0 {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.requests++
	n := float64(a.requests)
	return math.Floor(n*rate) > math.Floor((n-1)*rate)
}

// logHealthFailure prints a failed health check, so the container's log
// says why its probes fail.
func (a *App) logHealthFailure(r *http.Request, code int, why string) {
	if r.URL.Path == "/health" || strings.HasPrefix(r.URL.Path, "/health/") {
		a.log.Printf("sampleapp: %s %s answered %d: %s", r.Method, r.URL.Path, code, why)
	}
}

func (a *App) health(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, "application/json", map[string]string{"status": "ok", "version": a.cfg.Version})
}

func (a *App) ready(w http.ResponseWriter, r *http.Request) {
	if a.cfg.NotReady {
		a.logHealthFailure(r, http.StatusServiceUnavailable, "not ready ("+EnvReady+"=false)")
		writeJSON(w, http.StatusServiceUnavailable, "application/json", map[string]string{"status": "not ready", "version": a.cfg.Version})
		return
	}
	writeJSON(w, http.StatusOK, "application/json", map[string]string{"status": "ready", "version": a.cfg.Version})
}

// detailed answers in application/health+json, the draft RFC format.
func (a *App) detailed(w http.ResponseWriter, r *http.Request) {
	if a.cfg.HealthToken != "" && r.Header.Get("Authorization") != "Bearer "+a.cfg.HealthToken {
		w.Header().Set("WWW-Authenticate", `Bearer realm="health"`)
		writeJSON(w, http.StatusUnauthorized, "application/json", map[string]string{"status": "unauthorized"})
		return
	}
	now := a.now().UTC().Format(time.RFC3339)
	check := func(componentType string, value any, unit string) []map[string]any {
		return []map[string]any{{"componentType": componentType, "observedValue": value, "observedUnit": unit, "status": "pass", "time": now}}
	}
	writeJSON(w, http.StatusOK, "application/health+json", map[string]any{
		"status":    "pass",
		"version":   a.cfg.Version,
		"serviceId": "sampleapp",
		"checks": map[string]any{
			"database:responseTime":          check("datastore", 3, "ms"),
			"external-services:responseTime": check("component", 12, "ms"),
			"system:uptime":                  check("system", int(a.now().Sub(a.started).Seconds()), "s"),
		},
	})
}

func (a *App) payments(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		writeJSON(w, http.StatusCreated, "application/json", map[string]any{"id": "pay_1", "status": "accepted", "version": a.cfg.Version})
		return
	}
	writeJSON(w, http.StatusOK, "application/json", map[string]any{
		"version": a.cfg.Version,
		"data":    map[string]any{"items": []map[string]any{{"id": "pay_1", "amount": 1200, "currency": "EUR"}}},
	})
}

func (a *App) root(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, "application/json", map[string]string{"service": "sampleapp", "version": a.cfg.Version})
}

func writeJSON(w http.ResponseWriter, code int, contentType string, v any) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
