package config

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// Kind is the form an input's value takes. Generators of action.yml and
// CLI flags use it, for example to let a boolean flag stand without a value.
type Kind string

const (
	// KindString is free text, a name, a path or a URL.
	KindString Kind = "string"
	// KindSecret is a credential: never printed, never allowed in the file.
	KindSecret Kind = "secret"
	// KindBool is true or false, see AcceptedBool.
	KindBool Kind = "bool"
	// KindDuration is a length of time, see AcceptedDuration.
	KindDuration Kind = "duration"
	// KindPercent is a percentage stored as a fraction, see AcceptedPercent.
	KindPercent Kind = "percent"
	// KindInt is a whole number.
	KindInt Kind = "int"
	// KindList is a list separated by commas or new lines.
	KindList Kind = "list"
)

// DefaultConfigPath is the config file read when the config input is not
// set; it is skipped without error when it does not exist.
const DefaultConfigPath = ".github/greenlight.yml"

// The value forms shared by many inputs; errors quote them verbatim.
const (
	// AcceptedBool describes boolean values.
	AcceptedBool = "true or false (also yes/no, on/off, 1/0, in any case)"
	// AcceptedDuration describes durations.
	AcceptedDuration = "a Go duration such as 90s or 5m, or whole seconds such as 300"
	// AcceptedPercent describes percentages: "10" and "10%" are both ten
	// percent, "0.1" (a number from 0 to 1 with a decimal point) is a
	// fraction and also ten percent, and a bare "1" is refused because it
	// could mean either.
	AcceptedPercent = "a percentage from 0% to 100% such as 10% or 10, or a fraction with a decimal point such as 0.1 (write 1% or 100%, not a bare 1)"
)

// Input describes one input of the Action, which is also a flag of the CLI
// and a key of the config file. Names returns them all; Load parses with
// the same list, so documentation and behaviour cannot drift apart.
//
// Generated action.yml files must not declare a `default:`: the runner
// would then set INPUT_* for every run, and an explicit input beats the
// config file. Default is shown in the description instead.
type Input struct {
	// Name is the kebab-case name: the action.yml input, the CLI flag and
	// the config file key.
	Name string
	// Description is one or more full sentences for action.yml and --help.
	Description string
	// Default describes the value used when the input is not set; it is
	// empty when there is none.
	Default string
	// Accepted describes the accepted forms, as error messages quote them.
	Accepted string
	// Kind is the form of the value.
	Kind Kind
	// Required inputs must be set on every run.
	Required bool
	// InFile reports whether the config file may set this input; secrets
	// and per-run inputs (environment, command, config, deployment-id) may not.
	InFile bool

	// defaultFor computes a default that depends on the environment or the
	// commit; when nil, Default itself is the default value.
	defaultFor func(env, sha string) string
	// set parses v into c and returns a problem sentence, or "" when v is
	// fine. shown is how v may appear in the sentence.
	set func(c *Config, v, shown string) string
}

