// Package pointsaward keeps the points ledger under the brand's loyalty rules: it awards an order's
// points, reverses them on refunds, consolidates and splits accounts, serves redemptions on any
// channel and expires lots, each change in one store transaction with a ledger entry that says why.
package pointsaward

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/amount"
	"github.com/omnimember/omnimember/shared/ledger"
	"github.com/omnimember/omnimember/shared/loyalty"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/receipt"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
)

// Name is the function's name.
const Name = "points-award"

// Consumes lists the events that move points.
var Consumes = []string{events.IdentityResolved, events.MemberMerged, events.MemberSplit, events.CampaignRewarded, events.MemberErased}

// Emits lists what points-award publishes: points moved by orders, redemptions, expiry and rewards.
var Emits = []string{events.PointsAwarded, events.PointsReversed, events.PointsRedeemed, events.PointsExpired,
	events.PointsExpiring, events.RedemptionReversed}

// Store is the part of the store points-award uses: transactions, and queries (what a split moves,
// which accounts have lots to expire).
type Store interface {
	receipt.Transactor
	member.Querier
}

// Handler keeps the ledger under Rules. APIToken guards redemptions (channel systems call them);
// AdminToken guards the expiry job.
type Handler struct {
	Store      Store
	Rules      *loyalty.Rules
	Now        func() time.Time
	APIToken   string
	AdminToken string
}

// Function is points-award as the runtime runs it.
func (h *Handler) Function() runtime.Function {
	return runtime.Function{Name: Name, Consumes: Consumes, Emits: Emits, Handle: h.Handle, Routes: h.Routes}
}

// Orders are keyed by channel and order id (member.Order), so the same order arriving under another
// event id (a platform retry, a backfill) finds its earlier self.
type orderDoc = member.Order

// entry is one ledger line: what moved the balance, why, under which rule, and which event caused it.
// The balance is always the sum of the Delta of a member's entries.
type entry struct {
	OneID        string    `json:"oneId"`
	Delta        int64     `json:"delta"`
	BalanceAfter int64     `json:"balanceAfter"`
	Points       int64     `json:"points,omitempty"`
	Repaid       int64     `json:"repaid,omitempty"`
	Owed         int64     `json:"owed,omitempty"`
	Cause        string    `json:"cause"`
	Rule         string    `json:"rule,omitempty"`
	RulesVersion string    `json:"rulesVersion,omitempty"`
	OrderID      string    `json:"orderId,omitempty"`
	RefundID     string    `json:"refundId,omitempty"`
	Channel      string    `json:"channel,omitempty"`
	Note         string    `json:"note,omitempty"`
	SourceID     string    `json:"sourceId"`
	At           time.Time `json:"at"`
}

// Handle moves points for one event; the effect and a receipt commit together.
func (h *Handler) Handle(ctx context.Context, ev cloudevents.Event) ([]cloudevents.Event, error) {
	apply, err := h.plan(ctx, ev)
	if err != nil || apply == nil {
		return nil, err
	}
	outs, err := receipt.Once(ctx, h.Store, Name, ev, h.Now, apply)
	if errors.Is(err, amount.ErrOutOfBounds) {
		// An amount or a sum past the contract's bounds: retrying cannot fix it, and the
		// transaction wrote nothing.
		err = runtime.Permanent(err)
	}
	if err != nil {
		return nil, fmt.Errorf("points for %s %s: %w", ev.Type(), ev.ID(), err)
	}
	return outs, nil
}

