package tierevaluate

import (
	"context"
	"fmt"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/loyalty"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/store"
	"github.com/omnimember/omnimember/shared/store/teststores"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rulesWithWindow is the MISSION defaults with another window length.
func rulesWithWindow(days int) *loyalty.Rules {
	r := *loyalty.Defaults()
	r.Tiers.WindowDays = days
	return &r
}

// TestGoldFallsByAgeAlone is the finding: gold at ¥3 500, no activity, 24 monthly
// evaluations stayed gold with a score of 350 000 two years on. The window now rolls by itself:
// the purchase leaves it, the grace period starts that moment, and the first evaluation day after
// the grace period (and the minimum stay) moves the member down. The handler's clock stays at the
// purchase: only the job's asOf runs the calendar.
func TestGoldFallsByAgeAlone(t *testing.T) {
	tests := []struct {
		name  string
		rules func(t *testing.T) *loyalty.Rules
		// the first evaluation at which the member is no longer gold, and what the evaluation
		// before it explains
		wantFall    time.Time
		wantExplain string
	}{
		{"defaults: 365 days, grace 30", func(*testing.T) *loyalty.Rules { return loyalty.Defaults() },
			time.Date(2027, 3, 1, 0, 10, 0, 0, shanghai), "spend ¥3000.00 more by 2027-03-01 to keep gold"},
		{"example: minimum stay 90 days", func(*testing.T) *loyalty.Rules { return loyalty.Example() },
			time.Date(2027, 3, 1, 0, 10, 0, 0, shanghai), "spend ¥3000.00 more by 2027-03-01 to keep gold"},
		{"a 90-day window", func(*testing.T) *loyalty.Rules { return rulesWithWindow(90) },
			time.Date(2026, 6, 1, 0, 10, 0, 0, shanghai), "spend ¥3000.00 more by 2026-06-01 to keep gold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			teststores.Each(t, member.Indexes, func(t *testing.T, s store.Store) {
				paidAt := time.Date(2026, 1, 10, 11, 0, 0, 0, shanghai)
				h := &Handler{Store: s, Rules: tt.rules(t), Now: func() time.Time { return paidAt.Add(time.Hour) }}
				outs, err := h.Handle(context.Background(), awarded(t, "e1", alice, "o1", 350_000, paidAt))
				require.NoError(t, err)
				require.Len(t, outs, 1, "gold at once")

				var sent []cloudevents.Event
				collect := func(_ context.Context, evs []cloudevents.Event) error { sent = append(sent, evs...); return nil }
				var explainBefore string
				for month := 1; month <= 24; month++ {
					asOf := time.Date(2026, time.Month(1+month), 1, 0, 10, 0, 0, shanghai)
					_, err := h.Evaluate(context.Background(), asOf, collect)
					require.NoError(t, err, asOf.String())
					st := stateOf(t, s, alice)
					wantLevel, wantScore := "gold", int64(350_000)
					if !asOf.Before(tt.wantFall) {
						wantLevel = "member"
					}
					if !asOf.Before(paidAt.AddDate(0, 0, h.Rules.Tiers.WindowDays)) {
						wantScore = 0
					}
					assert.Equal(t, wantLevel, st.Level, "%s: got level, want", asOf.Format(time.DateOnly))
					assert.Equal(t, []int64{wantScore, wantScore}, []int64{st.Score, st.NetSpendFen},
						"%s: got score and net spend, want", asOf.Format(time.DateOnly))
					if asOf.Equal(tt.wantFall.AddDate(0, -1, 0)) && st.Decision != nil {
						explainBefore = st.Decision.Explain()
					}
				}
				assert.Equal(t, tt.wantExplain, explainBefore, "the month before the fall")
				require.Len(t, sent, 1, "one downgrade in two years")
				d, err := events.Decode[events.TierChangedData](sent[0])
				require.NoError(t, err)
				assert.Equal(t, [3]string{"gold", "member", "downgrade"}, [3]string{d.From, d.To, d.Direction})
				assert.Equal(t, tt.wantFall, d.EvaluatedAt.In(shanghai), "decided as of the job's asOf")
			})
		})
	}
}

// TestOneWindowForScoreAndSpend is the finding: net spend counted a fixed 365 days while the
// ladder's score counted the rules' windowDays, so the profile (which shows both) and the ladder
// disagreed under any other window.
func TestOneWindowForScoreAndSpend(t *testing.T) {
	tests := []struct {
		days int
		want int64
	}{
		{90, 100_000},
		{365, 100_000 + 120_000},
		{400, 100_000 + 120_000 + 150_000},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.days), func(t *testing.T) {
			h, s := newHandler(t)
			h.Rules = rulesWithWindow(tt.days)
			for i, ago := range []int{10, 200, 380} {
				fen := []int64{100_000, 120_000, 150_000}[i]
				_, err := h.Handle(context.Background(), awarded(t, fmt.Sprint("e", i), alice, fmt.Sprint("o", i), fen, now.AddDate(0, 0, -ago)))
				require.NoError(t, err)
			}
			st := stateOf(t, s, alice)
			assert.Equal(t, []int64{tt.want, tt.want}, []int64{st.Score, st.NetSpendFen}, "got score and net spend, want")
			assert.Equal(t, h.Rules.Ladder().For(tt.want).Name, st.Level)
		})
	}
}

