// Package ledger decides points: what an order earns net of its refunds, and what each change moves.
package ledger

import (
	"fmt"
	"maps"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/amount"
)

// DefaultFenPerPoint is MISSION §5's default earning rate: 1 yuan (100 fen) = 1 point.
const DefaultFenPerPoint = 100

// NetPoints is floor((paidFen - refundedFen) / fenPerPoint), never negative.
func NetPoints(paidFen, refundedFen, fenPerPoint int64) int64 {
	net := paidFen - refundedFen
	if net <= 0 || fenPerPoint <= 0 {
		return 0
	}
	return net / fenPerPoint
}

// Entitlement says how many points a net amount (fen) earns under the rules that applied to an
// order; an error (a result beyond events.MaxPoints) is permanent.
type Entitlement func(netFen int64) (int64, error)

// PerFen is the plain rule: one point per fenPerPoint fen, floored.
func PerFen(fenPerPoint int64) Entitlement {
	return func(net int64) (int64, error) { return NetPoints(net, 0, fenPerPoint), nil }
}

// Order is what the ledger knows of one order: its payment, its refunds by refund id and the
// points it has earned so far. Refunds may arrive before the payment; they wait for it. Ceiling is
// what the order earned at payment after the member's daily cap: refunds only ever lower it.
//
// Refunds keep what each refund asked. What counts (RefundedFen) never exceeds what was paid:
// refunds asking more (a platform's refund of shipping, a live refund of what a backfill's total
// already held) are clamped, and RefundExcessFen records by how much, for the ledger and an
// operator. Before the payment is known, refunds totalling more than the largest possible order
// (events.MaxFen) are refused: they wait for a payment no order can have.
type Order struct {
	Paid            bool             `json:"paid"`
	PaidFen         int64            `json:"paidFen"`
	Refunds         map[string]int64 `json:"refunds,omitempty"`
	RefundExcessFen int64            `json:"refundExcessFen,omitempty"`
	AwardedPoints   int64            `json:"awardedPoints"`
	Ceiling         int64            `json:"ceiling,omitempty"`
}

// askedFen sums what the refunds asked, checked: each is within events.MaxFen, the sum within
// events.MaxTotal (and within MaxFen while the payment is unknown).
func (o Order) askedFen() (int64, error) {
	var sum int64
	for id, fen := range o.Refunds {
		var err error
		if err = amount.Fen("refund "+id, fen); err == nil {
			sum, err = amount.Add(sum, fen)
		}
		if err != nil {
			return 0, err
		}
	}
	return sum, nil
}

// RefundedFen is what the refunds take back: what they asked, at most what was paid.
func (o Order) RefundedFen() int64 {
	asked, err := o.askedFen()
	if err != nil {
		asked = events.MaxFen // only a document written before the bounds: count it all refunded
	}
	if o.Paid {
		return min(asked, o.PaidFen)
	}
	return asked
}

// NetFen is what the order is worth after refunds, 0 until it is paid.
func (o Order) NetFen() int64 {
	if !o.Paid {
		return 0
	}
	return o.PaidFen - o.RefundedFen()
}

// Pay records the payment and returns the points it moves. allowance is what the member may still
// earn (the daily cap), negative for no limit. A second payment of the same order changes nothing
// (delta 0, changed false), whatever event id it arrives under. An amount outside 0..MaxFen, or
// points beyond MaxPoints, is an error wrapping amount.ErrOutOfBounds, and the order is unchanged.
func (o *Order) Pay(amountFen int64, earn Entitlement, allowance int64) (delta int64, changed bool, err error) {
	if err := amount.Fen("paid amount", amountFen); err != nil {
		return 0, false, err
	}
	if o.Paid {
		return 0, false, nil
	}
	next := *o
	next.Paid, next.PaidFen = true, amountFen
	if next.Ceiling, err = earn(amountFen); err != nil {
		return 0, false, err
	}
	if allowance >= 0 {
		next.Ceiling = min(next.Ceiling, allowance)
	}
	if delta, err = next.settle(earn); err != nil {
		return 0, false, err
	}
	*o = next
	return delta, true, nil
}

// Refund records one refund by its id and returns the points it moves (zero or negative).
// The same refund id twice changes nothing. An amount outside 0..MaxFen, or refunds before the
// payment totalling over MaxFen, is an error wrapping amount.ErrOutOfBounds; the order is unchanged.
func (o *Order) Refund(refundID string, amountFen int64, earn Entitlement) (delta int64, changed bool, err error) {
	if err := amount.Fen("refund "+refundID, amountFen); err != nil {
		return 0, false, err
	}
	if _, seen := o.Refunds[refundID]; seen {
		return 0, false, nil
	}
	next := *o
	next.Refunds = maps.Clone(o.Refunds)
	if next.Refunds == nil {
		next.Refunds = map[string]int64{}
	}
	next.Refunds[refundID] = amountFen
	asked, err := next.askedFen()
	if err == nil && !next.Paid && asked > events.MaxFen {
		err = fmt.Errorf("%w: refunds before the payment would total %d fen, over the largest order (%d fen)", amount.ErrOutOfBounds, asked, events.MaxFen)
	}
	if err != nil {
		return 0, false, err
	}
	if delta, err = next.settle(earn); err != nil {
		return 0, false, err
	}
	*o = next
	return delta, true, nil
}

// settle moves AwardedPoints to what the order's net amount earns, within its ceiling, records
// how far the refunds asked past the payment, and returns the difference.
func (o *Order) settle(earn Entitlement) (int64, error) {
	target := int64(0)
	o.RefundExcessFen = 0
	if o.Paid {
		asked, err := o.askedFen()
		if err != nil {
			return 0, err
		}
		o.RefundExcessFen = max(0, asked-o.PaidFen)
		points, err := earn(o.NetFen())
		if err != nil {
			return 0, err
		}
		target = min(o.Ceiling, points)
	}
	if err := amount.Points("order", target); err != nil {
		return 0, err
	}
	delta := target - o.AwardedPoints
	o.AwardedPoints = target
	return delta, nil
}
