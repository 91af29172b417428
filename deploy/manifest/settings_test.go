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

	"github.com/nats-io/nats-server/v2/server"
	"github.com/robfig/cron/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

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

// checkNATSClient: a pod that reads the functions' config talks to NATS, so the policy must admit it.
func (r *rendered) checkNATSClient(t *testing.T, where string, podLabels map[string]string, pod corev1.PodSpec) {
	t.Helper()
	for _, c := range pod.Containers {
		for _, from := range c.EnvFrom {
			if from.ConfigMapRef != nil && from.ConfigMapRef.Name == "omnimember-config" {
				assert.Equal(t, "true", podLabels[natsClientLabel], "%s reads NATS_URL but the NetworkPolicy would refuse it", where)
			}
		}
	}
}

// checkJetStreamTrigger: KEDA must watch the stream and the durable consumer the runtime creates
// (named after the function) through the monitoring port of the rendered NATS service.
func checkJetStreamTrigger(t *testing.T, where string, md map[string]string, target appsv1.Deployment) {
	t.Helper()
	assert.Equal(t, stream.Events, md["stream"], where)
	assert.Equal(t, target.Name, md["consumer"], "%s: the runtime's durable consumer is named after the function", where)
	assert.Equal(t, "$G", md["account"], where)
	assert.Equal(t, "nats.omnimember.svc.cluster.local:8222", md["natsServerMonitoringEndpoint"], where)
	for _, k := range []string{"lagThreshold", "activationLagThreshold"} {
		n, err := strconv.Atoi(md[k])
		assert.NoError(t, err, "%s: %s", where, k)
		assert.GreaterOrEqual(t, n, 0, "%s: %s", where, k)
	}
	assert.Equal(t, "true", target.Spec.Template.Labels[natsClientLabel], where)
}

// TestConfigIsWhatTheFunctionsAccept sets the rendered ConfigMap as the environment and parses it
// with the functions' own config code, and the rules files with the functions' own rule parsers.
func TestConfigIsWhatTheFunctionsAccept(t *testing.T) {
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			r := render(t, dir)
			cfg, ok := r.configMaps["omnimember-config"]
			require.True(t, ok)
			for k, v := range cfg.Data {
				t.Setenv(k, v)
			}
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

			rules := r.rulesConfigMap(t)
			_, err = loyalty.Parse([]byte(rules.Data[filepath.Base(cfg.Data[loyalty.RulesEnv])]))
			require.NoError(t, err)
			_, err = identity.ParseRules([]byte(rules.Data[filepath.Base(cfg.Data[identity.RulesEnv])]))
			require.NoError(t, err)
		})
	}
}

func (r *rendered) rulesConfigMap(t *testing.T) corev1.ConfigMap {
	t.Helper()
	for name, cm := range r.configMaps {
		if strings.HasPrefix(name, "omnimember-rules-") {
			return cm
		}
	}
	t.Fatalf("%s: no omnimember-rules ConfigMap", r.dir)
	return corev1.ConfigMap{}
}

// TestNATSConfigParsesAsTheServerReadsIt feeds nats.conf to nats-server's own parser: JetStream on
// the persistent volume, fsync per write where the cluster is the production one, routes to every peer.
func TestNATSConfigParsesAsTheServerReadsIt(t *testing.T) {
	tests := []struct {
		dir        string
		syncAlways bool
	}{{"../base", true}, {"../overlays/prod", true}, {"../overlays/dev", false}}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.dir), func(t *testing.T) {
			r := render(t, tt.dir)
			path := filepath.Join(t.TempDir(), "nats.conf")
			require.NoError(t, os.WriteFile(path, []byte(r.configMaps["nats-config"].Data["nats.conf"]), 0o600))
			t.Setenv("POD_NAME", "nats-0")
			opts, err := server.ProcessConfigFile(path)
			require.NoError(t, err)
			assert.True(t, opts.JetStream)
			assert.Equal(t, "nats-0", opts.ServerName)
			assert.Equal(t, tt.syncAlways, opts.SyncAlways, "sync_interval: always")

			sts := r.statefulSets["nats"]
			require.NotNil(t, sts.Spec.Replicas)
			replicas := int(*sts.Spec.Replicas)
			if replicas > 1 {
				assert.Len(t, opts.Routes, replicas, "a route to every server of the StatefulSet")
			} else {
				assert.Empty(t, opts.Routes, "a lone server with routes waits for peers that never come")
			}
			var mounted bool
			for _, m := range sts.Spec.Template.Spec.Containers[0].VolumeMounts {
				mounted = mounted || (m.Name == "data" && strings.HasPrefix(opts.StoreDir, m.MountPath))
			}
			assert.True(t, mounted, "store_dir %s must be on the persistent volume", opts.StoreDir)
		})
	}
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
