package runtime

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Trace exporters (OTEL_TRACES_EXPORTER).
const (
	TracesNone = "none"
	TracesOTLP = "otlp"
)

// tracesFromEnv is off unless asked for: OTEL_TRACES_EXPORTER=otlp, or an OTLP endpoint set
// without OTEL_TRACES_EXPORTER. (The OpenTelemetry default is otlp; ours is none, so that a
// function without a collector pays nothing and logs no export errors.)
func tracesFromEnv() (string, error) {
	if v, ok := os.LookupEnv("OTEL_TRACES_EXPORTER"); ok && v != "" {
		switch v = strings.ToLower(strings.TrimSpace(v)); v {
		case TracesNone, TracesOTLP:
			return v, nil
		}
		return TracesNone, fmt.Errorf("OTEL_TRACES_EXPORTER %q: want %s or %s", v, TracesOTLP, TracesNone)
	}
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" {
		return TracesOTLP, nil
	}
	return TracesNone, nil
}

// NewOTLPTracerProvider exports spans over OTLP/HTTP, configured by the standard OTEL_EXPORTER_OTLP_*
// variables (endpoint, headers, timeout), with service.name set to service unless OTEL_SERVICE_NAME
// or OTEL_RESOURCE_ATTRIBUTES say otherwise, and the sampler from OTEL_TRACES_SAMPLER.
func NewOTLPTracerProvider(ctx context.Context, service string) (*sdktrace.TracerProvider, error) {
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	res, err := resource.New(ctx, resource.WithAttributes(attribute.String("service.name", service)), resource.WithFromEnv())
	if err != nil {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}

// traceContext is the W3C Trace Context propagator: the traceparent/tracestate pair travels as HTTP
// headers and, per the CloudEvents distributed tracing extension, as event extensions.
var traceContext = propagation.TraceContext{}

// eventCarrier reads and writes the distributed tracing extension attributes of an event.
type eventCarrier struct{ ev *cloudevents.Event }

func (c eventCarrier) Get(key string) string {
	v, ok := c.ev.Extensions()[key]
	if !ok {
		return ""
	}
	s, _ := v.(string)
	return s
}

func (c eventCarrier) Set(key, value string) { c.ev.SetExtension(key, value) }

func (c eventCarrier) Keys() []string { return traceExtensions }

// tracer is nil when tracing is off: the runtime then only passes the input's trace extensions on.
type tracer struct{ t trace.Tracer }

func newTracer(tp trace.TracerProvider) *tracer {
	if tp == nil {
		return nil
	}
	return &tracer{t: tp.Tracer("github.com/omnimember/omnimember/shared/runtime")}
}

// startHandler starts a function's span for one event, as a child of the event's traceparent if
// it has one, else of the span already in ctx (the HTTP request's).
func (t *tracer) startHandler(ctx context.Context, function string, ev *cloudevents.Event, kind trace.SpanKind, delivery uint64) (context.Context, trace.Span) {
	if t == nil {
		return ctx, nil
	}
	if (eventCarrier{ev}).Get("traceparent") != "" {
		ctx = traceContext.Extract(ctx, eventCarrier{ev})
	}
	attrs := []attribute.KeyValue{attribute.String("cloudevents.event_id", ev.ID()), attribute.String("cloudevents.event_source", ev.Source()),
		attribute.String("cloudevents.event_type", ev.Type()), attribute.String("omnimember.function", function)}
	if delivery > 0 {
		attrs = append(attrs, attribute.Int64("messaging.message.delivery_count", int64(delivery)))
	}
	return t.t.Start(ctx, function+" "+ev.Type(), trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
}

// endSpan records the outcome and ends the span (nil when tracing is off).
func endSpan(span trace.Span, outcome string, err error) {
	if span == nil {
		return
	}
	span.SetAttributes(attribute.String("omnimember.outcome", outcome))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, outcome)
	}
	span.End()
}

// stampTrace gives an emitted event the trace context of the span in ctx, so the next function's
// span is its child; without a live span (tracing off) the event inherits the cause's extensions.
func stampTrace(ctx context.Context, cause, ev *cloudevents.Event) {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		// A pass-through output (ingest's) shares its context with the cause: stamp a copy.
		ev.Context = ev.Context.Clone()
		traceContext.Inject(ctx, eventCarrier{ev})
		return
	}
	if cause != nil {
		inheritTrace(cause, ev)
	}
}

// traceHTTP gives every HTTP request but the probes and the scrape a server span, continuing from
// an incoming traceparent header, so events a route publishes belong to the caller's trace.
func (t *tracer) traceHTTP(next http.Handler) http.Handler {
	if t == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch req.URL.Path {
		case "/healthz", "/readyz", "/metrics":
			next.ServeHTTP(w, req)
			return
		}
		ctx := traceContext.Extract(req.Context(), propagation.HeaderCarrier(req.Header))
		ctx, span := t.t.Start(ctx, req.Method+" "+req.URL.Path, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", req.Method), attribute.String("url.path", req.URL.Path)))
		defer span.End()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		routed := req.WithContext(ctx)
		next.ServeHTTP(sw, routed)
		span.SetAttributes(attribute.Int("http.response.status_code", sw.status))
		if routed.Pattern != "" { // the mux's route, not the raw path: span names stay few
			span.SetName(req.Method + " " + strings.TrimPrefix(routed.Pattern, req.Method+" "))
		}
		if sw.status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(sw.status))
		}
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// shutdownTracing flushes spans still buffered, within the budget.
func shutdownTracing(tp *sdktrace.TracerProvider, within time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	return tp.Shutdown(ctx)
}
