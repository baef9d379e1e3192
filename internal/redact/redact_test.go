package redact

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSecrets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		secrets  []string
		want     string
	}{
		{"none", "deploy v2", nil, "deploy v2"},
		{"every occurrence", "tok-123 and tok-123", []string{"tok-123"}, "*** and ***"},
		{"too short to replace", "a big deal", []string{"a"}, "a big deal"},
		{"several", "user=alice pass=s3cr3t", []string{"alice", "s3cr3t"}, "user=*** pass=***"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, Secrets(tt.in, tt.secrets), tt.name)
	}
}

func TestPublicURL(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"https://shop.example/health":                  "https://shop.example/health",
		"https://ops:pw@shop.example/x?token=abc#frag": "https://shop.example/x",
		"http://127.0.0.1:8080/ns/svc":                 "http://127.0.0.1:8080/ns/svc",
		"ftp://shop.example":                           "",
		"not a url":                                    "",
		"https://":                                     "",
	} {
		assert.Equal(t, want, PublicURL(raw), raw)
	}
}
