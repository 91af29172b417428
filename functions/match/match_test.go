package match

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/loyalty"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/pii"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
	"github.com/omnimember/omnimember/shared/store/embedded"
	"github.com/omnimember/omnimember/shared/store/firestore"
	"github.com/omnimember/omnimember/shared/store/firestore/firestoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { firestoretest.Main(m) }

var t0 = time.Date(2026, 11, 11, 0, 0, 0, 0, time.UTC)

type fixture struct {
	h                   *Handler
	store               store.Store
	clock               time.Time
	keySpec, idKeysSpec string
}

func newFixture(t *testing.T, s store.Store) *fixture {
	spec, idSpec := pii.NewKey("test"), identity.NewKey("id1")
	keys, err := pii.ParseKeyring(spec)
	require.NoError(t, err)
	keyer, err := identity.ParseKeys(idSpec)
	require.NoError(t, err)
	f := &fixture{store: s, clock: t0, keySpec: spec, idKeysSpec: idSpec}
	f.h = &Handler{Store: s, Keys: keys, Keyer: keyer, Rules: identity.DefaultRules(), Ladder: loyalty.Defaults().Ladder(), AdminToken: "admin-secret",
		Now: func() time.Time { return f.clock }}
	return f
}

func embeddedStore(t *testing.T) store.Store {
	s, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"), embedded.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func order(t *testing.T, id, channel string, ids ...events.Identity) cloudevents.Event {
	ev, err := events.New(events.OrderPaid, id, channel+"/shop-1", t0, events.OrderPaidData{
		OrderID: "o-" + id, Channel: channel, ShopID: "shop-1", AmountFen: 10000, PaidAt: t0, Identities: ids})
	require.NoError(t, err)
	return ev
}

func resolvedOf(t *testing.T, outs []cloudevents.Event) events.IdentityResolvedData {
	t.Helper()
	require.NotEmpty(t, outs)
	last := outs[len(outs)-1]
	require.Equal(t, events.IdentityResolved, last.Type())
	d, err := events.Decode[events.IdentityResolvedData](last)
	require.NoError(t, err)
	return d
}

func phone(v string) events.Identity { return events.Identity{Type: "phone", Value: v} }

func TestNewMemberKeepsNoPlaintextPhone(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		f := newFixture(t, s)
		outs, err := f.h.Handle(context.Background(), order(t, "e1", "tmall", phone("+86 138-1234-5678"),
			events.Identity{Type: "tmall_ouid", Value: "ouid-1", Scope: "shop-1"}))
		require.NoError(t, err)
		require.Len(t, outs, 1)
		r := resolvedOf(t, outs)
		assert.Regexp(t, `^om_[0-9a-v]{20}$`, r.OneID)
		raw, err := json.Marshal(outs)
		require.NoError(t, err)
		assert.NotContains(t, string(raw), "13812345678", "no plaintext phone on the bus")
		assert.Contains(t, string(raw), "138****5678")
		require.NotNil(t, r.Order)
		assert.Equal(t, int64(10000), r.Order.AmountFen, "the source data travels on")

		var m member.Member
		require.NoError(t, f.store.Get(context.Background(), member.Members, r.OneID, &m))
		assert.Equal(t, member.PoolPlaintext, m.Pool)
		stored, err := json.Marshal(m)
		require.NoError(t, err)
		assert.NotContains(t, string(stored), "13812345678", "no plaintext phone at rest")
		var sealed string
		for _, s := range m.Identities {
			if s.Type == identity.Phone {
				sealed = s.Sealed
			}
		}
		got, err := f.h.Keys.Open(sealed, identity.Phone)
		require.NoError(t, err)
		assert.Equal(t, "13812345678", got)
	})
}

