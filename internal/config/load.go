package config

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
)

// Lookup returns the raw value of the input called name (kebab-case) and
// whether it was given. An empty or blank value counts as not given, so an
// unset Action input falls through to the config file and the defaults.
type Lookup func(name string) (value string, ok bool)

// ActionLookup reads inputs the way the Actions runner passes them to a
// container: input "skip-tests" is the variable INPUT_SKIP-TESTS (upper
// case, hyphens kept, spaces turned into underscores). An empty variable
// counts as unset. getenv is usually os.Getenv.
func ActionLookup(getenv func(string) string) Lookup {
	return func(name string) (string, bool) {
		v := getenv("INPUT_" + strings.ToUpper(strings.ReplaceAll(name, " ", "_")))
		return v, v != ""
	}
}

// MapLookup reads inputs from a map keyed by input name, such as the flags
// a CLI user set; empty values count as unset.
func MapLookup(values map[string]string) Lookup {
	return func(name string) (string, bool) {
		v, ok := values[name]
		return v, ok && v != ""
	}
}

// Load builds the Config for one run. Each input's value comes from, in
// order: lookup, the config file's environments.<environment> section, its
// defaults section, and the built-in default (which may depend on the
// environment; deployment-id defaults to sha).
//
// readFile reads the config file (usually os.ReadFile); when the config
// input is not set, DefaultConfigPath is read only if it exists. A nil
// readFile means no config file.
//
// On any mistake Load returns a zero Config and every mistake found, each
// an *InputError, joined with errors.Join; none of them contains a secret.
func Load(lookup Lookup, readFile func(path string) ([]byte, error), sha string) (Config, error) {
	ins := Names()
	given := make(map[string]string, len(ins))
	var secrets []string
	for _, in := range ins {
		if lookup == nil {
			break
		}
		v, ok := lookup(in.Name)
		if v = strings.TrimSpace(v); !ok || v == "" {
			continue
		}
		given[in.Name] = v
		if in.Kind == KindSecret {
			secrets = append(secrets, v)
		}
	}

	env := given["environment"]
	file, errs := readConfigFile(given["config"], readFile, env, ins)

	var c Config
	failed := make(map[string]bool)
	for _, in := range ins {
		v, where, ok := given[in.Name], "", true
		if v == "" {
			if !in.InFile {
				ok = false
			} else {
				v, where, ok = file.lookup(in.Name)
			}
		}
		if !ok {
			v = in.defaultValue(env, sha)
		}
		if v == "" {
			if in.Required {
				errs = append(errs, &InputError{Input: in.Name, Problem: "is required but not set", Accepted: in.Accepted})
				failed[in.Name] = true
			}
			continue
		}
		shown := show(v)
		if in.Kind == KindSecret || containsAny(v, secrets) {
			shown = hidden
		}
		if p := in.set(&c, v, shown); p != "" {
			errs = append(errs, &InputError{Input: in.Name, Problem: p + where, Accepted: in.Accepted})
			failed[in.Name] = true
		}
	}
	c.ConfigFile = file.path
	errs = append(errs, crossCheck(&c, failed, ins)...)

	if len(errs) == 0 {
		return c, nil
	}
	scrub(errs, secrets)
	joined := make([]error, len(errs))
	for i, e := range errs {
		joined[i] = e
	}
	return Config{}, errors.Join(joined...)
}

