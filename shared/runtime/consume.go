package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/cenats"
	"github.com/omnimember/omnimember/shared/receipt"
	"github.com/omnimember/omnimember/shared/stream"
	"go.opentelemetry.io/otel/trace"
)

type consumer struct {
	fn      Function
	cfg     Config
	js      jetstream.JetStream
	pub     *Publisher
	log     *slog.Logger
	work    chan jetstream.Msg
	wg      sync.WaitGroup
	cc      jetstream.ConsumeContext
	metrics *metrics
	tracer  *tracer
	replay  func() // counts a receipt replay as a dedupe hit
}

// ConsumerConfig is the durable consumer of a function consuming eventTypes under this
// configuration: what the function reconciles at start and what deploy's setup job creates
// before any function runs (so KEDA sees its lag from the first event). Four pulls' worth of
// messages may wait for an ack, so a slow handler does not starve the workers.
func (c Config) ConsumerConfig(function string, eventTypes []string) jetstream.ConsumerConfig {
	return stream.ConsumerConfig(function, eventTypes, c.AckWait, c.Concurrency*4)
}

// startConsumer creates the function's durable consumer and starts Concurrency workers on it.
func startConsumer(ctx context.Context, r *Runtime, fn Function) (*consumer, error) {
	cons, err := r.js.CreateOrUpdateConsumer(ctx, stream.Events, r.cfg.ConsumerConfig(fn.Name, fn.Consumes))
	if err != nil {
		return nil, fmt.Errorf("create consumer %s: %w", fn.Name, err)
	}
	c := &consumer{fn: fn, cfg: r.cfg, js: r.js, pub: r.publisherFor(fn), log: r.log.With("function", fn.Name),
		work: make(chan jetstream.Msg, r.cfg.Concurrency), metrics: r.metrics, tracer: r.tracer, replay: r.metrics.replayCounter(fn.Name)}
	for range r.cfg.Concurrency {
		c.wg.Go(c.worker)
	}
	c.cc, err = cons.Consume(func(m jetstream.Msg) { c.work <- m },
		jetstream.PullMaxMessages(r.cfg.Concurrency*2),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if !errors.Is(err, jetstream.ErrNoHeartbeat) {
				c.log.Warn("consumer pull error", "error", err)
			}
		}))
	if err != nil {
		close(c.work)
		c.wg.Wait()
		return nil, fmt.Errorf("consume %s: %w", fn.Name, err)
	}
	return c, nil
}

// stop lets buffered messages finish, then waits for the workers. Unacked messages come back
// to another instance after AckWait.
func (c *consumer) stop() {
	c.cc.Drain()
	<-c.cc.Closed()
	close(c.work)
	c.wg.Wait()
}

func (c *consumer) worker() {
	for m := range c.work {
		c.process(m)
	}
}

func (c *consumer) process(m jetstream.Msg) {
	start := time.Now()
	meta, err := m.Metadata()
	if err != nil {
		c.log.Error("message without JetStream metadata", "subject", m.Subject(), "error", err)
		return
	}
	// The handler must finish before the broker's ack wait would redeliver the event elsewhere.
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.AckWait*9/10)
	defer cancel()
	ctx = context.WithValue(ctx, deliveryKey{}, meta.NumDelivered)
	ctx, notes := withAnnotations(ctx)
	ctx = receipt.OnReplay(ctx, c.replay)
	ctx = events.WithValidationMemo(ctx) // outputs validated before a commit are not validated again

	ev, err := cenats.FromMsg(m.Headers(), m.Data())
	var span trace.Span
	var emitted int
	switch {
	case err != nil:
		err = Permanent(fmt.Errorf("decode CloudEvent: %w", err))
	case meta.NumDelivered > uint64(c.cfg.MaxDeliver):
		err = fmt.Errorf("gave up after %d deliveries", meta.NumDelivered)
	default:
		if meta.NumDelivered > 1 {
			c.metrics.redeliveries.WithLabelValues(c.fn.Name, typeLabel(ev.Type())).Inc()
		}
		ctx, span = c.tracer.startHandler(ctx, c.fn.Name, &ev, trace.SpanKindConsumer, meta.NumDelivered)
		var outs []cloudevents.Event
		began := time.Now()
		outs, err = call(ctx, c.fn.Handle, ev)
		c.metrics.handled(c.fn.Name, ev.Type(), TriggerLabelJetStream, time.Since(began))
		if err == nil {
			err = c.pub.Publish(ctx, &ev, outs)
		}
		emitted = len(outs)
	}
	outcome := c.settle(ctx, m, meta, err)
	if err != nil {
		c.metrics.failed(c.fn.Name, ev.Type(), err)
		if outcome == outcomeDeadLettered {
			c.metrics.deadLettered.WithLabelValues(c.fn.Name, typeLabel(ev.Type())).Inc()
		}
	}
	endSpan(span, outcome, err)
	attrs := []slog.Attr{slog.String("id", ev.ID()), slog.String("type", ev.Type()),
		slog.Uint64("deliveries", meta.NumDelivered), slog.String("outcome", outcome),
		slog.Int("emitted", emitted), slog.Duration("took", time.Since(start))}
	attrs = append(attrs, notes.attrs...)
	if span != nil { // the log line leads to the trace
		attrs = append(attrs, slog.String("traceId", span.SpanContext().TraceID().String()))
	}
	level := slog.LevelInfo
	if err != nil {
		attrs = append(attrs, slog.String("error", logSafe(err)))
		level = slog.LevelWarn
	}
	c.log.LogAttrs(ctx, level, "event", attrs...)
}

