package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/cenats"
	"github.com/omnimember/omnimember/shared/stream"
	"github.com/prometheus/client_golang/prometheus"
)

// traceExtensions travel from an event to the events it causes (CloudEvents distributed tracing).
var traceExtensions = []string{"traceparent", "tracestate"}

// Publisher publishes a function's events to JetStream and waits until they are stored.
type Publisher struct {
	js       jetstream.JetStream
	function string
	metrics  *metrics
	atomic   bool            // Config.AtomicBatches
	emits    map[string]bool // Function.Emits; nil: any type
	replicas int             // Config.Topology.Replicas, for the function's key-value buckets
}

// Schedule stores ev to be published at at, whoever runs then: a JetStream message schedule on
// stream.ScheduleSubject(function, ev.ID()), which the server turns into ev on its own subject at
// that time (so the consumers' lag wakes their functions, KEDA included). Scheduling the same event
// again replaces its schedule. ev is validated and checked against Emits as Publish does.
func (p *Publisher) Schedule(ctx context.Context, ev cloudevents.Event, at time.Time) error {
	if err := events.Validate(ev); err != nil {
		return Permanent(fmt.Errorf("%s scheduled an invalid %s event %s: %w", p.function, ev.Type(), ev.ID(), err))
	}
	if p.emits != nil && !p.emits[ev.Type()] {
		return Permanent(fmt.Errorf("%s scheduled %s, a type missing from its Emits", p.function, ev.Type()))
	}
	msg, err := cenats.ToMsg(stream.ScheduleSubject(p.function, ev.ID()), ev)
	if err != nil {
		return err
	}
	// The schedule has whole seconds: round up, never fire before at.
	whole := at.UTC().Truncate(time.Second)
	if whole.Before(at) {
		whole = whole.Add(time.Second)
	}
	msg.Header.Set("Nats-Schedule", "@at "+whole.Format(time.RFC3339))
	msg.Header.Set("Nats-Schedule-Target", events.Subject(ev.Type()))
	msg.Header.Set("Nats-TTL", "never") // kept past the stream's max age until it fires
	if _, err := p.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("schedule %s event %s: %w", ev.Type(), ev.ID(), err)
	}
	return nil
}

// JetStream is the connection the publisher stores through, for functions that keep more than
// contract events (ingest's raw webhook archive).
func (p *Publisher) JetStream() jetstream.JetStream { return p.js }

// KeyValue creates or updates one of the function's key-value buckets with the streams' replicas
// (OMNIMEMBER_STREAM_REPLICAS), so that a bucket survives the loss of a server as the streams do.
func (p *Publisher) KeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	cfg.Replicas = p.replicas
	kv, err := p.js.CreateOrUpdateKeyValue(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

// Metrics is the runtime's registry, for a function's own collectors registered from Routes.
func (p *Publisher) Metrics() *prometheus.Registry { return p.metrics.registry }

// MsgID is the Nats-Msg-Id of the index-th event a function emits for an input event, so that a
// retried handler's re-publish is dropped by the stream's duplicate window.
func MsgID(function, inputSource, inputID string, index int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%s\x00%d", function, inputSource, inputID, index))
	return hex.EncodeToString(sum[:16])
}

// Caused is what one event caused: the events its handler emitted, and the context the handler
// ran in (for the trace). Cause is nil for new events, which are their own identity.
type Caused struct {
	Ctx    context.Context
	Cause  *cloudevents.Event
	Events []cloudevents.Event
}

// atomicFrom is the fewest events published as an atomic batch (with Config.AtomicBatches): a
// batch costs two round trips and a staging area in the server.
const atomicFrom = 8

// Publish validates each event against its schema, publishes all of them and returns once
// JetStream has stored every one. cause (nil for a new event) gives the message ids and the trace
// context.
func (p *Publisher) Publish(ctx context.Context, cause *cloudevents.Event, evs []cloudevents.Event) error {
	return p.PublishAll(ctx, []Caused{{Ctx: ctx, Cause: cause, Events: evs}})
}

// PublishAll publishes what several events caused together (a webhook batch's, a job's), none if
// one is invalid. With Config.AtomicBatches, from atomicFrom events on they go as atomic batches
// (stream.PublishAtomic: under sync_interval always, one fsync per batch); a rejected batch (one
// of its events stored before, say) goes again event by event, which the duplicate window makes
// safe.
func (p *Publisher) PublishAll(ctx context.Context, all []Caused) error {
	msgs, types, err := p.messages(all)
	if err != nil {
		return err
	}
	for start := 0; start < len(msgs); start += stream.MaxAtomicBatch {
		end := min(start+stream.MaxAtomicBatch, len(msgs))
		if err := p.store(ctx, msgs[start:end], types[start:end]); err != nil {
			return err
		}
	}
	return nil
}

// messages validates, stamps and encodes every event, each under its deterministic message id.
func (p *Publisher) messages(all []Caused) ([]*nats.Msg, []string, error) {
	var msgs []*nats.Msg
	var types []string
	for _, c := range all {
		for i, ev := range c.Events {
			if err := events.ValidateOnce(c.Ctx, ev); err != nil {
				return nil, nil, Permanent(fmt.Errorf("%s emitted an invalid %s event %s: %w", p.function, ev.Type(), ev.ID(), err))
			}
			if p.emits != nil && !p.emits[ev.Type()] {
				return nil, nil, Permanent(fmt.Errorf("%s emitted %s, a type missing from its Emits (its NATS user may not publish it)", p.function, ev.Type()))
			}
			// A new event is its own identity; a caused one is the cause's index-th output.
			source, id, index := ev.Source(), ev.ID(), 0
			stampTrace(c.Ctx, c.Cause, &c.Events[i])
			if c.Cause != nil {
				source, id, index = c.Cause.Source(), c.Cause.ID(), i
			}
			msg, err := cenats.ToMsg(events.Subject(ev.Type()), c.Events[i])
			if err != nil {
				return nil, nil, Permanent(err)
			}
			msg.Header.Set(jetstream.MsgIDHeader, MsgID(p.function, source, id, index))
			msgs, types = append(msgs, msg), append(types, ev.Type())
		}
	}
	return msgs, types, nil
}

// store publishes msgs (at most one atomic batch) and waits until JetStream has them all.
func (p *Publisher) store(ctx context.Context, msgs []*nats.Msg, types []string) error {
	if p.atomic && len(msgs) >= atomicFrom {
		if err := stream.PublishAtomic(ctx, p.js.Conn(), msgs); err == nil {
			p.metrics.batches.WithLabelValues(p.function, "committed").Inc()
			for _, t := range types {
				p.metrics.eventsOut.WithLabelValues(p.function, typeLabel(t)).Inc()
			}
			return nil
		}
		p.metrics.batches.WithLabelValues(p.function, "rejected").Inc()
		stream.WithoutBatchHeaders(msgs)
	}
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for i, msg := range msgs {
		f, err := p.js.PublishMsgAsync(msg)
		if err != nil {
			return fmt.Errorf("publish %s event: %w", types[i], err)
		}
		futures = append(futures, f)
	}
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				p.metrics.dedupeHits.WithLabelValues(p.function, DedupePublish).Inc()
			} else {
				p.metrics.eventsOut.WithLabelValues(p.function, typeLabel(types[i])).Inc()
			}
		case err := <-f.Err():
			return fmt.Errorf("store %s event in JetStream: %w", types[i], err)
		case <-ctx.Done():
			return fmt.Errorf("wait for JetStream to store %d events: %w", len(msgs), ctx.Err())
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
