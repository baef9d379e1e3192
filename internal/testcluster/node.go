package testcluster

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/ebeautything/greenlight/internal/testcluster/sampleapp"
)

// NodeName is the one node of the test cluster.
const NodeName = "greenlight-node"

// Timing of the node's simulated container runtime, compressed from a real
// kubelet's so tests see every state within seconds.
const (
	tickInterval      = 100 * time.Millisecond
	imagePullBackOff  = time.Second // ErrImagePull turns into ImagePullBackOff after this
	crashInterval     = time.Second // a crashing container restarts this often
	terminationDrain  = time.Second // a deleted pod keeps serving this long at most
	statusPushRetries = 5
)

// node plays the kubelet and the scheduler for every pod: it binds pods to
// itself, runs each container as an in-process sample app on a loopback
// port, probes readiness, reports container states and finishes deletions.
type node struct {
	client kubernetes.Interface
	addrs  *addressBook
	log    io.Writer
	ctx    context.Context
	wg     sync.WaitGroup

	mu         sync.Mutex
	runners    map[types.UID]*podRunner
	scheduling map[types.UID]bool

	// Public apps (podinfo, go-httpbin) run as processes in per-pod
	// network namespaces, built on first use.
	sandboxes *sandboxes
	appsOnce  sync.Once
	apps      Apps
	appsErr   error

	kubelet *kubeletServer // serves pods/log
}

func startNode(ctx context.Context, client kubernetes.Interface, addrs *addressBook, log io.Writer) (*node, error) {
	n := &node{client: client, addrs: addrs, log: log, ctx: ctx, runners: map[types.UID]*podRunner{}, scheduling: map[types.UID]bool{}, sandboxes: newSandboxes()}
	var err error
	if n.kubelet, err = startKubeletServer(n); err != nil {
		return nil, err
	}
	addrs.serveKubelet(kubeletPort, n.kubelet.addr)
	if err := n.register(ctx); err != nil {
		n.kubelet.close()
		return nil, err
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	pods := factory.Core().V1().Pods().Informer()
	_, err = pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { n.observe(obj.(*corev1.Pod)) },
		UpdateFunc: func(_, obj any) { n.observe(obj.(*corev1.Pod)) },
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok {
				n.gone(pod)
			}
		},
	})
	if err != nil {
		n.kubelet.close()
		return nil, fmt.Errorf("node: watch pods: %w", err)
	}
	factory.Start(ctx.Done())
	return n, nil
}

func (n *node) register(ctx context.Context) error {
	obj := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: NodeName, Labels: map[string]string{
		"kubernetes.io/hostname": NodeName, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
	}}}
	created, err := n.client.CoreV1().Nodes().Create(ctx, obj, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("node: register %s: %w", NodeName, err)
	}
	// The API server taints a new node not-ready until its status says otherwise.
	created.Spec.Taints = nil
	if created, err = n.client.CoreV1().Nodes().Update(ctx, created, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("node: clear taints of %s: %w", NodeName, err)
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("16"),
		corev1.ResourceMemory: resource.MustParse("64Gi"),
		corev1.ResourcePods:   resource.MustParse("250"),
	}
	now := metav1.Now()
	created.Status = corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity,
		Phase:       corev1.NodeRunning,
		Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			Message: "kubelet is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now,
		}},
		Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: nodeAddress.String()}, {Type: corev1.NodeHostName, Address: NodeName}},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: kubeletPort}},
		NodeInfo:        corev1.NodeSystemInfo{KubeletVersion: "v1.37.2", OperatingSystem: "linux", Architecture: "amd64", ContainerRuntimeVersion: "greenlight-sampleapp://1"},
	}
	if _, err := n.client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("node: report %s ready: %w", NodeName, err)
	}
	return nil
}

