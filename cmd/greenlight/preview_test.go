package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestActionPreviewNeverChecksTheOldColor: once a blue-green deploy has
// left its preview Service behind, each later deploy re-points it; the
// check before traffic must only ever see the new version.
func TestActionPreviewNeverChecksTheOldColor(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:1.0.0")
	in := e.inputs("production", "sampleapp:1.1.0")
	in["monitor-duration"] = "1s"
	first := e.runAction(t, in, "")
	require.Equal(t, 0, first.code)
	for _, version := range []string{"1.2.0", "1.3.0", "1.4.0"} {
		in["image"] = "sampleapp:" + version
		res := e.runAction(t, in, "")
		require.Equal(t, 0, res.code, version)
		var report struct {
			Health []struct {
				Target    string
				Endpoints []struct{ Path, Version string }
			}
		}
		require.NoError(t, json.Unmarshal([]byte(res.report), &report))
		checked := 0
		for _, h := range report.Health {
			if !strings.Contains(h.Target, "shop-preview") {
				continue
			}
			for _, ep := range h.Endpoints {
				checked++
				assert.Equal(t, version, ep.Version, "%s of the preview answered by another version", ep.Path)
			}
		}
		assert.NotZero(t, checked, "the preview was checked")
	}
}
