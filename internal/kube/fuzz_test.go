package kube

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

// Credential markers start every token, password and client key the fuzz
// target writes, so a message quoting any part of them is caught even
// when the fuzzed rest of the value is escaped or cut.
const (
	fuzzTokenMarker    = "gl-fuzz-token-"
	fuzzPasswordMarker = "gl-fuzz-password-"
	fuzzKeyMarker      = "gl-fuzz-client-key-"
)

// Ways FuzzLoadKubeconfig hands the built kubeconfig to LoadKubeconfig.
const (
	fuzzPlain = iota
	fuzzStdBase64
	fuzzURLBase64
	fuzzRawStdBase64
	fuzzWrappedBase64
	fuzzNoiseInserted
	fuzzTruncated
	fuzzNoiseOnly
	fuzzShapes
)

// fuzzKubeconfigTemplate has two contexts, one for a user with a token
// and a client certificate, one for a user with a password, and room for
// fuzzed pieces written raw, so the fuzzer can break the YAML as well as
// the values.
const fuzzKubeconfigTemplate = `apiVersion: v1
kind: Config
current-context: %s
clusters:
- name: prod-cluster
  cluster:
    server: %s
contexts:
- name: %s
  context:
    cluster: prod-cluster
    user: deployer
    namespace: %s
- name: staging
  context:
    cluster: prod-cluster
    user: basic
users:
- name: deployer
  user:
    token: %s
    client-certificate-data: Y2VydA==
    client-key-data: %s
- name: basic
  user:
    username: ops
    password: %s
`

// fuzzKubeconfig is one input FuzzLoadKubeconfig builds.
type fuzzKubeconfig struct {
	secret string // what LoadKubeconfig is given
	plain  string // the kubeconfig text, before any encoding
	// encoded is set when secret is the base64 form of plain.
	encoded bool
}

// buildFuzzKubeconfig fills the template and hands it over in the form
// shape chooses; pos places noise or the cut.
func buildFuzzKubeconfig(shape uint8, pos uint16, server, ctx, current, namespace, tokenTail, passwordTail string, keyTail, noise []byte) fuzzKubeconfig {
	key := base64.StdEncoding.EncodeToString(append([]byte(fuzzKeyMarker), keyTail...))
	plain := fmt.Sprintf(fuzzKubeconfigTemplate, current, server, ctx, namespace,
		fuzzTokenMarker+tokenTail, key, fuzzPasswordMarker+passwordTail)
	at := int(pos) % (len(plain) + 1)
	switch shape % fuzzShapes {
	case fuzzStdBase64:
		return fuzzKubeconfig{secret: base64.StdEncoding.EncodeToString([]byte(plain)), plain: plain, encoded: true}
	case fuzzURLBase64:
		return fuzzKubeconfig{secret: base64.URLEncoding.EncodeToString([]byte(plain)), plain: plain, encoded: true}
	case fuzzRawStdBase64:
		return fuzzKubeconfig{secret: base64.RawStdEncoding.EncodeToString([]byte(plain)), plain: plain, encoded: true}
	case fuzzWrappedBase64:
		return fuzzKubeconfig{secret: wrapLines(base64.StdEncoding.EncodeToString([]byte(plain)), 1+int(pos)%100) + "\n", plain: plain, encoded: true}
	case fuzzNoiseInserted:
		plain = plain[:at] + string(noise) + plain[at:]
	case fuzzTruncated:
		plain = plain[:at]
	case fuzzNoiseOnly:
		plain = string(noise)
	}
	return fuzzKubeconfig{secret: plain, plain: plain}
}

