package kube

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// ErrNoContainerMatched is wrapped by SubstituteImage when no container
// matched the name or repository it looked for.
var ErrNoContainerMatched = errors.New("no container matched")

// isManifestFile tells which files of a directory are manifests.
func isManifestFile(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	default:
		return false
	}
}

// decoderBufferSize is how far the decoder looks ahead to tell JSON from YAML.
const decoderBufferSize = 4096

// ManifestFiles is the file access LoadManifests needs. OSFiles reads the
// local disk; paths are passed through as the user wrote them.
type ManifestFiles interface {
	// Stat describes the named file or directory.
	Stat(name string) (fs.FileInfo, error)
	// ReadFile returns the named file's contents.
	ReadFile(name string) ([]byte, error)
	// ReadDir lists the named directory, sorted by name.
	ReadDir(name string) ([]fs.DirEntry, error)
	// Glob returns the names matching pattern, as filepath.Glob does.
	Glob(pattern string) ([]string, error)
}

// OSFiles is ManifestFiles over the operating system's file system.
type OSFiles struct{}

// Stat calls os.Stat.
func (OSFiles) Stat(name string) (fs.FileInfo, error) { return os.Stat(name) }

// ReadFile calls os.ReadFile.
func (OSFiles) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }

// ReadDir calls os.ReadDir.
func (OSFiles) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }

// Glob calls filepath.Glob.
func (OSFiles) Glob(pattern string) ([]string, error) { return filepath.Glob(pattern) }

// LoadManifests reads the Kubernetes objects named by patterns, in order.
// Each pattern is a file, a directory (its *.yaml, *.yml and *.json files,
// sorted, not recursing; or, when it holds a kustomization.yaml, what
// kustomize builds from it) or a glob. Files may hold several YAML documents or
// JSON objects; empty documents are skipped and List kinds are flattened. A
// path that does not exist, a glob or directory that yields no file, an
// object without apiVersion, kind or metadata.name, and an object defined
// twice are errors naming the file and document.
func LoadManifests(files ManifestFiles, patterns []string) ([]*unstructured.Unstructured, error) {
	if len(patterns) == 0 {
		return nil, errors.New("load manifests: no manifest paths given")
	}
	paths, err := expandManifestPatterns(files, patterns)
	if err != nil {
		return nil, err
	}
	var (
		objs  []*unstructured.Unstructured
		where = map[objectKey]string{}
	)
	for _, path := range paths {
		found, err := readManifestPath(files, path)
		if err != nil {
			return nil, err
		}
		for _, f := range found {
			key := keyOf(f.obj)
			if first, dup := where[key]; dup {
				return nil, fmt.Errorf("manifest %s: %s is already defined in %s", f.where, objectName(f.obj), first)
			}
			where[key] = f.where
			objs = append(objs, f.obj)
		}
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("load manifests: no Kubernetes objects in %s", quoteList(paths))
	}
	return objs, nil
}

// readManifestPath decodes one manifest file, or renders a kustomization
// directory.
func readManifestPath(files ManifestFiles, path string) ([]decodedObject, error) {
	if info, err := files.Stat(path); err == nil && info.IsDir() {
		objs, err := RenderKustomization(path)
		if err != nil {
			return nil, err
		}
		out := make([]decodedObject, len(objs))
		for i, obj := range objs {
			out[i] = decodedObject{obj: obj, where: fmt.Sprintf("%q (kustomize) object %d", path, i+1)}
		}
		return out, nil
	}
	data, err := files.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read manifest %q: %w", path, err)
	}
	return decodeManifestDocs(path, data)
}

// DecodeManifests decodes the YAML documents or JSON objects in data; name
// identifies the source in errors. It applies LoadManifests' rules for one
// file, without the duplicate check.
func DecodeManifests(name string, data []byte) ([]*unstructured.Unstructured, error) {
	found, err := decodeManifestDocs(name, data)
	if err != nil {
		return nil, err
	}
	objs := make([]*unstructured.Unstructured, len(found))
	for i, f := range found {
		objs[i] = f.obj
	}
	return objs, nil
}

