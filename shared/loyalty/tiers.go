package loyalty

import (
	"fmt"
	"slices"
	"time"
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
// period and the minimum stay; a score above the level (a purchase dated ahead that entered the
// window) moves up at once, as on activity.
func (r *Rules) OnEvaluation(s Standing, score int64, now time.Time) (Standing, Decision) {
	ladder := r.Ladder()
	q := ladder.For(score)
	d := Decision{At: now, Basis: r.Tiers.Basis, Score: score, Qualified: q.Name, From: s.Level, To: s.Level, Version: r.Version}
	if s.Level == "" || ladder.Rank(q.Name) > ladder.Rank(s.Level) {
		d.To, d.Reason = q.Name, "reached"
		return Standing{Level: q.Name, LevelSince: now}, d
	}
	if ladder.Rank(q.Name) == ladder.Rank(s.Level) {
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
	need := ladder[ladder.Rank(s.Level)].Min - score
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

// Roll carries a standing through the calendar from one moment to a later one with nothing but time
// passing: each purchase leaves the window one window after it was paid (and one dated ahead enters
// it when it was paid). The first moment the score is below the level's threshold starts the grace
// period, whatever the day; a score back at the threshold ends it. Levels themselves change only
// by a decision (OnActivity, OnEvaluation) at the end, so Roll never moves one.
func (r *Rules) Roll(s Standing, purchases map[string]Purchase, from, to time.Time) (Standing, error) {
	if !from.Before(to) {
		return s, nil
	}
	ladder := r.Ladder()
	rank := ladder.Rank(s.Level)
	if rank < 0 {
		return s, nil // no level yet, or one the ladder no longer has: the decision places it
	}
	need := ladder[rank].Min
	for _, t := range r.changes(purchases, from, to) {
		score, err := r.Score(purchases, t)
		if err != nil {
			return s, err
		}
		switch {
		case score < need && s.BelowSince == nil:
			at := t
			s.BelowSince = &at
		case score >= need && s.BelowSince != nil:
			s.BelowSince = nil
		}
	}
	return s, nil
}

// changes are the moments in (from, to] at which a purchase enters or leaves the window, in order.
func (r *Rules) changes(purchases map[string]Purchase, from, to time.Time) []time.Time {
	var out []time.Time
	for _, p := range purchases {
		for _, t := range []time.Time{p.PaidAt, r.Leaves(p)} {
			if t.After(from) && !t.After(to) {
				out = append(out, t)
			}
		}
	}
	slices.SortFunc(out, time.Time.Compare)
	return slices.CompactFunc(out, time.Time.Equal)
}

// NextChange is the first moment after now at which time alone changes the score: a purchase
// leaving the window, or one dated ahead entering it; false when none will.
func (r *Rules) NextChange(purchases map[string]Purchase, now time.Time) (time.Time, bool) {
	var next time.Time
	for _, p := range purchases {
		for _, t := range []time.Time{p.PaidAt, r.Leaves(p)} {
			if t.After(now) && (next.IsZero() || t.Before(next)) {
				next = t
			}
		}
	}
	return next, !next.IsZero()
}
