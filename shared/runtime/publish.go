package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/cenats"
	"github.com/prometheus/client_golang/prometheus"
)

// traceExtensions travel from an event to the events it causes (CloudEvents distributed tracing).
var traceExtensions = []string{"traceparent", "tracestate"}

// Publisher publishes a function's events to JetStream and waits until they are stored.
type Publisher struct {
	js       jetstream.JetStream
	function string
	metrics  *metrics
}

// JetStream is the connection the publisher stores through, for functions that keep more than
// contract events (ingest's raw webhook archive).
func (p *Publisher) JetStream() jetstream.JetStream { return p.js }

// Metrics is the runtime's registry, for a function's own collectors registered from Routes.
func (p *Publisher) Metrics() *prometheus.Registry { return p.metrics.registry }

// MsgID is the Nats-Msg-Id of the index-th event a function emits for an input event, so that a
// retried handler's re-publish is dropped by the stream's duplicate window.
func MsgID(function, inputSource, inputID string, index int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%s\x00%d", function, inputSource, inputID, index))
	return hex.EncodeToString(sum[:16])
}

// Publish validates each event against its schema, publishes all of them asynchronously and returns
// once JetStream has acknowledged every one. cause (nil for a new event) gives the message ids and
// the trace context.
func (p *Publisher) Publish(ctx context.Context, cause *cloudevents.Event, evs []cloudevents.Event) error {
	futures := make([]jetstream.PubAckFuture, 0, len(evs))
	for i, ev := range evs {
		if err := events.Validate(ev); err != nil {
			return Permanent(fmt.Errorf("%s emitted an invalid %s event %s: %w", p.function, ev.Type(), ev.ID(), err))
		}
		// A new event is its own identity; a caused one is the cause's index-th output.
		source, id, index := ev.Source(), ev.ID(), 0
		stampTrace(ctx, cause, &evs[i])
		if cause != nil {
			source, id, index = cause.Source(), cause.ID(), i
		}
		msg, err := cenats.ToMsg(events.Subject(ev.Type()), evs[i])
		if err != nil {
			return Permanent(err)
		}
		msg.Header.Set(jetstream.MsgIDHeader, MsgID(p.function, source, id, index))
		f, err := p.js.PublishMsgAsync(msg)
		if err != nil {
			return fmt.Errorf("publish %s event %s: %w", ev.Type(), ev.ID(), err)
		}
		futures = append(futures, f)
	}
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				p.metrics.dedupeHits.WithLabelValues(p.function, DedupePublish).Inc()
			} else {
				p.metrics.eventsOut.WithLabelValues(p.function, typeLabel(evs[i].Type())).Inc()
			}
		case err := <-f.Err():
			return fmt.Errorf("store %s event %s in JetStream: %w", evs[i].Type(), evs[i].ID(), err)
		case <-ctx.Done():
			return fmt.Errorf("wait for JetStream to store %d events: %w", len(evs), ctx.Err())
		}
	}
	return nil
}

func inheritTrace(cause, ev *cloudevents.Event) {
	have := ev.Extensions()
	for name, v := range cause.Extensions() {
		for _, t := range traceExtensions {
			if name == t && have[name] == nil {
				ev.SetExtension(name, v)
			}
		}
	}
}
