package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestActionRequiredComponentMissingRollsBack: the sample app's detailed
// health lists database but no tosspayments; requiring both fails verify
// naming tosspayments, and the previous version keeps serving.
func TestActionRequiredComponentMissingRollsBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")
	in := e.inputs("staging", "sampleapp:v2")
	in["required-components"] = "database,tosspayments"
	in["timeout"] = "10"
	res := e.runAction(t, in, "")
	require.Equal(t, 1, res.code)
	assert.Equal(t, "rolled-back", res.outputs["status"])
	assert.Contains(t, res.summary, "required component tosspayments is missing")
	assert.NotContains(t, res.summary, "required component database")
	assert.JSONEq(t, `{"v1": 20}`, mustJSON(e.serving(t, 20)))
}
