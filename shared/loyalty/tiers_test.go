package loyalty

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/omnimember/omnimember/shared/amount"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func day(s string) time.Time {
	t, err := time.ParseInLocation(time.DateOnly+" 15:04", s, shanghai)
	if err != nil {
		panic(err)
	}
	return t
}

func TestUpgradeAtOnceDowngradeOnlyOnTheEvaluationDayAfterGrace(t *testing.T) {
	r := Example() // grace 30 days, minimum stay 90 days, evaluation on the 1st
	s, d := r.OnActivity(Standing{}, 350_000, day("2026-01-10 12:00"))
	require.Equal(t, "gold", s.Level, "reached at once")
	assert.Equal(t, "reached", d.Reason)

	// A refund drops the spend below gold in May: grace starts, the level stays.
	s, d = r.OnActivity(s, 250_000, day("2026-05-20 09:00"))
	assert.Equal(t, "gold", s.Level)
	require.NotNil(t, s.BelowSince)
	assert.Equal(t, "spend ¥500.00 more by 2026-07-01 to keep gold", d.Explain(), "grace ends 19 June: the next evaluation is 1 July")

	for _, tt := range []struct {
		at        string
		wantLevel string
	}{
		{"2026-06-01 00:00", "gold"},   // evaluation day, still in grace
		{"2026-06-25 00:00", "gold"},   // after grace, not an evaluation day
		{"2026-07-01 00:00", "silver"}, // evaluation day after grace: down to what the spend reaches
	} {
		got, _ := r.OnEvaluation(s, 250_000, day(tt.at))
		assert.Equal(t, tt.wantLevel, got.Level, tt.at)
	}
	// Buying back above the threshold ends the grace period.
	back, d := r.OnActivity(s, 300_000, day("2026-06-10 10:00"))
	assert.Nil(t, back.BelowSince)
	assert.Equal(t, "kept", d.Reason)
}

func TestMinimumStayHoldsANewLevel(t *testing.T) {
	r := Example()
	s, _ := r.OnActivity(Standing{}, 350_000, day("2026-03-15 12:00"))
	s, _ = r.OnActivity(s, 0, day("2026-03-16 12:00"))
	got, d := r.OnEvaluation(s, 0, day("2026-05-01 00:00")) // grace over, 47 days into a 90-day stay
	assert.Equal(t, "gold", got.Level)
	assert.Equal(t, "2026-07-01", d.KeepBy.Format(time.DateOnly), "the stay ends 13 June: the next evaluation is 1 July")
	got, _ = r.OnEvaluation(s, 0, day("2026-07-01 00:00"))
	assert.Equal(t, "member", got.Level)
}

func TestGrowthBasisAndWindow(t *testing.T) {
	raw := strings.Replace(string(exampleRules), "basis: spend ", "basis: growth", 1)
	raw = strings.Replace(raw, "growthPerYuan: 1 ", "growthPerYuan: 2 ", 1)
	r, err := Parse([]byte(raw))
	require.NoError(t, err)
	now := day("2026-11-25 12:00")
	purchases := map[string]Purchase{
		"in":  {NetFen: 50_000, PaidAt: now.AddDate(0, -1, 0)},
		"old": {NetFen: 90_000, PaidAt: now.AddDate(-1, 0, -1)},
	}
	score, err := r.Score(purchases, now)
	require.NoError(t, err)
	assert.Equal(t, int64(1000), score, "¥500 in the window at 2 growth per yuan")
	purchases["huge"] = Purchase{NetFen: math.MaxInt64, PaidAt: now.Add(-time.Hour)}
	_, err = r.Score(purchases, now)
	require.ErrorIs(t, err, amount.ErrOutOfBounds, "a purchase past MaxFen is refused, never summed")
	assert.Equal(t, "growth", r.Tiers.Basis)
}

func TestNextEvaluationCrossesYearEnds(t *testing.T) {
	r := Example()
	assert.Equal(t, day("2027-01-01 00:00"), r.NextEvaluation(day("2026-12-02 08:00")))
	assert.Equal(t, day("2026-12-01 00:00"), r.NextEvaluation(day("2026-12-01 00:00")))
}

// TestRollStartsGraceWhenAPurchaseLeaves: with nothing but time passing, the grace period starts at
// the moment the score falls below the level, not when someone next looks.
func TestRollStartsGraceWhenAPurchaseLeaves(t *testing.T) {
	r := Defaults()
	jan, jun := day("2026-01-10 11:00"), day("2026-06-05 09:00")
	gold := Standing{Level: "gold", LevelSince: jan}
	tests := []struct {
		name      string
		purchases map[string]Purchase
		from, to  time.Time
		in        Standing
		wantBelow *time.Time
	}{
		{"still in the window", map[string]Purchase{"a": {350_000, jan}}, jan, day("2027-01-10 10:59"), gold, nil},
		{"leaves: grace from that moment", map[string]Purchase{"a": {350_000, jan}}, jan, day("2027-03-01 00:10"), gold, ptr(day("2027-01-10 11:00"))},
		{"the first of two leaves and the rest is below", map[string]Purchase{"a": {200_000, jan}, "b": {200_000, jun}}, jun,
			day("2027-08-01 00:00"), gold, ptr(day("2027-01-10 11:00"))},
		{"a grace period already running keeps its start", map[string]Purchase{"a": {350_000, jan}}, jan, day("2027-03-01 00:00"),
			Standing{Level: "gold", LevelSince: jan, BelowSince: ptr(day("2026-12-01 00:00"))}, ptr(day("2026-12-01 00:00"))},
		{"a purchase dated ahead entering ends it", map[string]Purchase{"a": {350_000, day("2026-02-01 00:00")}}, jan,
			day("2026-03-01 00:00"), Standing{Level: "gold", LevelSince: jan, BelowSince: ptr(jan)}, nil},
	}
	for _, tt := range tests {
		got, err := r.Roll(tt.in, tt.purchases, tt.from, tt.to)
		require.NoError(t, err)
		assert.Equal(t, tt.wantBelow, got.BelowSince, "%s: got below since, want", tt.name)
		assert.Equal(t, tt.in.Level, got.Level, "%s: rolling never moves a level", tt.name)
	}
	next, ok := r.NextChange(map[string]Purchase{"a": {200_000, jan}, "b": {200_000, jun}}, day("2026-07-01 00:00"))
	require.True(t, ok)
	assert.Equal(t, day("2027-01-10 11:00"), next, "the January purchase leaves first")
	_, ok = r.NextChange(map[string]Purchase{}, jan)
	assert.False(t, ok, "nothing to leave")
}

func ptr(t time.Time) *time.Time { return &t }