// Names returns every input in documentation order. The slice is new on
// every call, so callers may change it freely.
func Names() []Input {
	none := func(string, string) string { return "" }
	return []Input{
		{
			Name:        "environment",
			Description: "Name of the target environment, such as staging or production. It selects the per-environment defaults and the environments section of the config file.",
			Accepted:    "an environment name such as staging or production",
			Kind:        KindString,
			Required:    true,
			set:         text(func(c *Config) *string { return &c.Environment }, checkText),
		},
		{
			Name:        "kubeconfig",
			Description: "Kubeconfig of the target cluster, as YAML or base64-encoded YAML. Pass it from a GitHub secret; it is masked in logs. Required unless auth is github-oidc. A user that runs aws eks get-token, aws-iam-authenticator, gke-gcloud-auth-plugin or kubelogin get-token is served in process from the credentials the cloud's login action leaves in the environment.",
			Accepted:    "the content of a kubeconfig file, as YAML or base64",
			Kind:        KindSecret,
			set: func(c *Config, v, _ string) string {
				c.Kubeconfig = Secret(v)
				return ""
			},
		},
		{
			Name:        "context",
			Description: "Kubeconfig context to use. When empty, the kubeconfig's current context is used.",
			Accepted:    "a context name from the kubeconfig",
			Kind:        KindString,
			InFile:      true,
			set:         text(func(c *Config) *string { return &c.Context }, checkText),
		},
		{
			Name:        "auth",
			Description: "How greenlight authenticates to the API server: kubeconfig uses the kubeconfig's user; github-oidc presents the job's GitHub OIDC ID token as a bearer token, refreshed before it expires, so no long-lived credential is stored. github-oidc needs `permissions: id-token: write` on the job and a cluster that trusts https://token.actions.githubusercontent.com (see the README, Connect to your cluster).",
			Default:     "kubeconfig",
			Accepted:    "kubeconfig or github-oidc",
			Kind:        KindString,
			InFile:      true,
			set: func(c *Config, v, shown string) string {
				switch a := Auth(strings.ToLower(v)); a {
				case AuthKubeconfig, AuthGitHubOIDC:
					c.Auth = a
					return ""
				}
				return shown + " is not an authentication method"
			},
		},
		{
			Name:        "audience",
			Description: "Audience (aud claim) of the GitHub OIDC ID token, with auth github-oidc; it must be one the cluster's JWT authenticator accepts.",
			Default:     "the API server URL",
			Accepted:    "the audience the cluster expects, such as https://kubernetes.example.com or sts.amazonaws.com",
			Kind:        KindString,
			InFile:      true,
			// The server is known only once the kubeconfig is read.
			defaultFor: func(string, string) string { return "" },
			set:        text(func(c *Config) *string { return &c.Audience }, checkText),
		},
		{
			Name:        "server",
			Description: "API server URL, with auth github-oidc when no kubeconfig is given.",
			Accepted:    "an https:// URL such as https://kubernetes.example.com:6443",
			Kind:        KindString,
			InFile:      true,
			set: func(c *Config, v, shown string) string {
				u, problem := parseHTTPURL(v)
				if problem != "" {
					return shown + " " + problem
				}
				if u.Scheme != "https" {
					return shown + " is not an https:// URL; a bearer token is never sent in the clear"
				}
				c.Server = strings.TrimSuffix(u.String(), "/")
				return ""
			},
		},
		{
			Name:        "certificate-authority-data",
			Description: "Certificate authority of the API server, base64 of the PEM as in a kubeconfig's certificate-authority-data, with server. When empty, the system's roots are trusted.",
			Accepted:    "base64 of one or more PEM certificates",
			Kind:        KindString,
			InFile:      true,
			set: func(c *Config, v, shown string) string {
				pem, problem := parseCertificateAuthority(v)
				if problem != "" {
					return shown + " " + problem
				}
				c.CertificateAuthority = pem
				return ""
			},
		},
		{
			Name:        "namespace",
			Description: "Kubernetes namespace of the workload.",
			Default:     "default",
			Accepted:    "a namespace name: lowercase letters, digits and '-', at most 63 characters",
			Kind:        KindString,
			InFile:      true,
			set:         text(func(c *Config) *string { return &c.Namespace }, func(v string) string { return checkDNSLabel(v, false) }),
		},
		{
			Name:        "deployment",
			Description: "Name of the Deployment to update. Required unless manifests contain it.",
			Accepted:    "a Deployment name: lowercase letters, digits, '-' and '.', at most 253 characters",
			Kind:        KindString,
			InFile:      true,
			set:         text(func(c *Config) *string { return &c.Deployment }, checkDNSSubdomain),
		},
		{
			Name:        "container",
			Description: "Container whose image is replaced. When empty, the Deployment's first container is used.",
			Accepted:    "a container name: lowercase letters, digits and '-', at most 63 characters",
			Kind:        KindString,
			InFile:      true,
			set:         text(func(c *Config) *string { return &c.Container }, func(v string) string { return checkDNSLabel(v, false) }),
		},
		{
			Name:        "image",
			Description: "Image to deploy, with a tag or digest. The deploy command needs an image or manifests; with both, the image replaces the container's image in the manifests.",
			Accepted:    "an image reference such as ghcr.io/acme/api:1.4.2 or ghcr.io/acme/api@sha256:<digest>",
			Kind:        KindString,
			InFile:      true,
			set:         text(func(c *Config) *string { return &c.Image }, checkImage),
		},
		{
			Name:        "manifests",
			Description: "Kubernetes manifests to apply with server-side apply: files, directories or glob patterns, separated by commas or new lines.",
			Accepted:    "file, directory or glob paths separated by commas or new lines, such as k8s/ or deploy/*.yaml",
			Kind:        KindList,
			InFile:      true,
			set:         list(func(c *Config) *[]string { return &c.Manifests }, checkManifest),
		},
		{
			Name:        "strategy",
			Description: "How the new version replaces the old one: rolling updates pods in place; blue-green starts the new version beside the old one and switches the Service once it is healthy.",
			Default:     "blue-green for production, rolling for every other environment",
			Accepted:    "rolling or blue-green",
			Kind:        KindString,
			InFile:      true,
			defaultFor: func(env, _ string) string {
				if isProduction(env) {
					return string(BlueGreen)
				}
				return string(Rolling)
			},
			set: func(c *Config, v, shown string) string {
				switch s := Strategy(strings.ToLower(v)); s {
				case Rolling, BlueGreen:
					c.Strategy = s
					return ""
				}
				return shown + " is not a known strategy"
			},
		},
		{
			Name:        "service",
			Description: "Service that routes traffic to the workload. Blue-green switches its selector; health checks without a url go through it.",
			Default:     "the deployment name",
			Accepted:    "a Service name: lowercase letters, digits and '-', starting with a letter, at most 63 characters",
			Kind:        KindString,
			InFile:      true,
			defaultFor:  none,
			set:         text(func(c *Config) *string { return &c.Service }, func(v string) string { return checkDNSLabel(v, true) }),
		},
		{
			Name:        "service-port",
			Description: "Service port used when health checks go through the API server's service proxy. When empty, the Service's first port is used.",
			Accepted:    "a port number from 1 to 65535",
			Kind:        KindInt,
			InFile:      true,
			set:         count(func(c *Config) *int { return &c.ServicePort }, 1, 65535),
		},
		{
			Name:        "replicas",
			Description: "Replica count of the Deployment, applied on deploy (unless a HorizontalPodAutoscaler owns its scaling: then a warning) and by the scale command. When empty, the current count is kept; blue-green starts the new color at the serving color's count.",
			Accepted:    "a whole number of 1 or more",
			Kind:        KindInt,
			InFile:      true,
			set:         count(func(c *Config) *int { return &c.Replicas }, 1, math.MaxInt32),
		},
		{
			Name:        "app-env",
			Description: "Environment variables of the application, one NAME=VALUE per line, typically from GitHub secrets; needs manifests. They become an immutable Secret of this deploy, named by a keyed hash of its content, that the new pods read through envFrom: a rollback returns to the values of the version it returns to. Masked in logs; refused in the config file.",
			Accepted:    "lines of NAME=VALUE, each NAME a letter or '_' followed by letters, digits or '_', given once; empty lines and lines starting with # are skipped",
			Kind:        KindSecret,
			set: func(c *Config, v, shown string) string {
				vars, problem := ParseAppEnv(v)
				if problem != "" {
					return shown + " " + problem
				}
				c.AppEnv = vars
				return ""
			},
		},
		{
			Name:        "url",
			Description: "Public URL of the environment. It becomes the GitHub Deployment's environment URL and the base of the health checks; when empty, health checks go through the API server's service proxy.",
			Accepted:    "an absolute http:// or https:// URL without user name, password, query or fragment, such as https://staging.example.com",
			Kind:        KindString,
			InFile:      true,
			set: func(c *Config, v, shown string) string {
				u, problem := parseEnvironmentURL(v)
				if problem != "" {
					return shown + " " + problem
				}
				c.URL = u
				return ""
			},
		},
		{
			Name:        "health-check-token",
			Description: "Bearer token sent to /health/detailed. Pass it from a GitHub secret; it is masked in logs.",
			Accepted:    "a token without spaces",
			Kind:        KindSecret,
			set:         secret(func(c *Config) *Secret { return &c.HealthCheckToken }, checkToken),
		},
		{
			Name:        "health-paths",
			Description: "Health endpoints checked after a rollout and while monitoring, separated by commas.",
			Default:     "/health,/health/ready,/health/detailed",
			Accepted:    "URL paths starting with / separated by commas, such as /health,/health/ready",
			Kind:        KindList,
			InFile:      true,
			set:         list(func(c *Config) *[]string { return &c.HealthPaths }, checkHealthPath),
		},
		{
			Name:        "required-components",
			Description: "Components of the detailed health answer that must be there and working, separated by commas. Missing or failing fails verify naming the component; warn or degraded is a warning.",
			Accepted:    "component names separated by commas, such as database,tosspayments",
			Kind:        KindList,
			InFile:      true,
			set:         list(func(c *Config) *[]string { return &c.RequiredComponents }, checkToken),
		},
		{
			Name:        "version-check",
			Description: "How verify proves traffic reaches the new version. auto: by the version the app reports when the version serving before the deploy reports its own image tag, otherwise from the cluster (the Service's EndpointSlices list only ready pods of the new version, and 10 answers in a row are healthy). off: always from the cluster. json:<field>[@<path>] or header:<name>[@<path>]: the new version must report expected-version in that JSON field or header of the path (default the first health path).",
			Default:     "auto",
			Accepted:    "auto, off, json:<field>[@<path>] or header:<name>[@<path>], such as json:version@/version",
			Kind:        KindString,
			InFile:      true,
			set: func(c *Config, v, shown string) string {
				vc, problem := ParseVersionCheck(v)
				if problem != "" {
					return shown + " " + problem
				}
				c.VersionCheck = vc
				return ""
			},
		},
		{
			Name:        "expected-version",
			Description: "The version the new version must report when version-check names a field or header. When empty, the image's tag.",
			Accepted:    "a version without spaces, such as 6.9.2",
			Kind:        KindString,
			InFile:      true,
			set:         text(func(c *Config) *string { return &c.ExpectedVersion }, checkToken),
		},
		{
			Name:        "smoke-tests",
			Description: "Path of the smoke test file run against the new version. When empty, no smoke tests run.",
			Accepted:    "a file path such as .github/smoke-tests.yml",
			Kind:        KindString,
			InFile:      true,
			set:         text(func(c *Config) *string { return &c.SmokeTests }, checkText),
		},
		{
			Name:        "skip-tests",
			Description: "Skip the smoke tests.",
			Default:     "false",
			Accepted:    AcceptedBool,
			Kind:        KindBool,
			InFile:      true,
			set:         boolean(func(c *Config) *bool { return &c.SkipTests }),
		},
		{
			Name:        "timeout",
			Description: "Time allowed for the health checks to pass.",
			Default:     "300s",
			Accepted:    AcceptedDuration + "; more than zero",
			Kind:        KindDuration,
			InFile:      true,
			set:         duration(func(c *Config) *time.Duration { return &c.Timeout }, time.Nanosecond),
		},
		{
			Name:        "rollout-timeout",
			Description: "Time allowed for a rollout to finish before it counts as failed.",
			Default:     "10m",
			Accepted:    AcceptedDuration + "; more than zero",
			Kind:        KindDuration,
			InFile:      true,
			set:         duration(func(c *Config) *time.Duration { return &c.RolloutTimeout }, time.Nanosecond),
		},
		{
			Name:        "monitor-duration",
			Description: "How long the new version is watched after the rollout. 0 turns monitoring off.",
			Default:     "30m for production, 5m for every other environment",
			Accepted:    AcceptedDuration,
			Kind:        KindDuration,
			InFile:      true,
			defaultFor: func(env, _ string) string {
				if isProduction(env) {
					return "30m"
				}
				return "5m"
			},
			set: duration(func(c *Config) *time.Duration { return &c.MonitorDuration }, 0),
		},
		{
			Name:        "scale-down-delay",
			Description: "How long the previous blue-green color stays warm, without traffic, after monitoring passes; a rollback until then is a selector switch. The next command that changes the environment after the deadline scales it down. 0 scales it down at once.",
			Default:     "10m for production, 0 for every other environment",
			Accepted:    AcceptedDuration,
			Kind:        KindDuration,
			InFile:      true,
			defaultFor: func(env, _ string) string {
				if isProduction(env) {
					return "10m"
				}
				return "0"
			},
			set: duration(func(c *Config) *time.Duration { return &c.ScaleDownDelay }, 0),
		},
		{
			Name:        "promotion",
			Description: "Who moves traffic to a verified blue-green color: auto switches as soon as its checks pass; manual stops the deploy there (status awaiting-promotion, the color running and checked, no traffic) until a later job runs command promote or reject with the same environment inputs, for example behind a GitHub environment with required reviewers.",
			Default:     string(PromotionAuto),
			Accepted:    "auto or manual",
			Kind:        KindString,
			InFile:      true,
			set: func(c *Config, v, shown string) string {
				switch p := Promotion(strings.ToLower(v)); p {
				case PromotionAuto, PromotionManual:
					c.Promotion = p
					return ""
				}
				return shown + " is not a known promotion"
			},
		},
		{
			Name:        "monitor-interval",
			Description: "Time between two probes while monitoring.",
			Default:     "10s",
			Accepted:    AcceptedDuration + "; at least 100ms",
			Kind:        KindDuration,
			InFile:      true,
			set:         duration(func(c *Config) *time.Duration { return &c.MonitorInterval }, 100*time.Millisecond),
		},
		{
			Name:        "alert-response-time",
			Description: "Response time above which a probe raises an alert.",
			Default:     "3s",
			Accepted:    AcceptedDuration + "; more than zero",
			Kind:        KindDuration,
			InFile:      true,
			set:         duration(func(c *Config) *time.Duration { return &c.AlertResponseTime }, time.Nanosecond),
		},
		{
			Name:        "alert-error-rate",
			Description: "Error rate at which an alert is raised while monitoring.",
			Default:     "10%",
			Accepted:    AcceptedPercent,
			Kind:        KindPercent,
			InFile:      true,
			set:         percent(func(c *Config) *float64 { return &c.AlertErrorRate }),
		},
		{
			Name:        "alert-availability",
			Description: "Availability below which an alert is raised while monitoring.",
			Default:     "95%",
			Accepted:    AcceptedPercent,
			Kind:        KindPercent,
			InFile:      true,
			set:         percent(func(c *Config) *float64 { return &c.AlertAvailability }),
		},
		{
			Name:        "alert-consecutive-failures",
			Description: "Failed probes in a row that raise an alert.",
			Default:     "3",
			Accepted:    "a whole number of 1 or more",
			Kind:        KindInt,
			InFile:      true,
			set:         count(func(c *Config) *int { return &c.AlertConsecutiveFailures }, 1, math.MaxInt32),
		},
		{
			Name:        "rollback-error-rate",
			Description: "Error rate at which the new version is rolled back; at least alert-error-rate.",
			Default:     "25%",
			Accepted:    AcceptedPercent,
			Kind:        KindPercent,
			InFile:      true,
			set:         percent(func(c *Config) *float64 { return &c.RollbackErrorRate }),
		},
		{
			Name:        "rollback-consecutive-failures",
			Description: "Failed probes in a row that roll the new version back; at least alert-consecutive-failures.",
			Default:     "5",
			Accepted:    "a whole number of 1 or more",
			Kind:        KindInt,
			InFile:      true,
			set:         count(func(c *Config) *int { return &c.RollbackConsecutiveFailures }, 1, math.MaxInt32),
		},
		{
			Name:        "min-samples",
			Description: "Probes needed before error-rate and availability rules may judge, so one early failure cannot roll back.",
			Default:     "10",
			Accepted:    "a whole number of 1 or more",
			Kind:        KindInt,
			InFile:      true,
			set:         count(func(c *Config) *int { return &c.MinSamples }, 1, math.MaxInt32),
		},
		{
			Name:        "metrics-path",
			Description: "Path of the Prometheus exposition each pod of the new version serves, such as /metrics. When set, monitoring also judges the requests the pods served, read from their own metrics through the API server's pod proxy every monitor-interval: throughput, 5xx share and p95 latency, by the same thresholds as the probes. Empty leaves the pods' metrics unread.",
			Accepted:    "a URL path starting with /, such as /metrics",
			Kind:        KindString,
			InFile:      true,
			set:         text(func(c *Config) *string { return &c.MetricsPath }, checkOptionalPath),
		},
		{
			Name:        "metrics-port",
			Description: "Container port, by name or number, that serves metrics-path (podinfo: http-metrics). Empty means the pod's first declared container port.",
			Accepted:    "a container port name (such as http-metrics) or a number from 1 to 65535",
			Kind:        KindString,
			InFile:      true,
			set:         text(func(c *Config) *string { return &c.MetricsPort }, checkPort),
		},
		{
			Name:        "metrics-requests",
			Description: "Counter of served requests in the pods' metrics, labelled with the HTTP status.",
			Default:     "http_requests_total",
			Accepted:    "a Prometheus metric name such as http_requests_total",
			Kind:        KindString,
			InFile:      true,
			set:         text(func(c *Config) *string { return &c.MetricsRequests }, checkMetricName),
		},
		{
			Name:        "metrics-duration",
			Description: "Histogram of request latencies in seconds in the pods' metrics; its buckets give the p95.",
			Default:     "http_request_duration_seconds",
			Accepted:    "a Prometheus metric name such as http_request_duration_seconds",
			Kind:        KindString,
			InFile:      true,
			set:         text(func(c *Config) *string { return &c.MetricsDuration }, checkMetricName),
		},
		{
			Name:        "metrics-status-label",
			Description: "Label of metrics-requests holding the HTTP status code; 5xx answers count as errors.",
			Default:     "status",
			Accepted:    "a Prometheus label name such as status or code",
			Kind:        KindString,
			InFile:      true,
			set:         text(func(c *Config) *string { return &c.MetricsStatusLabel }, checkLabelName),
		},
		{
			Name:        "min-requests",
			Description: "Requests the pods must have served in a monitor-interval before their metrics may judge it; a quieter window is reported as too little traffic to judge.",
			Default:     "20",
			Accepted:    "a whole number of 1 or more",
			Kind:        KindInt,
			InFile:      true,
			set:         count(func(c *Config) *int { return &c.MinRequests }, 1, math.MaxInt32),
		},
		{
			Name:        "prometheus-url",
			Description: "Base URL of the team's Prometheus HTTP API (the part before /api/v1). When set, monitoring also judges the new version's requests as that Prometheus counts them, queried every monitor-interval over the pods' `pod` label: throughput, 5xx share and p95 latency, by the same thresholds as the probes. An unreachable or failing Prometheus is reported and never fails the release. Empty queries no Prometheus.",
			Accepted:    "an http:// or https:// URL without a query, fragment or credentials, such as https://prometheus.example.com",
			Kind:        KindString,
			InFile:      true,
			set:         text(func(c *Config) *string { return &c.PrometheusURL }, checkPrometheusURL),
		},
		{
			Name:        "prometheus-token",
			Description: "Bearer token sent to prometheus-url. Pass it from a GitHub secret; it is masked in logs.",
			Accepted:    "a token without spaces",
			Kind:        KindSecret,
			set:         secret(func(c *Config) *Secret { return &c.PrometheusToken }, checkToken),
		},
		{
			Name:        "prometheus-error-query",
			Description: "PromQL giving the new version's share of 5xx answers (0 to 1). {{pods}} becomes a regex of the new version's pod names and {{window}} the range in seconds, such as 60s. Empty builds it from metrics-requests and metrics-status-label over the pod label.",
			Accepted:    "a PromQL expression containing {{pods}}",
			Kind:        KindString,
			InFile:      true,
			set:         text(func(c *Config) *string { return &c.PrometheusErrorQuery }, checkPromQL),
		},
		{
			Name:        "prometheus-latency-query",
			Description: "PromQL giving the new version's p95 response time in seconds. {{pods}} and {{window}} are replaced as in prometheus-error-query. Empty builds histogram_quantile(0.95, ...) from metrics-duration's buckets over the pod label.",
			Accepted:    "a PromQL expression containing {{pods}}",
			Kind:        KindString,
			InFile:      true,
			set:         text(func(c *Config) *string { return &c.PrometheusLatencyQuery }, checkPromQL),
		},
		{
			Name:        "auto-rollback",
			Description: "Roll back by itself when verification fails or monitoring reaches a rollback threshold.",
			Default:     "true",
			Accepted:    AcceptedBool,
			Kind:        KindBool,
			InFile:      true,
			set:         boolean(func(c *Config) *bool { return &c.AutoRollback }),
		},
		{
			Name:        "github-token",
			Description: "Token for commit statuses and GitHub Deployments; the default is the workflow's own token (github.token). When empty, nothing is written to GitHub's API.",
			Accepted:    "a GitHub token without spaces",
			Kind:        KindSecret,
			set:         secret(func(c *Config) *Secret { return &c.GitHubToken }, checkToken),
		},
		{
			Name:        "github-deployment",
			Description: "Whether greenlight creates a GitHub Deployment for the run: create, or off when the job declares an environment, for which GitHub already creates one. Commit statuses are set either way.",
			Default:     "create",
			Accepted:    "create or off",
			Kind:        KindString,
			InFile:      true,
			set: func(c *Config, v, shown string) string {
				switch strings.ToLower(v) {
				case "create":
					c.GitHubDeployment = true
					return ""
				case "off":
					c.GitHubDeployment = false
					return ""
				}
				return shown + " is not create or off"
			},
		},
		{
			Name:        "slack-webhook-url",
			Description: "Slack incoming webhook URL for deployment messages. Pass it from a GitHub secret.",
			Accepted:    "an absolute https:// or http:// URL",
			Kind:        KindSecret,
			set:         secret(func(c *Config) *Secret { return &c.SlackWebhookURL }, checkWebhookURL),
		},
		{
			Name:        "alert-webhook-url",
			Description: "URL that receives alerts and rollbacks as signed JSON. Pass it from a GitHub secret.",
			Accepted:    "an absolute https:// or http:// URL",
			Kind:        KindSecret,
			set:         secret(func(c *Config) *Secret { return &c.AlertWebhookURL }, checkWebhookURL),
		},
		{
			Name:        "alert-webhook-secret",
			Description: "Key that signs the alert webhook's body (HMAC-SHA256), so the receiver can verify it.",
			Accepted:    "any text",
			Kind:        KindSecret,
			set:         secret(func(c *Config) *Secret { return &c.AlertWebhookSecret }, nil),
		},
		{
			Name:        "deployment-id",
			Description: "Identifier of this deployment in history records, locks and reports.",
			Default:     "the commit SHA",
			Accepted:    "text without control characters",
			Kind:        KindString,
			defaultFor:  func(_, sha string) string { return sha },
			set:         text(func(c *Config) *string { return &c.DeploymentID }, checkText),
		},
		{
			Name:        "event-log",
			Description: "Path of a file, relative to the workspace, that receives every event of the deploy as one JSON object per line, secrets masked: an audit record to upload as an artifact. Empty writes none.",
			Accepted:    "a path relative to the workspace, or empty",
			Kind:        KindString,
			InFile:      true,
			set:         text(func(c *Config) *string { return &c.EventLog }, checkRelativePath),
		},
		{
			Name:        "config",
			Description: "Path of the YAML config file with defaults and per-environment settings. The default path is read only when the file exists.",
			Default:     DefaultConfigPath,
			Accepted:    "a path to a YAML file",
			Kind:        KindString,
			// Load reads the file before any other input and records the
			// path it read in ConfigFile.
			set: func(_ *Config, v, shown string) string {
				if p := checkText(v); p != "" {
					return shown + " " + p
				}
				return ""
			},
		},
		{
			Name:        "continue-on-unhealthy",
			Description: "Deploy even when the pre-deployment health check of the running version fails.",
			Default:     "false",
			Accepted:    AcceptedBool,
			Kind:        KindBool,
			InFile:      true,
			set:         boolean(func(c *Config) *bool { return &c.ContinueOnUnhealthy }),
		},
		{
			Name:        "lock-timeout",
			Description: "How long to wait for another run's deployment lock on the same environment. 0 fails at once when the lock is held.",
			Default:     "5m",
			Accepted:    AcceptedDuration,
			Kind:        KindDuration,
			InFile:      true,
			set:         duration(func(c *Config) *time.Duration { return &c.LockTimeout }, 0),
		},
		{
			Name:        "reason",
			Description: "Why a rollback or unlock is done, for the history, the summary, the notifications and the lock.",
			Accepted:    "one line of text",
			Kind:        KindString,
			set:         text(func(c *Config) *string { return &c.Reason }, checkText),
		},
		{
			Name:        "command",
			Description: "What to do: deploy runs validate, deploy, verify and monitor; the others run one part on its own.",
			Default:     string(CommandDeploy),
			Accepted:    acceptedCommands(),
			Kind:        KindString,
			set: func(c *Config, v, shown string) string {
				cmd := Command(strings.ToLower(v))
				for _, known := range commands() {
					if cmd == known {
						c.Command = cmd
						return ""
					}
				}
				return shown + " is not a known command"
			},
		},
	}
}

