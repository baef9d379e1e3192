package strategy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/ebeautything/greenlight/internal/kube"
)

// Colors of blue-green.
const (
	Blue  = "blue"
	Green = "green"
)

// Preview is where the idle color can be checked before it gets traffic:
// a Service selecting only its pods, reachable through the API server's
// service proxy.
type Preview struct {
	Namespace string
	Service   string
	Port      string
	Color     string
	// Deployment runs the idle color; PreviousImage is what serves now.
	Deployment    string
	PreviousImage string
	// Selector selects the idle color's pods and Replicas is how many it
	// runs: a check of the preview waits until its EndpointSlices list only
	// those pods, ready.
	Selector map[string]string
	Replicas int
}

// BlueGreen runs the new version beside the old one, checks it, switches
// the Service's selector to it in one write, and keeps the old color warm
// until Finish or Rollback.
type BlueGreen struct {
	Client  kubernetes.Interface
	Applier *kube.Applier
	Wait    kube.WaitOptions
	// Verify checks the idle color through its preview before the switch;
	// an error keeps traffic where it is and removes the idle color.
	Verify func(ctx context.Context, p Preview) error
	// EndpointTimeout bounds the confirmation that the Service's endpoints
	// list only the new color; default 60s.
	EndpointTimeout time.Duration
	OnStep          func(Step)

	// ScaleDownDelay keeps the previous color warm after Finish until a
	// deadline recorded on it (see window.go); 0 scales it down at once.
	ScaleDownDelay time.Duration

	// Manual stops Deploy once the idle color is verified, before any
	// traffic, recording it for Promote or Reject (see promotion.go);
	// Awaiting says who, for that record.
	Manual   bool
	Awaiting Pending
}

// Other is the color that is not c ("" counts as green, so the first
// colored deploy is blue).
func Other(c string) string {
	if c == Blue {
		return Green
	}
	return Blue
}

// ColorDeployment names a color's Deployment.
func ColorDeployment(base, color string) string { return base + "-" + color }

// PreviewService names the Service that selects the idle color.
func PreviewService(service string) string { return service + "-preview" }

