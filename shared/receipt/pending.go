package receipt

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/shared/store"
)

// PendingCollection holds events a scheduled job committed but has not yet seen stored in the broker.
// A job writes them in the transaction of its effect and deletes them once published, so a crash
// in between is repaired by the next run's Flush.
const PendingCollection = "pending_events"

type pending struct {
	Function string            `json:"function"`
	Events   []json.RawMessage `json:"events"`
	At       time.Time         `json:"at"`
}

// Outbox is the part of a store pending events need.
type Outbox interface {
	Transactor
	Query(ctx context.Context, q store.Query) ([]store.Document, error)
}

// SavePending records events to publish, in the caller's transaction.
func SavePending(tx store.Tx, function, key string, evs []cloudevents.Event, at time.Time) error {
	if len(evs) == 0 {
		return nil
	}
	p := pending{Function: function, At: at, Events: make([]json.RawMessage, len(evs))}
	for i, ev := range evs {
		raw, err := ev.MarshalJSON()
		if err != nil {
			return err
		}
		p.Events[i] = raw
	}
	return tx.Set(PendingCollection, key, p)
}

// Published forgets pending events once the broker has stored them.
func Published(ctx context.Context, st Transactor, key string) error {
	return st.RunTransaction(ctx, func(_ context.Context, tx store.Tx) error { return tx.Delete(PendingCollection, key) })
}

// Flush publishes whatever a previous run of function left pending, then forgets it.
func Flush(ctx context.Context, st Outbox, function string, publish func(context.Context, []cloudevents.Event) error) (int, error) {
	docs, err := st.Query(ctx, store.Query{Collection: PendingCollection, Filters: []store.Filter{{Field: "function", Op: store.OpEq, Value: function}}})
	if err != nil {
		return 0, fmt.Errorf("list pending events of %s: %w", function, err)
	}
	sent := 0
	for _, d := range docs {
		var p pending
		if err := d.DataTo(&p); err != nil {
			return sent, err
		}
		evs := make([]cloudevents.Event, len(p.Events))
		for i, raw := range p.Events {
			if err := evs[i].UnmarshalJSON(raw); err != nil {
				return sent, err
			}
		}
		if err := publish(ctx, evs); err != nil {
			return sent, err
		}
		if err := Published(ctx, st, d.ID); err != nil {
			return sent, err
		}
		sent += len(evs)
	}
	return sent, nil
}
