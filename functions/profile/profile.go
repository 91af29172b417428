// Package profile serves the 360° member profile: GET /v1/members/{oneId} and lookup by any identity.
package profile

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/amount"
	"github.com/omnimember/omnimember/shared/credential"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/loyalty"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/receipt"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
)

// Name is the function's name.
const Name = "profile"

// Store is the part of the store the profile uses: reads and queries for the views, transactions
// for the activity it records.
type Store interface {
	receipt.Transactor
	Get(ctx context.Context, collection, id string, dst any) error
	Query(ctx context.Context, q store.Query) ([]store.Document, error)
}

// API answers profile requests from the documents the functions write, and records interactions.
// Keyer keys the identities a lookup names, as match keyed them.
type API struct {
	Store  Store
	Keyer  *identity.Keyer
	Ladder loyalty.Ladder
	Now    func() time.Time
	// Tmall, if set, serves the 会员通 bind-query/join SPI at TmallMemberPath.
	Tmall *TmallMember
	// Readers are the credentials of the read routes (OMNIMEMBER_READER_TOKENS): each route needs
	// its scope, lookups are rate-limited per credential. None: the routes answer 403.
	Readers *credential.Readers
}

// Function is the profile as the runtime runs it: the read API and the activity consumer.
func (a *API) Function() runtime.Function {
	return runtime.Function{Name: Name, Consumes: Consumes, Emits: Emits, Handle: a.Handle,
		Routes: func(mux runtime.Mux, pub *runtime.Publisher) {
			a.Routes(mux)
			if a.Tmall != nil {
				mux.Handle("POST "+TmallMemberPath, a.TmallMemberHandler(pub))
			}
		}}
}

// Routes registers the read endpoints, each behind a reader credential with its scope.
func (a *API) Routes(mux runtime.Mux) {
	read := func(scope string, fn http.HandlerFunc) http.Handler {
		return runtime.RequireReader(a.Readers, scope, fn)
	}
	mux.Handle("GET /v1/members/{oneId}", read(credential.ScopeProfile, a.get))
	mux.Handle("GET /v1/members/{oneId}/orders", read(credential.ScopeOrders, a.listOrders))
	mux.Handle("GET /v1/members:lookup", read(credential.ScopeLookup, a.lookup))
}

// Profile is the 360° view of one member. Phones appear masked only, their hashes not at all.
type Profile struct {
	OneID               string                    `json:"oneId"`
	RequestedOneID      string                    `json:"requestedOneId,omitempty"`
	MergedFrom          []string                  `json:"mergedFrom,omitempty"`
	Identities          []IdentityView            `json:"identities"`
	IdentitiesByChannel map[string][]IdentityView `json:"identitiesByChannel"`
	Channels            []string                  `json:"channels"`
	Pool                string                    `json:"pool"`
	Points              PointsView                `json:"points"`
	Tier                TierView                  `json:"tier"`
	Orders              OrdersView                `json:"orders"`
	RecentOrders        []OrderView               `json:"recentOrders"`
	Interactions        InteractionsView          `json:"interactions"`
	LastActiveAt        *time.Time                `json:"lastActiveAt,omitempty"`
	Coupons             []Coupon                  `json:"coupons"`
	Tags                []string                  `json:"tags"`
	History             []member.HistoryEntry     `json:"history"`
	ErasedAt            *time.Time                `json:"erasedAt,omitempty"`
	CreatedAt           time.Time                 `json:"createdAt"`
	UpdatedAt           time.Time                 `json:"updatedAt"`
}

// Coupon is one coupon a member holds (issued by campaigns).
type Coupon struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
}

// recentOrders is how many orders the profile itself lists; the orders endpoint pages the rest.
const recentOrders = 5

// IdentityView is one identity as people may see it.
type IdentityView struct {
	Type      string    `json:"type"`
	Value     string    `json:"value"`
	Scope     string    `json:"scope,omitempty"`
	Channel   string    `json:"channel,omitempty"`
	FirstSeen time.Time `json:"firstSeen"`
}

// PointsView is the member's points position: the balance, the lots it is made of (oldest expiry
// first) and the next expiry.
type PointsView struct {
	Balance    int64        `json:"balance"`
	Lots       []member.Lot `json:"lots"`
	NextExpiry *Expiry      `json:"nextExpiry,omitempty"`
}

// Expiry is how many points expire when.
type Expiry struct {
	At     time.Time `json:"at"`
	Points int64     `json:"points"`
}

// TierView is the member's level, what it gives, what the next one needs, and the last decision
// in words ("spend ¥420.00 more by 2027-03-01 to keep gold").
type TierView struct {
	Level       string            `json:"level"`
	Since       *time.Time        `json:"since,omitempty"`
	NetSpendFen int64             `json:"netSpendFen"`
	Score       int64             `json:"score"`
	Benefits    []string          `json:"benefits"`
	Next        *NextLevel        `json:"next,omitempty"`
	Keep        *Keep             `json:"keep,omitempty"`
	Decision    *loyalty.Decision `json:"decision,omitempty"`
	Explain     string            `json:"explain,omitempty"`
}

// Keep says what keeps a level the member is at risk of losing.
type Keep struct {
	Need int64     `json:"need"`
	By   time.Time `json:"by"`
}

// NextLevel says how much more rolling spend reaches the next level.
type NextLevel struct {
	Level        string `json:"level"`
	RemainingFen int64  `json:"remainingFen"`
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
	link, err := a.link(r.Context(), norm[0])
	if err != nil {
		a.fail(w, err, "no member has this "+id.Type)
		return
	}
	a.respond(w, r.Context(), link.OneID)
}

