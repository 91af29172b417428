// Package pointsaward keeps the points ledger: it awards an order's points, reverses them on refunds
// and consolidates accounts when members merge, each change in one store transaction.
package pointsaward

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/receipt"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
)

// Name is the function's name.
const Name = "points-award"

// Consumes lists the events that move points.
var Consumes = []string{events.IdentityResolved, events.MemberMerged, events.MemberSplit}

// Handler awards points. FenPerPoint is the earning rate (100: 1 yuan = 1 point); points expire
// ExpiryMonths after the order was paid.
type Handler struct {
	Store        Store
	FenPerPoint  int64
	ExpiryMonths int
	Now          func() time.Time
}

// Function is points-award as the runtime runs it.
func (h *Handler) Function() runtime.Function {
	return runtime.Function{Name: Name, Consumes: Consumes, Handle: h.Handle}
}

// Store is the part of the store points-award uses: transactions, and queries to find what a split moves.
type Store interface {
	receipt.Transactor
	member.Querier
}

// Orders are keyed by channel and order id (member.Order), so the same order arriving under another
// event id (a platform retry, a backfill) finds its earlier self.
type orderDoc = member.Order

// entry is one ledger line: what moved, why, and which event caused it.
type entry struct {
	OneID        string    `json:"oneId"`
	Delta        int64     `json:"delta"`
	BalanceAfter int64     `json:"balanceAfter"`
	Cause        string    `json:"cause"`
	OrderID      string    `json:"orderId,omitempty"`
	RefundID     string    `json:"refundId,omitempty"`
	Channel      string    `json:"channel,omitempty"`
	SourceID     string    `json:"sourceId"`
	At           time.Time `json:"at"`
}

// Handle moves points for one event; the effect and a receipt commit together.
func (h *Handler) Handle(ctx context.Context, ev cloudevents.Event) ([]cloudevents.Event, error) {
	var apply func(tx store.Tx) ([]cloudevents.Event, error)
	switch ev.Type() {
	case events.IdentityResolved:
		d, err := events.Decode[events.IdentityResolvedData](ev)
		if err != nil {
			return nil, runtime.Permanent(err)
		}
		runtime.SetOneID(ctx, d.OneID)
		keys := identityKeys(d.Identities)
		switch {
		case d.Order != nil:
			apply = func(tx store.Tx) ([]cloudevents.Event, error) { return h.pay(tx, ev, d.OneID, keys, *d.Order) }
		case d.Refund != nil:
			apply = func(tx store.Tx) ([]cloudevents.Event, error) { return h.refund(tx, ev, d.OneID, keys, *d.Refund) }
		default:
			return nil, nil // registrations and interactions move no points
		}
	case events.MemberMerged:
		d, err := events.Decode[events.MemberMergedData](ev)
		if err != nil {
			return nil, runtime.Permanent(err)
		}
		runtime.SetOneID(ctx, d.SurvivorOneID)
		apply = func(tx store.Tx) ([]cloudevents.Event, error) { return nil, h.merge(tx, ev, d) }
	case events.MemberSplit:
		d, err := events.Decode[events.MemberSplitData](ev)
		if err != nil {
			return nil, runtime.Permanent(err)
		}
		runtime.SetOneID(ctx, d.FromOneID)
		// The query runs before the transaction; the transaction re-reads what it found.
		moving, err := member.SplitOrders(ctx, h.Store, d)
		if err != nil {
			return nil, err
		}
		apply = func(tx store.Tx) ([]cloudevents.Event, error) { return nil, h.split(tx, ev, d, moving) }
	default:
		return nil, runtime.Permanent(fmt.Errorf("points-award does not handle %s", ev.Type()))
	}
	outs, err := receipt.Once(ctx, h.Store, Name, ev, h.Now, apply)
	if err != nil {
		return nil, fmt.Errorf("points for %s %s: %w", ev.Type(), ev.ID(), err)
	}
	return outs, nil
}

func orderKey(channel, orderID string) string { return member.OrderKey(channel, orderID) }

// identityKeys are the keys of an event's identities, kept on its order for splits.
func identityKeys(ids []events.Identity) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if k := identity.Key(id); !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