// observe reacts to a pod as the scheduler and the kubelet would.
func (n *node) observe(pod *corev1.Pod) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ctx.Err() != nil {
		return
	}
	switch {
	case pod.Spec.NodeName == "" && pod.DeletionTimestamp == nil:
		if !n.scheduling[pod.UID] {
			n.scheduling[pod.UID] = true
			n.goWork(func() { n.schedule(pod.DeepCopy()) })
		}
	case pod.Spec.NodeName == NodeName:
		delete(n.scheduling, pod.UID)
		if r, ok := n.runners[pod.UID]; ok {
			if pod.DeletionTimestamp != nil {
				r.requestDelete(pod.DeletionGracePeriodSeconds)
			}
			return
		}
		if pod.DeletionTimestamp != nil {
			// Nothing runs for it (say, after a restart): finish the deletion.
			n.goWork(func() { n.finishDeletion(pod.Namespace, pod.Name, pod.UID) })
			return
		}
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			return
		}
		r := newPodRunner(n, pod.DeepCopy())
		n.runners[pod.UID] = r
		n.goWork(r.run)
	}
}

func (n *node) goWork(f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

// gone is called once the pod object no longer exists.
func (n *node) gone(pod *corev1.Pod) {
	n.mu.Lock()
	r := n.runners[pod.UID]
	delete(n.runners, pod.UID)
	delete(n.scheduling, pod.UID)
	n.mu.Unlock()
	if r != nil {
		r.stop()
	}
}

// wait blocks until every pod worker has stopped (after the context ended)
// and removes the pods' network namespaces.
func (n *node) wait() {
	n.wg.Wait()
	n.kubelet.close()
	n.sandboxes.close()
}

// runnerByName is the pod of that name the node runs, as the kubelet's pod
// manager finds it; a newer pod of the same name wins.
func (n *node) runnerByName(namespace, name string) *podRunner {
	n.mu.Lock()
	defer n.mu.Unlock()
	var found *podRunner
	for _, r := range n.runners {
		if r.pod.Namespace != namespace || r.pod.Name != name {
			continue
		}
		if found == nil || found.pod.CreationTimestamp.Before(&r.pod.CreationTimestamp) {
			found = r
		}
	}
	return found
}

// schedule binds a pod to the node, or reports it unschedulable as the
// scheduler would when its nodeSelector matches no node.
func (n *node) schedule(pod *corev1.Pod) {
	if reason := unschedulableReason(pod); reason != "" {
		cond := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: reason, LastTransitionTime: metav1.Now()}
		_ = n.updateStatus(pod.Namespace, pod.Name, pod.UID, func(s *corev1.PodStatus) bool {
			s.Phase = corev1.PodPending
			return setCondition(s, cond)
		})
		n.event(pod, corev1.EventTypeWarning, "FailedScheduling", reason, "default-scheduler")
		return
	}
	binding := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: NodeName},
	}
	if err := n.client.CoreV1().Pods(pod.Namespace).Bind(n.ctx, binding, metav1.CreateOptions{}); err != nil {
		if !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && n.ctx.Err() == nil {
			fmt.Fprintf(n.log, "testcluster: bind pod %s/%s: %v\n", pod.Namespace, pod.Name, err)
		}
		return
	}
	n.event(pod, corev1.EventTypeNormal, "Scheduled", fmt.Sprintf("Successfully assigned %s/%s to %s", pod.Namespace, pod.Name, NodeName), "default-scheduler")
}

func unschedulableReason(pod *corev1.Pod) string {
	nodeLabels := map[string]string{"kubernetes.io/hostname": NodeName, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}
	for k, v := range pod.Spec.NodeSelector {
		if nodeLabels[k] != v {
			return "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
		}
	}
	limits := map[corev1.ResourceName]resource.Quantity{corev1.ResourceCPU: resource.MustParse("16"), corev1.ResourceMemory: resource.MustParse("64Gi")}
	for _, c := range pod.Spec.Containers {
		for name, max := range limits {
			if q, ok := c.Resources.Requests[name]; ok && q.Cmp(max) > 0 {
				return fmt.Sprintf("0/1 nodes are available: 1 Insufficient %s. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.", name)
			}
		}
	}
	return ""
}