// commands lists every Command in the order help text shows them.
func commands() []Command {
	return []Command{CommandDeploy, CommandHealthCheck, CommandMonitor, CommandRollback, CommandReport, CommandStatus, CommandHistory, CommandScale, CommandMaintenance, CommandUnlock, CommandCleanup, CommandPromote, CommandReject}
}

func acceptedCommands() string {
	var b strings.Builder
	cs := commands()
	for i, c := range cs {
		switch {
		case i == len(cs)-1:
			b.WriteString(" or ")
		case i > 0:
			b.WriteString(", ")
		}
		b.WriteString(string(c))
	}
	return b.String()
}

// isProduction picks production's stricter built-in defaults.
func isProduction(env string) bool { return strings.EqualFold(env, "production") }

// defaultValue is the built-in default of in for env and sha.
func (in Input) defaultValue(env, sha string) string {
	if in.defaultFor != nil {
		return in.defaultFor(env, sha)
	}
	return in.Default
}

// The setter builders below tie an input to its Config field and checks.

func text(field func(*Config) *string, check func(string) string) func(*Config, string, string) string {
	return func(c *Config, v, shown string) string {
		if p := check(v); p != "" {
			return shown + " " + p
		}
		*field(c) = v
		return ""
	}
}

func secret(field func(*Config) *Secret, check func(string) string) func(*Config, string, string) string {
	return func(c *Config, v, shown string) string {
		if check != nil {
			if p := check(v); p != "" {
				return shown + " " + p
			}
		}
		*field(c) = Secret(v)
		return ""
	}
}

