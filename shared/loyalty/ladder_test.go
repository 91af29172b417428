package loyalty

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/amount"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidateRejectsBadLadders(t *testing.T) {
	tests := []struct {
		name   string
		ladder Ladder
	}{
		{"empty", Ladder{}},
		{"entry not at zero", Ladder{{Name: "member", Min: 1}}},
		{"not increasing", Ladder{{Name: "member"}, {Name: "gold", Min: 5}, {Name: "silver", Min: 5}}},
		{"repeated name", Ladder{{Name: "member"}, {Name: "member", Min: 5}}},
	}
	for _, tt := range tests {
		assert.Error(t, tt.ladder.Validate(), tt.name)
	}
	require.NoError(t, Defaults().Ladder().Validate())
}

func TestForRankNext(t *testing.T) {
	l := Defaults().Ladder()
	for _, tt := range []struct {
		score int64
		want  string
	}{{0, "member"}, {99_999, "member"}, {100_000, "silver"}, {300_000, "gold"}, {2_000_000, "diamond"}} {
		assert.Equal(t, tt.want, l.For(tt.score).Name, "%d: got level, want", tt.score)
	}
	assert.Equal(t, -1, l.Rank("bronze"))
	next, ok := l.Next("gold")
	require.True(t, ok)
	assert.Equal(t, "platinum", next.Name)
	_, ok = l.Next("diamond")
	assert.False(t, ok)
}

// TestTallyCountsOneWindow: a purchase counts from its payment until exactly one window later;
// spend and score come from the same purchases.
func TestTallyCountsOneWindow(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, days := range []int{30, 365, 400} {
		r := *Defaults()
		r.Tiers.WindowDays = days
		w := r.Window()
		purchases := map[string]Purchase{
			"in":       {NetFen: 100, PaidAt: now.Add(-24 * time.Hour)},
			"edge-in":  {NetFen: 10, PaidAt: now.Add(-w + time.Second)},
			"edge-out": {NetFen: 1000, PaidAt: now.Add(-w)},
			"future":   {NetFen: 7, PaidAt: now.Add(time.Hour)},
		}
		got, err := r.Tally(purchases, now)
		require.NoError(t, err)
		assert.Equal(t, Tally{SpendFen: 110, Score: 110}, got, "%d days: got tally, want", days)
		assert.Equal(t, now, r.Leaves(purchases["edge-out"]))
	}
}

// TestTallyRefusesOverflow: two orders of 9 223 372 036 854 775 807 fen once summed to -2 and made
// a member diamond.
func TestTallyRefusesOverflow(t *testing.T) {
	r := Defaults()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	two := map[string]Purchase{"a": {NetFen: math.MaxInt64, PaidAt: now.Add(-time.Hour)}, "b": {NetFen: math.MaxInt64, PaidAt: now.Add(-time.Hour)}}
	_, err := r.Tally(two, now)
	require.ErrorIs(t, err, amount.ErrOutOfBounds)
	many := map[string]Purchase{}
	for i := range events.MaxTotal/events.MaxFen + 1 {
		many[fmt.Sprint(i)] = Purchase{NetFen: events.MaxFen, PaidAt: now.Add(-time.Hour)}
	}
	_, err = r.Tally(many, now)
	require.ErrorIs(t, err, amount.ErrOutOfBounds, "a sum past MaxTotal is refused")
}
