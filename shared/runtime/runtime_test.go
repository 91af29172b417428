package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/broker/brokertest"
	"github.com/omnimember/omnimember/shared/credential"
	"github.com/omnimember/omnimember/shared/stream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type harness struct {
	rt   *Runtime
	js   jetstream.JetStream
	base string
	stop func()
}

// testSenderToken may send anything (a development sender); post sends it unless told otherwise.
const testSenderToken = "test-sender-token-0123456789"

func testConfig() Config {
	c := Defaults()
	senders, err := credential.NewSenders(credential.DevSender(testSenderToken))
	if err != nil {
		panic(err)
	}
	c.Senders = senders
	c.AckWait = time.Second
	c.MaxDeliver = 3
	c.Backoff = []time.Duration{20 * time.Millisecond}
	c.Concurrency = 4
	c.MaxBodyBytes = 64 << 10
	c.ShutdownTimeout = 5 * time.Second
	return c
}

func startHarness(t *testing.T, nc *nats.Conn, cfg Config, fns ...Function) *harness {
	t.Helper()
	return startHarnessLogging(t, nc, cfg, io.Discard, fns...)
}

// startHarnessLogging is startHarness with the runtime's log written to logs.
func startHarnessLogging(t *testing.T, nc *nats.Conn, cfg Config, logs io.Writer, fns ...Function) *harness {
	t.Helper()
	rt, err := New(context.Background(), cfg, nc, slog.New(slog.NewJSONHandler(logs, nil)))
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.ServeListener(ctx, ln, fns...) }()
	h := &harness{rt: rt, js: rt.JetStream(), base: "http://" + ln.Addr().String()}
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(h.stop)
	require.Eventually(t, func() bool {
		resp, err := http.Get(h.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 10*time.Millisecond)
	return h
}

func orderEvent(t *testing.T, id string) cloudevents.Event {
	t.Helper()
	ev, err := events.Example(events.OrderPaid)
	require.NoError(t, err)
	ev.SetID(id)
	return ev
}

// tierEventFor is a valid event a test handler emits for its input.
func tierEventFor(t *testing.T, in cloudevents.Event) cloudevents.Event {
	ev, err := events.New(events.TierChanged, events.DerivedID("test", in.ID(), 0), events.Source("test"), time.Now(),
		events.TierChangedData{OneID: "om_abcdefghij0123456789", From: "member", To: "silver", Direction: "upgrade", EvaluatedAt: time.Now(), SourceID: in.ID()})
	require.NoError(t, err)
	return ev
}

func TestConsumerHandlesAndPublishesOnce(t *testing.T) {
	srv := brokertest.Start(t)
	nc := brokertest.Connect(t, srv)
	var calls atomic.Int32
	fn := Function{Name: "tester", Consumes: []string{events.OrderPaid}, Handle: func(ctx context.Context, ev cloudevents.Event) ([]cloudevents.Event, error) {
		calls.Add(1)
		return []cloudevents.Event{tierEventFor(t, ev)}, nil
	}}
	h := startHarness(t, nc, testConfig(), fn)
	in := orderEvent(t, "order-1")
	in.SetExtension("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	// The same event delivered twice (a platform retry without dedupe) runs the handler twice,
	// but its output is stored once: the output's Nats-Msg-Id is derived from the input.
	brokertest.Publish(t, h.js, events.OrderPaid, in)
	brokertest.Publish(t, h.js, events.OrderPaid, in)
	require.Eventually(t, func() bool { return calls.Load() == 2 }, 10*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool { return pending(t, h.js, "tester") == 0 }, 10*time.Second, 10*time.Millisecond, "both inputs acked")
	out := brokertest.Events(t, h.js, stream.Events, events.TierChanged)
	require.Len(t, out, 1, "got outputs, want one after dedupe")
	assert.Equal(t, "order-1", mustDecode[events.TierChangedData](t, out[0]).SourceID)
	assert.Equal(t, in.Extensions()["traceparent"], out[0].Extensions()["traceparent"], "trace context travels on")
}

func pending(t *testing.T, js jetstream.JetStream, durable string) uint64 {
	settled, err := stream.Settled(context.Background(), js, stream.Events, durable)
	require.NoError(t, err)
	if settled {
		return 0
	}
	return 1
}

func mustDecode[T any](t *testing.T, ev cloudevents.Event) T {
	v, err := events.Decode[T](ev)
	require.NoError(t, err)
	return v
}

func TestErrorClassification(t *testing.T) {
	tests := []struct {
		name          string
		handle        func(n int32) error
		wantCalls     int32
		wantDead      bool
		reasonContain string
	}{
		{"transient then success", func(n int32) error {
			if n == 1 {
				return errors.New("store unavailable")
			}
			return nil
		}, 2, false, ""},
		{"permanent goes to dead letter at once", func(int32) error { return Permanent(errors.New("rule file broken")) }, 1, true, "rule file broken"},
		{"bad field is permanent", func(int32) error { return &events.FieldError{Field: "data.x", Reason: "bad"} }, 1, true, "data.x"},
		{"transient until max deliveries", func(int32) error { return errors.New("still down") }, 3, true, "still down"},
		{"panic is retried then dead-lettered", func(int32) error { panic("nil map") }, 3, true, "panicked: nil map"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := brokertest.Start(t)
			nc := brokertest.Connect(t, srv)
			var calls atomic.Int32
			fn := Function{Name: "tester", Consumes: []string{events.OrderPaid}, Handle: func(ctx context.Context, ev cloudevents.Event) ([]cloudevents.Event, error) {
				n := calls.Add(1)
				assert.Equal(t, uint64(n), Delivery(ctx), "delivery count in context")
				return nil, tt.handle(n)
			}}
			h := startHarness(t, nc, testConfig(), fn)
			brokertest.Publish(t, h.js, events.OrderPaid, orderEvent(t, "order-x"))
			require.Eventually(t, func() bool { return pending(t, h.js, "tester") == 0 }, 10*time.Second, 10*time.Millisecond)
			assert.Equal(t, tt.wantCalls, calls.Load(), "got handler calls, want")
			dead := brokertest.Messages(t, h.js, stream.DeadLetters, stream.DeadLetterSubject("tester"))
			if !tt.wantDead {
				assert.Empty(t, dead)
				return
			}
			require.Len(t, dead, 1)
			hdr := dead[0].Headers()
			assert.Contains(t, hdr.Get(stream.HeaderDeadLetterReason), tt.reasonContain)
			assert.Equal(t, fmt.Sprint(tt.wantCalls), hdr.Get(stream.HeaderDeadLetterCount))
			assert.Equal(t, events.OrderPaid, hdr.Get(stream.HeaderDeadLetterSubject))
			assert.Equal(t, "order-x", hdr.Get("ce-id"), "the original event travels with its dead letter")
		})
	}
}

func TestPoisonMessageIsDeadLettered(t *testing.T) {
	srv := brokertest.Start(t)
	nc := brokertest.Connect(t, srv)
	var calls atomic.Int32
	fn := Function{Name: "tester", Consumes: []string{events.OrderPaid}, Handle: func(context.Context, cloudevents.Event) ([]cloudevents.Event, error) {
		calls.Add(1)
		return nil, nil
	}}
	h := startHarness(t, nc, testConfig(), fn)
	_, err := h.js.Publish(context.Background(), events.OrderPaid, []byte("not a cloudevent"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return pending(t, h.js, "tester") == 0 }, 10*time.Second, 10*time.Millisecond)
	dead := brokertest.Messages(t, h.js, stream.DeadLetters, stream.DeadLetterSubject("tester"))
	require.Len(t, dead, 1)
	assert.Contains(t, dead[0].Headers().Get(stream.HeaderDeadLetterReason), "decode CloudEvent")
	assert.Equal(t, []byte("not a cloudevent"), dead[0].Data())
	assert.Zero(t, calls.Load(), "the handler never sees a poison message")
}

func TestHandlerEmittingAnInvalidEventIsDeadLettered(t *testing.T) {
	srv := brokertest.Start(t)
	nc := brokertest.Connect(t, srv)
	fn := Function{Name: "tester", Consumes: []string{events.OrderPaid}, Handle: func(_ context.Context, ev cloudevents.Event) ([]cloudevents.Event, error) {
		bad, err := events.New(events.TierChanged, "x", "s", time.Now(), map[string]string{"oneId": "nobody"})
		return []cloudevents.Event{bad}, err
	}}
	h := startHarness(t, nc, testConfig(), fn)
	brokertest.Publish(t, h.js, events.OrderPaid, orderEvent(t, "order-y"))
	require.Eventually(t, func() bool { return pending(t, h.js, "tester") == 0 }, 10*time.Second, 10*time.Millisecond)
	dead := brokertest.Messages(t, h.js, stream.DeadLetters, stream.DeadLetterSubject("tester"))
	require.Len(t, dead, 1)
	assert.Contains(t, dead[0].Headers().Get(stream.HeaderDeadLetterReason), "emitted an invalid")
	assert.Empty(t, brokertest.Messages(t, h.js, stream.Events, events.TierChanged))
}

func validatingIngest() Function {
	return Function{Name: "ingest", EventsPath: "/v1/events", Handle: func(_ context.Context, ev cloudevents.Event) ([]cloudevents.Event, error) {
		if err := events.Validate(ev); err != nil {
			return nil, err
		}
		return []cloudevents.Event{ev}, nil
	}}
}

func post(t *testing.T, url, contentType string, headers map[string]string, body []byte) (int, ErrorBody) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+testSenderToken)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var eb ErrorBody
	_ = json.NewDecoder(resp.Body).Decode(&eb)
	return resp.StatusCode, eb
}