// plan decodes an event into the transaction that applies it (nil: nothing to do).
func (h *Handler) plan(ctx context.Context, ev cloudevents.Event) (func(store.Tx) ([]cloudevents.Event, error), error) {
	switch ev.Type() {
	case events.IdentityResolved:
		d, err := events.Decode[events.IdentityResolvedData](ev)
		if err != nil {
			return nil, runtime.Permanent(err)
		}
		runtime.SetOneID(ctx, d.OneID)
		keys := d.IdentityKeys // keyed by match: the keys a split will name
		switch {
		case d.Order != nil:
			return func(tx store.Tx) ([]cloudevents.Event, error) {
				return h.pay(tx, ev, d.OneID, keys, *d.Order, d.ReceivedAt)
			}, nil
		case d.Refund != nil:
			return func(tx store.Tx) ([]cloudevents.Event, error) { return h.refund(tx, ev, d.OneID, keys, *d.Refund) }, nil
		}
		return nil, nil // registrations and interactions move no points
	case events.MemberMerged:
		d, err := events.Decode[events.MemberMergedData](ev)
		if err != nil {
			return nil, runtime.Permanent(err)
		}
		runtime.SetOneID(ctx, d.SurvivorOneID)
		return func(tx store.Tx) ([]cloudevents.Event, error) { return nil, h.merge(tx, ev, d) }, nil
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
		return func(tx store.Tx) ([]cloudevents.Event, error) { return nil, h.split(tx, ev, d, moving) }, nil
	case events.CampaignRewarded:
		return h.planReward(ctx, ev)
	case events.MemberErased:
		return h.planErasure(ctx, ev)
	}
	return nil, runtime.Permanent(fmt.Errorf("points-award does not handle %s", ev.Type()))
}

func orderKey(channel, orderID string) string { return member.OrderKey(channel, orderID) }

// latest is the later of two optional times.
func latest(a, b *time.Time) *time.Time {
	if a == nil || (b != nil && b.After(*a)) {
		return b
	}
	return a
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
func (h *Handler) loadOrder(tx store.Tx, channel, orderID, oneID string) (orderDoc, member.Account, error) {
	od := orderDoc{OrderID: orderID, Channel: channel, OneID: oneID}
	if err := tx.Get(member.Orders, orderKey(channel, orderID), &od); err != nil && !errors.Is(err, store.ErrNotFound) {
		return od, member.Account{}, err
	}
	acct, err := h.liveAccount(tx, od.OneID)
	return od, acct, err
}

// liveAccount follows MergedInto to the account that now holds a member's points.
func (h *Handler) liveAccount(tx store.Tx, oneID string) (member.Account, error) {
	for range member.MaxMergeHops {
		a := member.Account{OneID: oneID}
		err := tx.Get(member.Accounts, oneID, &a)
		if errors.Is(err, store.ErrNotFound) {
			a.Policy = h.Rules.Refunds.AfterRedemption
			return a, nil
		}
		if err != nil || a.MergedInto == "" {
			return a, err
		}
		oneID = a.MergedInto
	}
	return member.Account{}, fmt.Errorf("account %s: merge chain longer than %d", oneID, member.MaxMergeHops)
}

// memberContext reads what the earning rules need of a member: its level and its pool.
func (h *Handler) memberContext(tx store.Tx, oneID string) (level, pool string, err error) {
	var t member.TierState
	if err := tx.Get(member.Tiers, oneID, &t); err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", "", err
	}
	var m member.Member
	if err := tx.Get(member.Members, oneID, &m); err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", "", err
	}
	return t.Level, m.Pool, nil
}

// pay awards an order. The daily cap counts the day ingest received it (receivedAt, a day the
// server chose) — a live sender's paidAt cannot spread orders over days of its choosing — and, for
// history (backfill, the pollers: no receivedAt), the day it was paid.
func (h *Handler) pay(tx store.Tx, ev cloudevents.Event, oneID string, keys []string, o events.OrderPaidData, receivedAt *time.Time) ([]cloudevents.Event, error) {
	if exp := h.Rules.ExpiresAt(o.PaidAt); exp.Year() > 9999 {
		// Its lot could not be stored (RFC 3339 ends at 9999): retrying cannot fix that.
		return nil, runtime.Permanent(fmt.Errorf("order %s paid %s: its points would expire after the year 9999", o.OrderID, o.PaidAt.Format(time.RFC3339)))
	}
	od, acct, err := h.loadOrder(tx, o.Channel, o.OrderID, oneID)
	if err != nil || od.Paid {
		return nil, err // the same order again, under another event id
	}
	level, pool, err := h.memberContext(tx, acct.OneID)
	if err != nil {
		return nil, err
	}
	rate := h.Rules.RateFor(loyalty.OrderContext{Channel: o.Channel, Items: o.Items, PaidAt: o.PaidAt, Tier: level, Pool: pool,
		Windows: acct.Windows})
	capAt := o.PaidAt
	if receivedAt != nil {
		capAt = *receivedAt
	}
	day := h.Rules.Day(capAt)
	before := od.NetFen()
	delta, _, err := od.Pay(o.AmountFen, rate.Points, h.Rules.DailyAllowance(acct.DailyEarned[day]))
	if err != nil {
		return nil, runtime.Permanent(err)
	}
	od.IdentityKeys = addKeys(od.IdentityKeys, keys)
	paidAt := member.IndexTime(o.PaidAt)
	od.ShopID, od.PaidAt, od.PaidAtUTC, od.Rate = o.ShopID, o.PaidAt, &paidAt, &rate
	acct.OrderCount++
	acct.LastOrderAt = latest(acct.LastOrderAt, &paidAt)
	if delta > 0 {
		if acct.DailyEarned, err = earnedOn(acct.DailyEarned, day, delta, capAt); err != nil {
			return nil, err
		}
	}
	return h.commit(tx, ev, od, acct, delta, before, "")
}

