package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/broker/brokertest"
	"github.com/omnimember/omnimember/shared/receipt"
	"github.com/omnimember/omnimember/shared/store"
	"github.com/omnimember/omnimember/shared/store/embedded"
	"github.com/omnimember/omnimember/shared/stream"
)

// scrape reads /metrics as Prometheus would and returns the families by name.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return fams
}

// sample is the value of the series of family name whose labels include want (a counter's value,
// a histogram's count); 0 if there is none.
func sample(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	fam, ok := fams[name]
	if !ok {
		return 0
	}
	total := 0.0
next:
	for _, m := range fam.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Histogram != nil:
			total += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return total
}

// The handler is a receipt-keyed one, as real functions are: ok-* succeed, flaky fails once
// (transient), poison is permanent. Each line of the table is a series /metrics must show.
func TestMetricsCountEventsErrorsRedeliveriesDeadLettersAndDedupe(t *testing.T) {
	srv := brokertest.Start(t)
	nc := brokertest.Connect(t, srv)
	st, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"), embedded.Options{NoSync: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	var mu sync.Mutex
	calls := map[string]int{}
	handle := func(ctx context.Context, ev cloudevents.Event) ([]cloudevents.Event, error) {
		mu.Lock()
		calls[ev.ID()]++
		n := calls[ev.ID()]
		mu.Unlock()
		switch {
		case ev.ID() == "poison":
			return nil, Permanent(errors.New("broken rule"))
		case ev.ID() == "flaky" && n == 1:
			return nil, errors.New("store unavailable")
		}
		return receipt.Once(ctx, st, "counter", ev, time.Now, func(store.Tx) ([]cloudevents.Event, error) {
			return []cloudevents.Event{tierEventFor(t, ev)}, nil
		})
	}
	fn := Function{Name: "counter", Consumes: []string{events.OrderPaid}, Handle: handle}
	in := Function{Name: "front", EventsPath: "/in", Handle: handle}
	h := startHarness(t, nc, testConfig(), fn, in)

	for _, id := range []string{"ok-1", "ok-1", "flaky", "poison"} {
		brokertest.Publish(t, h.js, events.OrderPaid, orderEvent(t, id))
	}
	require.Eventually(t, func() bool { return pending(t, h.js, "counter") == 0 }, 10*time.Second, 10*time.Millisecond)
	body, err := json.Marshal(orderEvent(t, "http-1"))
	require.NoError(t, err)
	code, _ := post(t, h.base+"/in", "application/cloudevents+json", nil, body)
	require.Equal(t, http.StatusAccepted, code)

	fams := scrape(t, h.base)
	order, tier := events.OrderPaid, events.TierChanged
	tests := []struct {
		metric string
		labels map[string]string
		want   float64
	}{
		// ok-1 twice, flaky twice, poison once; http-1 over HTTP.
		{"omnimember_events_in_total", map[string]string{"function": "counter", "type": order, "trigger": "jetstream"}, 5},
		{"omnimember_events_in_total", map[string]string{"function": "front", "type": order, "trigger": "http"}, 1},
		{"omnimember_handler_duration_seconds", map[string]string{"function": "counter", "type": order}, 5},
		// ok-1's repeat is answered by the receipt and its re-publish dropped by the duplicate window.
		{"omnimember_events_out_total", map[string]string{"function": "counter", "type": tier}, 2},
		{"omnimember_events_out_total", map[string]string{"function": "front", "type": tier}, 1},
		{"omnimember_dedupe_hits_total", map[string]string{"function": "counter", "source": "receipt"}, 1},
		{"omnimember_dedupe_hits_total", map[string]string{"function": "counter", "source": "publish"}, 1},
		{"omnimember_handler_errors_total", map[string]string{"function": "counter", "class": "transient"}, 1},
		{"omnimember_handler_errors_total", map[string]string{"function": "counter", "class": "permanent"}, 1},
		{"omnimember_redeliveries_total", map[string]string{"function": "counter", "type": order}, 1},
		{"omnimember_dead_lettered_total", map[string]string{"function": "counter", "type": order}, 1},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, sample(fams, tt.metric, tt.labels), "%s%v: got, want", tt.metric, tt.labels)
	}
	assert.Len(t, brokertest.Messages(t, h.js, stream.DeadLetters, stream.DeadLetterSubject("counter")), 1)
	assert.Contains(t, fams, "go_goroutines", "process and Go runtime metrics are exposed too")
}

// Two runtimes in one process keep separate registries: neither panics on registration and
// neither sees the other's counts.
func TestMetricsRegistriesArePerRuntime(t *testing.T) {
	srv := brokertest.Start(t)
	nc := brokertest.Connect(t, srv)
	echo := func(_ context.Context, ev cloudevents.Event) ([]cloudevents.Event, error) {
		return []cloudevents.Event{tierEventFor(t, ev)}, nil
	}
	a := startHarness(t, nc, testConfig(), Function{Name: "a", EventsPath: "/in", Handle: echo})
	b := startHarness(t, nc, testConfig(), Function{Name: "b", EventsPath: "/in", Handle: echo})
	body, err := json.Marshal(orderEvent(t, "one"))
	require.NoError(t, err)
	code, _ := post(t, a.base+"/in", "application/cloudevents+json", nil, body)
	require.Equal(t, http.StatusAccepted, code)
	assert.Equal(t, 1.0, sample(scrape(t, a.base), "omnimember_events_in_total", map[string]string{"function": "a"}))
	assert.Equal(t, 0.0, sample(scrape(t, b.base), "omnimember_events_in_total", nil))
}

// An unknown type posted over HTTP lands under type="unknown", not a new series per value.
func TestMetricsTypeLabelIsBounded(t *testing.T) {
	tests := []struct{ in, want string }{
		{events.OrderPaid, events.OrderPaid},
		{"com.attacker.random-123", "unknown"},
		{"", "unknown"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, typeLabel(tt.in), "typeLabel(%q): got, want", tt.in)
	}
}

// Tracing is off unless the environment asks for an exporter.
func TestTracesExporterFromEnv(t *testing.T) {
	tests := []struct {
		name            string
		exporter, endpt string
		want            string
		wantErrContains string
	}{
		{name: "nothing set", want: TracesNone},
		{name: "endpoint only", endpt: "http://collector:4318", want: TracesOTLP},
		{name: "otlp", exporter: "otlp", want: TracesOTLP},
		{name: "none wins over an endpoint", exporter: "none", endpt: "http://collector:4318", want: TracesNone},
		{name: "unsupported exporter", exporter: "zipkin", wantErrContains: "OTEL_TRACES_EXPORTER"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("OTEL_TRACES_EXPORTER", tt.exporter)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", tt.endpt)
			t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
			c, err := FromEnv()
			if tt.wantErrContains != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErrContains)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, c.Traces, "got exporter, want")
		})
	}
}
