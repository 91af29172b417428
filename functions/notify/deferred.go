package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/shared/contact"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
)

// Deferred is the queue of notifications waiting for quiet hours to end, keyed by notification id.
//
// Why a collection and not a delayed nak: a nak with a delay counts as a delivery against
// OMNIMEMBER_MAX_DELIVER and holds the event in the consumer's ack-pending window for up to eleven
// hours; a stored queue costs one indexed query per poll, survives restarts and scale to zero (the
// next start drains what fell due), and leaves the event acknowledged.
const Deferred = "notify_deferred"

// Indexes are notify's own query fields; StoreIndexes adds them to the member indexes.
var Indexes = map[string][]string{Deferred: {"due", "notification.oneId"}, member.Notifications: {"oneId"}}

// StoreIndexes are the member indexes plus notify's.
func StoreIndexes(memberIndexes map[string][]string) map[string][]string {
	out := maps.Clone(memberIndexes)
	maps.Copy(out, Indexes)
	return out
}

type deferred struct {
	Notification Notification `json:"notification"`
	Due          time.Time    `json:"due"`
	// ClaimedUntil is how long the instance sending it holds it: with several replicas draining at
	// 08:00, only one calls the provider; if it dies, the claim lapses and another one sends.
	ClaimedUntil *time.Time `json:"claimedUntil,omitempty"`
}

// claimFor is how long a claim on a deferred notification lasts: longer than a provider call.
const claimFor = 2 * time.Minute

// deferredBatch bounds one poll; the next poll takes the rest at once.
const deferredBatch = 500

// background sends deferred notifications that fell due, at start (after a scale to zero) and
// every PollEvery, until ctx ends.
func (h *Handler) background(ctx context.Context, pub *runtime.Publisher) {
	every := h.PollEvery
	if every <= 0 {
		every = 30 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := h.DrainDeferred(ctx, pub); err != nil && ctx.Err() == nil {
			h.logger().Warn("deferred notifications", "error", err, "sent", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Publisher publishes outcome events (runtime.Publisher in production).
type Publisher interface {
	Publish(ctx context.Context, cause *cloudevents.Event, evs []cloudevents.Event) error
}

// DrainDeferred delivers every deferred notification due by now and reports how many finished.
// An outcome is published before its queue entry goes, so a crash in between republishes the same
// event id (deduplicated) rather than losing it.
func (h *Handler) DrainDeferred(ctx context.Context, pub Publisher) (int, error) {
	docs, err := h.Store.Query(ctx, store.Query{Collection: Deferred, OrderBy: "due", Limit: deferredBatch,
		Filters: []store.Filter{{Field: "due", Op: store.OpLte, Value: member.IndexTime(h.Now())}}})
	if err != nil {
		return 0, fmt.Errorf("query deferred notifications: %w", err)
	}
	var done int
	var errs error
	for _, doc := range docs {
		d, claimed, err := h.claim(ctx, doc.ID)
		if err != nil || !claimed {
			errs = errors.Join(errs, err)
			continue
		}
		outs, err := h.deliver(ctx, d.Notification, true)
		if err != nil || outs == nil { // a retry waits for the next poll; nil outs: deferred again
			errs = errors.Join(errs, err)
			continue
		}
		if err := pub.Publish(ctx, nil, outs); err != nil {
			return done, errors.Join(errs, fmt.Errorf("publish outcome of %s: %w", d.Notification.ID, err))
		}
		if err := h.Store.Delete(ctx, Deferred, doc.ID); err != nil {
			errs = errors.Join(errs, err)
			continue
		}
		done++
	}
	return done, errs
}

// claim takes a due deferred notification for this instance, unless another one holds it.
func (h *Handler) claim(ctx context.Context, id string) (deferred, bool, error) {
	var d deferred
	claimed := false
	err := h.Store.RunTransaction(ctx, func(_ context.Context, tx store.Tx) error {
		d, claimed = deferred{}, false
		if err := tx.Get(Deferred, id, &d); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil // sent meanwhile by another instance
			}
			return err
		}
		now := h.Now()
		if d.ClaimedUntil != nil && d.ClaimedUntil.After(now) {
			return nil
		}
		until := now.Add(claimFor)
		d.ClaimedUntil, claimed = &until, true
		return tx.Set(Deferred, id, d)
	})
	if err != nil {
		return d, false, fmt.Errorf("claim deferred notification %s: %w", id, err)
	}
	return d, claimed, nil
}

// setContact changes a member's contact state in one transaction and returns it.
func (h *Handler) setContact(ctx context.Context, oneID string, req ConsentRequest, by, source string) (contact.State, error) {
	var st contact.State
	err := h.Store.RunTransaction(ctx, func(_ context.Context, tx store.Tx) error {
		st = contact.State{}
		if err := tx.Get(contact.Collection, oneID, &st); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		st.OneID = oneID
		changed := false
		if req.Consent != "" {
			changed = st.Set(req.Channel, "consent", req.Consent, by, source, h.Now()) || changed
		}
		if req.OptedOut != nil {
			changed = st.Set(req.Channel, "optedOut", fmt.Sprint(*req.OptedOut), by, source, h.Now()) || changed
		}
		if !changed {
			return nil
		}
		return tx.Set(contact.Collection, oneID, st)
	})
	if err != nil {
		return st, fmt.Errorf("set contact state of %s: %w", oneID, err)
	}
	return st, nil
}

func (h *Handler) logger() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}