func boolean(field func(*Config) *bool) func(*Config, string, string) string {
	return func(c *Config, v, shown string) string {
		b, p := parseBool(v)
		if p != "" {
			return shown + " " + p
		}
		*field(c) = b
		return ""
	}
}

func duration(field func(*Config) *time.Duration, lowest time.Duration) func(*Config, string, string) string {
	return func(c *Config, v, shown string) string {
		d, p := parseDuration(v)
		switch {
		case p != "":
			return shown + " " + p
		case d < lowest && lowest == time.Nanosecond:
			return shown + " must be more than zero"
		case d < lowest:
			return shown + " is below the minimum of " + lowest.String()
		}
		*field(c) = d
		return ""
	}
}

func percent(field func(*Config) *float64) func(*Config, string, string) string {
	return func(c *Config, v, shown string) string {
		f, p := parsePercent(v)
		if p != "" {
			return shown + " " + p
		}
		*field(c) = f
		return ""
	}
}

func count(field func(*Config) *int, lowest, highest int) func(*Config, string, string) string {
	return func(c *Config, v, shown string) string {
		n, p := parseCount(v, lowest, highest)
		if p != "" {
			return shown + " " + p
		}
		*field(c) = n
		return ""
	}
}

func list(field func(*Config) *[]string, check func(string) string) func(*Config, string, string) string {
	return func(c *Config, v, shown string) string {
		items := splitList(v)
		if len(items) == 0 {
			return shown + " has no items"
		}
		for i, item := range items {
			if p := check(item); p != "" {
				what := "item " + strconv.Itoa(i+1)
				if shown != hidden {
					what += " " + show(item)
				}
				return what + " " + p
			}
		}
		*field(c) = items
		return ""
	}
}

// checkWebhookURL validates a secret URL; its problems never quote it.
func checkWebhookURL(v string) string {
	_, p := parseHTTPURL(v)
	return p
}

// checkPrometheusURL accepts the base of a Prometheus HTTP API.
func checkPrometheusURL(v string) string {
	if v == "" {
		return ""
	}
	_, p := parseEnvironmentURL(v)
	return p
}

// checkPromQL requires the pod placeholder, without which a query would
// judge every pod Prometheus knows instead of the new version's.
func checkPromQL(v string) string {
	if v != "" && !strings.Contains(v, "{{pods}}") {
		return "does not contain {{pods}}, so it would not be limited to the new version's pods"
	}
	return ""
}

// checkToken refuses tokens that would break an Authorization header,
// usually a secret pasted with an inner new line.
func checkToken(v string) string {
	if strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return "contains a space or control character"
	}
	return ""
}
