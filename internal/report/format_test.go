package report

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestFmtDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{-time.Second, "0s"},
		{850 * time.Microsecond, "850µs"},
		{4200 * time.Microsecond, "4.2ms"},
		{4 * time.Millisecond, "4ms"},
		{123400 * time.Microsecond, "123ms"},
		{2100 * time.Millisecond, "2.1s"},
		{2 * time.Second, "2s"},
		{31*time.Minute + 12*time.Second, "31m12s"},
		{time.Hour + 2*time.Minute + 10*time.Second, "1h02m"},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, fmtDuration(tc.in), "%v", tc.in)
	}
}

func TestFmtElapsed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{20 * time.Second, "20s"},
		{time.Minute, "1m"},
		{80 * time.Second, "1m20s"},
		{65 * time.Minute, "1h05m"},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, fmtElapsed(tc.in), "%v", tc.in)
	}
}

func TestFmtPercent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   float64
		want string
	}{{0, "0%"}, {1, "100%"}, {0.9972, "99.72%"}, {0.04, "4%"}, {0.00125, "0.13%"}}
	for _, tc := range tests {
		assert.Equal(t, tc.want, fmtPercent(tc.in), "%v", tc.in)
	}
}

func TestMarkdownEscapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"plain", "connection refused", "connection refused"},
		{"html", `<img src=x onerror="alert(1)">`, `&lt;img src=x onerror="alert(1)"&gt;`},
		{"entity", "a &amp; b", "a &amp;amp; b"},
		{"emphasis and code", "*bold* _it_ `code`", `\*bold\* \_it\_ \` + "`code\\`"},
		{"link", "[click](javascript:alert(1))", `\[click\](javascript:alert(1))`},
		{"image", "![x](https://evil.example/x.png)", `\!\[x\](https\://evil.example/x.png)`},
		{"cell break", "a | b", `a \| b`},
		{"math", "$x^2$", `\$x^2\$`},
		{"bare URL", "see https://evil.example or www.evil.example", `see https\://evil.example or www\.evil.example`},
		{"newline heading", "ok\n# Heading\n- item", `ok \# Heading - item`},
		{"control and bidi", "a\x1b[31mred\u202Eevil", `a\[31mredevil`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, md(tc.in, 1000))
		})
	}
	assert.Equal(t, "abcd…", md("abcdefgh", 5), "long text is cut with a mark")
}

func TestCodeSpan(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		cell bool
		want string
	}{
		{"plain", "v1.2.3", false, "`v1.2.3`"},
		{"backticks inside", "a`b``c", false, "```a`b``c```"},
		{"backtick at edge", "`x", false, "`` `x ``"},
		{"pipe in cell", "a|b", true, "`a\\|b`"},
		{"pipe outside cell", "a|b", false, "`a|b`"},
		{"html stays literal", "<b>", false, "`<b>`"},
		{"empty", "", false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, code(tc.in, 100, tc.cell))
		})
	}
}

func TestCodeBlockFenceCannotBeClosed(t *testing.T) {
	t.Parallel()
	got := codeBlock("sh", "echo hi\n```\n<script>x</script>")
	assert.Equal(t, "````sh\necho hi\n```\n<script>x</script>\n````\n", got)
}

func TestSafeURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{"https://github.com/acme/app", "https://github.com/acme/app"},
		{"https://user:s3cret@github.com/x", "https://github.com/x"},
		{"https://x.example/a(b)", "https://x.example/a%28b%29"},
		{"javascript:alert(1)", ""},
		{"data:text/html,<b>", ""},
		{"/relative", ""},
		{"", ""},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, safeURL(tc.in), tc.in)
	}
}
