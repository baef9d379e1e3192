package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// A rolling update to an image that cannot be pulled fails within seconds
// and is undone: the previous revision serves and the run says so.
func TestActionRollingFailureIsUndone(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")
	in := e.inputs("staging", "sampleapp:missing-7")
	res := e.runAction(t, in, "")
	assert.Equal(t, 1, res.code)
	assert.Equal(t, "rolled-back", res.outputs["status"])
	assert.Equal(t, "true", res.outputs["rolled-back"])
	assert.Equal(t, "sampleapp:v1", res.outputs["previous-image"])
	assert.Contains(t, res.stdout, "ImagePullBackOff")
	assert.Contains(t, res.summary, "kubectl")
	assert.JSONEq(t, `{"v1": 20}`, mustJSON(e.serving(t, 20)))
	assert.False(t, e.lockHeld(t))
	e.assertNoSecrets(t, res, in)
}
