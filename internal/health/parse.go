package health

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Formats of a detailed health body, as recorded in Detailed.Format.
const (
	// FormatJSON is any JSON body that is not application/health+json.
	FormatJSON = "json"
	// FormatHealthJSON is the application/health+json draft
	// (draft-inadarei-api-health-check).
	FormatHealthJSON = "health+json"
)

// maxVersionLen bounds a served version so a confused service cannot flood
// a report through it.
const maxVersionLen = 128

// maxComponentNameLen bounds a component name: every entry listed under one
// name repeats it, so a long name would otherwise multiply the body's size.
const maxComponentNameLen = 128

// Component is one dependency listed by a detailed health endpoint.
type Component struct {
	// Name is the key the service used, e.g. "db" or, in health+json,
	// "db:responseTime"; a health+json entry with several objects adds the
	// componentId in brackets. Names are cut to 128 bytes.
	Name string `json:"name"`
	// Status is as reported: "UP", "pass", "down", ….
	Status string `json:"status"`
	// Latency is responseTime/latency, or a health+json responseTime
	// observation with a time unit; zero when absent.
	Latency time.Duration `json:"latency,omitempty"`
	// Message is message, output or error, whichever the service sent.
	Message string `json:"message,omitempty"`
	// ObservedValue is the health+json observedValue as JSON text.
	ObservedValue string `json:"observedValue,omitempty"`
	// ObservedUnit is the health+json observedUnit.
	ObservedUnit string `json:"observedUnit,omitempty"`
}

// Failing reports whether the component's status means it is not working.
func (c Component) Failing() bool { return StatusFailing(c.Status) }

// Detailed is a parsed detailed health body.
type Detailed struct {
	// Format is FormatJSON or FormatHealthJSON.
	Format string `json:"format"`
	// Status is the overall status as reported; empty when the body had
	// none or had a shape this package does not know.
	Status string `json:"status,omitempty"`
	// Components are sorted by name.
	Components []Component `json:"components,omitempty"`
}

// Failing returns the components whose status means they are not working.
func (d Detailed) Failing() []Component {
	var out []Component
	for _, c := range d.Components {
		if c.Failing() {
			out = append(out, c)
		}
	}
	return out
}

// StatusFailing reports whether a reported status word means "not working":
// down, fail, unhealthy, error and their usual spellings, in any case.
// Warnings ("warn", "degraded") and unknown words are not failures.
func StatusFailing(status string) bool {
	switch strings.ToLower(strings.TrimSpace(status)) {
	case "down", "fail", "failed", "failure", "failing", "unhealthy",
		"error", "critical", "out_of_service", "false":
		return true
	}
	return false
}

// componentKeys are the object keys under which services list components:
// generic JSON and health+json use "checks", Spring Boot "components",
// others "services".
var componentKeys = [...]string{"checks", "components", "services"}

// ParseDetailed parses the body of a detailed health endpoint. contentType
// is the response's Content-Type; application/health+json is recorded as
// such, but both formats are parsed by shape, so a mislabelled body still
// yields its components. A JSON body of an unknown shape is not an error: it
// yields whatever status it has. Only a body that is not JSON is an error.
func ParseDetailed(contentType string, body []byte) (Detailed, error) {
	d := Detailed{Format: FormatJSON}
	if mt, _, err := mime.ParseMediaType(contentType); err == nil && mt == "application/health+json" {
		d.Format = FormatHealthJSON
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return d, errors.New("parse detailed health: body is empty")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return d, fmt.Errorf("parse detailed health: body is not JSON: %w", err)
	}
	switch v := doc.(type) {
	case string:
		d.Status = v
	case map[string]any:
		d.Status = scalarText(v["status"])
		for _, key := range componentKeys {
			d.Components = append(d.Components, componentsFrom(v[key])...)
		}
		sort.SliceStable(d.Components, func(i, j int) bool { return d.Components[i].Name < d.Components[j].Name })
	}
	return d, nil
}

// componentsFrom reads one components value: an object keyed by name whose
// values are objects, arrays of objects (health+json) or bare statuses, or
// an array of objects that carry their own "name" (MicroProfile Health).
func componentsFrom(v any) []Component {
	var out []Component
	switch v := v.(type) {
	case map[string]any:
		for name, val := range v {
			name := clip(name, maxComponentNameLen)
			switch val := val.(type) {
			case map[string]any:
				out = append(out, componentFrom(name, val))
			case []any:
				for _, item := range val {
					obj, ok := item.(map[string]any)
					if !ok {
						continue
					}
					c := componentFrom(name, obj)
					if id := scalarText(obj["componentId"]); id != "" && len(val) > 1 {
						c.Name = clip(name+"["+id+"]", maxComponentNameLen)
					}
					out = append(out, c)
				}
			default:
				out = append(out, Component{Name: name, Status: scalarText(val)})
			}
		}
	case []any:
		for i, item := range v {
			obj, ok := item.(map[string]any)
			if !ok {
				continue
			}
			name := clip(scalarText(obj["name"]), maxComponentNameLen)
			if name == "" {
				name = "#" + strconv.Itoa(i)
			}
			out = append(out, componentFrom(name, obj))
		}
	}
	return out
}

