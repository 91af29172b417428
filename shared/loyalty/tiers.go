package loyalty

import (
	"fmt"
	"time"

	"github.com/omnimember/omnimember/shared/amount"
	"github.com/omnimember/omnimember/shared/tier"
)

// Standing is where a member stands on the ladder: its level, since when, and since when its score
// has been below that level's threshold (nil while it qualifies).
type Standing struct {
	Level      string     `json:"level"`
	LevelSince time.Time  `json:"levelSince"`
	BelowSince *time.Time `json:"belowSince,omitempty"`
}

// Decision records one tier decision with the inputs that made it, so a profile can explain it
// ("spend ¥420 more by 2027-03-01 to keep gold").
type Decision struct {
	At        time.Time  `json:"at"`
	Basis     string     `json:"basis"`
	Score     int64      `json:"score"`
	Qualified string     `json:"qualified"`
	From      string     `json:"from"`
	To        string     `json:"to"`
	Reason    string     `json:"reason"`
	KeepNeed  int64      `json:"keepNeed,omitempty"`
	KeepBy    *time.Time `json:"keepBy,omitempty"`
	Version   string     `json:"version"`
}

// Score is what a member's purchases within the window count for on the ladder: net spend in fen,
// or growth value (GrowthPerYuan per yuan of net spend). A purchase outside 0..events.MaxFen, or a
// score past events.MaxTotal, is an error wrapping amount.ErrOutOfBounds, never a wrapped sum.
func (r *Rules) Score(purchases map[string]tier.Purchase, now time.Time) (int64, error) {
	from := now.AddDate(0, 0, -r.Tiers.WindowDays)
	var spend, growth int64
	for key, p := range purchases {
		if !p.PaidAt.After(from) || p.PaidAt.After(now) {
			continue
		}
		if err := amount.Fen("purchase "+key, p.NetFen); err != nil {
			return 0, err
		}
		// GrowthPerYuan is at most maxGrowthPerYuan, so one purchase's growth stays below MaxTotal.
		g := int64(float64(p.NetFen) * r.Tiers.GrowthPerYuan / 100)
		var err error
		if spend, err = amount.Add(spend, p.NetFen); err == nil {
			growth, err = amount.Add(growth, g)
		}
		if err != nil {
			return 0, fmt.Errorf("tier score: %w", err)
		}
	}
	if r.Tiers.Basis == BasisGrowth {
		return growth, nil
	}
	return spend, nil
}

// OnActivity decides after a purchase or a refund: a higher level applies at once; falling below
// the current level only starts the grace period (the member keeps its level until an evaluation
// date at least GraceDays later).
func (r *Rules) OnActivity(s Standing, score int64, now time.Time) (Standing, Decision) {
	ladder := r.Ladder()
	q := ladder.For(score)
	d := Decision{At: now, Basis: r.Tiers.Basis, Score: score, Qualified: q.Name, From: s.Level, To: s.Level, Version: r.Version}
	switch {
	case s.Level == "" || ladder.Rank(q.Name) > ladder.Rank(s.Level):
		d.To, d.Reason = q.Name, "reached"
		return Standing{Level: q.Name, LevelSince: now}, d
	case ladder.Rank(q.Name) < ladder.Rank(s.Level):
		if s.BelowSince == nil {
			s.BelowSince = &now
		}
		d.Reason = "below, in grace"
		d.KeepNeed, d.KeepBy = r.keep(s, score)
	default:
		s.BelowSince = nil
		d.Reason = "kept"
	}
	return s, d
}

// OnEvaluation decides on a scheduled evaluation: a member still below its level's threshold
// moves down to the level its score reaches, but only on the evaluation day, after the grace
// period and the minimum stay.
func (r *Rules) OnEvaluation(s Standing, score int64, now time.Time) (Standing, Decision) {
	ladder := r.Ladder()
	q := ladder.For(score)
	d := Decision{At: now, Basis: r.Tiers.Basis, Score: score, Qualified: q.Name, From: s.Level, To: s.Level, Version: r.Version}
	if ladder.Rank(q.Name) >= ladder.Rank(s.Level) {
		s.BelowSince, d.Reason = nil, "kept"
		return s, d
	}
	if s.BelowSince == nil {
		s.BelowSince = &now
	}
	if !r.MayDowngrade(s, now) {
		d.Reason = "below, in grace"
		d.KeepNeed, d.KeepBy = r.keep(s, score)
		return s, d
	}
	d.To, d.Reason = q.Name, "downgraded after grace"
	return Standing{Level: q.Name, LevelSince: now}, d
}

// MayDowngrade is true on an evaluation day at or after the end of both the grace period and the
// minimum stay.
func (r *Rules) MayDowngrade(s Standing, now time.Time) bool {
	if s.BelowSince == nil || now.In(r.location).Day() != r.Tiers.EvaluationDay {
		return false
	}
	return !now.Before(r.earliestDowngrade(s))
}

func (r *Rules) earliestDowngrade(s Standing) time.Time {
	t := s.BelowSince.AddDate(0, 0, r.Tiers.GraceDays)
	if stay := s.LevelSince.AddDate(0, 0, r.Tiers.MinStayDays); stay.After(t) {
		t = stay
	}
	return t
}

// keep says how much more score keeps the level and by when: the first evaluation date after the
// grace period and the minimum stay.
func (r *Rules) keep(s Standing, score int64) (int64, *time.Time) {
	ladder := r.Ladder()
	need := ladder[ladder.Rank(s.Level)].MinSpendFen - score
	by := r.NextEvaluation(r.earliestDowngrade(s))
	return need, &by
}

// NextEvaluation is the first evaluation date (00:00 in the rules' zone) at or after t.
func (r *Rules) NextEvaluation(t time.Time) time.Time {
	local := t.In(r.location)
	at := time.Date(local.Year(), local.Month(), r.Tiers.EvaluationDay, 0, 0, 0, 0, r.location)
	if at.Before(local) {
		at = at.AddDate(0, 1, 0)
	}
	return at
}

// Explain turns a decision into the sentence a profile shows.
func (d Decision) Explain() string {
	switch {
	case d.KeepNeed > 0 && d.KeepBy != nil && d.Basis == BasisSpend:
		return fmt.Sprintf("spend ¥%d.%02d more by %s to keep %s", d.KeepNeed/100, d.KeepNeed%100, d.KeepBy.Format(time.DateOnly), d.From)
	case d.KeepNeed > 0 && d.KeepBy != nil:
		return fmt.Sprintf("earn %d more growth by %s to keep %s", d.KeepNeed, d.KeepBy.Format(time.DateOnly), d.From)
	case d.From != d.To && d.From != "":
		return fmt.Sprintf("%s → %s (%s)", d.From, d.To, d.Reason)
	}
	return d.To + " (" + d.Reason + ")"
}
