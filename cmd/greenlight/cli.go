package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ebeautything/greenlight/internal/config"
)

// subcommands and their one-line help, in help order.
var subcommands = []struct{ name, summary, example string }{
	{"deploy", "validate, deploy, verify and monitor a new version; roll back when it misbehaves",
		"greenlight deploy --environment=staging --deployment=payments --image=ghcr.io/acme/payments:v2"},
	{"health-check", "check the environment's health (--pre-deployment, --verify-traffic, --verify-rollback)",
		"greenlight health-check --environment=production --pre-deployment --timeout=300"},
	{"monitor", "watch the environment for a while and report alerts (--duration, --extended)",
		"greenlight monitor --environment=production --duration=1800"},
	{"rollback", "return the environment to the previous version, locked and recorded; a running deploy is asked to roll back itself",
		"greenlight rollback --environment=production --reason=\"checkout errors since 14:02\""},
	{"report", "rebuild the report of a past deploy from the cluster's history",
		"greenlight report --environment=production --deployment-id=3f2a9c1 --format=markdown"},
	{"status", "show what serves the environment: active color or revision, replicas, endpoints, lock, recent deploys, health",
		"greenlight status --environment=production --output=json"},
	{"history", "list the deploys and operator actions recorded in the cluster",
		"greenlight history --environment=production --limit=10"},
	{"scale", "scale the serving Deployment (the active color) and wait until ready; 0 needs --force",
		"greenlight scale --environment=production --replicas=5"},
	{"maintenance", "maintenance on|off|status: set the ConfigMap flag and restart the serving Deployment",
		"greenlight maintenance on --environment=production --configmap=payments-config --key=MAINTENANCE_MODE"},
	{"promote", "switch traffic to the color a deploy with --promotion=manual left verified, then verify and monitor it",
		"greenlight promote --environment=production --deployment=payments"},
	{"reject", "remove the color a deploy with --promotion=manual left waiting; what serves keeps serving",
		"greenlight reject --environment=production --deployment=payments"},
	{"cleanup", "scale down a previous color whose rollback window (scale-down-delay) has closed; schedule it if you like",
		"greenlight cleanup --environment=production"},
	{"unlock", "clear the environment's deploy lock left by a dead run (needs --force and --reason); recorded",
		"greenlight unlock --environment=production --force --reason=\"runner died mid deploy\""},
}

// extraFlags are CLI-only switches of a subcommand, beyond the inputs.
var extraFlags = map[string][]struct{ name, usage string }{
	"health-check": {
		{"pre-deployment", "check the version serving now, before a deploy"},
		{"verify-traffic", "prove that answers come from the deployed image's version"},
		{"verify-rollback", "prove that answers come from the previous version and it is healthy"},
	},
	"monitor": {{"extended", "monitor for twice the environment's duration"}},
	"deploy":  {{"actor", "who deploys, for the history and the lock (default user@host)"}},
	"promote": {{"actor", "who promotes, for the history and the lock (default user@host)"}},
	"reject":  {{"actor", "who rejects, for the history and the lock (default user@host)"}},
	"rollback": {
		{"to-revision", "roll a rolling deployment back to this revision (kubectl rollout history)"},
		{"wait", "how long a running deploy may take to answer the rollback request (default 30s)"},
		{"force", "take the lock over from a deploy that does not answer within --wait"},
		{"actor", "who asks, for the history and the lock (default user@host)"},
	},
	"unlock": {
		{"force", "required: the lock's holder loses it, alive or not"},
		{"actor", "who unlocks, for the history and the lock (default user@host)"},
	},
	"report": {{"format", "markdown, json or text (default text)"}},
	"status": {{"output", "table or json (default table)"}},
	"history": {
		{"output", "table or json (default table)"},
		{"limit", "show at most this many records, newest first (default 20)"},
	},
	"scale": {{"force", "allow --replicas=0, which stops every pod"}, {"actor", "who scales, for the history and the lock (default user@host)"}},
	"maintenance": {
		{"configmap", "the ConfigMap holding the flag (default: the one the serving pod template reads)"},
		{"key", "the flag's key in the ConfigMap (default MAINTENANCE_MODE)"},
		{"actor", "who switches it, for the history and the lock (default user@host)"},
	},
}

