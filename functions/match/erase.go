package match

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/receipt"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
)

// Erasure is the answer of DELETE /v1/members/{oneId}/personal-data.
type Erasure struct {
	OneID            string    `json:"oneId"`
	FormerOneIDs     []string  `json:"formerOneIds,omitempty"`
	ErasedIdentities int       `json:"erasedIdentities"`
	ErasedAt         time.Time `json:"erasedAt"`
	RequestID        string    `json:"requestId"`
}

// erasePersonalData erases a member's identities and personal fields on request (PIPL): each
// identity leaves a tombstone so a late or replayed event from before now never brings it back,
// while a genuinely new event after now starts a fresh member. Orders, points and tiers stay as
// anonymous aggregates under the OneID. Then the copies match keeps elsewhere go (the receipts of
// the events that resolved to the member, the events held for it in quarantine), and member.erased
// tells the functions that keep copies of their own (order identity keys, notification texts). The
// request is audited; asked again, it does what is left and announces the same event.
func (h *Handler) erasePersonalData(w http.ResponseWriter, r *http.Request, pub *runtime.Publisher) {
	who, now := runtime.Operator(r), h.Now()
	var out Erasure
	err := h.Store.RunTransaction(r.Context(), func(_ context.Context, tx store.Tx) error {
		var err error
		out, err = h.erase(tx, r.PathValue("oneId"), who, now)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalidName):
		runtime.WriteError(w, http.StatusNotFound, "", "member %s not found", r.PathValue("oneId"))
		return
	case err != nil:
		runtime.WriteError(w, http.StatusServiceUnavailable, "", "erase: %v", err)
		return
	}
	if err := h.purge(r.Context(), append([]string{out.OneID}, out.FormerOneIDs...), who, now); err != nil {
		runtime.WriteError(w, http.StatusServiceUnavailable, "", "erased, but copies remain (retry the request): %v", err)
		return
	}
	ev, err := events.New(events.MemberErased, out.RequestID, events.Source(Name), out.ErasedAt, events.MemberErasedData{
		OneID: out.OneID, FormerOneIDs: out.FormerOneIDs, Identities: out.ErasedIdentities, By: who, RequestID: out.RequestID, ErasedAt: out.ErasedAt})
	if err == nil {
		err = pub.Publish(r.Context(), nil, []cloudevents.Event{ev})
	}
	if err != nil {
		runtime.WriteError(w, http.StatusServiceUnavailable, "", "erased, but not yet announced (retry the request): %v", err)
		return
	}
	runtime.WriteJSON(w, http.StatusOK, out)
}

// liveMember follows MergedInto from oneID to the member that holds it now.
func liveMember(tx store.Tx, oneID string) (member.Member, error) {
	for range member.MaxMergeHops + 1 {
		var m member.Member
		if err := tx.Get(member.Members, oneID, &m); err != nil {
			return m, err
		}
		if m.MergedInto == "" {
			return m, nil
		}
		oneID = m.MergedInto
	}
	return member.Member{}, fmt.Errorf("member %s: merge chain longer than %d", oneID, member.MaxMergeHops)
}

// erase does the erasure inside a transaction; asked again, it finds nothing left and reports the
// first erasure's time, so a retry announces the same event.
func (h *Handler) erase(tx store.Tx, oneID, who string, now time.Time) (Erasure, error) {
	m, err := liveMember(tx, oneID)
	if err != nil {
		return Erasure{}, err
	}
	out := Erasure{OneID: m.OneID, FormerOneIDs: m.MergedFrom, RequestID: "erase-" + m.OneID, ErasedAt: now}
	if m.ErasedAt != nil && len(m.Identities) == 0 {
		out.ErasedAt = *m.ErasedAt
		return out, nil
	}
	absorbed, err := tx.GetAll(member.Members, m.MergedFrom)
	if err != nil {
		return Erasure{}, err
	}
	ids := slices.Clone(m.Identities)
	var olds []member.Member
	for _, d := range absorbed {
		var a member.Member
		if d.DataTo(&a) == nil {
			ids = append(ids, a.Identities...)
			olds = append(olds, a)
		}
	}
	keys := uniqueKeys(ids)
	links, err := tx.GetAll(member.Identities, keys)
	if err != nil {
		return Erasure{}, err
	}
	out.ErasedIdentities = countKeys(ids)
	for i, key := range keys {
		var l member.IdentityLink
		if links[i].Exists && links[i].DataTo(&l) == nil && (l.OneID == m.OneID || slices.Contains(m.MergedFrom, l.OneID)) {
			if err := tx.Delete(member.Identities, key); err != nil {
				return Erasure{}, err
			}
		}
		tomb, err := h.Keyer.Tombstone(key)
		if errors.Is(err, identity.ErrUnknownKey) {
			continue // a key retired since: no lookup makes it any more
		}
		if err != nil {
			return Erasure{}, err
		}
		if err := tx.Set(member.Tombstones, tomb, member.Tombstone{Type: typeOf(ids, key), ErasedAt: now, OneID: m.OneID}); err != nil {
			return Erasure{}, err
		}
	}
	for _, a := range olds {
		a.Identities = nil
		if err := tx.Set(member.Members, a.OneID, a); err != nil {
			return Erasure{}, err
		}
	}
	m.Identities, m.Pool, m.ErasedAt, m.UpdatedAt = nil, member.PoolCiphertext, &now, now
	m.History = append(m.History, member.HistoryEntry{At: now, Kind: member.HistoryErased, By: who, Detail: fmt.Sprintf("%d identities", len(keys))})
	if err := tx.Set(member.Members, m.OneID, m); err != nil {
		return Erasure{}, err
	}
	return out, audit(tx, "member.erase", who, m.OneID, now)
}

