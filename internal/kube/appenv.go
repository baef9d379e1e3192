package kube

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// LabelEnvFor marks the Secrets that hold a Deployment's app-env, with the
// Deployment's name as value; pruning looks at these only.
const LabelEnvFor = "greenlight.dev/env-for"

// envKeyField is the data key of the naming key in EnvKeyName's Secret.
const envKeyField = "key"

// EnvVar is one application environment variable.
type EnvVar struct {
	Name  string
	Value string
}

// EnvKeyName is the Secret that holds the key naming a Deployment's app-env
// Secrets. A plain hash of the values in a Secret's name would let anyone
// who may list Secrets (but not read them) test guesses of a value; a keyed
// hash does not, and the key lives beside the values it protects.
func EnvKeyName(deployment string) string { return deployment + "-env-key" }

// EnvSecretName names the Secret holding vars for deployment: the same
// variables under the same key give the same name, so a deploy that does
// not change them does not change the pod template either.
func EnvSecretName(deployment string, key []byte, vars []EnvVar) string {
	mac := hmac.New(sha256.New, key)
	for _, v := range sortedEnv(vars) {
		// Lengths first: no two different lists encode alike.
		fmt.Fprintf(mac, "%d:%s%d:%s", len(v.Name), v.Name, len(v.Value), v.Value)
	}
	return deployment + "-env-" + hex.EncodeToString(mac.Sum(nil))[:12]
}

func sortedEnv(vars []EnvVar) []EnvVar {
	out := slices.Clone(vars)
	slices.SortFunc(out, func(a, b EnvVar) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// AppEnv keeps a Deployment's application variables in immutable Secrets,
// one per distinct set of values, that the pods read through envFrom.
type AppEnv struct {
	Client     kubernetes.Interface
	Namespace  string
	Deployment string
}

// Key returns the naming key, reading it from the cluster; when there is
// none yet it returns a new random key and exists false, to be stored by
// Ensure (validate changes nothing in the cluster).
func (a AppEnv) Key(ctx context.Context) (key []byte, exists bool, err error) {
	s, err := a.Client.CoreV1().Secrets(a.Namespace).Get(ctx, EnvKeyName(a.Deployment), metav1.GetOptions{})
	switch {
	case err == nil:
		if k := s.Data[envKeyField]; len(k) >= 32 {
			return k, true, nil
		}
		return nil, true, fmt.Errorf("read app-env key %s/%s: it holds no %d-byte %q", a.Namespace, EnvKeyName(a.Deployment), 32, envKeyField)
	case apierrors.IsNotFound(err):
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, false, fmt.Errorf("make app-env key: %w", err)
		}
		return key, false, nil
	default:
		return nil, false, fmt.Errorf("read app-env key %s/%s: %w", a.Namespace, EnvKeyName(a.Deployment), ClassifyAPIError(err))
	}
}

// Ensure stores key when the cluster has none (a concurrent first deploy
// that stored another wins: its key is returned and the name changes
// with it), then creates the immutable Secret of vars. It returns the
// Secret's name and whether this call created it.
func (a AppEnv) Ensure(ctx context.Context, key []byte, vars []EnvVar) (name string, created bool, err error) {
	keySecret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: EnvKeyName(a.Deployment), Namespace: a.Namespace, Labels: managedLabels()},
		Immutable:  ptr.To(true),
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{envKeyField: key},
	}
	if _, err := a.Client.CoreV1().Secrets(a.Namespace).Create(ctx, keySecret, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
		if !apierrors.IsAlreadyExists(err) {
			return "", false, fmt.Errorf("store app-env key %s/%s: %w", a.Namespace, keySecret.Name, ClassifyAPIError(err))
		}
		if key, _, err = a.Key(ctx); err != nil {
			return "", false, err
		}
	}
	name = EnvSecretName(a.Deployment, key, vars)
	data := make(map[string][]byte, len(vars))
	for _, v := range vars {
		data[v.Name] = []byte(v.Value)
	}
	labels := managedLabels()
	labels[LabelEnvFor] = a.Deployment
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: a.Namespace, Labels: labels},
		Immutable:  ptr.To(true),
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
	_, err = a.Client.CoreV1().Secrets(a.Namespace).Create(ctx, secret, metav1.CreateOptions{FieldManager: FieldManager})
	switch {
	case err == nil:
		return name, true, nil
	case apierrors.IsAlreadyExists(err):
		// Same name, same key: the same values, from an earlier deploy.
		return name, false, nil
	default:
		return "", false, fmt.Errorf("create app-env Secret %s/%s: %w", a.Namespace, name, ClassifyAPIError(err))
	}
}