// finishDeletion removes a terminated pod for good, as the kubelet does
// once its containers have stopped.
func (n *node) finishDeletion(namespace, name string, uid types.UID) {
	zero := int64(0)
	err := n.client.CoreV1().Pods(namespace).Delete(context.Background(), name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &uid},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && n.ctx.Err() == nil {
		fmt.Fprintf(n.log, "testcluster: finish deletion of pod %s/%s: %v\n", namespace, name, err)
	}
}

// updateStatus applies change to the pod's current status and writes it,
// retrying on conflicts; change reports whether anything changed.
func (n *node) updateStatus(namespace, name string, uid types.UID, change func(*corev1.PodStatus) bool) error {
	var err error
	for range statusPushRetries {
		var pod *corev1.Pod
		pod, err = n.client.CoreV1().Pods(namespace).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil || pod.UID != uid {
			return err
		}
		if !change(&pod.Status) {
			return nil
		}
		_, err = n.client.CoreV1().Pods(namespace).UpdateStatus(context.Background(), pod, metav1.UpdateOptions{})
		if err == nil || !apierrors.IsConflict(err) {
			return err
		}
	}
	return err
}

// event records what happened to a pod, as kubelet and scheduler do, so
// `kubectl describe` and greenlight's failure reports show it.
func (n *node) event(pod *corev1.Pod, typ, reason, message, component string) {
	now := metav1.Now()
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name + "." + hex.EncodeToString(suffix), Namespace: pod.Namespace},
		InvolvedObject: corev1.ObjectReference{
			Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID,
		},
		Reason: reason, Message: message, Type: typ, Count: 1,
		FirstTimestamp: now, LastTimestamp: now,
		Source:              corev1.EventSource{Component: component, Host: NodeName},
		ReportingController: component, ReportingInstance: NodeName,
	}
	if _, err := n.client.CoreV1().Events(pod.Namespace).Create(context.Background(), ev, metav1.CreateOptions{}); err != nil && n.ctx.Err() == nil && !apierrors.IsNotFound(err) && !apierrors.IsForbidden(err) {
		fmt.Fprintf(n.log, "testcluster: record event %s for pod %s/%s: %v\n", reason, pod.Namespace, pod.Name, err)
	}
}

func setCondition(s *corev1.PodStatus, c corev1.PodCondition) bool {
	for i, old := range s.Conditions {
		if old.Type != c.Type {
			continue
		}
		if old.Status == c.Status && old.Reason == c.Reason && old.Message == c.Message {
			return false
		}
		if old.Status == c.Status {
			c.LastTransitionTime = old.LastTransitionTime
		}
		s.Conditions[i] = c
		return true
	}
	s.Conditions = append(s.Conditions, c)
	return true
}

// containerMode is how the simulated runtime runs a container.
type containerMode int

const (
	modeRunning containerMode = iota
	modeImagePull
	modeCrashLoop
)

type container struct {
	spec    corev1.Container
	mode    containerMode
	message string // why it cannot run (image pull or crash message)

	srv     *http.Server
	addr    string
	started time.Time
	app     *appContainer // a public app's process, nil for the sample app

	ready                bool
	successes, failures  int32
	lastProbe            time.Time
	restarts             int32
	lastCrash, nextCrash time.Time
	lastID               string // the last terminated instance's container ID
}

// podRunner runs one pod's containers for its whole life.
type podRunner struct {
	n     *node
	pod   *corev1.Pod
	ip    netip.Addr
	start time.Time
	ctrs  []*container
	sb    *sandbox // the pod's network namespace when it runs public apps
	dir   string   // the pod's image roots and container logs
	logs  *podLogs // what the kubelet server reads

	deleteOnce sync.Once
	deleteCh   chan time.Duration
	stopOnce   sync.Once
	stopCh     chan struct{}
}

func newPodRunner(n *node, pod *corev1.Pod) *podRunner {
	return &podRunner{n: n, pod: pod, logs: newPodLogs(), deleteCh: make(chan time.Duration, 1), stopCh: make(chan struct{})}
}

func (r *podRunner) requestDelete(grace *int64) {
	r.deleteOnce.Do(func() {
		drain := terminationDrain
		if grace != nil && time.Duration(*grace)*time.Second < drain {
			drain = time.Duration(*grace) * time.Second
		}
		r.deleteCh <- drain
	})
}