// uniqueKeys are the identities' keys, and their keys from before rekeys.
func uniqueKeys(ids []member.StoredIdentity) []string {
	var keys []string
	for _, s := range ids {
		for _, k := range s.Keys() {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	return keys
}

// countKeys counts the identities by their current keys (a phone and its SHA-256 are one).
func countKeys(ids []member.StoredIdentity) int {
	var keys []string
	for _, s := range ids {
		if !slices.Contains(keys, s.Key) {
			keys = append(keys, s.Key)
		}
	}
	return len(keys)
}

func typeOf(ids []member.StoredIdentity, key string) string {
	for _, s := range ids {
		if slices.Contains(s.Keys(), key) {
			return s.Type
		}
	}
	return ""
}

// purge deletes the copies of an erased member's identities match keeps outside the member: the
// receipts of the events that resolved to any of its OneIDs (their identity.resolved carry the
// identities; a redelivery of such an event finds its identities erased and resolves to nobody),
// and the events held in quarantine for it (rejected, their sealed copy dropped).
func (h *Handler) purge(ctx context.Context, oneIDs []string, who string, now time.Time) error {
	for _, oneID := range oneIDs {
		ids, err := store.QueryIDs(ctx, h.Store, store.Query{Collection: receipt.Collection,
			Filters: []store.Filter{{Field: receipt.OneIDField, Op: store.OpEq, Value: oneID}}})
		if err != nil {
			return fmt.Errorf("receipts of %s: %w", oneID, err)
		}
		if err := h.deleteAll(ctx, receipt.Collection, ids); err != nil {
			return err
		}
	}
	held, err := h.Store.Query(ctx, store.Query{Collection: member.Quarantine})
	if err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	for _, d := range held {
		var q member.Quarantined
		if err := d.DataTo(&q); err != nil {
			return err
		}
		if q.Sealed == "" || !slices.ContainsFunc(q.OneIDs, func(id string) bool { return slices.Contains(oneIDs, id) }) {
			continue
		}
		if err := h.dropHeld(ctx, q.ID, oneIDs, who, now); err != nil {
			return err
		}
	}
	return nil
}

// deleteAll deletes documents, a bounded number per transaction.
func (h *Handler) deleteAll(ctx context.Context, collection string, ids []string) error {
	for start := 0; start < len(ids); start += 200 {
		batch := ids[start:min(start+200, len(ids))]
		if err := h.Store.RunTransaction(ctx, func(_ context.Context, tx store.Tx) error {
			for _, id := range batch {
				if err := tx.Delete(collection, id); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return fmt.Errorf("delete %d %s: %w", len(batch), collection, err)
		}
	}
	return nil
}

// dropHeld drops the sealed copy of an event held for an erased member; still pending, it is
// rejected (released, it would bring back what was erased).
func (h *Handler) dropHeld(ctx context.Context, id string, oneIDs []string, who string, now time.Time) error {
	return h.Store.RunTransaction(ctx, func(_ context.Context, tx store.Tx) error {
		var q member.Quarantined
		if err := tx.Get(member.Quarantine, id, &q); err != nil {
			return err
		}
		q.Sealed = ""
		if q.Status == member.QuarantinePending {
			q.Status, q.DecidedAt, q.DecidedBy = member.QuarantineRejected, &now, who
			q.Reason += "; a member it involves was erased"
		}
		if err := tx.Set(member.Quarantine, id, q); err != nil {
			return err
		}
		return audit(tx, "quarantine.erased", who, id, now)
	})
}
