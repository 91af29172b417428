package match

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
)

// MemberSummary is what a merge would combine of one member.
type MemberSummary struct {
	OneID        string `json:"oneId"`
	Pool         string `json:"pool"`
	Points       int64  `json:"points"`
	Tier         string `json:"tier"`
	NetSpendFen  int64  `json:"netSpendFen"`
	Orders       int64  `json:"orders"`
	NetAmountFen int64  `json:"netAmountFen"`
}

// Preview is the answer of POST /v1/members:merge-preview: the decision the identities would
// cause, and the members before and after, with nothing changed.
type Preview struct {
	Outcome      string          `json:"outcome"`
	Reason       string          `json:"reason,omitempty"`
	Survivor     string          `json:"survivor,omitempty"`
	Absorbed     []string        `json:"absorbed,omitempty"`
	Conflicts    []string        `json:"conflicts,omitempty"`
	Blocked      []string        `json:"blocked,omitempty"`
	Before       []MemberSummary `json:"before"`
	After        *MemberSummary  `json:"after,omitempty"`
	RulesVersion string          `json:"rulesVersion"`
}

type previewRequest struct {
	Identities []events.Identity `json:"identities"`
}

func (h *Handler) mergePreview(w http.ResponseWriter, r *http.Request) {
	var req previewRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		runtime.WriteError(w, runtime.BodyStatus(err), "body", "want {\"identities\":[{\"type\",\"value\",\"scope\"}]}: %v", err)
		return
	}
	ids, dropped := normalize(req.Identities)
	if len(ids) == 0 || dropped > 0 {
		runtime.WriteError(w, http.StatusBadRequest, "identities", "want at least one identity, each valid (%d invalid)", dropped)
		return
	}
	var out Preview
	err := h.Store.RunTransaction(r.Context(), func(_ context.Context, tx store.Tx) error {
		now := h.Now()
		p, err := h.decide(tx, "om_preview00000000000", ids, now, now, false)
		if err != nil {
			return err
		}
		out, err = h.preview(tx, p)
		return err
	})
	if err != nil {
		runtime.WriteError(w, http.StatusServiceUnavailable, "", "preview: %v", err)
		return
	}
	runtime.WriteJSON(w, http.StatusOK, out)
}

// preview reads the accounts and tiers of the members involved and combines them.
func (h *Handler) preview(tx store.Tx, p Plan) (Preview, error) {
	out := Preview{Conflicts: p.Conflicts, RulesVersion: h.Rules.Version, Before: []MemberSummary{}}
	for _, b := range p.Blocked {
		out.Blocked = append(out.Blocked, b.Type)
	}
	switch {
	case p.Quarantine != "":
		out.Outcome, out.Reason = "quarantine", p.Quarantine
		return out, nil
	case p.Unresolved != "":
		out.Outcome, out.Reason = "unresolved", p.Unresolved
		return out, nil
	case p.Created:
		out.Outcome = "new member"
		return out, nil
	case len(p.Absorbed) > 0:
		out.Outcome = "merge"
	case len(p.Conflicts) > 0:
		out.Outcome = "conflict"
	default:
		out.Outcome = "existing member"
	}
	out.Survivor = p.Survivor.OneID
	members := append([]member.Member{p.Survivor}, p.Absorbed...)
	for _, a := range p.Absorbed {
		out.Absorbed = append(out.Absorbed, a.OneID)
	}
	before, err := h.summaries(tx, members)
	if err != nil {
		return out, err
	}
	out.Before = before
	after := MemberSummary{OneID: p.Survivor.OneID, Pool: member.PoolCiphertext, Tier: h.Ladder[0].Name}
	best := 0
	for _, b := range before {
		after.Points += b.Points
		after.NetSpendFen += b.NetSpendFen
		after.Orders += b.Orders
		after.NetAmountFen += b.NetAmountFen
		if b.Pool == member.PoolPlaintext {
			after.Pool = member.PoolPlaintext
		}
		best = max(best, h.Ladder.Rank(b.Tier))
	}
	// Upgrades apply at once and nothing downgrades on a merge.
	after.Tier = h.Ladder[max(best, h.Ladder.Rank(h.Ladder.For(after.NetSpendFen).Name))].Name
	if stored, _ := h.stored(p.Attach, "", h.Now()); poolOf(stored) == member.PoolPlaintext {
		after.Pool = member.PoolPlaintext
	}
	out.After = &after
	return out, nil
}

func (h *Handler) summaries(tx store.Tx, members []member.Member) ([]MemberSummary, error) {
	ids := make([]string, len(members))
	for i, m := range members {
		ids[i] = m.OneID
	}
	accts, err := tx.GetAll(member.Accounts, ids)
	if err != nil {
		return nil, err
	}
	tiers, err := tx.GetAll(member.Tiers, ids)
	if err != nil {
		return nil, err
	}
	out := make([]MemberSummary, len(members))
	for i, m := range members {
		var a member.Account
		t := member.TierState{Level: h.Ladder[0].Name}
		if accts[i].Exists {
			if err := accts[i].DataTo(&a); err != nil {
				return nil, err
			}
		}
		if tiers[i].Exists {
			if err := tiers[i].DataTo(&t); err != nil {
				return nil, err
			}
		}
		out[i] = MemberSummary{OneID: m.OneID, Pool: m.Pool, Points: a.Balance, Tier: t.Level, NetSpendFen: t.NetSpendFen,
			Orders: a.OrderCount, NetAmountFen: a.NetAmountFen}
	}
	return out, nil
}
