package strategy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/ebeautything/greenlight/internal/kube"
)

// AnnotationAwaitingPromotion holds, on a blue-green color's Deployment,
// the JSON Pending record of the deploy that verified it and stopped
// before traffic (promotion manual). Promote and Reject read it from the
// cluster, so the job that decides needs nothing from the job that
// deployed; the next deploy into that color supersedes it.
const AnnotationAwaitingPromotion = "greenlight.dev/awaiting-promotion"

// Pending is a verified color waiting for a person to promote or reject
// it.
type Pending struct {
	// DeploymentID, Actor and RunURL identify the deploy that verified it.
	DeploymentID string `json:"deploymentId,omitempty"`
	Actor        string `json:"actor,omitempty"`
	RunURL       string `json:"runUrl,omitempty"`
	// Image is the image verified; PreviousImage what served then.
	Image         string `json:"image"`
	PreviousImage string `json:"previousImage,omitempty"`
	// Color and Deployment run it; PreviewService on PreviewPort selects
	// only its pods.
	Color          string `json:"color"`
	Deployment     string `json:"deployment"`
	PreviewService string `json:"previewService"`
	PreviewPort    string `json:"previewPort,omitempty"`
	// Template is the fingerprint of the pod template that was verified
	// (see TemplateFingerprint).
	Template   string    `json:"template"`
	VerifiedAt time.Time `json:"verifiedAt"`
	// Workloads are the other workloads of the manifests as they were
	// before the deploy changed them: they run before approval, and
	// Reject puts them back.
	Workloads []kube.WorkloadSnapshot `json:"workloads,omitempty"`
}

// RefusedError is a promote or reject that changed nothing, and why.
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return e.Reason }

// TemplateFingerprint identifies a Deployment's pod template: any change
// to what its pods run (image, command, environment, probes, a restart
// annotation) changes it; scaling does not. Pure.
func TemplateFingerprint(d *appsv1.Deployment) string {
	data, _ := json.Marshal(d.Spec.Template)
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:16])
}

// PendingOf reads a Deployment's Pending record; ok is false without one.
// Pure.
func PendingOf(d *appsv1.Deployment) (Pending, bool) {
	raw := d.Annotations[AnnotationAwaitingPromotion]
	if raw == "" {
		return Pending{}, false
	}
	var p Pending
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		// An unreadable record still marks the color as not verified for
		// traffic; an empty fingerprint matches no template.
		return Pending{Deployment: d.Name}, true
	}
	return p, true
}

// FindPending reads the color of base that awaits promotion; nil when
// none does.
func FindPending(ctx context.Context, client kubernetes.Interface, namespace, base string) (*Pending, *appsv1.Deployment, error) {
	var found *Pending
	var dep *appsv1.Deployment
	for _, color := range []string{Blue, Green} {
		name := ColorDeployment(base, color)
		var d *appsv1.Deployment
		err := kube.Retry(ctx, kube.RetryPolicy{}, func(ctx context.Context) (err error) {
			d, err = client.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
			return err
		})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read deployment %s/%s: %w", namespace, name, kube.ClassifyAPIError(err))
		}
		if p, ok := PendingOf(d); ok && (found == nil || p.VerifiedAt.After(found.VerifiedAt)) {
			found, dep = &p, d
		}
	}
	return found, dep, nil
}