func addKeys(have, more []string) []string {
	for _, k := range more {
		if !slices.Contains(have, k) {
			have = append(have, k)
		}
	}
	return have
}

// loadOrder reads the order and the live account it belongs to (following merges).
func loadOrder(tx store.Tx, channel, orderID, oneID string) (orderDoc, member.Account, error) {
	od := orderDoc{OrderID: orderID, Channel: channel, OneID: oneID}
	if err := tx.Get(member.Orders, orderKey(channel, orderID), &od); err != nil && !errors.Is(err, store.ErrNotFound) {
		return od, member.Account{}, err
	}
	acct, err := liveAccount(tx, od.OneID)
	return od, acct, err
}

// liveAccount follows MergedInto to the account that now holds a member's points.
func liveAccount(tx store.Tx, oneID string) (member.Account, error) {
	for range member.MaxMergeHops {
		var a member.Account
		err := tx.Get(member.Accounts, oneID, &a)
		if errors.Is(err, store.ErrNotFound) {
			return member.Account{OneID: oneID}, nil
		}
		if err != nil || a.MergedInto == "" {
			return a, err
		}
		oneID = a.MergedInto
	}
	return member.Account{}, fmt.Errorf("account %s: merge chain longer than %d", oneID, member.MaxMergeHops)
}

func (h *Handler) pay(tx store.Tx, ev cloudevents.Event, oneID string, keys []string, o events.OrderPaidData) ([]cloudevents.Event, error) {
	od, acct, err := loadOrder(tx, o.Channel, o.OrderID, oneID)
	if err != nil {
		return nil, err
	}
	od.IdentityKeys = addKeys(od.IdentityKeys, keys)
	before := od.NetFen()
	delta, changed, err := od.Pay(o.AmountFen, h.FenPerPoint)
	if err != nil {
		return nil, runtime.Permanent(err)
	}
	if !changed {
		return nil, nil // the same order again, under another event id
	}
	od.ShopID, od.PaidAt = o.ShopID, o.PaidAt
	acct.OrderCount++
	return h.commit(tx, ev, od, acct, delta, before, "")
}

func (h *Handler) refund(tx store.Tx, ev cloudevents.Event, oneID string, keys []string, r events.OrderRefundedData) ([]cloudevents.Event, error) {
	od, acct, err := loadOrder(tx, r.Channel, r.OrderID, oneID)
	if err != nil {
		return nil, err
	}
	od.IdentityKeys = addKeys(od.IdentityKeys, keys)
	before := od.NetFen()
	delta, changed, err := od.Refund(r.RefundID, r.AmountFen, h.FenPerPoint)
	if err != nil {
		return nil, runtime.Permanent(err)
	}
	if !changed {
		return nil, nil
	}
	if !od.Paid {
		// A refund before its order: remembered, settled when the payment arrives.
		return nil, tx.Set(member.Orders, orderKey(od.Channel, od.OrderID), od)
	}
	return h.commit(tx, ev, od, acct, delta, before, r.RefundID)
}

// commit writes the order, the account and the ledger line, and builds the event that reports them.
func (h *Handler) commit(tx store.Tx, ev cloudevents.Event, od orderDoc, acct member.Account, delta, netBefore int64, refundID string) ([]cloudevents.Event, error) {
	now := h.Now()
	acct.Lots = h.moveLot(acct.Lots, od, delta)
	acct.Balance += delta
	acct.NetAmountFen += od.NetFen() - netBefore
	acct.UpdatedAt = now
	cause := "order"
	if refundID != "" {
		cause = "refund"
	}
	line := entry{OneID: acct.OneID, Delta: delta, BalanceAfter: acct.Balance, Cause: cause, OrderID: od.OrderID,
		RefundID: refundID, Channel: od.Channel, SourceID: ev.ID(), At: now}
	id := events.DerivedID(Name, ev.ID(), 0)
	for _, w := range []struct {
		collection, id string
		doc            any
	}{{member.Orders, orderKey(od.Channel, od.OrderID), od}, {member.Accounts, acct.OneID, acct}, {member.LedgerEntries, id, line}} {
		if err := tx.Set(w.collection, w.id, w.doc); err != nil {
			return nil, err
		}
	}
	var out cloudevents.Event
	var err error
	if refundID == "" {
		out, err = events.New(events.PointsAwarded, id, events.Source(Name), now, events.PointsAwardedData{
			OneID: acct.OneID, OrderID: od.OrderID, Channel: od.Channel, ShopID: od.ShopID, Points: delta,
			Balance: acct.Balance, OrderNetAmountFen: od.NetFen(), PaidAt: od.PaidAt, SourceID: ev.ID()})
	} else {
		out, err = events.New(events.PointsReversed, id, events.Source(Name), now, events.PointsReversedData{
			OneID: acct.OneID, OrderID: od.OrderID, RefundID: refundID, Channel: od.Channel, Points: -delta,
			Balance: acct.Balance, OrderNetAmountFen: od.NetFen(), PaidAt: od.PaidAt, SourceID: ev.ID()})
	}
	return []cloudevents.Event{out}, err
}

