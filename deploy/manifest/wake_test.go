package manifest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/omnimember/omnimember/deploy/natsauth"
	"github.com/omnimember/omnimember/deploy/natssetup"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/functions/ingest"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/stream"
)

// jsz is the part of nats-server's /jsz answer KEDA's nats-jetstream scaler decodes
// (pkg/scalers/nats_jetstream_scaler.go): accounts by id or name, their streams, each stream's
// consumers with their pending and ack-pending counts.
type jsz struct {
	Accounts []struct {
		ID      string `json:"id"`
		Name    string `json:"name"`
		Streams []struct {
			Name      string `json:"name"`
			Consumers []struct {
				Name          string `json:"name"`
				NumPending    int64  `json:"num_pending"`
				NumAckPending int64  `json:"num_ack_pending"`
			} `json:"consumer_detail"`
		} `json:"stream_detail"`
	} `json:"account_details"`
}

// scalerQuery is what the scaler asks the monitoring endpoint for a nats-jetstream trigger
// (useHttps unset: plain HTTP), with the endpoint's host replaced by the test server's.
func scalerQuery(monitor string, md map[string]string) string {
	account := md["accountID"]
	if account == "" {
		account = md["account"]
	}
	q := url.Values{}
	q.Set("acc", account)
	q.Set("consumers", "true")
	q.Set("config", "true")
	return (&url.URL{Scheme: "http", Host: monitor, Path: "/jsz", RawQuery: q.Encode()}).String()
}

// scalerLag reads the lag the scaler would: pending plus ack-pending of the trigger's consumer in
// the trigger's stream and account; found is false where the scaler answers "consumer not found".
func scalerLag(t *testing.T, monitor string, md map[string]string) (lag int64, found bool) {
	t.Helper()
	resp, err := http.Get(scalerQuery(monitor, md))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var z jsz
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&z))
	for _, a := range z.Accounts {
		if a.ID != md["accountID"] && a.Name != md["account"] {
			continue
		}
		for _, s := range a.Streams {
			if s.Name != md["stream"] {
				continue
			}
			for _, c := range s.Consumers {
				if c.Name == md["consumer"] {
					return c.NumPending + c.NumAckPending, true
				}
			}
		}
	}
	return 0, false
}

// jetStreamTriggers are the rendered ScaledObjects' nats-jetstream triggers, by ScaledObject and
// consumer ("campaign-worker/campaign-sending").
func jetStreamTriggers(r *rendered) map[string]map[string]string {
	out := map[string]map[string]string{}
	for name, so := range r.scaled {
		for _, tr := range so.Spec.Triggers {
			if tr.Type == "nats-jetstream" {
				out[name+"/"+tr.Metadata["consumer"]] = tr.Metadata
			}
		}
	}
	return out
}

// runSetupJob runs the setup job's code with the job's rendered settings (its ConfigMap and env)
// as its own NATS user, against srv.
func runSetupJob(t *testing.T, r *rendered, s natsSetup, srv *server.Server) []string {
	t.Helper()
	job, ok := r.jobs["nats-setup"]
	require.True(t, ok, "%s: no nats-setup Job", r.dir)
	c := job.Spec.Template.Spec.Containers[0]
	for _, from := range c.EnvFrom {
		require.NotNil(t, from.ConfigMapRef)
		for k, v := range r.configMaps[from.ConfigMapRef.Name].Data {
			t.Setenv(k, v)
		}
	}
	for _, e := range c.Env {
		t.Setenv(e.Name, e.Value)
	}
	// The files NATS_NKEY and NATS_CA name are mounted from the Secrets (checkNATSClient); here
	// they are this test's seed and CA, and the server listens locally, alone (one replica).
	t.Setenv("NATS_URL", "tls://"+srv.Addr().String())
	t.Setenv("OMNIMEMBER_STREAM_REPLICAS", "1")
	t.Setenv("NATS_NKEY", s.seeds[natsauth.Setup])
	t.Setenv("NATS_CA", s.tls.CA)
	cfg, err := runtime.FromEnv()
	require.NoError(t, err)
	user := connectAs(t, srv, s, natsauth.Setup)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	made, err := natssetup.Run(ctx, user.js, cfg)
	require.NoError(t, err, "the setup job's user makes the streams and consumers (refusals %q)", user.errors())
	return made
}

