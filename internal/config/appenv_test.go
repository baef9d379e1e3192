package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestParseAppEnv(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		in      string
		want    []EnvVar
		problem string
	}{
		{name: "the guide's variables", in: "SUPABASE_PROD_URL=https://x.supabase.co\nSUPABASE_PROD_SERVICE_ROLE_KEY=eyJ.a=b.c\nTOSS_PAYMENTS_SECRET_KEY=test_sk_1",
			want: []EnvVar{{"SUPABASE_PROD_URL", "https://x.supabase.co"}, {"SUPABASE_PROD_SERVICE_ROLE_KEY", "eyJ.a=b.c"}, {"TOSS_PAYMENTS_SECRET_KEY", "test_sk_1"}}},
		{name: "CRLF, comments, blank lines and an empty value", in: "# payments\r\n\r\nA=1\r\n  B = x y \r\nC=", want: []EnvVar{{"A", "1"}, {"B", " x y "}, {"C", ""}}},
		{name: "value keeps everything after the first =", in: "DSN=postgres://u:p@h/db?sslmode=require", want: []EnvVar{{"DSN", "postgres://u:p@h/db?sslmode=require"}}},
		{name: "no =", in: "A=1\nbare", problem: "line 2 has no '='"},
		{name: "name starting with a digit", in: "1A=x", problem: "line 1 does not start with a variable name"},
		{name: "name with a dash", in: "MY-VAR=x", problem: "line 1 does not start with a variable name"},
		{name: "empty name", in: "=x", problem: "line 1 does not start with a variable name"},
		{name: "twice", in: "A=1\nA=2", problem: "line 2 sets A again (first on line 1)"},
		{name: "nothing", in: "\n# only\n", problem: "sets no variable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, problem := ParseAppEnv(tc.in)
			if tc.problem != "" {
				assert.Contains(t, problem, tc.problem)
				assert.Nil(t, got)
				return
			}
			assert.Empty(t, problem)
			assert.Equal(t, tc.want, got)
		})
	}
}
