// Package tierevaluate places members on the brand's tier ladder (rolling net spend or growth
// value): upgrades at once, downgrades only on evaluation days after a grace period and a minimum
// stay; each decision is kept with its inputs and a change becomes tier.changed.
package tierevaluate

import (
	"context"
	"errors"
	"fmt"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/amount"
	"github.com/omnimember/omnimember/shared/loyalty"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/receipt"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
)

// Name is the function's name.
const Name = "tier-evaluate"

// Consumes lists the events that move a member's score.
var Consumes = []string{events.PointsAwarded, events.PointsReversed, events.MemberMerged, events.MemberSplit}

// Emits lists what tier-evaluate publishes.
var Emits = []string{events.TierChanged}

// Store is the part of the store tier-evaluate uses: transactions, and queries (what a split moves,
// who is below its level for the evaluation job).
type Store interface {
	receipt.Transactor
	member.Querier
}

// Handler evaluates tiers under Rules; AdminToken guards the evaluation job.
type Handler struct {
	Store      Store
	Rules      *loyalty.Rules
	Now        func() time.Time
	AdminToken string
}

// Function is tier-evaluate as the runtime runs it.
func (h *Handler) Function() runtime.Function {
	return runtime.Function{Name: Name, Consumes: Consumes, Emits: Emits, Handle: h.Handle, Routes: h.Routes}
}

// spendChange is one order's net amount after a points event.
type spendChange struct {
	oneID, orderKey string
	purchase        loyalty.Purchase
}

// Handle records spend or consolidates a merge or split, then decides; effect and receipt commit together.
func (h *Handler) Handle(ctx context.Context, ev cloudevents.Event) ([]cloudevents.Event, error) {
	apply, err := h.plan(ctx, ev)
	if err != nil {
		return nil, err
	}
	outs, err := receipt.Once(ctx, h.Store, Name, ev, h.Now, apply)
	if errors.Is(err, amount.ErrOutOfBounds) {
		err = runtime.Permanent(err) // a sum past the contract's bounds: the transaction wrote nothing
	}
	if err != nil {
		return nil, fmt.Errorf("evaluate tier for %s %s: %w", ev.Type(), ev.ID(), err)
	}
	return outs, nil
}

func (h *Handler) plan(ctx context.Context, ev cloudevents.Event) (func(store.Tx) ([]cloudevents.Event, error), error) {
	switch ev.Type() {
	case events.PointsAwarded:
		d, err := events.Decode[events.PointsAwardedData](ev)
		if err != nil {
			return nil, runtime.Permanent(err)
		}
		runtime.SetOneID(ctx, d.OneID)
		c := spendChange{d.OneID, d.Channel + ":" + d.OrderID, loyalty.Purchase{NetFen: d.OrderNetAmountFen, PaidAt: d.PaidAt}}
		return func(tx store.Tx) ([]cloudevents.Event, error) { return h.spend(tx, ev, c) }, nil
	case events.PointsReversed:
		d, err := events.Decode[events.PointsReversedData](ev)
		if err != nil {
			return nil, runtime.Permanent(err)
		}
		runtime.SetOneID(ctx, d.OneID)
		c := spendChange{d.OneID, d.Channel + ":" + d.OrderID, loyalty.Purchase{NetFen: d.OrderNetAmountFen, PaidAt: d.PaidAt}}
		return func(tx store.Tx) ([]cloudevents.Event, error) { return h.spend(tx, ev, c) }, nil
	case events.MemberMerged:
		d, err := events.Decode[events.MemberMergedData](ev)
		if err != nil {
			return nil, runtime.Permanent(err)
		}
		runtime.SetOneID(ctx, d.SurvivorOneID)
		return func(tx store.Tx) ([]cloudevents.Event, error) { return h.merge(tx, ev, d) }, nil
	case events.MemberSplit:
		d, err := events.Decode[events.MemberSplitData](ev)
		if err != nil {
			return nil, runtime.Permanent(err)
		}
		runtime.SetOneID(ctx, d.FromOneID)
		moving, err := member.SplitOrders(ctx, h.Store, d)
		if err != nil {
			return nil, err
		}
		return func(tx store.Tx) ([]cloudevents.Event, error) { return h.split(tx, ev, d, moving) }, nil
	}
	return nil, runtime.Permanent(fmt.Errorf("tier-evaluate does not handle %s", ev.Type()))
}

