package credential

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
)

// gkeScopes are the scopes gke-gcloud-auth-plugin asks for.
var gkeScopes = []string{"https://www.googleapis.com/auth/cloud-platform", "https://www.googleapis.com/auth/userinfo.email"}

// containerWorkspace is where the runner mounts the job's workspace in a
// container action.
const containerWorkspace = "/github/workspace"

// gkeCredentialVars are where google-github-actions/auth leaves the path of
// the credentials file it writes, in the order the tools read them.
var gkeCredentialVars = []string{"CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_GHA_CREDS_PATH"}

func newGKE(ctx context.Context, env Env) (oauth2.TokenSource, error) {
	const plugin = "gke-gcloud-auth-plugin"
	looked := strings.Join(gkeCredentialVars, ", ") + " (a credentials file, as google-github-actions/auth writes it); run google-github-actions/auth before greenlight"
	path := firstSet(env, gkeCredentialVars...)
	if path == "" {
		return nil, &ExecError{Plugin: plugin, Problem: "no Google credentials were found", LookedFor: looked}
	}
	path = containerPath(env, path)
	data, err := env.readFile(path)
	if err != nil {
		problem := "the credentials file cannot be read"
		if errors.Is(err, fs.ErrNotExist) {
			problem = "the credentials file " + path + " does not exist in the container (write it under the workspace, as google-github-actions/auth does by default)"
		}
		return nil, &ExecError{Plugin: plugin, Problem: problem, LookedFor: looked}
	}
	var head struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(data, &head) != nil {
		return nil, &ExecError{Plugin: plugin, Problem: "the credentials file " + path + " is not JSON"}
	}
	typ := google.CredentialsType(head.Type)
	switch typ {
	case google.ServiceAccount, google.ExternalAccount, google.AuthorizedUser, google.ImpersonatedServiceAccount:
	default:
		return nil, &ExecError{Plugin: plugin, Problem: "the credentials file " + path + " has no supported type (service_account, external_account, authorized_user or impersonated_service_account)"}
	}
	ctx = context.WithValue(context.WithoutCancel(ctx), oauth2.HTTPClient, env.client())
	creds, err := google.CredentialsFromJSONWithTypeAndParams(ctx, data, typ, google.CredentialsParams{Scopes: gkeScopes})
	if err != nil {
		return nil, &ExecError{Plugin: plugin, Problem: "the credentials file " + path + " is not usable: " + err.Error()}
	}
	return creds.TokenSource, nil
}

// containerPath maps a path on the runner's host to where a container
// action sees it: google-github-actions/auth exports the host path of the
// file it writes in the workspace, which the runner mounts at
// /github/workspace.
func containerPath(env Env, path string) string {
	if _, err := env.readFile(path); err == nil {
		return path
	}
	host := env.get("RUNNER_WORKSPACE")
	if host == "" || !strings.HasPrefix(path, host+"/") {
		return path
	}
	// RUNNER_WORKSPACE is the parent of the workspace (…/work/<repo>), and
	// the workspace is one directory below it (…/work/<repo>/<repo>).
	rest := strings.TrimPrefix(path, host+"/")
	_, inside, ok := strings.Cut(rest, "/")
	if !ok {
		return path
	}
	workspace := env.get("GITHUB_WORKSPACE")
	if workspace == "" {
		workspace = containerWorkspace
	}
	return filepath.Join(workspace, inside)
}