// Deploy creates or updates the idle color with the new image, waits until
// it is ready, verifies it through its preview, switches the Service and
// confirms that the Service's endpoints list only the new color. Before the
// switch any failure or cancellation removes the idle color (the active one
// never stopped serving); after it, traffic is switched back.
func (b *BlueGreen) Deploy(ctx context.Context, t Target) (Deployed, error) {
	d := Deployed{Strategy: NameBlueGreen}
	rec := stepRecorder{d: &d, onStep: b.OnStep}

	// Where traffic goes now is read from the cluster, never remembered.
	var svc *corev1.Service
	err := kube.Retry(ctx, kube.RetryPolicy{}, func(ctx context.Context) error {
		var gerr error
		svc, gerr = b.Client.CoreV1().Services(t.Namespace).Get(ctx, t.Service, metav1.GetOptions{})
		return gerr
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return d, fmt.Errorf("get service %s/%s: %w", t.Namespace, t.Service, kube.ClassifyAPIError(err))
	}
	if err != nil {
		svc = nil
	}
	source, err := b.sourceDeployment(ctx, t, svc)
	if err != nil {
		return d, err
	}
	if svc != nil {
		d.PreviousColor = kube.ActiveColor(svc)
		d.PreviousSelector = maps.Clone(svc.Spec.Selector)
	}
	if source != nil {
		d.PreviousDeployment = source.Name
		d.PreviousImage, _ = kube.CurrentImage(source, t.Container, t.Image)
		changed := ""
		if d.PreviousColor != "" && d.PreviousImage == t.Image {
			if changed, err = b.changedBesideImage(ctx, t, source, d.PreviousColor); err != nil {
				return d, err
			}
		}
		if changed != "" {
			_ = rec.run("compare "+source.Name, func() (string, error) {
				return fmt.Sprintf("it runs %s already, but %s would change: a new color rolls out", t.Image, changed), nil
			})
		}
		if d.PreviousColor != "" && d.PreviousImage == t.Image && changed == "" {
			d.Unchanged = true
			d.Color, d.Deployment = d.PreviousColor, source.Name
			d.PreviousDeployment = b.leftRunning(ctx, t, d.Color)
			if d.PreviousDeployment != "" {
				_ = rec.run("found "+d.PreviousDeployment, func() (string, error) {
					return "still running from an earlier run that did not finish; it is scaled down once monitoring passes", nil
				})
			}
			return d, nil
		}
	}
	d.Color = Other(d.PreviousColor)
	d.Deployment = ColorDeployment(t.Deployment, d.Color)
	w := workloads{client: b.Client, applier: b.Applier, wait: b.Wait, rec: rec}
	if len(t.Manifests) > 0 {
		// Migrations run first; when one fails nothing else is applied.
		pre, rest := splitPreDeploy(t.Manifests)
		if err := w.runPreDeploy(ctx, t, &d, pre); err != nil {
			return d, err
		}
		t.Manifests = rest
	}
	if err := b.supersede(ctx, t, &d); err != nil {
		return d, err
	}

	green, err := b.colorDeployment(t, source, d.Color)
	if err != nil {
		return d, err
	}
	// The autoscaler scales what serves now; it moves with the traffic.
	scaled, err := autoscalers(ctx, b.Client, t, &d)
	if err != nil {
		return d, err
	}
	holder := d.Deployment
	if source != nil {
		holder = source.Name
	}
	d.Autoscaler = scaled[holder]
	if d.Autoscaler == "" {
		d.Autoscaler = scaled[t.Deployment]
	}
	if d.Autoscaler != "" && t.Replicas > 0 {
		d.Warnings = append(d.Warnings, replicasWarning(t, d.Autoscaler, holder))
	}
	green.Spec.Replicas = colorReplicas(green.Spec.Replicas, source, t.Replicas, d.Autoscaler != "")
	newSelector := selectorFor(svc, green, d.Color)

	if svc != nil && d.PreviousColor == "" && source != nil {
		// Adopting a plain Deployment: its Service's selector would also match
		// the new color's pods. Pin it to the pods serving now (their
		// pod-template-hash) first: the same pods, so traffic does not move.
		err := rec.run("pin "+source.Name, func() (string, error) {
			pinned, err := pinnedSelector(ctx, b.Client, source, svc.Spec.Selector)
			if err != nil {
				return "", err
			}
			if _, err := kube.SwitchSelector(ctx, b.Client, t.Namespace, t.Service, pinned); err != nil {
				return "", err
			}
			d.PreviousSelector = pinned
			return fmt.Sprintf("service %s selects only the pods of %s while %s starts", t.Service, source.Name, d.Deployment), nil
		})
		if err != nil {
			return d, err
		}
	}

	undoIdle := func(cause error) error {
		cctx, cancel := detached(ctx)
		defer cancel()
		uerr := rec.run("remove "+d.Color, func() (string, error) {
			err := b.Client.AppsV1().Deployments(t.Namespace).Delete(cctx, d.Deployment, metav1.DeleteOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return "", fmt.Errorf("delete deployment %s/%s: %w", t.Namespace, d.Deployment, err)
			}
			return fmt.Sprintf("%s never got traffic; %s keeps serving", d.Deployment, orNone(d.PreviousDeployment)), nil
		})
		if len(d.Objects) > 0 && uerr == nil {
			wl := d.workload("Deployment/" + d.Deployment)
			wl.Result, wl.Detail = ResultDeleted, "never got traffic"
		}
		if werr := w.undo(cctx, &d); werr != nil {
			uerr = errors.Join(uerr, werr)
		}
		if uerr != nil {
			return errors.Join(cause, uerr)
		}
		return cause
	}

	err = rec.run("create "+d.Color, func() (string, error) {
		if err := b.apply(ctx, t, &d, w, green, holder); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s with %s", d.Deployment, t.Image), nil
	})
	if err == nil {
		// The other workloads roll beside the new color; they are undone
		// with it.
		err = w.rollOut(ctx, &d, "wait "+d.Color, "Deployment/"+d.Deployment, func(ctx context.Context) (string, error) {
			state, err := kube.WaitRollout(ctx, b.Client, t.Namespace, d.Deployment, b.Wait)
			return state.Message, err
		})
	}
	preview := Preview{Namespace: t.Namespace, Service: PreviewService(t.Service), Color: d.Color,
		Deployment: d.Deployment, PreviousImage: d.PreviousImage, Selector: newSelector, Replicas: int(replicasOf(green))}
	if err == nil {
		err = rec.run("preview "+d.Color, func() (string, error) {
			port, err := b.applyPreview(ctx, t, svc, green, newSelector, preview.Service)
			preview.Port = port
			return preview.Service, err
		})
	}
	if err == nil && b.Verify != nil {
		err = rec.run("verify "+d.Color, func() (string, error) {
			return "healthy before any traffic", b.Verify(ctx, preview)
		})
	}
	if err == nil && ctx.Err() != nil {
		err = fmt.Errorf("deploy cancelled before the switch: %w", ctx.Err())
	}
	if err != nil {
		return d, undoIdle(err)
	}

	if b.Manual {
		// The person who promotes decides when traffic moves: record what
		// was verified on the color, and stop before any traffic.
		err = rec.run("await promotion", func() (string, error) {
			return b.recordPending(ctx, t, &d, preview)
		})
		if err != nil {
			return d, undoIdle(err)
		}
		d.Awaiting = true
		return d, nil
	}
	err = b.switchTo(ctx, t, &d, svc, green, newSelector, holder, undoIdle)
	return d, err
}

// switchTo moves traffic to the verified idle color d.Color: the
// Service's selector in one write (or the Service, on a first deploy),
// the autoscaler, and the confirmation that its endpoints list only the
// new color. A failed write removes the idle color (undoIdle); a failed
// confirmation switches traffic back.
func (b *BlueGreen) switchTo(ctx context.Context, t Target, d *Deployed, svc *corev1.Service, green *appsv1.Deployment, newSelector map[string]string, holder string, undoIdle func(error) error) error {
	rec := stepRecorder{d: d, onStep: b.OnStep}
	switchStart := time.Now()
	err := rec.run("switch", func() (string, error) {
		if svc == nil {
			return "created service " + t.Service, b.createService(ctx, t, green, newSelector)
		}
		if _, err := kube.SwitchSelector(ctx, b.Client, t.Namespace, t.Service, newSelector); err != nil {
			return "", err
		}
		return fmt.Sprintf("service %s → %s", t.Service, d.Color), nil
	})
	if err != nil {
		return undoIdle(err)
	}
	d.Switched = true
	if d.Autoscaler != "" && holder != d.Deployment {
		err = rec.run("move autoscaler", func() (string, error) {
			if err := kube.RetargetHPA(ctx, b.Client, t.Namespace, d.Autoscaler, d.Deployment); err != nil {
				return "", err
			}
			return fmt.Sprintf("%s scales %s; %s keeps its replicas while warm", d.Autoscaler, d.Deployment, holder), nil
		})
	}
	if err == nil {
		err = rec.run("confirm endpoints", func() (string, error) {
			st, err := kube.WaitEndpoints(ctx, b.Client, t.Namespace, t.Service, newSelector, int(replicasOf(green)), b.endpointTimeout())
			return fmt.Sprintf("%d ready endpoints, all %s", len(st.Ready), d.Color), err
		})
	}
	d.SwitchTime = time.Since(switchStart)
	if err != nil {
		cctx, cancel := detached(ctx)
		defer cancel()
		if rerr := b.Rollback(cctx, t, d); rerr != nil {
			return errors.Join(err, fmt.Errorf("switching back failed: %w", rerr))
		}
		return err
	}
	return nil
}

// Finish scales the previous color (or the adopted plain Deployment) to
// zero, keeping its spec for the next deploy.
func (b *BlueGreen) Finish(ctx context.Context, t Target, d *Deployed) error {
	if d.PreviousDeployment == "" || d.PreviousDeployment == d.Deployment {
		return nil
	}
	if b.ScaleDownDelay > 0 {
		return b.keepWarm(ctx, t, d)
	}
	return stepRecorder{d: d, onStep: b.OnStep}.run("scale down "+d.PreviousDeployment, func() (string, error) {
		return "0 replicas; spec kept", b.scaleDownIdle(ctx, t, d.PreviousDeployment)
	})
}

// ServingError means a scale-down was refused because the Service selects
// that Deployment now: traffic moved there after the deploy decided what
// was idle (a rollback by another command, or a selector changed by hand).
type ServingError struct {
	// Namespace and Service locate the Service; Deployment is the one it
	// selects.
	Namespace, Service, Deployment string
}

func (e *ServingError) Error() string {
	return fmt.Sprintf("service %s/%s selects %s now, so it was not scaled down", e.Namespace, e.Service, e.Deployment)
}

// Serving names the Deployment a Service sends traffic to: the color its
// selector names, else the plain Deployment base. Pure.
func Serving(svc *corev1.Service, base string) string {
	if c := kube.ActiveColor(svc); c != "" {
		return ColorDeployment(base, c)
	}
	return base
}

// scaleDownIdle scales name to zero unless the Service selects it: what is
// idle is read from the cluster at the moment of the scale-down, never
// remembered from the start of the deploy.
func (b *BlueGreen) scaleDownIdle(ctx context.Context, t Target, name string) error {
	var svc *corev1.Service
	err := kube.Retry(ctx, kube.RetryPolicy{}, func(ctx context.Context) (err error) {
		svc, err = b.Client.CoreV1().Services(t.Namespace).Get(ctx, t.Service, metav1.GetOptions{})
		return err
	})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("read service %s/%s before scaling down %s: %w", t.Namespace, t.Service, name, kube.ClassifyAPIError(err))
	case Serving(svc, t.Deployment) == name:
		return &ServingError{Namespace: t.Namespace, Service: t.Service, Deployment: name}
	}
	return kube.ScaleDeployment(ctx, b.Client, t.Namespace, name, 0)
}