func (r *podRunner) stop() { r.stopOnce.Do(func() { close(r.stopCh) }) }

func (r *podRunner) run() {
	if r.runsPublicApp() {
		if !r.setUpNetwork(r.createSandbox) {
			return
		}
		defer r.removeSandbox()
	} else {
		allocate := func() (err error) { r.ip, err = r.n.addrs.allocate(); return err }
		if !r.setUpNetwork(allocate) {
			return
		}
		defer r.n.addrs.release(r.ip)
	}
	r.start = time.Now()
	defer r.shutdownContainers()

	for i, spec := range r.pod.Spec.Containers {
		c := r.startContainer(spec, i == 0)
		r.ctrs = append(r.ctrs, c)
	}
	r.push()

	ticker := time.NewTicker(tickInterval)
	defer ticker.Stop()
	for {
		select {
		case <-r.n.ctx.Done():
			return
		case <-r.stopCh:
			return
		case drain := <-r.deleteCh:
			r.terminate(drain)
			return
		case now := <-ticker.C:
			if r.tick(now) {
				r.push()
			}
		}
	}
}

// setUpNetwork gives the pod its address with setup. While the range is
// used up the pod stays Pending and setup is retried, as a kubelet retries a
// sandbox whose IPAM has no free address; any other error, the pod's
// deletion or the node's stop ends the pod's run (false).
func (r *podRunner) setUpNetwork(setup func() error) bool {
	ticker := time.NewTicker(tickInterval)
	defer ticker.Stop()
	reported := false
	for {
		err := setup()
		if err == nil {
			return true
		}
		if !reported {
			reported = true
			fmt.Fprintf(r.n.log, "testcluster: pod %s/%s: %v\n", r.pod.Namespace, r.pod.Name, err)
			r.n.event(r.pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: "+err.Error(), "kubelet")
		}
		if !errors.Is(err, errNoFreeAddress) {
			return false
		}
		select {
		case <-r.n.ctx.Done():
			return false
		case <-r.stopCh:
			return false
		case <-r.deleteCh:
			r.n.finishDeletion(r.pod.Namespace, r.pod.Name, r.pod.UID)
			return false
		case <-ticker.C:
		}
	}
}

// containerID names one instance (attempt) of a container, as a runtime
// gives every start a new container ID.
func (r *podRunner) containerID(c *container, attempt int32) string {
	return fmt.Sprintf("sampleapp://%s-%s-%d", r.pod.UID, c.spec.Name, attempt)
}

// sampleAppCrashed records the log of the sample app instance that just
// crashed (the one before c.restarts): what its process printed before it
// exited. It becomes the container's last terminated instance.
func (r *podRunner) sampleAppCrashed(c *container) {
	out := newMemLog()
	log.New(out, "", log.LstdFlags).Print(c.message)
	r.terminated(c, r.containerID(c, c.restarts-1), out)
}

// terminated makes id, whose log is src, the container's last terminated
// instance; the runtime keeps no older one.
func (r *podRunner) terminated(c *container, id string, src logSource) {
	if c.lastID != "" && c.lastID != id {
		r.logs.forget(c.lastID)
	}
	c.lastID = id
	r.logs.keep(id, src)
}

func (r *podRunner) startContainer(spec corev1.Container, first bool) *container {
	c := &container{spec: spec, started: time.Now()}
	tag := imageTag(spec.Image)
	if strings.HasPrefix(tag, "missing") {
		c.mode = modeImagePull
		c.message = fmt.Sprintf("rpc error: code = NotFound desc = failed to pull and unpack image %q: not found", spec.Image)
		r.n.event(r.pod, corev1.EventTypeNormal, "Pulling", fmt.Sprintf("Pulling image %q", spec.Image), "kubelet")
		r.n.event(r.pod, corev1.EventTypeWarning, "Failed", fmt.Sprintf("Failed to pull image %q: %s", spec.Image, c.message), "kubelet")
		r.n.event(r.pod, corev1.EventTypeWarning, "Failed", "Error: ErrImagePull", "kubelet")
		return c
	}
	if img, ok := publicImageOf(spec.Image); ok {
		r.startPublicApp(c, img, first)
		return c
	}
	cfg, err := sampleapp.ConfigFromEnv(tag, r.env(spec))
	switch {
	case err != nil:
		c.mode, c.message = modeCrashLoop, "sampleapp: "+err.Error()
	case cfg.Crash:
		c.mode, c.message = modeCrashLoop, "sampleapp: crashing on purpose ("+sampleapp.EnvCrash+"=true)"
	}
	if c.mode == modeCrashLoop {
		c.restarts, c.lastCrash, c.nextCrash = 1, time.Now(), time.Now().Add(crashInterval)
		r.sampleAppCrashed(c)
		r.n.event(r.pod, corev1.EventTypeWarning, "BackOff", fmt.Sprintf("Back-off restarting failed container %s in pod %s_%s(%s)", spec.Name, r.pod.Name, r.pod.Namespace, r.pod.UID), "kubelet")
		return c
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.mode, c.message = modeCrashLoop, "listen: "+err.Error()
		c.restarts, c.lastCrash, c.nextCrash = 1, time.Now(), time.Now().Add(crashInterval)
		r.sampleAppCrashed(c)
		return c
	}
	c.addr = ln.Addr().String()
	// The app prints to its container's log, as its process's stdout.
	out := newMemLog()
	r.logs.keep(r.containerID(c, 0), out)
	cfg.Log, cfg.Addr = out, ":"
	if len(spec.Ports) > 0 {
		cfg.Addr += strconv.Itoa(int(spec.Ports[0].ContainerPort))
	} else {
		cfg.Addr += strings.TrimPrefix(c.addr, "127.0.0.1:")
	}
	c.srv = &http.Server{Handler: sampleapp.New(cfg), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = c.srv.Serve(ln) }()
	for _, p := range spec.Ports {
		r.n.addrs.route(r.ip, int(p.ContainerPort), c.addr)
	}
	if first {
		r.n.addrs.route(r.ip, 0, c.addr)
	}
	r.n.event(r.pod, corev1.EventTypeNormal, "Pulled", fmt.Sprintf("Container image %q already present on machine", spec.Image), "kubelet")
	r.n.event(r.pod, corev1.EventTypeNormal, "Started", "Started container "+spec.Name, "kubelet")
	if spec.ReadinessProbe == nil {
		c.ready = true
	}
	return c
}

// env resolves a container's environment: literal values, ConfigMap and
// Secret keys, and whole ConfigMaps and Secrets, as the kubelet does at
// container start (later sources win over earlier ones, env over envFrom).
func (r *podRunner) env(spec corev1.Container) map[string]string {
	env := map[string]string{}
	ctx, cancel := context.WithTimeout(r.n.ctx, 5*time.Second)
	defer cancel()
	for _, from := range spec.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm, err := r.n.client.CoreV1().ConfigMaps(r.pod.Namespace).Get(ctx, from.ConfigMapRef.Name, metav1.GetOptions{})
			if err != nil {
				continue
			}
			for k, v := range cm.Data {
				env[from.Prefix+k] = v
			}
		case from.SecretRef != nil:
			s, err := r.n.client.CoreV1().Secrets(r.pod.Namespace).Get(ctx, from.SecretRef.Name, metav1.GetOptions{})
			if err != nil {
				continue
			}
			for k, v := range s.Data {
				env[from.Prefix+k] = string(v)
			}
		}
	}
	for _, e := range spec.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			if cm, err := r.n.client.CoreV1().ConfigMaps(r.pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{}); err == nil {
				env[e.Name] = cm.Data[ref.Key]
			}
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			if s, err := r.n.client.CoreV1().Secrets(r.pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{}); err == nil {
				env[e.Name] = string(s.Data[ref.Key])
			}
		}
	}
	return env
}

