package health

import (
	"encoding/pem"
	"flag"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// serve starts a loopback server for h and returns a URL target for it.
func serve(t testing.TB, h http.Handler) (Target, *httptest.Server) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	target, err := NewURLTarget(srv.URL, TLSOptions{})
	require.NoError(t, err)
	return target, srv
}

// serveTLS starts a loopback TLS server and returns it with its CA in PEM.
func serveTLS(t testing.TB, h http.Handler) (*httptest.Server, []byte) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	// Failed handshakes are expected in these tests; keep them off stderr.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	return srv, ca
}

// jsonHandler answers every request with status and body as JSON.
func jsonHandler(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// healthMux serves the three default endpoints with the given bodies.
func healthMux(basic, ready, detailed http.HandlerFunc) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/health", basic)
	mux.Handle("/health/ready", ready)
	mux.Handle("/health/detailed", detailed)
	return mux
}