// earnedOn adds a day's points (a checked sum) and forgets days older than a week (the cap only
// looks at one day).
func earnedOn(days map[string]int64, day string, points int64, at time.Time) (map[string]int64, error) {
	out := maps.Clone(days)
	if out == nil {
		out = map[string]int64{}
	}
	sum, err := amount.Add(out[day], points)
	if err != nil {
		return nil, fmt.Errorf("points earned on %s: %w", day, err)
	}
	out[day] = sum
	oldest := at.AddDate(0, 0, -7).Format(time.DateOnly)
	for d := range out {
		if d < oldest {
			delete(out, d)
		}
	}
	return out, nil
}

func (h *Handler) refund(tx store.Tx, ev cloudevents.Event, oneID string, keys []string, r events.OrderRefundedData) ([]cloudevents.Event, error) {
	od, acct, err := h.loadOrder(tx, r.Channel, r.OrderID, oneID)
	if err != nil {
		return nil, err
	}
	earn := ledger.PerFen(h.Rules.Earning.FenPerPoint)
	if od.Rate != nil {
		earn = od.Rate.Points
	}
	before := od.NetFen()
	delta, changed, err := od.Refund(r.RefundID, r.AmountFen, earn)
	if err != nil {
		return nil, runtime.Permanent(err)
	}
	if !changed {
		return nil, nil
	}
	od.IdentityKeys = addKeys(od.IdentityKeys, keys)
	if !od.Paid {
		// A refund before its order: remembered, settled when the payment arrives.
		return nil, tx.Set(member.Orders, orderKey(od.Channel, od.OrderID), od)
	}
	return h.commit(tx, ev, od, acct, delta, before, r.RefundID)
}

// commit moves the points through the account's lots, writes the order, the account and the ledger
// entry, and builds the event that reports them.
func (h *Handler) commit(tx store.Tx, ev cloudevents.Event, od orderDoc, acct member.Account, delta, netBefore int64, refundID string) ([]cloudevents.Event, error) {
	now := h.Now()
	line := entry{OneID: acct.OneID, Points: delta, Cause: "order", OrderID: od.OrderID, RefundID: refundID,
		Channel: od.Channel, SourceID: ev.ID(), At: now}
	if od.Rate != nil {
		line.Rule, line.RulesVersion = od.Rate.Rule(), od.Rate.Version
	}
	balanceBefore := acct.Balance
	var err error
	switch {
	case delta > 0:
		line.Repaid, err = acct.Earn(ledger.Lot{ID: orderKey(od.Channel, od.OrderID), OrderID: od.OrderID, Channel: od.Channel,
			EarnedAt: od.PaidAt, ExpiresAt: h.Rules.ExpiresAt(od.PaidAt)}, delta)
	case delta < 0:
		line.Cause = "refund"
		_, line.Owed, err = acct.Reverse(orderKey(od.Channel, od.OrderID), -delta)
	}
	if err != nil {
		return nil, err
	}
	if od.RefundExcessFen > 0 {
		// Refunds asked more than was paid: they count up to the payment, the rest is noted.
		line.Note = fmt.Sprintf("refunds asked %d fen more than the %d fen paid; counted up to the payment", od.RefundExcessFen, od.PaidFen)
	}
	line.Delta, line.BalanceAfter = acct.Balance-balanceBefore, acct.Balance
	if acct.NetAmountFen, err = amount.Add(acct.NetAmountFen, od.NetFen()-netBefore); err != nil {
		return nil, fmt.Errorf("net amount of %s: %w", acct.OneID, err)
	}
	id := events.DerivedID(Name, ev.ID(), 0)
	if err := h.writeAccount(tx, acct, now); err != nil {
		return nil, err
	}
	if err := tx.Set(member.Orders, orderKey(od.Channel, od.OrderID), od); err != nil {
		return nil, err
	}
	if err := tx.Set(member.LedgerEntries, id, line); err != nil {
		return nil, err
	}
	return h.orderEvent(ev, id, od, acct, delta, refundID, now)
}

