package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/functions/ingest"
	"github.com/omnimember/omnimember/functions/match"
	"github.com/omnimember/omnimember/functions/notify"
	pointsaward "github.com/omnimember/omnimember/functions/points-award"
	tierevaluate "github.com/omnimember/omnimember/functions/tier-evaluate"
)

func functionOf(s sdktrace.ReadOnlySpan) string {
	for _, a := range s.Attributes() {
		if a.Key == attribute.Key("omnimember.function") {
			return a.Value.AsString()
		}
	}
	return ""
}

func eventTypeOf(s sdktrace.ReadOnlySpan) string {
	for _, a := range s.Attributes() {
		if a.Key == attribute.Key("cloudevents.event_type") {
			return a.Value.AsString()
		}
	}
	return ""
}

// TestOneOrderIsOneTrace posts one order webhook carrying a W3C traceparent header, as a platform
// gateway with tracing would, and follows the spans the real OpenTelemetry SDK recorded: every
// span is in the caller's trace, and the notification's span descends, parent by parent, from
// tier-evaluate, points-award, match, ingest and the HTTP request.
func TestOneOrderIsOneTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	opts := testOptions(t, t.TempDir())
	opts.TracerProvider = tp
	s := start(t, opts)

	const callerTrace, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	// 1 299.00 yuan lifts a new member to silver under the default ladder, so tier-evaluate emits
	// tier.changed and notify sends the upgrade notice.
	ev := orderEvent(t, "trace-1", "tmall", 129900, events.Identity{Type: "phone", Value: "13812340000"})
	body, err := json.Marshal(ev)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, "http://"+s.Addr+ingest.EventsPath, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/cloudevents+json")
	req.Header.Set("Authorization", "Bearer "+testSenderToken)
	req.Header.Set("traceparent", "00-"+callerTrace+"-"+callerSpan+"-01")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	waitQuiet(t, s)

	// A consumer's span ends just after its ack, so the last one may trail the quiet check.
	var notice sdktrace.ReadOnlySpan
	require.Eventually(t, func() bool {
		for _, sp := range rec.Ended() {
			if functionOf(sp) == notify.Name && eventTypeOf(sp) == events.TierChanged {
				notice = sp
				return true
			}
		}
		return false
	}, 10*time.Second, 5*time.Millisecond, "notify handled the tier change")

	spans := rec.Ended()
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, sp := range spans {
		assert.Equal(t, callerTrace, sp.SpanContext().TraceID().String(), "span %q: got trace id, want the caller's", sp.Name())
		byID[sp.SpanContext().SpanID()] = sp
	}

	wantChain := []string{notify.Name, tierevaluate.Name, pointsaward.Name, match.Name, ingest.Name}
	var got []string
	sp := notice
	for sp != nil && functionOf(sp) != "" {
		got = append(got, functionOf(sp))
		sp = byID[sp.Parent().SpanID()]
	}
	require.Equal(t, wantChain, got, "got the notification's ancestry, want the chain in order")
	require.NotNil(t, sp, "ingest's span has a recorded parent: the HTTP request")
	assert.Equal(t, trace.SpanKindServer, sp.SpanKind())
	assert.Equal(t, "POST "+ingest.EventsPath, sp.Name())
	assert.Equal(t, callerSpan, sp.Parent().SpanID().String(), "the request continues the caller's span")
	assert.True(t, sp.Parent().IsRemote())
}

// Without a traceparent header the request starts a trace of its own, and the chain still
// shares it.
func TestAnOrderWithoutTraceContextStartsOneTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	opts := testOptions(t, t.TempDir())
	opts.TracerProvider = tp
	s := start(t, opts)
	post(t, s, orderEvent(t, "trace-2", "jd", 5000, events.Identity{Type: "phone", Value: "13812340001"}))

	var functions map[string]bool
	require.Eventually(t, func() bool {
		functions = map[string]bool{}
		for _, sp := range rec.Ended() {
			functions[functionOf(sp)] = true
		}
		return functions[ingest.Name] && functions[match.Name] && functions[pointsaward.Name] && functions[tierevaluate.Name]
	}, 10*time.Second, 5*time.Millisecond, "got spans of %v", functions)
	traces := map[trace.TraceID]int{}
	for _, sp := range rec.Ended() {
		traces[sp.SpanContext().TraceID()]++
	}
	assert.Len(t, traces, 1, "got traces %v, want one", traces)
}
