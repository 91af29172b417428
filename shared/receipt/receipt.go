// Package receipt remembers, inside a handler's transaction, what an event already produced, so a
// redelivered event returns the same events instead of repeating its effect.
package receipt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/store"
)

// Collection holds one receipt per (function, event).
const Collection = "receipts"

// Retention is how long a receipt is kept. An event redelivered later than this is still safe where
// the handler's own state dedupes (orders, refunds).
const Retention = 30 * 24 * time.Hour

// Expiry names the field after which a receipt is deleted: Firestore's TTL policy on it is in
// deploy/firestore, and the embedded store sweeps it itself (in UTC, so its index orders it).
var Expiry = map[string]string{Collection: "expireAt"}

type doc struct {
	Function string            `json:"function"`
	EventID  string            `json:"eventId"`
	OneID    string            `json:"oneId,omitempty"`
	Events   []json.RawMessage `json:"events"`
	At       time.Time         `json:"at"`
	ExpireAt time.Time         `json:"expireAt"`
}

// Key is the receipt's document id for a function and an event (CloudEvents identity is source + id).
func Key(function string, ev cloudevents.Event) string {
	sum := sha256.Sum256([]byte(function + "\x00" + ev.Source() + "\x00" + ev.ID()))
	return hex.EncodeToString(sum[:20])
}

// Load returns the events a previous run emitted for ev, and whether there was one.
// Call it first in the transaction: Firestore wants reads before writes.
func Load(tx store.Tx, function string, ev cloudevents.Event) ([]cloudevents.Event, bool, error) {
	var d doc
	err := tx.Get(Collection, Key(function, ev), &d)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("load receipt of %s for event %s: %w", function, ev.ID(), err)
	}
	outs := make([]cloudevents.Event, len(d.Events))
	for i, raw := range d.Events {
		if err := outs[i].UnmarshalJSON(raw); err != nil {
			return nil, false, fmt.Errorf("decode receipt of %s for event %s: %w", function, ev.ID(), err)
		}
	}
	return outs, true, nil
}

// Save records what ev produced, in the same transaction as its effect.
func Save(tx store.Tx, function string, ev cloudevents.Event, outs []cloudevents.Event, at time.Time) error {
	return save(tx, function, ev, outs, "", at)
}

func save(tx store.Tx, function string, ev cloudevents.Event, outs []cloudevents.Event, oneID string, at time.Time) error {
	d := doc{Function: function, EventID: ev.ID(), OneID: oneID, Events: make([]json.RawMessage, len(outs)), At: at, ExpireAt: at.UTC().Add(Retention)}
	for i, o := range outs {
		raw, err := o.MarshalJSON()
		if err != nil {
			return fmt.Errorf("encode receipt of %s for event %s: %w", function, ev.ID(), err)
		}
		d.Events[i] = raw
	}
	return tx.Set(Collection, Key(function, ev), d)
}

// Transactor is the part of the store Once needs.
type Transactor interface {
	RunTransaction(ctx context.Context, fn func(context.Context, store.Tx) error) error
}

// Once runs apply in a store transaction unless ev already has a receipt, and records the events
// apply returns in that same transaction: the effect and the memory of it commit together. On a
// redelivery it returns the recorded events without calling apply.
func Once(ctx context.Context, st Transactor, function string, ev cloudevents.Event, now func() time.Time,
	apply func(tx store.Tx) ([]cloudevents.Event, error)) ([]cloudevents.Event, error) {
	outs, _, err := Do(ctx, st, function, ev, now, apply)
	return outs, err
}

type replayKey struct{}

// OnReplay makes Do call replayed when a receipt answers instead of the effect, so the runtime can
// count repeats without handlers reporting them.
func OnReplay(ctx context.Context, replayed func()) context.Context {
	return context.WithValue(ctx, replayKey{}, replayed)
}

// Do is Once that also says whether apply ran (fresh) or the receipt answered (a repeat). The
// events apply returns are validated against their schemas inside the transaction: one that
// fails aborts it (an error wrapping *events.FieldError, which the runtime treats as permanent),
// so nothing is written that the stream would not carry.
func Do(ctx context.Context, st Transactor, function string, ev cloudevents.Event, now func() time.Time,
	apply func(tx store.Tx) ([]cloudevents.Event, error)) (outs []cloudevents.Event, fresh bool, err error) {
	return do(ctx, st, function, ev, now, func(tx store.Tx) ([]cloudevents.Event, string, error) {
		outs, err := apply(tx)
		return outs, "", err
	})
}

// OnceAbout is Once for an effect that concerns one member, whose OneID apply returns with the
// events: the receipt names it (the indexed field OneIDField), so that erasing the member finds
// the receipts whose events carry its identities.
func OnceAbout(ctx context.Context, st Transactor, function string, ev cloudevents.Event, now func() time.Time,
	apply func(tx store.Tx) ([]cloudevents.Event, string, error)) ([]cloudevents.Event, error) {
	outs, _, err := do(ctx, st, function, ev, now, apply)
	return outs, err
}

// OneIDField is the receipt field OnceAbout fills: index it to find a member's receipts.
const OneIDField = "oneId"

func do(ctx context.Context, st Transactor, function string, ev cloudevents.Event, now func() time.Time,
	apply func(tx store.Tx) ([]cloudevents.Event, string, error)) (outs []cloudevents.Event, fresh bool, err error) {
	err = st.RunTransaction(ctx, func(_ context.Context, tx store.Tx) error {
		prev, done, err := Load(tx, function, ev)
		if err != nil || done {
			outs, fresh = prev, false
			return err
		}
		var oneID string
		if outs, oneID, err = apply(tx); err != nil {
			return err
		}
		// The outputs are checked before anything commits: an event the schema refuses would be
		// dead-lettered by the publisher while the store kept the effect.
		for _, out := range outs {
			if err := events.ValidateOnce(ctx, out); err != nil {
				return fmt.Errorf("%s would emit an invalid %s event: %w", function, out.Type(), err)
			}
		}
		fresh = true
		return save(tx, function, ev, outs, oneID, now())
	})
	if err == nil && !fresh {
		if replayed, ok := ctx.Value(replayKey{}).(func()); ok {
			replayed()
		}
	}
	return outs, fresh, err
}
