package credential

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/ebeautything/greenlight/internal/credential/credentialtest"
	"github.com/ebeautything/greenlight/internal/kube"
)

func mapEnv(m map[string]string) Env {
	return Env{Getenv: func(k string) string { return m[k] }}
}

// checkEKSToken checks a token against what aws-iam-authenticator's
// verifier accepts: the prefix, base64url of an https STS URL, path "/",
// GetCallerIdentity 2011-06-15, SigV4 with x-k8s-aws-id signed, a
// presign expiry no longer than 15 minutes and a fresh X-Amz-Date.
func checkEKSToken(t *testing.T, tok, cluster, accessKey, region string) url.Values {
	t.Helper()
	require.True(t, strings.HasPrefix(tok, "k8s-aws-v1."))
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(tok, "k8s-aws-v1."))
	require.NoError(t, err, "base64url without padding")
	u, err := url.Parse(string(raw))
	require.NoError(t, err)
	q := u.Query()
	assert.Equal(t, "/", u.Path)
	assert.Equal(t, "GetCallerIdentity", q.Get("Action"))
	assert.Equal(t, "2011-06-15", q.Get("Version"))
	assert.Equal(t, "AWS4-HMAC-SHA256", q.Get("X-Amz-Algorithm"))
	assert.Equal(t, "60", q.Get("X-Amz-Expires"))
	signed := strings.Split(q.Get("X-Amz-SignedHeaders"), ";")
	assert.Contains(t, signed, "host")
	assert.Contains(t, signed, "x-k8s-aws-id")
	cred := strings.Split(q.Get("X-Amz-Credential"), "/")
	require.Len(t, cred, 5)
	assert.Equal(t, []string{accessKey, region, "sts", "aws4_request"}, []string{cred[0], cred[2], cred[3], cred[4]})
	date, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), date, time.Minute)
	assert.Len(t, q.Get("X-Amz-Signature"), 64)
	return q
}

func TestEKSTokenWithStaticCredentials(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/eks-aws-iam-authenticator.yaml")
	require.NoError(t, err)
	kc, err := kube.LoadKubeconfig(string(data), "")
	require.NoError(t, err)
	src, err := ForExec(context.Background(), kc.Exec, mapEnv(map[string]string{
		"AWS_ACCESS_KEY_ID": "AKIAEXAMPLEKEY", "AWS_SECRET_ACCESS_KEY": "secretKeyMarker123", "AWS_SESSION_TOKEN": "sessionTokenMarker456", "AWS_REGION": "eu-west-1",
	}))
	require.NoError(t, err)
	tok, err := src.Token()
	require.NoError(t, err)
	q := checkEKSToken(t, tok.AccessToken, "my-cluster", "AKIAEXAMPLEKEY", "eu-west-1")
	raw, _ := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(tok.AccessToken, "k8s-aws-v1."))
	u, _ := url.Parse(string(raw))
	assert.Equal(t, "https", u.Scheme)
	assert.Equal(t, "sts.eu-west-1.amazonaws.com", u.Host, "a host the verifier accepts")
	assert.Equal(t, "sessionTokenMarker456", q.Get("X-Amz-Security-Token"))
	assert.NotContains(t, string(raw), "secretKeyMarker123")
	assert.WithinDuration(t, time.Now().Add(14*time.Minute), tok.Expiry, time.Minute)
}

func TestEKSAWSCLIKubeconfigAssumesRoleThroughSTS(t *testing.T) {
	t.Parallel()
	sts := credentialtest.NewSTS(t, credentialtest.AWSCredentials{AccessKeyID: "ASIAASSUMED", SecretAccessKey: "assumedSecretKey000", SessionToken: "assumedSession000"}, false)
	data, err := os.ReadFile("testdata/eks-aws-cli.yaml")
	require.NoError(t, err)
	kc, err := kube.LoadKubeconfig(string(data), "")
	require.NoError(t, err)
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "web-identity")
	require.NoError(t, os.WriteFile(tokenFile, []byte("webIdentityJWTMarker"), 0o600))
	src, err := ForExec(context.Background(), kc.Exec, mapEnv(map[string]string{
		// As aws-actions/configure-aws-credentials leaves web identity.
		"AWS_WEB_IDENTITY_TOKEN_FILE": tokenFile, "AWS_ROLE_ARN": "arn:aws:iam::111122223333:role/github",
		"AWS_ENDPOINT_URL_STS": sts.URL, "AWS_CONFIG_FILE": filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "none"),
	}))
	require.NoError(t, err)
	tok, err := src.Token()
	require.NoError(t, err)
	checkEKSToken(t, tok.AccessToken, "my-cluster", "ASIAASSUMED", "us-west-2")

	forms := sts.Forms()
	require.Len(t, forms, 2, "web identity, then the kubeconfig's --role-arn")
	web, assume := forms[0], forms[1]
	assert.Equal(t, "AssumeRoleWithWebIdentity", web.Get("Action"))
	assert.Equal(t, "2011-06-15", web.Get("Version"))
	assert.Equal(t, "arn:aws:iam::111122223333:role/github", web.Get("RoleArn"))
	assert.Equal(t, "webIdentityJWTMarker", web.Get("WebIdentityToken"))
	assert.NotEmpty(t, web.Get("RoleSessionName"))
	assert.Equal(t, "AssumeRole", assume.Get("Action"))
	assert.Equal(t, "arn:aws:iam::111122223333:role/deployer", assume.Get("RoleArn"))
	assert.Equal(t, "greenlight", assume.Get("RoleSessionName"))
}

