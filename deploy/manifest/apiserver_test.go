package manifest_test

import (
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/omnimember/omnimember/deploy/apivalidate"
)

var (
	validatorOnce sync.Once
	validator     *apivalidate.Validator
	validatorErr  error
)

// TestEveryObjectIsWhatAnAPIServerAccepts validates every rendered object of every kustomization
// against the schemas a cluster serves (the Kubernetes release's OpenAPI spec; the Knative, KEDA
// and cert-manager CRDs) and, for built-in kinds, with kube-apiserver's own create-path
// validation (apivalidate); the semantic checks of the other tests come on top.
func TestEveryObjectIsWhatAnAPIServerAccepts(t *testing.T) {
	validatorOnce.Do(func() { validator, validatorErr = apivalidate.FromModules("..") })
	require.NoError(t, validatorErr)
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			r := render(t, dir)
			for _, res := range r.all {
				raw, err := res.AsYAML()
				require.NoError(t, err)
				assert.NoError(t, validator.Validate(raw), "%s %s/%s: got an error, want none", dir, res.GetKind(), res.GetName())
			}
		})
	}
}
