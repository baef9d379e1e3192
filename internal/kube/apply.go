package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	appsv1apply "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1apply "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// FieldManager is the name greenlight's server-side applies are recorded under.
const FieldManager = "greenlight"

// ApplyResult says what one apply did to one object.
type ApplyResult struct {
	// Object is "Kind/name".
	Object    string
	Namespace string
	// Action is "created", "configured" or "unchanged".
	Action string
}

// Applier applies manifests with server-side apply.
type Applier struct {
	dynamic dynamic.Interface
	mapper  meta.RESTMapper
}

// NewApplier builds an applier from a REST config; the resource mapping is
// discovered from the API server on first use.
func NewApplier(cfg *rest.Config) (*Applier, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("create dynamic client: %w", err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("create discovery client: %w", err)
	}
	return &Applier{dynamic: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))}, nil
}

// Apply server-side applies each object (in namespace when it names none),
// forcing ownership of the fields it sets, as `kubectl apply
// --server-side --force-conflicts`. With dryRun the API server validates
// and admits everything but persists nothing.
func (a *Applier) Apply(ctx context.Context, objs []*unstructured.Unstructured, namespace string, dryRun bool) ([]ApplyResult, error) {
	results := make([]ApplyResult, 0, len(objs))
	for _, obj := range objs {
		r, err := a.applyOne(ctx, obj, namespace, dryRun)
		if err != nil {
			return results, err
		}
		results = append(results, r)
	}
	return results, nil
}

func (a *Applier) applyOne(ctx context.Context, obj *unstructured.Unstructured, namespace string, dryRun bool) (ApplyResult, error) {
	target, err := a.resolve(obj, namespace)
	if err != nil {
		return ApplyResult{}, err
	}
	existing, err := target.resource.Get(ctx, target.obj.GetName(), metav1.GetOptions{})
	if err != nil {
		existing = nil
	}
	out, err := target.patch(ctx, dryRun)
	if err != nil {
		return ApplyResult{}, err
	}
	// Compared by content, not by resource version: a controller writing
	// status between the read and the apply bumps the version of an
	// object the apply left alone, and a dry run bumps none.
	action := "configured"
	switch {
	case existing == nil:
		action = "created"
	case equality.Semantic.DeepEqual(comparedPart(existing, nil), comparedPart(out, nil)):
		action = "unchanged"
	}
	return ApplyResult{Object: target.what, Namespace: target.namespace, Action: action}, nil
}

// WouldChange reports whether applying obj (in namespace when it names
// none) would change the live object, as `kubectl diff --server-side`
// does: a server-side dry run compared with the live object, leaving out
// what the server keeps for itself (resource version, generation, managed
// fields, creation time, uid), the status and the annotations the
// Deployment controller writes. With fields, only that one
// nested field is compared (for example "spec", "template"). An object
// that does not exist would change.
func (a *Applier) WouldChange(ctx context.Context, obj *unstructured.Unstructured, namespace string, fields ...string) (bool, error) {
	target, err := a.resolve(obj, namespace)
	if err != nil {
		return false, err
	}
	var live *unstructured.Unstructured
	err = Retry(ctx, RetryPolicy{}, func(ctx context.Context) error {
		var gerr error
		live, gerr = target.resource.Get(ctx, target.obj.GetName(), metav1.GetOptions{})
		return gerr
	})
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s in namespace %q: %w", target.what, target.namespace, ClassifyAPIError(err))
	}
	applied, err := target.patch(ctx, true)
	if err != nil {
		return false, err
	}
	return !equality.Semantic.DeepEqual(comparedPart(live, fields), comparedPart(applied, fields)), nil
}

// controllerAnnotationPrefix starts the annotations the Deployment
// controller keeps on its objects ("deployment.kubernetes.io/revision").
const controllerAnnotationPrefix = "deployment.kubernetes.io/"

// comparedPart is what WouldChange compares of obj: the nested field named
// by fields, or the whole object without what the server keeps for itself.
func comparedPart(obj *unstructured.Unstructured, fields []string) any {
	if len(fields) > 0 {
		v, _, _ := unstructured.NestedFieldNoCopy(obj.Object, fields...)
		return v
	}
	c := obj.DeepCopy()
	for _, f := range []string{"resourceVersion", "generation", "managedFields", "creationTimestamp", "uid"} {
		unstructured.RemoveNestedField(c.Object, "metadata", f)
	}
	delete(c.Object, "status")
	// The Deployment controller writes its revision into the annotations
	// on its own, right after a rollout starts.
	if a := c.GetAnnotations(); len(a) > 0 {
		for k := range a {
			if strings.HasPrefix(k, controllerAnnotationPrefix) {
				delete(a, k)
			}
		}
		if len(a) == 0 {
			a = nil
		}
		c.SetAnnotations(a)
	}
	return c.Object
}

// applyTarget is one object of the manifests with the API resource it is
// applied to.
type applyTarget struct {
	obj       *unstructured.Unstructured
	resource  dynamic.ResourceInterface
	namespace string
	// what is "Kind/name", for messages.
	what string
}

// resolve finds the API resource of obj and sets its namespace (namespace
// when it names none, nothing for a cluster-scoped kind).
func (a *Applier) resolve(obj *unstructured.Unstructured, namespace string) (applyTarget, error) {
	gvk := obj.GroupVersionKind()
	what := gvk.Kind + "/" + obj.GetName()
	mapping, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return applyTarget{}, fmt.Errorf("apply %s: the API server does not serve %s: %w", what, gvk, ClassifyAPIError(err))
	}
	var resource dynamic.ResourceInterface = a.dynamic.Resource(mapping.Resource)
	ns := ""
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		ns = obj.GetNamespace()
		if ns == "" {
			ns = namespace
		}
		resource = a.dynamic.Resource(mapping.Resource).Namespace(ns)
	}
	obj = obj.DeepCopy()
	obj.SetNamespace(ns)
	obj.SetManagedFields(nil)
	obj.SetResourceVersion("")
	return applyTarget{obj: obj, resource: resource, namespace: ns, what: what}, nil
}