const cliUsage = `greenlight deploys a service to Kubernetes and refuses to leave a broken version serving.

Usage:
  greenlight <command> [flags]

Commands:
%s
Every input of the action is a flag of the same name (--environment, --image,
--skip-tests, …); .github/greenlight.yml supplies per-environment defaults.
--kubeconfig defaults to $KUBECONFIG, then ~/.kube/config.
Run "greenlight <command> --help" for a command's flags.

Exit codes: 0 succeeded, 1 failed or rolled back, 2 bad input (nothing in the cluster changed).
`

func runCLI(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		var b strings.Builder
		for _, s := range subcommands {
			fmt.Fprintf(&b, "  %-13s %s\n", s.name, s.summary)
		}
		fmt.Fprintf(stdout, cliUsage, b.String())
		if len(args) == 0 {
			return exitBadInput
		}
		return exitOK
	}
	name := args[0]
	known := false
	for _, s := range subcommands {
		known = known || s.name == name
	}
	if !known {
		fmt.Fprintf(stderr, "greenlight: unknown command %q; accepted: %s\n", name, commandNames())
		return exitBadInput
	}
	values, extras, err := parseFlags(name, args[1:], stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "greenlight %s: %v\n", name, err)
		return exitBadInput
	}
	values["command"] = name
	if err := prepareOps(name, values, extras); err != nil {
		printInputErrors(stderr, err)
		return exitBadInput
	}
	if _, ok := values["deployment-id"]; !ok && (name == "deploy" || name == "promote" || name == "reject") {
		// Outside a workflow there is no commit to name the deploy after.
		values["deployment-id"] = "local-" + time.Now().UTC().Format("20060102T150405Z")
	}
	if err := resolveKubeconfig(values, getenv); err != nil {
		fmt.Fprintf(stderr, "greenlight %s: %v\n", name, err)
		return exitBadInput
	}
	cfg, err := config.Load(config.MapLookup(values), os.ReadFile, "")
	if err != nil {
		printInputErrors(stderr, err)
		return exitBadInput
	}
	a := &app{cfg: cfg, getenv: getenv, stdout: stdout, stderr: stderr, extras: extras, terminal: isTerminal(stdout)}
	a.run.Actor = cliActor(extras["actor"], getenv)
	closers := a.notifiers()
	code := a.execute(ctx)
	a.closeNotifiers(ctx, closers, func(w string) { fmt.Fprintf(stderr, "greenlight %s: warning: %s\n", name, w) })
	return code
}

// cliActor is who runs a CLI command: --actor, else user@host as ssh
// and git name a person at a machine.
func cliActor(given string, getenv func(string) string) string {
	if given = strings.TrimSpace(given); given != "" {
		return given
	}
	user := firstNonEmpty(getenv("USER"), getenv("LOGNAME"), "unknown")
	if host, err := os.Hostname(); err == nil && host != "" {
		return user + "@" + host
	}
	return user
}

func commandNames() string {
	var names []string
	for _, s := range subcommands {
		names = append(names, s.name)
	}
	return strings.Join(names, ", ")
}

// inputValue is a flag that records whether it was given; boolean inputs
// may be given bare (--skip-tests).
type inputValue struct {
	value   *string
	boolish bool
}

func (v inputValue) String() string {
	if v.value == nil {
		return ""
	}
	return *v.value
}
func (v inputValue) Set(s string) error { *v.value = s; return nil }
func (v inputValue) IsBoolFlag() bool   { return v.boolish }

