package stream

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Settled reports whether a durable consumer has acknowledged (or terminated) every message stored
// so far on its subjects. It compares the consumer's ack floor with the last stored message of each
// of its filter subjects, because a consumer's pending counts are updated asynchronously and can
// read zero for a moment right after a publish.
func Settled(ctx context.Context, js jetstream.JetStream, streamName, durable string) (bool, error) {
	c, err := js.Consumer(ctx, streamName, durable)
	if err != nil {
		return false, fmt.Errorf("consumer %s: %w", durable, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return false, err
	}
	if info.NumPending > 0 || info.NumAckPending > 0 {
		return false, nil
	}
	s, err := js.Stream(ctx, streamName)
	if err != nil {
		return false, err
	}
	filters := info.Config.FilterSubjects
	if info.Config.FilterSubject != "" {
		filters = append(filters, info.Config.FilterSubject)
	}
	for _, subject := range filters {
		last, err := s.GetLastMsgForSubject(ctx, subject)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return false, err
		}
		if info.AckFloor.Stream < last.Sequence {
			return false, nil
		}
	}
	return true, nil
}