// tick advances probes and simulated runtime states; it reports whether the
// pod's status changed.
func (r *podRunner) tick(now time.Time) bool {
	changed := false
	for _, c := range r.ctrs {
		switch c.mode {
		case modeImagePull:
			if now.Sub(c.started) >= imagePullBackOff && c.restarts == 0 {
				c.restarts = -1 // marks "in back-off" without a restart count
				r.n.event(r.pod, corev1.EventTypeNormal, "BackOff", fmt.Sprintf("Back-off pulling image %q", c.spec.Image), "kubelet")
				r.n.event(r.pod, corev1.EventTypeWarning, "Failed", "Error: ImagePullBackOff", "kubelet")
				changed = true
			}
		case modeCrashLoop:
			if c.app != nil {
				if now.After(c.nextCrash) && r.restartPublicApp(c, now) {
					changed = true
				}
				continue
			}
			if now.After(c.nextCrash) {
				c.restarts++
				c.lastCrash, c.nextCrash = now, now.Add(crashInterval)
				r.sampleAppCrashed(c)
				changed = true
			}
		case modeRunning:
			if c.app != nil && r.publicAppExited(c, now) {
				changed = true
				continue
			}
			if c.probe(now) {
				changed = true
			}
		}
	}
	return changed
}

// probe runs the container's readiness probe when it is due and applies
// its success and failure thresholds; it reports a change of readiness.
func (c *container) probe(now time.Time) bool {
	p := c.spec.ReadinessProbe
	if p == nil || (p.HTTPGet == nil && (p.Exec == nil || c.app == nil)) {
		return false
	}
	period := time.Duration(max(p.PeriodSeconds, 1)) * time.Second
	if now.Sub(c.started) < time.Duration(p.InitialDelaySeconds)*time.Second || now.Sub(c.lastProbe) < period {
		return false
	}
	c.lastProbe = now
	timeout := time.Duration(max(p.TimeoutSeconds, 1)) * time.Second
	client := http.Client{Timeout: timeout}
	ok := false
	if p.Exec != nil {
		ok = c.app.execProbe(p.Exec.Command, timeout)
	} else if resp, err := client.Get(c.probeURL(p.HTTPGet)); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		ok = resp.StatusCode >= 200 && resp.StatusCode < 400
	}
	was := c.ready
	if ok {
		c.successes, c.failures = c.successes+1, 0
		if c.successes >= max(p.SuccessThreshold, 1) {
			c.ready = true
		}
	} else {
		c.successes, c.failures = 0, c.failures+1
		if c.failures >= max(p.FailureThreshold, 1) {
			c.ready = false
		}
	}
	return was != c.ready
}

