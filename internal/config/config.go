// Package config turns the raw inputs of a greenlight run — the Action's
// INPUT_* variables or the CLI's flags of the same names — plus an optional
// per-environment YAML file into one validated, typed Config.
//
// It reads nothing by itself: the caller passes a Lookup for inputs and a
// function to read the config file, so the rules are testable as pure
// functions and the package never touches the network or the process
// environment. Every rule a user can break is reported as an *InputError
// naming the input and the accepted forms, all of them at once.
//
// # Where values come from
//
// For each input, the first of these that sets it wins: the explicit input
// (INPUT_<NAME> or --<name>), the config file's environments.<environment>
// section, its defaults section, and the built-in default, which for
// strategy and monitor-duration depends on the environment. An empty value
// counts as not set.
//
// The config file (default .github/greenlight.yml, read only if it exists)
// uses the input names as keys:
//
//	defaults:
//	  namespace: payments
//	  deployment: payment-api
//	environments:
//	  staging:
//	    url: https://staging.example.com
//	    monitor-duration: 5m
//	  production:
//	    url: https://example.com
//	    strategy: blue-green
//	    replicas: 3
//
// When the file has an environments section, the run's environment must be
// one of them. Unknown keys are an error, and so are secrets (kubeconfig,
// tokens, webhook URLs), which belong in GitHub secrets, not the repository.
//
// # Value forms
//
//   - Booleans: true/false, yes/no, on/off, 1/0, in any case.
//   - Durations: a Go duration (90s, 5m, 1h30m) or whole seconds (300);
//     negative values are an error.
//   - Percentages: 10% and 10 are both ten percent; a number from 0 to 1
//     written with a decimal point is a fraction (0.1 is ten percent); a
//     bare 1 is refused as ambiguous (write 1% or 100%); 0 to 100% only.
//     Config stores them as fractions from 0 to 1.
//   - Counts: whole numbers of 1 or more.
//   - Lists: items separated by commas or new lines.
package config

import "time"

// Strategy is how a new version replaces the old one.
type Strategy string

const (
	// Rolling updates the Deployment in place, pod by pod.
	Rolling Strategy = "rolling"
	// BlueGreen starts the new version next to the old one and switches the
	// Service's selector once it is healthy.
	BlueGreen Strategy = "blue-green"
)

// Auth is how greenlight authenticates to the API server.
type Auth string

const (
	// AuthKubeconfig uses the kubeconfig's user (the default).
	AuthKubeconfig Auth = "kubeconfig"
	// AuthGitHubOIDC presents the job's GitHub OIDC ID token.
	AuthGitHubOIDC Auth = "github-oidc"
)

// Command is what a run does; the Action's default is CommandDeploy.
type Command string

const (
	// CommandDeploy validates, deploys, verifies and monitors a new version.
	CommandDeploy Command = "deploy"
	// CommandHealthCheck only runs the health checks against the environment.
	CommandHealthCheck Command = "health-check"
	// CommandMonitor only watches the running version for monitor-duration.
	CommandMonitor Command = "monitor"
	// CommandRollback returns the Deployment to its previous version.
	CommandRollback Command = "rollback"
	// CommandReport renders the report of the latest deployment.
	CommandReport Command = "report"
	// CommandStatus shows what is running now.
	CommandStatus Command = "status"
	// CommandHistory lists earlier deployments.
	CommandHistory Command = "history"
	// CommandScale changes the replica count.
	CommandScale Command = "scale"
	// CommandMaintenance switches the environment's maintenance mode.
	CommandMaintenance Command = "maintenance"
	// CommandUnlock clears the environment's deploy lock, recording who and
	// why.
	CommandUnlock Command = "unlock"
	// CommandCleanup scales down a previous color whose rollback window
	// has closed.
	CommandCleanup Command = "cleanup"
	// CommandPromote switches traffic to the blue-green color a deploy with
	// promotion manual left verified, then verifies and monitors it.
	CommandPromote Command = "promote"
	// CommandReject removes the color a deploy with promotion manual left
	// waiting; the version serving keeps serving.
	CommandReject Command = "reject"
)

// Promotion says who moves traffic to a verified blue-green color.
type Promotion string

// Promotions.
const (
	// PromotionAuto switches as soon as the color's checks pass.
	PromotionAuto Promotion = "auto"
	// PromotionManual stops before the switch until command promote.
	PromotionManual Promotion = "manual"
)