// Prune deletes the Deployment's app-env Secrets that nothing can return
// to any more: none named in keep (the deploy history, this run's), and
// none referenced by a ReplicaSet or ControllerRevision of the namespace
// (the revisions a rollback or `rollout undo` restores). It returns the
// names it deleted.
func (a AppEnv) Prune(ctx context.Context, keep []string) ([]string, error) {
	secrets, err := a.Client.CoreV1().Secrets(a.Namespace).List(ctx, metav1.ListOptions{LabelSelector: LabelEnvFor + "=" + a.Deployment})
	if err != nil {
		return nil, fmt.Errorf("list app-env Secrets of %s/%s: %w", a.Namespace, a.Deployment, ClassifyAPIError(err))
	}
	if len(secrets.Items) == 0 {
		return nil, nil
	}
	used := map[string]bool{}
	for _, k := range keep {
		used[k] = true
	}
	rss, err := a.Client.AppsV1().ReplicaSets(a.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list ReplicaSets of %s to prune app-env Secrets: %w", a.Namespace, ClassifyAPIError(err))
	}
	for _, rs := range rss.Items {
		for _, name := range SecretsReferenced(&rs.Spec.Template.Spec) {
			used[name] = true
		}
	}
	crs, err := a.Client.AppsV1().ControllerRevisions(a.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list ControllerRevisions of %s to prune app-env Secrets: %w", a.Namespace, ClassifyAPIError(err))
	}
	var deleted []string
	for _, s := range secrets.Items {
		if used[s.Name] || slices.ContainsFunc(crs.Items, func(cr appsv1.ControllerRevision) bool { return strings.Contains(string(cr.Data.Raw), `"`+s.Name+`"`) }) {
			continue
		}
		err := a.Client.CoreV1().Secrets(a.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &s.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			return deleted, fmt.Errorf("delete app-env Secret %s/%s: %w", a.Namespace, s.Name, ClassifyAPIError(err))
		}
		deleted = append(deleted, s.Name)
	}
	return deleted, nil
}

// SecretsReferenced lists the Secrets a pod spec reads: envFrom, env
// valueFrom, volumes and projected volumes, image pull secrets, init and
// ephemeral containers included.
func SecretsReferenced(spec *corev1.PodSpec) []string {
	var out []string
	fromEnv := func(envFrom []corev1.EnvFromSource, env []corev1.EnvVar) {
		for _, from := range envFrom {
			if from.SecretRef != nil {
				out = append(out, from.SecretRef.Name)
			}
		}
		for _, e := range env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				out = append(out, e.ValueFrom.SecretKeyRef.Name)
			}
		}
	}
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for _, c := range cs {
			fromEnv(c.EnvFrom, c.Env)
		}
	}
	for _, c := range spec.EphemeralContainers {
		fromEnv(c.EnvFrom, c.Env)
	}
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			out = append(out, v.Secret.SecretName)
		}
		if v.Projected != nil {
			for _, src := range v.Projected.Sources {
				if src.Secret != nil {
					out = append(out, src.Secret.Name)
				}
			}
		}
	}
	for _, ref := range spec.ImagePullSecrets {
		out = append(out, ref.Name)
	}
	return out
}

// AttachEnvSecret makes the containers greenlight sets the image of (subs)
// read the Secret name through envFrom, after whatever envFrom they
// already have so that its values win; a reference to an earlier app-env
// Secret of deployment is replaced. With no substitution, every container
// of the Deployment named deployment is given it.
func AttachEnvSecret(objs []*unstructured.Unstructured, subs []Substitution, deployment, name string) (int, error) {
	want := map[string]map[string]bool{}
	for _, s := range subs {
		if want[s.Object] == nil {
			want[s.Object] = map[string]bool{}
		}
		want[s.Object][s.Container] = true
	}
	attached := 0
	for _, obj := range objs {
		specPath, ok := podSpecPath(obj.GroupVersionKind().GroupKind())
		if !ok {
			continue
		}
		ref := objectName(obj)
		whole := len(subs) == 0 && obj.GetKind() == "Deployment" && obj.GetName() == deployment
		if want[ref] == nil && !whole {
			continue
		}
		for _, field := range []string{"containers", "initContainers"} {
			path := append(slices.Clone(specPath), field)
			list, found, err := unstructured.NestedSlice(obj.Object, path...)
			if err != nil || !found {
				continue
			}
			for i, item := range list {
				c, isMap := item.(map[string]any)
				if !isMap {
					continue
				}
				cname, _ := c["name"].(string)
				if !whole && !want[ref][cname] {
					continue
				}
				froms, _ := c["envFrom"].([]any)
				kept := make([]any, 0, len(froms)+1)
				for _, f := range froms {
					if m, ok := f.(map[string]any); ok {
						if sr, ok := m["secretRef"].(map[string]any); ok {
							if n, _ := sr["name"].(string); strings.HasPrefix(n, deployment+"-env-") && n != EnvKeyName(deployment) {
								continue
							}
						}
					}
					kept = append(kept, f)
				}
				c["envFrom"] = append(kept, map[string]any{"secretRef": map[string]any{"name": name}})
				list[i] = c
				attached++
			}
			if err := unstructured.SetNestedSlice(obj.Object, list, path...); err != nil {
				return attached, fmt.Errorf("attach app-env Secret to %s: %w", ref, err)
			}
		}
	}
	if attached == 0 {
		return 0, fmt.Errorf("attach app-env Secret: no container of the manifests takes it (Deployment %s has none, and no image was substituted)", deployment)
	}
	return attached, nil
}

// managedLabels mark an object greenlight wrote for its own bookkeeping
// (the history, app-env Secrets and their key).
func managedLabels() map[string]string {
	return map[string]string{"app.kubernetes.io/managed-by": FieldManager}
}