// crossCheck applies the rules that involve more than one input. A rule is
// skipped when one of its inputs already failed, so one mistake gives one
// message. It fills in Service from Deployment.
func crossCheck(c *Config, failed map[string]bool, ins []Input) []*InputError {
	accepted := func(name string) string {
		for _, in := range ins {
			if in.Name == name {
				return in.Accepted
			}
		}
		return ""
	}
	ok := func(names ...string) bool {
		for _, n := range names {
			if failed[n] {
				return false
			}
		}
		return true
	}
	var errs []*InputError
	add := func(input, problem, acc string) {
		errs = append(errs, &InputError{Input: input, Problem: problem, Accepted: acc})
	}

	if c.Service == "" && c.Deployment != "" && ok("service", "deployment") {
		if p := checkDNSLabel(c.Deployment, true); p != "" {
			add("service", fmt.Sprintf("is not set and the deployment name %s cannot be a Service name: it %s", show(c.Deployment), strings.TrimPrefix(p, "is ")), accepted("service"))
			failed["service"] = true
		} else {
			c.Service = c.Deployment
		}
	}

	if c.Auth == AuthGitHubOIDC {
		if c.Kubeconfig == "" && c.Server == "" && ok("kubeconfig", "server") {
			add("server", "is not set and no kubeconfig is given; auth github-oidc needs the API server's address", accepted("server")+"; or a kubeconfig without users")
		}
	} else if c.Kubeconfig == "" && ok("kubeconfig", "auth") {
		add("kubeconfig", "is required but not set", accepted("kubeconfig")+"; or set auth to github-oidc with server and certificate-authority-data")
	}

	if !ok("command") {
		return errs
	}
	needsWorkload := c.Command != CommandHealthCheck && c.Command != CommandMonitor
	if needsWorkload && c.Deployment == "" && len(c.Manifests) == 0 && ok("deployment", "manifests") {
		add("deployment", fmt.Sprintf("is not set and no manifests are given; the %s command needs one of them", c.Command), accepted("deployment")+"; or set manifests")
	}
	if !needsWorkload && c.URL == "" && c.Service == "" && ok("url", "service", "deployment") {
		add("url", fmt.Sprintf("is not set and there is no service or deployment to reach through the API server; the %s command needs one of them", c.Command), accepted("url")+"; or set service or deployment")
	}
	if c.Command == CommandDeploy && c.Image == "" && len(c.Manifests) == 0 && ok("image", "manifests") {
		add("image", "is not set and no manifests are given; a deploy needs an image, manifests or both", accepted("image")+"; or set manifests")
	}
	// The Secret reaches the pods through the manifests' pod templates; a
	// deploy that only patches an image has no template of its own.
	if c.Command == CommandDeploy && len(c.AppEnv) > 0 && len(c.Manifests) == 0 && ok("app-env", "manifests") {
		add("app-env", "is set but no manifests are given; the variables reach the pods through the manifests' pod templates", accepted("app-env")+"; with manifests set")
	}
	if c.Command == CommandScale && c.Replicas == 0 && ok("replicas") {
		add("replicas", "is not set; the scale command needs it", accepted("replicas"))
	}
	blueGreenCmd := c.Command == CommandDeploy || c.Command == CommandRollback || c.Command == CommandPromote || c.Command == CommandReject
	// A rolling update moves traffic pod by pod as each is ready: there is
	// no moment before traffic to stop at, so manual promotion would
	// silently promise a gate it cannot keep.
	if c.Command == CommandDeploy && c.Promotion == PromotionManual && c.Strategy != BlueGreen && ok("promotion", "strategy") {
		add("promotion", fmt.Sprintf("manual needs the blue-green strategy, and %s uses %s, which moves traffic to each new pod as soon as it is ready", show(c.Environment), c.Strategy),
			"auto with the "+string(c.Strategy)+" strategy; or manual with strategy blue-green")
	}
	if (c.Command == CommandPromote || c.Command == CommandReject) && c.Strategy != BlueGreen && ok("strategy") {
		add("strategy", fmt.Sprintf("is %s, but %s acts on a blue-green color left waiting by a deploy with promotion manual", c.Strategy, c.Command),
			"blue-green (the default for production)")
	}
	if blueGreenCmd && c.Strategy == BlueGreen && c.Service == "" && ok("strategy", "service", "deployment") {
		add("service", "is not set and there is no deployment name to default to; blue-green switches this Service's selector", accepted("service"))
	}

	if c.RollbackErrorRate < c.AlertErrorRate && ok("alert-error-rate", "rollback-error-rate") {
		add("rollback-error-rate", fmt.Sprintf("%s is below alert-error-rate %s, so a rollback would come before its alert",
			formatPercent(c.RollbackErrorRate), formatPercent(c.AlertErrorRate)),
			"a percentage at or above alert-error-rate ("+formatPercent(c.AlertErrorRate)+")")
	}
	if c.RollbackConsecutiveFailures < c.AlertConsecutiveFailures && ok("alert-consecutive-failures", "rollback-consecutive-failures") {
		add("rollback-consecutive-failures", fmt.Sprintf("%d is below alert-consecutive-failures %d, so a rollback would come before its alert",
			c.RollbackConsecutiveFailures, c.AlertConsecutiveFailures),
			fmt.Sprintf("a whole number at or above alert-consecutive-failures (%d)", c.AlertConsecutiveFailures))
	}
	if c.PrometheusToken != "" && c.PrometheusURL != "" && ok("prometheus-url", "prometheus-token") {
		if u, err := url.Parse(c.PrometheusURL); err == nil && u.Scheme == "http" && !loopbackHost(u.Hostname()) {
			add("prometheus-url", "is an http:// URL of a host other than this machine, and a bearer token is never sent in the clear", "an https:// URL when prometheus-token is set")
		}
	}
	if c.MonitorDuration > 0 && c.MonitorInterval > c.MonitorDuration && ok("monitor-duration", "monitor-interval") {
		add("monitor-interval", fmt.Sprintf("%s is longer than monitor-duration %s, so not one probe would run", c.MonitorInterval, c.MonitorDuration),
			fmt.Sprintf("a duration of at least 100ms and at most monitor-duration (%s)", c.MonitorDuration))
	}
	return errs
}

// scrub replaces any secret value that reached a message, for instance a
// token pasted into a plain input by mistake, with the mask. Longer secrets
// go first so that one containing another is masked whole.
func scrub(errs []*InputError, secrets []string) {
	secrets = slices.Clone(secrets)
	slices.SortFunc(secrets, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	for _, e := range errs {
		for _, s := range secrets {
			e.Problem = strings.ReplaceAll(e.Problem, s, masked)
			e.Accepted = strings.ReplaceAll(e.Accepted, s, masked)
		}
	}
}

// hidden stands in for a value that must not appear in a message.
const hidden = "the value"

// containsAny reports whether v holds one of the secrets, for instance a
// token pasted into a plain input by mistake; such a value is not shown,
// not even shortened.
func containsAny(v string, secrets []string) bool {
	for _, s := range secrets {
		if strings.Contains(v, s) {
			return true
		}
	}
	return false
}

// loopbackHost reports whether host names this machine.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
