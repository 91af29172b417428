package loyalty

import (
	"errors"
	"fmt"
	"time"

	"github.com/omnimember/omnimember/shared/amount"
)

// Level is one rung: the score (fen of spend, or growth value) it needs and what it gives.
type Level struct {
	Name     string   `yaml:"name" json:"name"`
	Min      int64    `yaml:"min" json:"min"`
	Benefits []string `yaml:"benefits" json:"benefits,omitempty"`
}

// Ladder is ordered from the entry level (Min 0) upwards.
type Ladder []Level

// Validate checks the ladder starts at 0 with strictly increasing thresholds and unique names.
func (l Ladder) Validate() error {
	if len(l) == 0 {
		return errors.New("tier ladder is empty")
	}
	if l[0].Min != 0 {
		return fmt.Errorf("tier ladder: entry level %q must start at 0, got %d", l[0].Name, l[0].Min)
	}
	seen := map[string]bool{}
	for i, lv := range l {
		if lv.Name == "" || seen[lv.Name] {
			return fmt.Errorf("tier ladder: level %d has an empty or repeated name %q", i, lv.Name)
		}
		seen[lv.Name] = true
		if i > 0 && lv.Min <= l[i-1].Min {
			return fmt.Errorf("tier ladder: %q (%d) must need more than %q (%d)", lv.Name, lv.Min, l[i-1].Name, l[i-1].Min)
		}
	}
	return nil
}

// For is the highest level the score reaches.
func (l Ladder) For(score int64) Level {
	best := l[0]
	for _, lv := range l {
		if score >= lv.Min {
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

// Purchase is one order's contribution to the ladder: its net amount and when it was paid.
type Purchase struct {
	NetFen int64     `json:"netFen"`
	PaidAt time.Time `json:"paidAt"`
}

// Tally is what the purchases in the window add up to at one moment: the net spend and the score
// the ladder compares (the same spend, or growth value).
type Tally struct {
	SpendFen int64
	Score    int64
}

// Window is how long a purchase counts on the ladder: windowDays days of 24 hours. It is the only
// window length: the score, the net spend the profile shows and the time a purchase leaves all use it.
func (r *Rules) Window() time.Duration { return time.Duration(r.Tiers.WindowDays) * 24 * time.Hour }

// Counts says whether a purchase counts at now: paid at or before now, and less than a window ago.
func (r *Rules) Counts(p Purchase, now time.Time) bool {
	return !p.PaidAt.After(now) && now.Before(r.Leaves(p))
}

// Leaves is the moment a purchase stops counting: one window after it was paid.
func (r *Rules) Leaves(p Purchase) time.Time { return p.PaidAt.Add(r.Window()) }

// Tally adds up the purchases that count at now: net spend in fen and the score (growth value is
// GrowthPerYuan per yuan of net spend). A purchase outside 0..events.MaxFen, or a sum past
// events.MaxTotal, is an error wrapping amount.ErrOutOfBounds, never a wrapped sum.
func (r *Rules) Tally(purchases map[string]Purchase, now time.Time) (Tally, error) {
	var spend, growth int64
	for key, p := range purchases {
		if !r.Counts(p, now) {
			continue
		}
		if err := amount.Fen("purchase "+key, p.NetFen); err != nil {
			return Tally{}, err
		}
		// GrowthPerYuan is at most maxGrowthPerYuan, so one purchase's growth stays below MaxTotal.
		g := int64(float64(p.NetFen) * r.Tiers.GrowthPerYuan / 100)
		var err error
		if spend, err = amount.Add(spend, p.NetFen); err == nil {
			growth, err = amount.Add(growth, g)
		}
		if err != nil {
			return Tally{}, fmt.Errorf("tier score: %w", err)
		}
	}
	if r.Tiers.Basis == BasisGrowth {
		return Tally{SpendFen: spend, Score: growth}, nil
	}
	return Tally{SpendFen: spend, Score: spend}, nil
}

// Score is the Tally's score: what the purchases that count at now weigh on the ladder.
func (r *Rules) Score(purchases map[string]Purchase, now time.Time) (int64, error) {
	t, err := r.Tally(purchases, now)
	return t.Score, err
}
