package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	streamhttp "k8s.io/streaming/pkg/httpstream"
)

// PortForward is a loopback port forwarded to a pod's port through the API
// server, as `kubectl port-forward` makes one.
type PortForward struct {
	// Local is the loopback address ("127.0.0.1:41234") that reaches the
	// pod's port.
	Local string
	stop  chan struct{}
	done  chan error
	once  sync.Once
}

// ForwardPort forwards a free loopback port to port of pod: WebSocket
// tunnelling first, SPDY when the API server cannot upgrade to it, as
// kubectl does. It needs create on pods/portforward. Close ends it.
func ForwardPort(ctx context.Context, cfg *rest.Config, client kubernetes.Interface, namespace, pod string, port int) (*PortForward, error) {
	url := client.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(pod).SubResource("portforward").URL()
	transport, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("port-forward to %s/%s: %w", namespace, pod, err)
	}
	dialer := spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: transport}, http.MethodPost, url)
	tunnel, err := portforward.NewSPDYOverWebsocketDialerForStreaming(url, cfg)
	if err != nil {
		return nil, fmt.Errorf("port-forward to %s/%s: %w", namespace, pod, err)
	}
	dialer = portforward.NewFallbackDialerForStreaming(tunnel, dialer, func(err error) bool {
		return streamhttp.IsUpgradeFailure(err) || streamhttp.IsHTTPSProxyError(err)
	})
	pf := &PortForward{stop: make(chan struct{}), done: make(chan error, 1)}
	ready := make(chan struct{})
	fw, err := portforward.NewOnAddressesForStreaming(dialer, []string{"127.0.0.1"}, []string{"0:" + strconv.Itoa(port)}, pf.stop, ready, io.Discard, io.Discard)
	if err != nil {
		return nil, fmt.Errorf("port-forward to %s/%s:%d: %w", namespace, pod, port, err)
	}
	go func() { pf.done <- fw.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-pf.done:
		if err == nil {
			err = errors.New("ended before it was ready")
		}
		return nil, fmt.Errorf("port-forward to %s/%s:%d: %w", namespace, pod, port, ClassifyAPIError(err))
	case <-ctx.Done():
		pf.Close()
		return nil, fmt.Errorf("port-forward to %s/%s:%d: %w", namespace, pod, port, ctx.Err())
	}
	ports, err := fw.GetPorts()
	if err != nil || len(ports) != 1 {
		pf.Close()
		return nil, fmt.Errorf("port-forward to %s/%s:%d: no local port: %v", namespace, pod, port, err)
	}
	pf.Local = "127.0.0.1:" + strconv.Itoa(int(ports[0].Local))
	return pf, nil
}

// Close stops forwarding and waits for it to end.
func (pf *PortForward) Close() {
	pf.once.Do(func() {
		close(pf.stop)
		<-pf.done
	})
}
