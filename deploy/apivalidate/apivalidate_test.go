package apivalidate_test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/omnimember/omnimember/deploy/apivalidate"
	"github.com/omnimember/omnimember/deploy/manifest"
)

var (
	loadOnce  sync.Once
	validator *apivalidate.Validator
	loadErr   error
)

func load(t *testing.T) *apivalidate.Validator {
	t.Helper()
	loadOnce.Do(func() { validator, loadErr = apivalidate.FromModules(".") })
	require.NoError(t, loadErr)
	return validator
}

// object renders the prod overlay and returns one object as a map.
func object(t *testing.T, kind, name string) map[string]any {
	t.Helper()
	all, err := manifest.Render("../overlays/prod")
	require.NoError(t, err)
	for _, r := range all {
		if r.GetKind() == kind && r.GetName() == name {
			m, err := r.Map()
			require.NoError(t, err)
			return m
		}
	}
	t.Fatalf("no %s %s rendered", kind, name)
	return nil
}

// set changes obj at path (map keys, or an int for a list index).
func set(obj map[string]any, value any, path ...any) {
	var cur any = obj
	for _, p := range path[:len(path)-1] {
		switch k := p.(type) {
		case string:
			cur = cur.(map[string]any)[k]
		case int:
			cur = cur.([]any)[k]
		}
	}
	switch k := path[len(path)-1].(type) {
	case string:
		cur.(map[string]any)[k] = value
	case int:
		cur.([]any)[k] = value
	}
}

// TestValidationFailsWhereAnAPIServerWould: each mutation is one an API server refuses, found by
// the check named; the unchanged objects pass.
func TestValidationFailsWhereAnAPIServerWould(t *testing.T) {
	v := load(t)
	tests := []struct {
		name, kind, object string
		mutate             func(map[string]any)
		want               string // in the error; empty: valid
	}{
		{"deployment as rendered", "Deployment", "match", func(map[string]any) {}, ""},
		{"deployment restartPolicy Never", "Deployment", "match", func(o map[string]any) {
			set(o, "Never", "spec", "template", "spec", "restartPolicy")
		}, `spec.template.spec.restartPolicy: Unsupported value: "Never"`},
		{"service as rendered", "Service", "match", func(map[string]any) {}, ""},
		{"service port protocol HTTP", "Service", "match", func(o map[string]any) {
			set(o, "HTTP", "spec", "ports", 0, "protocol")
		}, `spec.ports[0].protocol: Unsupported value: "HTTP"`},
		{"cronjob a string where a number goes", "CronJob", "points-expire", func(o map[string]any) {
			set(o, "soon", "spec", "startingDeadlineSeconds")
		}, "spec.startingDeadlineSeconds"},
		{"knative service as rendered", "Service", "ingest", func(map[string]any) {}, ""},
		{"knative service negative timeout", "Service", "ingest", func(o map[string]any) {
			set(o, "thirty", "spec", "template", "spec", "timeoutSeconds")
		}, "timeoutSeconds"},
		{"scaledobject as rendered", "ScaledObject", "match", func(map[string]any) {}, ""},
		{"scaledobject a trigger without a type", "ScaledObject", "match", func(o map[string]any) {
			delete(o["spec"].(map[string]any)["triggers"].([]any)[0].(map[string]any), "type")
		}, "type"},
		{"certificate as rendered", "Certificate", "nats-server", func(map[string]any) {}, ""},
		{"certificate an unknown key usage", "Certificate", "nats-server", func(o map[string]any) {
			set(o, []any{"server auth", "tea making"}, "spec", "usages")
		}, "usages"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := object(t, tt.kind, tt.object)
			tt.mutate(obj)
			raw, err := yaml.Marshal(obj)
			require.NoError(t, err)
			got := v.Validate(raw)
			if tt.want == "" {
				assert.NoError(t, got, "got an error, want none")
				return
			}
			require.Error(t, got, "got no error, want one naming %s", tt.want)
			assert.Contains(t, got.Error(), tt.want, "got, want in it")
		})
	}
}

// TestAKindWithoutASchemaFails: nothing would check it, so it is an error.
func TestAKindWithoutASchemaFails(t *testing.T) {
	err := load(t).Validate([]byte("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no schema")
}
