package ops

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ebeautything/greenlight/internal/config"
	"github.com/ebeautything/greenlight/internal/health"
	"github.com/ebeautything/greenlight/internal/kube"
	"github.com/ebeautything/greenlight/internal/strategy"
)

func TestActiveOf(t *testing.T) {
	t.Parallel()
	svc := func(sel map[string]string) *corev1.Service {
		return &corev1.Service{Spec: corev1.ServiceSpec{Selector: sel}}
	}
	tests := []struct {
		name string
		svc  *corev1.Service
		want Active
	}{
		{"no service", nil, Active{Deployment: "shop"}},
		{"plain selector", svc(map[string]string{"app": "shop"}), Active{Deployment: "shop"}},
		{"blue", svc(map[string]string{"app": "shop", kube.ColorLabel: "blue"}), Active{Deployment: "shop-blue", Color: "blue"}},
		{"green", svc(map[string]string{"app": "shop", kube.ColorLabel: "green"}), Active{Deployment: "shop-green", Color: "green"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, ActiveOf(tt.svc, "shop"))
		})
	}
	assert.Equal(t, "green", otherColor("blue"))
	assert.Equal(t, "blue", otherColor("green"))
	assert.Empty(t, otherColor(""))
}

func TestWorkloadOf(t *testing.T) {
	t.Parallel()
	replicas := int32(3)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "shop-blue", Annotations: map[string]string{revisionAnnotation: "4"}},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{RestartedAtAnnotation: "2025-03-01T12:00:00Z"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "shop:v2"}, {Name: "proxy", Image: "envoy:1"}}},
		}},
		Status: appsv1.DeploymentStatus{ReadyReplicas: 2, UpdatedReplicas: 3, AvailableReplicas: 1},
	}
	w := WorkloadOf(d, "blue", "")
	assert.Equal(t, Workload{Deployment: "shop-blue", Color: "blue", Revision: 4, Image: "shop:v2, envoy:1", Desired: 3, Ready: 2, Updated: 3, Available: 1,
		RestartedAt: "2025-03-01T12:00:00Z"}, w, "several containers and none chosen: all images")
	assert.Equal(t, "envoy:1", WorkloadOf(d, "blue", "proxy").Image)
	d.Spec.Replicas = nil
	assert.EqualValues(t, 1, WorkloadOf(d, "", "app").Desired, "unset replicas default to 1, as the API server does")
}

func TestEndpointsOf(t *testing.T) {
	t.Parallel()
	yes, no := true, false
	pod := func(name string) *corev1.ObjectReference { return &corev1.ObjectReference{Kind: "Pod", Name: name} }
	slices := []discoveryv1.EndpointSlice{
		{Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.0.0.2"}, Conditions: discoveryv1.EndpointConditions{Ready: &yes}, TargetRef: pod("shop-b")},
			{Addresses: []string{"10.0.0.3"}, Conditions: discoveryv1.EndpointConditions{Ready: &no}, TargetRef: pod("shop-c")},
			{Addresses: []string{"10.0.0.9"}},
		}},
		{Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"fd00::2"}, Conditions: discoveryv1.EndpointConditions{Ready: &yes}, TargetRef: pod("shop-b")},
			{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: &yes}, TargetRef: pod("shop-a")},
		}},
	}
	assert.Equal(t, Endpoints{Ready: []string{"10.0.0.9", "shop-a", "shop-b"}, NotReady: 1}, EndpointsOf(slices))
	assert.Equal(t, Endpoints{}, EndpointsOf(nil))
}

func TestEntries(t *testing.T) {
	t.Parallel()
	records := []kube.Record{
		{ID: "c", Status: kube.RecordRolledBack, StartedAt: t0, FinishedAt: t0.Add(time.Minute)},
		{ID: "b", Status: kube.RecordRollbackFailed, StartedAt: t0},
		{ID: "a", Status: kube.RecordSucceeded, StartedAt: t0, FinishedAt: t0.Add(-time.Second)},
	}
	all := Entries(records, 0)
	require.Len(t, all, 3)
	assert.True(t, all[0].RolledBack)
	assert.False(t, all[1].RolledBack, "a failed rollback did not roll back")
	assert.Equal(t, time.Minute, all[0].Duration())
	assert.Zero(t, all[1].Duration(), "no end, no duration")
	assert.Zero(t, all[2].Duration(), "an end before the start is a skewed clock, not a duration")
	assert.Equal(t, t0, all[1].When())
	assert.Len(t, Entries(records, 2), 2)
	assert.Equal(t, "c", Entries(records, 1)[0].ID, "newest first")
}

func TestParseFlagAndFlagValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		value     string
		on, known bool
		onValue   string
		offValue  string
	}{
		{"", false, true, "true", "false"},
		{"false", false, true, "true", "false"},
		{"true", true, true, "true", "false"},
		{" TRUE ", true, true, "TRUE", "FALSE"},
		{"on", true, true, "on", "off"},
		{"Off", false, true, "on", "off"},
		{"1", true, true, "1", "0"},
		{"no", false, true, "yes", "no"},
		{"enabled", true, true, "enabled", "disabled"},
		{"sometimes", false, false, "true", "false"},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			t.Parallel()
			on, known := ParseFlag(tt.value)
			assert.Equal(t, tt.on, on)
			assert.Equal(t, tt.known, known)
			assert.Equal(t, tt.onValue, FlagValue(tt.value, true))
			assert.Equal(t, tt.offValue, FlagValue(tt.value, false))
			got, _ := ParseFlag(FlagValue(tt.value, true))
			assert.True(t, got, "the value written reads back as on")
		})
	}
}

func TestChooseConfigMap(t *testing.T) {
	t.Parallel()
	keyRef := func(env, cm, key string) corev1.EnvVar {
		return corev1.EnvVar{Name: env, ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: cm}, Key: key}}}
	}
	envFrom := func(cm string) corev1.EnvFromSource {
		return corev1.EnvFromSource{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: cm}}}
	}
	dep := func(spec corev1.PodSpec) *appsv1.Deployment {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "shop"}, Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: spec}}}
	}
	tests := []struct {
		name    string
		spec    corev1.PodSpec
		want    string
		problem string
	}{
		{"envFrom", corev1.PodSpec{Containers: []corev1.Container{{EnvFrom: []corev1.EnvFromSource{envFrom("shop-config")}}}}, "shop-config", ""},
		{"the key's configMapKeyRef wins", corev1.PodSpec{Containers: []corev1.Container{{
			EnvFrom: []corev1.EnvFromSource{envFrom("shop-config")},
			Env:     []corev1.EnvVar{keyRef("MAINT", "flags", DefaultMaintenanceKey), keyRef("DB", "db", "url")},
		}}}, "flags", ""},
		{"a volume", corev1.PodSpec{Containers: []corev1.Container{{}}, Volumes: []corev1.Volume{{VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "files"}}}}}}, "files", ""},
		{"same map twice", corev1.PodSpec{InitContainers: []corev1.Container{{EnvFrom: []corev1.EnvFromSource{envFrom("a")}}}, Containers: []corev1.Container{{EnvFrom: []corev1.EnvFromSource{envFrom("a")}}}}, "a", ""},
		{"none", corev1.PodSpec{Containers: []corev1.Container{{}}}, "", "reads no ConfigMap"},
		{"several", corev1.PodSpec{Containers: []corev1.Container{{EnvFrom: []corev1.EnvFromSource{envFrom("a"), envFrom("b")}}}}, "", "several ConfigMaps (a, b)"},
		{"key in several", corev1.PodSpec{Containers: []corev1.Container{{Env: []corev1.EnvVar{keyRef("X", "a", DefaultMaintenanceKey), keyRef("Y", "b", DefaultMaintenanceKey)}}}}, "", "from several ConfigMaps (a, b)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ChooseConfigMap(dep(tt.spec), DefaultMaintenanceKey)
			if tt.problem == "" {
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
				return
			}
			require.Error(t, err)
			errs := config.InputErrors(err)
			require.Len(t, errs, 1, "bad input, exit 2")
			assert.Equal(t, "configmap", errs[0].Input)
			assert.Contains(t, err.Error(), tt.problem)
		})
	}
}

func TestCheckConfigMapOptions(t *testing.T) {
	t.Parallel()
	assert.NoError(t, CheckConfigMapOptions("", DefaultMaintenanceKey))
	assert.NoError(t, CheckConfigMapOptions("shop-config", "app.maintenance_mode"))
	for _, tt := range []struct{ name, key, input string }{
		{"Shop_Config", DefaultMaintenanceKey, "configmap"},
		{"shop", "", "key"},
		{"shop", "has space", "key"},
	} {
		errs := config.InputErrors(CheckConfigMapOptions(tt.name, tt.key))
		require.Len(t, errs, 1, "%s/%s", tt.name, tt.key)
		assert.Equal(t, tt.input, errs[0].Input)
	}
}

