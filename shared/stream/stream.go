// Package stream declares omnimember's JetStream topology: the events stream, the dead-letter
// stream, the raw webhook archive and the durable consumer of each function, created idempotently at start.
package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/omnimember/omnimember/events"
)

const (
	// Events carries every contract event on subject `omnimember.<noun>.<verb>`.
	Events = "OMNIMEMBER_EVENTS"
	// DeadLetters keeps events a function gave up on, with the reason in headers.
	DeadLetters = "OMNIMEMBER_DEADLETTER"
	// DeadLetterPrefix starts the dead-letter subject of each function: `omnimember-deadletter.<function>`.
	DeadLetterPrefix = "omnimember-deadletter."
	// Raw keeps every verified native webhook push byte for byte, on `omnimember-raw.<platform>`, so that a
	// window can be re-normalised after a parser fix. Retention is bounded by RawMaxAge and RawMaxBytes.
	Raw = "OMNIMEMBER_RAW"
	// RawPrefix starts the raw subject of each platform.
	RawPrefix = "omnimember-raw."
	// SchedulePrefix starts the subjects of scheduled events in the events stream:
	// `omnimember-schedule.<function>.<event id>`, one schedule per subject (ScheduleSubject).
	SchedulePrefix = "omnimember-schedule."
	// MinDuplicateWindow is the shortest dedupe window the runtime relies on for Nats-Msg-Id.
	MinDuplicateWindow = 2 * time.Minute
)

// Topology sizes the streams. Replicas is 1 embedded and 3 in production.
type Topology struct {
	Replicas        int
	DuplicateWindow time.Duration
	MaxAge          time.Duration
	DeadLetterAge   time.Duration
	// RawMaxAge and RawMaxBytes bound the raw webhook archive; the oldest pushes go first.
	RawMaxAge   time.Duration
	RawMaxBytes int64
}

// DefaultTopology suits one embedded server: one replica, a 2-minute dedupe window, 7 days of
// events, 30 days (at most 1 GiB) of raw webhook pushes.
func DefaultTopology() Topology {
	return Topology{Replicas: 1, DuplicateWindow: MinDuplicateWindow, MaxAge: 7 * 24 * time.Hour, DeadLetterAge: 30 * 24 * time.Hour,
		RawMaxAge: 30 * 24 * time.Hour, RawMaxBytes: 1 << 30}
}

// Validate refuses settings that would break exactly-once publishing.
func (t Topology) Validate() error {
	if t.Replicas < 1 || t.Replicas > 5 {
		return fmt.Errorf("stream replicas %d: want 1..5", t.Replicas)
	}
	if t.DuplicateWindow < MinDuplicateWindow {
		return fmt.Errorf("duplicate window %s: want at least %s", t.DuplicateWindow, MinDuplicateWindow)
	}
	if t.MaxAge <= t.DuplicateWindow || t.DeadLetterAge <= 0 {
		return errors.New("stream max age must exceed the duplicate window and dead letters must be kept")
	}
	if t.RawMaxAge <= t.DuplicateWindow || t.RawMaxBytes < 1<<20 {
		return fmt.Errorf("raw archive max age %s must exceed the duplicate window and max bytes %d must be at least 1 MiB", t.RawMaxAge, t.RawMaxBytes)
	}
	return nil
}

// Subjects lists the subjects of the events stream.
func Subjects() []string {
	out := make([]string, len(events.All))
	for i, t := range events.All {
		out[i] = events.Subject(t)
	}
	return out
}

// ScheduleSubject holds the schedule of a function's event with id (a later one replaces it): at
// its time the server publishes the event on the event's own subject (JetStream message schedules,
// ADR-51, nats-server 2.12+), waking whoever consumes it, as KEDA sees the consumer's lag.
func ScheduleSubject(function, id string) string { return SchedulePrefix + function + "." + id }

// DeadLetterSubject is where a function's dead letters go.
func DeadLetterSubject(function string) string { return DeadLetterPrefix + function }

// RawSubject is where a platform's raw pushes are archived.
func RawSubject(platform string) string { return RawPrefix + platform }

// Ensure creates or updates the streams; running it again changes nothing.
func Ensure(ctx context.Context, js jetstream.JetStream, t Topology) error {
	if err := t.Validate(); err != nil {
		return err
	}
	configs := []jetstream.StreamConfig{{
		Name: Events, Description: "omnimember contract events", Subjects: append(Subjects(), SchedulePrefix+">"),
		Storage: jetstream.FileStorage, Replicas: t.Replicas, Retention: jetstream.LimitsPolicy,
		Duplicates: t.DuplicateWindow, MaxAge: t.MaxAge, Discard: jetstream.DiscardOld,
		AllowAtomicPublish: true, // stream.PublishAtomic: a batch shares one fsync under sync_interval always
		// Scheduled events (ScheduleSubject): a schedule waits on its own subject with a TTL of
		// "never", so the stream's max age does not drop a campaign set weeks ahead.
		AllowMsgSchedules: true, AllowMsgTTL: true,
	}, {
		Name: DeadLetters, Description: "events functions gave up on, replayable", Subjects: []string{DeadLetterPrefix + ">"},
		Storage: jetstream.FileStorage, Replicas: t.Replicas, Retention: jetstream.LimitsPolicy,
		Duplicates: t.DuplicateWindow, MaxAge: t.DeadLetterAge,
	}, {
		Name: Raw, Description: "native webhook pushes byte for byte, for re-normalisation", Subjects: []string{RawPrefix + ">"},
		Storage: jetstream.FileStorage, Replicas: t.Replicas, Retention: jetstream.LimitsPolicy,
		Duplicates: t.DuplicateWindow, MaxAge: t.RawMaxAge, MaxBytes: t.RawMaxBytes, Discard: jetstream.DiscardOld,
	}}
	for _, cfg := range configs {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// ConsumerConfig is the durable pull consumer of one function. MaxDeliver is left unlimited: the
// runtime dead-letters after its own limit, so the broker never drops a message silently.
func ConsumerConfig(function string, eventTypes []string, ackWait time.Duration, maxAckPending int) jetstream.ConsumerConfig {
	subjects := make([]string, len(eventTypes))
	for i, t := range eventTypes {
		subjects[i] = events.Subject(t)
	}
	return jetstream.ConsumerConfig{
		Durable: function, Description: "omnimember function " + function,
		FilterSubjects: subjects, AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait,
		MaxDeliver: -1, MaxAckPending: maxAckPending, DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}
