package manifest_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	_ "time/tzdata"

	"github.com/robfig/cron/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/omnimember/omnimember/deploy/manifest"
	"github.com/omnimember/omnimember/deploy/natsauth"
	"github.com/omnimember/omnimember/deploy/natssetup"
	"github.com/omnimember/omnimember/shared/broker/brokertest"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/loyalty"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/receipt"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store/backend"
	"github.com/omnimember/omnimember/shared/stream"
)

// cronParser reads five-field schedules as the CronJob controller and KEDA's cron scaler do.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

func loadLocation(name string) (*time.Location, error) { return time.LoadLocation(name) }

// natsClientLabel is what the NATS NetworkPolicy admits.
const natsClientLabel = "omnimember.dev/nats-client"

// checkNATSClient: a pod that reads the functions' config talks to NATS, so the policy must admit
// it, and it connects as its own NATS user: its seed (and only its own) and the servers' CA
// mounted where NATS_NKEY and NATS_CA say, and replies on the inbox its user may read.
func (r *rendered) checkNATSClient(t *testing.T, where string, podLabels map[string]string, pod corev1.PodSpec) {
	t.Helper()
	user := podLabels[manifest.NameLabel]
	for _, c := range pod.Containers {
		for _, from := range c.EnvFrom {
			if from.ConfigMapRef == nil || r.configMaps[from.ConfigMapRef.Name].Data["NATS_URL"] == "" {
				continue
			}
			assert.Equal(t, "true", podLabels[natsClientLabel], "%s reads NATS_URL but the NetworkPolicy would refuse it", where)
			assert.Contains(t, natsauth.Users(), user, "%s reads NATS_URL but has no NATS user", where)
			assert.NotEqual(t, natsauth.Operator, user, "%s: no pod holds the operator's seed", where)
			var inbox string
			for _, e := range c.Env {
				if e.Name == "NATS_INBOX_PREFIX" {
					inbox = e.Value
				}
			}
			assert.Equal(t, natsauth.InboxPrefix(user), inbox, "%s: NATS_INBOX_PREFIX, got, want", where)
			cfg := r.configMaps[from.ConfigMapRef.Name].Data
			r.checkMounted(t, where, pod, c, cfg["NATS_NKEY"], natsauth.ClientSecret, natsauth.SeedKey(user))
			r.checkMounted(t, where, pod, c, cfg["NATS_CA"], r.certificates[natsCertificate].Spec.SecretName, "ca.crt")
		}
	}
}

// natsCertificate is the Certificate of the NATS servers (base/nats-tls.yaml).
const natsCertificate = "nats-server"

// checkMounted: file (a path the config names) is key of Secret secret, mounted in container c.
func (r *rendered) checkMounted(t *testing.T, where string, pod corev1.PodSpec, c corev1.Container, file, secret, key string) {
	t.Helper()
	for _, m := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(file, m.MountPath+"/")
		if !ok {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name != m.Name || v.Projected == nil {
				continue
			}
			for _, src := range v.Projected.Sources {
				if src.Secret == nil || src.Secret.Name != secret {
					continue
				}
				for _, it := range src.Secret.Items {
					if it.Path == rel {
						assert.Equal(t, key, it.Key, "%s: %s comes from the wrong key of %s", where, file, secret)
						return
					}
				}
			}
		}
	}
	t.Errorf("%s: %s (key %s of Secret %s) is not mounted", where, file, key, secret)
}

// checkJetStreamTrigger: KEDA must watch the stream and the durable consumer the runtime creates
// (named after the function) through the monitoring port of the rendered NATS service.
func checkJetStreamTrigger(t *testing.T, where string, md map[string]string, target appsv1.Deployment) {
	t.Helper()
	assert.Equal(t, stream.Events, md["stream"], where)
	function := target.Spec.Template.Labels[manifest.NameLabel]
	assert.Contains(t, natssetup.Durables()[function], md["consumer"], "%s: a consumer of %s the setup job makes", where, function)
	assert.Equal(t, natsAccount, md["account"], "%s: the account of omnimember's streams (auth.conf)", where)
	assert.Equal(t, "nats.omnimember.svc.cluster.local:8222", md["natsServerMonitoringEndpoint"], where)
	for _, k := range []string{"lagThreshold", "activationLagThreshold"} {
		n, err := strconv.Atoi(md[k])
		assert.NoError(t, err, "%s: %s", where, k)
		assert.GreaterOrEqual(t, n, 0, "%s: %s", where, k)
	}
	assert.Equal(t, "true", target.Spec.Template.Labels[natsClientLabel], where)
}

