package testcluster

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
)

// startRealNodeCluster starts the control plane for a real node (its
// Services in the plan's range, the Node authorizer, no egress proxy: the
// API server reaches pods directly on the node's bridge), the node and a
// router that forwards to ClusterIPs.
func (c *Cluster) startRealNodeCluster(ctx context.Context, opts Options, bins NodeBinaries, apps Apps) error {
	if err := c.startControlPlane("", map[string]string{
		"service-cluster-ip-range": realNodeServices.String(),
		"advertise-address":        nodeIP(),
		"authorization-mode":       "Node,RBAC",
		// The node's hostname resolves nowhere: logs, exec and
		// port-forward reach the kubelet at its InternalIP, as on kubeadm.
		"kubelet-preferred-address-types": "InternalIP",
	}, opts.OIDC); err != nil {
		return err
	}
	// nodelifecycle removes the not-ready taint the kubelet registers with.
	if err := c.startControllerManager(append(append([]string{}, controllers...), "nodelifecycle")); err != nil {
		return err
	}
	started := time.Now()
	var err error
	if c.real, err = startRealNode(ctx, c, bins, apps); err != nil {
		return err
	}
	fmt.Fprintf(c.log, "testcluster: real node Ready in %s\n", time.Since(started).Round(time.Millisecond))
	c.router, err = startClusterIPRouter(ctx, opts.RouterAddr, c.client)
	return err
}

// RealNode describes the cluster's real node; ok is false on the stand-in.
func (c *Cluster) RealNode() (info RealNodeInfo, ok bool) {
	if c.real == nil {
		return RealNodeInfo{}, false
	}
	return c.real.Info(), true
}

// startClusterIPRouter serves the router's URL form /<namespace>/<service>/
// by forwarding each request once to the Service's ClusterIP, so kube-proxy
// picks the endpoint and nothing retries on its own.
func startClusterIPRouter(ctx context.Context, addr string, client kubernetes.Interface) (*Router, error) {
	factory := informers.NewSharedInformerFactory(client, 0)
	informer := factory.Core().V1().Services()
	lister := informer.Lister()
	_ = informer.Informer()
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
	h := &clusterIPHandler{services: lister}
	h.proxy = &httputil.ReverseProxy{
		Rewrite: func(*httputil.ProxyRequest) {},
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     5 * time.Second,
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, "router: "+err.Error(), http.StatusBadGateway)
		},
	}
	r := &Router{ln: ln, srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

type clusterIPHandler struct {
	services corelisters.ServiceLister
	proxy    *httputil.ReverseProxy
}

func (h *clusterIPHandler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	parts := strings.SplitN(strings.TrimPrefix(req.URL.Path, "/"), "/", 3)
	if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
		http.Error(w, "router: want /<namespace>/<service>/<path>", http.StatusNotFound)
		return
	}
	svc, err := h.services.Services(parts[0]).Get(parts[1])
	if err != nil || svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == "None" || len(svc.Spec.Ports) == 0 {
		http.Error(w, fmt.Sprintf("router: no ClusterIP service %s/%s", parts[0], parts[1]), http.StatusServiceUnavailable)
		return
	}
	path := "/"
	if len(parts) == 3 {
		path += parts[2]
	}
	target := net.JoinHostPort(svc.Spec.ClusterIP, strconv.Itoa(int(svc.Spec.Ports[0].Port)))
	out := req.Clone(req.Context())
	out.URL = &url.URL{Scheme: "http", Host: target, Path: path, RawQuery: req.URL.RawQuery}
	out.Host = target
	h.proxy.ServeHTTP(w, out)
}
