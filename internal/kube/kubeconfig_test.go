package kube

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
)

// Distinctive credential values: no error message may ever contain them.
const (
	testToken   = "gl-secret-token-5f0c1b7e9a3d4c2b8e6f"
	testKeyData = "gl-secret-client-key-7c41a0d2"
	testCAData  = "gl-secret-ca-bytes-9e2f61b3"
	testCrtData = "gl-secret-client-cert-41d8c0aa"
)

// testKubeconfig returns a kubeconfig with two contexts; the "~~~???" comment
// makes its standard and URL-safe base64 encodings differ.
func testKubeconfig(server, caPEM, current string) string {
	if caPEM == "" {
		caPEM = testCAData
	}
	currentLine := ""
	if current != "" {
		currentLine = "current-context: " + current + "\n"
	}
	return fmt.Sprintf(`# ~~~??? kubeconfig for tests
apiVersion: v1
kind: Config
clusters:
- name: prod-cluster
  cluster:
    server: %s
    certificate-authority-data: %s
contexts:
- name: production
  context:
    cluster: prod-cluster
    user: deployer
    namespace: payments
- name: staging
  context:
    cluster: prod-cluster
    user: deployer
%susers:
- name: deployer
  user:
    token: %s
    client-certificate-data: %s
    client-key-data: %s
`, server, base64.StdEncoding.EncodeToString([]byte(caPEM)), currentLine, testToken,
		base64.StdEncoding.EncodeToString([]byte(testCrtData)),
		base64.StdEncoding.EncodeToString([]byte(testKeyData)))
}

func assertNoSecrets(t *testing.T, msg string) {
	t.Helper()
	for _, s := range []string{
		testToken, testKeyData, testCAData, testCrtData,
		base64.StdEncoding.EncodeToString([]byte(testKeyData)),
		base64.StdEncoding.EncodeToString([]byte(testCrtData)),
		base64.StdEncoding.EncodeToString([]byte(testCAData)),
	} {
		assert.NotContains(t, msg, s, "error message leaks a credential")
	}
	assert.NotContains(t, msg, "gl-secret")
}

func wrapLines(s string, width int) string {
	var b strings.Builder
	for len(s) > width {
		b.WriteString(s[:width])
		b.WriteString("\n")
		s = s[width:]
	}
	b.WriteString(s)
	return b.String()
}

func TestLoadKubeconfigEncodings(t *testing.T) {
	t.Parallel()
	plain := testKubeconfig("https://10.0.0.1:6443", "", "production")
	std := base64.StdEncoding.EncodeToString([]byte(plain))
	urlSafe := base64.URLEncoding.EncodeToString([]byte(plain))
	require.NotEqual(t, std, urlSafe, "the fixture must exercise both alphabets")
	unpadded := plain
	for len(unpadded)%3 == 0 {
		unpadded += "#\n"
	}
	require.NotEqual(t, base64.URLEncoding.EncodeToString([]byte(unpadded)), base64.RawURLEncoding.EncodeToString([]byte(unpadded)))

	tests := map[string]string{
		"plain YAML":                   plain,
		"plain YAML with CRLF":         strings.ReplaceAll(plain, "\n", "\r\n"),
		"standard base64":              std,
		"standard base64 wrapped":      wrapLines(std, 76) + "\n",
		"base64 surrounded by spaces":  "  \n" + std + "\n\n",
		"URL-safe base64":              urlSafe,
		"unpadded standard base64":     base64.RawStdEncoding.EncodeToString([]byte(unpadded)),
		"unpadded URL-safe base64":     base64.RawURLEncoding.EncodeToString([]byte(unpadded)),
		"base64 wrapped with CRLF":     strings.ReplaceAll(wrapLines(std, 64), "\n", "\r\n"),
		"plain YAML with leading BOM":  "\ufeff" + plain,
		"plain YAML with blank prefix": "\n\n" + plain,
	}
	for name, secret := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			kc, err := LoadKubeconfig(secret, "")
			require.NoError(t, err)
			assert.Equal(t, "production", kc.Context)
			assert.Equal(t, "payments", kc.Namespace)
			assert.Equal(t, "https://10.0.0.1:6443", kc.Server)
			assert.Equal(t, "https://10.0.0.1:6443", kc.REST.Host)
			assert.Equal(t, testToken, kc.REST.BearerToken)
			assert.Equal(t, testCAData, string(kc.REST.CAData))
			assert.Equal(t, testKeyData, string(kc.REST.KeyData))
			assert.Equal(t, testCrtData, string(kc.REST.CertData))
		})
	}
}

