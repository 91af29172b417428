package match

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/ledger"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/receipt"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func id(typ, value string) events.Identity { return events.Identity{Type: typ, Value: value} }

func scoped(typ, value, scope string) events.Identity {
	return events.Identity{Type: typ, Value: value, Scope: scope}
}

// handle delivers an event and returns its outputs by type.
func (f *fixture) handle(t *testing.T, ev cloudevents.Event) map[string]cloudevents.Event {
	t.Helper()
	f.clock = f.clock.Add(time.Minute) // every event a little later: creation order is age order
	outs, err := f.h.Handle(context.Background(), ev)
	require.NoError(t, err)
	byType := map[string]cloudevents.Event{}
	for _, o := range outs {
		require.NoError(t, events.Validate(o))
		byType[o.Type()] = o
	}
	return byType
}

// deadLettered handles an event that must fail permanently (the runtime dead-letters it with the
// reason) and leave no member behind.
func (f *fixture) deadLettered(t *testing.T, ev cloudevents.Event, msg string) {
	t.Helper()
	before, err := f.store.Query(context.Background(), store.Query{Collection: member.Members})
	require.NoError(t, err)
	outs, err := f.h.Handle(context.Background(), ev)
	require.Error(t, err, msg)
	assert.True(t, runtime.IsPermanent(err), "%s: got %v, want a permanent error", msg, err)
	assert.Empty(t, outs, msg)
	after, err := f.store.Query(context.Background(), store.Query{Collection: member.Members})
	require.NoError(t, err)
	assert.Len(t, after, len(before), "%s: no member created", msg)
}

func (f *fixture) oneID(t *testing.T, ev cloudevents.Event) string {
	t.Helper()
	out := f.handle(t, ev)
	require.Contains(t, out, events.IdentityResolved)
	return resolvedOf(t, []cloudevents.Event{out[events.IdentityResolved]}).OneID
}

func (f *fixture) member(t *testing.T, oneID string) member.Member {
	var m member.Member
	require.NoError(t, f.store.Get(context.Background(), member.Members, oneID, &m))
	return m
}

func hasIdentity(m member.Member, typ string) bool {
	for _, s := range m.Identities {
		if s.Type == typ {
			return true
		}
	}
	return false
}

func TestScopedIdsFindButDoNotMerge(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		f := newFixture(t, s)
		a := f.oneID(t, order(t, "e1", "tmall", scoped("tmall_ouid", "ou-1", "shop-1"), id("tmall_omid", "om-1"), phone("13811110000")))
		assert.Equal(t, a, f.oneID(t, order(t, "e2", "tmall", scoped("tmall_ouid", "ou-1", "shop-1"))), "a shop's id alone finds its member")
		b := f.oneID(t, order(t, "e3", "jd", phone("13922220000")))
		require.NotEqual(t, a, b)
		out := f.handle(t, order(t, "e4", "tmall", scoped("tmall_ouid", "ou-1", "shop-1"), phone("13922220000")))
		assert.NotContains(t, out, events.MemberMerged, "a scoped id never merges on its own")
		assert.Equal(t, b, resolvedOf(t, []cloudevents.Event{out[events.IdentityResolved]}).OneID, "the strong id decides")
		assert.True(t, hasIdentity(f.member(t, a), "tmall_ouid"), "the scoped id stays with its member")
	})
}

func TestWeakIdsAttachAndMoveButNeverMerge(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		f := newFixture(t, s)
		f.deadLettered(t, order(t, "e1", "app", id("anonymous_id", "anon-1")), "weak only: an order resolving to nobody is dead-lettered")
		a := f.oneID(t, order(t, "e2", "app", id("anonymous_id", "anon-1"), phone("13811110000")))
		b := f.oneID(t, order(t, "e3", "app", phone("13922220000")))
		out := f.handle(t, order(t, "e4", "app", id("anonymous_id", "anon-1"), phone("13922220000")))
		assert.NotContains(t, out, events.MemberMerged)
		assert.Equal(t, b, resolvedOf(t, []cloudevents.Event{out[events.IdentityResolved]}).OneID)
		assert.False(t, hasIdentity(f.member(t, a), "anonymous_id"), "the shared device moved to the member last seen on it")
		assert.True(t, hasIdentity(f.member(t, b), "anonymous_id"))
	})
}

