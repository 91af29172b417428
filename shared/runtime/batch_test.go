package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/broker/brokertest"
	"github.com/omnimember/omnimember/shared/stream"
	"github.com/stretchr/testify/require"
)

func orderEvents(t *testing.T, prefix string, n int) []cloudevents.Event {
	evs := make([]cloudevents.Event, n)
	for i := range evs {
		evs[i] = orderEvent(t, fmt.Sprintf("%s-%d", prefix, i))
	}
	return evs
}

// TestPublishAllInAtomicBatches: with AtomicBatches, a large publish goes in atomic batches (no
// more than the server's 1000 each); a batch the server rejects because it holds events already
// stored goes again event by event, and every event ends up stored exactly once either way.
func TestPublishAllInAtomicBatches(t *testing.T) {
	tests := []struct {
		name                string
		atomic              bool
		before, publish     int // events stored before (one by one), then published together (from the first)
		committed, rejected float64
	}{
		{name: "one batch", atomic: true, publish: 20, committed: 1},
		{name: "split at the server's limit", atomic: true, publish: stream.MaxAtomicBatch + 200, committed: 2},
		{name: "too few to batch", atomic: true, publish: atomicFrom - 1},
		{name: "a retried batch", atomic: true, before: 20, publish: 20, rejected: 1},
		{name: "partly stored before", atomic: true, before: 3, publish: 12, rejected: 1},
		{name: "off", atomic: false, publish: 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := brokertest.Start(t)
			cfg := testConfig()
			cfg.AtomicBatches = tt.atomic
			h := startHarness(t, brokertest.Connect(t, srv), cfg)
			pub := h.rt.Publisher("tester")
			evs := orderEvents(t, "order", tt.publish)
			for _, ev := range evs[:tt.before] {
				require.NoError(t, pub.Publish(context.Background(), nil, []cloudevents.Event{ev}))
			}
			require.NoError(t, pub.Publish(context.Background(), nil, evs))

			stored := brokertest.Events(t, h.js, stream.Events, events.OrderPaid)
			require.Len(t, stored, tt.publish, "got stored events, want each once")
			fams := scrape(t, h.base)
			got := sample(fams, "omnimember_atomic_batches_total", map[string]string{"outcome": "committed"})
			require.Equal(t, tt.committed, got, "got committed batches, want %v", tt.committed)
			got = sample(fams, "omnimember_atomic_batches_total", map[string]string{"outcome": "rejected"})
			require.Equal(t, tt.rejected, got, "got rejected batches, want %v", tt.rejected)
			got = sample(fams, "omnimember_dedupe_hits_total", map[string]string{"source": DedupePublish})
			require.Equal(t, float64(tt.before), got, "got publish dedupe hits, want the events stored before")
		})
	}
}

// TestHTTPBatchIsOneAtomicBatch: a webhook batch's events go to JetStream as one atomic batch
// before the 202.
func TestHTTPBatchIsOneAtomicBatch(t *testing.T) {
	srv := brokertest.Start(t)
	cfg := testConfig()
	cfg.AtomicBatches = true
	h := startHarness(t, brokertest.Connect(t, srv), cfg, validatingIngest())
	body, err := json.Marshal(orderEvents(t, "hook", 10))
	require.NoError(t, err)
	status, _ := post(t, h.base+"/v1/events", "application/cloudevents-batch+json", nil, body)
	require.Equal(t, 202, status)
	require.Len(t, brokertest.Events(t, h.js, stream.Events, events.OrderPaid), 10)
	got := sample(scrape(t, h.base), "omnimember_atomic_batches_total", map[string]string{"outcome": "committed"})
	require.Equal(t, 1.0, got, "got committed batches, want the request's one")
}

// TestKeyValueBucketsTakeTheStreamsReplicas: a function's buckets get OMNIMEMBER_STREAM_REPLICAS as
// the streams do (a one-replica bucket on a three-server cluster is lost with its server); a
// single server, asked for three, refuses, which shows the setting reaches it.
func TestKeyValueBucketsTakeTheStreamsReplicas(t *testing.T) {
	srv := brokertest.Start(t)
	nc := brokertest.Connect(t, srv)
	rt, err := New(context.Background(), testConfig(), nc, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	require.NoError(t, err)
	ctx := context.Background()
	_, err = rt.Publisher("ingest").KeyValue(ctx, jetstream.KeyValueConfig{Bucket: "one"})
	require.NoError(t, err)
	info, err := rt.JetStream().Stream(ctx, "KV_one")
	require.NoError(t, err)
	require.Equal(t, 1, info.CachedInfo().Config.Replicas, "got replicas, want the topology's")

	rt.cfg.Topology.Replicas = 3 // as a three-server cluster's deployment sets it
	_, err = rt.Publisher("ingest").KeyValue(ctx, jetstream.KeyValueConfig{Bucket: "three"})
	require.ErrorContains(t, err, "replicas", "three replicas asked of a lone server")
}
