package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"

	"github.com/ebeautything/greenlight/internal/config"
	"github.com/ebeautything/greenlight/internal/kube"
)

const (
	// RestartedAtAnnotation is the pod template annotation `kubectl rollout
	// restart` writes; changing it makes new pods, which read the
	// ConfigMap afresh.
	RestartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"
	// MaintenanceAnnotation records on the pod template which maintenance
	// state its pods were started with ("on" or "off"), so a repeated
	// command can tell that nothing is left to do.
	MaintenanceAnnotation = "greenlight.dev/maintenance"
	// DefaultMaintenanceKey is the ConfigMap key of the maintenance flag.
	DefaultMaintenanceKey = "MAINTENANCE_MODE"
)

// maintenanceAttempts bounds how often a ConfigMap write is redone after
// losing a race with another writer.
const maintenanceAttempts = 5

// ParseFlag reads a maintenance flag's value: true, on, yes, 1 and enabled
// are on; false, off, no, 0, disabled and an empty value are off, in any
// case. known is false for anything else. Pure.
func ParseFlag(value string) (on, known bool) {
	switch strings.ToLower(strings.TrimSpace(value)) {
	case "true", "on", "yes", "1", "enabled":
		return true, true
	case "false", "off", "no", "0", "disabled", "":
		return false, true
	}
	return false, false
}

// FlagValue is the value that turns the flag on or off, written in the
// style of the existing value (on/off, yes/no, 1/0, enabled/disabled, upper
// case) so the application's own parser keeps understanding it; true or
// false otherwise. Pure.
func FlagValue(existing string, on bool) string {
	pairs := [][2]string{{"true", "false"}, {"on", "off"}, {"yes", "no"}, {"1", "0"}, {"enabled", "disabled"}}
	trimmed := strings.TrimSpace(existing)
	lower := strings.ToLower(trimmed)
	pick := pairs[0]
	for _, p := range pairs {
		if lower == p[0] || lower == p[1] {
			pick = p
		}
	}
	v := pick[1]
	if on {
		v = pick[0]
	}
	if trimmed != "" && trimmed == strings.ToUpper(trimmed) && trimmed != lower {
		v = strings.ToUpper(v)
	}
	return v
}

// stateWord is "on" or "off".
func stateWord(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// CheckConfigMapOptions refuses a ConfigMap name or key Kubernetes would
// refuse, as an *config.InputError naming the flag. An empty name is fine:
// it is looked up in the pod template.
func CheckConfigMapOptions(name, key string) error {
	if name != "" {
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			return &config.InputError{Input: "configmap", Problem: fmt.Sprintf("%q is not a ConfigMap name: %s", name, strings.Join(errs, "; ")),
				Accepted: "a ConfigMap name: lowercase letters, digits, '-' and '.', at most 253 characters"}
		}
	}
	if errs := validation.IsConfigMapKey(key); len(errs) > 0 {
		return &config.InputError{Input: "key", Problem: fmt.Sprintf("%q is not a ConfigMap key: %s", key, strings.Join(errs, "; ")),
			Accepted: "letters, digits, '-', '_' and '.', such as " + DefaultMaintenanceKey}
	}
	return nil
}

// ChooseConfigMap picks the application's ConfigMap from the Deployment's
// pod template when none was named: the one a container reads key from
// (env valueFrom configMapKeyRef), else the only ConfigMap the template
// reads at all (envFrom, env or a volume). None or several is an
// *config.InputError asking for --configmap. Pure.
func ChooseConfigMap(d *appsv1.Deployment, key string) (string, error) {
	spec := d.Spec.Template.Spec
	var all, withKey []string
	add := func(list *[]string, name string) {
		if name != "" && !slices.Contains(*list, name) {
			*list = append(*list, name)
		}
	}
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		for _, from := range c.EnvFrom {
			if from.ConfigMapRef != nil {
				add(&all, from.ConfigMapRef.Name)
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
				ref := e.ValueFrom.ConfigMapKeyRef
				add(&all, ref.Name)
				if ref.Key == key {
					add(&withKey, ref.Name)
				}
			}
		}
	}
	for _, v := range spec.Volumes {
		if v.ConfigMap != nil {
			add(&all, v.ConfigMap.Name)
		}
		if v.Projected != nil {
			for _, src := range v.Projected.Sources {
				if src.ConfigMap != nil {
					add(&all, src.ConfigMap.Name)
				}
			}
		}
	}
	const accepted = "--configmap=NAME, the ConfigMap the application reads its maintenance flag from"
	switch {
	case len(withKey) == 1:
		return withKey[0], nil
	case len(withKey) > 1:
		return "", &config.InputError{Input: "configmap", Problem: fmt.Sprintf("is not set and deployment %s reads key %s from several ConfigMaps (%s)", d.Name, key, strings.Join(withKey, ", ")), Accepted: accepted}
	case len(all) == 1:
		return all[0], nil
	case len(all) == 0:
		return "", &config.InputError{Input: "configmap", Problem: fmt.Sprintf("is not set and the pod template of deployment %s reads no ConfigMap", d.Name), Accepted: accepted}
	}
	return "", &config.InputError{Input: "configmap", Problem: fmt.Sprintf("is not set and deployment %s reads several ConfigMaps (%s)", d.Name, strings.Join(all, ", ")), Accepted: accepted}
}