// TestConfigIsWhatTheFunctionsAccept sets each function's rendered ConfigMap as the environment and
// parses it with the functions' own config code, and its rules files with the functions' own rule
// parsers. The files NATS_NKEY and NATS_CA name are mounted from Secrets in a cluster
// (checkNATSClient); here they are a fresh seed and CA.
func TestConfigIsWhatTheFunctionsAccept(t *testing.T) {
	for _, dir := range dirs {
		r := render(t, dir)
		configs := r.labelled(configLabel, "runtime")
		require.Len(t, configs, len(natsauth.Functions)+1, "%s: a config per function and the setup job's", dir)
		for _, cfg := range configs {
			t.Run(filepath.Base(dir)+" "+cfg.Name, func(t *testing.T) {
				for k, v := range cfg.Data {
					t.Setenv(k, v)
				}
				_, clients, err := natsauth.Generate("omnimember")
				require.NoError(t, err)
				seed := filepath.Join(t.TempDir(), "seed")
				require.NoError(t, os.WriteFile(seed, []byte(clients.StringData[natsauth.SeedKey("match")]), 0o600))
				t.Setenv("NATS_NKEY", seed)
				t.Setenv("NATS_CA", brokertest.TLS(t, "nats.omnimember.svc.cluster.local").CA)
				t.Setenv("NATS_INBOX_PREFIX", natsauth.InboxPrefix("match"))
				rt, err := runtime.FromEnv()
				require.NoError(t, err)
				sc, err := backend.FromEnv()
				require.NoError(t, err)
				assert.Equal(t, "firestore", sc.Kind, "a cluster's functions share Firestore, not a per-pod embedded store")
				replicas := 3
				if sts := r.statefulSets["nats"]; sts.Spec.Replicas != nil {
					replicas = int(*sts.Spec.Replicas)
				}
				assert.Equal(t, replicas, rt.Topology.Replicas, "stream replicas must match the NATS servers")
				assert.True(t, strings.HasPrefix(rt.NATSURL, "tls://"), "NATS_URL %s: clients speak TLS", rt.NATSURL)
				if cfg.Data[loyalty.RulesEnv] == "" {
					return
				}
				rules := r.rulesConfigMap(t, cfg.Labels[manifest.NameLabel])
				_, err = loyalty.Parse([]byte(rules.Data[filepath.Base(cfg.Data[loyalty.RulesEnv])]))
				require.NoError(t, err)
				_, err = identity.ParseRules([]byte(rules.Data[filepath.Base(cfg.Data[identity.RulesEnv])]))
				require.NoError(t, err)
			})
		}
	}
}

// configLabel sorts the generated ConfigMaps: runtime (a function's settings) or rules.
const configLabel = "omnimember.dev/config"

// labelled lists the ConfigMaps whose label key has value.
func (r *rendered) labelled(key, value string) []corev1.ConfigMap {
	var out []corev1.ConfigMap
	for _, cm := range r.configMaps {
		if cm.Labels[key] == value {
			out = append(out, cm)
		}
	}
	return out
}

// runtimeConfig is the settings ConfigMap of component (a function, or nats for the setup job).
func (r *rendered) runtimeConfig(t *testing.T, component string) corev1.ConfigMap {
	t.Helper()
	for _, cm := range r.labelled(configLabel, "runtime") {
		if cm.Labels[manifest.NameLabel] == component {
			return cm
		}
	}
	t.Fatalf("%s: no settings ConfigMap of %s", r.dir, component)
	return corev1.ConfigMap{}
}

// rulesConfigMap is function's own rules ConfigMap.
func (r *rendered) rulesConfigMap(t *testing.T, function string) corev1.ConfigMap {
	t.Helper()
	for _, cm := range r.labelled(configLabel, "rules") {
		if cm.Labels[manifest.NameLabel] == function {
			return cm
		}
	}
	t.Fatalf("%s: no rules ConfigMap of %s", r.dir, function)
	return corev1.ConfigMap{}
}

// firestoreIndexes is the Firebase CLI's firestore.indexes.json format.
type firestoreIndexes struct {
	Indexes []struct {
		CollectionGroup string `json:"collectionGroup"`
		QueryScope      string `json:"queryScope"`
		Fields          []struct {
			FieldPath   string `json:"fieldPath"`
			Order       string `json:"order,omitempty"`
			ArrayConfig string `json:"arrayConfig,omitempty"`
		} `json:"fields"`
	} `json:"indexes"`
	FieldOverrides []struct {
		CollectionGroup string            `json:"collectionGroup"`
		FieldPath       string            `json:"fieldPath"`
		TTL             bool              `json:"ttl,omitempty"`
		Indexes         []json.RawMessage `json:"indexes"`
	} `json:"fieldOverrides"`
}

// TestFirestoreIndexesKeepWhatTheFunctionsQuery: the functions' queries are single-field (Firestore
// indexes those itself), so an exemption must never switch off a field a function queries by.
func TestFirestoreIndexesKeepWhatTheFunctionsQuery(t *testing.T) {
	raw, err := os.ReadFile("../firestore/firestore.indexes.json")
	require.NoError(t, err)
	var idx firestoreIndexes
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&idx))
	for _, i := range idx.Indexes {
		assert.Contains(t, []string{"COLLECTION", "COLLECTION_GROUP"}, i.QueryScope)
		assert.GreaterOrEqual(t, len(i.Fields), 2, "single-field indexes are automatic; list only composites")
		for _, f := range i.Fields {
			assert.True(t, (f.Order == "") != (f.ArrayConfig == ""), "index on %s.%s: order or arrayConfig", i.CollectionGroup, f.FieldPath)
		}
	}
	ttl := map[string]string{}
	for _, o := range idx.FieldOverrides {
		assert.NotContains(t, member.Indexes[o.CollectionGroup], o.FieldPath, "%s.%s is queried", o.CollectionGroup, o.FieldPath)
		if o.TTL {
			ttl[o.CollectionGroup] = o.FieldPath
		}
	}
	assert.Equal(t, receipt.Expiry, ttl, "got TTL policies, want the fields the embedded store expires by")
}