// Config is one run's validated configuration. Load is the only intended
// way to build it, so every field already satisfies the rules in Names.
// Secret fields print as "***" however the Config is printed or encoded.
type Config struct {
	// Command is what this run does.
	Command Command `json:"command"`
	// Environment is the target environment's name, such as "production".
	Environment string `json:"environment"`
	// Kubeconfig is the cluster credential, base64 or YAML, not yet decoded.
	Kubeconfig Secret `json:"kubeconfig"`
	// Context is the kubeconfig context; empty means its current context.
	Context string `json:"context,omitempty"`
	// Auth is how to authenticate; empty means AuthKubeconfig.
	Auth Auth `json:"auth,omitempty"`
	// Audience is the GitHub OIDC ID token's audience; empty means Server.
	Audience string `json:"audience,omitempty"`
	// Server is the API server URL given without a kubeconfig.
	Server string `json:"server,omitempty"`
	// CertificateAuthority is the PEM that Server's certificate chains to;
	// empty means the system roots.
	CertificateAuthority []byte `json:"-"`
	// Namespace is the Kubernetes namespace of the workload.
	Namespace string `json:"namespace"`
	// Deployment is the Deployment's name; empty only when Manifests name it.
	Deployment string `json:"deployment,omitempty"`
	// Container is the container whose image is replaced; empty means the first.
	Container string `json:"container,omitempty"`
	// Image is the image reference to deploy; empty keeps the manifests' images.
	Image string `json:"image,omitempty"`
	// Manifests are files, directories or globs to apply, in order.
	Manifests []string `json:"manifests,omitempty"`
	// Strategy is rolling or blue-green.
	Strategy Strategy `json:"strategy"`
	// Service is the Service that routes traffic; it defaults to Deployment.
	Service string `json:"service,omitempty"`
	// ServicePort is the Service port to probe through; 0 means its first port.
	ServicePort int `json:"service-port,omitempty"`
	// Replicas is the desired replica count; 0 keeps the current count.
	Replicas int `json:"replicas,omitempty"`
	// AppEnv are the application's environment variables, delivered to the
	// new pods through a Secret of this deploy; values are secrets.
	AppEnv []EnvVar `json:"app-env,omitempty"`
	// URL is the environment's public URL without a trailing slash; empty
	// means health checks go through the API server's service proxy.
	URL string `json:"url,omitempty"`
	// HealthCheckToken is sent as a bearer token to /health/detailed.
	HealthCheckToken Secret `json:"health-check-token"`
	// HealthPaths are the paths probed under URL, each starting with "/".
	HealthPaths []string `json:"health-paths"`
	// RequiredComponents must be in the detailed health answer and working.
	RequiredComponents []string `json:"required-components,omitempty"`
	// VersionCheck is how verify proves traffic reaches the new version.
	VersionCheck VersionCheck `json:"version-check"`
	// ExpectedVersion is what the new version must report; empty means the
	// image's tag.
	ExpectedVersion string `json:"expected-version,omitempty"`
	// SmokeTests is the path of the smoke test file; empty means none.
	SmokeTests string `json:"smoke-tests,omitempty"`
	// SkipTests turns off the smoke tests.
	SkipTests bool `json:"skip-tests"`
	// Timeout bounds each health check.
	Timeout time.Duration `json:"timeout"`
	// RolloutTimeout bounds waiting for a rollout to finish.
	RolloutTimeout time.Duration `json:"rollout-timeout"`
	// MonitorDuration is how long the new version is watched; 0 turns it off.
	MonitorDuration time.Duration `json:"monitor-duration"`
	// ScaleDownDelay keeps the previous blue-green color warm after
	// monitoring passes; 0 scales it down at once.
	ScaleDownDelay time.Duration `json:"scale-down-delay"`
	// Promotion is auto, or manual to stop a blue-green deploy before the
	// switch until command promote or reject.
	Promotion Promotion `json:"promotion"`
	// MonitorInterval is the time between two probes while monitoring.
	MonitorInterval time.Duration `json:"monitor-interval"`
	// AlertResponseTime is the response time above which an alert is raised.
	AlertResponseTime time.Duration `json:"alert-response-time"`
	// AlertErrorRate is the error-rate fraction (0..1) that raises an alert.
	AlertErrorRate float64 `json:"alert-error-rate"`
	// AlertAvailability is the availability fraction (0..1) below which an
	// alert is raised.
	AlertAvailability float64 `json:"alert-availability"`
	// AlertConsecutiveFailures is the failure streak that raises an alert.
	AlertConsecutiveFailures int `json:"alert-consecutive-failures"`
	// RollbackErrorRate is the error-rate fraction (0..1) that rolls back.
	RollbackErrorRate float64 `json:"rollback-error-rate"`
	// RollbackConsecutiveFailures is the failure streak that rolls back.
	RollbackConsecutiveFailures int `json:"rollback-consecutive-failures"`
	// MinSamples is how many probes rate rules wait for before judging.
	MinSamples int `json:"min-samples"`
	// MetricsPath is the pods' Prometheus exposition path; empty leaves
	// their metrics unread.
	MetricsPath string `json:"metrics-path,omitempty"`
	// MetricsPort is the container port name or number serving it.
	MetricsPort string `json:"metrics-port,omitempty"`
	// MetricsRequests, MetricsDuration and MetricsStatusLabel name the
	// request counter, the latency histogram and the status label.
	MetricsRequests    string `json:"metrics-requests"`
	MetricsDuration    string `json:"metrics-duration"`
	MetricsStatusLabel string `json:"metrics-status-label"`
	// MinRequests is how many requests a metrics window needs to be judged.
	MinRequests int `json:"min-requests"`
	// PrometheusURL is the team's Prometheus; empty queries none.
	PrometheusURL string `json:"prometheus-url,omitempty"`
	// PrometheusToken is sent to it as a bearer token.
	PrometheusToken Secret `json:"prometheus-token"`
	// PrometheusErrorQuery and PrometheusLatencyQuery replace the default
	// queries; empty builds them from the metric names.
	PrometheusErrorQuery   string `json:"prometheus-error-query,omitempty"`
	PrometheusLatencyQuery string `json:"prometheus-latency-query,omitempty"`
	// AutoRollback lets a failed verification or monitor verdict roll back.
	AutoRollback bool `json:"auto-rollback"`
	// GitHubToken authenticates commit statuses and Deployments.
	GitHubToken Secret `json:"github-token"`
	// GitHubDeployment is whether a GitHub Deployment is created for the
	// run (github-deployment: create); commit statuses are set either way.
	GitHubDeployment bool `json:"github-deployment"`
	// SlackWebhookURL is a Slack incoming webhook; empty means no Slack.
	SlackWebhookURL Secret `json:"slack-webhook-url"`
	// AlertWebhookURL receives signed JSON alerts; empty means none.
	AlertWebhookURL Secret `json:"alert-webhook-url"`
	// AlertWebhookSecret signs the alert webhook's body.
	AlertWebhookSecret Secret `json:"alert-webhook-secret"`
	// DeploymentID identifies this deployment in history, locks and reports.
	DeploymentID string `json:"deployment-id,omitempty"`
	// EventLog is the file that receives every event of a deploy as one
	// JSON line; empty writes none.
	EventLog string `json:"event-log,omitempty"`
	// ConfigFile is the config file that was read; empty when none was.
	ConfigFile string `json:"config,omitempty"`
	// ContinueOnUnhealthy deploys even when the pre-deployment check failed.
	ContinueOnUnhealthy bool `json:"continue-on-unhealthy"`
	// LockTimeout is how long to wait for another run's deployment lock.
	LockTimeout time.Duration `json:"lock-timeout"`
	// Reason says why a rollback or unlock is done; it is recorded in the
	// history and on the lock.
	Reason string `json:"reason,omitempty"`
}

// Secrets returns every non-empty secret value, in input order, so that the
// caller can mask each one (::add-mask::) before anything is printed.
func (c Config) Secrets() []string {
	var out []string
	add := func(s Secret) {
		if s != "" {
			out = append(out, s.Reveal())
		}
	}
	add(c.Kubeconfig)
	for _, v := range c.AppEnv {
		add(v.Value)
	}
	for _, s := range []Secret{
		c.HealthCheckToken,
		c.PrometheusToken,
		c.GitHubToken,
		c.SlackWebhookURL,
		c.AlertWebhookURL,
		c.AlertWebhookSecret,
	} {
		add(s)
	}
	return out
}