func TestSamePersonAcrossChannelsResolvesToOneMember(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		f := newFixture(t, s)
		ctx := context.Background()
		first, err := f.h.Handle(ctx, order(t, "e1", "tmall", phone("13812345678")))
		require.NoError(t, err)
		oneID := resolvedOf(t, first).OneID
		tests := []struct {
			name string
			ev   cloudevents.Event
		}{
			{"full-width phone on JD", order(t, "e2", "jd", phone("１３８１２３４５６７８"), events.Identity{Type: "jd_pin", Value: "pin-1"})},
			{"sha256 only on Douyin", order(t, "e3", "douyin", events.Identity{Type: "phone_sha256", Value: identity.PhoneSHA256("13812345678")})},
			{"md5 only on Youzan", order(t, "e4", "youzan", events.Identity{Type: "phone_md5", Value: identity.PhoneMD5("13812345678")})},
			{"jd pin alone, linked earlier", order(t, "e5", "jd", events.Identity{Type: "jd_pin", Value: "pin-1"})},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				outs, err := f.h.Handle(ctx, tt.ev)
				require.NoError(t, err)
				assert.Equal(t, oneID, resolvedOf(t, outs).OneID)
				assert.Len(t, outs, 1, "no merge")
			})
		}
		var m member.Member
		require.NoError(t, f.store.Get(ctx, member.Members, oneID, &m))
		assert.ElementsMatch(t, []string{"tmall", "jd", "douyin", "youzan"}, m.Channels)
	})
}

func TestEventLinkingTwoMembersMergesIntoTheOlder(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		f := newFixture(t, s)
		ctx := context.Background()
		a, err := f.h.Handle(ctx, order(t, "a", "tmall", events.Identity{Type: "tmall_omid", Value: "omid-1"}))
		require.NoError(t, err)
		f.clock = f.clock.Add(time.Hour)
		b, err := f.h.Handle(ctx, order(t, "b", "jd", events.Identity{Type: "jd_pin", Value: "pin-9"}, phone("13900001111")))
		require.NoError(t, err)
		older, newer := resolvedOf(t, a).OneID, resolvedOf(t, b).OneID
		require.NotEqual(t, older, newer)

		f.clock = f.clock.Add(time.Hour)
		link := order(t, "c", "wechat", events.Identity{Type: "tmall_omid", Value: "omid-1"}, phone("13900001111"))
		outs, err := f.h.Handle(ctx, link)
		require.NoError(t, err)
		require.Len(t, outs, 3, "member.merged, pool.changed, identity.resolved")
		require.Equal(t, events.MemberMerged, outs[0].Type())
		require.Equal(t, events.PoolChanged, outs[1].Type(), "the older member had no phone: absorbing one makes it reachable")
		merged, err := events.Decode[events.MemberMergedData](outs[0])
		require.NoError(t, err)
		assert.Equal(t, older, merged.SurvivorOneID, "the older OneID survives")
		assert.Equal(t, []string{newer}, merged.AbsorbedOneIDs)
		assert.Contains(t, merged.LinkedBy, "phone")
		assert.Equal(t, older, resolvedOf(t, outs).OneID)

		var absorbed member.Member
		require.NoError(t, f.store.Get(ctx, member.Members, newer, &absorbed))
		assert.Equal(t, older, absorbed.MergedInto)
		// The absorbed member's own identities now resolve to the survivor.
		again, err := f.h.Handle(ctx, order(t, "d", "jd", events.Identity{Type: "jd_pin", Value: "pin-9"}))
		require.NoError(t, err)
		assert.Equal(t, older, resolvedOf(t, again).OneID)
		assert.Len(t, again, 1)
	})
}

func TestRedeliveryReturnsTheSameEventsAndChangesNothing(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		f := newFixture(t, s)
		ctx := context.Background()
		ev := order(t, "e1", "pos", phone("13812345678"), events.Identity{Type: "pos_card", Value: "card-7"})
		first, err := f.h.Handle(ctx, ev)
		require.NoError(t, err)
		var before member.Member
		require.NoError(t, f.store.Get(ctx, member.Members, resolvedOf(t, first).OneID, &before))

		f.clock = f.clock.Add(time.Hour)
		second, err := f.h.Handle(ctx, ev)
		require.NoError(t, err)
		require.Len(t, second, len(first))
		for i := range first {
			assert.Equal(t, first[i].ID(), second[i].ID(), "same deterministic ids")
			assert.JSONEq(t, string(first[i].Data()), string(second[i].Data()))
		}
		var after member.Member
		require.NoError(t, f.store.Get(ctx, member.Members, resolvedOf(t, first).OneID, &after))
		assert.Equal(t, before, after)
	})
}

