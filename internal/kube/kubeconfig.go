package kube

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"
)

// Kubeconfig errors. Each error LoadKubeconfig returns wraps exactly one of
// them, so callers can branch with errors.Is; no message ever quotes the
// kubeconfig's contents.
var (
	// ErrKubeconfigMalformed means the secret is neither base64 nor YAML, or is
	// YAML that is not a kubeconfig.
	ErrKubeconfigMalformed = errors.New("kubeconfig is malformed")
	// ErrUnknownContext means the requested context is not in the kubeconfig.
	ErrUnknownContext = errors.New("kubeconfig context not found")
	// ErrNoCurrentContext means no context was requested and the kubeconfig sets
	// no current-context.
	ErrNoCurrentContext = errors.New("kubeconfig has no current context")
	// ErrKubeconfigInvalid means the chosen context cannot make a client, for
	// example because its cluster has no server.
	ErrKubeconfigInvalid = errors.New("kubeconfig context is unusable")
)

// API server errors that ClassifyAPIError recognises. The classified error
// wraps one of these and the original error.
var (
	// ErrUnreachable means the API server could not be reached (connection
	// refused, unknown host, timeout).
	ErrUnreachable = errors.New("cannot reach the API server")
	// ErrUnauthorized means the API server answered 401.
	ErrUnauthorized = errors.New("the credential was rejected or has expired")
	// ErrForbidden means the API server answered 403.
	ErrForbidden = errors.New("the credential is not allowed to do this")
	// ErrCertificate means the API server's TLS certificate was not trusted.
	ErrCertificate = errors.New("the API server's certificate is not trusted")
)

// Kubeconfig is a client configuration read from a kubeconfig secret.
type Kubeconfig struct {
	// REST configures clients for the chosen context.
	REST *rest.Config
	// Context is the chosen context's name.
	Context string
	// Namespace is the chosen context's namespace, empty when it sets none.
	Namespace string
	// Server is the API server URL, for messages.
	Server string
	// Exec is the chosen user's exec credential plugin, nil when it has
	// none. REST still runs it; a caller that produces the same credential
	// in process clears REST.ExecProvider.
	Exec *clientcmdapi.ExecConfig
}

// LoadKubeconfig parses a kubeconfig held in a secret, base64-encoded
// (standard or URL alphabet, padded or not, wrapped or not) or as plain YAML,
// entirely in memory. contextName chooses the context; empty means the
// kubeconfig's current-context.
func LoadKubeconfig(secret string, contextName string) (*Kubeconfig, error) {
	data, encoded, err := decodeKubeconfigSecret(secret)
	if err != nil {
		return nil, err
	}
	what := "the secret"
	if encoded {
		what = "the base64-decoded secret"
	}
	cfg, err := parseKubeconfig(data, what)
	if err != nil {
		return nil, err
	}

	available := slices.Sorted(maps.Keys(cfg.Contexts))
	name := contextName
	if name == "" {
		name = cfg.CurrentContext
		if name == "" {
			return nil, fmt.Errorf("%w: set current-context in the kubeconfig or choose a context; available contexts: %s",
				ErrNoCurrentContext, quoteList(available))
		}
	}
	kctx, ok := cfg.Contexts[name]
	if !ok {
		return nil, fmt.Errorf("%w: no context %q; available contexts: %s", ErrUnknownContext, name, quoteList(available))
	}

	restCfg, err := clientcmd.NewNonInteractiveClientConfig(*cfg, name, &clientcmd.ConfigOverrides{}, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("%w: context %q: %s", ErrKubeconfigInvalid, name, redact(err.Error(), kubeconfigSecrets(cfg, secret)))
	}
	kc := &Kubeconfig{
		REST:      restCfg,
		Context:   name,
		Namespace: kctx.Namespace,
		Server:    serverForMessages(restCfg.Host),
	}
	if user := cfg.AuthInfos[kctx.AuthInfo]; user != nil && user.Exec != nil {
		kc.Exec = user.Exec.DeepCopy()
	}
	return kc, nil
}

