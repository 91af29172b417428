// Package notify turns tier changes, points awards and notification requests into messages, delivers
// each at most once per (source event, channel), and reports it sent, suppressed or failed.
package notify

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/receipt"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
)

// Name is the function's name.
const Name = "notify"

// Consumes lists the events that become notifications.
var Consumes = []string{events.TierChanged, events.PointsAwarded, events.NotificationRequested}

// Notification is one message to one member on one channel.
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

// Transactor is the part of the store notify uses.
type Transactor interface {
	RunTransaction(ctx context.Context, fn func(context.Context, store.Tx) error) error
}

// Handler renders and delivers. Sinks maps a channel name to its sink (a Sink or a TxSink);
// Channel is where transactional messages go; MaxAttempts is when retrying stops and the
// notification is reported failed.
type Handler struct {
	Store       Transactor
	Sinks       map[string]any
	Channel     string
	Locale      string
	Templates   Templates
	MaxAttempts int
	Now         func() time.Time
}

// Function is notify as the runtime runs it.
func (h *Handler) Function() runtime.Function {
	return runtime.Function{Name: Name, Consumes: Consumes, Handle: h.Handle}
}

// record is the notifications collection's document: the state of one notification.
type record struct {
	Notification
	Status   string    `json:"status"`
	Attempts int       `json:"attempts"`
	Reason   string    `json:"reason,omitempty"`
	Updated  time.Time `json:"updated"`
}

// Handle builds the notification an event asks for and delivers it.
func (h *Handler) Handle(ctx context.Context, ev cloudevents.Event) ([]cloudevents.Event, error) {
	n, ok, err := h.build(ev)
	if err != nil {
		return nil, runtime.Permanent(err)
	}
	if !ok {
		return nil, nil
	}
	runtime.SetOneID(ctx, n.OneID)
	sink, known := h.Sinks[n.Channel]
	if !known {
		return h.finish(ctx, ev, n, "failed", "no sink configured for channel "+n.Channel, 0)
	}
	if txSink, ok := sink.(TxSink); ok {
		return h.deliverInTx(ctx, ev, n, txSink)
	}
	return h.deliverOutside(ctx, ev, n, sink.(Sink))
}

// build picks the template and variables for the event; ok is false when nothing is to be sent.
func (h *Handler) build(ev cloudevents.Event) (n Notification, ok bool, err error) {
	n = Notification{Category: events.CategoryTransactional, Channel: h.Channel, Locale: h.Locale, SourceID: ev.ID(), CreatedAt: h.Now()}
	switch ev.Type() {
	case events.TierChanged:
		d, err := events.Decode[events.TierChangedData](ev)
		if err != nil {
			return n, false, err
		}
		n.OneID, n.Template = d.OneID, "tier_upgraded"
		n.Vars = map[string]string{"tier": tierName(d.To, h.Locale), "from": tierName(d.From, h.Locale)}
	case events.PointsAwarded:
		d, err := events.Decode[events.PointsAwardedData](ev)
		if err != nil || d.Points <= 0 {
			return n, false, err
		}
		n.OneID, n.Template = d.OneID, "points_awarded"
		n.Vars = map[string]string{"points": strconv.FormatInt(d.Points, 10), "balance": strconv.FormatInt(d.Balance, 10), "orderId": d.OrderID}
	case events.NotificationRequested:
		d, err := events.Decode[events.NotificationRequestedData](ev)
		if err != nil {
			return n, false, err
		}
		n.OneID, n.Category, n.Channel, n.Template, n.Vars, n.CampaignID = d.OneID, d.Category, d.Channel, d.Template, d.Vars, d.CampaignID
		if d.Locale != "" {
			n.Locale = d.Locale
		}
	default:
		return n, false, fmt.Errorf("notify does not handle %s", ev.Type())
	}
	// At most once per (source event, channel), whichever event id carries the request.
	n.ID = events.DerivedID(Name, ev.ID()+"\x00"+n.Channel, 0)
	n.Text, err = h.Templates.Render(n.Template, n.Locale, n.Vars)
	return n, true, err
}

