package health

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/rest"
)

func TestRedactURL(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"https://user:pw@example.com/base?token=abc#frag": "https://example.com/base",
		"http://127.0.0.1:8080/health":                    "http://127.0.0.1:8080/health",
		"https://example.com?":                            "https://example.com",
		"https://user@example.com":                        "https://example.com",
		"http://[::1]:80/a%20b?x=1":                       "http://[::1]:80/a%20b",
		"http://bad host:pw@x/":                           "[unparseable URL]",
		"u:pw@h/x?q=1":                                    "h/x",
		"127.0.0.1:6443":                                  "127.0.0.1:6443",
		"":                                                "",
	}
	for in, want := range tests {
		assert.Equal(t, want, redactURL(in), "redactURL(%q)", in)
	}
}

func TestNewURLTargetRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, url, wantErr string
		ca                 []byte
	}{
		{name: "no scheme", url: "example.com/health", wantErr: "scheme must be http or https"},
		{name: "ftp", url: "ftp://example.com", wantErr: "scheme must be http or https"},
		{name: "no host", url: "https:///path", wantErr: "host is missing"},
		{name: "unparseable with password", url: "https://u:s3cret-pw@exa mple.com/", wantErr: "parse target URL"},
		{name: "CA bundle without PEM", url: "https://example.com", ca: []byte("not a cert"), wantErr: "no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewURLTarget(tt.url, TLSOptions{CABundle: tt.ca})
			require.ErrorContains(t, err, tt.wantErr)
			assert.NotContains(t, err.Error(), "s3cret-pw")
		})
	}
}

func TestTargetNameHidesCredentials(t *testing.T) {
	t.Parallel()
	target, err := NewURLTarget("https://admin:hunter2-pw@example.com/app?api_key=qsecret42", TLSOptions{})
	require.NoError(t, err)
	assert.Equal(t, "https://example.com/app", target.Name())
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		out := fmt.Sprintf(verb, target)
		assert.NotContains(t, out, "hunter2-pw", verb)
		assert.NotContains(t, out, "qsecret42", verb)
		assert.NotContains(t, out, "admin", verb)
	}
	assert.Equal(t, "(unset target)", Target{}.Name())
}

func TestResolve(t *testing.T) {
	t.Parallel()
	tests := []struct {
		base, path, want string
	}{
		{"http://h", "/health", "http://h/health"},
		{"http://h/", "/health", "http://h/health"},
		{"http://h/app/", "/health/ready", "http://h/app/health/ready"},
		{"http://h/app", "/items?limit=2", "http://h/app/items?limit=2"},
		{"http://h/app?k=1", "/items?limit=2", "http://h/app/items?k=1&limit=2"},
		{"http://h/app?k=1", "/items", "http://h/app/items?k=1"},
		{"http://h/api/v1/namespaces/ns/services/web:http/proxy", "/health", "http://h/api/v1/namespaces/ns/services/web:http/proxy/health"},
	}
	for _, tt := range tests {
		target, err := NewURLTarget(tt.base, TLSOptions{})
		require.NoError(t, err)
		u, err := target.resolve(tt.path)
		require.NoError(t, err)
		assert.Equal(t, tt.want, u.String(), "%s + %s", tt.base, tt.path)
		assert.True(t, strings.HasPrefix(u.RequestURI(), "/"), "request URI %q", u.RequestURI())
	}
	target, err := NewURLTarget("http://h", TLSOptions{})
	require.NoError(t, err)
	for _, bad := range []string{"health", "http://other/health", "//other/health"} {
		_, err := target.resolve(bad)
		assert.ErrorContains(t, err, "must be an absolute path", bad)
	}
	_, err = Target{}.resolve("/health")
	assert.ErrorContains(t, err, "target is not set")
}