// MaintenanceState is where an environment's maintenance mode stands.
type MaintenanceState struct {
	// Active is the Deployment serving traffic.
	Active Active
	// Image is what the serving Deployment runs.
	Image string
	// ConfigMap and Key hold the flag.
	ConfigMap, Key string
	// Exists is false when the ConfigMap does not exist yet.
	Exists bool
	// KeySet is false when the ConfigMap has no such key.
	KeySet bool
	// Value is the key's raw value.
	Value string
	// On is the flag's meaning; Known is false when Value is neither an on
	// nor an off word.
	On, Known bool
	// Applied is the state the serving pods were started with by a
	// maintenance command ("on" or "off"), empty when none ran yet.
	Applied string
}

// Pending tells whether the serving pods may not have the ConfigMap's
// state yet: a command changed it without the restart, or it was changed
// by hand after the last maintenance command.
func (s MaintenanceState) Pending() bool {
	return s.Applied != "" && s.Known && s.Applied != stateWord(s.On)
}

// MaintenanceOptions say where the maintenance flag is and how long the
// restart may take.
type MaintenanceOptions struct {
	// Target names the workload; the active Deployment is restarted.
	Target Target
	// ConfigMap holds the flag; empty means the one ChooseConfigMap picks.
	ConfigMap string
	// Key is the flag's key; empty means DefaultMaintenanceKey.
	Key string
	// Timeout bounds the restart's rollout; zero means only ctx bounds it.
	Timeout time.Duration
	// Probe, when set, asks the environment's health endpoint; after the
	// restart it must answer 2xx within HealthTimeout.
	Probe func(ctx context.Context) *HealthAnswer
	// HealthTimeout bounds the health verification; default 1 minute.
	HealthTimeout time.Duration
	// OnProgress, when set, sees each new rollout state while waiting.
	OnProgress func(kube.RolloutState)
	// Now is the clock of the restart annotation; default time.Now.
	Now func() time.Time
}

