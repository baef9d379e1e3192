package strategy

import (
	"context"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/ebeautything/greenlight/internal/kube"
)

// AnnotationScaleDownAfter is the rollback window's deadline, in RFC 3339
// UTC, on the previous color's Deployment: until then it stays warm without
// traffic; the next command that changes the environment after it scales
// the color down. No process waits for it.
const AnnotationScaleDownAfter = "greenlight.dev/scale-down-after"

// keepWarm records the rollback window on the previous color instead of
// scaling it down.
func (b *BlueGreen) keepWarm(ctx context.Context, t Target, d *Deployed) error {
	until := time.Now().Add(b.ScaleDownDelay).UTC().Truncate(time.Second)
	return stepRecorder{d: d, onStep: b.OnStep}.run("keep "+d.PreviousDeployment+" warm", func() (string, error) {
		if err := annotateDeadline(ctx, b.Client, t.Namespace, d.PreviousDeployment, until.Format(time.RFC3339)); err != nil {
			return "", err
		}
		d.WarmUntil = until
		return fmt.Sprintf("without traffic until %s (scale-down-delay %s): a rollback until then is a selector switch", until.Format("15:04:05 UTC"), b.ScaleDownDelay), nil
	})
}

// annotateDeadline sets (or with "" removes) the window's deadline.
func annotateDeadline(ctx context.Context, client kubernetes.Interface, namespace, name, value string) error {
	v := "null"
	if value != "" {
		v = fmt.Sprintf("%q", value)
	}
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%s}}}`, AnnotationScaleDownAfter, v)
	err := kube.Retry(ctx, kube.RetryPolicy{}, func(ctx context.Context) error {
		_, err := client.AppsV1().Deployments(namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: kube.FieldManager})
		return err
	})
	if err != nil {
		return fmt.Errorf("record the rollback window on %s/%s: %w", namespace, name, kube.ClassifyAPIError(err))
	}
	return nil
}

// Window is an open or closed rollback window of one color.
type Window struct {
	// Deployment is the color kept warm.
	Deployment string
	// Until is the deadline.
	Until time.Time
	// Replicas is what it keeps running.
	Replicas int32
}

// Open tells whether the window is still open at now.
func (w Window) Open(now time.Time) bool { return now.Before(w.Until) }

// windowOf reads a Deployment's window; ok is false without one. Pure.
func windowOf(d *appsv1.Deployment) (Window, bool) {
	raw := d.Annotations[AnnotationScaleDownAfter]
	if raw == "" {
		return Window{}, false
	}
	until, err := time.Parse(time.RFC3339, raw)
	if err != nil {
		return Window{}, false
	}
	return Window{Deployment: d.Name, Until: until, Replicas: replicasOf(d)}, true
}

// Windows reads the rollback windows recorded on the environment's colors,
// for read-only commands; it changes nothing.
func Windows(ctx context.Context, client kubernetes.Interface, namespace, base string) ([]Window, error) {
	var out []Window
	for _, name := range []string{ColorDeployment(base, Blue), ColorDeployment(base, Green), base} {
		d, err := client.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read deployment %s/%s: %w", namespace, name, kube.ClassifyAPIError(err))
		}
		if w, ok := windowOf(d); ok {
			out = append(out, w)
		}
	}
	return out, nil
}

// CloseExpiredWindows scales down every color whose rollback window has
// closed by now, unless the Service selects it (a rollback moved traffic
// there: its window no longer applies and is removed); with takeIdle, as a
// deploy that needs the idle color does, every window ends now. Callers
// hold the environment's lock: it is the work a writing command does first.
func CloseExpiredWindows(ctx context.Context, client kubernetes.Interface, t Target, now time.Time, takeIdle bool) ([]string, error) {
	windows, err := Windows(ctx, client, t.Namespace, t.Deployment)
	if err != nil {
		return nil, err
	}
	b := &BlueGreen{Client: client}
	var closed []string
	for _, w := range windows {
		if w.Open(now) && !takeIdle {
			continue
		}
		msg := fmt.Sprintf("%s scaled down: its rollback window closed at %s", w.Deployment, w.Until.UTC().Format("15:04:05 UTC"))
		if w.Open(now) {
			msg = fmt.Sprintf("%s scaled down: this deploy takes the idle color, so its rollback window (until %s) ends now", w.Deployment, w.Until.UTC().Format("15:04:05 UTC"))
		}
		err := b.scaleDownIdle(ctx, t, w.Deployment)
		var serving *ServingError
		switch {
		case errors.As(err, &serving):
			msg = fmt.Sprintf("%s kept: it serves again, so its rollback window no longer applies", w.Deployment)
		case err != nil:
			return closed, err
		}
		if err := annotateDeadline(ctx, client, t.Namespace, w.Deployment, ""); err != nil {
			return closed, err
		}
		closed = append(closed, msg)
	}
	return closed, nil
}

// DropWindow removes the deadline from a color that serves again, so no
// later command scales it down.
func DropWindow(ctx context.Context, client kubernetes.Interface, namespace, name string) error {
	err := annotateDeadline(ctx, client, namespace, name, "")
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
