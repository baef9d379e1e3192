package health

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
)

// TLSOptions adjusts how a URL target verifies the server's certificate.
// There is deliberately no way to skip verification: a check that trusts any
// certificate proves nothing about which service answered.
type TLSOptions struct {
	// CABundle is PEM data with CA certificates trusted in addition to the
	// system roots, for environments behind a private CA.
	CABundle []byte
}

// Target is where health requests go: a base URL and the client that reaches
// it. Build one with NewURLTarget, NewServiceProxyTarget or NewTarget; the zero
// value fails every request with a clear error.
type Target struct {
	base   *url.URL
	client *http.Client
	name   string
	// proxied is set for the API server's service proxy, which authenticates
	// with the Authorization header itself and never forwards one to the app.
	proxied bool
	// portOmitted is set for a proxy target built without a port, so the
	// proxy's misleading "no endpoints available" can be explained.
	portOmitted bool
	secrets     []string
}

// NewURLTarget returns a target for a service's public URL, such as an
// environment URL. The certificate is always verified against the system
// roots plus opts.CABundle.
func NewURLTarget(baseURL string, opts TLSOptions) (Target, error) {
	u, err := parseBaseURL(baseURL)
	if err != nil {
		return Target{}, err
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		// No system pool (some minimal images): trust only the bundle.
		roots = x509.NewCertPool()
	}
	if len(opts.CABundle) > 0 && !roots.AppendCertsFromPEM(opts.CABundle) {
		return Target{}, errors.New("read CA bundle: no PEM certificate found")
	}
	transport := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   30 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig: &tls.Config{
			RootCAs:    roots,
			MinVersion: tls.VersionTLS12,
		},
	}
	return Target{
		base:    u,
		client:  &http.Client{Transport: transport},
		name:    redacted(u),
		secrets: urlSecrets(u),
	}, nil
}

// NewTarget returns a target that sends requests to baseURL with client, for
// callers that need their own transport (a custom dialer, a test router). The
// client's TLS settings are the caller's responsibility.
func NewTarget(baseURL string, client *http.Client) (Target, error) {
	if client == nil {
		return Target{}, errors.New("build health target: HTTP client is nil")
	}
	u, err := parseBaseURL(baseURL)
	if err != nil {
		return Target{}, err
	}
	return Target{base: u, client: client, name: redacted(u), secrets: urlSecrets(u)}, nil
}

// NewServiceProxyTarget returns a target that reaches a Service through the
// API server's service proxy at
// <host>/api/v1/namespaces/<namespace>/services/<service>:<port>/proxy, so a
// version without a public URL can still be checked. port is a Service port
// number or name; leave it empty only when the Service's port has no name,
// because the proxy matches an empty port against port names and answers
// "no endpoints available" for a named one. Requests carry the
// credentials of cfg; the proxy does not forward an Authorization header to
// the service, so endpoints that need a bearer token cannot be checked this
// way.
func NewServiceProxyTarget(cfg *rest.Config, namespace, service, port string) (Target, error) {
	if cfg == nil {
		return Target{}, errors.New("build service proxy target: REST config is nil")
	}
	if errs := validation.IsDNS1123Label(namespace); len(errs) > 0 {
		return Target{}, fmt.Errorf("build service proxy target: namespace %q: %s", namespace, strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1035Label(service); len(errs) > 0 {
		return Target{}, fmt.Errorf("build service proxy target: service %q: %s", service, strings.Join(errs, "; "))
	}
	if err := validatePort(port); err != nil {
		return Target{}, fmt.Errorf("build service proxy target: port %q: %w", port, err)
	}
	host, _, err := rest.DefaultServerUrlFor(cfg)
	if err != nil {
		// The underlying message quotes the host verbatim, credentials included.
		return Target{}, fmt.Errorf("build service proxy target: API server host %q is not a URL or host:port", redactURL(cfg.Host))
	}
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return Target{}, fmt.Errorf("build service proxy target: API server client: %w", err)
	}
	servicePort := service
	if port != "" {
		servicePort += ":" + port
	}
	base := *host
	base.Path = path.Join("/", host.Path, "api/v1/namespaces", namespace, "services", servicePort, "proxy")
	base.RawPath = ""
	secrets := urlSecrets(host)
	secrets = append(secrets, cfg.BearerToken, cfg.Password)
	return Target{
		base:        &base,
		client:      client,
		name:        fmt.Sprintf("service %s/%s via API server %s", namespace, servicePort, redacted(host)),
		proxied:     true,
		portOmitted: port == "",
		secrets:     secrets,
	}, nil
}

// Named returns t described as name, for a target whose URL means
// nothing to people, such as a port-forward's loopback address.
func (t Target) Named(name string) Target {
	t.name = name
	return t
}

// Name describes the target for people: the base URL without credentials or
// query, or the Service and API server behind a proxy target.
func (t Target) Name() string {
	if t.name == "" {
		return "(unset target)"
	}
	return t.name
}

// String returns Name, so printing a Target with any verb never shows secrets.
func (t Target) String() string { return t.Name() }

// GoString returns Name quoted, so %#v does not dump the credentials either.
func (t Target) GoString() string { return strconv.Quote(t.Name()) }

// errUnsetTarget explains a zero Target.
var errUnsetTarget = errors.New("health target is not set; build it with NewURLTarget or NewServiceProxyTarget")

// set reports whether t was built by a constructor.
func (t Target) set() bool { return t.base != nil && t.client != nil }

// resolve joins a request path such as "/health/ready?full=1" onto the base
// URL, keeping the base's path prefix and merging both queries.
func (t Target) resolve(p string) (*url.URL, error) {
	if !t.set() {
		return nil, errUnsetTarget
	}
	ref, err := url.Parse(p)
	if err != nil || ref.Scheme != "" || ref.Host != "" || !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("request path %q must be an absolute path such as /health", redactPath(p))
	}
	u := t.base.JoinPath(ref.Path)
	if !strings.HasPrefix(u.Path, "/") {
		// JoinPath onto an empty base path yields "health", not "/health".
		u.Path = "/" + u.Path
		if u.RawPath != "" {
			u.RawPath = "/" + u.RawPath
		}
	}
	switch {
	case t.base.RawQuery == "":
		u.RawQuery = ref.RawQuery
	case ref.RawQuery != "":
		u.RawQuery = t.base.RawQuery + "&" + ref.RawQuery
	}
	return u, nil
}

// parseBaseURL checks that raw is an absolute http(s) URL without quoting it
// back in errors, since it may carry credentials.
func parseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("parse target URL %s: %w", redactURL(raw), err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("parse target URL %s: scheme must be http or https", redacted(u))
	}
	if u.Host == "" {
		return nil, fmt.Errorf("parse target URL %s: host is missing", redacted(u))
	}
	return u, nil
}

// validatePort accepts what the service proxy accepts after the colon: a
// port number or an IANA-style port name.
func validatePort(port string) error {
	if port == "" {
		return nil
	}
	if n, err := strconv.Atoi(port); err == nil {
		if errs := validation.IsValidPortNum(n); len(errs) > 0 {
			return errors.New(strings.Join(errs, "; "))
		}
		return nil
	}
	if errs := validation.IsValidPortName(port); len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}