func parseFlags(command string, args []string, stdout, stderr io.Writer) (values, extras map[string]string, err error) {
	fs := flag.NewFlagSet("greenlight "+command, flag.ContinueOnError)
	fs.SetOutput(stderr)
	values, extras = map[string]string{}, map[string]string{}
	set := map[string]*string{}
	for _, in := range config.Names() {
		if in.Name == "command" {
			continue
		}
		s := new(string)
		set[in.Name] = s
		usage := in.Description
		if in.Default != "" {
			usage += " (default " + in.Default + ")"
		}
		if in.Name == "kubeconfig" {
			usage = "path of a kubeconfig file, or its contents (default $KUBECONFIG, then ~/.kube/config)"
		}
		fs.Var(inputValue{value: s, boolish: in.Kind == config.KindBool}, in.Name, usage)
	}
	extraSet := map[string]*string{}
	for _, x := range extraFlags[command] {
		s := new(string)
		extraSet[x.name] = s
		boolish := x.name != "to-revision" && x.name != "format" && !opsValueFlags[x.name]
		fs.Var(inputValue{value: s, boolish: boolish}, x.name, x.usage)
	}
	if command == "monitor" {
		// The guide writes --duration; it is the monitor-duration input.
		fs.Var(inputValue{value: set["monitor-duration"]}, "duration", "how long to monitor (alias of --monitor-duration)")
	}
	fs.Usage = func() {
		for _, s := range subcommands {
			if s.name == command {
				fmt.Fprintf(stdout, "greenlight %s: %s\n\nExample:\n  %s\n\nFlags:\n", command, s.summary, s.example)
			}
		}
		fs.SetOutput(stdout)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	// maintenance takes on|off|status, before or among its flags.
	var positional []string
	for command == string(config.CommandMaintenance) && fs.NArg() > 0 {
		positional = append(positional, fs.Arg(0))
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return nil, nil, err
		}
	}
	if fs.NArg() > 0 {
		return nil, nil, fmt.Errorf("unexpected argument %q; every value is a --flag", fs.Arg(0))
	}
	for name, s := range set {
		if *s != "" {
			values[name] = *s
		}
	}
	fs.Visit(func(f *flag.Flag) {
		if v, ok := f.Value.(inputValue); ok && v.boolish && *v.value == "true" {
			if _, isInput := set[f.Name]; isInput {
				values[f.Name] = "true"
			}
		}
	})
	for name, s := range extraSet {
		if *s != "" {
			extras[name] = *s
		}
	}
	if command == string(config.CommandMaintenance) {
		if err := maintenanceState(positional, extras); err != nil {
			return nil, nil, err
		}
	}
	return values, extras, nil
}

// resolveKubeconfig turns --kubeconfig (a path, or contents) into the
// contents the kubeconfig input takes, defaulting like kubectl.
func resolveKubeconfig(values map[string]string, getenv func(string) string) error {
	given, ok := values["kubeconfig"]
	if ok && (strings.Contains(given, "\n") || !looksLikePath(given)) {
		return nil // contents, as the action passes them
	}
	path := given
	if path == "" {
		path = getenv("KUBECONFIG")
		if i := strings.IndexByte(path, filepath.ListSeparator); i >= 0 {
			path = path[:i]
		}
	}
	if path == "" {
		if home := getenv("HOME"); home != "" {
			path = filepath.Join(home, ".kube", "config")
		}
	}
	if path == "" {
		return nil // config.Load reports the missing input
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if !ok {
			return nil
		}
		return fmt.Errorf("input \"kubeconfig\": cannot read %s: %v; accepted: a kubeconfig file path, or its contents (YAML or base64)", path, err)
	}
	values["kubeconfig"] = string(data)
	return nil
}

func looksLikePath(s string) bool {
	return strings.HasPrefix(s, "/") || strings.HasPrefix(s, ".") || strings.HasPrefix(s, "~") || strings.HasSuffix(s, ".yaml") || strings.HasSuffix(s, ".yml") || strings.HasSuffix(s, "config")
}

func printInputErrors(w io.Writer, err error) {
	errs := config.InputErrors(err)
	if len(errs) == 0 {
		fmt.Fprintf(w, "greenlight: %v\n", err)
		return
	}
	for _, e := range errs {
		fmt.Fprintf(w, "greenlight: %v\n", e)
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