func TestLoadKubeconfigContexts(t *testing.T) {
	t.Parallel()
	withCurrent := testKubeconfig("https://10.0.0.1:6443", "", "production")
	noCurrent := testKubeconfig("https://10.0.0.1:6443", "", "")

	kc, err := LoadKubeconfig(withCurrent, "staging")
	require.NoError(t, err)
	assert.Equal(t, "staging", kc.Context)
	assert.Empty(t, kc.Namespace, "a context without namespace leaves the choice to the caller")

	kc, err = LoadKubeconfig(noCurrent, "production")
	require.NoError(t, err)
	assert.Equal(t, "production", kc.Context)

	_, err = LoadKubeconfig(withCurrent, "prod")
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrUnknownContext)
	assert.Equal(t, `kubeconfig context not found: no context "prod"; available contexts: "production", "staging"`, err.Error())
	assertNoSecrets(t, err.Error())

	_, err = LoadKubeconfig(noCurrent, "")
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrNoCurrentContext)
	assert.Contains(t, err.Error(), `available contexts: "production", "staging"`)
	assertNoSecrets(t, err.Error())

	// The current-context names a context that is not there.
	dangling := strings.Replace(withCurrent, "current-context: production", "current-context: gone", 1)
	_, err = LoadKubeconfig(dangling, "")
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrUnknownContext)
}

func TestLoadKubeconfigMalformed(t *testing.T) {
	t.Parallel()
	deployment := "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n"
	brokenYAML := "apiVersion: v1\nkind: Config\nusers:\n- name: x\n  user:\n    token: " + testToken + "\n   bad: [indent\n"
	tests := []struct {
		name   string
		secret string
		want   string
	}{
		{"empty", "", "the secret is empty"},
		{"only whitespace", " \n\t", "the secret is empty"},
		{"bare token pasted", testToken + ".sig", "is not a kubeconfig"},
		{"base64 characters that do not decode", "abcde", "neither valid base64 nor a YAML kubeconfig"},
		{"binary behind base64", base64.StdEncoding.EncodeToString([]byte{0xff, 0xfe, 0x00, 0x81, 0x9c}), "does not decode to text"},
		{"broken YAML", brokenYAML, "neither base64 nor valid YAML (line "},
		{"broken YAML behind base64", base64.StdEncoding.EncodeToString([]byte(brokenYAML)), "the base64-decoded secret is neither base64 nor valid YAML"},
		{"YAML mapping without clusters", "token: " + testToken + "\n", "has no clusters or no contexts"},
		{"YAML list", "- token: " + testToken + "\n", "is not a kubeconfig"},
		{"dash and token look like URL-safe base64", "- " + testToken + "\n", "neither valid base64 nor a YAML kubeconfig"},
		{"other kind", deployment, `YAML of kind "Deployment", not a kubeconfig`},
		{"other kind with odd name", "kind: \"" + testToken + "\"\n", "YAML of another kind"},
		{
			"clusters of the wrong shape",
			"apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: " + testToken + "\ncontexts:\n- name: x\n  context: {cluster: c}\n",
			"is not a valid kubeconfig",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := LoadKubeconfig(tt.secret, "")
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrKubeconfigMalformed)
			assert.Contains(t, err.Error(), tt.want)
			assertNoSecrets(t, err.Error())
		})
	}
}

