// Package tier places members on the tier ladder by their rolling net spend.
package tier

import (
	"errors"
	"fmt"
	"time"

	"github.com/omnimember/omnimember/shared/amount"
)

// Level is one rung of the ladder: the rolling net spend it needs and what it gives.
type Level struct {
	Name        string   `json:"name"`
	MinSpendFen int64    `json:"minSpendFen"`
	Benefits    []string `json:"benefits,omitempty"`
}

// Ladder is ordered from the entry level (MinSpendFen 0) upwards.
type Ladder []Level

// Window is the rolling period over which spend counts.
const Window = 365 * 24 * time.Hour

// Default is MISSION §5's ladder: member, silver 1 000 yuan, gold 3 000, platinum 8 000, diamond 20 000.
var Default = Ladder{
	{Name: "member", MinSpendFen: 0, Benefits: []string{"points on every channel"}},
	{Name: "silver", MinSpendFen: 100_000, Benefits: []string{"birthday coupon"}},
	{Name: "gold", MinSpendFen: 300_000, Benefits: []string{"free shipping", "free trial kit"}},
	{Name: "platinum", MinSpendFen: 800_000, Benefits: []string{"exclusive beauty guide", "free shipping"}},
	{Name: "diamond", MinSpendFen: 2_000_000, Benefits: []string{"personal adviser", "event invitations", "free shipping"}},
}

// Validate checks the ladder starts at 0 with strictly increasing thresholds and unique names.
func (l Ladder) Validate() error {
	if len(l) == 0 {
		return errors.New("tier ladder is empty")
	}
	if l[0].MinSpendFen != 0 {
		return fmt.Errorf("tier ladder: entry level %q must start at 0 fen, got %d", l[0].Name, l[0].MinSpendFen)
	}
	seen := map[string]bool{}
	for i, lv := range l {
		if lv.Name == "" || seen[lv.Name] {
			return fmt.Errorf("tier ladder: level %d has an empty or repeated name %q", i, lv.Name)
		}
		seen[lv.Name] = true
		if i > 0 && lv.MinSpendFen <= l[i-1].MinSpendFen {
			return fmt.Errorf("tier ladder: %q (%d fen) must need more than %q (%d fen)", lv.Name, lv.MinSpendFen, l[i-1].Name, l[i-1].MinSpendFen)
		}
	}
	return nil
}

// For is the highest level the spend reaches.
func (l Ladder) For(spendFen int64) Level {
	best := l[0]
	for _, lv := range l {
		if spendFen >= lv.MinSpendFen {
			best = lv
		}
	}
	return best
}

// Rank is a level's position on the ladder, -1 when the name is unknown.
func (l Ladder) Rank(name string) int {
	for i, lv := range l {
		if lv.Name == name {
			return i
		}
	}
	return -1
}

// Next is the level above name, and false at the top.
func (l Ladder) Next(name string) (Level, bool) {
	r := l.Rank(name)
	if r < 0 || r+1 >= len(l) {
		return Level{}, false
	}
	return l[r+1], true
}

// Purchase is one order's contribution to spend: its net amount and when it was paid.
type Purchase struct {
	NetFen int64     `json:"netFen"`
	PaidAt time.Time `json:"paidAt"`
}

// RollingSpend sums the purchases paid within Window before now (and not after it). A purchase
// outside 0..events.MaxFen, or a sum past events.MaxTotal, is an error wrapping
// amount.ErrOutOfBounds, never a wrapped sum.
func RollingSpend(purchases map[string]Purchase, now time.Time) (int64, error) {
	from := now.Add(-Window)
	var sum int64
	for key, p := range purchases {
		if p.PaidAt.After(from) && !p.PaidAt.After(now) {
			if err := amount.Fen("purchase "+key, p.NetFen); err != nil {
				return 0, err
			}
			var err error
			if sum, err = amount.Add(sum, p.NetFen); err != nil {
				return 0, fmt.Errorf("rolling spend: %w", err)
			}
		}
	}
	return sum, nil
}

// Upgrade decides a member's level now: a higher level applies at once; a lower one waits for
// the scheduled evaluation after the grace period, so the current level stays.
func (l Ladder) Upgrade(current string, spendFen int64) (next string, changed bool) {
	reached := l.For(spendFen)
	if l.Rank(current) >= l.Rank(reached.Name) {
		if l.Rank(current) < 0 {
			return reached.Name, true
		}
		return current, false
	}
	return reached.Name, true
}