// Rollback switches the Service back to what it selected before the deploy,
// confirms the endpoints, and scales the failed color to zero. The old color
// was kept running, so this is one write plus the confirmation.
func (b *BlueGreen) Rollback(ctx context.Context, t Target, d *Deployed) error {
	rec := stepRecorder{d: d, onStep: b.OnStep}
	if !d.Switched {
		return nil
	}
	if len(d.PreviousSelector) == 0 {
		return fmt.Errorf("roll back service %s/%s: nothing served before this deploy", t.Namespace, t.Service)
	}
	start := time.Now()
	// Traffic must go back even through an API outage: retry patiently,
	// within the caller's deadline.
	patiently := func(f func(ctx context.Context) error) error { return kube.Retry(ctx, kube.PatientRetry, f) }
	err := rec.run("switch back", func() (string, error) {
		if err := patiently(func(ctx context.Context) error {
			_, err := kube.SwitchSelector(ctx, b.Client, t.Namespace, t.Service, d.PreviousSelector)
			return err
		}); err != nil {
			return "", err
		}
		return fmt.Sprintf("service %s → %s", t.Service, orNone(d.PreviousDeployment)), nil
	})
	if err != nil {
		return err
	}
	if d.Autoscaler != "" && d.PreviousDeployment != "" {
		err = rec.run("move autoscaler back", func() (string, error) {
			return fmt.Sprintf("%s scales %s again", d.Autoscaler, d.PreviousDeployment), patiently(func(ctx context.Context) error {
				return kube.RetargetHPA(ctx, b.Client, t.Namespace, d.Autoscaler, d.PreviousDeployment)
			})
		})
		if err != nil {
			return err
		}
	}
	err = rec.run("confirm endpoints", func() (string, error) {
		var prev *appsv1.Deployment
		err := patiently(func(ctx context.Context) error {
			var gerr error
			prev, gerr = b.Client.AppsV1().Deployments(t.Namespace).Get(ctx, d.PreviousDeployment, metav1.GetOptions{})
			return gerr
		})
		if err != nil {
			return "", fmt.Errorf("get deployment %s/%s: %w", t.Namespace, d.PreviousDeployment, err)
		}
		st, err := kube.WaitEndpoints(ctx, b.Client, t.Namespace, t.Service, d.PreviousSelector, int(max(1, min(replicasOf(prev), prev.Status.ReadyReplicas))), b.endpointTimeout())
		return fmt.Sprintf("%d ready endpoints", len(st.Ready)), err
	})
	d.SwitchTime = time.Since(start)
	if err != nil {
		return err
	}
	d.Switched = false
	err = rec.run("scale down "+d.Deployment, func() (string, error) {
		// A ServingError is not retried: the Service chose, and it stands.
		return "0 replicas", patiently(func(ctx context.Context) error { return b.scaleDownIdle(ctx, t, d.Deployment) })
	})
	if len(d.Objects) > 0 {
		wl := d.workload("Deployment/" + d.Deployment)
		wl.Result, wl.Detail = ResultUndone, "traffic back on "+orNone(d.PreviousDeployment)+"; scaled to 0"
	}
	// The other workloads go back with the traffic.
	werr := workloads{client: b.Client, applier: b.Applier, wait: b.Wait, rec: rec}.undo(ctx, d)
	return errors.Join(err, werr)
}