// TestNeverStartedFunctionWakes: on a fresh server run from each overlay's configuration, with no
// function started, the setup job runs, ingest stores one order.paid, and the query KEDA's scaler
// makes for each ScaledObject finds its consumer, with match's lag active. Without the setup job
// (the consumers made only by the functions at start) the scaler finds no consumer and a chained
// function that never ran would never wake.
func TestNeverStartedFunctionWakes(t *testing.T) {
	tests := []struct {
		name  string
		setup bool
	}{{"with the setup job", true}, {"without it", false}}
	for _, dir := range []string{"../overlays/dev", "../overlays/prod"} {
		r := render(t, dir)
		triggers := jetStreamTriggers(r)
		require.NotEmpty(t, triggers, "%s: no nats-jetstream trigger", dir)
		for _, tt := range tests {
			t.Run(filepath.Base(dir)+" "+tt.name, func(t *testing.T) {
				s := setupNATS(t, r)
				opts, err := server.ProcessConfigFile(s.conf)
				require.NoError(t, err)
				srv := startNATS(t, opts)
				if tt.setup {
					made := runSetupJob(t, r, s, srv)
					for name, md := range triggers {
						assert.Contains(t, made, md["consumer"], "scaledobject %s: the setup job makes its consumer", name)
					}
				}
				publishOneOrder(t, srv, s)
				for name, md := range triggers {
					want := wantLag(md["consumer"])
					threshold, err := strconv.ParseInt(md["activationLagThreshold"], 10, 64)
					require.NoError(t, err)
					if !tt.setup {
						_, found := scalerLag(t, srv.MonitorAddr().String(), md)
						assert.False(t, found, "scaledobject %s: got a consumer, want none before its function ran", name)
						continue
					}
					var got int64
					require.Eventually(t, func() bool {
						lag, found := scalerLag(t, srv.MonitorAddr().String(), md)
						got = lag
						return found && lag == want
					}, 10*time.Second, 10*time.Millisecond, "scaledobject %s: got lag %d, want %d", name, got, want)
					assert.Equal(t, want > 0, got > threshold, "scaledobject %s: active (lag %d over %d), got, want", name, got, threshold)
				}
			})
		}
	}
}

// wantLag: one order.paid waits for the consumers of functions that consume it.
func wantLag(consumer string) int64 {
	for _, f := range natsFunctions {
		if f.name == consumer && slices.Contains(f.consumes, events.OrderPaid) {
			return 1
		}
	}
	return 0
}

// publishOneOrder stores one order.paid as ingest does (its user, its streams at start).
func publishOneOrder(t *testing.T, srv *server.Server, s natsSetup) {
	t.Helper()
	c := connectAs(t, srv, s, ingest.Name)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, stream.Ensure(ctx, c.js, stream.DefaultTopology()))
	_, err := c.js.Publish(ctx, events.Subject(events.OrderPaid), []byte(`{}`))
	require.NoError(t, err)
}

// TestScalerQueryIsKEDAs pins the query to the one KEDA 2.21 builds for the rendered triggers.
func TestScalerQueryIsKEDAs(t *testing.T) {
	r := render(t, "../overlays/prod")
	so := r.scaled["match"]
	require.NoError(t, kedav1alpha1.ValidateTriggers(so.Spec.Triggers))
	md := jetStreamTriggers(r)["match/match"]
	got := scalerQuery(md["natsServerMonitoringEndpoint"], md)
	assert.Equal(t, "http://nats.omnimember.svc.cluster.local:8222/jsz?acc=OMNIMEMBER&config=true&consumers=true", got, "got, want")
}