func TestHTTPReceiverModesAndErrors(t *testing.T) {
	srv := brokertest.Start(t)
	nc := brokertest.Connect(t, srv)
	h := startHarness(t, nc, testConfig(), validatingIngest())
	url := h.base + "/v1/events"
	structured := func(id string) []byte {
		ev := orderEvent(t, id)
		raw, err := json.Marshal(ev)
		require.NoError(t, err)
		return raw
	}
	binaryHeaders := map[string]string{"ce-specversion": "1.0", "ce-id": "bin-1", "ce-type": events.OrderPaid, "ce-source": "tmall/shop-1001"}
	orderData := orderEvent(t, "x").Data()
	badData := bytes.Replace(orderData, []byte(`"amountFen": 129900`), []byte(`"amountFen": "lots"`), 1)
	require.NotEqual(t, orderData, badData)

	tests := []struct {
		name        string
		contentType string
		headers     map[string]string
		body        []byte
		wantStatus  int
		wantField   string
	}{
		{"structured", "application/cloudevents+json", nil, structured("s-1"), http.StatusAccepted, ""},
		{"binary", "application/json", binaryHeaders, orderData, http.StatusAccepted, ""},
		{"batch", "application/cloudevents-batch+json", nil, []byte("[" + string(structured("b-1")) + "," + string(structured("b-2")) + "]"), http.StatusAccepted, ""},
		{"repost of the same id", "application/cloudevents+json", nil, structured("s-1"), http.StatusAccepted, ""},
		{"bad field", "application/json", binaryHeaders, badData, http.StatusBadRequest, "data.amountFen"},
		{"bad field in batch", "application/cloudevents-batch+json", nil, []byte("[" + string(structured("b-3")) + `,{"specversion":"1.0","id":"b-4","source":"s","type":"omnimember.order.paid","datacontenttype":"application/json","data":{"orderId":"1"}}]`), http.StatusBadRequest, "[1].data"},
		{"unknown type", "application/json", map[string]string{"ce-specversion": "1.0", "ce-id": "u", "ce-type": "omnimember.order.shipped", "ce-source": "s"}, orderData, http.StatusBadRequest, "type"},
		{"not a cloudevent", "application/json", nil, []byte(`{"hello":1}`), http.StatusBadRequest, "body"},
		{"empty batch", "application/cloudevents-batch+json", nil, []byte(`[]`), http.StatusBadRequest, "body"},
		{"too large", "application/cloudevents+json", nil, bytes.Repeat([]byte(" "), 70<<10), http.StatusRequestEntityTooLarge, "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, eb := post(t, url, tt.contentType, tt.headers, tt.body)
			assert.Equal(t, tt.wantStatus, status, "got status, want (error %q)", eb.Error)
			assert.Equal(t, tt.wantField, eb.Field, "got field, want")
		})
	}
	stored := brokertest.Events(t, h.js, stream.Events, events.OrderPaid)
	var ids []string
	for _, ev := range stored {
		ids = append(ids, ev.ID())
	}
	assert.ElementsMatch(t, []string{"s-1", "bin-1", "b-1", "b-2"}, ids, "accepted events stored once each; rejected batches store nothing")

	resp, err := http.Get(url)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

