package manifest_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	certmanagerv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	"sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/omnimember/omnimember/deploy/manifest"
)

// dirs are every kustomization a cluster may be given.
var dirs = []string{"../base", "../overlays/dev", "../overlays/prod"}

// rendered is one kustomization's output, decoded into the engines' own API types.
type rendered struct {
	dir             string
	all             []*resource.Resource
	deployments     map[string]appsv1.Deployment
	statefulSets    map[string]appsv1.StatefulSet
	knative         map[string]servingv1.Service
	scaled          map[string]kedav1alpha1.ScaledObject
	configMaps      map[string]corev1.ConfigMap
	cronJobs        map[string]batchv1.CronJob
	jobs            map[string]batchv1.Job
	serviceAccounts map[string]corev1.ServiceAccount
	certificates    map[string]certmanagerv1.Certificate
	issuers         map[string]certmanagerv1.Issuer
	secrets         map[string][]string // deploy/secrets templates and Certificates' Secrets: name → keys
}

func render(t *testing.T, dir string) *rendered {
	t.Helper()
	all, err := manifest.Render(dir)
	require.NoError(t, err)
	r := &rendered{dir: dir, all: all, deployments: map[string]appsv1.Deployment{}, statefulSets: map[string]appsv1.StatefulSet{},
		knative: map[string]servingv1.Service{}, scaled: map[string]kedav1alpha1.ScaledObject{},
		configMaps: map[string]corev1.ConfigMap{}, cronJobs: map[string]batchv1.CronJob{}, jobs: map[string]batchv1.Job{}, serviceAccounts: map[string]corev1.ServiceAccount{}, secrets: secretTemplates(t),
		certificates: map[string]certmanagerv1.Certificate{}, issuers: map[string]certmanagerv1.Issuer{}}
	for _, res := range all {
		r.decode(t, res)
	}
	for _, c := range r.certificates {
		r.secrets[c.Spec.SecretName] = []string{"tls.crt", "tls.key", "ca.crt"} // what cert-manager writes
	}
	return r
}

// decode reads one object strictly (an unknown or misspelt field fails) into its real API type and
// runs that type's own validation where the engine publishes it. A kind nobody validates fails.
func (r *rendered) decode(t *testing.T, res *resource.Resource) {
	t.Helper()
	raw, err := res.AsYAML()
	require.NoError(t, err)
	name := res.GetName()
	where := r.dir + ": " + res.GetApiVersion() + " " + res.GetKind() + " " + name
	switch res.GetApiVersion() + "/" + res.GetKind() {
	case "serving.knative.dev/v1/Service":
		r.knative[name] = strictInto[servingv1.Service](t, where, raw)
	case "keda.sh/v1alpha1/ScaledObject":
		r.scaled[name] = strictInto[kedav1alpha1.ScaledObject](t, where, raw)
	case "apps/v1/Deployment":
		r.deployments[name] = strictInto[appsv1.Deployment](t, where, raw)
	case "apps/v1/StatefulSet":
		r.statefulSets[name] = strictInto[appsv1.StatefulSet](t, where, raw)
	case "v1/ConfigMap":
		r.configMaps[name] = strictInto[corev1.ConfigMap](t, where, raw)
	case "batch/v1/CronJob":
		r.cronJobs[name] = strictInto[batchv1.CronJob](t, where, raw)
	case "batch/v1/Job":
		r.jobs[name] = strictInto[batchv1.Job](t, where, raw)
	case "v1/Service":
		strictInto[corev1.Service](t, where, raw)
	case "v1/Namespace":
		strictInto[corev1.Namespace](t, where, raw)
	case "v1/ServiceAccount":
		r.serviceAccounts[name] = strictInto[corev1.ServiceAccount](t, where, raw)
	case "policy/v1/PodDisruptionBudget":
		pdb := strictInto[policyv1.PodDisruptionBudget](t, where, raw)
		checkSelector(t, where, pdb.Spec.Selector, nil)
	case "cert-manager.io/v1/Certificate":
		r.certificates[name] = strictInto[certmanagerv1.Certificate](t, where, raw)
	case "cert-manager.io/v1/Issuer":
		r.issuers[name] = strictInto[certmanagerv1.Issuer](t, where, raw)
	case "networking.k8s.io/v1/NetworkPolicy":
		np := strictInto[networkingv1.NetworkPolicy](t, where, raw)
		checkSelector(t, where, &np.Spec.PodSelector, nil)
	default:
		t.Errorf("%s: no validator for this kind; add one before deploying it", where)
	}
}

