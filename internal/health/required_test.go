package health

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCheckRequired(t *testing.T) {
	t.Parallel()
	d := &Detailed{Components: []Component{
		{Name: "database:connections", Status: "pass", ObservedValue: "12", ObservedUnit: "connections"},
		{Name: "tosspayments", Status: "degraded"},
		{Name: "cache", Status: "down"},
	}}
	tests := []struct {
		name     string
		required []string
		problem  string
		warned   int
	}{
		{"all up", []string{"database"}, "", 0},
		{"warn is a warning", []string{"tosspayments"}, "", 1},
		{"down fails naming it", []string{"cache"}, `required component cache reports "down"`, 0},
		{"missing fails naming it", []string{"database", "queue"}, "required component queue is missing from the detailed health answer", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := CheckRequired(d, tt.required)
			assert.Equal(t, tt.problem, v.Problem())
			assert.Len(t, v.Warned, tt.warned)
		})
	}
	assert.Equal(t, "required component database is missing from the detailed health answer", CheckRequired(nil, []string{"database"}).Problem())
}
