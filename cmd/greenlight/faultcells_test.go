package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestFaultCellFailures proves the fault table's judgement fails the cells
// it must: one whose fault never hit its stage, an unsafe one even when the
// golden table already says UNSAFE or is being rewritten, and a completed
// cell that now gives up.
func TestFaultCellFailures(t *testing.T) {
	t.Parallel()
	completed := verdict{status: "succeeded"}
	gaveUp := verdict{status: "rolled-back"}
	unsafe := verdict{status: "rollback-failed", problems: []string{"the deploy lock is left held"}}
	tests := []struct {
		name     string
		v        verdict
		inStage  bool
		hits     int
		reach    int
		expected string
		updating bool
		fails    bool
	}{
		{"completed, hit", completed, true, 3, 3, wordCompleted, false, false},
		{"gave up, hit", gaveUp, true, 1, 1, wordGaveUp, false, false},
		{"completes where the table gave up", completed, true, 2, 2, wordGaveUp, false, false},
		{"the fault never hit its stage", completed, true, 0, 3, wordCompleted, false, true},
		{"the stage never ran", gaveUp, false, 0, 3, wordGaveUp, false, true},
		{"unsafe, the table says UNSAFE", unsafe, true, 4, 4, wordUnsafe, false, true},
		{"unsafe while -update rewrites the table", unsafe, true, 4, 4, wordUnsafe, true, true},
		{"unsafe in a new cell under -update", unsafe, true, 4, 4, "", true, true},
		{"gives up where the table completed", gaveUp, true, 2, 2, wordCompleted, false, true},
		{"no golden cell", completed, true, 2, 2, "", false, true},
		{"a new cell under -update", completed, true, 2, 2, "", true, false},
		{"mixed versions", verdict{status: "succeeded", broken: []string{"want one version answering"}}, true, 1, 1, wordCompleted, false, true},
		{"the stage made no request the fault could hit", gaveUp, true, 0, 0, wordGaveUp, false, false},
		{"unsafe although the fault could not hit", unsafe, true, 0, 0, wordUnsafe, false, true},
	}
	for _, tt := range tests {
		got := cellFailures(tt.v, tt.inStage, tt.hits, tt.reach, tt.expected, tt.updating)
		assert.Equal(t, tt.fails, len(got) > 0, "%s: %v", tt.name, got)
	}
}

func TestStageWindow(t *testing.T) {
	t.Parallel()
	at := func(s int) time.Time { return time.Unix(1000+int64(s), 0) }
	lines := []stampedLine{
		{at(0), "greenlight: deploying"}, {at(1), "::group::validate"}, {at(2), "✓ validate: ok"}, {at(2), "::endgroup::"},
		{at(3), "::group::deploy"}, {at(9), "✗ deploy: failed"},
	}
	from, to, ok := stageWindow(lines, "validate")
	assert.True(t, ok)
	assert.Equal(t, [2]time.Time{at(1), at(2)}, [2]time.Time{from, to})
	from, to, ok = stageWindow(lines, "deploy")
	assert.True(t, ok, "a group that never closed runs to the last line")
	assert.Equal(t, [2]time.Time{at(3), at(9)}, [2]time.Time{from, to})
	_, _, ok = stageWindow(lines, "monitor")
	assert.False(t, ok)
	assert.Equal(t, 2, hitsWithin([]time.Time{at(0), at(1), at(2), at(3)}, at(1), at(2)))
}
