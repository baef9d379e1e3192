package config

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
)

// masked is what every printing path shows instead of a secret's value.
const masked = "***"

// Secret holds a credential such as a kubeconfig, a token or a webhook URL.
// Every way of printing or encoding it (fmt verbs, JSON, text, slog) shows
// "***", or nothing when it is empty, so a Config can be logged or written
// into a report without leaking; only Reveal returns the value.
//
// Two ways around the mask remain because Secret is a string type: a
// string(s) conversion, and a map keyed by Secret, whose keys encoding/json
// writes as they are. Use neither.
type Secret string

// Reveal returns the secret's value; call it only where the value is handed
// to the system that needs it (an HTTP header, a client constructor).
func (s Secret) Reveal() string { return string(s) }

// IsSet reports whether the secret has a value.
func (s Secret) IsSet() bool { return s != "" }

// String returns "***", or "" when the secret is empty.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return masked
}

// GoString returns the same mask as String so that %#v never shows the value.
func (s Secret) GoString() string { return s.String() }

// Format implements fmt.Formatter so that every verb, including %x and %d,
// prints the mask rather than the underlying string's bytes.
func (s Secret) Format(f fmt.State, verb rune) {
	m := s.String()
	if verb == 'q' {
		m = strconv.Quote(m)
	}
	_, _ = io.WriteString(f, m)
}

// MarshalJSON encodes the mask as a JSON string.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalText encodes the mask for encoders built on encoding.TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue keeps structured logs masked too.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }
