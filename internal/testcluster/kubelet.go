package testcluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// kubeletPort is the port the node reports for its kubelet, as a real
// kubelet's default; the egress proxy maps it on the node's address to the
// loopback server.
const kubeletPort = 10250

// kubeletServer is the node's kubelet API as far as the API server uses it
// for a stand-in node: GET /containerLogs, which backs pods/log, and
// /portForward, which backs pods/portforward.
type kubeletServer struct {
	n     *node
	srv   *http.Server
	addr  string
	conns *connSet // every connection, upgraded ones too
}

// startKubeletServer serves the kubelet API over TLS on loopback with a
// certificate made now: the API server, given no kubelet certificate
// authority, does not verify it.
func startKubeletServer(n *node) (*kubeletServer, error) {
	cert, err := selfSignedCert(NodeName)
	if err != nil {
		return nil, fmt.Errorf("kubelet: make serving certificate: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("kubelet: listen: %w", err)
	}
	k := &kubeletServer{n: n, addr: ln.Addr().String(), conns: &connSet{conns: map[net.Conn]struct{}{}}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", k.containerLogs)
	for _, path := range []string{"/portForward/{namespace}/{pod}", "/portForward/{namespace}/{pod}/{uid}"} {
		mux.HandleFunc("GET "+path, k.portForward)
		mux.HandleFunc("POST "+path, k.portForward)
	}
	k.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
	go func() { _ = k.srv.ServeTLS(trackedListener{Listener: ln, set: k.conns}, "", "") }()
	return k, nil
}

func (k *kubeletServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = k.srv.Shutdown(ctx)
	k.conns.closeAll()
}

func selfSignedCert(host string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: host + "@" + strconv.FormatInt(now.Unix(), 10)},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(365 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{host}, IPAddresses: []net.IP{nodeAddress.AsSlice()},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// errInvalidLogRequest is an option a kubelet's validation refuses.
var errInvalidLogRequest = errors.New(`{"message": "Invalid request."}`)

// parseLogOptions reads the query of /containerLogs as the kubelet decodes
// a v1 PodLogOptions, with its legacy "tail" parameter.
func parseLogOptions(q url.Values) (opts logOptions, previous bool, stream string, err error) {
	if tail := q.Get("tail"); tail != "" {
		q.Set("tailLines", tail)
		if tail == "all" {
			q.Del("tailLines")
		}
	}
	decodeErr := errors.New(`{"message": "Unable to decode query."}`)
	integer := func(name string) (*int64, error) {
		v := q.Get(name)
		if v == "" {
			return nil, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, decodeErr
		}
		return &n, nil
	}
	flag := func(name string) (bool, error) {
		v := q.Get(name)
		if v == "" {
			return false, nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, decodeErr
		}
		return b, nil
	}
	var sinceSeconds *int64
	if opts.tailLines, err = integer("tailLines"); err != nil {
		return
	}
	if opts.limitBytes, err = integer("limitBytes"); err != nil {
		return
	}
	if sinceSeconds, err = integer("sinceSeconds"); err != nil {
		return
	}
	if opts.timestamps, err = flag("timestamps"); err != nil {
		return
	}
	if previous, err = flag("previous"); err != nil {
		return
	}
	// follow ends at the end of the log here: the stand-in's logs are read
	// once, as for a container that has exited.
	if _, err = flag("follow"); err != nil {
		return
	}
	if v := q.Get("sinceTime"); v != "" {
		if opts.since, err = time.Parse(time.RFC3339, v); err != nil {
			return opts, false, "", decodeErr
		}
	}
	stream = q.Get("stream")
	switch {
	case opts.tailLines != nil && *opts.tailLines < 0,
		opts.limitBytes != nil && *opts.limitBytes < 1,
		sinceSeconds != nil && *sinceSeconds < 1,
		sinceSeconds != nil && !opts.since.IsZero():
		return opts, false, "", errInvalidLogRequest
	}
	if sinceSeconds != nil {
		opts.since = time.Now().Add(-time.Duration(*sinceSeconds) * time.Second)
	}
	return opts, previous, stream, nil
}

// containerLogs answers GET /containerLogs/{namespace}/{pod}/{container}
// with the codes and messages of a kubelet's getContainerLogs.
func (k *kubeletServer) containerLogs(w http.ResponseWriter, req *http.Request) {
	ns, podName, name := req.PathValue("namespace"), req.PathValue("pod"), req.PathValue("container")
	opts, previous, stream, err := parseLogOptions(req.URL.Query())
	if errors.Is(err, errInvalidLogRequest) {
		writeKubeletError(w, http.StatusUnprocessableEntity, err)
		return
	}
	if err != nil {
		writeKubeletError(w, http.StatusBadRequest, err)
		return
	}
	r := k.n.runnerByName(ns, podName)
	if r == nil {
		writeKubeletError(w, http.StatusNotFound, fmt.Errorf("pod %q does not exist", podName))
		return
	}
	if !hasContainer(r.pod, name) {
		writeKubeletError(w, http.StatusNotFound, fmt.Errorf("container %q not found in pod %q", name, podName))
		return
	}
	if stream != "" && stream != corev1.LogStreamAll {
		// stdout and stderr share one log here, as in a runtime without split streams.
		writeKubeletError(w, http.StatusBadRequest, fmt.Errorf("unable to return the given log stream: %q. Please enable PodLogsQuerySplitStreams feature gate in kubelet", stream))
		return
	}
	status := r.logs.reportedStatus()
	id, err := containerLogID(podName, &status, name, previous)
	if err != nil {
		writeKubeletError(w, http.StatusBadRequest, err)
		return
	}
	src := r.logs.source(id)
	if src == nil {
		writeKubeletError(w, http.StatusBadRequest, fmt.Errorf("unable to retrieve container logs for %v", id))
		return
	}
	lines, err := src.lines()
	if err != nil {
		writeKubeletError(w, http.StatusBadRequest, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	_ = writeLog(w, lines, opts)
}

func hasContainer(pod *corev1.Pod, name string) bool {
	for _, list := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for _, c := range list {
			if c.Name == name {
				return true
			}
		}
	}
	return false
}

// writeKubeletError writes err's text as the body, as go-restful's
// WriteError does for the kubelet.
func writeKubeletError(w http.ResponseWriter, code int, err error) {
	w.WriteHeader(code)
	_, _ = w.Write([]byte(err.Error()))
}

// containerLogID picks the container instance whose log is asked for from
// the pod status the node last reported, with the kubelet's rules
// (validateContainerLogStatus) and messages.
func containerLogID(podName string, status *corev1.PodStatus, name string, previous bool) (string, error) {
	var cs *corev1.ContainerStatus
	for i := range status.ContainerStatuses {
		if status.ContainerStatuses[i].Name == name {
			cs = &status.ContainerStatuses[i]
		}
	}
	if cs == nil {
		return "", fmt.Errorf("container %q in pod %q is not available", name, podName)
	}
	last := cs.LastTerminationState.Terminated
	waiting, running, terminated := cs.State.Waiting, cs.State.Running, cs.State.Terminated
	switch {
	case previous:
		if last == nil || last.ContainerID == "" {
			return "", fmt.Errorf("previous terminated container %q in pod %q not found", name, podName)
		}
		return last.ContainerID, nil
	case running != nil:
		return cs.ContainerID, nil
	case terminated != nil:
		if terminated.ContainerID != "" {
			return terminated.ContainerID, nil
		}
		if last != nil && last.ContainerID != "" {
			return last.ContainerID, nil
		}
		return "", fmt.Errorf("container %q in pod %q is terminated", name, podName)
	case last != nil:
		if last.ContainerID == "" {
			return "", fmt.Errorf("container %q in pod %q is terminated", name, podName)
		}
		return last.ContainerID, nil
	case waiting != nil:
		switch waiting.Reason {
		case "ErrImagePull":
			return "", fmt.Errorf("container %q in pod %q is waiting to start: image can't be pulled", name, podName)
		case "ImagePullBackOff":
			return "", fmt.Errorf("container %q in pod %q is waiting to start: trying and failing to pull image", name, podName)
		default:
			return "", fmt.Errorf("container %q in pod %q is waiting to start: %v", name, podName, waiting.Reason)
		}
	}
	return "", fmt.Errorf("container %q in pod %q is waiting to start - no logs yet", name, podName)
}

// podLogs is what the kubelet server reads of a pod while its runner
// changes it: the status last reported and the logs of its container
// instances by container ID.
type podLogs struct {
	mu     sync.Mutex
	status corev1.PodStatus
	byID   map[string]logSource
}

func newPodLogs() *podLogs { return &podLogs{byID: map[string]logSource{}} }

func (p *podLogs) report(s corev1.PodStatus) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status = *s.DeepCopy()
}

func (p *podLogs) reportedStatus() corev1.PodStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return *p.status.DeepCopy()
}

// keep records where instance id's log is; forget drops an instance the
// runtime no longer keeps (older than the last terminated one).
func (p *podLogs) keep(id string, src logSource) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.byID[id] = src
}

func (p *podLogs) forget(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.byID, id)
}

func (p *podLogs) source(id string) logSource {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.byID[id]
}
