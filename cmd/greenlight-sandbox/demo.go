package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/ebeautything/greenlight/internal/testcluster"
)

const demoNamespace = "shop"

// demo runs the tour against a fresh cluster and reports each step.
func demo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "greenlight-sandbox demo: takes no arguments, got %q\n", args)
		return exitBadInput
	}
	start := time.Now()
	c, err := testcluster.Start(ctx, testcluster.Options{Log: stderr})
	if err != nil {
		fmt.Fprintf(stderr, "greenlight-sandbox: %v\n", err)
		return exitFailed
	}
	defer c.Stop()
	d := &demoRun{client: c.Client(), url: c.ServiceURL(demoNamespace, "payments"), out: stdout, start: start}
	if err := d.tour(ctx); err != nil {
		fmt.Fprintf(stderr, "greenlight-sandbox demo: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "[%s] demo finished: v2 serving, v3 rolled back\n", elapsed(start))
	return exitOK
}

type demoRun struct {
	client kubernetes.Interface
	url    string
	out    io.Writer
	start  time.Time
}

func (d *demoRun) say(format string, args ...any) {
	fmt.Fprintf(d.out, "[%s] %s\n", elapsed(d.start), fmt.Sprintf(format, args...))
}

func (d *demoRun) tour(ctx context.Context) error {
	if _, err := d.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: demoNamespace}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace %s: %w", demoNamespace, err)
	}
	if _, err := d.client.CoreV1().Services(demoNamespace).Create(ctx, paymentsService(), metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create service payments: %w", err)
	}

	d.say("first deploy of sampleapp:v1")
	if _, err := d.client.AppsV1().Deployments(demoNamespace).Create(ctx, paymentsDeployment("sampleapp:v1", nil), metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create deployment payments: %w", err)
	}
	if err := d.rollout(ctx, "v1"); err != nil {
		return err
	}

	d.say("update to sampleapp:v2")
	if err := d.setImage(ctx, "sampleapp:v2", nil); err != nil {
		return err
	}
	if err := d.rollout(ctx, "v2"); err != nil {
		return err
	}

	d.say("update to sampleapp:v3, which starts failing 3s after it went live")
	if err := d.setImage(ctx, "sampleapp:v3", []corev1.EnvVar{{Name: "SAMPLEAPP_FAIL_AFTER", Value: "3s"}}); err != nil {
		return err
	}
	if err := d.rollout(ctx, "v3"); err != nil {
		return err
	}
	failures, err := d.watchUntilFailing(ctx, 6)
	if err != nil {
		return err
	}
	d.say("v3 failed %d requests in a row through the router: rolling back to v2", failures)
	if err := d.setImage(ctx, "sampleapp:v2", nil); err != nil {
		return err
	}
	return d.rollout(ctx, "v2")
}

// rollout waits until every answer through the router comes from version.
func (d *demoRun) rollout(ctx context.Context, version string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		for range 10 {
			got, code := d.get(ctx)
			if got != version || code != http.StatusOK {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("wait for %s to serve all traffic: %w", version, err)
	}
	d.say("%s serves all traffic at %s", version, d.url)
	return nil
}

func (d *demoRun) watchUntilFailing(ctx context.Context, threshold int) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	consecutive := 0
	for consecutive < threshold {
		if _, code := d.get(ctx); code >= 500 {
			consecutive++
		} else {
			consecutive = 0
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("watch v3: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	return consecutive, nil
}

func (d *demoRun) get(ctx context.Context) (version string, code int) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.url+"/health", nil)
	if err != nil {
		return "", 0
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Header.Get("X-App-Version"), resp.StatusCode
}

func (d *demoRun) setImage(ctx context.Context, image string, env []corev1.EnvVar) error {
	dep, err := d.client.AppsV1().Deployments(demoNamespace).Get(ctx, "payments", metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get deployment payments: %w", err)
	}
	dep.Spec.Template.Spec.Containers[0].Image = image
	dep.Spec.Template.Spec.Containers[0].Env = env
	if _, err := d.client.AppsV1().Deployments(demoNamespace).Update(ctx, dep, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("set image of deployment payments to %s: %w", image, err)
	}
	return nil
}

func paymentsService() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "payments"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "payments"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}
}

func paymentsDeployment(image string, env []corev1.EnvVar) *appsv1.Deployment {
	replicas := int32(2)
	labels := map[string]string{"app": "payments"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "payments", Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: image, Env: env,
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
					ReadinessProbe: &corev1.Probe{
						ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/health/ready", Port: intstr.FromString("http")}},
						PeriodSeconds: 1,
					},
				}}},
			},
		},
	}
}