const outcomeDeadLettered = "dead-lettered"

// settle is the one place errors become broker actions: nil → double ack; permanent, or transient
// on the last allowed delivery → dead-letter then terminate; transient → nak with backoff.
func (c *consumer) settle(ctx context.Context, m jetstream.Msg, meta *jetstream.MsgMetadata, err error) string {
	ackCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err == nil {
		// A lost single ack would redeliver and re-run the handler; DoubleAck waits for the broker.
		if ackErr := m.DoubleAck(ackCtx); ackErr != nil {
			c.log.Warn("ack failed; the event will be redelivered and deduplicated", "error", ackErr)
		}
		return "acked"
	}
	if IsPermanent(err) || meta.NumDelivered >= uint64(c.cfg.MaxDeliver) {
		if dlErr := c.deadLetter(ackCtx, m, meta, err); dlErr != nil {
			_ = m.NakWithDelay(c.cfg.backoffFor(meta.NumDelivered))
			return "retry (dead-letter failed: " + dlErr.Error() + ")"
		}
		return outcomeDeadLettered
	}
	_ = m.NakWithDelay(c.cfg.backoffFor(meta.NumDelivered))
	return "retry"
}

func (c *consumer) deadLetter(ctx context.Context, m jetstream.Msg, meta *jetstream.MsgMetadata, cause error) error {
	dl := nats.NewMsg(stream.DeadLetterSubject(c.fn.Name))
	for k, v := range m.Headers() {
		if len(k) < 5 || k[:5] != "Nats-" {
			dl.Header[k] = v
		}
	}
	reason := cause.Error()
	dl.Header.Set(stream.HeaderDeadLetterReason, reason)
	dl.Header.Set(stream.HeaderDeadLetterCount, strconv.FormatUint(meta.NumDelivered, 10))
	dl.Header.Set(stream.HeaderDeadLetterFunction, c.fn.Name)
	dl.Header.Set(stream.HeaderDeadLetterSubject, m.Subject())
	dl.Header.Set(stream.HeaderDeadLetterSequence, strconv.FormatUint(meta.Sequence.Stream, 10))
	dl.Header.Set(jetstream.MsgIDHeader, c.fn.Name+":"+strconv.FormatUint(meta.Sequence.Stream, 10))
	dl.Data = m.Data()
	if _, err := c.js.PublishMsg(ctx, dl); err != nil {
		return fmt.Errorf("publish dead letter: %w", err)
	}
	if len(reason) > 200 {
		reason = reason[:200]
	}
	return m.TermWithReason(reason)
}

// call runs the handler and turns a panic into a transient error, so the event is retried and,
// if it keeps panicking, dead-lettered with the panic as its reason. The stack goes to the log
// line and the dead letter, never to an HTTP answer (writeHandlerError).
func call(ctx context.Context, h Handler, ev cloudevents.Event) (outs []cloudevents.Event, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panicked: %v\n%s", r, debug.Stack())
		}
	}()
	return h(ctx, ev)
}
