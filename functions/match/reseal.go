package match

import (
	"context"
	"net/http"
	"strings"

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

// reseal re-encrypts every sealed phone that is not under the current key, one member per
// transaction, so an old key can be retired after a rotation. Running it again finds nothing to do.
func (h *Handler) reseal(w http.ResponseWriter, r *http.Request) {
	docs, err := h.Store.Query(r.Context(), store.Query{Collection: member.Members})
	if err != nil {
		runtime.WriteError(w, http.StatusServiceUnavailable, "", "list members: %v", err)
		return
	}
	out := Reseal{KeyID: h.Keys.CurrentKeyID()}
	current := h.Keys.CurrentKeyID() + ":"
	for _, d := range docs {
		out.Members++
		changed := 0
		err := h.Store.RunTransaction(r.Context(), func(_ context.Context, tx store.Tx) error {
			var m member.Member
			if err := tx.Get(member.Members, d.ID, &m); err != nil {
				return err
			}
			changed = 0 // the transaction may run again
			for i, s := range m.Identities {
				if s.Sealed == "" || strings.HasPrefix(s.Sealed, current) {
					continue
				}
				plain, err := h.Keys.Open(s.Sealed, identity.Phone)
				if err != nil {
					return err
				}
				if m.Identities[i].Sealed, err = h.Keys.Seal(plain, identity.Phone); err != nil {
					return err
				}
				changed++
			}
			if changed == 0 {
				return nil
			}
			return tx.Set(member.Members, m.OneID, m)
		})
		out.Resealed += changed
		if err != nil {
			runtime.WriteError(w, http.StatusServiceUnavailable, "", "reseal %s: %v", d.ID, err)
			return
		}
	}
	runtime.WriteJSON(w, http.StatusOK, out)
}