func TestLimitsRefuseMergesAndIdentities(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		f := newFixture(t, s)
		ctx := context.Background()
		a := f.oneID(t, order(t, "e1", "app", id("app_user_id", "u-1"), phone("13811110000")))
		b := f.oneID(t, order(t, "e2", "app", id("app_user_id", "u-2"), phone("13922220000")))
		out := f.handle(t, order(t, "e3", "pos", phone("13811110000"), phone("13922220000")))
		assert.NotContains(t, out, events.MemberMerged, "two app accounts in one member exceed the limit of 1")
		assert.Equal(t, a, resolvedOf(t, []cloudevents.Event{out[events.IdentityResolved]}).OneID, "the first highest-priority identity decides")
		assert.Empty(t, f.member(t, b).MergedInto)

		f.handle(t, order(t, "e4", "app", phone("13811110000"), id("app_user_id", "u-3")))
		assert.False(t, slicesContainsValue(f.member(t, a), "u-3"), "a third app id is not attached")
		docs, err := f.store.Query(ctx, store.Query{Collection: member.Conflicts, Filters: []store.Filter{{Field: "oneId", Op: "==", Value: a}}})
		require.NoError(t, err)
		assert.Len(t, docs, 2, "both refusals are recorded")
		kinds := 0
		for _, h := range f.member(t, a).History {
			if h.Kind == member.HistoryConflict {
				kinds++
			}
		}
		assert.Equal(t, 2, kinds, "and kept in the member's history")
	})
}

func slicesContainsValue(m member.Member, value string) bool {
	for _, s := range m.Identities {
		if s.Value == value {
			return true
		}
	}
	return false
}

func TestBlocklistedValuesNeverLink(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		f := newFixture(t, s)
		a := f.oneID(t, order(t, "e1", "tmall", id("tmall_omid", "om-1"), phone("+86 138 0000 0000")))
		b := f.oneID(t, order(t, "e2", "tmall", id("tmall_omid", "om-2"), phone("13800000000")))
		assert.NotEqual(t, a, b, "a shop's placeholder phone joins nobody")
		assert.False(t, hasIdentity(f.member(t, a), "phone"))
		f.deadLettered(t, order(t, "e3", "pos", phone("13800000000")), "only a blocked id: an order resolving to nobody is dead-lettered")
	})
}

func TestPoolChangesWhenAPhoneArrives(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		f := newFixture(t, s)
		a := f.oneID(t, order(t, "e1", "douyin", id("douyin_unionid", "du-1"), id("phone_masked", "138****5678")))
		assert.Equal(t, member.PoolCiphertext, f.member(t, a).Pool)
		out := f.handle(t, order(t, "e2", "douyin", id("douyin_unionid", "du-1"), phone("13812345678")))
		require.Contains(t, out, events.PoolChanged)
		d, err := events.Decode[events.PoolChangedData](out[events.PoolChanged])
		require.NoError(t, err)
		assert.Equal(t, events.PoolChangedData{OneID: a, From: member.PoolCiphertext, To: member.PoolPlaintext, Reason: "phone",
			SourceID: "e2", ChangedAt: f.clock}, d)
		assert.NotContains(t, f.handle(t, order(t, "e3", "douyin", id("douyin_unionid", "du-1"))), events.PoolChanged, "no transition, no event")
	})
}

func TestFanInGuardQuarantinesAndReleaseMerges(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		f := newFixture(t, s)
		ctx := context.Background()
		var members []string
		var cards []events.Identity
		for i := range 4 {
			c := id("pos_card", fmt.Sprint("card-", i))
			cards = append(cards, c)
			members = append(members, f.oneID(t, order(t, fmt.Sprint("m", i), "pos", c)))
		}
		joiner := order(t, "joins-4", "pos", cards...)
		assert.Empty(t, f.handle(t, joiner), "four members in one event exceed fanIn 3: held back")
		var q member.Quarantined
		require.NoError(t, f.store.Get(ctx, member.Quarantine, receipt.Key(Name, joiner), &q))
		assert.Equal(t, member.QuarantinePending, q.Status)
		assert.ElementsMatch(t, members, q.OneIDs)
		for _, m := range members {
			assert.Empty(t, f.member(t, m).MergedInto, "nothing merged")
		}

		// What an operator's release does: the record says released, the event comes round again marked.
		q.Status = member.QuarantineReleased
		require.NoError(t, f.store.Set(ctx, member.Quarantine, q.ID, q))
		again := joiner.Clone()
		again.SetID(joiner.ID() + "~released")
		again.SetExtension(releaseExtension, q.ID)
		out := f.handle(t, again)
		require.Contains(t, out, events.MemberMerged)
		merged, err := events.Decode[events.MemberMergedData](out[events.MemberMerged])
		require.NoError(t, err)
		assert.Equal(t, members[0], merged.SurvivorOneID, "the oldest survives")
		assert.ElementsMatch(t, members[1:], merged.AbsorbedOneIDs)
	})
}