// FuzzLoadKubeconfig builds kubeconfigs from a template with fuzzed
// pieces and random bytes, plain or base64-encoded, and checks that
// LoadKubeconfig never panics, that every error wraps exactly one of the
// kubeconfig errors, that neither an error nor a printed result shows a
// token, password or client key, and that an accepted kubeconfig is
// usable.
func FuzzLoadKubeconfig(f *testing.F) {
	f.Fuzz(func(t *testing.T, shape uint8, pos uint16, server, ctx, current, namespace, choose, tokenTail, passwordTail string, keyTail, noise []byte) {
		in := buildFuzzKubeconfig(shape, pos, server, ctx, current, namespace, tokenTail, passwordTail, keyTail, noise)

		kc, err := LoadKubeconfig(in.secret, choose)
		if err == nil {
			if kc == nil || kc.REST == nil || kc.Context == "" {
				t.Fatalf("accepted kubeconfig is incomplete: %+v", kc)
			}
			if choose != "" && kc.Context != choose {
				t.Fatalf("asked for context %q, got %q", choose, kc.Context)
			}
			if kc.Server != serverForMessages(kc.REST.Host) {
				t.Fatalf("Server %q is not REST.Host %q without its userinfo", kc.Server, kc.REST.Host)
			}
			if u, err := url.Parse(kc.Server); err == nil && u.User != nil {
				t.Fatalf("Server %q keeps userinfo", kc.Server)
			}
			printed := fmt.Sprintf("%v %+v %#v %v", kc, kc, kc, kc.REST)
			for _, s := range fuzzKubeconfigSecrets(in, choose) {
				if strings.Contains(printed, s) {
					t.Fatalf("printed kubeconfig shows credential %q: %s", s, printed)
				}
			}
			return
		}
		if kc != nil {
			t.Fatalf("an error came with a kubeconfig: %v", err)
		}
		var kinds []error
		for _, k := range []error{ErrKubeconfigMalformed, ErrUnknownContext, ErrNoCurrentContext, ErrKubeconfigInvalid} {
			if errors.Is(err, k) {
				kinds = append(kinds, k)
			}
		}
		if len(kinds) != 1 {
			t.Fatalf("error wraps %d kubeconfig errors, want 1: %v", len(kinds), err)
		}
		msg := err.Error()
		for _, s := range fuzzKubeconfigSecrets(in, choose) {
			if strings.Contains(msg, s) {
				t.Fatalf("error quotes credential %q: %s", s, msg)
			}
		}
	})
}

// fuzzKubeconfigSecrets lists the strings an error must not contain: the
// credential markers wherever they still mark only credentials, and every
// token, password and client key the kubeconfig really holds, in the
// plain and base64 forms the secret carries them in. A string that also
// appears among the kubeconfig's names, servers or namespaces, or the
// chosen context, is left out: messages may rightly quote those.
func fuzzKubeconfigSecrets(in fuzzKubeconfig, choose string) []string {
	public := []string{choose}
	var creds []string
	if cfg, err := clientcmd.Load([]byte(in.plain)); err == nil {
		public = append(public, cfg.CurrentContext)
		for name, c := range cfg.Contexts {
			public = append(public, name, c.Cluster, c.AuthInfo, c.Namespace)
		}
		for name, c := range cfg.Clusters {
			public = append(public, name, c.Server, c.ProxyURL, c.TLSServerName)
		}
		for name, a := range cfg.AuthInfos {
			public = append(public, name, a.Username)
			creds = append(creds, a.Token, a.Password, string(a.ClientKeyData),
				base64.StdEncoding.EncodeToString(a.ClientKeyData))
		}
	}
	// A marker is only a credential where the template put it: a fuzzed
	// piece that repeats it has made it part of something else.
	// The client key is written base64-encoded, so its marker is too.
	keyMarker := base64.StdEncoding.EncodeToString([]byte(fuzzKeyMarker))
	for _, m := range []string{fuzzTokenMarker, fuzzPasswordMarker, keyMarker[:len(fuzzKeyMarker)/3*4]} {
		if strings.Count(in.plain, m) == 1 {
			creds = append(creds, m)
		}
	}

	var out []string
	for _, c := range creds {
		if len(c) < 8 || containsAny(public, c) {
			continue
		}
		out = append(out, c)
		if in.encoded {
			out = append(out, base64Forms(c)...)
		}
	}
	return out
}

// containsAny reports whether any of values contains s.
func containsAny(values []string, s string) bool {
	for _, v := range values {
		if strings.Contains(v, s) {
			return true
		}
	}
	return false
}

// base64Forms returns the text that s becomes inside any base64 encoding
// of a longer string, for each of the three alignments and both alphabets:
// the characters that depend on s alone.
func base64Forms(s string) []string {
	var out []string
	for shift := range 3 {
		full := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("\x00", shift) + s))
		start := (shift*8 + 5) / 6      // first character free of the prefix
		end := (shift + len(s)) * 8 / 6 // last character free of the padding
		if end-start < 8 {
			continue
		}
		std := full[start:end]
		out = append(out, std, strings.NewReplacer("+", "-", "/", "_").Replace(std))
	}
	return out
}
