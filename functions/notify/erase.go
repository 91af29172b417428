package notify

import (
	"context"
	"fmt"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
)

// identityVars are the variables by which a notification carries one of the member's identities
// (a sync names the platform id it syncs).
var identityVars = []string{"identity", "scope"}

// forget drops, on member.erased, the member's identities from what notify keeps of its
// notifications (records, outbox, deferred queue) under its OneID and the OneIDs merged into it:
// the identity variables go, and the text rendered from them. Status, channel and template stay,
// so counts and caps do. Idempotent: a redelivery finds nothing left.
func (h *Handler) forget(ctx context.Context, ev cloudevents.Event) error {
	d, err := events.Decode[events.MemberErasedData](ev)
	if err != nil {
		return runtime.Permanent(err)
	}
	runtime.SetOneID(ctx, d.OneID)
	for _, oneID := range append([]string{d.OneID}, d.FormerOneIDs...) {
		for _, where := range []struct{ collection, field, path string }{
			{member.Notifications, "oneId", ""}, {member.Outbox, "oneId", ""}, {Deferred, "notification.oneId", "notification"},
		} {
			if err := h.forgetIn(ctx, where.collection, where.field, where.path, oneID); err != nil {
				return err
			}
		}
	}
	return nil
}

// forgetIn redacts the documents of one collection whose field is oneID; path names the
// notification inside the document ("" for the document itself).
func (h *Handler) forgetIn(ctx context.Context, collection, field, path, oneID string) error {
	ids, err := store.QueryIDs(ctx, h.Store, store.Query{Collection: collection,
		Filters: []store.Filter{{Field: field, Op: store.OpEq, Value: oneID}}})
	if err != nil {
		return fmt.Errorf("%s of %s: %w", collection, oneID, err)
	}
	for _, id := range ids {
		if err := h.Store.RunTransaction(ctx, func(_ context.Context, tx store.Tx) error {
			var doc map[string]any
			if err := tx.Get(collection, id, &doc); err != nil {
				return err
			}
			n := doc
			if path != "" {
				n, _ = doc[path].(map[string]any)
			}
			if !redact(n) {
				return nil
			}
			return tx.Set(collection, id, doc)
		}); err != nil {
			return fmt.Errorf("forget the identities in %s/%s: %w", collection, id, err)
		}
	}
	return nil
}

// redact removes the identity variables of a notification (and its text, rendered from them);
// false when it had none.
func redact(n map[string]any) bool {
	vars, _ := n["vars"].(map[string]any)
	found := false
	for _, v := range identityVars {
		if _, ok := vars[v]; ok {
			delete(vars, v)
			found = true
		}
	}
	if found {
		n["text"] = ""
	}
	return found
}
