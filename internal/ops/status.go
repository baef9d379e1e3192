package ops

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ebeautything/greenlight/internal/health"
	"github.com/ebeautything/greenlight/internal/kube"
	"github.com/ebeautything/greenlight/internal/strategy"
)

// DefaultRecent is how many history entries status shows.
const DefaultRecent = 5

// Status is what serves an environment at one moment.
type Status struct {
	// Time is when the status was read; ages are counted from it.
	Time time.Time
	// Environment, Namespace, Deployment and Service name the target.
	Environment, Namespace, Deployment, Service string
	// Strategy is the environment's configured strategy.
	Strategy string
	// Active is the Deployment serving traffic.
	Active Workload
	// Idle is the other blue-green color, nil when there is none.
	Idle *Workload
	// Awaiting is the idle color's record when a deploy verified it and
	// stopped before traffic (promotion manual), nil otherwise.
	Awaiting *Awaiting
	// Endpoints are the Service's endpoints.
	Endpoints Endpoints
	// Lock is the deploy lock's holder, nil when the lock is free.
	Lock *LockInfo
	// Recent are the newest history entries, newest first.
	Recent []Entry
	// Health is the environment's health answer, nil when not probed.
	Health *HealthAnswer
	// Problems are the parts that could not be read; the rest is shown.
	Problems []string
}

// Awaiting is a verified color that waits for promote or reject.
type Awaiting struct {
	// Color and Deployment run it.
	Color, Deployment string
	// Image is the image verified; PreviousImage what served then.
	Image, PreviousImage string
	// VerifiedAt, Actor, RunURL and DeploymentID say which deploy
	// verified it, when.
	VerifiedAt                  time.Time
	Actor, RunURL, DeploymentID string
	// Edited is true when its pod template is no longer the one verified:
	// promote refuses it.
	Edited bool
}

// AwaitingOf reads the record of a color waiting for promotion from its
// Deployment; nil when it has none. Pure.
func AwaitingOf(d *appsv1.Deployment, color string) *Awaiting {
	p, ok := strategy.PendingOf(d)
	if !ok {
		return nil
	}
	return &Awaiting{
		Color: color, Deployment: d.Name, Image: p.Image, PreviousImage: p.PreviousImage,
		VerifiedAt: p.VerifiedAt, Actor: p.Actor, RunURL: p.RunURL, DeploymentID: p.DeploymentID,
		Edited: p.Template != strategy.TemplateFingerprint(d),
	}
}

// Endpoints are a Service's endpoints from its EndpointSlices.
type Endpoints struct {
	// Ready are the ready endpoints' pod names (addresses when no pod is
	// named), sorted.
	Ready []string
	// NotReady counts the endpoints not ready, such as pods starting or
	// terminating.
	NotReady int
}

// LockInfo is who holds the deploy lock.
type LockInfo struct {
	// Holder is the run holding it.
	Holder kube.Holder
	// Since is when it took the lock; zero when unknown.
	Since time.Time
}

// HealthAnswer is one probe of the environment's health endpoint.
type HealthAnswer struct {
	// Target is the URL or service proxy probed.
	Target string
	// Path is the endpoint's path.
	Path string
	// StatusCode is zero when no answer came.
	StatusCode int
	// OK is a 2xx answer.
	OK bool
	// Version is the served version the answer reported.
	Version string
	// Latency is the whole exchange.
	Latency time.Duration
	// Err is the transport error, redacted.
	Err string
}

// AnswerOf turns a probe result into a HealthAnswer. Pure.
func AnswerOf(target string, p health.ProbeResult) *HealthAnswer {
	return &HealthAnswer{Target: target, Path: p.Path, StatusCode: p.StatusCode, OK: p.OK, Version: p.Version, Latency: p.Latency, Err: p.Err}
}