func TestWeakOnlyEventsStayUnresolvedAndBadEventsArePermanent(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		f := newFixture(t, s)
		ctx := context.Background()
		ev, err := events.New(events.InteractionRecorded, "i1", "app/ios", t0, events.InteractionRecordedData{
			Channel: "app", Kind: "browse", OccurredAt: t0, Identities: []events.Identity{{Type: "anonymous_id", Value: "anon-1"}}})
		require.NoError(t, err)
		outs, err := f.h.Handle(ctx, ev)
		require.NoError(t, err)
		assert.Empty(t, outs, "an anonymous id alone never creates a member")

		bad := order(t, "x", "tmall", phone("13812345678"))
		bad.DataEncoded = []byte(`{"orderId": 5}`)
		_, err = f.h.Handle(ctx, bad)
		require.Error(t, err)
		assert.True(t, runtime.IsPermanent(err), "undecodable data is not worth retrying")
	})
}

// TestOrdersThatReachNobodyAreDeadLettered is the finding: an order whose only identity
// is an invalid phone was dropped at match with an INFO line and no dead letter. Ingest refuses
// it now; one that still reaches match fails permanently, so the runtime dead-letters it.
func TestOrdersThatReachNobodyAreDeadLettered(t *testing.T) {
	f := newFixture(t, embeddedStore(t))
	f.deadLettered(t, order(t, "bad-phone", "pos", phone("12345")), "an order whose only phone does not normalise")
	refund, err := events.New(events.OrderRefunded, "bad-refund", "pos/x", t0, events.OrderRefundedData{OrderID: "o", RefundID: "r",
		Channel: "pos", AmountFen: 100, RefundedAt: t0, Identities: []events.Identity{{Type: "phone_masked", Value: "138****5678"}}})
	require.NoError(t, err)
	f.deadLettered(t, refund, "a refund with a weak id only")
}

// TestResolvedCarriesWhenIngestReceivedTheEvent: the loyalty caps count the day ingest stamped.
func TestResolvedCarriesWhenIngestReceivedTheEvent(t *testing.T) {
	f := newFixture(t, embeddedStore(t))
	ev := order(t, "stamped", "jd", phone("13812345678"))
	at := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	events.StampReceived(&ev, at)
	d := resolvedOf(t, []cloudevents.Event{f.handle(t, ev)[events.IdentityResolved]})
	require.NotNil(t, d.ReceivedAt)
	assert.True(t, at.Equal(*d.ReceivedAt))
	history := resolvedOf(t, []cloudevents.Event{f.handle(t, order(t, "history", "jd", phone("13812345678")))[events.IdentityResolved]})
	assert.Nil(t, history.ReceivedAt, "history carries none")
}

// eachStore runs a test against the embedded store and against Firestore (the emulator).
func eachStore(t *testing.T, test func(t *testing.T, s store.Store)) {
	t.Run("embedded", func(t *testing.T) { test(t, embeddedStore(t)) })
	t.Run("firestore", func(t *testing.T) {
		firestoretest.Host(t)
		s, err := firestore.Open(context.Background(), firestore.Config{ProjectID: firestoretest.ProjectID(t)})
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		test(t, s)
	})
}

// TestConcurrentEventsWithTheSameNewPhoneMakeOneMember races events on both stores.
func TestConcurrentEventsWithTheSameNewPhoneMakeOneMember(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		{
			f := newFixture(t, s)
			const racers = 12
			got := make([]string, racers)
			var wg sync.WaitGroup
			for i := range racers {
				wg.Go(func() {
					channel := events.Channels[i%len(events.Channels)]
					outs, err := f.h.Handle(context.Background(), order(t, fmt.Sprint("race-", i), channel, phone("13700000000")))
					if assert.NoError(t, err) {
						got[i] = resolvedOf(t, outs).OneID
					}
				})
			}
			wg.Wait()
			for i := range got {
				assert.Equal(t, got[0], got[i], "racer %d resolved elsewhere", i)
			}
			docs, err := f.store.Query(context.Background(), store.Query{Collection: member.Members})
			require.NoError(t, err)
			assert.Len(t, docs, 1, "got members, want one")
		}
	})
}
