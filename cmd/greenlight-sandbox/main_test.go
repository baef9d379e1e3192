package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestUpRejectsUnknownNodeKind: a bad --node names the flag and what is
// accepted, exits 2 and starts nothing.
func TestUpRejectsUnknownNodeKind(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"up", "--node=vm"}, &stdout, &stderr)
	assert.Equal(t, exitBadInput, code)
	assert.Contains(t, stderr.String(), `--node: "vm" is not a node kind; accepted: stand-in, real`)
	assert.Empty(t, stdout.String())
}