// StatusOptions say what GatherStatus reads.
type StatusOptions struct {
	// Target names the workload.
	Target Target
	// Environment and Strategy are shown as configured.
	Environment, Strategy string
	// Recent is how many history entries to keep; default DefaultRecent.
	Recent int
	// Probe, when set, asks the environment's health endpoint once.
	Probe func(ctx context.Context) *HealthAnswer
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// GatherStatus reads what serves the environment: the active Deployment
// (and the idle color), the Service's endpoints, the deploy lock, the
// newest history entries and one health answer. Only a Deployment that
// cannot be read is an error; other parts that fail are listed in
// Status.Problems, because an operator in an incident wants what can be
// known.
func GatherStatus(ctx context.Context, client kubernetes.Interface, o StatusOptions) (Status, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Recent <= 0 {
		o.Recent = DefaultRecent
	}
	t := o.Target
	s := Status{Time: o.Now(), Environment: o.Environment, Namespace: t.Namespace, Deployment: t.Deployment, Service: t.service(), Strategy: o.Strategy}
	active, svc, err := ResolveActive(ctx, client, t)
	if err != nil {
		s.Problems = append(s.Problems, err.Error())
	}
	if svc == nil && err == nil {
		s.Problems = append(s.Problems, fmt.Sprintf("service %s/%s does not exist", t.Namespace, t.service()))
	}
	d, err := getDeployment(ctx, client, t.Namespace, active.Deployment)
	if err != nil {
		return s, err
	}
	s.Active = WorkloadOf(d, active.Color, t.Container)
	if idle := otherColor(active.Color); idle != "" {
		if d, err := getDeployment(ctx, client, t.Namespace, strategy.ColorDeployment(t.Deployment, idle)); err == nil {
			w := WorkloadOf(d, idle, t.Container)
			s.Idle = &w
			s.Awaiting = AwaitingOf(d, idle)
		}
	}
	if svc != nil {
		eps, err := readEndpoints(ctx, client, t.Namespace, svc.Name)
		if err != nil {
			s.Problems = append(s.Problems, err.Error())
		}
		s.Endpoints = eps
	}
	holder, since, err := kube.ReadLock(ctx, client, t.Namespace, kube.LockName(t.Deployment))
	switch {
	case err != nil:
		s.Problems = append(s.Problems, err.Error())
	case holder != nil:
		s.Lock = &LockInfo{Holder: *holder, Since: since}
	}
	records, err := kube.ReadHistory(ctx, client, t.Namespace, t.Deployment)
	if err != nil {
		s.Problems = append(s.Problems, err.Error())
	}
	s.Recent = Entries(records, o.Recent)
	if o.Probe != nil {
		s.Health = o.Probe(ctx)
	}
	return s, nil
}

// readEndpoints lists a Service's endpoints from its EndpointSlices.
func readEndpoints(ctx context.Context, client kubernetes.Interface, namespace, service string) (Endpoints, error) {
	var list *discoveryv1.EndpointSliceList
	err := kube.Retry(ctx, kube.RetryPolicy{}, func(ctx context.Context) (err error) {
		list, err = client.DiscoveryV1().EndpointSlices(namespace).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + service})
		return err
	})
	if err != nil {
		return Endpoints{}, fmt.Errorf("list endpoints of service %s/%s: %w", namespace, service, kube.ClassifyAPIError(err))
	}
	return EndpointsOf(list.Items), nil
}

// EndpointsOf sorts the endpoints of EndpointSlices into ready ones (by
// pod name) and a count of the others. An endpoint whose ready condition
// is unknown counts as ready, as the EndpointSlice API says. Pure.
func EndpointsOf(slices []discoveryv1.EndpointSlice) Endpoints {
	var e Endpoints
	seen := map[string]bool{}
	for _, slice := range slices {
		for _, ep := range slice.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				e.NotReady++
				continue
			}
			name := strings.Join(ep.Addresses, ",")
			if ep.TargetRef != nil && ep.TargetRef.Kind == "Pod" {
				name = ep.TargetRef.Name
			}
			if !seen[name] { // dual-stack Services list a pod once per family
				seen[name] = true
				e.Ready = append(e.Ready, name)
			}
		}
	}
	sort.Strings(e.Ready)
	return e
}
