package proof

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSafetyBound(t *testing.T) {
	t.Parallel()
	assert.Equal(t, 1600*time.Millisecond, SafetyBound(5, 100*time.Millisecond))
	assert.Equal(t, 61*time.Second, SafetyBound(5, 10*time.Second))
	assert.Equal(t, 3*time.Second, SafetyBound(1, time.Second))
}

// TestCheckBound proves the benchmark's check fails exactly when a trial
// is above the bound, and names each such trial.
func TestCheckBound(t *testing.T) {
	t.Parallel()
	bound := SafetyBound(5, 100*time.Millisecond)
	tests := []struct {
		name   string
		trials []time.Duration
		broken []string
	}{
		{"all under", []time.Duration{700 * time.Millisecond, 1200 * time.Millisecond}, nil},
		{"one at the bound", []time.Duration{bound}, nil},
		{"one just above", []time.Duration{900 * time.Millisecond, bound + time.Millisecond}, []string{"trial 2 took 1.601s"}},
		{"every one above", []time.Duration{2 * time.Second, 3 * time.Second}, []string{"trial 1 took 2s", "trial 2 took 3s"}},
	}
	for _, tt := range tests {
		err := CheckBound(tt.trials, bound)
		if tt.broken == nil {
			assert.NoError(t, err, tt.name)
			continue
		}
		require.Error(t, err, tt.name)
		for _, b := range tt.broken {
			assert.Contains(t, err.Error(), b, tt.name)
		}
	}
}
