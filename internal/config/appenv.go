package config

import (
	"fmt"
	"strings"
)

// EnvVar is one of the application's environment variables; its value is
// a secret.
type EnvVar struct {
	Name  string `json:"name"`
	Value Secret `json:"value"`
}

// ParseAppEnv reads the app-env input: one NAME=VALUE per line, empty lines
// and lines starting with # skipped. A problem names the line and never
// quotes a value.
func ParseAppEnv(v string) ([]EnvVar, string) {
	var vars []EnvVar
	seen := map[string]int{}
	for i, line := range strings.Split(v, "\n") {
		line = strings.TrimSuffix(line, "\r")
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		name = strings.TrimSpace(name)
		if !ok {
			return nil, fmt.Sprintf("line %d has no '=' (expected NAME=VALUE)", i+1)
		}
		if !validEnvName(name) {
			// The text before '=' is not quoted: a mistyped line may be
			// a value.
			return nil, fmt.Sprintf("line %d does not start with a variable name (a letter or '_', then letters, digits or '_')", i+1)
		}
		if first, dup := seen[name]; dup {
			return nil, fmt.Sprintf("line %d sets %s again (first on line %d)", i+1, name, first)
		}
		seen[name] = i + 1
		vars = append(vars, EnvVar{Name: name, Value: Secret(value)})
	}
	if len(vars) == 0 {
		return nil, "sets no variable"
	}
	return vars, ""
}

// validEnvName accepts the portable shell variable names.
func validEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i, r := range name {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