// expandManifestPatterns turns patterns into file paths, each once, in the
// order first named.
func expandManifestPatterns(files ManifestFiles, patterns []string) ([]string, error) {
	var (
		out  []string
		seen = map[string]bool{}
	)
	add := func(p string) {
		if clean := filepath.Clean(p); !seen[clean] {
			seen[clean] = true
			out = append(out, p)
		}
	}
	for _, pattern := range patterns {
		if strings.TrimSpace(pattern) == "" {
			return nil, errors.New("load manifests: a manifest path is empty")
		}
		if !strings.ContainsAny(pattern, "*?[") {
			paths, err := expandManifestPath(files, pattern)
			if err != nil {
				return nil, err
			}
			for _, p := range paths {
				add(p)
			}
			continue
		}
		matches, err := files.Glob(pattern)
		if err != nil {
			return nil, fmt.Errorf("manifest pattern %q: %w", pattern, err)
		}
		if len(matches) == 0 {
			return nil, fmt.Errorf("manifest pattern %q matches no files", pattern)
		}
		slices.Sort(matches)
		for _, m := range matches {
			paths, err := expandManifestPath(files, m)
			if err != nil {
				return nil, err
			}
			for _, p := range paths {
				add(p)
			}
		}
	}
	return out, nil
}

// expandManifestPath returns a file as itself and a directory as its
// manifest files.
func expandManifestPath(files ManifestFiles, path string) ([]string, error) {
	info, err := files.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("manifest path %q does not exist: %w", path, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("manifest path %q: %w", path, err)
	}
	if !info.IsDir() || isKustomization(files, path) {
		return []string{path}, nil // a kustomization is rendered as a whole
	}
	entries, err := files.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("list manifest directory %q: %w", path, err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() || !isManifestFile(e.Name()) {
			continue
		}
		out = append(out, filepath.Join(path, e.Name()))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("manifest directory %q has no .yaml, .yml or .json files", path)
	}
	slices.Sort(out)
	return out, nil
}

type decodedObject struct {
	obj   *unstructured.Unstructured
	where string // `"file" document N[, item M]`, for messages
}

func decodeManifestDocs(name string, data []byte) ([]decodedObject, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), decoderBufferSize)
	var out []decodedObject
	for doc := 1; ; doc++ {
		where := fmt.Sprintf("%q document %d", name, doc)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("parse manifest %s: %w", where, err)
		}
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
			continue
		}
		var content map[string]any
		if err := utiljson.Unmarshal(raw, &content); err != nil {
			return nil, fmt.Errorf("parse manifest %s: not a Kubernetes object (expected a mapping with apiVersion, kind and metadata)", where)
		}
		obj := &unstructured.Unstructured{Object: content}
		if err := checkManifestObject(obj); err != nil {
			return nil, fmt.Errorf("parse manifest %s: %w", where, err)
		}
		if !isList(obj) {
			out = append(out, decodedObject{obj: obj, where: where})
			continue
		}
		items, _ := obj.Object["items"].([]any)
		for i, item := range items {
			itemWhere := fmt.Sprintf("%s, item %d", where, i+1)
			m, ok := item.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("parse manifest %s: not a Kubernetes object", itemWhere)
			}
			itemObj := &unstructured.Unstructured{Object: m}
			if err := checkManifestObject(itemObj); err != nil {
				return nil, fmt.Errorf("parse manifest %s: %w", itemWhere, err)
			}
			if isList(itemObj) {
				return nil, fmt.Errorf("parse manifest %s: a List inside a List is not supported", itemWhere)
			}
			out = append(out, decodedObject{obj: itemObj, where: itemWhere})
		}
	}
}

