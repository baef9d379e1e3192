package proof

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

const upstreamToken = "upstream-secret-token-7f3a"

// upstream is an API server stand-in that insists on the upstream's token,
// as the real one insists on its client certificate.
func upstream(t *testing.T, release <-chan struct{}) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+upstreamToken {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("watch") == "true" {
			fmt.Fprintln(w, `{"type":"ADDED"}`)
			w.(http.Flusher).Flush()
			select { // a watch stays open until the client has seen the event
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		fmt.Fprintf(w, `{"path":%q}`, r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func newProxy(t *testing.T, srv *httptest.Server) *APIProxy {
	t.Helper()
	p, err := NewAPIProxy(&rest.Config{Host: srv.URL, BearerToken: upstreamToken})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func send(t *testing.T, client *http.Client, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader("{}"))
	require.NoError(t, err)
	req.Header.Set("User-Agent", "proof-test")
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func TestAPIProxyForwardsWithUpstreamCredentialAndCounts(t *testing.T) {
	t.Parallel()
	p := newProxy(t, upstream(t, nil))
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	calls := []struct{ method, path string }{
		{http.MethodGet, "/api/v1/namespaces/shop/pods"},
		{http.MethodGet, "/apis/apps/v1/namespaces/shop/deployments/web"},
		{http.MethodPost, "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"},
		{http.MethodPatch, "/apis/apps/v1/namespaces/shop/deployments/web?dryRun=All&fieldManager=greenlight"},
	}
	for _, c := range calls {
		code, body := send(t, client, c.method, p.URL()+c.path)
		require.Equal(t, http.StatusOK, code, body)
		assert.Contains(t, body, strings.SplitN(c.path, "?", 2)[0], "forwarded to the same path")
	}
	reqs, dropped := p.Requests()
	require.Len(t, reqs, len(calls))
	assert.Zero(t, dropped)
	assert.Equal(t, "proof-test", reqs[0].UserAgent)
	assert.Equal(t, "/apis/apps/v1/namespaces/shop/deployments/web", reqs[3].Path, "the query is not kept")
	assert.True(t, reqs[3].DryRun)
	for i := 1; i < len(reqs); i++ {
		assert.False(t, reqs[i].Time.Before(reqs[i-1].Time), "in arrival order")
	}
	assert.Equal(t, []Kind{
		{Name: "create selfsubjectaccessreviews", Count: 1},
		{Name: "get deployments", Count: 1},
		{Name: "list pods", Count: 1},
		{Name: "patch deployments (dry run)", Count: 1},
	}, Kinds(reqs))

	p.Reset()
	reqs, _ = p.Requests()
	assert.Empty(t, reqs, "Reset starts a new count")
}

func TestAPIProxyStreamsWatches(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	p := newProxy(t, upstream(t, release))
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	resp, err := client.Get(p.URL() + "/apis/apps/v1/namespaces/shop/deployments?watch=true")
	require.NoError(t, err)
	defer resp.Body.Close()
	// The event must arrive while the watch is still open: a proxy that
	// buffered would hold it until the client timeout fails this read.
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	require.NoError(t, err)
	assert.JSONEq(t, `{"type":"ADDED"}`, line)
	close(release)
	reqs, _ := p.Requests()
	require.Len(t, reqs, 1)
	assert.True(t, reqs[0].Watch)
	assert.Equal(t, "watch deployments", KindOf(reqs[0]))
}

func TestAPIProxyNeverShowsTheUpstreamCredential(t *testing.T) {
	t.Parallel()
	srv := upstream(t, nil)
	p := newProxy(t, srv)
	kc, err := p.Kubeconfig()
	require.NoError(t, err)
	assert.NotContains(t, string(kc), upstreamToken)
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kc)
	require.NoError(t, err, "the kubeconfig loads")
	assert.Equal(t, p.URL(), cfg.Host)
	assert.Empty(t, p.Config().BearerToken)
	assert.Equal(t, p.URL(), p.Config().Host)

	srv.Close() // the upstream goes away: the proxy answers 502
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	code, body := send(t, client, http.MethodGet, p.URL()+"/api/v1/namespaces")
	assert.Equal(t, http.StatusBadGateway, code)
	assert.NotContains(t, body, upstreamToken)
}

func TestAPIProxyClientGoThroughConfig(t *testing.T) {
	t.Parallel()
	p := newProxy(t, upstream(t, nil))
	client, err := kubernetes.NewForConfig(p.Config())
	require.NoError(t, err)
	_, err = client.Discovery().ServerVersion()
	require.NoError(t, err, "client-go reaches the upstream through the proxy, without a credential of its own")
	reqs, _ := p.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, "get discovery", KindOf(reqs[0]))
}

func TestKindOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		method, path string
		watch, dry   bool
		want         string
	}{
		{"GET", "/api", false, false, "get discovery"},
		{"GET", "/apis", false, false, "get discovery"},
		{"GET", "/apis/apps/v1", false, false, "get discovery"},
		{"GET", "/version", false, false, "get discovery"},
		{"GET", "/openapi/v3", false, false, "get discovery"},
		{"GET", "/api/v1/namespaces", false, false, "list namespaces"},
		{"GET", "/api/v1/namespaces/shop", false, false, "get namespaces"},
		{"GET", "/api/v1/namespaces/shop/pods", false, false, "list pods"},
		{"GET", "/api/v1/namespaces/shop/pods", true, false, "watch pods"},
		{"GET", "/api/v1/watch/namespaces/shop/pods", true, false, "watch pods"},
		{"GET", "/api/v1/namespaces/shop/services/web:80/proxy/health", false, false, "get services/proxy"},
		{"GET", "/api/v1/nodes/n1", false, false, "get nodes"},
		{"PATCH", "/apis/apps/v1/namespaces/shop/deployments/web", false, true, "patch deployments (dry run)"},
		{"PATCH", "/apis/apps/v1/namespaces/shop/deployments/web/scale", false, false, "patch deployments/scale"},
		{"PUT", "/apis/coordination.k8s.io/v1/namespaces/shop/leases/greenlight-web", false, false, "update leases"},
		{"POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", false, false, "create selfsubjectaccessreviews"},
		{"DELETE", "/apis/apps/v1/namespaces/shop/deployments/web-green", false, false, "delete deployments"},
	} {
		got := KindOf(Request{Method: tc.method, Path: tc.path, Watch: tc.watch, DryRun: tc.dry})
		assert.Equal(t, tc.want, got, "%s %s", tc.method, tc.path)
	}
}

func TestExtraKinds(t *testing.T) {
	t.Parallel()
	req := func(method, path string) Request { return Request{Method: method, Path: path} }
	ours := []Request{
		req("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"),
		req("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"),
		req("GET", "/apis/apps/v1/namespaces/s/deployments/web"),
		req("GET", "/apis/apps/v1/namespaces/s/deployments/web"),
		req("GET", "/api"),
	}
	theirs := []Request{
		req("GET", "/apis/apps/v1/namespaces/s/deployments/web"),
		req("GET", "/api"), req("GET", "/apis"), req("GET", "/apis/apps/v1"),
	}
	assert.Equal(t, []Kind{{Name: "create selfsubjectaccessreviews", Count: 2}, {Name: "get deployments", Count: 1}}, ExtraKinds(ours, theirs))
	assert.Equal(t, []Kind{{Name: "get discovery", Count: 2}}, ExtraKinds(theirs, ours))
	assert.Empty(t, ExtraKinds(theirs, theirs))
}
