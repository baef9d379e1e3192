package kube

import (
	"fmt"
	"path/filepath"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// kustomizationFiles are the names kustomize accepts for a kustomization.
var kustomizationFiles = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// isKustomization tells a directory that kustomize builds from one whose
// files are applied as they are.
func isKustomization(files ManifestFiles, dir string) bool {
	for _, name := range kustomizationFiles {
		if info, err := files.Stat(filepath.Join(dir, name)); err == nil && !info.IsDir() {
			return true
		}
	}
	return false
}

// RenderKustomization builds the kustomization in dir in process, as
// `kubectl kustomize dir` does with its default options (no plugins, files
// only from within the kustomization's root), and decodes the result.
func RenderKustomization(dir string) ([]*unstructured.Unstructured, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resources, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("render kustomization %q: %w", dir, err)
	}
	data, err := resources.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("render kustomization %q: encode: %w", dir, err)
	}
	objs, err := DecodeManifests(dir+" (rendered by kustomize)", data)
	if err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("render kustomization %q: it produced no objects", dir)
	}
	return objs, nil
}
