package sampleapp

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ebeautything/greenlight/internal/podmetrics"
)

func TestMetricsAPIErrorsOnlyAndExposition(t *testing.T) {
	t.Parallel()
	cfg, err := ConfigFromEnv("v2", map[string]string{EnvErrorRate: "0.5", EnvErrorScope: "api"})
	require.NoError(t, err)
	a := New(cfg)
	get := func(path string) int {
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code
	}
	for range 10 {
		assert.Equal(t, http.StatusOK, get("/health"), "the health paths are spared")
	}
	fails := 0
	for range 10 {
		if get("/api/payments") == http.StatusInternalServerError {
			fails++
		}
	}
	assert.Equal(t, 5, fails)

	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	var r podmetrics.Reading
	require.NoError(t, podmetrics.Parse(strings.NewReader(rec.Body.String()), podmetrics.DefaultNames(), &r))
	assert.Equal(t, 20.0, r.Requests, "/metrics itself is not counted")
	assert.Equal(t, 5.0, r.Errors)
	assert.True(t, r.HasDuration)
	assert.Equal(t, 20.0, r.Observations)

	_, err = ConfigFromEnv("v2", map[string]string{EnvErrorScope: "health"})
	assert.ErrorContains(t, err, "SAMPLEAPP_ERROR_SCOPE")
}