func strictInto[T any](t *testing.T, where string, raw []byte) T {
	t.Helper()
	var obj T
	assert.NoError(t, yaml.UnmarshalStrict(raw, &obj), where)
	if o, ok := any(&obj).(metav1.Object); ok {
		errs := apivalidation.ValidateObjectMeta(asObjectMeta(o), o.GetNamespace() != "", apivalidation.NameIsDNSSubdomain, field.NewPath("metadata"))
		assert.Empty(t, errs, where)
	}
	return obj
}

func asObjectMeta(o metav1.Object) *metav1.ObjectMeta {
	return &metav1.ObjectMeta{Name: o.GetName(), Namespace: o.GetNamespace(), Labels: o.GetLabels(), Annotations: o.GetAnnotations()}
}

// checkSelector validates a label selector and, given pod labels, that it selects them.
func checkSelector(t *testing.T, where string, sel *metav1.LabelSelector, podLabels map[string]string) {
	t.Helper()
	require.NotNil(t, sel, where)
	assert.Empty(t, metav1validation.ValidateLabelSelector(sel, metav1validation.LabelSelectorValidationOptions{}, field.NewPath("selector")), where)
	s, err := metav1.LabelSelectorAsSelector(sel)
	require.NoError(t, err, where)
	if podLabels != nil {
		assert.True(t, s.Matches(labels.Set(podLabels)), "%s: selector %v does not select its pods %v", where, s, podLabels)
	}
}

func TestEveryKustomizationRendersIntoValidObjects(t *testing.T) {
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			r := render(t, dir)
			require.NotEmpty(t, r.all)
			ctx := context.Background()
			for name, svc := range r.knative {
				svc.SetDefaults(ctx)
				if err := svc.Validate(ctx); err != nil {
					t.Errorf("knative service %s: %v", name, err)
				}
				r.checkPod(t, "knative service "+name, svc.Spec.Template.Spec.PodSpec)
				r.checkNATSClient(t, "knative service "+name, svc.Spec.Template.Labels, svc.Spec.Template.Spec.PodSpec)
			}
			for name, d := range r.deployments {
				r.checkNATSClient(t, "deployment "+name, d.Spec.Template.Labels, d.Spec.Template.Spec)
				checkSelector(t, "deployment "+name, d.Spec.Selector, d.Spec.Template.Labels)
				r.checkPod(t, "deployment "+name, d.Spec.Template.Spec)
			}
			for name, s := range r.statefulSets {
				checkSelector(t, "statefulset "+name, s.Spec.Selector, s.Spec.Template.Labels)
				r.checkPod(t, "statefulset "+name, s.Spec.Template.Spec)
			}
			for name, c := range r.cronJobs {
				r.checkCronJob(t, name, c)
			}
			for name, j := range r.jobs {
				r.checkNATSClient(t, "job "+name, j.Spec.Template.Labels, j.Spec.Template.Spec)
				r.checkPod(t, "job "+name, j.Spec.Template.Spec)
			}
			for name, so := range r.scaled {
				r.checkScaledObject(t, name, so)
			}
		})
	}
}

