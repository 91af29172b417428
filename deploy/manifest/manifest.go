// Package manifest renders the kustomize overlays under deploy/ and picks out one function's objects.
package manifest

import (
	"fmt"
	"slices"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// NameLabel names the component an object belongs to (a function, nats, a job).
const NameLabel = "app.kubernetes.io/name"

// Render builds a kustomization directory (a base or an overlay) as `kubectl kustomize` would.
func Render(dir string) ([]*resource.Resource, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", dir, err)
	}
	return m.Resources(), nil
}

// ForFunction keeps the objects labelled with the function's name (its workload, Service,
// ScaledObject, CronJobs, ServiceAccount and its own ConfigMaps) and any other ConfigMap its pods
// read, each once, so applying them deploys that function alone (with the rules it was validated
// against). "nats" names the broker and its setup job the same way.
func ForFunction(all []*resource.Resource, function string) ([]*resource.Resource, error) {
	var out []*resource.Resource
	var configMaps []string
	for _, r := range all {
		if r.GetLabels()[NameLabel] != function {
			continue
		}
		out = append(out, r)
		refs, err := configMapRefs(r)
		if err != nil {
			return nil, err
		}
		configMaps = append(configMaps, refs...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no objects labelled %s=%s", NameLabel, function)
	}
	for _, r := range all {
		// A ConfigMap labelled with the function is in already (a pod reading its own config
		// would otherwise add it twice).
		if r.GetKind() == "ConfigMap" && slices.Contains(configMaps, r.GetName()) && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out, nil
}

// configMapRefs lists the ConfigMaps a workload's pod template mounts or reads into its environment.
// Deployments and Knative Services keep their pod spec at the same path.
func configMapRefs(r *resource.Resource) ([]string, error) {
	spec, err := r.Pipe(yaml.Lookup("spec", "template", "spec"))
	if err != nil || spec == nil {
		return nil, err
	}
	var refs []string
	add := func(n *yaml.RNode, path ...string) {
		if v, _ := n.Pipe(yaml.Lookup(path...)); v != nil {
			refs = append(refs, yaml.GetValue(v))
		}
	}
	visit := func(list string, each func(*yaml.RNode)) error {
		seq, err := spec.Pipe(yaml.Lookup(list))
		if err != nil || seq == nil {
			return err
		}
		return seq.VisitElements(func(n *yaml.RNode) error { each(n); return nil })
	}
	if err := visit("volumes", func(v *yaml.RNode) { add(v, "configMap", "name") }); err != nil {
		return nil, err
	}
	err = visit("containers", func(c *yaml.RNode) {
		if from, _ := c.Pipe(yaml.Lookup("envFrom")); from != nil {
			_ = from.VisitElements(func(e *yaml.RNode) error { add(e, "configMapRef", "name"); return nil })
		}
	})
	return refs, err
}

// SetImage points the function's container at image (a registry reference with tag or digest).
func SetImage(objs []*resource.Resource, function, image string) error {
	set := 0
	for _, r := range objs {
		containers, err := r.Pipe(yaml.Lookup("spec", "template", "spec", "containers"))
		if err != nil || containers == nil {
			continue
		}
		err = containers.VisitElements(func(c *yaml.RNode) error {
			if name, _ := c.Pipe(yaml.Lookup("name")); name == nil || yaml.GetValue(name) != function {
				return nil
			}
			set++
			return c.PipeE(yaml.SetField("image", yaml.NewStringRNode(image)))
		})
		if err != nil {
			return fmt.Errorf("set image of %s: %w", r.GetName(), err)
		}
	}
	if set == 0 {
		return fmt.Errorf("no container named %s", function)
	}
	return nil
}

// YAML joins objects into one multi-document stream for kubectl apply -f -.
func YAML(objs []*resource.Resource) ([]byte, error) {
	var out []byte
	for i, r := range objs {
		b, err := r.AsYAML()
		if err != nil {
			return nil, fmt.Errorf("encode %s/%s: %w", r.GetKind(), r.GetName(), err)
		}
		if i > 0 {
			out = append(out, "---\n"...)
		}
		out = append(out, b...)
	}
	return out, nil
}
