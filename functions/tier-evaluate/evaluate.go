// Package tierevaluate places members on the tier ladder by rolling 365-day net spend, upgrading at
// once, and emits tier.changed on a change.
package tierevaluate

import (
	"context"
	"errors"
	"fmt"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/receipt"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
	"github.com/omnimember/omnimember/shared/tier"
)

// Name is the function's name.
const Name = "tier-evaluate"

// Consumes lists the events that move spend.
var Consumes = []string{events.PointsAwarded, events.PointsReversed, events.MemberMerged, events.MemberSplit}

// Handler evaluates tiers on Ladder.
type Handler struct {
	Store  Store
	Ladder tier.Ladder
	Now    func() time.Time
}

// Store is the part of the store tier-evaluate uses: transactions, and queries to find what a split moves.
type Store interface {
	receipt.Transactor
	member.Querier
}

// Function is tier-evaluate as the runtime runs it.
func (h *Handler) Function() runtime.Function {
	return runtime.Function{Name: Name, Consumes: Consumes, Handle: h.Handle}
}

// spendChange is one order's net amount after a points event.
type spendChange struct {
	oneID, orderKey string
	purchase        tier.Purchase
}

// Handle records spend or consolidates a merge, then re-evaluates; effect and receipt commit together.
func (h *Handler) Handle(ctx context.Context, ev cloudevents.Event) ([]cloudevents.Event, error) {
	var apply func(tx store.Tx) ([]cloudevents.Event, error)
	switch ev.Type() {
	case events.PointsAwarded:
		d, err := events.Decode[events.PointsAwardedData](ev)
		if err != nil {
			return nil, runtime.Permanent(err)
		}
		runtime.SetOneID(ctx, d.OneID)
		c := spendChange{d.OneID, d.Channel + ":" + d.OrderID, tier.Purchase{NetFen: d.OrderNetAmountFen, PaidAt: d.PaidAt}}
		apply = func(tx store.Tx) ([]cloudevents.Event, error) { return h.spend(tx, ev, c) }
	case events.PointsReversed:
		d, err := events.Decode[events.PointsReversedData](ev)
		if err != nil {
			return nil, runtime.Permanent(err)
		}
		runtime.SetOneID(ctx, d.OneID)
		c := spendChange{d.OneID, d.Channel + ":" + d.OrderID, tier.Purchase{NetFen: d.OrderNetAmountFen, PaidAt: d.PaidAt}}
		apply = func(tx store.Tx) ([]cloudevents.Event, error) { return h.spend(tx, ev, c) }
	case events.MemberMerged:
		d, err := events.Decode[events.MemberMergedData](ev)
		if err != nil {
			return nil, runtime.Permanent(err)
		}
		runtime.SetOneID(ctx, d.SurvivorOneID)
		apply = func(tx store.Tx) ([]cloudevents.Event, error) { return h.merge(tx, ev, d) }
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
		apply = func(tx store.Tx) ([]cloudevents.Event, error) { return h.split(tx, ev, d, moving) }
	default:
		return nil, runtime.Permanent(fmt.Errorf("tier-evaluate does not handle %s", ev.Type()))
	}
	outs, err := receipt.Once(ctx, h.Store, Name, ev, h.Now, apply)
	if err != nil {
		return nil, fmt.Errorf("evaluate tier for %s %s: %w", ev.Type(), ev.ID(), err)
	}
	return outs, nil
}

// liveState follows MergedInto to the state that now holds a member's spend.
func (h *Handler) liveState(tx store.Tx, oneID string) (member.TierState, error) {
	for range member.MaxMergeHops {
		var s member.TierState
		err := tx.Get(member.Tiers, oneID, &s)
		if errors.Is(err, store.ErrNotFound) {
			return member.TierState{OneID: oneID, Level: h.Ladder[0].Name, Purchases: map[string]tier.Purchase{}}, nil
		}
		if err != nil || s.MergedInto == "" {
			if s.Purchases == nil {
				s.Purchases = map[string]tier.Purchase{}
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
	s.Purchases[c.orderKey] = c.purchase
	return h.evaluate(tx, ev, s)
}

// merge moves absorbed members' purchases to the survivor; an absorbed state already marked
// merged is skipped, so a repeated merge counts nothing twice.
func (h *Handler) merge(tx store.Tx, ev cloudevents.Event, d events.MemberMergedData) ([]cloudevents.Event, error) {
	s, err := h.liveState(tx, d.SurvivorOneID)
	if err != nil {
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
	return h.evaluate(tx, ev, s)
}

// evaluate drops purchases outside the window, upgrades if the spend reaches a higher level, and
// writes the state; a change becomes tier.changed.
func (h *Handler) evaluate(tx store.Tx, ev cloudevents.Event, s member.TierState) ([]cloudevents.Event, error) {
	return h.decide(tx, ev, s, 0, h.Ladder.Upgrade)
}

// decide applies a level rule to a member's rolling spend, writes the state, and reports a change
// as the index-th event the input causes.
func (h *Handler) decide(tx store.Tx, ev cloudevents.Event, s member.TierState, index int, rule func(current string, spend int64) (string, bool)) ([]cloudevents.Event, error) {
	now := h.Now()
	for k, p := range s.Purchases {
		if !p.PaidAt.After(now.Add(-tier.Window)) {
			delete(s.Purchases, k)
		}
	}
	from := s.Level
	s.NetSpendFen = tier.RollingSpend(s.Purchases, now)
	level, changed := rule(s.Level, s.NetSpendFen)
	s.Level, s.EvaluatedAt = level, now
	if err := tx.Set(member.Tiers, s.OneID, s); err != nil {
		return nil, err
	}
	if !changed {
		return nil, nil
	}
	direction := "upgrade"
	if h.Ladder.Rank(level) < h.Ladder.Rank(from) {
		direction = "downgrade"
	}
	out, err := events.New(events.TierChanged, events.DerivedID(Name, ev.ID(), index), events.Source(Name), now, events.TierChangedData{
		OneID: s.OneID, From: from, To: level, Direction: direction, NetSpendFen: s.NetSpendFen, EvaluatedAt: now, SourceID: ev.ID()})
	return []cloudevents.Event{out}, err
}

// split moves the purchases of the orders that left with a split's identities, then places both
// members afresh: a wrong merge's tier is a mistake to correct, so here a level may go down.
func (h *Handler) split(tx store.Tx, ev cloudevents.Event, d events.MemberSplitData, moving map[string]member.Order) ([]cloudevents.Event, error) {
	from, err := h.liveState(tx, d.FromOneID)
	if err != nil {
		return nil, err
	}
	to := member.TierState{OneID: d.ToOneID, Level: h.Ladder[0].Name}
	if err := tx.Get(member.Tiers, d.ToOneID, &to); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if to.Purchases == nil {
		to.Purchases = map[string]tier.Purchase{}
	}
	to.MergedInto = ""
	for _, o := range moving {
		k := o.Channel + ":" + o.OrderID
		if p, ok := from.Purchases[k]; ok {
			to.Purchases[k] = p
			delete(from.Purchases, k)
		}
	}
	correct := func(current string, spend int64) (string, bool) {
		level := h.Ladder.For(spend).Name
		return level, level != current
	}
	outs, err := h.decide(tx, ev, from, 0, correct)
	if err != nil {
		return nil, err
	}
	more, err := h.decide(tx, ev, to, 1, correct)
	return append(outs, more...), err
}