// decodeKubeconfigSecret returns the kubeconfig bytes, decoding base64 when
// the secret is made only of base64 characters; encoded reports whether it
// did. A YAML kubeconfig always has a ':' so it is never taken for base64.
func decodeKubeconfigSecret(secret string) (data []byte, encoded bool, err error) {
	trimmed := strings.TrimSpace(strings.TrimPrefix(secret, "\ufeff"))
	if trimmed == "" {
		return nil, false, fmt.Errorf("%w: the secret is empty", ErrKubeconfigMalformed)
	}
	compact := strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, trimmed)
	if !isBase64Text(compact) {
		return []byte(trimmed), false, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		decoded, err := enc.DecodeString(compact)
		if err != nil {
			continue
		}
		if !utf8.Valid(decoded) {
			return nil, true, fmt.Errorf("%w: the secret is base64 but does not decode to text; expected a base64-encoded kubeconfig YAML", ErrKubeconfigMalformed)
		}
		return decoded, true, nil
	}
	// Only base64 characters but not decodable: most likely a plain value
	// (such as a bare token) pasted in place of the kubeconfig.
	return nil, false, fmt.Errorf("%w: the secret is neither valid base64 nor a YAML kubeconfig", ErrKubeconfigMalformed)
}

func isBase64Text(s string) bool {
	for _, r := range s {
		switch {
		case r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z', r >= '0' && r <= '9',
			r == '+', r == '/', r == '-', r == '_', r == '=':
		default:
			return false
		}
	}
	return true
}

// parseKubeconfig checks the bytes are YAML shaped like a kubeconfig before
// handing them to clientcmd, so the common mistakes get a precise message.
// what names the input in messages.
func parseKubeconfig(data []byte, what string) (*clientcmdapi.Config, error) {
	jsonData, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is neither base64 nor valid YAML%s", ErrKubeconfigMalformed, what, errorLine(err))
	}
	var shape struct {
		Kind     string `json:"kind"`
		Clusters []any  `json:"clusters"`
		Contexts []any  `json:"contexts"`
	}
	if err := json.Unmarshal(jsonData, &shape); err != nil {
		return nil, fmt.Errorf("%w: %s is not a kubeconfig (expected a YAML mapping with clusters, contexts and users)", ErrKubeconfigMalformed, what)
	}
	if shape.Kind != "" && shape.Kind != "Config" {
		kind := "another kind"
		if validKindName(shape.Kind) {
			kind = fmt.Sprintf("kind %q", shape.Kind)
		}
		return nil, fmt.Errorf("%w: %s is YAML of %s, not a kubeconfig (kind: Config)", ErrKubeconfigMalformed, what, kind)
	}
	if len(shape.Clusters) == 0 || len(shape.Contexts) == 0 {
		return nil, fmt.Errorf("%w: %s has no clusters or no contexts; is it a kubeconfig?", ErrKubeconfigMalformed, what)
	}
	cfg, err := clientcmd.Load(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not a valid kubeconfig%s", ErrKubeconfigMalformed, what, errorLine(err))
	}
	return cfg, nil
}

// errorLine keeps only the position ("line N") from a parser error: the
// rest of the message may quote the input, which holds credentials.
func errorLine(err error) string {
	msg := err.Error()
	for rest := msg; ; {
		i := strings.Index(rest, "line ")
		if i < 0 {
			return ""
		}
		rest = rest[i+len("line "):]
		n := 0
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n > 0 {
			return " (line " + rest[:n] + ")"
		}
	}
}

