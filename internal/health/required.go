package health

import (
	"fmt"
	"strings"
)

// RequiredVerdict is how the required components of a detailed health
// answer stand.
type RequiredVerdict struct {
	// Missing are required names no component of the answer has.
	Missing []string
	// Failing are required components whose status means not working.
	Failing []Component
	// Warned are required components reported as warn or degraded.
	Warned []Component
}

// Problem is one sentence naming what is missing or failing; "" when none.
func (v RequiredVerdict) Problem() string {
	var parts []string
	if len(v.Missing) > 0 {
		parts = append(parts, "required component "+strings.Join(v.Missing, ", ")+" is missing from the detailed health answer")
	}
	for _, c := range v.Failing {
		parts = append(parts, fmt.Sprintf("required component %s reports %q", c.Name, c.Status))
	}
	return strings.Join(parts, "; ")
}

// CheckRequired judges the required components of a detailed answer. A
// required name matches a component of that name, or its health+json
// entries ("db:responseTime", "db[1]"). Pure.
func CheckRequired(d *Detailed, required []string) RequiredVerdict {
	var v RequiredVerdict
	for _, name := range required {
		var found []Component
		if d != nil {
			for _, c := range d.Components {
				if c.Name == name || strings.HasPrefix(c.Name, name+":") || strings.HasPrefix(c.Name, name+"[") {
					found = append(found, c)
				}
			}
		}
		if len(found) == 0 {
			v.Missing = append(v.Missing, name)
			continue
		}
		for _, c := range found {
			switch {
			case c.Failing():
				v.Failing = append(v.Failing, c)
			case StatusWarning(c.Status):
				v.Warned = append(v.Warned, c)
			}
		}
	}
	return v
}

// StatusWarning reports whether a status means working but impaired.
func StatusWarning(status string) bool {
	switch strings.ToLower(strings.TrimSpace(status)) {
	case "warn", "warning", "degraded":
		return true
	}
	return false
}