func TestURLTargetTLS(t *testing.T) {
	t.Parallel()
	srv, ca := serveTLS(t, jsonHandler(http.StatusOK, `{"status":"ok","version":"v1"}`))

	t.Run("unknown CA fails clearly", func(t *testing.T) {
		t.Parallel()
		target, err := NewURLTarget(srv.URL, TLSOptions{})
		require.NoError(t, err)
		res := Probe(context.Background(), target, "/health", 0)
		assert.False(t, res.OK)
		assert.Contains(t, res.Err, "signed by an unknown authority; add that CA to the CA bundle")
		assert.Contains(t, res.Err, "GET "+srv.URL+"/health")
	})
	t.Run("CA bundle makes it pass", func(t *testing.T) {
		t.Parallel()
		target, err := NewURLTarget(srv.URL, TLSOptions{CABundle: ca})
		require.NoError(t, err)
		res := Probe(context.Background(), target, "/health", 0)
		require.Empty(t, res.Err)
		assert.True(t, res.OK)
		assert.Equal(t, "v1", res.Version)
		assert.Positive(t, res.Timing.TLSHandshake)
		assert.Positive(t, res.Timing.Connect)
	})
	t.Run("hostname mismatch fails clearly", func(t *testing.T) {
		t.Parallel()
		// The test certificate names 127.0.0.1 and example.com, not localhost.
		target, err := NewURLTarget(strings.Replace(srv.URL, "127.0.0.1", "localhost", 1), TLSOptions{CABundle: ca})
		require.NoError(t, err)
		res := Probe(context.Background(), target, "/health", 0)
		assert.False(t, res.OK)
		if !strings.Contains(res.Err, "connection refused") { // localhost may resolve to ::1 only
			assert.Contains(t, res.Err, "not valid for this host")
		}
	})
}

func TestNewServiceProxyTarget(t *testing.T) {
	t.Parallel()
	type seen struct{ path, auth string }
	requests := make(chan seen, 10)
	apiServer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests <- seen{r.URL.Path, r.Header.Get("Authorization")}
		w.Header().Set("X-App-Version", "v7")
		w.WriteHeader(http.StatusOK)
	})
	_, srv := serve(t, apiServer)

	tests := []struct {
		name, host, port, wantPath, wantName string
	}{
		{"named port", srv.URL, "http", "/api/v1/namespaces/shop/services/web:http/proxy/health", "service shop/web:http via API server " + srv.URL},
		{"numeric port", srv.URL, "8080", "/api/v1/namespaces/shop/services/web:8080/proxy/health", "service shop/web:8080 via API server " + srv.URL},
		{"no port", srv.URL, "", "/api/v1/namespaces/shop/services/web/proxy/health", "service shop/web via API server " + srv.URL},
		{"host with path prefix", srv.URL + "/k8s", "http", "/k8s/api/v1/namespaces/shop/services/web:http/proxy/health", "service shop/web:http via API server " + srv.URL + "/k8s"},
		{"host without scheme", strings.TrimPrefix(srv.URL, "http://"), "http", "/api/v1/namespaces/shop/services/web:http/proxy/health", "service shop/web:http via API server " + srv.URL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &rest.Config{Host: tt.host, BearerToken: "k8s-sa-token-123"}
			target, err := NewServiceProxyTarget(cfg, "shop", "web", tt.port)
			require.NoError(t, err)
			assert.Equal(t, tt.wantName, target.Name())
			res := Probe(context.Background(), target, "/health", 0)
			require.Empty(t, res.Err)
			assert.True(t, res.OK)
			assert.Equal(t, "v7", res.Version)
			got := <-requests
			assert.Equal(t, tt.wantPath, got.path)
			assert.Equal(t, "Bearer k8s-sa-token-123", got.auth)
			assert.NotContains(t, fmt.Sprintf("%+v %#v", target, res), "k8s-sa-token-123")
		})
	}
}

func TestServiceProxyTargetDoesNotSendAppToken(t *testing.T) {
	t.Parallel()
	auth := make(chan string, 10)
	_, srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/proxy/health/detailed") {
			auth <- r.Header.Get("Authorization")
			// What an app behind the proxy answers: the token never arrives.
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	target, err := NewServiceProxyTarget(&rest.Config{Host: srv.URL, BearerToken: "k8s-sa-token-123"}, "shop", "web", "http")
	require.NoError(t, err)

	res := Check(context.Background(), target, CheckOptions{Token: "app-token-456", Timeout: 200e6, Backoff: Backoff{Initial: 10e6}})
	assert.False(t, res.Healthy)
	assert.Equal(t, "Bearer k8s-sa-token-123", <-auth, "the API server credentials, not the app token, authenticate the proxy request")
	assert.Contains(t, res.Reason, "service proxy does not forward it")
	assert.NotContains(t, fmt.Sprintf("%+v", res), "app-token-456")
	assert.NotContains(t, fmt.Sprintf("%+v", res), "k8s-sa-token-123")
}

