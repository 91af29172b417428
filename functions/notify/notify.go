// Package notify turns tier changes, points movements and notification requests into messages to
// members and into level/balance syncs to the platforms they belong to; it delivers each at most
// once per (source event, channel) and reports it sent, suppressed or failed.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/contact"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
)

// Name is the function's name.
const Name = "notify"

// Consumes lists the events that become notifications or syncs.
var Consumes = []string{events.TierChanged, events.PointsAwarded, events.PointsReversed, events.PointsRedeemed,
	events.PointsExpired, events.PointsExpiring, events.RedemptionReversed, events.NotificationRequested, events.MemberErased}

// Emits lists what notify publishes: each notification's outcome.
var Emits = []string{events.NotificationSent, events.NotificationSuppressed, events.NotificationFailed}

// Notification is one message to one member on one channel (a sync is one to a platform).
type Notification struct {
	ID         string            `json:"id"`
	OneID      string            `json:"oneId"`
	Category   string            `json:"category"`
	Channel    string            `json:"channel"`
	Template   string            `json:"template"`
	Locale     string            `json:"locale"`
	Vars       map[string]string `json:"vars,omitempty"`
	Text       string            `json:"text"`
	SourceID   string            `json:"sourceId"`
	CampaignID string            `json:"campaignId,omitempty"`
	CreatedAt  time.Time         `json:"createdAt"`
}

// CategorySync marks a notification that tells a platform a member's level and balance.
const CategorySync = "sync"

// Sink delivers to a provider outside the store, with the notification id as idempotency key.
type Sink interface {
	Deliver(ctx context.Context, n Notification) error
}

// TxSink delivers by writing into the store, inside the transaction that records the outcome:
// exactly once.
type TxSink interface {
	DeliverTx(tx store.Tx, n Notification) error
}

// ErrRejected wraps a provider's refusal that retrying cannot change (a 4xx): the notification fails at once.
var ErrRejected = errors.New("rejected by the provider")

// Store is the part of the store notify uses: transactions, reads of members for syncs and
// addresses, and the deferred queue.
type Store interface {
	RunTransaction(ctx context.Context, fn func(context.Context, store.Tx) error) error
	Get(ctx context.Context, collection, id string, dst any) error
	Query(ctx context.Context, q store.Query) ([]store.Document, error)
	Set(ctx context.Context, collection, id string, src any) error
	Delete(ctx context.Context, collection, id string) error
}

// Handler renders and delivers. Sinks maps a channel name to its sink (a Sink or a TxSink);
// Channel is where member-facing messages go; SyncChannels maps an identity type to the channel
// whose sink syncs it (tmall_ouid → sync-tmall, say); MaxAttempts is when retrying stops; Rules
// are the rules of contact every message passes before it goes; PollEvery is how often deferred
// messages are looked at; APIToken guards the consent route; Inbound configures the SMS webhooks,
// whose replies find their member through Keyer (the identity keys);
// SendingLease (default DefaultSendingLease) is how long a call in flight keeps others off.
type Handler struct {
	Store        Store
	Sinks        map[string]any
	Channel      string
	SyncChannels map[string]string
	Locale       string
	Templates    Templates
	MaxAttempts  int
	Rules        contact.Rules
	PollEvery    time.Duration
	APIToken     string
	Inbound      Inbound
	Keyer        *identity.Keyer
	Log          *slog.Logger
	SendingLease time.Duration
	Now          func() time.Time
}

// Function is notify as the runtime runs it: the consumer, the consent and inbound SMS routes, and
// the loop that sends deferred messages when quiet hours end.
func (h *Handler) Function() runtime.Function {
	return runtime.Function{Name: Name, Consumes: Consumes, Emits: Emits, Handle: h.Handle, Routes: h.routes, Background: h.background}
}

// record is the notifications collection's document: the state of one notification.
type record struct {
	Notification
	Status   string    `json:"status"`
	Attempts int       `json:"attempts"`
	Reason   string    `json:"reason,omitempty"`
	Updated  time.Time `json:"updated"`
	// NotBefore is when a deferred notification may go (the end of quiet hours).
	NotBefore *time.Time `json:"notBefore,omitempty"`
	// Carrier is what the provider's delivery receipt said: delivered or failed, with its code.
	Carrier     string     `json:"carrier,omitempty"`
	CarrierCode string     `json:"carrierCode,omitempty"`
	CarrierAt   *time.Time `json:"carrierAt,omitempty"`
}

// Handle builds the notifications an event asks for and delivers each. A notification already
// finished reports its outcome again (same event id) instead of being sent twice; if one needs a
// retry the event is retried, and the finished ones are not sent again.
func (h *Handler) Handle(ctx context.Context, ev cloudevents.Event) ([]cloudevents.Event, error) {
	if ev.Type() == events.MemberErased {
		return nil, h.forget(ctx, ev)
	}
	ns, err := h.build(ctx, ev)
	if err != nil {
		return nil, runtime.Permanent(err)
	}
	var outs []cloudevents.Event
	var retry error
	for _, n := range ns {
		runtime.SetOneID(ctx, n.OneID)
		out, err := h.deliver(ctx, n, false)
		if err != nil {
			retry = errors.Join(retry, err)
			continue
		}
		outs = append(outs, out...)
	}
	return outs, retry
}