func TestMaintenanceTextAndPending(t *testing.T) {
	t.Parallel()
	base := MaintenanceState{Active: Active{Deployment: "shop-blue"}, ConfigMap: "shop-config", Key: "MAINTENANCE_MODE", Exists: true, KeySet: true}
	with := func(f func(*MaintenanceState)) MaintenanceState { s := base; f(&s); return s }
	tests := []struct {
		name    string
		state   MaintenanceState
		pending bool
		text    string
	}{
		{"on and applied", with(func(s *MaintenanceState) { s.Value, s.On, s.Known, s.Applied = "true", true, true, "on" }), false,
			`maintenance is on: configmap shop-config key MAINTENANCE_MODE is "true"; deployment shop-blue runs pods started with maintenance on`},
		{"changed by hand", with(func(s *MaintenanceState) { s.Value, s.On, s.Known, s.Applied = "true", true, true, "off" }), true,
			`maintenance is on: configmap shop-config key MAINTENANCE_MODE is "true"; deployment shop-blue runs pods started with maintenance off: restart it to apply`},
		{"never switched", with(func(s *MaintenanceState) { s.Value, s.Known = "false", true }), false,
			`maintenance is off: configmap shop-config key MAINTENANCE_MODE is "false"; deployment shop-blue was not restarted by a maintenance command`},
		{"no key", with(func(s *MaintenanceState) { s.KeySet, s.Known = false, true }), false,
			`maintenance is off: configmap shop-config key MAINTENANCE_MODE is not set; deployment shop-blue was not restarted by a maintenance command`},
		{"no configmap", with(func(s *MaintenanceState) { s.Exists, s.KeySet, s.Known = false, false, true }), false,
			`maintenance is off: configmap shop-config key MAINTENANCE_MODE does not exist; deployment shop-blue was not restarted by a maintenance command`},
		{"unknown value", with(func(s *MaintenanceState) { s.Value, s.Applied = "maybe", "on" }), false,
			`maintenance is unknown: configmap shop-config key MAINTENANCE_MODE is "maybe", neither on nor off; deployment shop-blue runs pods started with maintenance on`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.pending, tt.state.Pending())
			assert.Equal(t, tt.text, MaintenanceText(tt.state))
		})
	}
}

func TestRecords(t *testing.T) {
	t.Parallel()
	a := Audit{ID: "scale-1", Environment: "production", Strategy: "blue-green", Actor: "octocat", RunURL: "https://github.com/acme/shop/actions/runs/7",
		StartedAt: t0, FinishedAt: t0.Add(9 * time.Second)}
	scale := ScaleResult{Active: Active{Deployment: "shop-blue", Color: "blue"}, From: 2, To: 5, Image: "shop:v2", Revision: 3}
	rec := ScaleRecord(a, scale, nil)
	assert.Equal(t, kube.Record{ID: "scale-1", Environment: "production", Image: "shop:v2", Strategy: "blue-green", Status: kube.RecordSucceeded,
		Reason: "scaled shop-blue to 5 replicas (from 2) by octocat", Revision: 3, ActiveColor: "blue", Actor: "octocat",
		RunURL: "https://github.com/acme/shop/actions/runs/7", StartedAt: t0, FinishedAt: t0.Add(9 * time.Second)}, rec)

	failed := ScaleRecord(a, scale, errors.New("quota exceeded"))
	assert.Equal(t, kube.RecordFailed, failed.Status)
	assert.Equal(t, "scale shop-blue to 5 replicas by octocat failed: quota exceeded", failed.Reason)
	same := ScaleRecord(Audit{ID: "scale-2"}, ScaleResult{Active: Active{Deployment: "shop"}, From: 2, To: 2, Unchanged: true}, nil)
	assert.Equal(t, "confirmed shop at 2 replicas", same.Reason, "no actor, no 'by'")

	m := MaintenanceResult{Before: MaintenanceState{Active: scale.Active, Image: "shop:v2", ConfigMap: "shop-config", Key: "MAINTENANCE_MODE", Value: "off"}, On: true, Value: "on", FromRevision: 3, ToRevision: 4}
	rec = MaintenanceRecord(a, m, nil)
	assert.Equal(t, "maintenance on (shop-config MAINTENANCE_MODE=on), restarted shop-blue to revision 4 by octocat", rec.Reason)
	assert.EqualValues(t, 4, rec.Revision)
	assert.Equal(t, "shop:v2", rec.Image)
	rec = MaintenanceRecord(a, m, errors.New("pods crash"))
	assert.Equal(t, kube.RecordFailed, rec.Status)
	assert.Equal(t, "maintenance on (shop-config MAINTENANCE_MODE=on) by octocat failed: pods crash", rec.Reason)
}

