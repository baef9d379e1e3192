package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestRejectsUnknownNodeKind: a bad --node, to up or demo, names the flag
// and what is accepted, exits 2 and starts nothing.
func TestRejectsUnknownNodeKind(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"up", "--node=vm"}, {"demo", "--node=vm"}, {"demo", "extra"}} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, &stdout, &stderr)
		assert.Equal(t, exitBadInput, code, "%v", args)
		if args[1] != "extra" {
			assert.Contains(t, stderr.String(), `--node: "vm" is not a node kind; accepted: stand-in, real`)
		} else {
			assert.Contains(t, stderr.String(), "takes no arguments")
		}
		assert.Empty(t, stdout.String())
	}
}