// checkManifestObject asks for what server-side apply needs to address an
// object. A List needs only apiVersion and kind.
func checkManifestObject(obj *unstructured.Unstructured) error {
	var missing []string
	if s, _, _ := unstructured.NestedString(obj.Object, "apiVersion"); s == "" {
		missing = append(missing, "apiVersion")
	}
	if s, _, _ := unstructured.NestedString(obj.Object, "kind"); s == "" {
		missing = append(missing, "kind")
	}
	if len(missing) == 0 && isList(obj) {
		if items, ok := obj.Object["items"]; ok && items != nil {
			if _, isSlice := items.([]any); !isSlice {
				return fmt.Errorf("items of a %s must be a sequence", obj.GetKind())
			}
		}
		return nil
	}
	if s, _, _ := unstructured.NestedString(obj.Object, "metadata", "name"); s == "" {
		missing = append(missing, "metadata.name")
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	return nil
}

// isList tells a List ("List", "ConfigMapList", …) from an object that
// merely has an items field.
func isList(obj *unstructured.Unstructured) bool {
	return strings.HasSuffix(obj.GetKind(), "List")
}

type objectKey struct {
	group, kind, namespace, name string
}

func keyOf(obj *unstructured.Unstructured) objectKey {
	gvk := obj.GroupVersionKind()
	return objectKey{group: gvk.Group, kind: gvk.Kind, namespace: obj.GetNamespace(), name: obj.GetName()}
}

// objectName is "Kind/name", the way kubectl names an object.
func objectName(obj *unstructured.Unstructured) string {
	return obj.GetKind() + "/" + obj.GetName()
}

// Substitution records one container image SubstituteImage replaced.
type Substitution struct {
	// Object is "Kind/name", such as "Deployment/payment-api".
	Object string
	// Container is the container's name.
	Container string
	// From is the image before.
	From string
	// To is the image after.
	To string
}

// podSpecPath gives where a workload kind keeps its pod spec; ok is false for
// kinds that run no containers.
func podSpecPath(gk schema.GroupKind) (path []string, ok bool) {
	switch gk {
	case schema.GroupKind{Kind: "Pod"}:
		return []string{"spec"}, true
	case schema.GroupKind{Group: "apps", Kind: "Deployment"},
		schema.GroupKind{Group: "apps", Kind: "StatefulSet"},
		schema.GroupKind{Group: "apps", Kind: "DaemonSet"},
		schema.GroupKind{Group: "batch", Kind: "Job"}:
		return []string{"spec", "template", "spec"}, true
	case schema.GroupKind{Group: "batch", Kind: "CronJob"}:
		return []string{"spec", "jobTemplate", "spec", "template", "spec"}, true
	default:
		return nil, false
	}
}

type containerSlot struct {
	obj       *unstructured.Unstructured
	path      []string // to the containers or initContainers list
	index     int
	name      string
	image     string
	matched   bool
	objectRef string
}

// SubstituteImage sets image on the workload containers (in Deployments,
// StatefulSets, DaemonSets, Jobs, CronJobs and Pods, init containers
// included) named containerName, or, when containerName is empty, on those
// whose image is from the same repository as image. The whole reference is
// replaced, tag or digest included. objs are changed in place only when at
// least one container matched; otherwise the error lists the containers
// found.
func SubstituteImage(objs []*unstructured.Unstructured, containerName, image string) ([]Substitution, error) {
	want, err := ParseImage(image)
	if err != nil {
		return nil, fmt.Errorf("substitute image: %w", err)
	}
	var slots []containerSlot
	for _, obj := range objs {
		specPath, ok := podSpecPath(obj.GroupVersionKind().GroupKind())
		if !ok {
			continue
		}
		for _, field := range []string{"containers", "initContainers"} {
			path := append(slices.Clone(specPath), field)
			list, found, err := unstructured.NestedSlice(obj.Object, path...)
			if err != nil {
				return nil, fmt.Errorf("substitute image in %s: %s: %w", objectName(obj), strings.Join(path, "."), err)
			}
			if !found {
				continue
			}
			for i, item := range list {
				c, isMap := item.(map[string]any)
				if !isMap {
					return nil, fmt.Errorf("substitute image in %s: %s[%d] is not a container", objectName(obj), strings.Join(path, "."), i)
				}
				name, _ := c["name"].(string)
				img, _ := c["image"].(string)
				slot := containerSlot{obj: obj, path: path, index: i, name: name, image: img, objectRef: objectName(obj)}
				if containerName != "" {
					slot.matched = name == containerName
				} else {
					slot.matched = img != "" && SameRepository(img, image)
				}
				slots = append(slots, slot)
			}
		}
	}

	if !slices.ContainsFunc(slots, func(s containerSlot) bool { return s.matched }) {
		return nil, noContainerError(slots, containerName, want, len(objs))
	}

	var subs []Substitution
	for _, s := range slots {
		if !s.matched {
			continue
		}
		list, _, _ := unstructured.NestedSlice(s.obj.Object, s.path...)
		list[s.index].(map[string]any)["image"] = image
		if err := unstructured.SetNestedSlice(s.obj.Object, list, s.path...); err != nil {
			return nil, fmt.Errorf("substitute image in %s: %w", s.objectRef, err)
		}
		subs = append(subs, Substitution{Object: s.objectRef, Container: s.name, From: s.image, To: image})
	}
	return subs, nil
}

func noContainerError(slots []containerSlot, containerName string, want ImageRef, objects int) error {
	lookedFor := fmt.Sprintf("no container uses repository %q", want.FullRepository())
	if containerName != "" {
		lookedFor = fmt.Sprintf("no container is named %q", containerName)
	}
	if len(slots) == 0 {
		return fmt.Errorf("substitute image: %w: %s; the %d manifest objects hold no Deployment, StatefulSet, DaemonSet, Job, CronJob or Pod with containers",
			ErrNoContainerMatched, lookedFor, objects)
	}
	var found []string
	for _, s := range slots {
		found = append(found, fmt.Sprintf("%s %s (%s)", s.objectRef, s.name, s.image))
	}
	return fmt.Errorf("substitute image: %w: %s; containers found: %s", ErrNoContainerMatched, lookedFor, strings.Join(found, ", "))
}
