package runtime

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/broker/brokertest"
	"github.com/omnimember/omnimember/shared/stream"
)

// A consumed event's traceparent (the ce-traceparent header over NATS) is the parent of the
// handler's span, and the emitted event carries that span's context in its own ce-traceparent.
func TestConsumerSpanContinuesTheEventsTrace(t *testing.T) {
	srv := brokertest.Start(t)
	nc := brokertest.Connect(t, srv)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	rt, err := New(context.Background(), testConfig(), nc, slog.New(slog.NewJSONHandler(io.Discard, nil)), WithTracerProvider(tp))
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	fn := Function{Name: "tracer", Consumes: []string{events.OrderPaid}, Handle: func(_ context.Context, ev cloudevents.Event) ([]cloudevents.Event, error) {
		return []cloudevents.Event{tierEventFor(t, ev)}, nil
	}}
	go func() { done <- rt.ServeListener(ctx, ln, fn) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })

	in := orderEvent(t, "traced-1")
	in.SetExtension("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	in.SetExtension("tracestate", "vendor=abc")
	brokertest.Publish(t, rt.JetStream(), events.OrderPaid, in)
	require.Eventually(t, func() bool { return len(rec.Ended()) == 1 }, 10*time.Second, 5*time.Millisecond)

	span := rec.Ended()[0]
	assert.Equal(t, "tracer "+events.OrderPaid, span.Name())
	assert.Equal(t, trace.SpanKindConsumer, span.SpanKind())
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", span.SpanContext().TraceID().String())
	assert.Equal(t, "00f067aa0ba902b7", span.Parent().SpanID().String(), "got parent, want the event's span")
	assert.Equal(t, "vendor=abc", span.SpanContext().TraceState().String(), "tracestate travels too")

	out := brokertest.Messages(t, rt.JetStream(), stream.Events, events.TierChanged)
	require.Len(t, out, 1)
	want := "00-4bf92f3577b34da6a3ce929d0e0e4736-" + span.SpanContext().SpanID().String() + "-01"
	assert.Equal(t, want, out[0].Headers().Get("ce-traceparent"), "got the output's ce-traceparent, want the handler span")
	assert.Equal(t, "vendor=abc", out[0].Headers().Get("ce-tracestate"))
}
