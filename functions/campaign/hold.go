package campaign

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
	"github.com/omnimember/omnimember/shared/stream"
)

// SendingConsumer is a second durable consumer on campaign.triggered whose messages the worker
// holds, unacknowledged, while their campaign is still to be fanned out: KEDA's scaler counts
// pending and ack-pending messages, so the worker stays up until the fan-out is done (and a new one
// wakes if it stopped half-way: its held messages come back after the ack wait), then reaches zero.
const SendingConsumer = "campaign-sending"

// holdAckWait is how long a held message stays with a worker that stopped touching it.
const holdAckWait = time.Minute

// SendingConsumerConfig defines SendingConsumer (made by deploy's setup job and by the worker).
func SendingConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{Durable: SendingConsumer, Description: "campaigns still to fan out (held while sending)",
		FilterSubjects: []string{events.Subject(events.CampaignTriggered)}, AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: holdAckWait, MaxDeliver: -1, DeliverPolicy: jetstream.DeliverAllPolicy}
}

// holds are the messages the worker holds, by campaign.
type holds struct {
	cons jetstream.Consumer
	msgs map[string]jetstream.Msg
}

// hold takes what SendingConsumer has for this worker, keeps holding (in progress) each message
// whose campaign is unfinished and acknowledges the others.
func (h *Handler) hold(ctx context.Context, pub *runtime.Publisher) error {
	if h.holds == nil {
		cons, err := pub.JetStream().CreateOrUpdateConsumer(ctx, stream.Events, SendingConsumerConfig())
		if err != nil {
			return fmt.Errorf("consumer %s: %w", SendingConsumer, err)
		}
		h.holds = &holds{cons: cons, msgs: map[string]jetstream.Msg{}}
	}
	batch, err := h.holds.cons.FetchNoWait(100)
	if err != nil {
		return err
	}
	for m := range batch.Messages() {
		// Keyed by the campaign's id (campaign.triggered's event id). A redelivery replaces the
		// delivery held (acknowledging the older one would acknowledge the message).
		h.holds.msgs[m.Headers().Get("ce-id")] = m
	}
	for id, m := range h.holds.msgs {
		open, err := h.unfinished(ctx, id)
		if err != nil {
			return err
		}
		if open {
			err = m.InProgress()
		} else {
			err = m.Ack()
			delete(h.holds.msgs, id)
		}
		if err != nil {
			return fmt.Errorf("hold campaign %s: %w", id, err)
		}
	}
	return batch.Error()
}

// unfinished: the campaign is triggered or sending, or scheduled and due (its trigger is being
// handled); drafts, campaigns not due yet, sent, failed and unknown ones hold nothing.
func (h *Handler) unfinished(ctx context.Context, id string) (bool, error) {
	var c Campaign
	err := h.Store.Get(ctx, Campaigns, id, &c)
	if errors.Is(err, store.ErrNotFound) || store.CheckNames(Campaigns, id) != nil {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	switch c.Status {
	case StatusTriggered, StatusSending:
		return true, nil
	case StatusScheduled:
		return c.ScheduledAt != nil && !c.ScheduledAt.After(h.Now().Add(skewAllowed)), nil
	}
	return false, nil
}
