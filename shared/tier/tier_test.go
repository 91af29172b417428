package tier

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

func TestDefaultLadderIsValid(t *testing.T) {
	require.NoError(t, Default.Validate())
}

func TestValidateRejectsBadLadders(t *testing.T) {
	tests := []struct {
		name   string
		ladder Ladder
	}{
		{"empty", Ladder{}},
		{"entry not at zero", Ladder{{Name: "member", MinSpendFen: 1}}},
		{"not increasing", Ladder{{Name: "member"}, {Name: "gold", MinSpendFen: 5}, {Name: "silver", MinSpendFen: 5}}},
		{"repeated name", Ladder{{Name: "member"}, {Name: "member", MinSpendFen: 5}}},
	}
	for _, tt := range tests {
		assert.Error(t, tt.ladder.Validate(), tt.name)
	}
}

func TestForAndUpgrade(t *testing.T) {
	tests := []struct {
		current     string
		spend       int64
		wantNext    string
		wantChanged bool
	}{
		{"member", 0, "member", false},
		{"member", 99_999, "member", false},
		{"member", 100_000, "silver", true},
		{"member", 300_000, "gold", true},
		{"silver", 2_000_000, "diamond", true},
		{"gold", 100_000, "gold", false}, // no downgrade before the evaluation date
		{"", 129_900, "silver", true},    // a new member gets the level its spend reaches
		{"", 0, "member", true},
	}
	for _, tt := range tests {
		next, changed := Default.Upgrade(tt.current, tt.spend)
		assert.Equal(t, tt.wantNext, next, "from %q at %d fen", tt.current, tt.spend)
		assert.Equal(t, tt.wantChanged, changed, "from %q at %d fen", tt.current, tt.spend)
	}
}

func TestRollingSpendWindow(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	purchases := map[string]Purchase{
		"in":       {NetFen: 100, PaidAt: now.Add(-24 * time.Hour)},
		"edge-in":  {NetFen: 10, PaidAt: now.Add(-Window + time.Second)},
		"edge-out": {NetFen: 1000, PaidAt: now.Add(-Window)},
		"old":      {NetFen: 5000, PaidAt: now.AddDate(-2, 0, 0)},
		"future":   {NetFen: 7, PaidAt: now.Add(time.Hour)},
	}
	got, err := RollingSpend(purchases, now)
	require.NoError(t, err)
	assert.Equal(t, int64(110), got)
}

// TestRollingSpendRefusesOverflow is the finding: two orders of 9 223 372 036 854 775 807
// fen summed to netSpendFen -2 and made the member diamond.
func TestRollingSpendRefusesOverflow(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	two := map[string]Purchase{"a": {NetFen: math.MaxInt64, PaidAt: now.Add(-time.Hour)}, "b": {NetFen: math.MaxInt64, PaidAt: now.Add(-time.Hour)}}
	_, err := RollingSpend(two, now)
	require.ErrorIs(t, err, amount.ErrOutOfBounds)
	many := map[string]Purchase{}
	for i := range events.MaxTotal/events.MaxFen + 1 {
		many[fmt.Sprint(i)] = Purchase{NetFen: events.MaxFen, PaidAt: now.Add(-time.Hour)}
	}
	_, err = RollingSpend(many, now)
	require.ErrorIs(t, err, amount.ErrOutOfBounds, "a sum past MaxTotal is refused")
}

func TestNext(t *testing.T) {
	next, ok := Default.Next("gold")
	require.True(t, ok)
	assert.Equal(t, "platinum", next.Name)
	_, ok = Default.Next("diamond")
	assert.False(t, ok)
}
