package main

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/oauth2"
	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/ebeautything/greenlight/internal/config"
	"github.com/ebeautything/greenlight/internal/credential"
	"github.com/ebeautything/greenlight/internal/kube"
)

// restConfig builds the API server's client configuration for the chosen
// auth: the kubeconfig's user, an exec plugin's credential made in process,
// or the job's GitHub OIDC ID token. Mistakes are input errors.
func (a *app) restConfig(ctx context.Context) (*rest.Config, error) {
	env := credential.Env{Getenv: a.getenv}
	var kc *kube.Kubeconfig
	if a.cfg.Kubeconfig != "" {
		var err error
		kc, err = kube.LoadKubeconfig(a.cfg.Kubeconfig.Reveal(), a.cfg.Context)
		if err != nil {
			return nil, &config.InputError{Input: "kubeconfig", Problem: err.Error(), Accepted: "a kubeconfig as YAML or base64 (the secret as `kubectl config view --raw` prints it), and an existing context"}
		}
	}
	if a.cfg.Auth != config.AuthGitHubOIDC {
		if kc.Exec != nil {
			src, err := credential.ForExec(ctx, kc.Exec, env)
			if err != nil {
				return nil, &config.InputError{Input: "kubeconfig", Problem: err.Error(), Accepted: "a kubeconfig whose user greenlight can authenticate"}
			}
			kc.REST.ExecProvider = nil
			a.maskSecrets(src.Secrets...)
			kc.REST.WrapTransport = credential.NewRefresher(src, nil).OnNew(a.maskToken).WrapTransport()
			a.tokenAuth = src.Plugin
		}
		return kc.REST, nil
	}

	var cfg *rest.Config
	if kc != nil && a.cfg.Server == "" {
		// Only the cluster: whatever user the kubeconfig has is not used.
		cfg = rest.AnonymousClientConfig(kc.REST)
	} else {
		cfg = &rest.Config{Host: a.cfg.Server, TLSClientConfig: rest.TLSClientConfig{CAData: a.cfg.CertificateAuthority}}
	}
	audience := a.cfg.Audience
	if audience == "" {
		audience = strings.TrimSuffix(cfg.Host, "/")
	}
	src, err := credential.NewGitHubIDToken(env, audience)
	if err != nil {
		return nil, &config.InputError{Input: "auth", Problem: "is github-oidc but " + err.Error(), Accepted: "kubeconfig, or github-oidc in a job with `permissions: id-token: write`"}
	}
	a.idToken = credential.NewRefresher(src, nil).OnNew(a.maskToken)
	cfg.WrapTransport = a.idToken.WrapTransport()
	a.tokenAuth = "GitHub OIDC"
	return cfg, nil
}

// maskSecrets has the runner hide values from the log, in action mode.
func (a *app) maskSecrets(values ...string) {
	if a.mask != nil && len(values) > 0 {
		a.mask(values...)
	}
}

// maskToken has the runner hide a newly fetched token, and what it carries,
// before any request sends it.
func (a *app) maskToken(tok *oauth2.Token) {
	a.maskSecrets(credential.TokenSecrets(tok.AccessToken)...)
}

// checkIdentity asks the API server who the token-based credential is,
// before anything else: a refused token fails here, with the claims that
// the cluster's authentication configuration did not accept, and an
// accepted one is named in the log.
func (a *app) checkIdentity(ctx context.Context) error {
	if a.tokenAuth == "" {
		return nil
	}
	review, err := a.client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	switch {
	case err == nil:
		u := review.Status.UserInfo
		fmt.Fprintf(a.stdout, "greenlight: authenticated with %s as user %q (groups %s)\n", a.tokenAuth, u.Username, strings.Join(u.Groups, ", "))
		return nil
	case apierrors.IsUnauthorized(err):
		msg := fmt.Sprintf("the API server refused the %s token (401 Unauthorized)", a.tokenAuth)
		if a.idToken != nil {
			if tok, terr := a.idToken.Token(); terr == nil {
				if claims, cerr := credential.ParseClaims(tok.AccessToken); cerr == nil {
					msg += fmt.Sprintf(": the cluster's authentication configuration does not accept a token with %s; add a JWT authenticator for this issuer and audience whose claim validation rules accept this sub (see the README, Connect to your cluster)", claims)
				}
			}
		}
		return fmt.Errorf("%s; nothing was changed", msg)
	case apierrors.IsNotFound(err), apierrors.IsForbidden(err), apierrors.IsMethodNotSupported(err):
		// Older servers lack SelfSubjectReview; the permission check speaks.
		return nil
	default:
		return fmt.Errorf("ask the API server who the credential is: %w", kube.ClassifyAPIError(err))
	}
}
