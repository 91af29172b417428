// Package apivalidate checks rendered objects as an API server would, offline: against the schemas
// it serves (a Kubernetes release's OpenAPI v3 spec, the CRDs of Knative, KEDA and cert-manager)
// and, for built-in kinds, with the API server's own validation code after its defaulting.
package apivalidate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	apiextensions "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	crvalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"k8s.io/kube-openapi/pkg/validation/strfmt"
	"k8s.io/kube-openapi/pkg/validation/validate"
	"sigs.k8s.io/yaml"
)

// Validator holds the schemas of every kind it knows, by group, version and kind.
type Validator struct {
	builtin map[schema.GroupVersionKind]*spec.Schema
	crds    map[schema.GroupVersionKind]crvalidation.SchemaValidator
}

// Sources are where the schemas come from: modules the Go proxy serves, as the deploy module
// requires them (so their versions are go.mod's).
var Sources = struct {
	Kubernetes string   // module whose api/openapi-spec/v3 is the API server's published spec
	CRDs       []string // module-relative CRD files
}{
	Kubernetes: "k8s.io/kubernetes",
	CRDs: []string{
		"knative.dev/serving/config/core/300-resources/service.yaml",
		"github.com/kedacore/keda/v2/config/crd/bases/keda.sh_scaledobjects.yaml",
		"github.com/cert-manager/cert-manager/deploy/crds/cert-manager.io_certificates.yaml",
		"github.com/cert-manager/cert-manager/deploy/crds/cert-manager.io_issuers.yaml",
	},
}

// FromModules loads the schemas from the module cache (go list -m), as the go command resolves
// the modules from the directory dir (the deploy module).
func FromModules(dir string) (*Validator, error) {
	k8s, err := moduleDir(dir, Sources.Kubernetes)
	if err != nil {
		return nil, err
	}
	var crds []string
	for _, f := range Sources.CRDs {
		mod, rel, err := splitModulePath(dir, f)
		if err != nil {
			return nil, err
		}
		crds = append(crds, filepath.Join(mod, rel))
	}
	return Load(filepath.Join(k8s, "api", "openapi-spec", "v3"), crds...)
}

// splitModulePath finds which of the deploy module's requirements holds path (module/rel).
func splitModulePath(dir, path string) (string, string, error) {
	parts := strings.Split(path, "/")
	for i := len(parts) - 1; i > 0; i-- {
		if d, err := moduleDir(dir, strings.Join(parts[:i], "/")); err == nil {
			return d, filepath.Join(parts[i:]...), nil
		}
	}
	return "", "", fmt.Errorf("%s: no required module holds it", path)
}

func moduleDir(dir, module string) (string, error) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.Output()
	d := strings.TrimSpace(string(out))
	if err != nil || d == "" {
		return "", fmt.Errorf("module %s: not in the module cache (go mod download): %v", module, err)
	}
	return d, nil
}