// probeURL is where an HTTP probe goes: the sample app's loopback address,
// or the public app's pod address at the probe's port.
func (c *container) probeURL(g *corev1.HTTPGetAction) string {
	path := g.Path
	if path == "" {
		path = "/"
	}
	if c.app != nil {
		return "http://" + c.app.addr(g.Port, c.spec) + path
	}
	return "http://" + c.addr + path
}

// push writes the pod's status from the runtime's state.
func (r *podRunner) push() {
	status := r.status()
	r.logs.report(status)
	err := r.n.updateStatus(r.pod.Namespace, r.pod.Name, r.pod.UID, func(s *corev1.PodStatus) bool {
		for _, c := range status.Conditions {
			setCondition(s, c)
		}
		s.Phase, s.HostIP, s.HostIPs, s.PodIP, s.PodIPs = status.Phase, status.HostIP, status.HostIPs, status.PodIP, status.PodIPs
		s.StartTime, s.ContainerStatuses = status.StartTime, status.ContainerStatuses
		if s.QOSClass == "" {
			// The API server sets it at creation (Burstable for podinfo's
			// requests), and it is immutable after.
			s.QOSClass = corev1.PodQOSBestEffort
		}
		return true
	})
	if err != nil && !apierrors.IsNotFound(err) && r.n.ctx.Err() == nil {
		fmt.Fprintf(r.n.log, "testcluster: report status of pod %s/%s: %v\n", r.pod.Namespace, r.pod.Name, err)
	}
}