// componentFrom reads one component object in either format.
func componentFrom(name string, obj map[string]any) Component {
	c := Component{
		Name:          name,
		Status:        scalarText(obj["status"]),
		Message:       firstText(obj, "message", "output", "error"),
		ObservedValue: scalarText(obj["observedValue"]),
		ObservedUnit:  scalarText(obj["observedUnit"]),
	}
	for _, key := range [...]string{"responseTime", "latency"} {
		if d, ok := parseLatency(obj[key], "ms"); ok {
			c.Latency = d
			break
		}
	}
	if c.Latency == 0 {
		// health+json puts timings in observations such as "db:responseTime".
		if _, measurement, ok := strings.Cut(name, ":"); ok &&
			(measurement == "responseTime" || measurement == "latency") && c.ObservedUnit != "" {
			if d, ok := parseLatency(obj["observedValue"], c.ObservedUnit); ok {
				c.Latency = d
			}
		}
	}
	return c
}

// parseLatency reads a number in unit (ms, s, us, ns) or a Go duration
// string such as "12ms".
func parseLatency(v any, unit string) (time.Duration, bool) {
	var scale time.Duration
	switch unit {
	case "ns":
		scale = time.Nanosecond
	case "us", "µs":
		scale = time.Microsecond
	case "ms":
		scale = time.Millisecond
	case "s":
		scale = time.Second
	default:
		return 0, false
	}
	switch v := v.(type) {
	case json.Number:
		if f, err := v.Float64(); err == nil {
			return scaled(f, scale)
		}
	case string:
		if d, err := time.ParseDuration(v); err == nil && d >= 0 {
			return d, true
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			return scaled(f, scale)
		}
	}
	return 0, false
}

// scaled returns f units of scale, refusing negative values and values a
// Duration cannot hold: converting those would wrap to a negative latency.
func scaled(f float64, scale time.Duration) (time.Duration, bool) {
	ns := f * float64(scale)
	if !(ns >= 0 && ns < math.MaxInt64) {
		return 0, false
	}
	return time.Duration(ns), true
}

// firstText returns the first of keys whose value is non-empty text.
func firstText(obj map[string]any, keys ...string) string {
	for _, k := range keys {
		if s := scalarText(obj[k]); s != "" {
			return s
		}
	}
	return ""
}

// scalarText renders a decoded JSON value as text: strings as themselves,
// numbers and booleans as written, anything else as compact JSON.
func scalarText(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return ""
		}
		return string(b)
	}
}

// ServedVersion returns the version a service says it runs: the top-level
// JSON field "version" of body, else the X-App-Version or X-Version header,
// else "".
func ServedVersion(header http.Header, body []byte) string {
	if v := bodyField(body, "version"); v != "" {
		return v
	}
	for _, h := range [...]string{"X-App-Version", "X-Version"} {
		if v := versionText(header.Get(h)); v != "" {
			return v
		}
	}
	return ""
}

// bodyField reads the top-level field of a JSON object body as a version:
// a string or a number, else "".
func bodyField(body []byte, field string) string {
	// Most bodies are small; skip decoding the ones that cannot match.
	if !bytes.Contains(body, []byte(`"`+field+`"`)) {
		return ""
	}
	// A map, not a struct: encoding/json matches struct fields regardless of
	// case, and only the field itself is the contract.
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil || len(doc[field]) == 0 {
		return ""
	}
	dec := json.NewDecoder(bytes.NewReader(doc[field]))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return ""
	}
	switch v.(type) {
	case string, json.Number:
		return versionText(scalarText(v))
	}
	return ""
}

// versionText is s as a report may print it: valid UTF-8 (a header may
// carry any bytes), without surrounding space, and at most maxVersionLen
// bytes before the ellipsis. Invalid bytes are replaced before trimming,
// so none can shield a space from it.
func versionText(s string) string {
	return clip(strings.TrimSpace(strings.ToValidUTF8(s, "\uFFFD")), maxVersionLen)
}

// clip shortens s to at most n bytes.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