// link reads the identity document of a normalised identity: a platform's raw hash or a phone is
// keyed on arrival, with every identity key, the current one first (a rotation not yet rekeyed).
func (a *API) link(ctx context.Context, id events.Identity) (member.IdentityLink, error) {
	var l member.IdentityLink
	err := store.ErrNotFound
	for _, key := range a.Keyer.Keys(id) {
		if err = a.Store.Get(ctx, member.Identities, key, &l); !errors.Is(err, store.ErrNotFound) {
			break
		}
	}
	return l, err
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

// live reads a member, following merges: an absorbed OneID leads to its survivor.
func (a *API) live(ctx context.Context, oneID string) (member.Member, error) {
	for range member.MaxMergeHops + 1 {
		var m member.Member
		if err := a.Store.Get(ctx, member.Members, oneID, &m); err != nil {
			return m, err
		}
		if m.MergedInto == "" {
			return m, nil
		}
		oneID = m.MergedInto
	}
	return member.Member{}, fmt.Errorf("member %s: merge chain longer than %d", oneID, member.MaxMergeHops)
}

// Load assembles a profile; an absorbed OneID answers with its survivor.
func (a *API) Load(ctx context.Context, oneID string) (Profile, error) {
	m, err := a.live(ctx, oneID)
	if err != nil {
		return Profile{}, err
	}
	p := Profile{OneID: m.OneID, MergedFrom: m.MergedFrom, Channels: m.Channels, Pool: m.Pool, ErasedAt: m.ErasedAt,
		CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt, Identities: views(m.Identities), History: m.History,
		Coupons: []Coupon{}, Tags: []string{}}
	if p.History == nil {
		p.History = []member.HistoryEntry{}
	}
	if oneID != m.OneID {
		p.RequestedOneID = oneID
	}
	p.IdentitiesByChannel = byChannel(p.Identities)
	all := append([]string{m.OneID}, m.MergedFrom...)
	if p.Points, err = a.points(ctx, m.OneID); err != nil {
		return Profile{}, err
	}
	if p.Tier, err = a.tier(ctx, m.OneID); err != nil {
		return Profile{}, err
	}
	orders, err := a.memberOrders(ctx, all)
	if err != nil {
		return Profile{}, err
	}
	if p.Orders, err = summarise(orders); err != nil {
		return Profile{}, err
	}
	p.RecentOrders = orders[:min(len(orders), recentOrders)]
	if p.Interactions, err = a.interactions(ctx, all); err != nil {
		return Profile{}, err
	}
	p.LastActiveAt = latest(p.Interactions.LastActiveAt, p.Orders.LastOrderAt)
	return p, nil
}

func latest(a, b *time.Time) *time.Time {
	if a == nil || (b != nil && b.After(*a)) {
		return b
	}
	return a
}

func byChannel(ids []IdentityView) map[string][]IdentityView {
	out := map[string][]IdentityView{}
	for _, id := range ids {
		ch := id.Channel
		if ch == "" {
			ch = "unknown"
		}
		out[ch] = append(out[ch], id)
	}
	return out
}

func (a *API) points(ctx context.Context, oneID string) (PointsView, error) {
	var acct member.Account
	if err := a.Store.Get(ctx, member.Accounts, oneID, &acct); err != nil && !errors.Is(err, store.ErrNotFound) {
		return PointsView{}, err
	}
	v := PointsView{Balance: acct.Balance, Lots: acct.Lots}
	if v.Lots == nil {
		v.Lots = []member.Lot{}
	}
	for _, l := range acct.Lots {
		if v.NextExpiry == nil {
			v.NextExpiry = &Expiry{At: l.ExpiresAt}
		}
		if l.ExpiresAt.Equal(v.NextExpiry.At) {
			var err error
			if v.NextExpiry.Points, err = amount.Add(v.NextExpiry.Points, l.Remaining); err != nil {
				return PointsView{}, fmt.Errorf("points expiring next: %w", err)
			}
		}
	}
	return v, nil
}

func (a *API) tier(ctx context.Context, oneID string) (TierView, error) {
	st := member.TierState{Level: a.Ladder[0].Name}
	if err := a.Store.Get(ctx, member.Tiers, oneID, &st); err != nil && !errors.Is(err, store.ErrNotFound) {
		return TierView{}, err
	}
	return a.tierView(st), nil
}

// views are the identities as people may see them: a phone by its mask, and no hash of it (keyed
// or not, a phone's hash is the phone's stand-in; the mask says all a reader needs).
func views(ids []member.StoredIdentity) []IdentityView {
	out := make([]IdentityView, 0, len(ids))
	for _, s := range ids {
		if identity.IsPhoneHash(s.Type) {
			continue
		}
		v := IdentityView{Type: s.Type, Value: s.Value, Scope: s.Scope, Channel: s.Channel, FirstSeen: s.FirstSeen}
		if s.Type == identity.Phone {
			v.Value = s.Masked
		}
		out = append(out, v)
	}
	return out
}

func (a *API) tierView(st member.TierState) TierView {
	v := TierView{Level: st.Level, NetSpendFen: st.NetSpendFen, Score: st.Score, Benefits: []string{}, Decision: st.Decision}
	if !st.LevelSince.IsZero() {
		v.Since = &st.LevelSince
	}
	if r := a.Ladder.Rank(st.Level); r >= 0 {
		v.Benefits = append(v.Benefits, a.Ladder[r].Benefits...)
	}
	if next, ok := a.Ladder.Next(st.Level); ok {
		v.Next = &NextLevel{Level: next.Name, RemainingFen: max(0, next.Min-st.Score)}
	}
	if d := st.Decision; d != nil {
		v.Explain = d.Explain()
		if d.KeepNeed > 0 && d.KeepBy != nil {
			v.Keep = &Keep{Need: d.KeepNeed, By: *d.KeepBy}
		}
	}
	return v
}