func (o MaintenanceOptions) withDefaults() MaintenanceOptions {
	if o.Key == "" {
		o.Key = DefaultMaintenanceKey
	}
	if o.HealthTimeout <= 0 {
		o.HealthTimeout = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// ReadMaintenance tells the maintenance state: the flag in the ConfigMap
// and the state the serving pods were started with. It changes nothing.
func ReadMaintenance(ctx context.Context, client kubernetes.Interface, o MaintenanceOptions) (MaintenanceState, error) {
	s, _, err := readMaintenance(ctx, client, o.withDefaults())
	return s, err
}

// readMaintenance is ReadMaintenance that also returns the Service (nil
// when there is none).
func readMaintenance(ctx context.Context, client kubernetes.Interface, o MaintenanceOptions) (MaintenanceState, *corev1.Service, error) {
	if err := CheckConfigMapOptions(o.ConfigMap, o.Key); err != nil {
		return MaintenanceState{}, nil, err
	}
	active, svc, err := ResolveActive(ctx, client, o.Target)
	if err != nil {
		return MaintenanceState{}, nil, err
	}
	d, err := getDeployment(ctx, client, o.Target.Namespace, active.Deployment)
	if err != nil {
		return MaintenanceState{Active: active}, svc, err
	}
	s := MaintenanceState{Active: active, Image: WorkloadOf(d, active.Color, o.Target.Container).Image, ConfigMap: o.ConfigMap, Key: o.Key,
		Applied: d.Spec.Template.Annotations[MaintenanceAnnotation]}
	if s.ConfigMap == "" {
		if s.ConfigMap, err = ChooseConfigMap(d, o.Key); err != nil {
			return s, svc, err
		}
	}
	cm, err := getConfigMap(ctx, client, o.Target.Namespace, s.ConfigMap)
	if err != nil {
		return s, svc, err
	}
	s.fill(cm)
	return s, svc, nil
}

// fill reads the flag from cm, which is nil when it does not exist.
func (s *MaintenanceState) fill(cm *corev1.ConfigMap) {
	s.Exists = cm != nil
	s.Value, s.KeySet = "", false
	if cm != nil {
		s.Value, s.KeySet = cm.Data[s.Key]
	}
	s.On, s.Known = ParseFlag(s.Value)
}

// getConfigMap reads a ConfigMap; nil without error when it does not exist.
func getConfigMap(ctx context.Context, client kubernetes.Interface, namespace, name string) (*corev1.ConfigMap, error) {
	var cm *corev1.ConfigMap
	err := kube.Retry(ctx, kube.RetryPolicy{}, func(ctx context.Context) (err error) {
		cm, err = client.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read configmap %s/%s: %w", namespace, name, kube.ClassifyAPIError(err))
	}
	return cm, nil
}

// MaintenanceResult says what a maintenance switch did.
type MaintenanceResult struct {
	// Before is the state found.
	Before MaintenanceState
	// On is the state asked for.
	On bool
	// Value is the flag's value afterwards.
	Value string
	// Wrote is true when the ConfigMap was written; Created when it had
	// to be created.
	Wrote, Created bool
	// Unchanged is true when the flag already had the state and the
	// serving pods were started with it: nothing was done.
	Unchanged bool
	// Changed is true once the ConfigMap or the Deployment was written.
	Changed bool
	// RestartedAt is the restart annotation written, empty when there was
	// no restart.
	RestartedAt string
	// FromRevision and ToRevision are the Deployment's revisions before
	// and after the restart.
	FromRevision, ToRevision int64
	// Ready is the rollout state the wait ended with.
	Ready kube.RolloutState
	// Health is the answer that verified the restart, or the last one
	// when none did.
	Health *HealthAnswer
	// Took is how long the whole switch took.
	Took time.Duration
}

// SetMaintenance switches the maintenance flag: it writes the flag into
// the ConfigMap (creating the key, or the ConfigMap, when missing),
// restarts the serving Deployment as `kubectl rollout restart` does so new
// pods read it, waits until they are ready and listed by the Service, and
// verifies that the health endpoint answers. When the flag already has the state and the serving
// pods were started with it, nothing is done (Unchanged). The result is
// filled in as far as it got, also on error.
func SetMaintenance(ctx context.Context, client kubernetes.Interface, o MaintenanceOptions, on bool) (MaintenanceResult, error) {
	o = o.withDefaults()
	start := time.Now()
	r := MaintenanceResult{On: on}
	before, svc, err := readMaintenance(ctx, client, o)
	r.Before = before
	if err != nil {
		return r, err
	}
	r.Value = before.Value
	want := stateWord(on)
	if before.Known && before.KeySet && before.On == on && before.Applied == want {
		r.Unchanged = true
		r.Took = time.Since(start)
		return r, nil
	}
	ns, name := o.Target.Namespace, before.Active.Deployment
	if !before.KeySet || before.On != on || !before.Known {
		if r.Value, r.Created, err = writeFlag(ctx, client, ns, before.ConfigMap, o.Key, on); err != nil {
			return r, err
		}
		r.Wrote, r.Changed = true, true
	}
	d, err := getDeployment(ctx, client, ns, name)
	if err != nil {
		return r, err
	}
	r.FromRevision = WorkloadOf(d, "", "").Revision
	r.RestartedAt = o.Now().UTC().Format(time.RFC3339)
	if err := Restart(ctx, client, ns, name, map[string]string{RestartedAtAnnotation: r.RestartedAt, MaintenanceAnnotation: want}); err != nil {
		return r, err
	}
	r.Changed = true
	r.Ready, err = kube.WaitRollout(ctx, client, ns, name, kube.WaitOptions{Timeout: o.Timeout, OnProgress: o.OnProgress})
	if err != nil {
		r.Took = time.Since(start)
		return r, fmt.Errorf("restart of deployment %s/%s did not become ready: %w", ns, name, err)
	}
	if d, err := getDeployment(ctx, client, ns, name); err == nil {
		r.ToRevision = WorkloadOf(d, "", "").Revision
	}
	// The new pods take traffic once the Service lists them.
	if svc != nil && len(svc.Spec.Selector) > 0 && r.Ready.Desired > 0 {
		if _, err := kube.WaitEndpoints(ctx, client, ns, svc.Name, svc.Spec.Selector, int(r.Ready.Desired), o.HealthTimeout); err != nil {
			r.Took = time.Since(start)
			return r, fmt.Errorf("service %s/%s did not list the restarted pods: %w", ns, svc.Name, err)
		}
	}
	if o.Probe != nil {
		r.Health, err = AwaitHealthy(ctx, o.Probe, o.HealthTimeout, 500*time.Millisecond)
		if err != nil {
			r.Took = time.Since(start)
			return r, err
		}
	}
	r.Took = time.Since(start)
	return r, nil
}

// writeFlag sets key in the ConfigMap, creating it when missing. A write
// that lost a race with another writer is redone on what is there now.
func writeFlag(ctx context.Context, client kubernetes.Interface, namespace, name, key string, on bool) (value string, created bool, err error) {
	cms := client.CoreV1().ConfigMaps(namespace)
	where := namespace + "/" + name
	for attempt := 1; ; attempt++ {
		cm, err := getConfigMap(ctx, client, namespace, name)
		if err != nil {
			return "", false, err
		}
		if cm == nil {
			value = FlagValue("", on)
			fresh := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "greenlight"}}, Data: map[string]string{key: value}}
			err = kube.Retry(ctx, kube.RetryPolicy{}, func(ctx context.Context) error {
				_, err := cms.Create(ctx, fresh, metav1.CreateOptions{FieldManager: kube.FieldManager})
				return err
			})
			if err == nil {
				return value, true, nil
			}
		} else {
			next := cm.DeepCopy()
			if next.Data == nil {
				next.Data = map[string]string{}
			}
			value = FlagValue(cm.Data[key], on)
			next.Data[key] = value
			// An update carries the resourceVersion read: a concurrent change
			// fails instead of being overwritten.
			err = kube.Retry(ctx, kube.RetryPolicy{}, func(ctx context.Context) error {
				_, err := cms.Update(ctx, next, metav1.UpdateOptions{FieldManager: kube.FieldManager})
				return err
			})
			if err == nil {
				return value, false, nil
			}
		}
		if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) && !apierrors.IsNotFound(err) || attempt >= maintenanceAttempts {
			return "", false, fmt.Errorf("set %s=%s in configmap %s: %w", key, FlagValue("", on), where, kube.ClassifyAPIError(err))
		}
	}
}