// deliverInTx delivers and records the outcome in one transaction.
func (h *Handler) deliverInTx(ctx context.Context, ev cloudevents.Event, n Notification, sink TxSink) ([]cloudevents.Event, error) {
	return h.transact(ctx, ev, n, func(tx store.Tx, rec *record) error {
		if err := sink.DeliverTx(tx, n); err != nil {
			return err
		}
		rec.Status = "sent"
		return nil
	})
}

// deliverOutside records the attempt, calls the provider, then records the outcome. A crash
// between the call and the record repeats the call with the same idempotency key.
func (h *Handler) deliverOutside(ctx context.Context, ev cloudevents.Event, n Notification, sink Sink) ([]cloudevents.Event, error) {
	var attempts int
	outs, err := h.transact(ctx, ev, n, func(tx store.Tx, rec *record) error {
		rec.Status, rec.Attempts = "sending", rec.Attempts+1
		attempts = rec.Attempts
		return nil
	})
	if err != nil || outs != nil {
		return outs, err
	}
	err = sink.Deliver(ctx, n)
	switch {
	case err == nil:
		return h.finish(ctx, ev, n, "sent", "", attempts)
	case errors.Is(err, ErrRejected) || attempts >= h.MaxAttempts:
		return h.finish(ctx, ev, n, "failed", err.Error(), attempts)
	}
	return nil, fmt.Errorf("deliver notification %s (attempt %d of %d): %w", n.ID, attempts, h.MaxAttempts, err)
}

// finish records a final outcome.
func (h *Handler) finish(ctx context.Context, ev cloudevents.Event, n Notification, status, reason string, attempts int) ([]cloudevents.Event, error) {
	return h.transact(ctx, ev, n, func(_ store.Tx, rec *record) error {
		rec.Status, rec.Reason, rec.Attempts = status, reason, max(rec.Attempts, attempts)
		return nil
	})
}

// transact reads the receipt and the notification's record, lets change update the record, and
// writes it; a final status also writes the receipt and yields the outcome event. outs is nil
// while the notification is still in flight.
func (h *Handler) transact(ctx context.Context, ev cloudevents.Event, n Notification, change func(store.Tx, *record) error) ([]cloudevents.Event, error) {
	var outs []cloudevents.Event
	err := h.Store.RunTransaction(ctx, func(ctx context.Context, tx store.Tx) error {
		outs = nil
		prev, done, err := receipt.Load(tx, Name, ev)
		if err != nil || done {
			outs = prev
			return err
		}
		rec := record{Notification: n}
		if err := tx.Get(member.Notifications, n.ID, &rec); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if final(rec.Status) {
			// Sent before under another event id for the same source: report, do not send again.
			outs, err = h.outcome(ev, rec)
			if err != nil {
				return err
			}
			return receipt.Save(tx, Name, ev, outs, h.Now())
		}
		if err := change(tx, &rec); err != nil {
			return err
		}
		rec.Updated = h.Now()
		if err := tx.Set(member.Notifications, n.ID, rec); err != nil {
			return err
		}
		if !final(rec.Status) {
			return nil
		}
		if outs, err = h.outcome(ev, rec); err != nil {
			return err
		}
		return receipt.Save(tx, Name, ev, outs, h.Now())
	})
	if err != nil {
		return nil, fmt.Errorf("record notification %s: %w", n.ID, err)
	}
	return outs, nil
}

func final(status string) bool {
	return status == "sent" || status == "failed" || status == "suppressed"
}

func (h *Handler) outcome(ev cloudevents.Event, rec record) ([]cloudevents.Event, error) {
	typ := map[string]string{"sent": events.NotificationSent, "failed": events.NotificationFailed, "suppressed": events.NotificationSuppressed}[rec.Status]
	out, err := events.New(typ, events.DerivedID(Name, ev.ID(), 0), events.Source(Name), h.Now(), events.NotificationOutcomeData{
		NotificationID: rec.ID, OneID: rec.OneID, Channel: rec.Channel, Template: rec.Template, SourceID: rec.SourceID,
		Reason: rec.Reason, Attempts: rec.Attempts, At: rec.Updated})
	return []cloudevents.Event{out}, err
}
