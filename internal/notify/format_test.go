package notify

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestFormatFigure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		v    float64
		unit string
		want string
	}{
		{0.31, "ratio", "31%"},
		{0.995, "ratio", "99.5%"},
		{0.123456, "ratio", "12.35%"},
		{1, "ratio", "100%"},
		{3.412, "seconds", "3.412s"},
		{0.12, "seconds", "120ms"},
		{0.0000042, "seconds", "4µs"},
		{6, "probes", "6 in a row"},
		{1.5, "widgets", "1.5"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, formatFigure(tt.v, tt.unit), "%v %s", tt.v, tt.unit)
	}
	assert.Equal(t, "5m12s", formatDuration(5*time.Minute+12*time.Second+400*time.Millisecond))
}

func TestTruncate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"ééééé", 3, "éé…"},
		{"a b c d", 4, "a b…"},
		{"abc", 0, ""},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, truncate(tt.in, tt.n), tt.in)
	}
}

func TestURLSecrets(t *testing.T) {
	t.Parallel()
	got := urlSecrets("https://user:pw-SECRET@hooks.example.com" + hookPath + "?" + hookQuery)
	for _, want := range []string{
		"https://user:pw-SECRET@hooks.example.com" + hookPath + "?" + hookQuery,
		hookPath, hookQuery, "QUERYSECRET99", "user:pw-SECRET", "pw-SECRET",
	} {
		assert.Contains(t, got, want)
	}
	assert.NotContains(t, got, "hooks.example.com")
	for i := 1; i < len(got); i++ {
		assert.GreaterOrEqual(t, len(got[i-1]), len(got[i]), "longest first, so a whole URL is replaced before its parts")
	}
	assert.Nil(t, urlSecrets(""))
}

func TestEscaper(t *testing.T) {
	t.Parallel()
	e := escaper{"SECRETvalue"}
	assert.Equal(t, "a &lt;b&gt; &amp; *** c", e.text("a <b> & SECRETvalue c"))
	assert.Equal(t, "`it's`", e.code("it`s"))
	assert.Equal(t, "", e.code(""))
	assert.Equal(t, "<https://app.example.com/x|Environment &lt;prod&gt;>", e.link("https://u:p@app.example.com/x?token=1", "Environment <prod>"))
	assert.Equal(t, "", e.link("javascript:alert(1)", "x"))
}