// newState is a member's state before anything counted: the entry level.
func (h *Handler) newState(oneID string) member.TierState {
	return member.TierState{OneID: oneID, Level: h.Rules.Ladder()[0].Name, LevelSince: h.Now(), Purchases: map[string]loyalty.Purchase{}}
}

// liveState follows MergedInto to the state that now holds a member's purchases.
func (h *Handler) liveState(tx store.Tx, oneID string) (member.TierState, error) {
	for range member.MaxMergeHops {
		s := h.newState(oneID)
		err := tx.Get(member.Tiers, oneID, &s)
		if errors.Is(err, store.ErrNotFound) {
			return h.newState(oneID), nil
		}
		if err != nil || s.MergedInto == "" {
			if s.Purchases == nil {
				s.Purchases = map[string]loyalty.Purchase{}
			}
			return s, err
		}
		oneID = s.MergedInto
	}
	return member.TierState{}, fmt.Errorf("tier state %s: merge chain longer than %d", oneID, member.MaxMergeHops)
}

func (h *Handler) spend(tx store.Tx, ev cloudevents.Event, c spendChange) ([]cloudevents.Event, error) {
	s, err := h.liveState(tx, c.oneID)
	if err != nil {
		return nil, err
	}
	now := decisionTime(s, h.Now())
	if err := h.roll(&s, now); err != nil {
		return nil, err
	}
	s.Purchases[c.orderKey] = c.purchase
	return h.decide(tx, ev, s, now, 0, h.Rules.OnActivity)
}

// merge moves absorbed members' purchases to the survivor; an absorbed state already marked
// merged is skipped, so a repeated merge counts nothing twice.
func (h *Handler) merge(tx store.Tx, ev cloudevents.Event, d events.MemberMergedData) ([]cloudevents.Event, error) {
	s, err := h.liveState(tx, d.SurvivorOneID)
	if err != nil {
		return nil, err
	}
	now := decisionTime(s, h.Now())
	if err := h.roll(&s, now); err != nil {
		return nil, err
	}
	docs, err := tx.GetAll(member.Tiers, d.AbsorbedOneIDs)
	if err != nil {
		return nil, err
	}
	for i, doc := range docs {
		a := member.TierState{OneID: d.AbsorbedOneIDs[i]}
		if doc.Exists {
			if err := doc.DataTo(&a); err != nil {
				return nil, err
			}
		}
		if a.MergedInto != "" || a.OneID == s.OneID {
			continue
		}
		for k, p := range a.Purchases {
			s.Purchases[k] = p
		}
		if err := tx.Set(member.Tiers, a.OneID, member.TierState{OneID: a.OneID, Level: a.Level, MergedInto: s.OneID}); err != nil {
			return nil, err
		}
	}
	return h.decide(tx, ev, s, now, 0, h.Rules.OnActivity)
}

// rule is a way of deciding a member's standing from its score.
type rule func(s loyalty.Standing, score int64, now time.Time) (loyalty.Standing, loyalty.Decision)

// decisionTime is when a decision about s happens: now, or its last decision if that is later (the
// job run as of a later date): a member's decisions never go back in time.
func decisionTime(s member.TierState, now time.Time) time.Time {
	if s.EvaluatedAt.After(now) {
		return s.EvaluatedAt
	}
	return now
}

// roll carries a member's standing from its last decision to now with nothing but time passing: a
// purchase that left the window since may have started the grace period (loyalty.Rules.Roll). It
// runs before the event's own change, which happens at now.
func (h *Handler) roll(s *member.TierState, now time.Time) error {
	if s.EvaluatedAt.IsZero() {
		return nil // nothing decided yet: nothing to carry
	}
	standing, err := h.Rules.Roll(loyalty.Standing{Level: s.Level, LevelSince: s.LevelSince, BelowSince: s.BelowSince}, s.Purchases, s.EvaluatedAt, now)
	if err != nil {
		return fmt.Errorf("roll %s to %s: %w", s.OneID, now.Format(time.RFC3339), err)
	}
	s.BelowSince = standing.BelowSince
	return nil
}