func TestFormatting(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		-time.Minute: "just now", 0: "just now", 45 * time.Second: "45s ago", 12 * time.Minute: "12m ago",
		5 * time.Hour: "5h ago", 47 * time.Hour: "47h ago", 72 * time.Hour: "3d ago",
	} {
		assert.Equal(t, want, formatAge(t0, t0.Add(-d)), "%s", d)
	}
	assert.Equal(t, "-", formatAge(t0, time.Time{}))
	for d, want := range map[time.Duration]string{0: "-", 850 * time.Millisecond: "850ms", 12400 * time.Millisecond: "12s", 252 * time.Second: "4m12s"} {
		assert.Equal(t, want, formatDuration(d))
	}
	assert.Equal(t, "1.23s", formatLatency(1234*time.Millisecond))
	assert.Equal(t, "0123456", shortID("0123456789abcdef0123456789abcdef01234567"))
	assert.Equal(t, "local-20250226T080000Z", shortID("local-20250226T080000Z"))
	assert.Equal(t, "abc…", truncate("abcdef", 4))
	assert.Equal(t, "a b", truncate("a\n b", 10), "one line")
	assert.Equal(t, `a \| b &lt;x&gt;`, mdCell("a | b <x>"))
}

// TestAwaitHealthy probes a real server that answers 503 twice, then 200.
func TestAwaitHealthy(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok","version":"v7"}`))
	}))
	t.Cleanup(srv.Close)
	target, err := health.NewURLTarget(srv.URL, health.TLSOptions{})
	require.NoError(t, err)
	probe := func(ctx context.Context) *HealthAnswer {
		return AnswerOf(target.Name(), health.Probe(ctx, target, "/health", time.Second))
	}
	got, err := AwaitHealthy(context.Background(), probe, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, err)
	assert.Equal(t, 200, got.StatusCode)
	assert.Equal(t, "v7", got.Version)
	assert.EqualValues(t, 3, calls.Load())

	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
	t.Cleanup(down.Close)
	target, err = health.NewURLTarget(down.URL, health.TLSOptions{})
	require.NoError(t, err)
	got, err = AwaitHealthy(context.Background(), func(ctx context.Context) *HealthAnswer {
		return AnswerOf(target.Name(), health.Probe(ctx, target, "/health", time.Second))
	}, 500*time.Millisecond, 10*time.Millisecond)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "answered 502")
	assert.False(t, got.OK)
	assert.True(t, strings.HasPrefix(got.Target, "http://127.0.0.1"))
}

func TestAwaitingOf(t *testing.T) {
	t.Parallel()
	green := func() *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "payments-green"},
			Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "app", Image: "ghcr.io/acme/payments:v3"}},
			}}},
		}
	}
	recorded := func(d *appsv1.Deployment) *appsv1.Deployment {
		p := strategy.Pending{Image: "ghcr.io/acme/payments:v3", Color: "green", Deployment: d.Name, Actor: "octocat",
			Template: strategy.TemplateFingerprint(d), VerifiedAt: t0}
		raw, err := json.Marshal(p)
		require.NoError(t, err)
		d.Annotations = map[string]string{strategy.AnnotationAwaitingPromotion: string(raw)}
		return d
	}
	edited := recorded(green())
	edited.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "EDITED_BY_HAND", Value: "yes"}}
	scaled := recorded(green())
	five := int32(5)
	scaled.Spec.Replicas = &five
	unreadable := green()
	unreadable.Annotations = map[string]string{strategy.AnnotationAwaitingPromotion: "{not json"}

	tests := []struct {
		name string
		d    *appsv1.Deployment
		want *Awaiting
	}{
		{"no record", green(), nil},
		{"as verified", recorded(green()), &Awaiting{Color: "green", Deployment: "payments-green", Image: "ghcr.io/acme/payments:v3", Actor: "octocat", VerifiedAt: t0}},
		{"scaled since: still as verified", scaled, &Awaiting{Color: "green", Deployment: "payments-green", Image: "ghcr.io/acme/payments:v3", Actor: "octocat", VerifiedAt: t0}},
		{"edited since", edited, &Awaiting{Color: "green", Deployment: "payments-green", Image: "ghcr.io/acme/payments:v3", Actor: "octocat", VerifiedAt: t0, Edited: true}},
		{"an unreadable record cannot be promoted", unreadable, &Awaiting{Color: "green", Deployment: "payments-green", Edited: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, AwaitingOf(tt.d, "green"))
		})
	}
}
