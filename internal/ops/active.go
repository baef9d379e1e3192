package ops

import (
	"context"
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ebeautything/greenlight/internal/kube"
	"github.com/ebeautything/greenlight/internal/strategy"
)

// revisionAnnotation is where the deployment controller numbers revisions.
const revisionAnnotation = "deployment.kubernetes.io/revision"

// Target names the workload an operator command acts on.
type Target struct {
	// Namespace holds the Deployment and its Service.
	Namespace string
	// Deployment is the configured name; blue-green colors are
	// "<Deployment>-blue" and "<Deployment>-green".
	Deployment string
	// Service routes the environment's traffic; empty means Deployment.
	Service string
	// Container picks the container whose image is shown; empty means the
	// only one, or all of them.
	Container string
}

func (t Target) service() string {
	if t.Service == "" {
		return t.Deployment
	}
	return t.Service
}

// Active is the Deployment that serves an environment's traffic.
type Active struct {
	// Deployment is the serving Deployment's name.
	Deployment string `json:"deployment"`
	// Color is the active blue-green color; empty for a rolling
	// environment or a plain Deployment not yet adopted by blue-green.
	Color string `json:"color,omitempty"`
}

// ActiveOf decides which Deployment serves traffic from the Service's
// selector: the color it selects, else the plain Deployment. A missing
// Service (nil) leaves the plain Deployment.
func ActiveOf(svc *corev1.Service, deployment string) Active {
	if svc == nil {
		return Active{Deployment: deployment}
	}
	color := kube.ActiveColor(svc)
	if color == "" {
		return Active{Deployment: deployment}
	}
	return Active{Deployment: strategy.ColorDeployment(deployment, color), Color: color}
}

// otherColor is the idle color of a blue-green pair.
func otherColor(color string) string {
	switch color {
	case "blue":
		return "green"
	case "green":
		return "blue"
	}
	return ""
}

// ResolveActive reads the Service and returns the Deployment serving
// traffic now, with the Service (nil when there is none).
func ResolveActive(ctx context.Context, client kubernetes.Interface, t Target) (Active, *corev1.Service, error) {
	var svc *corev1.Service
	err := kube.Retry(ctx, kube.RetryPolicy{}, func(ctx context.Context) (err error) {
		svc, err = client.CoreV1().Services(t.Namespace).Get(ctx, t.service(), metav1.GetOptions{})
		return err
	})
	switch {
	case apierrors.IsNotFound(err):
		return ActiveOf(nil, t.Deployment), nil, nil
	case err != nil:
		return Active{}, nil, fmt.Errorf("read service %s/%s: %w", t.Namespace, t.service(), kube.ClassifyAPIError(err))
	}
	return ActiveOf(svc, t.Deployment), svc, nil
}

// getDeployment reads a Deployment with the engine's retries.
func getDeployment(ctx context.Context, client kubernetes.Interface, namespace, name string) (*appsv1.Deployment, error) {
	var d *appsv1.Deployment
	err := kube.Retry(ctx, kube.RetryPolicy{}, func(ctx context.Context) (err error) {
		d, err = client.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read deployment %s/%s: %w", namespace, name, kube.ClassifyAPIError(err))
	}
	return d, nil
}

// Workload is one Deployment's state as status shows it.
type Workload struct {
	// Deployment is the Deployment's name.
	Deployment string
	// Color is its blue-green color, if any.
	Color string
	// Revision is the deployment controller's revision number.
	Revision int64
	// Image is the chosen container's image, or every container's image
	// separated by ", " when none is chosen among several.
	Image string
	// Desired is spec.replicas; Ready, Updated and Available come from the
	// status.
	Desired, Ready, Updated, Available int32
	// RestartedAt is the last `kubectl rollout restart` (or maintenance)
	// time written on the pod template, empty when there was none.
	RestartedAt string
}

// WorkloadOf reads what status shows of a Deployment. Pure.
func WorkloadOf(d *appsv1.Deployment, color, container string) Workload {
	w := Workload{
		Deployment:  d.Name,
		Color:       color,
		Desired:     1,
		Ready:       d.Status.ReadyReplicas,
		Updated:     d.Status.UpdatedReplicas,
		Available:   d.Status.AvailableReplicas,
		RestartedAt: d.Spec.Template.Annotations[RestartedAtAnnotation],
	}
	if d.Spec.Replicas != nil {
		w.Desired = *d.Spec.Replicas
	}
	w.Revision, _ = strconv.ParseInt(d.Annotations[revisionAnnotation], 10, 64)
	if img, err := kube.CurrentImage(d, container, ""); err == nil {
		w.Image = img
	} else {
		for i, c := range d.Spec.Template.Spec.Containers {
			if i > 0 {
				w.Image += ", "
			}
			w.Image += c.Image
		}
	}
	return w
}