// annotatePending sets (or with "" removes) the Pending record.
func annotatePending(ctx context.Context, client kubernetes.Interface, namespace, name, value string) error {
	v := "null"
	if value != "" {
		q, _ := json.Marshal(value)
		v = string(q)
	}
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%s}}}`, AnnotationAwaitingPromotion, v)
	err := kube.Retry(ctx, kube.RetryPolicy{}, func(ctx context.Context) error {
		_, err := client.AppsV1().Deployments(namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: kube.FieldManager})
		return err
	})
	if err != nil {
		return fmt.Errorf("record the promotion state on %s/%s: %w", namespace, name, kube.ClassifyAPIError(err))
	}
	return nil
}

// recordPending records the verified idle color for Promote or Reject.
func (b *BlueGreen) recordPending(ctx context.Context, t Target, d *Deployed, p Preview) (string, error) {
	dep, err := b.Client.AppsV1().Deployments(t.Namespace).Get(ctx, d.Deployment, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("read deployment %s/%s: %w", t.Namespace, d.Deployment, kube.ClassifyAPIError(err))
	}
	rec := b.Awaiting
	rec.Image, rec.PreviousImage = t.Image, d.PreviousImage
	rec.Color, rec.Deployment = d.Color, d.Deployment
	rec.PreviewService, rec.PreviewPort = p.Service, p.Port
	rec.Template = TemplateFingerprint(dep)
	rec.VerifiedAt = time.Now().UTC().Truncate(time.Second)
	rec.Workloads = d.changed()
	data, err := json.Marshal(rec)
	if err != nil {
		return "", fmt.Errorf("encode the promotion record: %w", err)
	}
	if err := annotatePending(ctx, b.Client, t.Namespace, d.Deployment, string(data)); err != nil {
		return "", err
	}
	d.PreviewService, d.PreviewPort = p.Service, p.Port
	return fmt.Sprintf("%s verified without traffic (template %s); %s keeps serving until promote or reject", d.Deployment, rec.Template, orNone(d.PreviousDeployment)), nil
}

// supersede clears a Pending record on the color a new deploy is about to
// replace: what was verified there is gone, so it can never be promoted.
func (b *BlueGreen) supersede(ctx context.Context, t Target, d *Deployed) error {
	dep, err := b.Client.AppsV1().Deployments(t.Namespace).Get(ctx, d.Deployment, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read deployment %s/%s: %w", t.Namespace, d.Deployment, kube.ClassifyAPIError(err))
	}
	p, ok := PendingOf(dep)
	if !ok {
		return nil
	}
	if err := annotatePending(ctx, b.Client, t.Namespace, d.Deployment, ""); err != nil {
		return err
	}
	d.Warnings = append(d.Warnings, fmt.Sprintf("%s awaited promotion of %s (deploy %s); this deploy replaces it, so it can no longer be promoted", d.Deployment, orNone(p.Image), orNone(p.DeploymentID)))
	return nil
}

// readService reads the Service; nil when it does not exist yet.
func (b *BlueGreen) readService(ctx context.Context, t Target) (*corev1.Service, error) {
	var svc *corev1.Service
	err := kube.Retry(ctx, kube.RetryPolicy{}, func(ctx context.Context) (err error) {
		svc, err = b.Client.CoreV1().Services(t.Namespace).Get(ctx, t.Service, metav1.GetOptions{})
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get service %s/%s: %w", t.Namespace, t.Service, kube.ClassifyAPIError(err))
	}
	return svc, nil
}

// pendingFor finds what awaits promotion and refuses when nothing does or
// when it serves already.
func (b *BlueGreen) pendingFor(ctx context.Context, t Target, svc *corev1.Service, verb string) (Pending, *appsv1.Deployment, error) {
	p, dep, err := FindPending(ctx, b.Client, t.Namespace, t.Deployment)
	if err != nil {
		return Pending{}, nil, err
	}
	if p == nil {
		return Pending{}, nil, &RefusedError{Reason: fmt.Sprintf("nothing awaits promotion in %s: neither %s nor %s was left verified by a deploy with promotion manual (it was promoted, rejected, or replaced by a later deploy), so there is nothing to %s",
			t.Namespace, ColorDeployment(t.Deployment, Blue), ColorDeployment(t.Deployment, Green), verb)}
	}
	if svc != nil && Serving(svc, t.Deployment) == dep.Name {
		return *p, dep, &RefusedError{Reason: fmt.Sprintf("%s serves already (service %s selects it), so there is nothing to %s; to go back to the version before it, roll back", dep.Name, t.Service, verb)}
	}
	return *p, dep, nil
}

// Promote moves traffic to the color a deploy with promotion manual left
// verified, as Deploy does after its verify. It refuses, changing nothing,
// when nothing awaits promotion, when t.Image names another image, when
// the color's pod template is not the one verified (someone edited it),
// or when the color is no longer ready and healthy: it is waited for and
// checked again through its preview (Verify) before the switch. p is what
// was promoted.
func (b *BlueGreen) Promote(ctx context.Context, t Target) (d Deployed, p Pending, err error) {
	d = Deployed{Strategy: NameBlueGreen}
	rec := stepRecorder{d: &d, onStep: b.OnStep}
	svc, err := b.readService(ctx, t)
	if err != nil {
		return d, p, err
	}
	p, dep, err := b.pendingFor(ctx, t, svc, "promote")
	if err != nil {
		return d, p, err
	}
	d.Color, d.Deployment = dep.Labels[kube.ColorLabel], dep.Name
	if d.Color == "" {
		d.Color = p.Color
	}
	if t.Image != "" && t.Image != p.Image {
		return d, p, &RefusedError{Reason: fmt.Sprintf("the image input is %s, but %s awaits promotion with %s (verified %s by deploy %s); nothing was switched: promote without image, or deploy %s",
			t.Image, dep.Name, p.Image, p.VerifiedAt.UTC().Format(time.RFC3339), orNone(p.DeploymentID), t.Image)}
	}
	if err := changed(dep, p, t.Container); err != nil {
		return d, p, err
	}
	if svc != nil {
		d.PreviousColor = kube.ActiveColor(svc)
		d.PreviousSelector = maps.Clone(svc.Spec.Selector)
		serving := Serving(svc, t.Deployment)
		if src, err := b.Client.AppsV1().Deployments(t.Namespace).Get(ctx, serving, metav1.GetOptions{}); err == nil {
			d.PreviousDeployment = src.Name
			d.PreviousImage, _ = kube.CurrentImage(src, t.Container, p.Image)
		}
	}
	if d.PreviousImage == "" {
		d.PreviousImage = p.PreviousImage
	}
	scaled, err := autoscalers(ctx, b.Client, t, &d)
	if err != nil {
		return d, p, err
	}
	holder := d.Deployment
	if d.PreviousDeployment != "" {
		holder = d.PreviousDeployment
	}
	d.Autoscaler = scaled[holder]
	if d.Autoscaler == "" {
		d.Autoscaler = scaled[t.Deployment]
	}
	newSelector := selectorFor(svc, dep, d.Color)
	unhealthy := func(err error) error {
		return &RefusedError{Reason: fmt.Sprintf("%s went unhealthy after it was verified at %s, so it was not promoted and %s keeps serving: %v; reject it, or deploy again",
			dep.Name, p.VerifiedAt.UTC().Format(time.RFC3339), orNone(d.PreviousDeployment), err)}
	}
	err = rec.run("wait "+d.Color, func() (string, error) {
		state, err := kube.WaitRollout(ctx, b.Client, t.Namespace, d.Deployment, b.Wait)
		return state.Message, err
	})
	if err != nil {
		return d, p, unhealthy(err)
	}
	preview := Preview{Namespace: t.Namespace, Service: PreviewService(t.Service), Color: d.Color, Port: p.PreviewPort,
		Deployment: d.Deployment, PreviousImage: d.PreviousImage, Selector: newSelector, Replicas: int(replicasOf(dep))}
	if b.Applier != nil {
		err = rec.run("preview "+d.Color, func() (string, error) {
			port, err := b.applyPreview(ctx, t, svc, dep, newSelector, preview.Service)
			preview.Port = port
			return preview.Service, err
		})
		if err != nil {
			return d, p, err
		}
	}
	if b.Verify != nil {
		err = rec.run("verify "+d.Color, func() (string, error) {
			return "healthy again before any traffic", b.Verify(ctx, preview)
		})
		if err != nil {
			return d, p, unhealthy(err)
		}
	}
	// Read again: an edit during the checks must not slip through.
	now, err := b.Client.AppsV1().Deployments(t.Namespace).Get(ctx, d.Deployment, metav1.GetOptions{})
	if err != nil {
		return d, p, fmt.Errorf("read deployment %s/%s: %w", t.Namespace, d.Deployment, kube.ClassifyAPIError(err))
	}
	if err := changed(now, p, t.Container); err != nil {
		return d, p, err
	}
	if ctx.Err() != nil {
		return d, p, fmt.Errorf("promote cancelled before the switch: %w", ctx.Err())
	}
	// The other workloads changed before approval; a rollback after the
	// switch puts them back with the traffic.
	d.restoreUnit(p.Workloads)
	keep := func(cause error) error { return cause } // green stays, still awaiting
	if err := b.switchTo(ctx, t, &d, svc, now, newSelector, holder, keep); err != nil {
		return d, p, err
	}
	cctx, cancel := detached(ctx)
	defer cancel()
	if err := annotatePending(cctx, b.Client, t.Namespace, d.Deployment, ""); err != nil {
		d.Warnings = append(d.Warnings, err.Error())
	}
	return d, p, nil
}

// changed refuses a color whose pod template is not the one verified.
func changed(dep *appsv1.Deployment, p Pending, container string) error {
	fp := TemplateFingerprint(dep)
	if fp == p.Template {
		return nil
	}
	image, _ := kube.CurrentImage(dep, container, p.Image)
	what := "its pod template was edited"
	if image != p.Image {
		what = fmt.Sprintf("it runs %s now", image)
	}
	return &RefusedError{Reason: fmt.Sprintf("%s changed after it was verified at %s: %s (template %s, verified %s with %s), so it was not promoted and nothing was switched; reject it, or deploy again to verify what it runs now",
		dep.Name, p.VerifiedAt.UTC().Format(time.RFC3339), what, fp, orNone(p.Template), p.Image)}
}

// Reject removes the color a deploy with promotion manual left waiting;
// the Service was never switched, so what serves keeps serving. p is what
// was rejected.
func (b *BlueGreen) Reject(ctx context.Context, t Target) (d Deployed, p Pending, err error) {
	d = Deployed{Strategy: NameBlueGreen}
	rec := stepRecorder{d: &d, onStep: b.OnStep}
	svc, err := b.readService(ctx, t)
	if err != nil {
		return d, p, err
	}
	p, dep, err := b.pendingFor(ctx, t, svc, "reject")
	if err != nil {
		return d, p, err
	}
	d.Color, d.Deployment = p.Color, dep.Name
	d.PreviousImage = p.PreviousImage
	if svc != nil {
		d.PreviousColor = kube.ActiveColor(svc)
		d.PreviousDeployment = Serving(svc, t.Deployment)
	}
	err = rec.run("remove "+d.Color, func() (string, error) {
		err := b.Client.AppsV1().Deployments(t.Namespace).Delete(ctx, dep.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &dep.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			return "", fmt.Errorf("delete deployment %s/%s: %w", t.Namespace, dep.Name, kube.ClassifyAPIError(err))
		}
		return fmt.Sprintf("%s (%s) never got traffic; %s keeps serving", dep.Name, p.Image, orNone(d.PreviousDeployment)), nil
	})
	if err != nil {
		return d, p, err
	}
	// The other workloads ran the rejected version before approval.
	d.restoreUnit(p.Workloads)
	err = workloads{client: b.Client, applier: b.Applier, wait: b.Wait, rec: rec}.undo(ctx, &d)
	return d, p, err
}