// moveLot grows the order's lot by an award, or shrinks exactly that lot on a refund.
func (h *Handler) moveLot(lots []member.Lot, od orderDoc, delta int64) []member.Lot {
	id := orderKey(od.Channel, od.OrderID)
	i := slices.IndexFunc(lots, func(l member.Lot) bool { return l.ID == id })
	if i < 0 {
		if delta <= 0 {
			return lots
		}
		lots = append(lots, member.Lot{ID: id, OrderID: od.OrderID, Channel: od.Channel, EarnedAt: od.PaidAt,
			ExpiresAt: od.PaidAt.AddDate(0, h.ExpiryMonths, 0)})
		i = len(lots) - 1
	}
	if delta > 0 {
		lots[i].Earned += delta
	}
	lots[i].Remaining = max(0, lots[i].Remaining+delta)
	return sortLots(slices.DeleteFunc(lots, func(l member.Lot) bool { return l.Remaining == 0 }))
}

// sortLots keeps lots in the order they are spent and expire: oldest expiry first.
func sortLots(lots []member.Lot) []member.Lot {
	slices.SortStableFunc(lots, func(a, b member.Lot) int { return a.ExpiresAt.Compare(b.ExpiresAt) })
	return lots
}

// merge moves each absorbed account's balance and totals into the survivor's. An account already
// marked as merged is skipped, so the same merge twice moves nothing twice.
func (h *Handler) merge(tx store.Tx, ev cloudevents.Event, d events.MemberMergedData) error {
	survivor, err := liveAccount(tx, d.SurvivorOneID)
	if err != nil {
		return err
	}
	docs, err := tx.GetAll(member.Accounts, d.AbsorbedOneIDs)
	if err != nil {
		return err
	}
	now := h.Now()
	var writes []member.Account
	var lines []entry
	for i, doc := range docs {
		a := member.Account{OneID: d.AbsorbedOneIDs[i]}
		if doc.Exists {
			if err := doc.DataTo(&a); err != nil {
				return err
			}
		}
		if a.MergedInto != "" || a.OneID == survivor.OneID {
			continue
		}
		survivor.Balance += a.Balance
		survivor.Lots = sortLots(append(survivor.Lots, a.Lots...))
		survivor.OrderCount += a.OrderCount
		survivor.NetAmountFen += a.NetAmountFen
		lines = append(lines, entry{OneID: survivor.OneID, Delta: a.Balance, BalanceAfter: survivor.Balance, Cause: "merge", SourceID: ev.ID(), At: now},
			entry{OneID: a.OneID, Delta: -a.Balance, Cause: "merge", SourceID: ev.ID(), At: now})
		writes = append(writes, member.Account{OneID: a.OneID, MergedInto: survivor.OneID, UpdatedAt: now})
	}
	survivor.UpdatedAt = now
	for _, a := range append(writes, survivor) {
		if err := tx.Set(member.Accounts, a.OneID, a); err != nil {
			return err
		}
	}
	for i, line := range lines {
		if err := tx.Set(member.LedgerEntries, events.DerivedID(Name, ev.ID(), i), line); err != nil {
			return err
		}
	}
	return nil
}
