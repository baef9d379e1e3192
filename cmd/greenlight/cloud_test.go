package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ebeautything/greenlight/internal/credential/credentialtest"
)

// Cloud credentials as the setup actions leave them, each marked.
const (
	secretAWSAccessKey    = secretMarker + "AKIAGREENLIGHTTEST"
	secretAWSSecretKey    = secretMarker + "/awsSecretAccessKey+0123456789"
	secretAWSSession      = secretMarker + "awsSessionToken/IQoJb3JpZ2luX2VjE+abc=="
	secretWebIdentity     = secretMarker + ".eyJ3ZWJJZGVudGl0eSI6dHJ1ZX0.webIdentitySig"
	secretAssumedKey      = secretMarker + "ASIAASSUMEDKEY"
	secretAssumedSecret   = secretMarker + "/assumedSecretKey+9876543210"
	secretAssumedSession  = secretMarker + "assumedSession/FwoGZXIvYXdzEB+xyz=="
	secretGoogleToken     = secretMarker + "-ya29.googleAccessToken_0123456789"
	secretFederatedToken  = secretMarker + ".eyJmZWRlcmF0ZWQiOnRydWV9.federatedSig"
	secretAzureToken      = secretMarker + "-eyJ0eXAiOiJKV1QifQ.azureAccessToken.sig"
	cloudAPIServerUser403 = "greenlight-deployer"
)

// apiServer is a loopback Kubernetes API server over TLS that records the
// bearer tokens it receives. Unauthorized refuses every token (401);
// otherwise it names the caller in a SelfSubjectReview, lists no rules,
// denies every SelfSubjectAccessReview and forbids anything else (403).
type apiServer struct {
	srv          *httptest.Server
	unauthorized bool

	mu     sync.Mutex
	tokens []string
	paths  []string
}

