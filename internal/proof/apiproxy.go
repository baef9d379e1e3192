package proof

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// maxRecorded bounds an APIProxy's request log; later requests are only
// counted, so a runaway client cannot exhaust memory.
const maxRecorded = 100_000

// Request is one request an APIProxy forwarded.
type Request struct {
	// Time is when the request arrived.
	Time time.Time
	// Method is the HTTP method.
	Method string
	// Path is the URL path, without the query.
	Path string
	// Watch is true for a watch (?watch=true or /watch/ paths).
	Watch bool
	// DryRun is true when the request asked for a dry run.
	DryRun bool
	// UserAgent tells the clients apart.
	UserAgent string
}

// APIProxy is a reverse proxy on 127.0.0.1 in front of an API server that
// records every request it forwards. Clients pointed at it — a kubectl
// process through Kubeconfig, greenlight through Config — reach the API
// server with the upstream's credentials and are counted with the same
// ruler, which a client-side counter inside one of them could not be.
type APIProxy struct {
	srv *http.Server
	ln  net.Listener

	mu       sync.Mutex
	requests []Request
	dropped  int
}

// NewAPIProxy starts a proxy that forwards to the API server of upstream
// with its credentials. Close it when done.
func NewAPIProxy(upstream *rest.Config) (*APIProxy, error) {
	target, _, err := rest.DefaultServerUrlFor(upstream)
	if err != nil {
		return nil, fmt.Errorf("API proxy: upstream server: %w", err)
	}
	transport, err := rest.TransportFor(upstream)
	if err != nil {
		return nil, fmt.Errorf("API proxy: upstream transport: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("API proxy: listen on loopback: %w", err)
	}
	p := &APIProxy{ln: ln}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = target.Host
		},
		Transport: transport,
		// Watches stream: every event must reach the client when it happens.
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				return // the client went away, as a finished watch does
			}
			http.Error(w, "API proxy: "+err.Error(), http.StatusBadGateway)
		},
	}
	p.srv = &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.record(r)
			proxy.ServeHTTP(w, r)
		}),
	}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

func (p *APIProxy) record(r *http.Request) {
	q := r.URL.Query()
	req := Request{
		Time:      time.Now(),
		Method:    r.Method,
		Path:      r.URL.Path,
		Watch:     q.Get("watch") == "true" || q.Get("watch") == "1" || strings.Contains(r.URL.Path, "/watch/"),
		DryRun:    q.Get("dryRun") != "",
		UserAgent: r.UserAgent(),
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.requests) >= maxRecorded {
		p.dropped++
		return
	}
	p.requests = append(p.requests, req)
}

// URL is the proxy's base URL, such as http://127.0.0.1:40123.
func (p *APIProxy) URL() string { return "http://" + p.ln.Addr().String() }

// Config is a REST config that reaches the API server through the proxy.
// It carries no credential: the proxy adds the upstream's.
func (p *APIProxy) Config() *rest.Config {
	return &rest.Config{Host: p.URL(), QPS: 100, Burst: 200}
}

// Kubeconfig is a kubeconfig file that reaches the API server through the
// proxy, for processes such as kubectl. It holds no credential.
func (p *APIProxy) Kubeconfig() ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["proxy"] = &clientcmdapi.Cluster{Server: p.URL()}
	cfg.AuthInfos["proxy"] = &clientcmdapi.AuthInfo{}
	cfg.Contexts["proxy"] = &clientcmdapi.Context{Cluster: "proxy", AuthInfo: "proxy"}
	cfg.CurrentContext = "proxy"
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, fmt.Errorf("API proxy: write kubeconfig: %w", err)
	}
	return data, nil
}

// Reset forgets the requests recorded so far, to start counting one run.
func (p *APIProxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests = nil
	p.dropped = 0
}

// Requests returns the requests recorded since the last Reset, in arrival
// order, and how many more arrived beyond the recording bound.
func (p *APIProxy) Requests() (recorded []Request, dropped int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.requests), p.dropped
}

// Close stops the proxy and ends the requests in flight, open watches
// included.
func (p *APIProxy) Close() error {
	if err := p.srv.Close(); err != nil {
		return fmt.Errorf("API proxy: close: %w", err)
	}
	return nil
}

// Kind counts the requests of one kind.
type Kind struct {
	// Name is "verb resource", such as "create selfsubjectaccessreviews",
	// "watch pods" or "patch deployments (dry run)"; discovery requests are
	// "get discovery".
	Name  string
	Count int
}

// Kinds groups requests by Kubernetes verb and resource, most frequent
// first (then by name), to tell where one client's requests go.
func Kinds(reqs []Request) []Kind {
	counts := map[string]int{}
	for _, r := range reqs {
		counts[KindOf(r)]++
	}
	out := make([]Kind, 0, len(counts))
	for name, n := range counts {
		out = append(out, Kind{Name: name, Count: n})
	}
	slices.SortFunc(out, func(a, b Kind) int {
		return cmp.Or(b.Count-a.Count, strings.Compare(a.Name, b.Name))
	})
	return out
}

// KindOf names a request as "verb resource" the way the API server's audit
// log would: GET of a collection is list, GET of one object get, a watch
// watch; discovery (/api, /apis, /version, /openapi) is "get discovery".
func KindOf(r Request) string {
	parts := strings.Split(strings.Trim(r.Path, "/"), "/")
	var rest []string
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		rest = parts[2:] // api/v1/...
	case len(parts) >= 3 && parts[0] == "apis":
		rest = parts[3:] // apis/group/version/...
	default:
		return "get discovery"
	}
	if len(rest) > 0 && rest[0] == "watch" {
		rest = rest[1:]
	}
	if len(rest) >= 2 && rest[0] == "namespaces" && len(rest) != 2 {
		rest = rest[2:] // namespaced resource; "namespaces/NAME" alone is a namespace
	}
	if len(rest) == 0 {
		return "get discovery"
	}
	resource, named := rest[0], len(rest) >= 2
	if len(rest) >= 3 {
		resource += "/" + rest[2] // a subresource: services/proxy, deployments/scale
	}
	verb := strings.ToLower(r.Method)
	switch r.Method {
	case http.MethodGet:
		switch {
		case r.Watch:
			verb = "watch"
		case named:
			verb = "get"
		default:
			verb = "list"
		}
	case http.MethodPost:
		verb = "create"
	case http.MethodPut:
		verb = "update"
	}
	name := verb + " " + resource
	if r.DryRun {
		name += " (dry run)"
	}
	return name
}

// ExtraKinds lists the kinds of request ours makes more of than theirs,
// with the difference, most first: where one client's extra load goes.
func ExtraKinds(ours, theirs []Request) []Kind {
	have := map[string]int{}
	for _, k := range Kinds(theirs) {
		have[k.Name] = k.Count
	}
	var out []Kind
	for _, k := range Kinds(ours) {
		if d := k.Count - have[k.Name]; d > 0 {
			out = append(out, Kind{Name: k.Name, Count: d})
		}
	}
	slices.SortStableFunc(out, func(a, b Kind) int { return b.Count - a.Count })
	return out
}