// Restart writes annotations on a Deployment's pod template, as `kubectl
// rollout restart` writes kubectl.kubernetes.io/restartedAt: the changed
// template makes the controller replace every pod through a new
// ReplicaSet, under the Deployment's own rollout strategy.
func Restart(ctx context.Context, client kubernetes.Interface, namespace, name string, annotations map[string]string) error {
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{"annotations": annotations}}}})
	if err != nil {
		return fmt.Errorf("restart deployment %s/%s: encode patch: %w", namespace, name, err)
	}
	err = kube.Retry(ctx, kube.RetryPolicy{}, func(ctx context.Context) error {
		_, err := client.AppsV1().Deployments(namespace).Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{FieldManager: kube.FieldManager})
		return err
	})
	if err != nil {
		return fmt.Errorf("restart deployment %s/%s: %w", namespace, name, kube.ClassifyAPIError(err))
	}
	return nil
}

// AwaitHealthy asks probe every interval until it answers 2xx or timeout
// passes, and returns the last answer. A restart is not done until the
// environment answers again.
func AwaitHealthy(ctx context.Context, probe func(ctx context.Context) *HealthAnswer, timeout, every time.Duration) (*HealthAnswer, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last *HealthAnswer
	for {
		a := probe(ctx)
		if a != nil && a.OK {
			return a, nil
		}
		// A probe cut short by the deadline says less than the one before.
		if last == nil || ctx.Err() == nil {
			last = a
		}
		timer := time.NewTimer(every)
		select {
		case <-ctx.Done():
			timer.Stop()
			return last, fmt.Errorf("the health endpoint did not answer 2xx within %s: %s", timeout, describeAnswer(last))
		case <-timer.C:
		}
	}
}

// describeAnswer says in a few words what a probe got.
func describeAnswer(a *HealthAnswer) string {
	switch {
	case a == nil:
		return "no answer"
	case a.Err != "":
		return a.Err
	case a.StatusCode != 0:
		return fmt.Sprintf("answered %d", a.StatusCode)
	}
	return "no answer"
}