func validKindName(s string) bool {
	if len(s) > 63 {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// kubeconfigSecrets lists every credential value in the kubeconfig, in the
// forms an error could quote them.
func kubeconfigSecrets(cfg *clientcmdapi.Config, raw string) []string {
	var out []string
	addBytes := func(b []byte) {
		if len(b) > 0 {
			out = append(out, string(b), base64.StdEncoding.EncodeToString(b))
		}
	}
	for _, a := range cfg.AuthInfos {
		out = append(out, a.Token, a.Password)
		addBytes(a.ClientKeyData)
		addBytes(a.ClientCertificateData)
		if a.AuthProvider != nil {
			for _, v := range a.AuthProvider.Config {
				out = append(out, v)
			}
		}
		if a.Exec != nil {
			for _, e := range a.Exec.Env {
				out = append(out, e.Value)
			}
		}
	}
	for _, c := range cfg.Clusters {
		addBytes(c.CertificateAuthorityData)
	}
	return append(out, strings.TrimSpace(raw))
}

// redact replaces every secret of a useful length in msg.
func redact(msg string, secrets []string) string {
	// Longest first, so a secret containing another is replaced whole.
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, s := range secrets {
		if len(s) >= 4 {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return msg
}

// ClassifyAPIError turns a client-go error into one that wraps ErrUnreachable,
// ErrUnauthorized, ErrForbidden or ErrCertificate, with a message a user can
// act on; the original error stays in the chain. Other errors are returned
// unchanged, and nil stays nil.
func ClassifyAPIError(err error) error {
	if err == nil {
		return nil
	}
	for _, known := range []error{ErrUnreachable, ErrUnauthorized, ErrForbidden, ErrCertificate} {
		if errors.Is(err, known) {
			return err
		}
	}
	server := apiServerOf(err)
	at := ""
	if server != "" {
		at = " at " + server
	}

	if cause, ok := certificateCause(err); ok {
		where := ""
		if server != "" {
			where = " (" + server + ")"
		}
		return &apiError{kind: ErrCertificate, err: err,
			msg: fmt.Sprintf("%s%s: %s", ErrCertificate, where, cause)}
	}
	switch {
	case apierrors.IsUnauthorized(err):
		return &apiError{kind: ErrUnauthorized, err: err,
			msg: fmt.Sprintf("%s (401 Unauthorized%s)", ErrUnauthorized, fromServer(server))}
	case apierrors.IsForbidden(err):
		return &apiError{kind: ErrForbidden, err: err,
			msg: fmt.Sprintf("%s: %s", ErrForbidden, statusMessage(err))}
	}
	if cause, ok := unreachableCause(err); ok {
		return &apiError{kind: ErrUnreachable, err: err,
			msg: fmt.Sprintf("%s%s: %s", ErrUnreachable, at, cause)}
	}
	return err
}

// apiError carries a classified message; Error never includes the wrapped
// error's text, which may hold a full request URL.
type apiError struct {
	kind error
	msg  string
	err  error
}

func (e *apiError) Error() string   { return e.msg }
func (e *apiError) Unwrap() []error { return []error{e.kind, e.err} }

func fromServer(server string) string {
	if server == "" {
		return ""
	}
	return " from " + server
}

// apiServerOf returns scheme://host[:port] of the request that failed,
// dropping path, query and any user information.
func apiServerOf(err error) string {
	var uerr *url.Error
	if !errors.As(err, &uerr) {
		return ""
	}
	u, perr := url.Parse(uerr.URL)
	if perr != nil || u.Host == "" {
		return ""
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host}).String()
}

func statusMessage(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		if msg := status.Status().Message; msg != "" {
			return msg
		}
	}
	return "forbidden"
}

func certificateCause(err error) (string, bool) {
	var (
		verify    *tls.CertificateVerificationError
		authority x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		roots     x509.SystemRootsError
	)
	switch {
	case errors.As(err, &verify):
		return verify.Error(), true
	case errors.As(err, &authority):
		return authority.Error(), true
	case errors.As(err, &hostname):
		return hostname.Error(), true
	case errors.As(err, &invalid):
		return invalid.Error(), true
	case errors.As(err, &roots):
		return roots.Error(), true
	}
	return "", false
}

func unreachableCause(err error) (string, bool) {
	var (
		dnsErr *net.DNSError
		opErr  *net.OpError
		netErr net.Error
	)
	switch {
	case errors.As(err, &dnsErr):
		return dnsErr.Error(), true
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		if errors.As(err, &opErr) {
			return opErr.Error(), true
		}
		return "connection refused", true
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "timed out", true
	case errors.As(err, &netErr) && netErr.Timeout():
		return "timed out", true
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return opErr.Error(), true
	}
	return "", false
}

func quoteList(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(quoted, ", ")
}

// serverForMessages is the API server's URL without any userinfo, so it can
// be printed.
func serverForMessages(host string) string {
	u, err := url.Parse(host)
	if err != nil || u.User == nil {
		return host
	}
	u.User = nil
	return u.String()
}