func TestServiceProxyTargetExplainsAnOmittedPort(t *testing.T) {
	t.Parallel()
	// What kube-apiserver answers for services/web/proxy when web's only
	// port is named: an empty port matches no port name.
	_, srv := serve(t, jsonHandler(http.StatusServiceUnavailable,
		`{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"no endpoints available for service \"web\"","reason":"ServiceUnavailable","code":503}`))
	opts := CheckOptions{Endpoints: []Endpoint{EndpointBasic}, Timeout: 50 * time.Millisecond}
	tests := []struct {
		port     string
		wantHint bool
	}{{"", true}, {"http", false}}
	for _, tt := range tests {
		t.Run("port "+strconv.Quote(tt.port), func(t *testing.T) {
			t.Parallel()
			target, err := NewServiceProxyTarget(&rest.Config{Host: srv.URL}, "shop", "web", tt.port)
			require.NoError(t, err)
			res := Check(context.Background(), target, opts)
			require.False(t, res.Healthy)
			assert.Contains(t, res.Reason, `/health answered 503 Service Unavailable from the Kubernetes API server: no endpoints available for service "web"`)
			if tt.wantHint {
				assert.Contains(t, res.Reason, "a Service port that has a name is only reached through the service proxy when the target names it")
			} else {
				assert.NotContains(t, res.Reason, "names it")
			}
		})
	}
}

func TestNewServiceProxyTargetRejects(t *testing.T) {
	t.Parallel()
	cfg := &rest.Config{Host: "https://127.0.0.1:6443"}
	tests := []struct {
		name, ns, svc, port, wantErr string
		cfg                          *rest.Config
	}{
		{name: "nil config", ns: "a", svc: "b", wantErr: "REST config is nil"},
		{name: "bad namespace", cfg: cfg, ns: "Shop", svc: "web", wantErr: `namespace "Shop"`},
		{name: "empty service", cfg: cfg, ns: "shop", svc: "", wantErr: `service ""`},
		{name: "service with slash", cfg: cfg, ns: "shop", svc: "web/../x", wantErr: `service "web/../x"`},
		{name: "port zero", cfg: cfg, ns: "shop", svc: "web", port: "0", wantErr: `port "0"`},
		{name: "port name too long", cfg: cfg, ns: "shop", svc: "web", port: "a-very-long-port-name", wantErr: `port "a-very-long-port-name"`},
		{name: "bad host hides password", cfg: &rest.Config{Host: "u:pw-secret@h/x"}, ns: "shop", svc: "web", wantErr: "not a URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewServiceProxyTarget(tt.cfg, tt.ns, tt.svc, tt.port)
			require.ErrorContains(t, err, tt.wantErr)
			assert.NotContains(t, err.Error(), "pw-secret")
		})
	}
}

func TestServiceProxyTargetNameHidesCredentials(t *testing.T) {
	t.Parallel()
	cfg := &rest.Config{Host: "https://u:pw-secret@127.0.0.1:6443/x?q=query-secret", BearerToken: "k8s-sa-token-123"}
	target, err := NewServiceProxyTarget(cfg, "shop", "web", "http")
	require.NoError(t, err)
	assert.Equal(t, "service shop/web:http via API server https://127.0.0.1:6443/x", target.Name())
}

func TestNewTarget(t *testing.T) {
	t.Parallel()
	_, err := NewTarget("http://h", nil)
	require.ErrorContains(t, err, "HTTP client is nil")

	_, srv := serve(t, jsonHandler(http.StatusOK, `{"version":"v3"}`))
	target, err := NewTarget(srv.URL, srv.Client())
	require.NoError(t, err)
	res := Probe(context.Background(), target, "/health", 0)
	assert.True(t, res.OK)
	assert.Equal(t, "v3", res.Version)
}
