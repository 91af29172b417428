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
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
)

// Erasure is the answer of DELETE /v1/members/{oneId}/personal-data.
type Erasure struct {
	OneID            string    `json:"oneId"`
	ErasedIdentities int       `json:"erasedIdentities"`
	ErasedAt         time.Time `json:"erasedAt"`
	RequestID        string    `json:"requestId"`
}

// erasePersonalData erases a member's identities and personal fields on request (PIPL): each
// identity leaves a tombstone so a late or replayed event from before now never brings it back,
// while a genuinely new event after now starts a fresh member. Orders, points and tiers stay as
// anonymous aggregates under the OneID. The request is audited and announced as member.erased.
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
	ev, err := events.New(events.MemberErased, out.RequestID, events.Source(Name), out.ErasedAt, events.MemberErasedData{
		OneID: out.OneID, Identities: out.ErasedIdentities, By: who, RequestID: out.RequestID, ErasedAt: out.ErasedAt})
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
	out := Erasure{OneID: m.OneID, RequestID: "erase-" + m.OneID, ErasedAt: now}
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
	out.ErasedIdentities = len(keys)
	for i, key := range keys {
		var l member.IdentityLink
		if links[i].Exists && links[i].DataTo(&l) == nil && (l.OneID == m.OneID || slices.Contains(m.MergedFrom, l.OneID)) {
			if err := tx.Delete(member.Identities, key); err != nil {
				return Erasure{}, err
			}
		}
		if err := tx.Set(member.Tombstones, key, member.Tombstone{Type: typeOf(ids, key), ErasedAt: now, OneID: m.OneID}); err != nil {
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

func uniqueKeys(ids []member.StoredIdentity) []string {
	var keys []string
	for _, s := range ids {
		if !slices.Contains(keys, s.Key) {
			keys = append(keys, s.Key)
		}
	}
	return keys
}

func typeOf(ids []member.StoredIdentity, key string) string {
	for _, s := range ids {
		if s.Key == key {
			return s.Type
		}
	}
	return ""
}
