package ingest

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Poll outcomes counted by omnimember_polls_total, beside the webhooks' OutcomeUnhandled (TMC topics
// omnimember does not turn into events) and OutcomeError (a failed poll: the platform API,
// JetStream or the cursor, retried with backoff).
const (
	OutcomeItems   = "items"   // messages (TMC) or orders (JD) received
	OutcomeDropped = "dropped" // messages or orders that cannot be parsed (logged, never published)
)

// pollMetrics are the pollers' collectors on the runtime's registry.
type pollMetrics struct {
	outcomes *prometheus.CounterVec
	lag      *prometheus.GaugeVec
}

// metricsFor registers the pollers' collectors once per registry (several pollers share them).
func metricsFor(b Broker) *pollMetrics {
	reg := b.Metrics()
	if reg == nil {
		return nil
	}
	m := &pollMetrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "omnimember", Name: "polls_total",
			Help: "What the platform pollers saw, by poller (tmc, jd) and outcome (items, unhandled, dropped, error)."}, []string{"poller", "outcome"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "omnimember", Name: "poll_lag_seconds",
			Help: "How far behind now the poller's last acknowledged position is, by poller."}, []string{"poller"}),
	}
	m.outcomes = register(reg, m.outcomes)
	m.lag = register(reg, m.lag)
	return m
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	var already prometheus.AlreadyRegisteredError
	if err := reg.Register(c); errors.As(err, &already) {
		return already.ExistingCollector.(C)
	}
	return c
}

func (m *pollMetrics) add(poller, outcome string, n int) {
	if m != nil && n > 0 {
		m.outcomes.WithLabelValues(poller, outcome).Add(float64(n))
	}
}

func (m *pollMetrics) setLag(poller string, seconds float64) {
	if m != nil {
		m.lag.WithLabelValues(poller).Set(max(seconds, 0))
	}
}
