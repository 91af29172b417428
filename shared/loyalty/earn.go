package loyalty

import (
	"fmt"
	"math"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/amount"
)

// OrderContext is what the earning rules look at.
type OrderContext struct {
	Channel string
	Items   []events.OrderItem
	PaidAt  time.Time
	Tier    string // the member's level when the order was paid
	Pool    string // plaintext or ciphertext, for campaign segments
	// Windows are the member's own multiplier windows, from marketing campaigns that targeted them.
	Windows []Window
}

// Window is a multiplier window a campaign gave one member: their orders paid within [From, To), on
// any channel, earn Multiplier times (unless a better campaign window applies).
type Window struct {
	CampaignID string    `json:"campaignId"`
	Multiplier float64   `json:"multiplier"`
	From       time.Time `json:"from"`
	To         time.Time `json:"to"`
}

// Covers says whether a payment at t falls in the window.
func (w Window) Covers(t time.Time) bool { return !t.Before(w.From) && t.Before(w.To) }

// Rate is what one order earns, fixed when it is paid so refunds later reverse at the same rate:
// points(net) = min(PerOrderCap, floor(net × MultiplierBP / (FenPerPoint × 10 000))).
type Rate struct {
	FenPerPoint  int64    `json:"fenPerPoint"`
	MultiplierBP int64    `json:"multiplierBp"`
	PerOrderCap  int64    `json:"perOrderCap,omitempty"`
	Applied      []string `json:"applied,omitempty"`
	Version      string   `json:"version"`
}

const basisPoints = 10_000

// Points is what a net amount earns at this rate (a ledger.Entitlement). The product is exact
// (big integers); points past events.MaxPoints (a net amount past events.MaxFen, or multipliers
// that compound past 100) are an error wrapping amount.ErrOutOfBounds, never a wrapped value.
func (r Rate) Points(netFen int64) (int64, error) {
	if netFen <= 0 || r.FenPerPoint <= 0 {
		return 0, nil
	}
	if err := amount.Fen("net amount", netFen); err != nil {
		return 0, err
	}
	p := new(big.Int).Mul(big.NewInt(netFen), big.NewInt(r.MultiplierBP))
	p.Quo(p, new(big.Int).Mul(big.NewInt(r.FenPerPoint), big.NewInt(basisPoints)))
	if !p.IsInt64() || p.Int64() < 0 || p.Int64() > events.MaxPoints {
		return 0, fmt.Errorf("%w: %d fen at %s earns %s points, over %d", amount.ErrOutOfBounds, netFen, r.Rule(), p, events.MaxPoints)
	}
	points := p.Int64()
	if r.PerOrderCap > 0 {
		points = min(points, r.PerOrderCap)
	}
	return points, nil
}

// Rule names the rules an order's points came from, for the ledger ("why do I have these points").
func (r Rate) Rule() string {
	return strings.Join(append([]string{fmt.Sprintf("1 point per %d fen", r.FenPerPoint)}, r.Applied...), ", ")
}

// RateFor decides an order's rate: the channel's base rate and multiplier, the items' category
// multipliers weighted by amount, the member's tier multiplier and the best campaign window that
// applies, multiplied exactly and kept to four decimals.
func (r *Rules) RateFor(o OrderContext) Rate {
	rate := Rate{FenPerPoint: r.Earning.FenPerPoint, PerOrderCap: r.Earning.Caps.PerOrder, Version: r.Version}
	mult := big.NewRat(1, 1)
	apply := func(name string, m float64) {
		if m != 1 {
			mult.Mul(mult, ratOf(m))
			rate.Applied = append(rate.Applied, fmt.Sprintf("%s %s", name, trim(m)))
		}
	}
	if c, ok := r.Earning.Channels[o.Channel]; ok {
		if c.FenPerPoint > 0 {
			rate.FenPerPoint = c.FenPerPoint
		}
		if c.Multiplier > 0 {
			apply("channel "+o.Channel, c.Multiplier)
		}
	}
	if m, ok := r.categoryMultiplier(o.Items); ok {
		apply("categories", m)
	}
	if m, ok := r.Earning.Tiers[o.Tier]; ok {
		apply("tier "+o.Tier, m)
	}
	if name, m, ok := r.bestCampaign(o); ok {
		apply("campaign "+name, m)
	}
	bp := new(big.Rat).Mul(mult, big.NewRat(basisPoints, 1))
	f, _ := bp.Float64()
	rate.MultiplierBP = int64(math.Round(f))
	return rate
}

// categoryMultiplier weights each item's category multiplier by its amount (unknown categories
// earn at 1).
func (r *Rules) categoryMultiplier(items []events.OrderItem) (float64, bool) {
	if len(r.Earning.Categories) == 0 || len(items) == 0 {
		return 1, false
	}
	var total, weighted float64
	for _, it := range items {
		m, ok := r.Earning.Categories[it.Category]
		if !ok {
			m = 1
		}
		total += float64(it.AmountFen)
		weighted += float64(it.AmountFen) * m
	}
	if total == 0 {
		return 1, false
	}
	return math.Round(weighted/total*basisPoints) / basisPoints, true
}

// bestCampaign is the highest multiplier among the windows the order falls in: the rules' campaigns
// and the member's own windows alike (campaigns do not stack; the best one applies).
func (r *Rules) bestCampaign(o OrderContext) (name string, multiplier float64, found bool) {
	consider := func(n string, m float64) {
		if !found || m > multiplier {
			name, multiplier, found = n, m, true
		}
	}
	for _, c := range r.Earning.Campaigns {
		if o.PaidAt.Before(c.Start) || !o.PaidAt.Before(c.End) {
			continue
		}
		if len(c.Channels) > 0 && !slices.Contains(c.Channels, o.Channel) {
			continue
		}
		if !inSegment(c.Segment, o) {
			continue
		}
		consider(c.Name, c.Multiplier)
	}
	for _, w := range o.Windows {
		if w.Covers(o.PaidAt) {
			consider(w.CampaignID, w.Multiplier)
		}
	}
	return name, multiplier, found
}

func inSegment(segment string, o OrderContext) bool {
	switch {
	case segment == "" || segment == "all":
		return true
	case segment == "plaintext" || segment == "ciphertext":
		return o.Pool == segment
	}
	return strings.TrimPrefix(segment, "tier:") == o.Tier
}

func ratOf(m float64) *big.Rat {
	return big.NewRat(int64(math.Round(m*basisPoints)), basisPoints)
}

func trim(m float64) string {
	return "×" + strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.4f", m), "0"), ".")
}

// DailyAllowance is what a member may still earn on the day of paidAt, given what they earned
// that day already; -1 when there is no daily cap.
func (r *Rules) DailyAllowance(earnedToday int64) int64 {
	if r.Earning.Caps.PerDay <= 0 {
		return -1
	}
	return max(0, r.Earning.Caps.PerDay-earnedToday)
}

// ExpiresAt is when points earned at paidAt expire: Months later on the same day of the month in
// the rules' zone, or that month's last day when it is shorter (31 January + 1 month is 28 or 29
// February, never 3 March).
func (r *Rules) ExpiresAt(paidAt time.Time) time.Time {
	return AddMonths(paidAt.In(r.location), r.Expiry.Months)
}

// AddMonths adds months to t keeping the day of the month, clamped to the target month's end.
func AddMonths(t time.Time, months int) time.Time {
	y, m, d := t.Date()
	first := time.Date(y, m+time.Month(months), 1, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
	last := first.AddDate(0, 1, -1).Day()
	return first.AddDate(0, 0, min(d, last)-1)
}
