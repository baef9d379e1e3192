package testcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
)

// Router is the environment's public entry point: like kube-proxy behind an
// ingress, it sends each request for /<namespace>/<service>/<path> to one
// ready endpoint of that Service, chosen per request from the live
// EndpointSlices, so a selector switch moves traffic within one watch event.
type Router struct {
	srv     *http.Server
	ln      net.Listener
	slices  endpointSource
	addrs   *addressBook
	opts    RouterOptions
	next    atomic.Uint64
	proxy   *httputil.ReverseProxy
	stopped sync.Once
}

type routeKey struct{}

// RouterOptions choose how kind a router is to the deploys under test.
type RouterOptions struct {
	// NoRetry sends each request to one endpoint only, as kube-proxy's
	// iptables rules and most load balancers do: a refused connection is a
	// failed request, not a try on the next endpoint.
	NoRetry bool
	// SyncDelay applies every EndpointSlice change this long after the API
	// server announced it, as kube-proxy does with its default minSyncPeriod
	// of 1 s; zero applies changes as their watch events arrive.
	SyncDelay time.Duration
}

// endpointSource lists a namespace's EndpointSlices as the router sees them.
type endpointSource interface {
	list(namespace string, selector labels.Selector) ([]*discoveryv1.EndpointSlice, error)
}

// liveSlices are the informer's current EndpointSlices.
type liveSlices struct {
	lister discoverylisters.EndpointSliceLister
}

func (l liveSlices) list(namespace string, selector labels.Selector) ([]*discoveryv1.EndpointSlice, error) {
	return l.lister.EndpointSlices(namespace).List(selector)
}

// lateSlices apply each EndpointSlice change delay after its watch event,
// in the order the events came.
type lateSlices struct {
	delay   time.Duration
	changes chan sliceChange
	mu      sync.Mutex
	byKey   map[string]*discoveryv1.EndpointSlice
}

// sliceChange is one watch event: slice is nil for a deletion.
type sliceChange struct {
	at    time.Time
	key   string
	slice *discoveryv1.EndpointSlice
}

func newLateSlices(ctx context.Context, delay time.Duration) *lateSlices {
	l := &lateSlices{delay: delay, changes: make(chan sliceChange, 4096), byKey: map[string]*discoveryv1.EndpointSlice{}}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case c := <-l.changes:
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Until(c.at.Add(l.delay))):
				}
				l.mu.Lock()
				if c.slice == nil {
					delete(l.byKey, c.key)
				} else {
					l.byKey[c.key] = c.slice
				}
				l.mu.Unlock()
			}
		}
	}()
	return l
}

func (l *lateSlices) observe(obj any, deleted bool) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	c := sliceChange{at: time.Now(), key: s.Namespace + "/" + s.Name, slice: s}
	if deleted {
		c.slice = nil
	}
	l.changes <- c
}

func (l *lateSlices) list(namespace string, selector labels.Selector) ([]*discoveryv1.EndpointSlice, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*discoveryv1.EndpointSlice
	for _, s := range l.byKey {
		if s.Namespace == namespace && selector.Matches(labels.Set(s.Labels)) {
			out = append(out, s)
		}
	}
	return out, nil
}

// route is what one request may be sent to, in order of preference.
type route struct {
	candidates []string // loopback addresses of ready endpoints
	path       string
}