func TestEKSWithoutCredentialsNamesWhatWasLookedFor(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/eks-aws-iam-authenticator.yaml")
	require.NoError(t, err)
	kc, err := kube.LoadKubeconfig(string(data), "")
	require.NoError(t, err)
	_, err = ForExec(context.Background(), kc.Exec, mapEnv(nil))
	var ee *ExecError
	require.ErrorAs(t, err, &ee)
	assert.Contains(t, err.Error(), `"aws-iam-authenticator"`)
	assert.Contains(t, err.Error(), "AWS_WEB_IDENTITY_TOKEN_FILE")
	assert.Contains(t, err.Error(), "configure-aws-credentials")
}

func TestEKSTokenRefreshedBeforeExpiry(t *testing.T) {
	t.Parallel()
	data, _ := os.ReadFile("testdata/eks-aws-iam-authenticator.yaml")
	kc, err := kube.LoadKubeconfig(string(data), "")
	require.NoError(t, err)
	src, err := ForExec(context.Background(), kc.Exec, mapEnv(map[string]string{"AWS_ACCESS_KEY_ID": "AKIAEXAMPLEKEY", "AWS_SECRET_ACCESS_KEY": "s"}))
	require.NoError(t, err)
	eks := src.TokenSource.(*eksSource)
	eks.lifetime = 1500 * time.Millisecond
	r := NewRefresher(src, nil)
	first, err := r.Token()
	require.NoError(t, err)
	again, _ := r.Token()
	assert.Equal(t, first.AccessToken, again.AccessToken, "cached while fresh")
	time.Sleep(1300 * time.Millisecond) // past 80% of the lifetime, before expiry
	assert.True(t, time.Now().Before(first.Expiry))
	next, err := r.Token()
	require.NoError(t, err)
	assert.NotEqual(t, first.AccessToken, next.AccessToken, "a new token before the old one expired")
}

// counting is a token source that hands out numbered tokens.
type counting struct {
	n        atomic.Int32
	lifetime time.Duration
}

func (c *counting) Token() (*oauth2.Token, error) {
	n := c.n.Add(1)
	return &oauth2.Token{AccessToken: fmt.Sprint("t", n), Expiry: time.Now().Add(c.lifetime)}, nil
}

func TestRefresherResetsAfterUnauthorized(t *testing.T) {
	t.Parallel()
	c := &counting{lifetime: time.Hour}
	r := NewRefresher(c, nil)
	tok, _ := r.Token()
	assert.Equal(t, "t1", tok.AccessToken)
	r.ResetTokenOlderThan(time.Now().Add(time.Second))
	tok, _ = r.Token()
	assert.Equal(t, "t2", tok.AccessToken)
}

func TestGKEServiceAccountFileFromHostWorkspace(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	google := credentialtest.NewGoogleToken(t, "ya29.gkeAccessMarker", false)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: must(x509.MarshalPKCS8PrivateKey(key))})
	creds, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "my-project", "private_key_id": "k1", "private_key": string(keyPEM),
		"client_email": "deployer@my-project.iam.gserviceaccount.com", "client_id": "1", "token_uri": google.URL + "/token",
	})
	// google-github-actions/auth writes gha-creds-*.json in the workspace and
	// exports its host path; the container sees it under GITHUB_WORKSPACE.
	workspace := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(workspace, "gha-creds-0123.json"), creds, 0o600))
	data, _ := os.ReadFile("testdata/gke-gcloud.yaml")
	kc, err := kube.LoadKubeconfig(string(data), "")
	require.NoError(t, err)
	src, err := ForExec(context.Background(), kc.Exec, mapEnv(map[string]string{
		"GOOGLE_APPLICATION_CREDENTIALS": "/home/runner/work/shop/shop/gha-creds-0123.json",
		"RUNNER_WORKSPACE":               "/home/runner/work/shop",
		"GITHUB_WORKSPACE":               workspace,
	}))
	require.NoError(t, err)
	tok, err := src.Token()
	require.NoError(t, err)
	assert.Equal(t, "ya29.gkeAccessMarker", tok.AccessToken)
	require.Len(t, google.Forms(), 1)
	got := google.Forms()[0]
	assert.Equal(t, "urn:ietf:params:oauth:grant-type:jwt-bearer", got.Get("grant_type"))
	parts := strings.Split(got.Get("assertion"), ".")
	require.Len(t, parts, 3)
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	require.NoError(t, json.Unmarshal(payload, &claims))
	assert.Equal(t, "deployer@my-project.iam.gserviceaccount.com", claims["iss"])
	assert.Equal(t, google.URL+"/token", claims["aud"])
	assert.Equal(t, strings.Join(gkeScopes, " "), claims["scope"])
}

