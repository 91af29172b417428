package tierevaluate

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/loyalty"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/store"
	"github.com/omnimember/omnimember/shared/store/embedded"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

const alice, bob = "om_aaaaaaaaaaaaaaaaaaaa", "om_bbbbbbbbbbbbbbbbbbbb"

func newHandler(t *testing.T) (*Handler, store.Store) {
	s, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"), embedded.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return &Handler{Store: s, Rules: loyalty.Defaults(), Now: func() time.Time { return now }}, s
}

func awarded(t *testing.T, id, oneID, orderID string, netFen int64, paidAt time.Time) cloudevents.Event {
	ev, err := events.New(events.PointsAwarded, id, events.Source("points-award"), now, events.PointsAwardedData{
		OneID: oneID, OrderID: orderID, Channel: "jd", ShopID: "s", Points: netFen / 100, Balance: netFen / 100,
		OrderNetAmountFen: netFen, PaidAt: paidAt, SourceID: "x"})
	require.NoError(t, err)
	return ev
}

func reversed(t *testing.T, id, oneID, orderID string, netFen int64, paidAt time.Time) cloudevents.Event {
	ev, err := events.New(events.PointsReversed, id, events.Source("points-award"), now, events.PointsReversedData{
		OneID: oneID, OrderID: orderID, RefundID: "r-" + id, Channel: "jd", Points: 1, Balance: 0,
		OrderNetAmountFen: netFen, PaidAt: paidAt, SourceID: "x"})
	require.NoError(t, err)
	return ev
}

func merged(t *testing.T, id, survivor, absorbed string) cloudevents.Event {
	ev, err := events.New(events.MemberMerged, id, events.Source("match"), now, events.MemberMergedData{
		SurvivorOneID: survivor, AbsorbedOneIDs: []string{absorbed}, LinkedBy: []string{"phone"}, SourceID: "x", MergedAt: now})
	require.NoError(t, err)
	return ev
}

type step struct {
	ev       cloudevents.Event
	wantFrom string // empty: no tier.changed
	wantTo   string
}

func TestTierDecisions(t *testing.T) {
	yesterday := now.Add(-24 * time.Hour)
	tests := []struct {
		name      string
		steps     func(t *testing.T) []step
		wantLevel string
		wantSpend int64
	}{
		{"first order reaching silver upgrades", func(t *testing.T) []step {
			return []step{{awarded(t, "e1", alice, "o1", 129900, yesterday), "member", "silver"}}
		}, "silver", 129900},
		{"small order changes nothing", func(t *testing.T) []step {
			return []step{{awarded(t, "e1", alice, "o1", 9900, yesterday), "", ""}}
		}, "member", 9900},
		{"spend adds up across orders; redelivery changes nothing", func(t *testing.T) []step {
			e2 := awarded(t, "e2", alice, "o2", 200000, yesterday)
			return []step{{awarded(t, "e1", alice, "o1", 120000, yesterday), "member", "silver"},
				{e2, "silver", "gold"}, {e2, "silver", "gold"}}
		}, "gold", 320000},
		{"a refund lowers spend but never downgrades at once", func(t *testing.T) []step {
			return []step{{awarded(t, "e1", alice, "o1", 300000, yesterday), "member", "gold"},
				{reversed(t, "e2", alice, "o1", 50000, yesterday), "", ""}}
		}, "gold", 50000},
		{"orders older than 365 days do not count", func(t *testing.T) []step {
			return []step{{awarded(t, "e1", alice, "o1", 500000, now.AddDate(0, 0, -366)), "", ""},
				{awarded(t, "e2", alice, "o2", 100000, yesterday), "member", "silver"}}
		}, "silver", 100000},
		{"a merge combines spend once", func(t *testing.T) []step {
			m := merged(t, "m1", alice, bob)
			return []step{{awarded(t, "e1", alice, "o1", 200000, yesterday), "member", "silver"},
				{awarded(t, "e2", bob, "o2", 200000, yesterday), "member", "silver"},
				{m, "silver", "gold"}, {m, "silver", "gold"}, {merged(t, "m2", alice, bob), "", ""},
				{awarded(t, "e3", bob, "o3", 10000, yesterday), "", ""}}
		}, "gold", 410000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, s := newHandler(t)
			for i, st := range tt.steps(t) {
				outs, err := h.Handle(context.Background(), st.ev)
				require.NoError(t, err, "step %d", i)
				if st.wantTo == "" {
					assert.Empty(t, outs, "step %d", i)
					continue
				}
				require.Len(t, outs, 1, "step %d", i)
				require.NoError(t, events.Validate(outs[0]))
				d, err := events.Decode[events.TierChangedData](outs[0])
				require.NoError(t, err)
				assert.Equal(t, [2]string{st.wantFrom, st.wantTo}, [2]string{d.From, d.To}, "step %d: got from/to, want", i)
			}
			var st member.TierState
			require.NoError(t, s.Get(context.Background(), member.Tiers, alice, &st))
			assert.Equal(t, tt.wantLevel, st.Level)
			assert.Equal(t, tt.wantSpend, st.NetSpendFen)
		})
	}
}
