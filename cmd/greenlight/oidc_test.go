package main

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ebeautything/greenlight/internal/kube"
	"github.com/ebeautything/greenlight/internal/testcluster"
)

// oidcInputs are a deploy's inputs with auth github-oidc and no
// kubeconfig: the cluster is given by server and certificate-authority-data.
func (e *env) oidcInputs(environment, image string) map[string]string {
	in := e.inputs(environment, image)
	delete(in, "kubeconfig")
	in["auth"] = "github-oidc"
	in["server"] = e.c.OIDCAudience()
	in["certificate-authority-data"] = base64.StdEncoding.EncodeToString(e.c.Config().CAData)
	return in
}

// withIDToken serves the job's ID token for claims the way the runner does
// and gives the run the two ACTIONS_ID_TOKEN_REQUEST_* variables.
func (e *env) withIDToken(t *testing.T, claims testcluster.GitHubClaims, lifetime time.Duration) (requestToken string) {
	t.Helper()
	u, tok, err := e.c.OIDC().IDTokenEndpoint(claims, lifetime)
	require.NoError(t, err)
	e.environ = append(e.environ, "ACTIONS_ID_TOKEN_REQUEST_URL="+u, "ACTIONS_ID_TOKEN_REQUEST_TOKEN="+tok)
	return tok
}

// bindDeployer grants user every permission greenlight's permission check
// asks for in the namespace, and nothing more.
func (e *env) bindDeployer(t *testing.T, user string) {
	t.Helper()
	ctx := context.Background()
	rules := kube.DeployerRules(e.ns)
	_, err := e.client.RbacV1().Roles(e.ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "greenlight-deployer"}, Rules: rules}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = e.client.RbacV1().RoleBindings(e.ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "greenlight-deployer"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "greenlight-deployer"},
		Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: user}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
}

// assertNoOIDCSecrets checks the request token and every ID token stayed
// out of every output channel.
func (e *env) assertNoOIDCSecrets(t *testing.T, res result, in map[string]string, requestToken string) {
	t.Helper()
	e.assertNoSecrets(t, res, in)
	var logged []string
	for _, line := range strings.Split(res.stdout, "\n") {
		if !strings.HasPrefix(line, "::add-mask::") {
			logged = append(logged, line)
		}
	}
	all := strings.Join(append(logged, res.stderr, res.summary, res.report, mustJSON(res.outputs), strings.Join(e.slack.requests(), "\n"), strings.Join(e.github.requests(), "\n")), "\n")
	assert.NotContains(t, all, requestToken, "the ID-token request token leaked")
	tokens := e.c.OIDC().Tokens(requestToken)
	for _, tok := range tokens {
		// The signature is what makes a JWT a credential.
		assert.NotContains(t, all, tok[strings.LastIndex(tok, ".")+1:], "an ID token leaked")
		assert.Contains(t, res.stdout, "::add-mask::"+tok, "each ID token is masked")
	}
	assert.Contains(t, res.stdout, "::add-mask::"+requestToken, "the request token is masked")
}

const productionUser = testcluster.OIDCUsernamePrefix + "repo:acme/shop:environment:production"

func TestActionOIDCProductionDeploy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")
	e.bindDeployer(t, productionUser)
	reqTok := e.withIDToken(t, testcluster.GitHubClaims{Repository: "acme/shop", Environment: "production", Ref: "refs/heads/main"}, 10*time.Minute)
	in := e.oidcInputs("production", "sampleapp:v2")
	res := e.runAction(t, in, "")
	require.Equal(t, 0, res.code)
	assert.Equal(t, "succeeded", res.outputs["status"])
	assert.Equal(t, "blue", res.outputs["revision"])
	assert.Contains(t, res.stdout, `authenticated with GitHub OIDC as user "`+productionUser+`"`)
	assert.Contains(t, res.stdout, "github:environment:acme/shop:production", "groups come from repository and environment")
	assert.JSONEq(t, `{"v2": 20}`, mustJSON(e.serving(t, 20)))
	e.assertNoOIDCSecrets(t, res, in, reqTok)
}

func TestActionOIDCRefusedTokenChangesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")
	e.bindDeployer(t, testcluster.OIDCUsernamePrefix+"repo:evil/shop:environment:production")
	reqTok := e.withIDToken(t, testcluster.GitHubClaims{Repository: "evil/shop", Environment: "production", Ref: "refs/heads/main"}, 10*time.Minute)
	before := e.snapshot(t)
	in := e.oidcInputs("production", "sampleapp:v2")
	res := e.runAction(t, in, "")
	assert.Equal(t, 1, res.code)
	msg := res.stderr
	assert.Contains(t, msg, "401 Unauthorized")
	for _, claim := range []string{`sub "repo:evil/shop:environment:production"`, `repository "evil/shop"`, `environment "production"`, `ref "refs/heads/main"`} {
		assert.Contains(t, msg, claim)
	}
	assert.Contains(t, msg, "authentication configuration does not accept")
	assert.Equal(t, before, e.snapshot(t), "nothing changed")
	e.assertNoOIDCSecrets(t, res, in, reqTok)
}

func TestActionOIDCForbiddenNamesUserAndPermission(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")
	e.bindDeployer(t, productionUser)
	// The staging job's subject is not bound to the Role.
	reqTok := e.withIDToken(t, testcluster.GitHubClaims{Repository: "acme/shop", Environment: "staging", Ref: "refs/heads/main"}, 10*time.Minute)
	before := e.snapshot(t)
	in := e.oidcInputs("production", "sampleapp:v2")
	res := e.runAction(t, in, "")
	assert.Equal(t, 1, res.code)
	out := res.stdout + res.stderr
	assert.Contains(t, out, `user "github:repo:acme/shop:environment:staging"`)
	assert.Contains(t, out, "deployments.apps")
	assert.Contains(t, out, "nothing was changed")
	assert.Equal(t, before, e.snapshot(t), "nothing changed")
	e.assertNoOIDCSecrets(t, res, in, reqTok)
}

func TestActionOIDCTokenRefreshedDuringMonitor(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")
	e.bindDeployer(t, productionUser)
	const lifetime = 12 * time.Second
	reqTok := e.withIDToken(t, testcluster.GitHubClaims{Repository: "acme/shop", Environment: "production", Ref: "refs/heads/main"}, lifetime)
	in := e.oidcInputs("staging", "sampleapp:v2")
	in["environment"] = "production"
	in["strategy"] = "rolling"
	// Probes go through the API server's service proxy, so every one
	// presents the token: an expired one would fail them and roll back.
	delete(in, "url")
	in["monitor-duration"] = "40s"
	in["monitor-interval"] = "500ms"
	res := e.runAction(t, in, "")
	require.Equal(t, 0, res.code, "the deploy outlived several token lifetimes")
	issued := len(e.c.OIDC().Tokens(reqTok))
	t.Logf("ID tokens of %s fetched during a 40s monitor: %d", lifetime, issued)
	assert.GreaterOrEqual(t, issued, 4, "a new token before each one expired")
	e.assertNoOIDCSecrets(t, res, in, reqTok)
}

func TestActionOIDCWithoutIDTokenPermission(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")
	before := e.snapshot(t)
	in := e.oidcInputs("production", "sampleapp:v2")
	res := e.runAction(t, in, "")
	assert.Equal(t, 2, res.code)
	assert.Contains(t, res.stdout+res.stderr, `"auth"`)
	assert.Contains(t, res.stdout+res.stderr, "permissions: id-token: write")
	assert.Equal(t, before, e.snapshot(t))
}