func TestLoadKubeconfigUnusableContext(t *testing.T) {
	t.Parallel()
	secret := testKubeconfig("https://10.0.0.1:6443", "", "production") + `
`
	// A context whose cluster is missing cannot make a client.
	secret = strings.Replace(secret, "- name: staging\n  context:\n    cluster: prod-cluster", "- name: staging\n  context:\n    cluster: missing", 1)
	_, err := LoadKubeconfig(secret, "staging")
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrKubeconfigInvalid)
	assert.Contains(t, err.Error(), `context "staging"`)
	assertNoSecrets(t, err.Error())
}

func TestRedact(t *testing.T) {
	t.Parallel()
	msg := redact("token abcdef and abcdefgh and ab", []string{"abcdef", "abcdefgh", "ab", ""})
	assert.Equal(t, "token [redacted] and [redacted] and ab", msg)
}

// statusServer answers every request with the given Kubernetes status code
// and records the bearer token it saw.
func statusServer(t *testing.T, status *apierrors.StatusError, seen chan<- string) *httptest.Server {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case seen <- strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "):
		default:
		}
		body := status.ErrStatus
		body.Kind, body.APIVersion = "Status", "v1"
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(int(body.Code))
		_ = json.NewEncoder(w).Encode(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func serverCAPEM(srv *httptest.Server) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
}

// otherCAPEM returns a CA certificate that signed nothing the test servers use.
func otherCAPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "unrelated test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// serverKubeconfig is testKubeconfig without the placeholder client
// certificate, which a real TLS handshake would reject.
func serverKubeconfig(server, caPEM string) string {
	var kept []string
	for line := range strings.SplitSeq(testKubeconfig(server, caPEM, "production"), "\n") {
		if !strings.Contains(line, "client-certificate-data") && !strings.Contains(line, "client-key-data") {
			kept = append(kept, line)
		}
	}
	return strings.Join(kept, "\n")
}

func clientFor(t *testing.T, server, caPEM string) kubernetes.Interface {
	t.Helper()
	if caPEM == "" {
		caPEM = otherCAPEM(t)
	}
	kc, err := LoadKubeconfig(serverKubeconfig(server, caPEM), "")
	require.NoError(t, err)
	kc.REST.Timeout = 5 * time.Second
	client, err := kubernetes.NewForConfig(kc.REST)
	require.NoError(t, err)
	return client
}