func newAPIServer(t *testing.T, unauthorized bool) *apiServer {
	a := &apiServer{unauthorized: unauthorized}
	a.srv = httptest.NewTLSServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *apiServer) serve(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	a.mu.Lock()
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && !slices.Contains(a.tokens, tok) {
		a.tokens = append(a.tokens, tok)
	}
	a.paths = append(a.paths, r.Method+" "+r.URL.Path)
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	status := func(code int, reason, message string) {
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{},
			"status": "Failure", "message": message, "reason": reason, "code": code})
	}
	if a.unauthorized || !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
		status(http.StatusUnauthorized, "Unauthorized", "Unauthorized")
		return
	}
	switch {
	case r.URL.Path == "/version":
		// Open to every authenticated user (system:public-info-viewer).
		fmt.Fprint(w, `{"major":"1","minor":"34","gitVersion":"v1.34.0"}`)
	case strings.HasSuffix(r.URL.Path, "/selfsubjectreviews"):
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"kind":"SelfSubjectReview","apiVersion":"authentication.k8s.io/v1","metadata":{},"status":{"userInfo":{"username":%q,"groups":["system:authenticated"]}}}`, cloudAPIServerUser403)
	case strings.HasSuffix(r.URL.Path, "/selfsubjectrulesreviews"):
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"kind":"SelfSubjectRulesReview","apiVersion":"authorization.k8s.io/v1","metadata":{},"spec":{},"status":{"resourceRules":[],"nonResourceRules":[],"incomplete":false}}`)
	case strings.HasSuffix(r.URL.Path, "/selfsubjectaccessreviews"):
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"kind":"SelfSubjectAccessReview","apiVersion":"authorization.k8s.io/v1","metadata":{},"spec":{},"status":{"allowed":false,"reason":"no RBAC policy matched"}}`)
	default:
		status(http.StatusForbidden, "Forbidden", fmt.Sprintf("%s %s is forbidden: User %q cannot do it", r.Method, r.URL.Path, cloudAPIServerUser403))
	}
}

func (a *apiServer) received() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.tokens)
}

// providerKubeconfig is a kubeconfig from internal/credential/testdata, as
// the provider's command writes it, with every cluster pointed at srv.
func providerKubeconfig(t *testing.T, name string, srv *httptest.Server) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(filepath.Join("..", "..", "internal", "credential", "testdata", name))
	require.NoError(t, err)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	for _, c := range cfg.Clusters {
		c.Server = srv.URL
		c.CertificateAuthorityData = ca
	}
	require.NotEmpty(t, cfg.AuthInfos[cfg.Contexts[cfg.CurrentContext].AuthInfo].Exec, "the user runs an exec plugin")
	data, err := clientcmd.Write(*cfg)
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(data)
}

// cloudCase is one provider's login as its setup action leaves it.
type cloudCase struct {
	kubeconfig string
	plugin     string
	// environ is what the setup action leaves in the job's environment.
	environ []string
	// marked are the credentials carrying the marker.
	marked []string
	// envSecrets are the secret values of environment variables, which
	// greenlight masks too.
	envSecrets []string
	// exact are secrets without the marker (a private key), looked for whole.
	exact []string
	// refusal is what the refusing token endpoint's answer says, which the
	// run's error passes on.
	refusal string
	// check inspects the tokens the API server received.
	check func(t *testing.T, tokens []string)
}

// eksTokenParts are the presigned URL inside an EKS token and its signed
// query values: each is a credential on its own.
func eksTokenParts(t *testing.T, tok string) []string {
	t.Helper()
	rest, ok := strings.CutPrefix(tok, "k8s-aws-v1.")
	require.True(t, ok, "an EKS token: %.20s", tok)
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	require.NoError(t, err)
	u, err := url.Parse(string(raw))
	require.NoError(t, err)
	q := u.Query()
	parts := []string{string(raw)}
	for _, name := range []string{"X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token"} {
		require.NotEmpty(t, q.Get(name), name)
		parts = append(parts, q.Get(name))
	}
	return parts
}

func eksStatic(t *testing.T, api *apiServer, refuse bool) cloudCase {
	dir := t.TempDir()
	return cloudCase{
		kubeconfig: providerKubeconfig(t, "eks-aws-iam-authenticator.yaml", api.srv),
		plugin:     "aws-iam-authenticator",
		environ: []string{
			"AWS_ACCESS_KEY_ID=" + secretAWSAccessKey, "AWS_SECRET_ACCESS_KEY=" + secretAWSSecretKey, "AWS_SESSION_TOKEN=" + secretAWSSession,
			"AWS_REGION=us-west-2", "AWS_DEFAULT_REGION=us-west-2",
			"AWS_CONFIG_FILE=" + filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "none"),
		},
		marked:     []string{secretAWSAccessKey, secretAWSSecretKey, secretAWSSession},
		envSecrets: []string{secretAWSSecretKey, secretAWSSession},
		check: func(t *testing.T, tokens []string) {
			for _, tok := range tokens {
				parts := eksTokenParts(t, tok)
				assert.True(t, strings.HasPrefix(parts[2], secretAWSAccessKey+"/"), "signed with the environment's key")
				assert.Equal(t, secretAWSSession, parts[3])
			}
		},
	}
}

func eksWebIdentity(t *testing.T, api *apiServer, refuse bool) cloudCase {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "web-identity-token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(secretWebIdentity), 0o600))
	sts := credentialtest.NewSTS(t, credentialtest.AWSCredentials{AccessKeyID: secretAssumedKey, SecretAccessKey: secretAssumedSecret, SessionToken: secretAssumedSession}, refuse)
	return cloudCase{
		kubeconfig: providerKubeconfig(t, "eks-aws-cli.yaml", api.srv),
		plugin:     "aws",
		refusal:    "AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity",
		environ: []string{
			// As aws-actions/configure-aws-credentials leaves web identity.
			"AWS_WEB_IDENTITY_TOKEN_FILE=" + tokenFile, "AWS_ROLE_ARN=arn:aws:iam::111122223333:role/github",
			"AWS_REGION=us-west-2", "AWS_DEFAULT_REGION=us-west-2", "AWS_ENDPOINT_URL_STS=" + sts.URL,
			"AWS_CONFIG_FILE=" + filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "none"),
		},
		marked: []string{secretWebIdentity, secretAssumedKey, secretAssumedSecret, secretAssumedSession},
		check: func(t *testing.T, tokens []string) {
			var actions []string
			for _, f := range sts.Forms() {
				actions = append(actions, f.Get("Action"))
			}
			if refuse {
				assert.Contains(t, actions, "AssumeRoleWithWebIdentity")
				return
			}
			assert.Equal(t, []string{"AssumeRoleWithWebIdentity", "AssumeRole"}, actions[:min(2, len(actions))], "web identity, then the kubeconfig's --role-arn")
			for _, tok := range tokens {
				parts := eksTokenParts(t, tok)
				assert.True(t, strings.HasPrefix(parts[2], secretAssumedKey+"/"), "signed with the assumed role's key")
			}
		},
	}
}

func gkeServiceAccount(t *testing.T, api *apiServer, refuse bool) cloudCase {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	google := credentialtest.NewGoogleToken(t, secretGoogleToken, refuse)
	creds, err := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "my-project", "private_key_id": secretMarker + "keyid0123", "private_key": keyPEM,
		"client_email": "deployer@my-project.iam.gserviceaccount.com", "client_id": "1", "token_uri": google.URL + "/token",
	})
	require.NoError(t, err)
	// google-github-actions/auth writes gha-creds-*.json in the workspace.
	file := filepath.Join(t.TempDir(), "gha-creds-0123456789abcdef.json")
	require.NoError(t, os.WriteFile(file, creds, 0o600))
	var keyLines []string
	for line := range strings.Lines(keyPEM) {
		if line = strings.TrimSpace(line); !strings.HasPrefix(line, "-----") {
			keyLines = append(keyLines, line)
		}
	}
	return cloudCase{
		kubeconfig: providerKubeconfig(t, "gke-gcloud.yaml", api.srv),
		plugin:     "gke-gcloud-auth-plugin",
		refusal:    "Invalid JWT Signature.",
		environ:    []string{"GOOGLE_APPLICATION_CREDENTIALS=" + file, "CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE=" + file, "GOOGLE_GHA_CREDS_PATH=" + file},
		marked:     []string{secretGoogleToken, secretMarker + "keyid0123"},
		exact:      keyLines,
		check: func(t *testing.T, tokens []string) {
			if refuse {
				return
			}
			assert.Equal(t, []string{secretGoogleToken}, tokens, "the access token from the Google token endpoint")
		},
	}
}

func aksWorkloadIdentity(t *testing.T, api *apiServer, refuse bool) cloudCase {
	aad := credentialtest.NewEntraID(t, secretAzureToken, refuse)
	dir := t.TempDir()
	// The binary trusts the fake Microsoft Entra ID through the roots Go
	// reads from SSL_CERT_FILE.
	roots := filepath.Join(dir, "roots.pem")
	require.NoError(t, os.WriteFile(roots, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: aad.Certificate().Raw}), 0o644))
	fed := filepath.Join(dir, "azure-identity-token")
	require.NoError(t, os.WriteFile(fed, []byte(secretFederatedToken), 0o600))
	return cloudCase{
		kubeconfig: providerKubeconfig(t, "aks-workloadidentity.yaml", api.srv),
		plugin:     "kubelogin",
		refusal:    "AADSTS700213",
		environ: []string{
			// As azure/login leaves workload identity federation.
			"AZURE_CLIENT_ID=11111111-1111-1111-1111-111111111111", "AZURE_TENANT_ID=22222222-2222-2222-2222-222222222222",
			"AZURE_FEDERATED_TOKEN_FILE=" + fed, "AZURE_AUTHORITY_HOST=" + aad.URL + "/", "SSL_CERT_FILE=" + roots,
		},
		marked: []string{secretFederatedToken, secretAzureToken},
		check: func(t *testing.T, tokens []string) {
			if refuse {
				return
			}
			assert.Equal(t, []string{secretAzureToken}, tokens, "the access token from Microsoft Entra ID")
		},
	}
}

// cloudInputs are a production deploy's inputs for a kubeconfig whose user
// runs a managed cluster's exec plugin.
func cloudInputs(e *env, kubeconfig string) map[string]string {
	return map[string]string{
		"environment": "production", "kubeconfig": kubeconfig, "namespace": "shop", "deployment": "shop",
		"image": "sampleapp:v2", "timeout": "30", "config": "/dev/null",
		"health-check-token": secretToken, "github-token": secretGitHub,
		"slack-webhook-url": e.slack.srv.URL + "/services/" + secretSlack,
		"alert-webhook-url": e.slack.srv.URL + "/hooks", "alert-webhook-secret": secretWebhook,
	}
}

// The leak tests run the binary as the runner does with a kubeconfig as
// the provider's command writes it and the credentials its setup action
// leaves, against an API server that refuses the token (401) or forbids
// the deploy (403), and sweep every output channel for the credentials,
// the tokens greenlight built and, for EKS, the presigned URL and its
// signed values.

func TestActionEKSStaticKeysNeverLeak(t *testing.T) {
	t.Parallel()
	testCloudLeak(t, eksStatic, false)
}

func TestActionEKSWebIdentityNeverLeaks(t *testing.T) {
	t.Parallel()
	testCloudLeak(t, eksWebIdentity, true)
}

func TestActionGKECredentialsNeverLeak(t *testing.T) {
	t.Parallel()
	testCloudLeak(t, gkeServiceAccount, true)
}

func TestActionAKSCredentialsNeverLeak(t *testing.T) {
	t.Parallel()
	testCloudLeak(t, aksWorkloadIdentity, true)
}

// The API server's answers, and a token endpoint that refuses.
const (
	answerUnauthorized = "unauthorized"
	answerForbidden    = "forbidden"
	answerTokenRefused = "token endpoint refuses"
)

func testCloudLeak(t *testing.T, setup func(*testing.T, *apiServer, bool) cloudCase, refusable bool) {
	answers := []string{answerUnauthorized, answerForbidden}
	if refusable {
		answers = append(answers, answerTokenRefused)
	}
	for _, answer := range answers {
		t.Run(answer, func(t *testing.T) {
			t.Parallel()
			api := newAPIServer(t, answer == answerUnauthorized)
			c := setup(t, api, answer == answerTokenRefused)
			e := &env{}
			e.github = newRecorder(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusCreated)
				fmt.Fprint(w, `{"id": 7}`)
			})
			e.slack = newRecorder(t, func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })
			e.environ = c.environ
			in := cloudInputs(e, c.kubeconfig)
			res := e.runAction(t, in, "")

			assert.Equal(t, 1, res.code)
			assert.Equal(t, "failed", res.outputs["status"])
			switch answer {
			case answerUnauthorized:
				assert.Contains(t, res.stderr, fmt.Sprintf("refused the %s token (401 Unauthorized)", c.plugin))
				assert.Contains(t, res.stderr, "nothing was changed")
			case answerForbidden:
				assert.Contains(t, res.stdout, "::group::validate")
				assert.Contains(t, res.stdout+res.stderr, "deployments.apps", "the missing permission is named")
				assert.Contains(t, res.stdout, `as user "`+cloudAPIServerUser403+`"`)
			case answerTokenRefused:
				assert.Empty(t, api.received(), "no token reached the API server")
				assert.Contains(t, res.stderr, c.refusal, "the token endpoint's reason is passed on")
				c.check(t, nil)
				assertCloudMasked(t, res, c.envSecrets)
				places := outputPlaces(e, res)
				for _, leak := range sweep(places, append(slices.Clone(markedSecrets), c.marked...)...) {
					t.Errorf("a secret leaked: %s", leak)
				}
				for _, leak := range sweepExact(places, append(slices.Clone(c.exact), in["kubeconfig"])...) {
					t.Errorf("a secret leaked: %s", leak)
				}
				return
			}
			tokens := api.received()
			require.NotEmpty(t, tokens, "the API server received a bearer token")
			c.check(t, tokens)

			var derived []string
			for _, tok := range tokens {
				derived = append(derived, tok)
				if strings.HasPrefix(tok, "k8s-aws-v1.") {
					derived = append(derived, eksTokenParts(t, tok)...)
				}
			}
			assertCloudMasked(t, res, append(derived, c.envSecrets...))
			places := outputPlaces(e, res)
			for _, leak := range sweep(places, append(slices.Clone(markedSecrets), c.marked...)...) {
				t.Errorf("a secret leaked: %s", leak)
			}
			for _, leak := range sweepExact(places, append(append(derived, c.exact...), in["kubeconfig"])...) {
				t.Errorf("a token leaked: %s", leak)
			}
		})
	}
}

// outputPlaces are the channels a secret must never reach: stdout without
// its ::add-mask:: commands, stderr, outputs, summary, report and the
// GitHub and Slack receivers.
func outputPlaces(e *env, res result) map[string]string {
	var logged []string
	for _, line := range strings.Split(res.stdout, "\n") {
		if !strings.HasPrefix(line, "::add-mask::") {
			logged = append(logged, line)
		}
	}
	return map[string]string{
		"stdout": strings.Join(logged, "\n"), "stderr": res.stderr, "outputs": mustJSON(res.outputs),
		"summary": res.summary, "report": res.report,
		"slack": strings.Join(e.slack.requests(), "\n"), "github": strings.Join(e.github.requests(), "\n"),
	}
}

// assertCloudMasked checks that each secret is masked with ::add-mask::
// before the first line of stdout that is not itself a mask: the token is
// made for the first request, before greenlight prints anything else.
func assertCloudMasked(t *testing.T, res result, secrets []string) {
	t.Helper()
	lines := strings.Split(res.stdout, "\n")
	firstOther := len(lines)
	for i, l := range lines {
		if !strings.HasPrefix(l, "::add-mask::") {
			firstOther = i
			break
		}
	}
	// Workflow command data escapes %, CR and LF; the runner undoes it.
	escape := strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A")
	for _, s := range secrets {
		at := slices.Index(lines, "::add-mask::"+escape.Replace(s))
		if assert.GreaterOrEqual(t, at, 0, "%.24s… is masked", s) {
			assert.Less(t, at, firstOther, "%.24s… is masked before any other line", s)
		}
	}
}
