// Package profile serves the 360° member profile: GET /v1/members/{oneId} and lookup by any identity.
package profile

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
	"github.com/omnimember/omnimember/shared/tier"
)

// Name is the function's name.
const Name = "profile"

// Reader is the part of the store the profile reads.
type Reader interface {
	Get(ctx context.Context, collection, id string, dst any) error
}

// API answers profile requests from the documents the other functions write.
type API struct {
	Store  Reader
	Ladder tier.Ladder
}

// Function is the profile as the runtime runs it: HTTP routes only.
func (a *API) Function() runtime.Function {
	return runtime.Function{Name: Name, Routes: func(mux *http.ServeMux, _ *runtime.Publisher) { a.Routes(mux) }}
}

// Routes registers the read endpoints.
func (a *API) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/members/{oneId}", a.get)
	mux.HandleFunc("GET /v1/members:lookup", a.lookup)
}

// Profile is the 360° view of one member. Phones appear masked only.
type Profile struct {
	OneID          string         `json:"oneId"`
	RequestedOneID string         `json:"requestedOneId,omitempty"`
	MergedFrom     []string       `json:"mergedFrom,omitempty"`
	Identities     []IdentityView `json:"identities"`
	Channels       []string       `json:"channels"`
	Pool           string         `json:"pool"`
	Points         Points         `json:"points"`
	Tier           TierView       `json:"tier"`
	Orders         Orders         `json:"orders"`
	CreatedAt      time.Time      `json:"createdAt"`
	UpdatedAt      time.Time      `json:"updatedAt"`
}

// IdentityView is one identity as people may see it.
type IdentityView struct {
	Type      string    `json:"type"`
	Value     string    `json:"value"`
	Scope     string    `json:"scope,omitempty"`
	Channel   string    `json:"channel,omitempty"`
	FirstSeen time.Time `json:"firstSeen"`
}

// Points is the member's points position.
type Points struct {
	Balance int64 `json:"balance"`
}

// TierView is the member's level, what it gives and what the next one needs.
type TierView struct {
	Level       string     `json:"level"`
	NetSpendFen int64      `json:"netSpendFen"`
	Benefits    []string   `json:"benefits"`
	Next        *NextLevel `json:"next,omitempty"`
}

// NextLevel says how much more rolling spend reaches the next level.
type NextLevel struct {
	Level        string `json:"level"`
	RemainingFen int64  `json:"remainingFen"`
}

// Orders summarises the member's orders on every channel.
type Orders struct {
	Count        int64 `json:"count"`
	NetAmountFen int64 `json:"netAmountFen"`
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	a.respond(w, r.Context(), r.PathValue("oneId"))
}

func (a *API) lookup(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id := events.Identity{Type: q.Get("type"), Value: q.Get("value"), Scope: q.Get("scope")}
	for field, v := range map[string]string{"type": id.Type, "value": id.Value} {
		if v == "" {
			runtime.WriteError(w, http.StatusBadRequest, field, "query parameter %s is required", field)
			return
		}
	}
	norm, err := identity.Normalize(id)
	if err != nil {
		runtime.WriteError(w, http.StatusBadRequest, "value", "%v", err)
		return
	}
	var link member.IdentityLink
	if err := a.Store.Get(r.Context(), member.Identities, identity.Key(norm[0]), &link); err != nil {
		a.fail(w, err, "no member has this "+id.Type)
		return
	}
	a.respond(w, r.Context(), link.OneID)
}

func (a *API) respond(w http.ResponseWriter, ctx context.Context, oneID string) {
	p, err := a.Load(ctx, oneID)
	if err != nil {
		a.fail(w, err, fmt.Sprintf("member %s not found", oneID))
		return
	}
	runtime.WriteJSON(w, http.StatusOK, p)
}

func (a *API) fail(w http.ResponseWriter, err error, notFound string) {
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalidName) {
		runtime.WriteError(w, http.StatusNotFound, "", "%s", notFound)
		return
	}
	runtime.WriteError(w, http.StatusServiceUnavailable, "", "read profile: %v", err)
}

// Load assembles a profile, following merges: an absorbed OneID answers with its survivor.
func (a *API) Load(ctx context.Context, oneID string) (Profile, error) {
	var m member.Member
	requested := oneID
	for hop := 0; ; hop++ {
		m = member.Member{} // decoding into a used value would keep its old MergedInto
		if err := a.Store.Get(ctx, member.Members, oneID, &m); err != nil {
			return Profile{}, err
		}
		if m.MergedInto == "" {
			break
		}
		if hop == member.MaxMergeHops {
			return Profile{}, fmt.Errorf("member %s: merge chain longer than %d", requested, member.MaxMergeHops)
		}
		oneID = m.MergedInto
	}
	p := Profile{OneID: m.OneID, MergedFrom: m.MergedFrom, Channels: m.Channels, Pool: m.Pool,
		CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt, Identities: views(m.Identities)}
	if requested != m.OneID {
		p.RequestedOneID = requested
	}
	var acct member.Account
	if err := a.Store.Get(ctx, member.Accounts, m.OneID, &acct); err != nil && !errors.Is(err, store.ErrNotFound) {
		return Profile{}, err
	}
	p.Points.Balance = acct.Balance
	p.Orders = Orders{Count: acct.OrderCount, NetAmountFen: acct.NetAmountFen}
	st := member.TierState{Level: a.Ladder[0].Name}
	if err := a.Store.Get(ctx, member.Tiers, m.OneID, &st); err != nil && !errors.Is(err, store.ErrNotFound) {
		return Profile{}, err
	}
	p.Tier = a.tierView(st)
	return p, nil
}

func views(ids []member.StoredIdentity) []IdentityView {
	out := make([]IdentityView, 0, len(ids))
	for _, s := range ids {
		v := IdentityView{Type: s.Type, Value: s.Value, Scope: s.Scope, Channel: s.Channel, FirstSeen: s.FirstSeen}
		if s.Type == identity.Phone {
			v.Value = s.Masked
		}
		out = append(out, v)
	}
	return out
}

func (a *API) tierView(st member.TierState) TierView {
	v := TierView{Level: st.Level, NetSpendFen: st.NetSpendFen, Benefits: []string{}}
	if r := a.Ladder.Rank(st.Level); r >= 0 {
		v.Benefits = append(v.Benefits, a.Ladder[r].Benefits...)
	}
	if next, ok := a.Ladder.Next(st.Level); ok {
		v.Next = &NextLevel{Level: next.Name, RemainingFen: max(0, next.MinSpendFen-st.NetSpendFen)}
	}
	return v
}