// checkPod holds every workload to the same bar: non-root, read-only root, resources and probes set,
// and every ConfigMap or Secret it names exists (rendered, or templated under deploy/secrets).
func (r *rendered) checkPod(t *testing.T, where string, pod corev1.PodSpec) {
	t.Helper()
	require.NotEmpty(t, pod.Containers, where)
	for _, c := range pod.Containers {
		w := where + " container " + c.Name
		assert.NotEmpty(t, c.Image, w)
		assert.False(t, c.Resources.Requests.Memory().IsZero(), "%s: no memory request", w)
		assert.False(t, c.Resources.Limits.Memory().IsZero(), "%s: no memory limit", w)
		nonRoot := (pod.SecurityContext != nil && pod.SecurityContext.RunAsNonRoot != nil && *pod.SecurityContext.RunAsNonRoot) ||
			(c.SecurityContext != nil && c.SecurityContext.RunAsNonRoot != nil && *c.SecurityContext.RunAsNonRoot)
		assert.True(t, nonRoot, "%s: may run as root", w)
		require.NotNil(t, c.SecurityContext, w)
		assert.True(t, c.SecurityContext.ReadOnlyRootFilesystem != nil && *c.SecurityContext.ReadOnlyRootFilesystem, "%s: writable root", w)
		for _, from := range c.EnvFrom {
			if from.ConfigMapRef != nil {
				assert.Contains(t, r.configMaps, from.ConfigMapRef.Name, w)
			}
		}
		for _, e := range c.Env {
			if ref := e.ValueFrom; ref != nil && ref.SecretKeyRef != nil {
				keys, ok := r.secrets[ref.SecretKeyRef.Name]
				assert.True(t, ok, "%s: env %s names secret %s, which has no template", w, e.Name, ref.SecretKeyRef.Name)
				assert.Contains(t, keys, ref.SecretKeyRef.Key, "%s: env %s", w, e.Name)
			}
		}
	}
	for _, v := range pod.Volumes {
		if v.ConfigMap != nil {
			assert.Contains(t, r.configMaps, v.ConfigMap.Name, where)
		}
		if v.Secret != nil {
			r.checkSecretItems(t, where+" volume "+v.Name, v.Secret.SecretName, v.Secret.Items)
		}
		if v.Projected != nil {
			for _, src := range v.Projected.Sources {
				if src.Secret != nil {
					r.checkSecretItems(t, where+" volume "+v.Name, src.Secret.Name, src.Secret.Items)
				}
			}
		}
	}
}

// checkSecretItems: a mounted Secret is templated under deploy/secrets or written by a rendered
// Certificate, and has every key the pod projects.
func (r *rendered) checkSecretItems(t *testing.T, where, name string, items []corev1.KeyToPath) {
	t.Helper()
	keys, ok := r.secrets[name]
	if !assert.True(t, ok, "%s: Secret %s has no template and no Certificate writes it", where, name) {
		return
	}
	for _, it := range items {
		assert.Contains(t, keys, it.Key, "%s: Secret %s", where, name)
	}
}

// secretTemplates reads deploy/secrets strictly as Secrets: name → keys.
func secretTemplates(t *testing.T) map[string][]string {
	t.Helper()
	paths, err := filepath.Glob("../secrets/*.template.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, paths)
	out := map[string][]string{}
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		require.NoError(t, err)
		s := strictInto[corev1.Secret](t, p, raw)
		for k, v := range s.StringData {
			assert.Contains(t, v, "REPLACE", "%s: key %s looks like a real secret; templates hold placeholders", p, k)
			out[s.Name] = append(out[s.Name], k)
		}
	}
	return out
}

func (r *rendered) checkCronJob(t *testing.T, name string, c batchv1.CronJob) {
	t.Helper()
	where := "cronjob " + name
	_, err := cronParser.Parse(c.Spec.Schedule)
	assert.NoError(t, err, where)
	if c.Spec.TimeZone != nil {
		_, err := loadLocation(*c.Spec.TimeZone)
		assert.NoError(t, err, where)
	}
	r.checkPod(t, where, c.Spec.JobTemplate.Spec.Template.Spec)
}