// leftRunning finds a Deployment that an interrupted earlier run left
// serving nothing but still running: the other color, or an adopted plain
// Deployment.
func (b *BlueGreen) leftRunning(ctx context.Context, t Target, active string) string {
	for _, name := range []string{ColorDeployment(t.Deployment, Other(active)), t.Deployment} {
		d, err := b.Client.AppsV1().Deployments(t.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err == nil && replicasOf(d) > 0 {
			return name
		}
	}
	return ""
}

func (b *BlueGreen) endpointTimeout() time.Duration {
	if b.EndpointTimeout > 0 {
		return b.EndpointTimeout
	}
	return 60 * time.Second
}

// changedBesideImage names what of the manifests would change although
// the serving color, source, already runs the image: its pod template
// (another variable, probe or ConfigMap reference is another version, as
// a new image is) or another object of the manifests, compared by a
// server-side dry run. "" when nothing would: the deploy has nothing to
// roll out.
func (b *BlueGreen) changedBesideImage(ctx context.Context, t Target, source *appsv1.Deployment, color string) (string, error) {
	var changed []string
	for _, obj := range t.Manifests {
		switch {
		case obj.GetKind() == "Service" && obj.GetName() == t.Service:
			continue // the switch stands for it
		case obj.GetKind() == "Deployment" && obj.GetName() == t.Deployment:
			dep, err := b.colorDeployment(t, source, color)
			if err != nil {
				return "", err
			}
			u, err := toUnstructured(dep)
			if err != nil {
				return "", err
			}
			diff, err := b.Applier.WouldChange(ctx, u, t.Namespace, "spec", "template")
			if err != nil {
				return "", fmt.Errorf("compare the pod template of %s: %w", source.Name, err)
			}
			if diff {
				changed = append(changed, "the pod template of "+source.Name)
			}
			continue
		case obj.GetKind() == "Job":
			ns := namespaceOf(obj, t.Namespace)
			live, err := b.Client.BatchV1().Jobs(ns).Get(ctx, obj.GetName(), metav1.GetOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return "", fmt.Errorf("read job %s/%s: %w", ns, obj.GetName(), kube.ClassifyAPIError(err))
			}
			if err != nil {
				changed = append(changed, "Job/"+obj.GetName())
			} else if st, _ := kube.JobStatus(live); !st.Done || !kube.JobRunsSame(live, obj) {
				changed = append(changed, "Job/"+obj.GetName())
			}
			continue
		case obj.GetKind() == "HorizontalPodAutoscaler" && kube.ManifestAutoscalers([]*unstructured.Unstructured{obj})[t.Deployment] != "":
			// Applied, it would scale the serving color.
			obj = obj.DeepCopy()
			if err := unstructured.SetNestedField(obj.Object, source.Name, "spec", "scaleTargetRef", "name"); err != nil {
				return "", fmt.Errorf("point autoscaler %s at %s: %w", obj.GetName(), source.Name, err)
			}
		}
		diff, err := b.Applier.WouldChange(ctx, obj, t.Namespace)
		if err != nil {
			return "", fmt.Errorf("compare %s/%s with the cluster: %w", obj.GetKind(), obj.GetName(), err)
		}
		if diff {
			changed = append(changed, obj.GetKind()+"/"+obj.GetName())
		}
	}
	return strings.Join(changed, ", "), nil
}

// sourceDeployment finds the pod template to start from: the active
// color's Deployment, else a plain Deployment named after the app (adopted
// on the first blue-green deploy); with manifests it may be nil.
func (b *BlueGreen) sourceDeployment(ctx context.Context, t Target, svc *corev1.Service) (*appsv1.Deployment, error) {
	name := t.Deployment
	if svc != nil && kube.ActiveColor(svc) != "" {
		name = ColorDeployment(t.Deployment, kube.ActiveColor(svc))
	}
	var d *appsv1.Deployment
	err := kube.Retry(ctx, kube.RetryPolicy{}, func(ctx context.Context) error {
		var gerr error
		d, gerr = b.Client.AppsV1().Deployments(t.Namespace).Get(ctx, name, metav1.GetOptions{})
		return gerr
	})
	switch {
	case err == nil:
		return d, nil
	case apierrors.IsNotFound(err) && len(t.Manifests) > 0:
		return nil, nil
	case apierrors.IsNotFound(err):
		return nil, fmt.Errorf("blue-green: no deployment %s/%s to take the pod template from; give manifests for the first deploy", t.Namespace, name)
	default:
		return nil, fmt.Errorf("get deployment %s/%s: %w", t.Namespace, name, kube.ClassifyAPIError(err))
	}
}

// colorDeployment builds the color's Deployment from the manifests' or the
// source's template, with the new image and the color in labels and selector.
func (b *BlueGreen) colorDeployment(t Target, source *appsv1.Deployment, color string) (*appsv1.Deployment, error) {
	var base *appsv1.Deployment
	for _, obj := range t.Manifests {
		if obj.GetKind() == "Deployment" && obj.GetName() == t.Deployment {
			base = &appsv1.Deployment{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, base); err != nil {
				return nil, fmt.Errorf("read deployment %s from the manifests: %w", t.Deployment, err)
			}
		}
	}
	if base == nil && source == nil {
		return nil, fmt.Errorf("blue-green: the manifests have no Deployment named %s", t.Deployment)
	}
	if base == nil {
		base = source.DeepCopy() // replicas and template carry over
		changed := false
		for i, c := range base.Spec.Template.Spec.Containers {
			if (t.Container != "" && c.Name == t.Container) || (t.Container == "" && (len(base.Spec.Template.Spec.Containers) == 1 || kube.SameRepository(c.Image, t.Image))) {
				base.Spec.Template.Spec.Containers[i].Image = t.Image
				changed = true
				break
			}
		}
		if !changed {
			return nil, fmt.Errorf("blue-green: deployment %s has no container %q to run %s in", source.Name, t.Container, t.Image)
		}
	}
	name := ColorDeployment(t.Deployment, color)
	out := &appsv1.Deployment{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: t.Namespace,
			Labels:      withColor(base.Labels, color),
			Annotations: t.Annotations,
		},
		Spec: *base.Spec.DeepCopy(),
	}
	if out.Spec.Selector == nil {
		out.Spec.Selector = &metav1.LabelSelector{MatchLabels: base.Spec.Template.Labels}
	}
	out.Spec.Selector = &metav1.LabelSelector{MatchLabels: withColor(out.Spec.Selector.MatchLabels, color), MatchExpressions: out.Spec.Selector.MatchExpressions}
	out.Spec.Template.Labels = withColor(out.Spec.Template.Labels, color)
	delete(out.Spec.Template.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	return out, nil
}

// apply applies the color's Deployment with the other manifests. An
// autoscaler of the application in the manifests is pointed at holder, the
// Deployment it scales until the switch moves it.
func (b *BlueGreen) apply(ctx context.Context, t Target, d *Deployed, w workloads, dep *appsv1.Deployment, holder string) error {
	var others []*unstructured.Unstructured
	for _, obj := range t.Manifests {
		if (obj.GetKind() == "Deployment" && obj.GetName() == t.Deployment) || (obj.GetKind() == "Service" && obj.GetName() == t.Service) {
			continue // the colored copy and the switch stand for these
		}
		if obj.GetKind() == "HorizontalPodAutoscaler" && kube.ManifestAutoscalers([]*unstructured.Unstructured{obj})[t.Deployment] != "" {
			obj = obj.DeepCopy()
			if err := unstructured.SetNestedField(obj.Object, holder, "spec", "scaleTargetRef", "name"); err != nil {
				return fmt.Errorf("point autoscaler %s at %s: %w", obj.GetName(), holder, err)
			}
		}
		others = append(others, obj)
	}
	// A color's selector cannot change: recreate a Deployment whose does not match.
	if existing, err := b.Client.AppsV1().Deployments(t.Namespace).Get(ctx, dep.Name, metav1.GetOptions{}); err == nil {
		if !maps.Equal(existing.Spec.Selector.MatchLabels, dep.Spec.Selector.MatchLabels) {
			if err := b.Client.AppsV1().Deployments(t.Namespace).Delete(ctx, dep.Name, metav1.DeleteOptions{}); err != nil {
				return fmt.Errorf("replace deployment %s/%s with a new selector: %w", t.Namespace, dep.Name, err)
			}
		}
	}
	obj, err := toUnstructured(dep)
	if err != nil {
		return err
	}
	if len(t.Manifests) > 0 {
		// The other workloads are recorded before they change, to be undone
		// with the color.
		if others, err = w.prepare(ctx, t, d, others, func(*unstructured.Unstructured) bool { return false }); err != nil {
			return err
		}
	}
	results, err := b.Applier.Apply(ctx, append(others, obj), t.Namespace, false)
	if len(t.Manifests) > 0 {
		d.applied(results)
	}
	return err
}

// applyPreview points the preview Service at the idle color, with the
// public Service's ports (or the containers' when there is none yet).
func (b *BlueGreen) applyPreview(ctx context.Context, t Target, svc *corev1.Service, green *appsv1.Deployment, selector map[string]string, name string) (string, error) {
	preview := serviceFor(t, svc, green, selector)
	preview.Name = name
	preview.Labels = map[string]string{"greenlight.dev/preview-of": t.Service}
	obj, err := toUnstructured(preview)
	if err != nil {
		return "", err
	}
	if _, err := b.Applier.Apply(ctx, []*unstructured.Unstructured{obj}, t.Namespace, false); err != nil {
		return "", err
	}
	port := preview.Spec.Ports[0]
	if port.Name != "" {
		return port.Name, nil
	}
	return fmt.Sprint(port.Port), nil
}

func (b *BlueGreen) createService(ctx context.Context, t Target, green *appsv1.Deployment, selector map[string]string) error {
	svc := serviceFor(t, nil, green, selector)
	for _, obj := range t.Manifests {
		if obj.GetKind() == "Service" && obj.GetName() == t.Service {
			from := &corev1.Service{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, from); err != nil {
				return fmt.Errorf("read service %s from the manifests: %w", t.Service, err)
			}
			svc.Spec = from.Spec
			svc.Labels = from.Labels
			svc.Spec.Selector = selector
		}
	}
	if _, err := b.Client.CoreV1().Services(t.Namespace).Create(ctx, svc, metav1.CreateOptions{FieldManager: kube.FieldManager}); err != nil {
		return fmt.Errorf("create service %s/%s: %w", t.Namespace, t.Service, kube.ClassifyAPIError(err))
	}
	return nil
}

func serviceFor(t Target, svc *corev1.Service, green *appsv1.Deployment, selector map[string]string) *corev1.Service {
	out := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: t.Service, Namespace: t.Namespace},
		Spec:       corev1.ServiceSpec{Selector: selector},
	}
	if svc != nil {
		for _, p := range svc.Spec.Ports {
			out.Spec.Ports = append(out.Spec.Ports, corev1.ServicePort{Name: p.Name, Port: p.Port, TargetPort: p.TargetPort, Protocol: p.Protocol})
		}
		return out
	}
	for _, c := range green.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			out.Spec.Ports = append(out.Spec.Ports, corev1.ServicePort{Name: p.Name, Port: p.ContainerPort, TargetPort: intstr.FromInt32(p.ContainerPort)})
		}
	}
	if len(out.Spec.Ports) == 0 {
		out.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}
	}
	return out
}

