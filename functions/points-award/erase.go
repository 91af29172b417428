package pointsaward

import (
	"context"
	"fmt"
	"slices"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
)

// planErasure drops the identity keys the erased member's orders kept (keyed hashes of its phone
// and ids, which a split would follow); amounts, points and lots stay as anonymous aggregates. It
// is idempotent, so it needs no receipt, and goes a bounded number of orders per transaction (a
// member may have many); each transaction re-reads what the query found.
func (h *Handler) planErasure(ctx context.Context, ev cloudevents.Event) (func(store.Tx) ([]cloudevents.Event, error), error) {
	d, err := events.Decode[events.MemberErasedData](ev)
	if err != nil {
		return nil, runtime.Permanent(err)
	}
	runtime.SetOneID(ctx, d.OneID)
	var keys []string
	for _, oneID := range append([]string{d.OneID}, d.FormerOneIDs...) {
		ids, err := store.QueryIDs(ctx, h.Store, store.Query{Collection: member.Orders,
			Filters: []store.Filter{{Field: "oneId", Op: store.OpEq, Value: oneID}}})
		if err != nil {
			return nil, fmt.Errorf("orders of %s: %w", oneID, err)
		}
		keys = append(keys, ids...)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	for start := 0; start < len(keys); start += erasureBatch {
		batch := keys[start:min(start+erasureBatch, len(keys))]
		if err := h.Store.RunTransaction(ctx, func(_ context.Context, tx store.Tx) error { return forgetIdentities(tx, batch) }); err != nil {
			return nil, fmt.Errorf("forget the identities of %d orders of %s: %w", len(batch), d.OneID, err)
		}
	}
	return nil, nil
}

// erasureBatch bounds the orders one transaction rewrites (Firestore takes 500 writes at most).
const erasureBatch = 200

func forgetIdentities(tx store.Tx, keys []string) error {
	docs, err := tx.GetAll(member.Orders, keys)
	if err != nil {
		return err
	}
	for i, doc := range docs {
		var o member.Order
		if !doc.Exists {
			continue
		}
		if err := doc.DataTo(&o); err != nil {
			return err
		}
		if len(o.IdentityKeys) == 0 {
			continue
		}
		o.IdentityKeys = nil
		if err := tx.Set(member.Orders, keys[i], o); err != nil {
			return err
		}
	}
	return nil
}