// writeAccount stores an account with its next expiry for the expiry job's index: in UTC to the
// second, so the stored text sorts like the time (in both stores).
func (h *Handler) writeAccount(tx store.Tx, a member.Account, now time.Time) error {
	a.UpdatedAt, a.NextExpiryAt = now, nil
	if at, ok := a.NextExpiry(); ok {
		at = indexTime(at)
		a.NextExpiryAt = &at
	}
	return tx.Set(member.Accounts, a.OneID, a)
}

// indexTime is a time as indexed fields hold it: UTC, whole seconds (rounded down).
func indexTime(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

func (h *Handler) orderEvent(ev cloudevents.Event, id string, od orderDoc, acct member.Account, delta int64, refundID string, now time.Time) ([]cloudevents.Event, error) {
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

// merge moves each absorbed account's lots, debt and totals into the survivor's. An account already
// marked as merged is skipped, so the same merge twice moves nothing twice.
func (h *Handler) merge(tx store.Tx, ev cloudevents.Event, d events.MemberMergedData) error {
	survivor, err := h.liveAccount(tx, d.SurvivorOneID)
	if err != nil {
		return err
	}
	docs, err := tx.GetAll(member.Accounts, d.AbsorbedOneIDs)
	if err != nil {
		return err
	}
	now := h.Now()
	var emptied []member.Account
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
		before := survivor.Balance
		if err := absorb(&survivor, a, now); err != nil {
			return err
		}
		lines = append(lines, entry{OneID: survivor.OneID, Delta: survivor.Balance - before, BalanceAfter: survivor.Balance, Cause: "merge", SourceID: ev.ID(), At: now},
			entry{OneID: a.OneID, Delta: -a.Balance, Cause: "merge", SourceID: ev.ID(), At: now})
		emptied = append(emptied, member.Account{OneID: a.OneID, MergedInto: survivor.OneID})
	}
	for _, a := range append(emptied, survivor) {
		if err := h.writeAccount(tx, a, now); err != nil {
			return err
		}
	}
	return writeLines(tx, ev, lines)
}

// absorb moves an absorbed account's lots, debt, totals, windows and daily earnings into the
// survivor's, with checked sums.
func absorb(survivor *member.Account, a member.Account, now time.Time) error {
	if err := survivor.Absorb(a.Account); err != nil {
		return err
	}
	survivor.OrderCount += a.OrderCount
	net, err := amount.Add(survivor.NetAmountFen, a.NetAmountFen)
	if err != nil {
		return fmt.Errorf("net amount of %s: %w", survivor.OneID, err)
	}
	survivor.NetAmountFen = net
	survivor.LastOrderAt = latest(survivor.LastOrderAt, a.LastOrderAt)
	survivor.Windows = mergeWindows(survivor.Windows, a.Windows)
	for day, p := range a.DailyEarned {
		if survivor.DailyEarned, err = earnedOn(survivor.DailyEarned, day, p, now); err != nil {
			return err
		}
	}
	return nil
}

func writeLines(tx store.Tx, ev cloudevents.Event, lines []entry) error {
	for i, line := range lines {
		if err := tx.Set(member.LedgerEntries, events.DerivedID(Name, ev.ID(), i), line); err != nil {
			return err
		}
	}
	return nil
}
