package loyalty

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/amount"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var shanghai = func() *time.Location { l, _ := time.LoadLocation("Asia/Shanghai"); return l }()

func TestExampleRulesAreValid(t *testing.T) {
	r := Example()
	assert.Equal(t, "2026.11-example", r.Version)
	assert.Equal(t, 5, len(r.Ladder()))
	require.NoError(t, r.Ladder().Validate())
}

func TestErrorsNameTheLineAndField(t *testing.T) {
	base := string(exampleRules)
	tests := []struct {
		name, from, to, want string
	}{
		{"negative multiplier", "pos: {multiplier: 1.2}", "pos: {multiplier: -1}", "line 8: earning.channels.pos.multiplier"},
		{"too many decimals", "skincare: 1.5", "skincare: 1.55555", "line 11: earning.categories.skincare"},
		{"tier multiplier for no level", "    gold: 1.5\n", "    golden: 1.5\n", "earning.tiers.golden: no level"},
		{"campaign ends before it starts", "end: 2026-12-09T00:00:00+08:00", "end: 2026-12-07T00:00:00+08:00", "line 20: earning.campaigns.0.end"},
		{"unknown segment", "segment: all", "segment: vip", "earning.campaigns.0.segment"},
		{"unknown policy", "afterRedemption: clawback", "afterRedemption: forgive", "refunds.afterRedemption"},
		{"unknown field", "reminderDays: 30", "remindDays: 30", "field remindDays not found"},
		{"bad zone", "timezone: Asia/Shanghai", "timezone: Mars/Olympus", "line 3: timezone"},
		{"ladder not from zero", "{name: member, min: 0,", "{name: member, min: 5,", "tiers.levels"},
		{"evaluation day 31", "evaluationDay: 1 ", "evaluationDay: 31 ", "tiers.evaluationDay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Contains(t, base, tt.from, "the example must contain what the test changes")
			_, err := Parse([]byte(strings.Replace(base, tt.from, tt.to, 1)))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestRates(t *testing.T) {
	r := Example()
	normal := time.Date(2026, 11, 20, 12, 0, 0, 0, shanghai)
	memberDay := time.Date(2026, 12, 8, 0, 0, 0, 0, shanghai)
	triple := Window{CampaignID: "cmp_a", Multiplier: 3, From: normal.Add(-time.Hour), To: normal.Add(time.Hour)}
	triple2 := Window{CampaignID: "cmp_b", Multiplier: 3, From: memberDay, To: memberDay.Add(time.Hour)}
	onePointFive := Window{CampaignID: "cmp_c", Multiplier: 1.5, From: normal.Add(-time.Hour), To: memberDay.Add(time.Hour)}
	tests := []struct {
		name       string
		order      OrderContext
		netFen     int64
		wantPoints int64
	}{
		{"base rate floors", OrderContext{Channel: "tmall", PaidAt: normal}, 129_999, 1299},
		{"store earns 1.2x", OrderContext{Channel: "pos", PaidAt: normal}, 10_000, 120},
		{"JD earns per 2 yuan", OrderContext{Channel: "jd", PaidAt: normal}, 10_000, 50},
		{"gold earns 1.5x", OrderContext{Channel: "tmall", PaidAt: normal, Tier: "gold"}, 10_000, 150},
		{"skincare weighted", OrderContext{Channel: "tmall", PaidAt: normal, Items: []events.OrderItem{
			{SKU: "a", Category: "skincare", Quantity: 1, AmountFen: 6000}, {SKU: "b", Category: "other", Quantity: 1, AmountFen: 4000}}}, 10_000, 130},
		{"gift cards earn nothing", OrderContext{Channel: "tmall", PaidAt: normal, Items: []events.OrderItem{
			{SKU: "g", Category: "gift-card", Quantity: 1, AmountFen: 10000}}}, 10_000, 0},
		{"member day doubles at 00:00 Shanghai", OrderContext{Channel: "tmall", PaidAt: memberDay}, 10_000, 200},
		{"member day is over at 00:00 the next day", OrderContext{Channel: "tmall", PaidAt: memberDay.Add(24 * time.Hour)}, 10_000, 100},
		{"member day not in stores", OrderContext{Channel: "pos", PaidAt: memberDay}, 10_000, 120},
		{"gold on member day: 1.5 x 2", OrderContext{Channel: "app", PaidAt: memberDay.Add(time.Hour), Tier: "gold"}, 10_000, 300},
		{"per-order cap", OrderContext{Channel: "tmall", PaidAt: normal, Tier: "diamond"}, 5_000_000, 20_000},
		{"member's campaign window triples, any channel", OrderContext{Channel: "jd", PaidAt: normal, Windows: []Window{triple}}, 10_000, 150},
		{"window starts inclusive", OrderContext{Channel: "tmall", PaidAt: triple.From, Windows: []Window{triple}}, 10_000, 300},
		{"window ends exclusive", OrderContext{Channel: "tmall", PaidAt: triple.To, Windows: []Window{triple}}, 10_000, 100},
		{"outside the window: base", OrderContext{Channel: "tmall", PaidAt: triple.From.Add(-time.Second), Windows: []Window{triple}}, 10_000, 100},
		{"best of member day and a smaller window", OrderContext{Channel: "tmall", PaidAt: memberDay, Windows: []Window{onePointFive}}, 10_000, 200},
		{"best of member day and a bigger window", OrderContext{Channel: "tmall", PaidAt: memberDay, Windows: []Window{onePointFive, triple2}}, 10_000, 300},
		{"window with tier: 1.5 x 1.5", OrderContext{Channel: "tmall", PaidAt: normal, Tier: "gold", Windows: []Window{onePointFive}}, 10_000, 225},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rate := r.RateFor(tt.order)
			got, err := rate.Points(tt.netFen)
			require.NoError(t, err)
			assert.Equal(t, tt.wantPoints, got, "rule %s", rate.Rule())
			assert.Equal(t, r.Version, rate.Version)
		})
	}
}

func TestRatePointsAreExactIntegers(t *testing.T) {
	// 1.15 is not exact in binary: 10 000 fen × 1.15 must still be 115 points, not 114.
	rate := Rate{FenPerPoint: 100, MultiplierBP: 11_500}
	assert.Equal(t, int64(115), mustPoints(t, rate, 10_000))
	assert.Equal(t, int64(0), mustPoints(t, rate, -5))
}

func mustPoints(t *testing.T, r Rate, net int64) int64 {
	t.Helper()
	p, err := r.Points(net)
	require.NoError(t, err)
	return p
}

// TestRatePointsNeverWrap is the finding: a net amount of int64's maximum earned a wrapped
// (negative) number of points. Past MaxFen, or points past MaxPoints, is an error.
func TestRatePointsNeverWrap(t *testing.T) {
	rate := Rate{FenPerPoint: 100, MultiplierBP: 20_000}
	_, err := rate.Points(math.MaxInt64)
	require.ErrorIs(t, err, amount.ErrOutOfBounds)
	assert.Equal(t, events.MaxFen/50, mustPoints(t, rate, events.MaxFen))
	richest := Rate{FenPerPoint: 1, MultiplierBP: 100 * 10_000}
	assert.Equal(t, events.MaxPoints, mustPoints(t, richest, events.MaxFen), "the richest single multiplier at the largest order earns exactly MaxPoints")
	compounded := Rate{FenPerPoint: 1, MultiplierBP: 100 * 100 * 10_000}
	_, err = compounded.Points(events.MaxFen)
	require.ErrorIs(t, err, amount.ErrOutOfBounds, "multipliers compounding past 100 at the largest order are refused")
}

func TestExpiryKeepsTheDayOrTheMonthEnd(t *testing.T) {
	tests := []struct {
		earned, want string
		months       int
	}{
		{"2026-03-15T10:00:00+08:00", "2027-03-15T10:00:00+08:00", 12},
		{"2026-01-31T23:59:00+08:00", "2026-02-28T23:59:00+08:00", 1},
		{"2027-01-31T08:00:00+08:00", "2028-02-29T08:00:00+08:00", 13},
		{"2028-02-29T12:00:00+08:00", "2029-02-28T12:00:00+08:00", 12},
		{"2026-12-31T00:00:00+08:00", "2027-12-31T00:00:00+08:00", 12},
	}
	for _, tt := range tests {
		earned, err := time.Parse(time.RFC3339, tt.earned)
		require.NoError(t, err)
		want, err := time.Parse(time.RFC3339, tt.want)
		require.NoError(t, err)
		assert.True(t, want.Equal(AddMonths(earned.In(shanghai), tt.months)), "%s + %d months: got %s, want %s", tt.earned, tt.months, AddMonths(earned.In(shanghai), tt.months), tt.want)
	}
}

func TestDaysAreShanghaiDays(t *testing.T) {
	r := Example()
	justBefore := time.Date(2026, 11, 24, 15, 59, 59, 0, time.UTC) // 23:59:59 in Shanghai
	assert.Equal(t, "2026-11-24", r.Day(justBefore))
	assert.Equal(t, "2026-11-25", r.Day(justBefore.Add(time.Second)))
	assert.Equal(t, int64(50_000), r.DailyAllowance(0))
	assert.Equal(t, int64(0), r.DailyAllowance(60_000))
}

func TestDefaultsAreMissionRules(t *testing.T) {
	r := Defaults()
	rate := r.RateFor(OrderContext{Channel: "pos", PaidAt: time.Now(), Tier: "diamond"})
	assert.Equal(t, int64(1299), mustPoints(t, rate, 129_999), "1 yuan = 1 point, whatever the channel or tier")
	assert.Equal(t, int64(-1), r.DailyAllowance(1e9), "no daily cap")
}