// Load reads every group-version file of an OpenAPI v3 spec directory and the CRD files.
func Load(specDir string, crdFiles ...string) (*Validator, error) {
	v := &Validator{builtin: map[schema.GroupVersionKind]*spec.Schema{}, crds: map[schema.GroupVersionKind]crvalidation.SchemaValidator{}}
	files, err := filepath.Glob(filepath.Join(specDir, "*__v*_openapi.json"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no OpenAPI v3 spec in %s", specDir)
	}
	for _, f := range files {
		if err := v.loadSpec(f); err != nil {
			return nil, err
		}
	}
	for _, f := range crdFiles {
		if err := v.loadCRD(f); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func (v *Validator) loadSpec(file string) error {
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var doc spec3.OpenAPI
	if err := json.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if doc.Components == nil {
		return nil
	}
	e := newExpander(doc.Components.Schemas)
	for name, s := range doc.Components.Schemas {
		for _, gvk := range gvks(s) {
			v.builtin[gvk] = e.named(name)
		}
	}
	return nil
}

// gvks reads the x-kubernetes-group-version-kind extension of a top-level kind's schema.
func gvks(s *spec.Schema) []schema.GroupVersionKind {
	ext, ok := s.Extensions["x-kubernetes-group-version-kind"].([]any)
	if !ok {
		return nil
	}
	var out []schema.GroupVersionKind
	for _, e := range ext {
		m, _ := e.(map[string]any)
		g, _ := m["group"].(string)
		ver, _ := m["version"].(string)
		k, _ := m["kind"].(string)
		out = append(out, schema.GroupVersionKind{Group: g, Version: ver, Kind: k})
	}
	return out
}

// expander inlines the $refs kube-openapi's validator does not follow ("#/components/schemas/..."),
// each named schema once: a type that refers to itself (none of the kinds rendered) accepts
// anything below its first level.
type expander struct {
	defs map[string]*spec.Schema
	done map[string]*spec.Schema
	busy map[string]bool
}

func newExpander(defs map[string]*spec.Schema) *expander {
	return &expander{defs: defs, done: map[string]*spec.Schema{}, busy: map[string]bool{}}
}

func (e *expander) named(name string) *spec.Schema {
	if s, ok := e.done[name]; ok {
		return s
	}
	target, ok := e.defs[name]
	if !ok || e.busy[name] {
		return &spec.Schema{}
	}
	e.busy[name] = true
	s := e.expand(target)
	delete(e.busy, name)
	e.done[name] = s
	return s
}

func (e *expander) expand(s *spec.Schema) *spec.Schema {
	if s == nil {
		return &spec.Schema{}
	}
	if ref := s.Ref.String(); ref != "" {
		return e.named(strings.TrimPrefix(ref, "#/components/schemas/"))
	}
	c := *s
	if c.Format == "int-or-string" {
		// The spec writes IntOrString as this format over oneOf integer|string; the validator
		// would take the format for a type name and refuse both. The oneOf says it all.
		c.Format = ""
	}
	c.Properties = map[string]spec.Schema{}
	for k, p := range s.Properties {
		c.Properties[k] = *e.expand(&p)
	}
	if s.Items != nil && s.Items.Schema != nil {
		c.Items = &spec.SchemaOrArray{Schema: e.expand(s.Items.Schema)}
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		c.AdditionalProperties = &spec.SchemaOrBool{Allows: true, Schema: e.expand(s.AdditionalProperties.Schema)}
	}
	c.AllOf, c.AnyOf, c.OneOf = e.all(s.AllOf), e.all(s.AnyOf), e.all(s.OneOf)
	return &c
}

func (e *expander) all(list []spec.Schema) []spec.Schema {
	if list == nil {
		return nil
	}
	out := make([]spec.Schema, len(list))
	for i := range list {
		out[i] = *e.expand(&list[i])
	}
	return out
}

// loadCRD reads a CRD file (possibly several documents) and keeps each served version's schema
// as the API server's validator of custom resources.
func (v *Validator) loadCRD(file string) error {
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	for _, doc := range strings.Split(string(raw), "\n---") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal([]byte(doc), &crd); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		for _, ver := range crd.Spec.Versions {
			if ver.Schema == nil || ver.Schema.OpenAPIV3Schema == nil {
				return fmt.Errorf("%s: version %s has no schema", file, ver.Name)
			}
			var internal apiextensions.JSONSchemaProps
			if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(ver.Schema.OpenAPIV3Schema, &internal, nil); err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			sv, _, err := crvalidation.NewSchemaValidator(&internal)
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			v.crds[schema.GroupVersionKind{Group: crd.Spec.Group, Version: ver.Name, Kind: crd.Spec.Names.Kind}] = sv
		}
	}
	return nil
}

// Validate checks one object (YAML or JSON): against its kind's schema, then, for a built-in kind,
// with the API server's validation. A kind without a schema is an error: nothing would check it.
func (v *Validator) Validate(raw []byte) error {
	json, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return err
	}
	// As the API server reads a body: whole numbers as int64 (an int-or-string port, say).
	var obj map[string]any
	if err := utiljson.Unmarshal(json, &obj); err != nil {
		return err
	}
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	gvk := schema.FromAPIVersionAndKind(apiVersion, kind)
	if sv, ok := v.crds[gvk]; ok {
		return crvalidation.ValidateCustomResource(nil, obj, sv).ToAggregate()
	}
	s, ok := v.builtin[gvk]
	if !ok {
		return fmt.Errorf("%s: no schema", gvk)
	}
	var errs []error
	for _, err := range validate.NewSchemaValidator(s, nil, "", strfmt.Default).Validate(obj).Errors {
		errs = append(errs, fmt.Errorf("schema: %w", err))
	}
	if err := serverValidation(json); err != nil {
		errs = append(errs, fmt.Errorf("api server: %w", err))
	}
	return errors.Join(errs...)
}
