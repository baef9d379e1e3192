package testcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
)

// The kubelet's streaming defaults: a forward stays open while idle for
// hours, and a client has 30 seconds to open a connection's stream pair.
const (
	portForwardIdleTimeout    = 4 * time.Hour
	portForwardStreamCreation = 30 * time.Second
	portForwardDialTimeout    = 5 * time.Second
)

// portForward answers /portForward/{namespace}/{pod}[/{uid}], where the API
// server sends pods/portforward, as the kubelet's getPortForward and the
// container runtime's streaming server do together: SPDY, or WebSocket with
// the v4 channel protocols, served by the library both use.
func (k *kubeletServer) portForward(w http.ResponseWriter, req *http.Request) {
	ns, podName, uid := req.PathValue("namespace"), req.PathValue("pod"), types.UID(req.PathValue("uid"))
	opts, err := portforward.NewV4Options(req)
	if err != nil {
		writeKubeletError(w, http.StatusBadRequest, err)
		return
	}
	r := k.n.runnerByName(ns, podName)
	if r == nil {
		writeKubeletError(w, http.StatusNotFound, errors.New("pod does not exist"))
		return
	}
	if uid != "" && r.pod.UID != uid {
		writeKubeletError(w, http.StatusNotFound, errors.New("pod not found"))
		return
	}
	status := r.logs.reportedStatus()
	ip, err := netip.ParseAddr(status.PodIP)
	if status.Phase == corev1.PodSucceeded || status.Phase == corev1.PodFailed || err != nil {
		// The runtime lists only pods whose sandbox runs: one whose
		// containers wait for an image still has its network, and a
		// forward to it is refused per connection instead.
		writeKubeletError(w, http.StatusInternalServerError, fmt.Errorf("pod not found (%q)", podName+"_"+ns))
		return
	}
	f := &podForwarder{addrs: k.n.addrs, ip: ip, conns: k.conns}
	portforward.ServePortForward(w, req, f, podName, string(r.pod.UID), opts,
		portForwardIdleTimeout, portForwardStreamCreation, portforward.SupportedProtocols)
}

// podForwarder connects a forwarded stream to a port of one pod, as a
// container runtime connects to localhost:port in the pod's network
// namespace.
type podForwarder struct {
	addrs *addressBook
	ip    netip.Addr
	conns *connSet
}

// PortForward copies between stream and the pod's port until either side
// ends; the error, if any, is what the client is shown.
func (f *podForwarder) PortForward(ctx context.Context, _ string, _ string, port int32, stream io.ReadWriteCloser) error {
	target, err := f.addrs.forwardTarget(f.ip, int(port))
	if err == nil {
		var conn net.Conn
		d := net.Dialer{Timeout: portForwardDialTimeout}
		if conn, err = d.DialContext(ctx, "tcp", target); err == nil {
			return copyBothWays(conn, stream)
		}
	}
	return fmt.Errorf("failed to connect to localhost:%d inside the network of pod IP %v: %w", port, f.ip, err)
}

// copyBothWays ends when the app side ends, or when the client closes its
// data stream; the app then sees its write side closed, as with a real
// forward.
func copyBothWays(conn net.Conn, stream io.ReadWriteCloser) error {
	defer conn.Close()
	toApp := make(chan error, 1)
	go func() {
		_, err := io.Copy(conn, stream)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		toApp <- err
	}()
	_, err := io.Copy(stream, conn)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("copy from pod: %w", err)
	}
	// The app closed its side: the client's stream is done too.
	_ = stream.Close()
	select {
	case <-toApp:
	case <-time.After(time.Second):
	}
	return nil
}

// connSet holds the kubelet server's connections, upgraded ones too, so
// that closing the node ends forwards the HTTP server no longer tracks.
type connSet struct {
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

type trackedListener struct {
	net.Listener
	set *connSet
}

type trackedConn struct {
	net.Conn
	set  *connSet
	once sync.Once
}

func (l trackedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, set: l.set}
	l.set.mu.Lock()
	defer l.set.mu.Unlock()
	if l.set.closed {
		_ = c.Close()
		return tc, nil
	}
	l.set.conns[tc] = struct{}{}
	return tc, nil
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.set.mu.Lock()
		delete(c.set.conns, c)
		c.set.mu.Unlock()
	})
	return c.Conn.Close()
}

func (s *connSet) closeAll() {
	s.mu.Lock()
	s.closed = true
	conns := make([]net.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// portName is how errors name a pod's port.
func portName(ip netip.Addr, port int) string {
	return net.JoinHostPort(ip.String(), strconv.Itoa(port))
}