// deliver passes the notification through the rules of contact and, if it may go now, sends it.
// queued is true when the deferred queue resumes it; the consumer leaves deferred ones alone.
func (h *Handler) deliver(ctx context.Context, n Notification, queued bool) ([]cloudevents.Event, error) {
	sink, known := h.Sinks[n.Channel]
	if !known {
		return h.finish(ctx, n, "failed", "no sink configured for channel "+n.Channel, 0)
	}
	if txSink, ok := sink.(TxSink); ok {
		return h.transact(ctx, n, func(tx store.Tx, rec *record) error {
			if ok, err := h.admit(tx, rec, queued); !ok || err != nil {
				return err
			}
			if err := txSink.DeliverTx(tx, n); err != nil {
				return err
			}
			rec.Status, rec.Attempts = "sent", rec.Attempts+1
			return nil
		})
	}
	return h.deliverOutside(ctx, n, sink.(Sink), queued)
}

// deliverOutside admits and records the attempt, calls the provider, then records the outcome. A
// crash between the call and the record repeats the call with the same idempotency key.
func (h *Handler) deliverOutside(ctx context.Context, n Notification, sink Sink, queued bool) ([]cloudevents.Event, error) {
	var attempts int
	var admitted bool
	outs, err := h.transact(ctx, n, func(tx store.Tx, rec *record) error {
		// A transaction may run again (a conflict): only its last run decides. A last run that
		// finds the notification finished by another delivery does not get here; outs reports it.
		admitted, attempts = false, 0
		if rec.Status == "sending" && h.Now().Sub(rec.Updated) < h.lease() {
			return errInFlight
		}
		ok, err := h.admit(tx, rec, queued)
		if !ok || err != nil {
			return err
		}
		admitted = true
		rec.Status, rec.Attempts = "sending", rec.Attempts+1
		attempts = rec.Attempts
		return nil
	})
	if err != nil || !admitted || outs != nil {
		return outs, err
	}
	err = sink.Deliver(ctx, n)
	switch {
	case err == nil:
		return h.finish(ctx, n, "sent", "", attempts)
	case errors.Is(err, ErrNoAddress):
		return h.finish(ctx, n, "suppressed", contact.ReasonNoAddress, attempts)
	case errors.Is(err, ErrRejected) || attempts >= h.MaxAttempts:
		return h.finish(ctx, n, "failed", err.Error(), attempts)
	}
	err = fmt.Errorf("deliver notification %s on %s (attempt %d of %d): %w", n.ID, n.Channel, attempts, h.MaxAttempts, err)
	_, recErr := h.transact(ctx, n, func(_ store.Tx, rec *record) error {
		rec.Status, rec.Reason = "retrying", err.Error() // the call is over: a redelivery may call again
		return nil
	})
	return nil, errors.Join(err, recErr)
}

// errInFlight says another delivery of the same event is calling the provider for this
// notification right now (a redelivery that overtook a slow call): the event is retried later,
// when that call has finished, instead of calling the provider a second time.
var errInFlight = errors.New("another delivery of this notification is in flight")

// DefaultSendingLease is how long a notification marked sending is left to its caller: longer
// than any provider call, so only a crash mid-call lets another delivery call again.
const DefaultSendingLease = 2 * time.Minute

func (h *Handler) lease() time.Duration {
	if h.SendingLease > 0 {
		return h.SendingLease
	}
	return DefaultSendingLease
}

// finish records a final outcome.
func (h *Handler) finish(ctx context.Context, n Notification, status, reason string, attempts int) ([]cloudevents.Event, error) {
	return h.transact(ctx, n, func(tx store.Tx, rec *record) error {
		rec.Status, rec.Reason, rec.Attempts = status, reason, max(rec.Attempts, attempts)
		if status == "failed" || reason == contact.ReasonNoAddress {
			return h.uncount(tx, rec) // nothing reached the member: the day's cap is not used up
		}
		return nil
	})
}

// transact reads the notification's record, lets change update it, and writes it; a final status
// yields the outcome event. outs is nil while the notification is still in flight.
func (h *Handler) transact(ctx context.Context, n Notification, change func(store.Tx, *record) error) ([]cloudevents.Event, error) {
	var outs []cloudevents.Event
	err := h.Store.RunTransaction(ctx, func(ctx context.Context, tx store.Tx) error {
		outs = nil
		rec := record{Notification: n}
		if err := tx.Get(member.Notifications, n.ID, &rec); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if final(rec.Status) {
			var err error
			outs, err = h.outcome(rec) // finished before: report, do not send again
			return err
		}
		if err := change(tx, &rec); err != nil {
			return err
		}
		rec.Updated = h.Now()
		if err := tx.Set(member.Notifications, n.ID, rec); err != nil {
			return err
		}
		if final(rec.Status) {
			var err error
			outs, err = h.outcome(rec)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("record notification %s: %w", n.ID, err)
	}
	return outs, nil
}

func final(status string) bool {
	return status == "sent" || status == "failed" || status == "suppressed"
}

// outcome reports a finished notification under an id derived from the notification, so every
// report of it is the same event.
func (h *Handler) outcome(rec record) ([]cloudevents.Event, error) {
	typ := map[string]string{"sent": events.NotificationSent, "failed": events.NotificationFailed, "suppressed": events.NotificationSuppressed}[rec.Status]
	out, err := events.New(typ, events.DerivedID(Name, rec.ID, 0), events.Source(Name), rec.Updated, events.NotificationOutcomeData{
		NotificationID: rec.ID, OneID: rec.OneID, Channel: rec.Channel, Template: rec.Template, SourceID: rec.SourceID,
		Reason: rec.Reason, Attempts: rec.Attempts, At: rec.Updated})
	return []cloudevents.Event{out}, err
}
