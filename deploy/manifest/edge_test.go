package manifest_test

import (
	"os"
	"path"
	"path/filepath"
	"testing"

	"github.com/omnimember/omnimember/shared/credential"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

const visibilityLabel, clusterLocal = "networking.knative.dev/visibility", "cluster-local"

// TestOnlyTheGatewayReachesTheFunctions: no object exposes a function by itself. Knative's public
// domain would serve every path of a Service (/metrics and /healthz among them), so each Knative
// Service is cluster-local and the brand's gateway routes only the credentialed paths; core
// Services stay inside the cluster (no NodePort, no LoadBalancer).
func TestOnlyTheGatewayReachesTheFunctions(t *testing.T) {
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			r := render(t, dir)
			require.NotEmpty(t, r.knative)
			for name, svc := range r.knative {
				assert.Equal(t, clusterLocal, svc.Labels[visibilityLabel], "knative service %s: want label %s: %s", name, visibilityLabel, clusterLocal)
			}
			for _, res := range r.all {
				if res.GetApiVersion() != "v1" || res.GetKind() != "Service" {
					continue
				}
				raw, err := res.AsYAML()
				require.NoError(t, err)
				svc := strictInto[corev1.Service](t, res.GetName(), raw)
				assert.Contains(t, []corev1.ServiceType{"", corev1.ServiceTypeClusterIP}, svc.Spec.Type, "service %s is reachable from outside the cluster", res.GetName())
			}
			for _, res := range r.all {
				assert.NotEqual(t, "Ingress", res.GetKind(), "%s: the edge is the brand's gateway, not an Ingress here", res.GetName())
			}
		})
	}
}

// TestCredentialsComeFromTheSecret: ingest reads its sender tokens and profile its reader tokens
// from files of the omnimember-secrets Secret (keys its template lists), mounted where the
// variable points.
func TestCredentialsComeFromTheSecret(t *testing.T) {
	wants := []struct {
		function, env, key string
	}{
		{"ingest", credential.SendersFileEnv, "sender-tokens.json"},
		{"profile", credential.ReadersFileEnv, "reader-tokens.json"},
	}
	for _, dir := range dirs {
		r := render(t, dir)
		for _, w := range wants {
			svc, ok := r.knative[w.function]
			require.True(t, ok, "%s: knative service %s", dir, w.function)
			pod := svc.Spec.Template.Spec.PodSpec
			file := envValue(pod.Containers[0], w.env)
			require.NotEmpty(t, file, "%s %s: %s is not set", dir, w.function, w.env)
			volume := mountedAt(pod.Containers[0], path.Dir(file))
			require.NotEmpty(t, volume, "%s %s: nothing is mounted at %s", dir, w.function, path.Dir(file))
			source := secretVolume(pod, volume)
			require.NotNil(t, source, "%s %s: volume %s is not a secret", dir, w.function, volume)
			assert.Equal(t, "omnimember-secrets", source.SecretName)
			assert.Contains(t, r.secrets[source.SecretName], w.key, "the template lists the key")
			assert.Contains(t, source.Items, corev1.KeyToPath{Key: w.key, Path: path.Base(file)}, "%s %s: the file %s holds key %s", dir, w.function, file, w.key)
		}
	}
}

func envValue(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

func mountedAt(c corev1.Container, dir string) string {
	for _, m := range c.VolumeMounts {
		if path.Clean(m.MountPath) == dir {
			return m.Name
		}
	}
	return ""
}

func secretVolume(pod corev1.PodSpec, name string) *corev1.SecretVolumeSource {
	for _, v := range pod.Volumes {
		if v.Name == name {
			return v.Secret
		}
	}
	return nil
}

// TestCredentialTemplatesParse: the template's sender and reader lists have the shape the
// functions parse (placeholders aside), so a filled copy keeps it.
func TestCredentialTemplatesParse(t *testing.T) {
	raw, err := os.ReadFile("../secrets/omnimember-secrets.template.yaml")
	require.NoError(t, err)
	s := strictInto[corev1.Secret](t, "omnimember-secrets template", raw)
	_, err = credential.ParseSenders([]byte(s.StringData["sender-tokens.json"]))
	assert.NoError(t, err)
	_, err = credential.ParseReaders([]byte(s.StringData["reader-tokens.json"]))
	assert.NoError(t, err)
}