func TestHTTPAnswers503WhenJetStreamCannotStore(t *testing.T) {
	srv := brokertest.Start(t)
	nc := brokertest.Connect(t, srv)
	h := startHarness(t, nc, testConfig(), validatingIngest())
	// With the stream gone nothing can be stored: the sender must be told to retry, not 202.
	require.NoError(t, h.js.DeleteStream(context.Background(), stream.Events))
	raw, err := json.Marshal(orderEvent(t, "lost-1"))
	require.NoError(t, err)
	status, eb := post(t, h.base+"/v1/events", "application/cloudevents+json", nil, raw)
	assert.Equal(t, http.StatusServiceUnavailable, status, "got status, want 503 (error %q)", eb.Error)
}

func TestShutdownFinishesInFlightEvents(t *testing.T) {
	srv := brokertest.Start(t)
	nc := brokertest.Connect(t, srv)
	entered := make(chan struct{})
	release := make(chan struct{})
	var finished atomic.Bool
	fn := Function{Name: "tester", Consumes: []string{events.OrderPaid}, Handle: func(ctx context.Context, ev cloudevents.Event) ([]cloudevents.Event, error) {
		close(entered)
		<-release
		finished.Store(true)
		return nil, nil
	}}
	h := startHarness(t, nc, testConfig(), fn)
	brokertest.Publish(t, h.js, events.OrderPaid, orderEvent(t, "slow-1"))
	<-entered
	stopped := make(chan struct{})
	go func() { h.stop(); close(stopped) }()
	close(release)
	<-stopped
	assert.True(t, finished.Load(), "the in-flight event completed before shutdown returned")
	assert.Equal(t, uint64(0), pending(t, h.js, "tester"), "and it was acked")
}