// TestJobFindsRolledMembersByIndex: the job visits the members whose window dropped a purchase (and
// those below their level), not every member; a state written before rollsAt existed is given one
// by a one-time migration, so it rolls too.
func TestJobFindsRolledMembersByIndex(t *testing.T) {
	const carol = "om_cccccccccccccccccccc"
	teststores.Each(t, member.Indexes, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		clock := time.Date(2026, 6, 1, 12, 0, 0, 0, shanghai)
		h := &Handler{Store: s, Rules: loyalty.Defaults(), Now: func() time.Time { return clock }}
		_, err := h.Handle(ctx, awarded(t, "e1", alice, "o1", 350_000, time.Date(2026, 1, 10, 11, 0, 0, 0, shanghai)))
		require.NoError(t, err)
		_, err = h.Handle(ctx, awarded(t, "e2", bob, "o2", 150_000, time.Date(2026, 5, 30, 11, 0, 0, 0, shanghai)))
		require.NoError(t, err)
		old := member.TierState{OneID: carol, Level: "gold", LevelSince: clock, Score: 400_000, NetSpendFen: 400_000, EvaluatedAt: clock,
			Purchases: map[string]loyalty.Purchase{"jd:o3": {NetFen: 400_000, PaidAt: time.Date(2026, 1, 5, 11, 0, 0, 0, shanghai)}}}
		require.NoError(t, s.Set(ctx, member.Tiers, carol, old), "as tier-evaluate wrote it before rollsAt")
		bobBefore := stateOf(t, s, bob)

		asOf := time.Date(2027, 2, 1, 0, 10, 0, 0, shanghai)
		rep, err := h.Evaluate(ctx, asOf, func(context.Context, []cloudevents.Event) error { return nil })
		require.NoError(t, err)
		assert.Equal(t, EvaluationReport{AsOf: asOf, Rolled: 2}, rep, "alice and carol rolled; bob's window has not")
		for _, id := range []string{alice, carol} {
			st := stateOf(t, s, id)
			assert.Equal(t, []int64{0, 0}, []int64{st.Score, st.NetSpendFen}, "%s re-scored", id)
			require.NotNil(t, st.BelowSince, id)
			assert.Equal(t, "gold", st.Level, "%s: in grace until March", id)
			assert.Nil(t, st.RollsAt, "%s: nothing left to roll", id)
		}
		assert.Equal(t, bobBefore, stateOf(t, s, bob), "bob was not read for a decision")

		rep, err = h.Evaluate(ctx, asOf.Add(time.Hour), func(context.Context, []cloudevents.Event) error { return nil })
		require.NoError(t, err)
		assert.Equal(t, EvaluationReport{AsOf: asOf.Add(time.Hour), Below: 2}, rep, "rolled once; below their level until March")
	})
}

// TestDecisionsNeverGoBackInTime: once the job has decided a member as of a date, an event that
// arrives with an earlier clock is decided as of that date, not before it (a purchase that has
// left the window by then does not count).
func TestDecisionsNeverGoBackInTime(t *testing.T) {
	h, s := newHandler(t)
	paidAt := time.Date(2026, 1, 10, 11, 0, 0, 0, shanghai)
	h.Now = func() time.Time { return paidAt.Add(time.Hour) }
	_, err := h.Handle(context.Background(), awarded(t, "e1", alice, "o1", 350_000, paidAt))
	require.NoError(t, err)
	for _, asOf := range []time.Time{time.Date(2027, 2, 1, 0, 10, 0, 0, shanghai), time.Date(2027, 3, 1, 0, 10, 0, 0, shanghai)} {
		_, err = h.Evaluate(context.Background(), asOf, func(context.Context, []cloudevents.Event) error { return nil })
		require.NoError(t, err)
	}
	require.Equal(t, "member", stateOf(t, s, alice).Level)

	outs, err := h.Handle(context.Background(), awarded(t, "e2", alice, "o2", 150_000, paidAt))
	require.NoError(t, err)
	assert.Empty(t, outs, "paid in January 2026: out of the window as of March 2027")
	st := stateOf(t, s, alice)
	assert.Equal(t, "member", st.Level)
	assert.Equal(t, time.Date(2027, 3, 1, 0, 10, 0, 0, shanghai), st.EvaluatedAt.In(shanghai))
}