func TestGKEWithoutCredentials(t *testing.T) {
	t.Parallel()
	data, _ := os.ReadFile("testdata/gke-gcloud.yaml")
	kc, err := kube.LoadKubeconfig(string(data), "")
	require.NoError(t, err)
	_, err = ForExec(context.Background(), kc.Exec, mapEnv(nil))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "GOOGLE_APPLICATION_CREDENTIALS")
	assert.Contains(t, err.Error(), "google-github-actions/auth")
}

func TestAKSWorkloadIdentityAgainstFakeEntraID(t *testing.T) {
	t.Parallel()
	aad := credentialtest.NewEntraID(t, "aksAccessMarker", false)
	fed := filepath.Join(t.TempDir(), "federated")
	require.NoError(t, os.WriteFile(fed, []byte("federatedJWTMarker"), 0o600))
	data, _ := os.ReadFile("testdata/aks-workloadidentity.yaml")
	kc, err := kube.LoadKubeconfig(string(data), "")
	require.NoError(t, err)
	env := mapEnv(map[string]string{
		"AZURE_CLIENT_ID": "11111111-1111-1111-1111-111111111111", "AZURE_TENANT_ID": "22222222-2222-2222-2222-222222222222",
		"AZURE_FEDERATED_TOKEN_FILE": fed, "AZURE_AUTHORITY_HOST": aad.URL + "/",
	})
	env.HTTPClient = aad.Client()
	src, err := ForExec(context.Background(), kc.Exec, env)
	require.NoError(t, err)
	tok, err := src.Token()
	require.NoError(t, err)
	assert.Equal(t, "aksAccessMarker", tok.AccessToken)
	require.Len(t, aad.Forms(), 1)
	got := aad.Forms()[0]
	assert.Equal(t, "client_credentials", got.Get("grant_type"))
	assert.Equal(t, "11111111-1111-1111-1111-111111111111", got.Get("client_id"))
	assert.Equal(t, "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", got.Get("client_assertion_type"))
	assert.Equal(t, "federatedJWTMarker", got.Get("client_assertion"))
	assert.Contains(t, got.Get("scope"), "6dae42f8-4368-4678-94ff-3960e28e3630/.default")
}

func TestAKSAzureCLIModeSaysWhichModeToUse(t *testing.T) {
	t.Parallel()
	data, _ := os.ReadFile("testdata/aks-azurecli.yaml")
	kc, err := kube.LoadKubeconfig(string(data), "")
	require.NoError(t, err)
	_, err = ForExec(context.Background(), kc.Exec, mapEnv(nil))
	var ee *ExecError
	require.ErrorAs(t, err, &ee)
	assert.Contains(t, err.Error(), "azurecli")
	assert.Contains(t, err.Error(), "workloadidentity")
	assert.Contains(t, err.Error(), "spn")
}

func TestExecUnknownPluginNamesSupportedWays(t *testing.T) {
	t.Parallel()
	src, err := ForExec(context.Background(), &clientcmdapi.ExecConfig{Command: "/usr/local/bin/oci", Args: []string{"ce", "cluster", "generate-token"}}, mapEnv(nil))
	assert.Nil(t, src)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"/usr/local/bin/oci ce cluster generate-token"`)
	assert.Contains(t, err.Error(), "gke-gcloud-auth-plugin")
	assert.Contains(t, err.Error(), "github-oidc")
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestEKSTokenSecretsNameThePresignedURLAndItsSignedValues(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/eks-aws-iam-authenticator.yaml")
	require.NoError(t, err)
	kc, err := kube.LoadKubeconfig(string(data), "")
	require.NoError(t, err)
	src, err := ForExec(context.Background(), kc.Exec, mapEnv(map[string]string{
		"AWS_ACCESS_KEY_ID": "AKIAEXAMPLEKEY", "AWS_SECRET_ACCESS_KEY": "secretKeyMarker123", "AWS_SESSION_TOKEN": "session/Token+456=", "AWS_REGION": "eu-west-1",
	}))
	require.NoError(t, err)
	assert.Equal(t, []string{"secretKeyMarker123", "session/Token+456="}, src.Secrets, "the environment's secrets are masked too")
	var seen []string
	r := NewRefresher(src, nil).OnNew(func(tok *oauth2.Token) { seen = append(seen, tok.AccessToken) })
	tok, err := r.Token()
	require.NoError(t, err)
	assert.Equal(t, []string{tok.AccessToken}, seen, "told of the new token before it is used")
	raw, _ := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(tok.AccessToken, "k8s-aws-v1."))
	q := must(url.Parse(string(raw))).Query()
	secrets := TokenSecrets(tok.AccessToken)
	for _, want := range []string{tok.AccessToken, string(raw), q.Get("X-Amz-Signature"), q.Get("X-Amz-Credential"), url.QueryEscape(q.Get("X-Amz-Credential")),
		"session/Token+456=", url.QueryEscape("session/Token+456=")} {
		assert.Contains(t, secrets, want)
	}
	assert.Equal(t, []string{"ya29.plain"}, TokenSecrets("ya29.plain"), "other tokens are masked whole")
}