func TestConfigFromEnv(t *testing.T) {
	t.Setenv("NATS_URL", "nats://svc:s3cret@nats:4222")
	t.Setenv("NATS_CREDS", "/var/run/secrets/nats.creds")
	t.Setenv("OMNIMEMBER_BACKOFF", "1s, 10s")
	t.Setenv("OMNIMEMBER_CONCURRENCY", "8")
	c, err := FromEnv()
	require.NoError(t, err)
	assert.Equal(t, []time.Duration{time.Second, 10 * time.Second}, c.Backoff)
	assert.Equal(t, 8, c.Concurrency)
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("start", "config", c)
	assert.NotContains(t, buf.String(), "s3cret", "secrets are masked in the start line")
	assert.NotContains(t, buf.String(), "nats.creds")

	for name, value := range map[string]string{"OMNIMEMBER_ACK_WAIT": "soon", "OMNIMEMBER_CONCURRENCY": "0",
		"OMNIMEMBER_BACKOFF": "1s,-2s", "OMNIMEMBER_DUPLICATE_WINDOW": "30s", "OMNIMEMBER_LOG_LEVEL": "loud",
		"OMNIMEMBER_ATOMIC_BATCHES": "maybe"} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(name, value)
			_, err := FromEnv()
			require.Error(t, err)
			assert.True(t, strings.Contains(err.Error(), name), "got %q, want the variable named", err)
		})
	}
}

func TestDeadLettersCanBeListedAndReplayed(t *testing.T) {
	srv := brokertest.Start(t)
	nc := brokertest.Connect(t, srv)
	var fixed atomic.Bool
	var handled atomic.Int32
	fn := Function{Name: "tester", Consumes: []string{events.OrderPaid}, Handle: func(context.Context, cloudevents.Event) ([]cloudevents.Event, error) {
		if !fixed.Load() {
			return nil, Permanent(errors.New("rules file rejects this order"))
		}
		handled.Add(1)
		return nil, nil
	}}
	h := startHarness(t, nc, testConfig(), fn)
	brokertest.Publish(t, h.js, events.OrderPaid, orderEvent(t, "order-dl"))
	ctx := context.Background()
	var dead []stream.DeadLetter
	require.Eventually(t, func() bool {
		var err error
		dead, err = stream.ListDeadLetters(ctx, h.js, "tester")
		require.NoError(t, err)
		return len(dead) == 1
	}, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, "order-dl", dead[0].EventID)
	assert.Equal(t, events.OrderPaid, dead[0].EventType)
	assert.Contains(t, dead[0].Reason, "rules file rejects")

	fixed.Store(true) // the fix is deployed
	n, err := stream.ReplayDeadLetters(ctx, h.js, "tester")
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	require.Eventually(t, func() bool { return handled.Load() == 1 }, 10*time.Second, 10*time.Millisecond)
	dead, err = stream.ListDeadLetters(ctx, h.js, "")
	require.NoError(t, err)
	assert.Empty(t, dead, "replayed dead letters are removed")
}

func TestTriggerChoosesPullOrPush(t *testing.T) {
	handle := func(context.Context, cloudevents.Event) ([]cloudevents.Event, error) { return nil, nil }
	chained := Function{Name: "match", Consumes: []string{events.OrderPaid}, Handle: handle}
	front := Function{Name: "ingest", EventsPath: "/v1/events", Handle: handle}
	tests := []struct {
		trigger      string
		wantConsumes bool
		wantPath     string
	}{
		{TriggerJetStream, true, ""},
		{TriggerHTTP, false, "/"},
		{TriggerBoth, true, "/"},
	}
	for _, tt := range tests {
		c := Defaults()
		c.Trigger = tt.trigger
		got := c.applyTrigger([]Function{chained, front})
		assert.Equal(t, tt.wantConsumes, len(got[0].Consumes) > 0, tt.trigger)
		assert.Equal(t, tt.wantPath, got[0].EventsPath, tt.trigger)
		assert.Equal(t, "/v1/events", got[1].EventsPath, "a function with its own path keeps it")
		assert.Empty(t, got[1].Consumes)
	}
}