func TestClassifyAPIErrorAgainstServers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("401 unauthorized", func(t *testing.T) {
		t.Parallel()
		seen := make(chan string, 1)
		srv := statusServer(t, apierrors.NewUnauthorized("Unauthorized"), seen)
		_, err := clientFor(t, srv.URL, serverCAPEM(srv)).CoreV1().Pods("payments").List(ctx, metav1.ListOptions{})
		require.Error(t, err)
		require.Equal(t, testToken, <-seen, "the kubeconfig's token reaches the server")

		got := ClassifyAPIError(err)
		assert.ErrorIs(t, got, ErrUnauthorized)
		assert.ErrorIs(t, got, err, "the original error stays wrapped")
		assert.True(t, apierrors.IsUnauthorized(got))
		assert.Equal(t, "the credential was rejected or has expired (401 Unauthorized)", got.Error())
		assertNoSecrets(t, got.Error())
	})

	t.Run("403 forbidden", func(t *testing.T) {
		t.Parallel()
		forbidden := apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "payment-api",
			errors.New(`User "system:serviceaccount:ci:deployer" cannot patch resource "deployments" in API group "apps" in the namespace "payments"`))
		srv := statusServer(t, forbidden, nil)
		_, err := clientFor(t, srv.URL, serverCAPEM(srv)).AppsV1().Deployments("payments").Get(ctx, "payment-api", metav1.GetOptions{})
		require.Error(t, err)

		got := ClassifyAPIError(err)
		assert.ErrorIs(t, got, ErrForbidden)
		assert.True(t, apierrors.IsForbidden(got))
		assert.Contains(t, got.Error(), `the credential is not allowed to do this: deployments.apps "payment-api" is forbidden: User "system:serviceaccount:ci:deployer" cannot patch`)
		assertNoSecrets(t, got.Error())
	})

	t.Run("untrusted certificate", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewUnstartedServer(http.NotFoundHandler())
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
		srv.StartTLS()
		t.Cleanup(srv.Close)
		// The kubeconfig trusts a CA that did not sign the server's certificate.
		_, err := clientFor(t, srv.URL, "").CoreV1().Pods("payments").List(ctx, metav1.ListOptions{})
		require.Error(t, err)

		got := ClassifyAPIError(err)
		assert.ErrorIs(t, got, ErrCertificate)
		assert.ErrorIs(t, got, err)
		assert.Contains(t, got.Error(), "the API server's certificate is not trusted ("+srv.URL+"): ")
		assert.Contains(t, got.Error(), "x509")
		assertNoSecrets(t, got.Error())
	})

	t.Run("connection refused", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())

		_, err = clientFor(t, "https://"+addr, "").CoreV1().Pods("payments").List(ctx, metav1.ListOptions{})
		require.Error(t, err)
		got := ClassifyAPIError(err)
		assert.ErrorIs(t, got, ErrUnreachable)
		assert.Contains(t, got.Error(), "cannot reach the API server at https://"+addr+": ")
		assert.Contains(t, got.Error(), "connection refused")
		assert.NotContains(t, got.Error(), "/api/v1", "the message names the server, not the request")
		assertNoSecrets(t, got.Error())
	})

	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewTLSServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}))
		t.Cleanup(srv.Close)
		kc, err := LoadKubeconfig(serverKubeconfig(srv.URL, serverCAPEM(srv)), "")
		require.NoError(t, err)
		kc.REST.Timeout = 50 * time.Millisecond
		client, err := kubernetes.NewForConfig(kc.REST)
		require.NoError(t, err)
		_, err = client.CoreV1().Pods("payments").List(ctx, metav1.ListOptions{})
		require.Error(t, err)

		got := ClassifyAPIError(err)
		assert.ErrorIs(t, got, ErrUnreachable)
		assert.Contains(t, got.Error(), "cannot reach the API server at "+srv.URL+": timed out")
	})
}

func TestClassifyAPIErrorValues(t *testing.T) {
	t.Parallel()
	dns := &url.Error{Op: "Get", URL: "https://user:pw@api.nothere.invalid:6443/api/v1/pods?limit=1", Err: &net.OpError{
		Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "api.nothere.invalid", IsNotFound: true},
	}}
	got := ClassifyAPIError(dns)
	assert.ErrorIs(t, got, ErrUnreachable)
	assert.Equal(t, "cannot reach the API server at https://api.nothere.invalid:6443: lookup api.nothere.invalid: no such host", got.Error())

	deadline := fmt.Errorf("list pods: %w", context.DeadlineExceeded)
	assert.ErrorIs(t, ClassifyAPIError(deadline), ErrUnreachable)
	assert.Equal(t, "cannot reach the API server: timed out", ClassifyAPIError(deadline).Error())

	assert.NoError(t, ClassifyAPIError(nil))

	notFound := apierrors.NewNotFound(schema.GroupResource{Group: "apps", Resource: "deployments"}, "api")
	assert.Same(t, notFound, ClassifyAPIError(notFound), "other errors pass through unchanged")

	once := ClassifyAPIError(dns)
	assert.Same(t, once, ClassifyAPIError(once), "classifying twice changes nothing")

	wrapped := fmt.Errorf("apply: %w", apierrors.NewUnauthorized("token expired"))
	assert.ErrorIs(t, ClassifyAPIError(wrapped), ErrUnauthorized)
}
