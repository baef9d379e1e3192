package testcluster

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// OIDCUsernamePrefix is put before the token's sub to make the
// Kubernetes user name, so no token can name a system: user.
const OIDCUsernamePrefix = "github:"

// OIDCOwner is the repository owner whose jobs the test cluster's
// authentication configuration accepts.
const OIDCOwner = "acme"

// OIDCIssuer is a GitHub-style OIDC issuer served on loopback over TLS:
// the discovery document and the JWKS that kube-apiserver's JWT
// authenticator reads, and RS256 tokens with GitHub Actions' claim set.
// It also serves ID tokens the way the Actions runner offers them to a job.
type OIDCIssuer struct {
	srv    *httptest.Server
	key    *rsa.PrivateKey
	kid    string
	caPEM  []byte
	mu     sync.Mutex
	closed []func()
	tokens map[string][]string
}

// StartOIDCIssuer starts an issuer on 127.0.0.1.
func StartOIDCIssuer() (*OIDCIssuer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate OIDC signing key: %w", err)
	}
	sum := sha256.Sum256(key.PublicKey.N.Bytes())
	i := &OIDCIssuer{key: key, kid: base64.RawURLEncoding.EncodeToString(sum[:8])}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		// The fields GitHub's issuer publishes that a verifier reads.
		writeJSON(w, map[string]any{
			"issuer": i.URL(), "jwks_uri": i.URL() + "/.well-known/jwks",
			"subject_types_supported":               []string{"public", "pairwise"},
			"response_types_supported":              []string{"id_token"},
			"claims_supported":                      []string{"sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref", "repository", "repository_owner", "environment", "run_id", "workflow", "actor"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"scopes_supported":                      []string{"openid"},
		})
	})
	mux.HandleFunc("GET /.well-known/jwks", func(w http.ResponseWriter, _ *http.Request) {
		pub := key.PublicKey
		writeJSON(w, map[string]any{"keys": []map[string]any{{
			"kty": "RSA", "alg": "RS256", "use": "sig", "kid": i.kid,
			"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		}}})
	})
	i.srv = httptest.NewUnstartedServer(mux)
	i.srv.StartTLS()
	cert := i.srv.Certificate()
	i.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	return i, nil
}

// URL is the issuer URL, the iss claim of its tokens.
func (i *OIDCIssuer) URL() string { return i.srv.URL }

// CAPEM is the issuer's TLS certificate authority, PEM.
func (i *OIDCIssuer) CAPEM() []byte { return i.caPEM }

// Tokens are the tokens the ID-token endpoint of requestToken handed
// out, oldest first.
func (i *OIDCIssuer) Tokens(requestToken string) []string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return append([]string(nil), i.tokens[requestToken]...)
}

// Close stops the issuer and every ID-token endpoint.
func (i *OIDCIssuer) Close() {
	i.mu.Lock()
	closers := i.closed
	i.closed = nil
	i.mu.Unlock()
	for _, c := range closers {
		c()
	}
	i.srv.Close()
}

// GitHubClaims are the claims GitHub puts in a job's ID token, for a job
// of repository (owner/name) deploying to environment on ref.
type GitHubClaims struct {
	Repository, Environment, Ref string
}

// Subject is the sub claim GitHub gives such a job: the environment when
// the job has one, else the ref.
func (c GitHubClaims) Subject() string {
	if c.Environment != "" {
		return "repo:" + c.Repository + ":environment:" + c.Environment
	}
	return "repo:" + c.Repository + ":ref:" + c.Ref
}

// Sign returns a token for claims with the given audience and lifetime.
func (i *OIDCIssuer) Sign(c GitHubClaims, audience string, lifetime time.Duration) string {
	now := time.Now()
	owner, _, _ := strings.Cut(c.Repository, "/")
	sub := c.Subject()
	jti := make([]byte, 8)
	_, _ = rand.Read(jti)
	claims := map[string]any{
		"iss": i.URL(), "aud": audience, "sub": sub,
		"iat": now.Unix(), "nbf": now.Add(-5 * time.Second).Unix(), "exp": now.Add(lifetime).Unix(),
		"jti": fmt.Sprintf("%x", jti), "ref": c.Ref, "ref_type": "branch", "sha": "0123456789abcdef0123456789abcdef01234567",
		"repository": c.Repository, "repository_owner": owner, "repository_visibility": "private",
		"repository_id": "123456", "repository_owner_id": "654321", "run_id": "42", "run_number": "7", "run_attempt": "1",
		"actor": "octocat", "actor_id": "1", "workflow": "deploy", "event_name": "push",
		"job_workflow_ref": c.Repository + "/.github/workflows/deploy.yml@" + c.Ref, "runner_environment": "github-hosted",
	}
	if c.Environment != "" {
		claims["environment"] = c.Environment
	}
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": i.kid})
	payload, _ := json.Marshal(claims)
	signing := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
	digest := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, i.key, crypto.SHA256, digest[:])
	if err != nil {
		panic(fmt.Sprintf("sign OIDC token: %v", err))
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// IDTokenEndpoint serves ID tokens for claims the way the Actions runner
// offers them to a job: a GET of requestURL with "&audience=…" appended,
// authorised by "Bearer <requestToken>", answered {"count":…,"value":jwt}.
// The two values are what a job sees as ACTIONS_ID_TOKEN_REQUEST_URL and
// ACTIONS_ID_TOKEN_REQUEST_TOKEN. It serves plain HTTP on loopback.
func (i *OIDCIssuer) IDTokenEndpoint(c GitHubClaims, lifetime time.Duration) (requestURL, requestToken string, err error) {
	raw := make([]byte, 24)
	_, _ = rand.Read(raw)
	requestToken = "idreq-" + base64.RawURLEncoding.EncodeToString(raw)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", fmt.Errorf("listen for the ID-token endpoint: %w", err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.Header.Get("Authorization") != "Bearer "+requestToken {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if r.URL.Query().Get("api-version") != "2.0" {
			http.Error(w, "api-version 2.0 expected", http.StatusBadRequest)
			return
		}
		aud := r.URL.Query().Get("audience")
		if aud == "" {
			aud = "https://github.com/acme"
		}
		tok := i.Sign(c, aud, lifetime)
		i.mu.Lock()
		if i.tokens == nil {
			i.tokens = map[string][]string{}
		}
		i.tokens[requestToken] = append(i.tokens[requestToken], tok)
		i.mu.Unlock()
		writeJSON(w, map[string]any{"count": 1, "value": tok})
	})}
	go func() { _ = srv.Serve(ln) }()
	i.mu.Lock()
	i.closed = append(i.closed, func() { _ = srv.Close() })
	i.mu.Unlock()
	path := "/00000000-0000-0000-0000-000000000000/_apis/distributedtask/hubs/Actions/plans/1/jobs/2/idtoken?api-version=2.0"
	return "http://" + ln.Addr().String() + path, requestToken, nil
}