func (r *podRunner) status() corev1.PodStatus {
	start := metav1.NewTime(r.start)
	s := corev1.PodStatus{
		Phase: corev1.PodRunning, HostIP: nodeAddress.String(), HostIPs: []corev1.HostIP{{IP: nodeAddress.String()}},
		PodIP: r.ip.String(), PodIPs: []corev1.PodIP{{IP: r.ip.String()}}, StartTime: &start,
	}
	allReady := true
	for _, c := range r.ctrs {
		cs := corev1.ContainerStatus{
			Name: c.spec.Name, Image: c.spec.Image, RestartCount: max(c.restarts, 0),
			ContainerID: r.containerID(c, max(c.restarts, 0)),
		}
		lastTerminated := &corev1.ContainerStateTerminated{
			ExitCode: 1, Reason: "Error", Message: c.message, ContainerID: c.lastID,
			StartedAt: metav1.NewTime(c.lastCrash.Add(-50 * time.Millisecond)), FinishedAt: metav1.NewTime(c.lastCrash),
		}
		switch c.mode {
		case modeImagePull:
			reason := "ErrImagePull"
			if c.restarts < 0 {
				reason = "ImagePullBackOff"
			}
			msg := c.message
			if reason == "ImagePullBackOff" {
				msg = fmt.Sprintf("Back-off pulling image %q: ErrImagePull: %s", c.spec.Image, c.message)
			}
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: msg}
			cs.ContainerID = ""
			s.Phase = corev1.PodPending
		case modeCrashLoop:
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
				Message: fmt.Sprintf("back-off 10s restarting failed container=%s pod=%s_%s(%s)", c.spec.Name, r.pod.Name, r.pod.Namespace, r.pod.UID)}
			cs.ContainerID = c.lastID
			cs.LastTerminationState.Terminated = lastTerminated
			cs.ImageID = imageID(c.spec.Image)
		default:
			started := true
			cs.Started = &started
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(c.started)}
			cs.Ready = c.ready
			cs.ImageID = imageID(c.spec.Image)
			if c.lastID != "" {
				// A restarted container keeps its last exit, as `kubectl logs --previous` reads it.
				cs.LastTerminationState.Terminated = lastTerminated
			}
		}
		if !cs.Ready {
			allReady = false
		}
		s.ContainerStatuses = append(s.ContainerStatuses, cs)
	}
	ready := corev1.ConditionFalse
	reason := "ContainersNotReady"
	if allReady {
		ready, reason = corev1.ConditionTrue, ""
	}
	now := metav1.Now()
	s.Conditions = []corev1.PodCondition{
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: start},
		{Type: corev1.ContainersReady, Status: ready, Reason: reason, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: ready, Reason: reason, LastTransitionTime: now},
	}
	return s
}

// terminate stops the pod as the kubelet does on deletion: it stops being
// ready at once, keeps serving for a short drain while routes move away,
// stops its servers and removes the pod object.
func (r *podRunner) terminate(drain time.Duration) {
	for _, c := range r.ctrs {
		c.ready = false
	}
	r.push()
	select {
	case <-time.After(drain):
	case <-r.n.ctx.Done():
	case <-r.stopCh:
	}
	r.shutdownContainers()
	r.n.event(r.pod, corev1.EventTypeNormal, "Killing", "Stopping container "+r.pod.Spec.Containers[0].Name, "kubelet")
	r.n.finishDeletion(r.pod.Namespace, r.pod.Name, r.pod.UID)
}

func (r *podRunner) shutdownContainers() {
	r.n.addrs.unroute(r.ip)
	for _, c := range r.ctrs {
		if c.app != nil {
			c.app.stop(r.grace())
		}
		if c.srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = c.srv.Shutdown(ctx)
			cancel()
			c.srv = nil
		}
	}
}

// imageTag is the tag of an image reference ("app:v2" → "v2"), "latest"
// when there is none; a registry port is not a tag.
func imageTag(image string) string {
	ref := image
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	slash := strings.LastIndex(ref, "/")
	if colon := strings.LastIndex(ref, ":"); colon > slash {
		return ref[colon+1:]
	}
	return "latest"
}

func imageID(image string) string {
	sum := sha256.Sum256([]byte(image))
	return "sampleapp@sha256:" + hex.EncodeToString(sum[:])
}
