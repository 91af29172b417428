package match

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
)

// Reseal is the answer of POST /v1/admin/pii:reseal.
type Reseal struct {
	Members  int    `json:"members"`
	Resealed int    `json:"resealed"`
	KeyID    string `json:"keyId"`
}

// reseal re-encrypts every sealed value (plaintext phones, platforms' phone hashes) that is not
// under the current PII key, one member per transaction, so an old key can be retired after a
// rotation. Running it again finds nothing to do.
func (h *Handler) reseal(w http.ResponseWriter, r *http.Request) {
	out := Reseal{KeyID: h.Keys.CurrentKeyID()}
	current := h.Keys.CurrentKeyID() + ":"
	n, err := h.eachMember(r.Context(), func(m *member.Member) (int, error) {
		changed := 0
		for i, s := range m.Identities {
			if s.Sealed == "" || strings.HasPrefix(s.Sealed, current) {
				continue
			}
			plain, err := h.Keys.Open(s.Sealed, s.Type)
			if err != nil {
				return 0, err
			}
			if m.Identities[i].Sealed, err = h.Keys.Seal(plain, s.Type); err != nil {
				return 0, err
			}
			changed++
		}
		return changed, nil
	}, nil)
	out.Members, out.Resealed = n.members, n.changed
	if err != nil {
		runtime.WriteError(w, http.StatusServiceUnavailable, "", "reseal: %v", err)
		return
	}
	runtime.WriteJSON(w, http.StatusOK, out)
}

// Rekey is the answer of POST /v1/admin/identities:rekey.
type Rekey struct {
	Members int    `json:"members"`
	Rekeyed int    `json:"rekeyed"`
	KeyID   string `json:"keyId"`
}

// rekey moves every stored identity that is not under the current identity key to it, one member
// per transaction: the member's keyed values and keys (the old key stays in formerKeys, as orders
// keep the keys they were resolved with) and the identity document the member owns. Until it has
// run, lookups find identities under the older keys still listed; once it has, an older key can go
// (see functions/match/README.md). Running it again finds nothing to do.
func (h *Handler) rekey(w http.ResponseWriter, r *http.Request) {
	out := Rekey{KeyID: h.Keyer.CurrentKeyID()}
	var moves []linkMove
	n, err := h.eachMember(r.Context(), func(m *member.Member) (int, error) {
		var err error
		moves, err = h.rekeyIdentities(m)
		return len(moves), err
	}, func(tx store.Tx, m member.Member) error { return moveLinks(tx, m.OneID, moves) })
	out.Members, out.Rekeyed = n.members, n.changed
	if err != nil {
		runtime.WriteError(w, http.StatusServiceUnavailable, "", "rekey: %v", err)
		return
	}
	runtime.WriteJSON(w, http.StatusOK, out)
}

// linkMove is one identity document to move from an old key to a new one.
type linkMove struct{ from, to string }

// rekeyIdentities keys a member's identities under the current key, from their sealed or clear
// values.
func (h *Handler) rekeyIdentities(m *member.Member) ([]linkMove, error) {
	var moves []linkMove
	for i, s := range m.Identities {
		if identity.KeyID(s.Key) == h.Keyer.CurrentKeyID() {
			continue
		}
		raw := events.Identity{Type: s.Type, Value: s.Value, Scope: s.Scope}
		if s.Type == identity.Phone || identity.IsPhoneHash(s.Type) {
			plain, err := h.Keys.Open(s.Sealed, s.Type)
			if err != nil {
				return nil, fmt.Errorf("open %s of %s: %w", s.Type, m.OneID, err)
			}
			raw.Value = plain
		}
		f := h.Keyer.Current(raw)
		m.Identities[i].FormerKeys = append(m.Identities[i].FormerKeys, s.Key)
		m.Identities[i].Key = f.Key
		if identity.IsPhoneHash(s.Type) {
			m.Identities[i].Value = f.Identity.Value
		}
		moves = append(moves, linkMove{from: s.Key, to: f.Key})
	}
	return moves, nil
}

// moveLinks moves the identity documents owner holds from their old keys to their new ones (an
// absorbed member's identities are its survivor's to move).
func moveLinks(tx store.Tx, owner string, moves []linkMove) error {
	from := make([]string, len(moves))
	for i, mv := range moves {
		from[i] = mv.from
	}
	docs, err := tx.GetAll(member.Identities, from)
	if err != nil {
		return err
	}
	for i, d := range docs {
		var l member.IdentityLink
		if !d.Exists || d.DataTo(&l) != nil || l.OneID != owner {
			continue
		}
		if err := tx.Set(member.Identities, moves[i].to, l); err != nil {
			return err
		}
		if moves[i].to != moves[i].from {
			if err := tx.Delete(member.Identities, moves[i].from); err != nil {
				return err
			}
		}
	}
	return nil
}

type counts struct{ members, changed int }

// eachMember rewrites every member in its own transaction: change edits the member and says how
// many of its identities it changed; when some, also (reads first, then writes) runs in the same
// transaction before the member is written.
func (h *Handler) eachMember(ctx context.Context, change func(*member.Member) (int, error), also func(store.Tx, member.Member) error) (counts, error) {
	ids, err := store.QueryIDs(ctx, h.Store, store.Query{Collection: member.Members})
	if err != nil {
		return counts{}, fmt.Errorf("list members: %w", err)
	}
	var n counts
	for _, id := range ids {
		n.members++
		changed := 0
		err := h.Store.RunTransaction(ctx, func(_ context.Context, tx store.Tx) error {
			var m member.Member
			if err := tx.Get(member.Members, id, &m); err != nil {
				return err
			}
			var err error
			if changed, err = change(&m); err != nil || changed == 0 { // the transaction may run again
				return err
			}
			if also != nil {
				if err := also(tx, m); err != nil {
					return err
				}
			}
			return tx.Set(member.Members, m.OneID, m)
		})
		n.changed += changed
		if err != nil {
			return n, fmt.Errorf("member %s: %w", id, err)
		}
	}
	return n, nil
}