func startRouter(ctx context.Context, addr string, client kubernetes.Interface, addrs *addressBook, opts RouterOptions) (*Router, error) {
	factory := informers.NewSharedInformerFactory(client, 0)
	informer := factory.Discovery().V1().EndpointSlices()
	var source endpointSource = liveSlices{informer.Lister()}
	if opts.SyncDelay > 0 {
		late := newLateSlices(ctx, opts.SyncDelay)
		if _, err := informer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { late.observe(obj, false) },
			UpdateFunc: func(_, obj any) { late.observe(obj, false) },
			DeleteFunc: func(obj any) { late.observe(obj, true) },
		}); err != nil {
			return nil, fmt.Errorf("router: watch endpoint slices: %w", err)
		}
		source = late
	}
	_ = informer.Informer() // register before Start
	factory.Start(ctx.Done())
	syncCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for typ, ok := range factory.WaitForCacheSync(syncCtx.Done()) {
		if !ok {
			return nil, fmt.Errorf("router: sync %v informer", typ)
		}
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("router: listen on %s: %w", addr, err)
	}
	r := &Router{ln: ln, slices: source, addrs: addrs, opts: opts}
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     5 * time.Second,
	}
	r.proxy = &httputil.ReverseProxy{
		Rewrite:   func(*httputil.ProxyRequest) {},
		Transport: failoverTransport{base: transport, noRetry: opts.NoRetry},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, err.Error(), http.StatusBadGateway)
		},
	}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// URL is the router's base URL, such as http://127.0.0.1:38123.
func (r *Router) URL() string { return "http://" + r.ln.Addr().String() }

// ServeHTTP routes one request.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	parts := strings.SplitN(strings.TrimPrefix(req.URL.Path, "/"), "/", 3)
	if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
		http.Error(w, "router: want /<namespace>/<service>/<path>", http.StatusNotFound)
		return
	}
	namespace, service := parts[0], parts[1]
	path := "/"
	if len(parts) == 3 {
		path += parts[2]
	}
	candidates := r.readyEndpoints(namespace, service)
	if len(candidates) == 0 {
		http.Error(w, fmt.Sprintf("router: no ready endpoints for service %s/%s", namespace, service), http.StatusServiceUnavailable)
		return
	}
	// Round robin: rotate the list so each request starts at the next endpoint.
	start := int(r.next.Add(1) % uint64(len(candidates)))
	candidates = append(candidates[start:], candidates[:start]...)
	ctx := context.WithValue(req.Context(), routeKey{}, route{candidates: candidates, path: path})
	r.proxy.ServeHTTP(w, req.WithContext(ctx))
}

// readyEndpoints lists the loopback addresses behind the Service's ready
// endpoints, as kube-proxy would program them.
func (r *Router) readyEndpoints(namespace, service string) []string {
	slices, err := r.slices.list(namespace, labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: service}))
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range slices {
		if len(s.Ports) == 0 || s.Ports[0].Port == nil {
			continue
		}
		port := int(*s.Ports[0].Port)
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			for _, a := range ep.Addresses {
				target, err := r.addrs.resolve(net.JoinHostPort(a, fmt.Sprint(port)))
				if err == nil {
					out = append(out, target)
				}
			}
		}
	}
	return out
}

func (r *Router) close() {
	r.stopped.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = r.srv.Shutdown(ctx)
	})
}

// failoverTransport sends a request to the first candidate that accepts the
// connection, as a client retries a refused connection on another endpoint;
// with noRetry, to the first candidate only.
type failoverTransport struct {
	base    *http.Transport
	noRetry bool
}

func (t failoverTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt, ok := req.Context().Value(routeKey{}).(route)
	if !ok {
		return nil, errors.New("router: request without a route")
	}
	var errs []error
	candidates := rt.candidates
	if t.noRetry {
		candidates = candidates[:1]
	}
	for _, target := range candidates {
		out := req.Clone(req.Context())
		out.URL = &url.URL{Scheme: "http", Host: target, Path: rt.path, RawQuery: req.URL.RawQuery}
		out.Host = target
		resp, err := t.base.RoundTrip(out)
		if err == nil {
			return resp, nil
		}
		errs = append(errs, err)
		var opErr *net.OpError
		if !errors.As(err, &opErr) || opErr.Op != "dial" {
			break // the request may have reached the app: do not send it twice
		}
	}
	return nil, fmt.Errorf("router: no endpoint answered: %w", errors.Join(errs...))
}
