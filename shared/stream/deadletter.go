package stream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Dead-letter headers: why the event was given up, after how many deliveries, and where it came from.
// The original event's own headers travel with it unchanged.
const (
	HeaderDeadLetterReason   = "Omnimember-Deadletter-Reason"
	HeaderDeadLetterCount    = "Omnimember-Deadletter-Deliveries"
	HeaderDeadLetterFunction = "Omnimember-Deadletter-Function"
	HeaderDeadLetterSubject  = "Omnimember-Deadletter-Subject"
	HeaderDeadLetterSequence = "Omnimember-Deadletter-Sequence"
	deadLetterHeaderPrefix   = "Omnimember-Deadletter-"
)

// DeadLetter describes one stored dead letter.
type DeadLetter struct {
	Sequence   uint64    `json:"sequence"`
	Function   string    `json:"function"`
	Subject    string    `json:"subject"`
	EventID    string    `json:"eventId"`
	EventType  string    `json:"eventType"`
	Reason     string    `json:"reason"`
	Deliveries int       `json:"deliveries"`
	At         time.Time `json:"at"`
}

// ListDeadLetters returns the dead letters of one function, or of all when function is empty.
func ListDeadLetters(ctx context.Context, js jetstream.JetStream, function string) ([]DeadLetter, error) {
	var out []DeadLetter
	err := eachDeadLetter(ctx, js, function, func(m jetstream.Msg, meta *jetstream.MsgMetadata) error {
		h := m.Headers()
		n, _ := strconv.Atoi(h.Get(HeaderDeadLetterCount))
		out = append(out, DeadLetter{Sequence: meta.Sequence.Stream, Function: h.Get(HeaderDeadLetterFunction),
			Subject: h.Get(HeaderDeadLetterSubject), EventID: h.Get("ce-id"), EventType: h.Get("ce-type"),
			Reason: h.Get(HeaderDeadLetterReason), Deliveries: n, At: meta.Timestamp})
		return nil
	})
	return out, err
}

// ReplayDeadLetters republishes dead letters to the subjects they came from, oldest first, and
// deletes each once its replay is stored. Every consumer of that subject sees the event again;
// handlers are idempotent, so only the one that failed does new work.
func ReplayDeadLetters(ctx context.Context, js jetstream.JetStream, function string) (int, error) {
	replayed := 0
	err := eachDeadLetter(ctx, js, function, func(m jetstream.Msg, meta *jetstream.MsgMetadata) error {
		subject := m.Headers().Get(HeaderDeadLetterSubject)
		if subject == "" {
			return fmt.Errorf("dead letter %d has no original subject", meta.Sequence.Stream)
		}
		msg := nats.NewMsg(subject)
		for k, v := range m.Headers() {
			if !strings.HasPrefix(k, deadLetterHeaderPrefix) && k != jetstream.MsgIDHeader {
				msg.Header[k] = v
			}
		}
		msg.Header.Set(jetstream.MsgIDHeader, "replay:"+strconv.FormatUint(meta.Sequence.Stream, 10))
		msg.Data = m.Data()
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			return fmt.Errorf("replay dead letter %d: %w", meta.Sequence.Stream, err)
		}
		if err := deleteMsg(ctx, js, meta.Sequence.Stream); err != nil {
			return err
		}
		replayed++
		return nil
	})
	return replayed, err
}

func deleteMsg(ctx context.Context, js jetstream.JetStream, seq uint64) error {
	s, err := js.Stream(ctx, DeadLetters)
	if err != nil {
		return err
	}
	if err := s.DeleteMsg(ctx, seq); err != nil {
		return fmt.Errorf("remove replayed dead letter %d: %w", seq, err)
	}
	return nil
}

func eachDeadLetter(ctx context.Context, js jetstream.JetStream, function string, fn func(jetstream.Msg, *jetstream.MsgMetadata) error) error {
	filter := DeadLetterPrefix + ">"
	if function != "" {
		filter = DeadLetterSubject(function)
	}
	cons, err := js.OrderedConsumer(ctx, DeadLetters, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		return fmt.Errorf("read dead letters: %w", err)
	}
	for {
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumPending == 0 {
			return nil
		}
		batch, err := cons.Fetch(int(min(info.NumPending, 256)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return err
		}
		for m := range batch.Messages() {
			meta, err := m.Metadata()
			if err != nil {
				return err
			}
			if err := fn(m, meta); err != nil {
				return err
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return err
		}
	}
}