// AuthenticationConfiguration is kube-apiserver's structured
// authentication configuration trusting this issuer for audience: user
// name from sub (with OIDCUsernamePrefix), groups from repository and
// environment, and only repositories of owner.
func (i *OIDCIssuer) AuthenticationConfiguration(audience, owner string) string {
	ca := strings.ReplaceAll(strings.TrimSpace(string(i.caPEM)), "\n", "\n      ")
	return fmt.Sprintf(`apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
jwt:
- issuer:
    url: %s
    audiences:
    - %s
    certificateAuthority: |
      %s
  claimValidationRules:
  - expression: 'claims.repository_owner == %q'
    message: only repositories of %s may deploy
  claimMappings:
    username:
      claim: sub
      prefix: %q
    groups:
      expression: '["github:repository:" + claims.repository] + (has(claims.environment) ? ["github:environment:" + claims.repository + ":" + claims.environment] : [])'
`, i.URL(), audience, ca, owner, owner, OIDCUsernamePrefix)
}

// configureOIDC makes kube-apiserver trust the issuer: it fixes the API
// server's port, so that its URL — the tokens' default audience — is known
// before it starts, and writes the authentication configuration.
func (c *Cluster) configureOIDC(api *envtest.APIServer) error {
	issuer, err := StartOIDCIssuer()
	if err != nil {
		return err
	}
	c.oidc = issuer
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("choose the API server port: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	api.SecureServing.Address = "127.0.0.1"
	api.SecureServing.Port = strconv.Itoa(port)
	c.oidcAudience = "https://127.0.0.1:" + strconv.Itoa(port)
	file := filepath.Join(c.workDir, "authentication-config.yaml")
	if err := os.WriteFile(file, []byte(issuer.AuthenticationConfiguration(c.oidcAudience, OIDCOwner)), 0o644); err != nil {
		return fmt.Errorf("write authentication configuration: %w", err)
	}
	api.Configure().Set("authentication-config", file)
	return nil
}

// OIDC is the issuer the API server trusts, nil unless Options.OIDC.
func (c *Cluster) OIDC() *OIDCIssuer { return c.oidc }

// OIDCAudience is the audience the API server accepts from the issuer: its
// own URL, as greenlight's audience input defaults to.
func (c *Cluster) OIDCAudience() string { return c.oidcAudience }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