// selectorFor is the Service selector that picks the color's pods: the
// Service's own selector without its color, else the template's labels.
func selectorFor(svc *corev1.Service, green *appsv1.Deployment, color string) map[string]string {
	base := green.Spec.Selector.MatchLabels
	if svc != nil && len(svc.Spec.Selector) > 0 {
		base = maps.Clone(svc.Spec.Selector)
		// A Service pinned to an adopted Deployment's pods (a run that died
		// during adoption) must not carry the pin into the new selector.
		delete(base, appsv1.DefaultDeploymentUniqueLabelKey)
	}
	return withColor(base, color)
}

// pinnedSelector narrows a selector to the pods of a Deployment's current
// ReplicaSet.
func pinnedSelector(ctx context.Context, client kubernetes.Interface, d *appsv1.Deployment, selector map[string]string) (map[string]string, error) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("deployment %s has an invalid selector: %w", d.Name, err)
	}
	sets, err := client.AppsV1().ReplicaSets(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, fmt.Errorf("list replica sets of deployment %s/%s: %w", d.Namespace, d.Name, kube.ClassifyAPIError(err))
	}
	revision := d.Annotations["deployment.kubernetes.io/revision"]
	for _, rs := range sets.Items {
		if metav1.IsControlledBy(&rs, d) && rs.Annotations["deployment.kubernetes.io/revision"] == revision {
			if hash := rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey]; hash != "" {
				out := maps.Clone(selector)
				out[appsv1.DefaultDeploymentUniqueLabelKey] = hash
				return out, nil
			}
		}
	}
	return nil, fmt.Errorf("deployment %s/%s has no current replica set to pin its service to", d.Namespace, d.Name)
}

func withColor(labels map[string]string, color string) map[string]string {
	out := maps.Clone(labels)
	if out == nil {
		out = map[string]string{}
	}
	out[kube.ColorLabel] = color
	return out
}

// colorReplicas is the replica count a new color starts with: the replicas
// input unless an autoscaler owns scaling, else what the serving Deployment
// runs now (under an autoscaler, the count it chose for the load), else the
// manifest's.
func colorReplicas(manifest *int32, serving *appsv1.Deployment, input int32, autoscaled bool) *int32 {
	if input > 0 && !autoscaled {
		return &input
	}
	if serving != nil && serving.Spec.Replicas != nil && *serving.Spec.Replicas > 0 {
		n := *serving.Spec.Replicas
		return &n
	}
	return manifest
}

func replicasOf(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

func toUnstructured(obj runtime.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("convert %T: %w", obj, err)
	}
	u := &unstructured.Unstructured{Object: m}
	unstructured.RemoveNestedField(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "spec", "template", "metadata", "creationTimestamp")
	return u, nil
}

func orNone(name string) string {
	if name == "" {
		return "nothing"
	}
	return name
}