func TestAnIdentityThatKeepsMergingIsHeldBack(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		f := newFixture(t, s)
		rules := *f.h.Rules
		rules.MaxMergesPerIdentity = 1
		f.h.Rules = &rules
		shared := id("crm_id", "store-counter-card")
		a := f.oneID(t, order(t, "e1", "pos", shared))
		f.oneID(t, order(t, "e2", "pos", phone("13811110000")))
		out := f.handle(t, order(t, "e3", "pos", shared, phone("13811110000")))
		require.Contains(t, out, events.MemberMerged, "the first merge through it goes ahead")
		f.oneID(t, order(t, "e4", "pos", phone("13922220000")))
		assert.Empty(t, f.handle(t, order(t, "e5", "pos", shared, phone("13922220000"))), "a second one waits for review")
		assert.Equal(t, a, f.oneID(t, order(t, "e6", "pos", shared)))
	})
}

func TestMergePreviewChangesNothing(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		f := newFixture(t, s)
		ctx := context.Background()
		a := f.oneID(t, order(t, "e1", "tmall", id("tmall_omid", "om-1")))
		b := f.oneID(t, order(t, "e2", "jd", id("jd_pin", "pin-1"), phone("13811110000")))
		require.NoError(t, f.store.Set(ctx, member.Accounts, a, member.Account{OneID: a, Account: ledger.Account{Balance: 300}, OrderCount: 1, NetAmountFen: 30000}))
		require.NoError(t, f.store.Set(ctx, member.Accounts, b, member.Account{OneID: b, Account: ledger.Account{Balance: 900}, OrderCount: 2, NetAmountFen: 90000}))
		require.NoError(t, f.store.Set(ctx, member.Tiers, a, member.TierState{OneID: a, Level: "member", NetSpendFen: 30000}))
		require.NoError(t, f.store.Set(ctx, member.Tiers, b, member.TierState{OneID: b, Level: "member", NetSpendFen: 90000}))
		mux := http.NewServeMux()
		f.h.Routes(mux, nil)
		srv := httptest.NewServer(mux)
		defer srv.Close()

		body := []byte(`{"identities":[{"type":"tmall_omid","value":"om-1"},{"type":"phone","value":"+86 138-1111-0000"}]}`)
		post := func(token string) *http.Response {
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/members:merge-preview", bytes.NewReader(body))
			require.NoError(t, err)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			return resp
		}
		resp := post("")
		resp.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		resp = post("admin-secret")
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var p Preview
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&p))
		assert.Equal(t, "merge", p.Outcome)
		assert.Equal(t, a, p.Survivor)
		assert.Equal(t, []string{b}, p.Absorbed)
		require.NotNil(t, p.After)
		assert.Equal(t, MemberSummary{OneID: a, Pool: member.PoolPlaintext, Points: 1200, Tier: "silver", NetSpendFen: 120000,
			Orders: 3, NetAmountFen: 120000}, *p.After, "balances add up; ¥1 200 together reaches silver; the phone makes it reachable")
		assert.Empty(t, f.member(t, b).MergedInto, "a preview merges nothing")
	})
}

func TestRulesAreAppliedFromTheIdentityPackage(t *testing.T) {
	// The handler must consult the rules it is given, not a built-in list.
	f := newFixture(t, embeddedStore(t))
	rules, err := identity.ParseRules([]byte(`{"version":"strict","fanIn":2,"maxMergesPerIdentity":3,
		"types":{"phone":{"strength":"strong","priority":1,"maxPerMember":1},"phone_sha256":{"strength":"strong","priority":2,"maxPerMember":1},
		"jd_pin":{"strength":"weak","priority":3,"maxPerMember":1}}}`))
	require.NoError(t, err)
	f.h.Rules = rules
	f.deadLettered(t, order(t, "e1", "jd", id("jd_pin", "p1")), "jd_pin made weak by the file: unresolved alone")
}

func TestScopedIdsMergeThroughTheirPlatformId(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		f := newFixture(t, s)
		// A refund that knows only the shop's open id arrives first and makes a ciphertext member.
		shopOnly := f.oneID(t, order(t, "refund-first", "douyin", scoped("douyin_openid", "op-1", "shop-9")))
		li := f.oneID(t, order(t, "e2", "douyin", id("douyin_unionid", "du-1"), phone("13987654321")))
		out := f.handle(t, order(t, "e3", "douyin", scoped("douyin_openid", "op-1", "shop-9"), id("douyin_unionid", "du-1")))
		require.Contains(t, out, events.MemberMerged, "the open id next to its union id is the same person")
		d, err := events.Decode[events.MemberMergedData](out[events.MemberMerged])
		require.NoError(t, err)
		assert.Equal(t, shopOnly, d.SurvivorOneID, "the older member survives")
		assert.Equal(t, []string{li}, d.AbsorbedOneIDs)
		assert.Contains(t, d.LinkedBy, "douyin_unionid")
	})
}