// decide drops purchases that left the window by now, applies the rule to the score over the
// rules' window, writes the state with its decision and the next moment time alone changes the
// score (rollsAt, the job's index), and reports a change of level as the index-th event the input
// causes.
func (h *Handler) decide(tx store.Tx, ev cloudevents.Event, s member.TierState, now time.Time, index int, apply rule) ([]cloudevents.Event, error) {
	for k, p := range s.Purchases {
		if !now.Before(h.Rules.Leaves(p)) {
			delete(s.Purchases, k)
		}
	}
	from := s.Level
	tally, err := h.Rules.Tally(s.Purchases, now)
	if err != nil {
		return nil, fmt.Errorf("score of %s: %w", s.OneID, err)
	}
	s.Score, s.NetSpendFen = tally.Score, tally.SpendFen
	standing, decision := apply(loyalty.Standing{Level: s.Level, LevelSince: s.LevelSince, BelowSince: s.BelowSince}, s.Score, now)
	s.Level, s.LevelSince, s.BelowSince = standing.Level, standing.LevelSince, indexed(standing.BelowSince)
	s.Decision, s.EvaluatedAt, s.RollsAt = &decision, now, nil
	if next, ok := h.Rules.NextChange(s.Purchases, now); ok {
		s.RollsAt = indexedUp(next)
	}
	if err := tx.Set(member.Tiers, s.OneID, s); err != nil {
		return nil, err
	}
	if s.Level == from {
		return nil, nil
	}
	ladder := h.Rules.Ladder()
	direction := "upgrade"
	if ladder.Rank(s.Level) < ladder.Rank(from) {
		direction = "downgrade"
	}
	out, err := events.New(events.TierChanged, events.DerivedID(Name, ev.ID(), index), events.Source(Name), now, events.TierChangedData{
		OneID: s.OneID, From: from, To: s.Level, Direction: direction, NetSpendFen: s.NetSpendFen, EvaluatedAt: now, SourceID: ev.ID()})
	return []cloudevents.Event{out}, err
}

// indexed keeps an indexed time in UTC to the second, so its stored text sorts like the time.
func indexed(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC().Truncate(time.Second)
	return &u
}

// indexedUp is an indexed time rounded up to the second: a query for rollsAt <= asOf then finds a
// member only once the change has happened.
func indexedUp(t time.Time) *time.Time {
	u := t.UTC().Truncate(time.Second)
	if u.Before(t) {
		u = u.Add(time.Second)
	}
	return &u
}

// split moves the purchases of the orders that left with a split's identities, then places both
// members afresh: a wrong merge's tier is a mistake to correct, so here a level may go down at once.
func (h *Handler) split(tx store.Tx, ev cloudevents.Event, d events.MemberSplitData, moving map[string]member.Order) ([]cloudevents.Event, error) {
	from, err := h.liveState(tx, d.FromOneID)
	if err != nil {
		return nil, err
	}
	now := decisionTime(from, h.Now())
	to := h.newState(d.ToOneID)
	if err := tx.Get(member.Tiers, d.ToOneID, &to); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if to.Purchases == nil {
		to.Purchases = map[string]loyalty.Purchase{}
	}
	to.MergedInto = ""
	for _, o := range moving {
		k := o.Channel + ":" + o.OrderID
		if p, ok := from.Purchases[k]; ok {
			to.Purchases[k] = p
			delete(from.Purchases, k)
		}
	}
	outs, err := h.decide(tx, ev, from, now, 0, h.correct)
	if err != nil {
		return nil, err
	}
	more, err := h.decide(tx, ev, to, now, 1, h.correct)
	return append(outs, more...), err
}

// correct places a member where its score puts it, up or down, now.
func (h *Handler) correct(s loyalty.Standing, score int64, now time.Time) (loyalty.Standing, loyalty.Decision) {
	q := h.Rules.Ladder().For(score)
	d := loyalty.Decision{At: now, Basis: h.Rules.Tiers.Basis, Score: score, Qualified: q.Name, From: s.Level, To: q.Name,
		Reason: "corrected after a split", Version: h.Rules.Version}
	if q.Name == s.Level {
		return loyalty.Standing{Level: s.Level, LevelSince: s.LevelSince}, d
	}
	return loyalty.Standing{Level: q.Name, LevelSince: now}, d
}
