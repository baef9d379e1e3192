package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ebeautything/greenlight/internal/kube"
)

// secretMarker starts every secret the tests hand greenlight, so a leak is
// found in any encoding that keeps a few characters of it. It is plain
// lower-case letters and digits: Markdown, JSON and URL escaping leave it
// as it is.
const secretMarker = "qz7mark"

// leakForms are the strings whose presence means secret leaked: the marker
// itself (raw, Markdown-, JSON- and URL-escaped secrets all keep it), the
// marker in base64 at each of the three byte alignments and in both
// alphabets, and the secret cut short before the marker ends, as a
// summary's truncation shows it ("qz7m…", "qz7ma...").
func leakForms(secret string) []string {
	forms := []string{secretMarker}
	for pad := range 3 {
		prefix := strings.Repeat("\x00", pad)
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			full := enc.EncodeToString([]byte(prefix + secretMarker))
			// Drop the characters that mix the padding or what follows
			// the marker: the rest appear wherever the marker is encoded.
			skip := (pad*8 + 5) / 6
			stable := (pad + len(secretMarker)) * 8 / 6
			if stable > skip {
				forms = append(forms, full[skip:stable])
			}
		}
	}
	for k := 4; k < len(secretMarker) && k <= len(secret); k++ {
		for _, ellipsis := range []string{"…", "..."} {
			forms = append(forms, secret[:k]+ellipsis)
		}
	}
	return forms
}

// sweep lists, for each place, the leak forms of secrets it contains.
func sweep(places map[string]string, secrets ...string) []string {
	var found []string
	for where, text := range places {
		for _, secret := range secrets {
			for _, form := range leakForms(secret) {
				if strings.Contains(text, form) {
					found = append(found, fmt.Sprintf("%s holds %q (from a secret starting %.4s)", where, form, secret))
				}
			}
		}
	}
	return found
}

// markedSecrets are the tests' secrets; each starts with secretMarker.
var markedSecrets = []string{secretToken, secretGitHub, secretSlack, secretWebhook}

// clusterObjects dumps, as JSON, every object greenlight may write in the
// namespace: ConfigMaps (the deploy history), Deployments, ReplicaSets and
// Services (their annotations), Leases (the lock), Events, and Secrets
// other than the app-env Secrets, the one place app-env values belong.
func clusterObjects(t *testing.T, client kubernetes.Interface, ns string) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	add := func(kind string, list any, err error) {
		require.NoError(t, err, "list %s", kind)
		data, err := json.Marshal(list)
		require.NoError(t, err)
		out["cluster "+kind] = string(data)
	}
	cms, err := client.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	add("configmaps", cms, err)
	deps, err := client.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	add("deployments", deps, err)
	svcs, err := client.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	add("services", svcs, err)
	leases, err := client.CoordinationV1().Leases(ns).List(ctx, metav1.ListOptions{})
	add("leases", leases, err)
	events, err := client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	add("events", events, err)
	rss, err := client.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
	add("replicasets", rss, err)
	secrets, err := client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: "!" + kube.LabelEnvFor})
	add("secrets", secrets, err)
	return out
}

// TestSweepFindsEveryEncoding proves the sweep catches each secret raw,
// Markdown-escaped, JSON-escaped, URL-encoded, in base64 at any offset and
// cut short, and stays quiet on text without it.
func TestSweepFindsEveryEncoding(t *testing.T) {
	t.Parallel()
	markdown := strings.NewReplacer(`\`, `\\`, "_", `\_`, "*", `\*`, "`", "\\`", "[", `\[`, "]", `\]`, "<", `\<`, ">", `\>`, "|", `\|`, "-", `\-`, ".", `\.`, "/", `\/`)
	for _, secret := range markedSecrets {
		require.True(t, strings.HasPrefix(secret, secretMarker), "every test secret starts with the marker: %q", secret)
		jsonText, err := json.Marshal(map[string]string{"v": secret})
		require.NoError(t, err)
		forms := map[string]string{
			"raw":                  "token " + secret + " end",
			"markdown":             "| " + markdown.Replace(secret) + " |",
			"json":                 string(jsonText),
			"url query":            "https://x.test/?t=" + url.QueryEscape(secret),
			"url path":             "https://x.test/" + url.PathEscape(secret),
			"truncated":            "value: " + secret[:12] + "…",
			"truncated short":      "value: " + secret[:5] + "...",
			"markdown truncated":   markdown.Replace(secret[:10]) + "…",
			"base64":               base64.StdEncoding.EncodeToString([]byte(secret)),
			"base64 offset 1":      base64.StdEncoding.EncodeToString([]byte("x" + secret)),
			"base64 offset 2":      base64.StdEncoding.EncodeToString([]byte("xy:" + secret)),
			"base64 url offset 2":  base64.URLEncoding.EncodeToString([]byte("ab" + secret + "?")),
			"basic auth header":    "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("user:"+secret)),
			"base64 raw, no equal": base64.RawStdEncoding.EncodeToString([]byte("abcd" + secret)),
		}
		for name, text := range forms {
			assert.NotEmpty(t, sweep(map[string]string{name: text}, secret), "%s of %q not caught: %s", name, secret, text)
		}
	}
	signature := "b38a2c5fac6334a9c7b3d24e0f1d2c3b4a5968778695a4b3c2d1e0f1a2b3c4d5"
	for name, text := range map[string]string{
		"raw": "sig=" + signature, "json": mustJSON(map[string]string{"u": "https://x/?a=1&s=" + signature}),
		"base64 offset 1":    base64.StdEncoding.EncodeToString([]byte("x" + signature)),
		"base64url offset 2": base64.RawURLEncoding.EncodeToString([]byte("xy" + signature + "?")),
		"url query":          "next=" + url.QueryEscape("a/b "+signature),
	} {
		assert.NotEmpty(t, sweepExact(map[string]string{name: text}, signature), "%s of an unmarked secret not caught: %s", name, text)
	}
	assert.Empty(t, sweepExact(map[string]string{"clean": "signed with SigV4, 64 hex characters"}, signature))
	clean := map[string]string{"summary": "deployed sampleapp:v2 (ghs\\_… masked as ***), 2 of 2 ready", "b64": base64.StdEncoding.EncodeToString([]byte("nothing to see here, qz7 m a r k"))}
	assert.Empty(t, sweep(clean, markedSecrets...))
}

// exactLeakForms are the strings whose presence means a secret without the
// marker leaked, such as a signature computed from marked credentials: the
// secret raw, JSON-, URL-query- and URL-path-escaped, and in base64 at each
// of the three byte alignments and in both alphabets.
func exactLeakForms(secret string) []string {
	jsonText, _ := json.Marshal(secret)
	forms := []string{secret, strings.Trim(string(jsonText), `"`), url.QueryEscape(secret), url.PathEscape(secret)}
	for pad := range 3 {
		prefix := strings.Repeat("\x00", pad)
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			full := enc.EncodeToString([]byte(prefix + secret))
			skip := (pad*8 + 5) / 6
			stable := (pad + len(secret)) * 8 / 6
			if stable-skip >= 8 {
				forms = append(forms, full[skip:stable])
			}
		}
	}
	return forms
}

// sweepExact lists, for each place, the exact leak forms of secrets it
// contains.
func sweepExact(places map[string]string, secrets ...string) []string {
	var found []string
	for where, text := range places {
		for _, secret := range secrets {
			for _, form := range exactLeakForms(secret) {
				if strings.Contains(text, form) {
					found = append(found, fmt.Sprintf("%s holds %.60q (from a secret starting %.12s)", where, form, secret))
					break
				}
			}
		}
	}
	return found
}
