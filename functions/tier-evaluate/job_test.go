package tierevaluate

import (
	"context"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/loyalty"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/store"
	"github.com/omnimember/omnimember/shared/store/firestore/firestoretest"
	"github.com/omnimember/omnimember/shared/store/teststores"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { firestoretest.Main(m) }

var shanghai, _ = time.LoadLocation("Asia/Shanghai")

// TestDowngradeWaitsForTheEvaluationDayAfterGrace runs the example rules (grace 30 days, minimum
// stay 90 days, evaluations on the 1st) through the handler and the job.
func TestDowngradeWaitsForTheEvaluationDayAfterGrace(t *testing.T) {
	teststores.Each(t, member.Indexes, func(t *testing.T, s store.Store) {
		clock := time.Date(2026, 1, 10, 12, 0, 0, 0, shanghai)
		h := &Handler{Store: s, Rules: loyalty.Example(), Now: func() time.Time { return clock }}
		paidAt := clock.Add(-time.Hour)
		outs, err := h.Handle(context.Background(), awarded(t, "e1", alice, "o1", 350_000, paidAt))
		require.NoError(t, err)
		require.Len(t, outs, 1, "gold at once")

		clock = time.Date(2026, 5, 20, 9, 0, 0, 0, shanghai)
		outs, err = h.Handle(context.Background(), reversed(t, "e2", alice, "o1", 250_000, paidAt))
		require.NoError(t, err)
		assert.Empty(t, outs, "a refund starts the grace period; the level stays")
		state := stateOf(t, s, alice)
		require.NotNil(t, state.Decision)
		assert.Equal(t, "spend ¥500.00 more by 2026-07-01 to keep gold", state.Decision.Explain())

		var sent []cloudevents.Event
		collect := func(_ context.Context, evs []cloudevents.Event) error { sent = append(sent, evs...); return nil }
		for _, tt := range []struct {
			at   time.Time
			want EvaluationReport
		}{
			{time.Date(2026, 6, 1, 0, 5, 0, 0, shanghai), EvaluationReport{Below: 1}},                // evaluation day, in grace
			{time.Date(2026, 6, 25, 0, 5, 0, 0, shanghai), EvaluationReport{Below: 1}},               // grace over, not the day
			{time.Date(2026, 7, 1, 0, 5, 0, 0, shanghai), EvaluationReport{Below: 1, Downgraded: 1}}, // the day
			{time.Date(2026, 7, 1, 0, 6, 0, 0, shanghai), EvaluationReport{}},                        // run again: silver holds, nobody below
		} {
			clock = tt.at
			rep, err := h.Evaluate(context.Background(), tt.at, collect)
			require.NoError(t, err)
			tt.want.AsOf = tt.at
			assert.Equal(t, tt.want, rep, tt.at.String())
		}
		require.Len(t, sent, 1, "one downgrade")
		d, err := events.Decode[events.TierChangedData](sent[0])
		require.NoError(t, err)
		assert.Equal(t, [3]string{"gold", "silver", "downgrade"}, [3]string{d.From, d.To, d.Direction})
		assert.Equal(t, "silver", stateOf(t, s, alice).Level)
	})
}

func stateOf(t *testing.T, s store.Store, oneID string) member.TierState {
	var st member.TierState
	require.NoError(t, s.Get(context.Background(), member.Tiers, oneID, &st))
	return st
}