func (r *rendered) checkScaledObject(t *testing.T, name string, so kedav1alpha1.ScaledObject) {
	t.Helper()
	where := "scaledobject " + name
	assert.NoError(t, kedav1alpha1.ValidateTriggers(so.Spec.Triggers), where)
	assert.NoError(t, kedav1alpha1.CheckReplicaCountBoundsAreValid(&so), where)
	assert.NoError(t, kedav1alpha1.CheckFallbackValid(&so), where)
	target, ok := r.deployments[so.Spec.ScaleTargetRef.Name]
	require.True(t, ok, "%s: scales deployment %s, which is not rendered", where, so.Spec.ScaleTargetRef.Name)
	for _, tr := range so.Spec.Triggers {
		switch tr.Type {
		case "nats-jetstream":
			checkJetStreamTrigger(t, where, tr.Metadata, target)
		case "cron":
			_, err := cronParser.Parse(tr.Metadata["start"])
			assert.NoError(t, err, where)
			_, err = cronParser.Parse(tr.Metadata["end"])
			assert.NoError(t, err, where)
			_, err = loadLocation(tr.Metadata["timezone"])
			assert.NoError(t, err, where)
		default:
			t.Errorf("%s: trigger %s has no check", where, tr.Type)
		}
	}
}

func TestFunctionsAllHaveManifests(t *testing.T) {
	r := render(t, "../base")
	for _, f := range functionNames(t) {
		_, knative := r.knative[f]
		_, deployment := r.deployments[f]
		assert.True(t, knative || deployment, "function %s has no Knative Service or Deployment", f)
		objs, err := manifest.ForFunction(r.all, f)
		require.NoError(t, err)
		for _, o := range objs {
			assert.Equal(t, f, o.GetLabels()[manifest.NameLabel], "object %s/%s: got the component, want the function", o.GetKind(), o.GetName())
		}
	}
}

// functionNames lists functions/ as the repository has them, so a new function without manifests fails.
func functionNames(t *testing.T) []string {
	t.Helper()
	mods, err := filepath.Glob("../../functions/*/go.mod")
	require.NoError(t, err)
	require.NotEmpty(t, mods)
	var out []string
	for _, m := range mods {
		out = append(out, filepath.Base(filepath.Dir(m)))
	}
	return out
}

func TestForFunctionTakesItsObjectsConfigMapsAndImage(t *testing.T) {
	all, err := manifest.Render("../overlays/dev")
	require.NoError(t, err)
	objs, err := manifest.ForFunction(all, "match")
	require.NoError(t, err)
	var got []string
	for _, o := range objs {
		name := o.GetName()
		if o.GetKind() == "ConfigMap" { // kustomize appends a hash of the content
			name = name[:strings.LastIndex(name, "-")]
		}
		got = append(got, o.GetKind()+"/"+name)
	}
	assert.ElementsMatch(t, []string{"Deployment/match", "Service/match", "ScaledObject/match", "ServiceAccount/match",
		"ConfigMap/match-config", "ConfigMap/match-rules"}, got, "got, want")

	require.NoError(t, manifest.SetImage(objs, "match", "registry.example.com/omnimember/match@sha256:"+strings.Repeat("a", 64)))
	out, err := manifest.YAML(objs)
	require.NoError(t, err)
	assert.Contains(t, string(out), "image: registry.example.com/omnimember/match@sha256:")
	assert.NotContains(t, string(out), "image: omnimember/match\n")

	_, err = manifest.ForFunction(all, "nope")
	assert.Error(t, err)
	assert.Error(t, manifest.SetImage(objs, "ingest", "x"))
}

// TestKubectlRendersTheSame runs the real `kubectl kustomize` (kubectl's own kustomize) where
// kubectl is installed and checks it renders the same objects the tests validate.
func TestKubectlRendersTheSame(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not installed; the library render above is kubectl's kustomize")
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			out, err := exec.Command(kubectl, "kustomize", dir).Output()
			require.NoError(t, err)
			var got []string
			for _, doc := range strings.Split(string(out), "\n---\n") {
				var obj metav1.PartialObjectMetadata
				require.NoError(t, yaml.Unmarshal([]byte(doc), &obj))
				got = append(got, obj.Kind+"/"+obj.Name)
			}
			var want []string
			for _, r := range render(t, dir).all {
				want = append(want, r.GetKind()+"/"+r.GetName())
			}
			assert.ElementsMatch(t, want, got, "kubectl kustomize %s: got, want", dir)
		})
	}
}