// patch server-side applies the object, forcing ownership of the fields it
// sets, and returns the object as the API server left it (or, with
// dryRun, would leave it).
func (t applyTarget) patch(ctx context.Context, dryRun bool) (*unstructured.Unstructured, error) {
	data, err := json.Marshal(t.obj)
	if err != nil {
		return nil, fmt.Errorf("apply %s: encode: %w", t.what, err)
	}
	force := true
	opts := metav1.PatchOptions{FieldManager: FieldManager, Force: &force}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	var out *unstructured.Unstructured
	err = Retry(ctx, RetryPolicy{}, func(ctx context.Context) error {
		var perr error
		out, perr = t.resource.Patch(ctx, t.obj.GetName(), types.ApplyPatchType, data, opts)
		return perr
	})
	if err != nil {
		verb := "apply"
		if dryRun {
			verb = "validate (server-side dry run)"
		}
		return nil, fmt.Errorf("%s %s in namespace %q: %w", verb, t.what, t.namespace, ClassifyAPIError(err))
	}
	return out, nil
}

// ImageChange is the result of setting a Deployment's image.
type ImageChange struct {
	// Previous is the container's image before the change.
	Previous string
	// Unchanged is true when the Deployment already ran the image: nothing
	// was rolled out.
	Unchanged bool
	// Generation is the Deployment's generation after the change.
	Generation int64
}

// SetImage sets the image of one container of an existing Deployment with
// server-side apply (field manager greenlight), recording annotations on
// the Deployment. An empty container name means the Deployment's only
// container, or the one whose repository matches the image.
func SetImage(ctx context.Context, client kubernetes.Interface, namespace, name, container, image string, annotations map[string]string) (change ImageChange, err error) {
	return SetImageAndReplicas(ctx, client, namespace, name, container, image, 0, annotations)
}

// SetImageAndReplicas is SetImage that also sets spec.replicas in the same
// write when replicas is above zero (zero keeps the current count).
func SetImageAndReplicas(ctx context.Context, client kubernetes.Interface, namespace, name, container, image string, replicas int32, annotations map[string]string) (change ImageChange, err error) {
	err = Retry(ctx, RetryPolicy{}, func(ctx context.Context) error {
		var serr error
		change, serr = setImageOnce(ctx, client, namespace, name, container, image, replicas, annotations)
		return serr
	})
	return change, err
}

func setImageOnce(ctx context.Context, client kubernetes.Interface, namespace, name, container, image string, replicas int32, annotations map[string]string) (ImageChange, error) {
	d, err := client.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return ImageChange{}, fmt.Errorf("get deployment %s/%s: %w", namespace, name, ClassifyAPIError(err))
	}
	target, err := pickContainer(d, container, image)
	if err != nil {
		return ImageChange{}, err
	}
	sameReplicas := replicas == 0 || (d.Spec.Replicas != nil && *d.Spec.Replicas == replicas)
	change := ImageChange{Previous: target.Image, Unchanged: target.Image == image}
	if change.Unchanged && sameReplicas {
		change.Generation = d.Generation
		return change, nil
	}
	spec := appsv1apply.DeploymentSpec().WithTemplate(corev1apply.PodTemplateSpec().
		WithSpec(corev1apply.PodSpec().WithContainers(corev1apply.Container().WithName(target.Name).WithImage(image))))
	if replicas > 0 {
		spec = spec.WithReplicas(replicas)
	}
	apply := appsv1apply.Deployment(name, namespace).WithAnnotations(annotations).WithSpec(spec)
	out, err := client.AppsV1().Deployments(namespace).Apply(ctx, apply, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if err != nil {
		return ImageChange{}, fmt.Errorf("set image of deployment %s/%s container %s to %s: %w", namespace, name, target.Name, image, ClassifyAPIError(err))
	}
	change.Generation = out.Generation
	return change, nil
}

// CurrentImage returns the image of the chosen container of a Deployment.
func CurrentImage(d *appsv1.Deployment, container, image string) (string, error) {
	c, err := pickContainer(d, container, image)
	if err != nil {
		return "", err
	}
	return c.Image, nil
}

func pickContainer(d *appsv1.Deployment, name, image string) (struct{ Name, Image string }, error) {
	cs := d.Spec.Template.Spec.Containers
	var found []string
	for _, c := range cs {
		found = append(found, c.Name)
		if name != "" && c.Name == name {
			return struct{ Name, Image string }{c.Name, c.Image}, nil
		}
	}
	if name == "" {
		if len(cs) == 1 {
			return struct{ Name, Image string }{cs[0].Name, cs[0].Image}, nil
		}
		for _, c := range cs {
			if SameRepository(c.Image, image) {
				return struct{ Name, Image string }{c.Name, c.Image}, nil
			}
		}
		return struct{ Name, Image string }{}, fmt.Errorf("deployment %s/%s has several containers (%v) and none runs the repository of %s: set the container input", d.Namespace, d.Name, found, image)
	}
	return struct{ Name, Image string }{}, fmt.Errorf("deployment %s/%s has no container %q; it has %v", d.Namespace, d.Name, name, found)
}
