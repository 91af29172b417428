package manifest_test

import (
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/omnimember/omnimember/deploy/manifest"
	"github.com/omnimember/omnimember/deploy/natsauth"
)

// workload is a rendered pod template and the component (function, or nats) its object belongs to.
type workload struct {
	component, where string
	pod              corev1.PodSpec
}

func (r *rendered) workloads() []workload {
	var out []workload
	for n, s := range r.knative {
		out = append(out, workload{s.Labels[manifest.NameLabel], "knative service " + n, s.Spec.Template.Spec.PodSpec})
	}
	for n, d := range r.deployments {
		out = append(out, workload{d.Labels[manifest.NameLabel], "deployment " + n, d.Spec.Template.Spec})
	}
	for n, s := range r.statefulSets {
		out = append(out, workload{s.Labels[manifest.NameLabel], "statefulset " + n, s.Spec.Template.Spec})
	}
	for n, c := range r.cronJobs {
		out = append(out, workload{c.Labels[manifest.NameLabel], "cronjob " + n, c.Spec.JobTemplate.Spec.Template.Spec})
	}
	for n, j := range r.jobs {
		out = append(out, workload{j.Labels[manifest.NameLabel], "job " + n, j.Spec.Template.Spec})
	}
	return out
}

// components are what deploys alone: each function, and nats (the broker and its setup job).
func components() []string { return append(append([]string(nil), natsauth.Functions...), "nats") }

// TestScaledDeploymentsLeaveReplicasToKEDA: a Deployment KEDA scales carries no replicas, or every
// kubectl apply would set it back (to zero while KEDA's minimum is one) until the HPA corrects it.
func TestScaledDeploymentsLeaveReplicasToKEDA(t *testing.T) {
	for _, dir := range dirs {
		r := render(t, dir)
		require.NotEmpty(t, r.scaled)
		for name, so := range r.scaled {
			d := r.deployments[so.Spec.ScaleTargetRef.Name]
			assert.Nil(t, d.Spec.Replicas, "%s: deployment %s, scaled by scaledobject %s: got replicas, want none", dir, d.Name, name)
		}
	}
}

// TestEachComponentRendersAlone: make render FUNC=x holds every object x needs — its workload, its
// CronJobs, its own ConfigMaps and ServiceAccount — each once, and no object of another component,
// so applying it after make deploy-platform touches nothing else. Every object but the namespace
// belongs to one component.
func TestEachComponentRendersAlone(t *testing.T) {
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			r := render(t, dir)
			owner := map[string]string{} // kind/name → component
			for _, c := range components() {
				objs, err := manifest.ForFunction(r.all, c)
				require.NoError(t, err)
				mine := map[string]bool{}
				for _, o := range objs {
					key := o.GetKind() + "/" + o.GetName()
					assert.False(t, mine[key], "%s: %s rendered twice", c, key)
					mine[key] = true
					if other, ok := owner[key]; ok {
						t.Errorf("%s: %s is applied with %s too", c, key, other)
					}
					owner[key] = c
				}
				r.checkAlone(t, c, mine)
			}
			for _, o := range r.all {
				key := o.GetKind() + "/" + o.GetName()
				if o.GetKind() != "Namespace" {
					assert.Contains(t, owner, key, "%s belongs to no component: make deploy never applies it", key)
				}
			}
		})
	}
}

// checkAlone: what component's pods name (ConfigMaps, ServiceAccounts) and the CronJobs that call
// its Service are in its render (mine).
func (r *rendered) checkAlone(t *testing.T, component string, mine map[string]bool) {
	t.Helper()
	for _, w := range r.workloads() {
		if w.component != component {
			continue
		}
		if sa := w.pod.ServiceAccountName; sa != "" {
			assert.True(t, mine["ServiceAccount/"+sa], "%s: %s runs as ServiceAccount %s, not in its render", component, w.where, sa)
		}
		for _, cm := range podConfigMaps(w.pod) {
			assert.True(t, mine["ConfigMap/"+cm], "%s: %s reads ConfigMap %s, not in its render", component, w.where, cm)
		}
	}
	host := component + ".omnimember.svc.cluster.local"
	for name, c := range r.cronJobs {
		for _, ctr := range c.Spec.JobTemplate.Spec.Template.Spec.Containers {
			if strings.Contains(strings.Join(ctr.Args, " "), "//"+host) {
				assert.True(t, mine["CronJob/"+name], "%s: cronjob %s calls it, not in its render", component, name)
			}
		}
	}
}

func podConfigMaps(pod corev1.PodSpec) []string {
	var out []string
	for _, v := range pod.Volumes {
		if v.ConfigMap != nil {
			out = append(out, v.ConfigMap.Name)
		}
	}
	for _, c := range pod.Containers {
		for _, from := range c.EnvFrom {
			if from.ConfigMapRef != nil {
				out = append(out, from.ConfigMapRef.Name)
			}
		}
	}
	return out
}

// wiAnnotation is GKE Workload Identity's: the Google service account a Kubernetes one acts as.
const wiAnnotation = "iam.gke.io/gcp-service-account"

// TestFunctionsRunAsTheirOwnServiceAccount: each function's pods run as a ServiceAccount of their
// own that Workload Identity binds to a Google account of the project its config names, so the
// store needs no key file; none mounts a Kubernetes API token.
func TestFunctionsRunAsTheirOwnServiceAccount(t *testing.T) {
	for _, dir := range dirs {
		r := render(t, dir)
		for _, w := range r.workloads() {
			if !isFunction(w.component) || strings.HasPrefix(w.where, "cronjob ") {
				continue
			}
			assert.Equal(t, w.component, w.pod.ServiceAccountName, "%s %s: got, want its own ServiceAccount", dir, w.where)
			sa, ok := r.serviceAccounts[w.component]
			require.True(t, ok, "%s: no ServiceAccount %s", dir, w.component)
			project := r.runtimeConfig(t, w.component).Data["FIRESTORE_PROJECT"]
			assert.Equal(t, "omnimember@"+project+".iam.gserviceaccount.com", sa.Annotations[wiAnnotation], "%s %s: got, want the project's account", dir, w.where)
			assert.False(t, sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken, "%s %s: mounts an API token", dir, w.where)
		}
	}
}

func isFunction(component string) bool {
	for _, f := range natsauth.Functions {
		if f == component {
			return true
		}
	}
	return false
}

// TestFilesTheConfigNamesAreMounted: every file a container's settings name (a variable ending in
// _FILE, NATS_NKEY, NATS_CA), from its ConfigMap or its env, lies in a directory mounted into it: a
// function reading an absent rules file fails at start.
func TestFilesTheConfigNamesAreMounted(t *testing.T) {
	for _, dir := range dirs {
		r := render(t, dir)
		for _, w := range r.workloads() {
			for _, c := range w.pod.Containers {
				for name, file := range r.settings(c) {
					if !strings.HasSuffix(name, "_FILE") && name != "NATS_NKEY" && name != "NATS_CA" {
						continue
					}
					mounted := false
					for _, m := range c.VolumeMounts {
						mounted = mounted || path.Dir(file) == path.Clean(m.MountPath)
					}
					assert.True(t, mounted, "%s %s: %s=%s, got no volume mounted at %s", dir, w.where, name, file, path.Dir(file))
				}
			}
		}
	}
}

// settings are a container's variables with plain values, from its ConfigMaps and its env.
func (r *rendered) settings(c corev1.Container) map[string]string {
	out := map[string]string{}
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef != nil {
			for k, v := range r.configMaps[from.ConfigMapRef.Name].Data {
				out[k] = v
			}
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			out[e.Name] = e.Value
		}
	}
	return out
}
