package runtime

import (
	"net/http"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metric label values. The label names are part of the operations contract (README "Metrics"):
// function, type, trigger, class, source.
const (
	TriggerLabelJetStream = "jetstream"
	TriggerLabelHTTP      = "http"
	ClassTransient        = "transient"
	ClassPermanent        = "permanent"
	DedupePublish         = "publish" // JetStream dropped a re-publish inside the duplicate window
	DedupeReceipt         = "receipt" // a handler answered a repeat from its receipt
)

// metrics are one runtime's Prometheus collectors, on a registry of its own so that several
// runtimes in one process (tests, the all-in-one stack) never collide.
type metrics struct {
	registry     *prometheus.Registry
	eventsIn     *prometheus.CounterVec
	eventsOut    *prometheus.CounterVec
	handlerTime  *prometheus.HistogramVec
	errors       *prometheus.CounterVec
	redeliveries *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	dedupeHits   *prometheus.CounterVec
	batches      *prometheus.CounterVec
}

func newMetrics() *metrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "omnimember", Name: name, Help: help}, labels)
	}
	m := &metrics{
		registry:  prometheus.NewRegistry(),
		eventsIn:  counter("events_in_total", "Events handed to a function's handler, by function, event type and trigger (jetstream, http).", "function", "type", "trigger"),
		eventsOut: counter("events_out_total", "Events a function emitted and JetStream stored, by function and event type.", "function", "type"),
		handlerTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "omnimember", Name: "handler_duration_seconds",
			Help:    "Time a handler took for one event (without publishing its outputs), by function and event type.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10}}, []string{"function", "type"}),
		errors:       counter("handler_errors_total", "Handler and publish errors, by function, event type and class (transient, permanent).", "function", "type", "class"),
		redeliveries: counter("redeliveries_total", "Events delivered more than once by JetStream, by function and event type.", "function", "type"),
		deadLettered: counter("dead_lettered_total", "Events moved to the dead-letter stream, by function and event type.", "function", "type"),
		dedupeHits:   counter("dedupe_hits_total", "Repeats absorbed, by function and source (publish: JetStream's duplicate window; receipt: a handler's receipt).", "function", "source"),
		batches:      counter("atomic_batches_total", "Atomic batch publishes, by function and outcome (committed; rejected: published again event by event).", "function", "outcome"),
	}
	m.registry.MustRegister(m.eventsIn, m.eventsOut, m.handlerTime, m.errors, m.redeliveries, m.deadLettered, m.dedupeHits, m.batches,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// typeLabel keeps the type label to the contract's event types: an HTTP sender must not be able
// to create series at will.
func typeLabel(t string) string {
	if events.Known(t) {
		return t
	}
	return "unknown"
}

func (m *metrics) handled(function, eventType, trigger string, took time.Duration) {
	t := typeLabel(eventType)
	m.eventsIn.WithLabelValues(function, t, trigger).Inc()
	m.handlerTime.WithLabelValues(function, t).Observe(took.Seconds())
}

func (m *metrics) failed(function, eventType string, err error) {
	class := ClassTransient
	if IsPermanent(err) {
		class = ClassPermanent
	}
	m.errors.WithLabelValues(function, typeLabel(eventType), class).Inc()
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// Metrics is the runtime's registry, for tests and for functions that add their own collectors.
func (r *Runtime) Metrics() *prometheus.Registry { return r.metrics.registry }

// replayCounter is the hook receipt.OnReplay calls when a handler answers from its receipt.
func (m *metrics) replayCounter(function string) func() {
	c := m.dedupeHits.WithLabelValues(function, DedupeReceipt)
	return c.Inc
}
