package credential

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/oauth2"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// supported lists the ways in, for messages.
const supported = "aws eks get-token or aws-iam-authenticator token (AWS credentials in the environment, as aws-actions/configure-aws-credentials leaves them, web identity included); " +
	"gke-gcloud-auth-plugin (Google application default credentials, as google-github-actions/auth writes them); " +
	"kubelogin get-token with --login workloadidentity or spn; " +
	"or auth: github-oidc with a cluster that trusts GitHub's ID tokens"

// ExecError means greenlight cannot produce the credential an exec plugin
// would: an unknown plugin, a mode that cannot work in a container, or a
// missing credential. It names what was looked for, never a value.
type ExecError struct {
	// Plugin is the exec command, such as "kubelogin".
	Plugin string
	// Problem says what is wrong.
	Problem string
	// LookedFor lists where greenlight looked, empty when irrelevant.
	LookedFor string
}

func (e *ExecError) Error() string {
	msg := fmt.Sprintf("the kubeconfig's user runs the exec credential plugin %q, which is not in greenlight's container; %s", e.Plugin, e.Problem)
	if e.LookedFor != "" {
		msg += "; looked for " + e.LookedFor
	}
	return msg + ". Supported: " + supported
}

// Source is a token source with the values a log must never show.
type Source struct {
	oauth2.TokenSource
	// Plugin names what the source stands in for, for messages.
	Plugin string
	// Secrets are the secret values among the credentials the source
	// reads from the environment, to mask.
	Secrets []string
}

// secretVars are the environment variables whose values are secrets, as the
// actions that set them mask them.
var secretVars = []string{"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AZURE_CLIENT_SECRET", "AAD_SERVICE_PRINCIPAL_CLIENT_SECRET"}

// ForExec returns a token source that produces in process what the exec
// plugin would print. The stanza's env entries take precedence over env,
// as they would for the plugin. The source is not cached: wrap it in a
// Refresher.
func ForExec(ctx context.Context, exec *clientcmdapi.ExecConfig, env Env) (*Source, error) {
	plugin := filepath.Base(exec.Command)
	env = withExecEnv(env, exec.Env)
	args := parseArgs(exec.Args)
	var (
		ts  oauth2.TokenSource
		err error
	)
	switch {
	case plugin == "aws" && args.has("eks", "get-token"):
		ts, err = newEKS(ctx, env, eksParams{
			cluster: args.flag("--cluster-name", "--cluster-id"), region: args.flag("--region"),
			roleARN: args.flag("--role-arn"), profile: args.flag("--profile"),
		}, plugin)
	case plugin == "aws-iam-authenticator" && args.has("token"):
		ts, err = newEKS(ctx, env, eksParams{
			cluster: args.flag("-i", "--cluster-id"), region: args.flag("--region"),
			roleARN: args.flag("-r", "--role"), profile: "",
		}, plugin)
	case plugin == "gke-gcloud-auth-plugin":
		ts, err = newGKE(ctx, env)
	case plugin == "kubelogin" && args.has("get-token"):
		ts, err = newAKS(ctx, env, args)
	default:
		return nil, &ExecError{Plugin: strings.TrimSpace(exec.Command + " " + strings.Join(exec.Args, " ")), Problem: "greenlight cannot stand in for it"}
	}
	if err != nil {
		return nil, err
	}
	src := &Source{TokenSource: ts, Plugin: plugin}
	for _, name := range secretVars {
		if v := env.get(name); v != "" {
			src.Secrets = append(src.Secrets, v)
		}
	}
	return src, nil
}

func withExecEnv(env Env, vars []clientcmdapi.ExecEnvVar) Env {
	if len(vars) == 0 {
		return env
	}
	base := env.Getenv
	set := map[string]string{}
	for _, v := range vars {
		set[v.Name] = v.Value
	}
	env.Getenv = func(name string) string {
		if v, ok := set[name]; ok {
			return v
		}
		if base == nil {
			return ""
		}
		return base(name)
	}
	return env
}

// args are a plugin's command line: words and --flag value pairs.
type args struct {
	words []string
	flags map[string]string
}

func parseArgs(list []string) args {
	a := args{flags: map[string]string{}}
	for i := 0; i < len(list); i++ {
		w := list[i]
		if !strings.HasPrefix(w, "-") {
			a.words = append(a.words, w)
			continue
		}
		if name, value, ok := strings.Cut(w, "="); ok {
			a.flags[name] = value
			continue
		}
		if i+1 < len(list) && !strings.HasPrefix(list[i+1], "-") {
			a.flags[w] = list[i+1]
			i++
			continue
		}
		a.flags[w] = "true"
	}
	return a
}

// has reports whether words appear in order among the plain words.
func (a args) has(words ...string) bool {
	i := 0
	for _, w := range a.words {
		if i < len(words) && w == words[i] {
			i++
		}
	}
	return i == len(words)
}

// flag returns the first of names that is set.
func (a args) flag(names ...string) string {
	for _, n := range names {
		if v, ok := a.flags[n]; ok {
			return v
		}
	}
	return ""
}
