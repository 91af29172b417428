// Package ledger decides points: what an order earns net of its refunds, and what each change moves.
package ledger

import "fmt"

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

// Entitlement says how many points a net amount (fen) earns under the rules that applied to an order.
type Entitlement func(netFen int64) int64

// PerFen is the plain rule: one point per fenPerPoint fen, floored.
func PerFen(fenPerPoint int64) Entitlement {
	return func(net int64) int64 { return NetPoints(net, 0, fenPerPoint) }
}

// Order is what the ledger knows of one order: its payment, its refunds by refund id and the
// points it has earned so far. Refunds may arrive before the payment; they wait for it. Ceiling is
// what the order earned at payment after the member's daily cap: refunds only ever lower it.
type Order struct {
	Paid          bool             `json:"paid"`
	PaidFen       int64            `json:"paidFen"`
	Refunds       map[string]int64 `json:"refunds,omitempty"`
	AwardedPoints int64            `json:"awardedPoints"`
	Ceiling       int64            `json:"ceiling,omitempty"`
}

// RefundedFen sums the refunds recorded so far.
func (o Order) RefundedFen() int64 {
	var sum int64
	for _, fen := range o.Refunds {
		sum += fen
	}
	return sum
}

// NetFen is what the order is worth after refunds, 0 until it is paid.
func (o Order) NetFen() int64 {
	if !o.Paid {
		return 0
	}
	return max(0, o.PaidFen-o.RefundedFen())
}

// Pay records the payment and returns the points it moves. allowance is what the member may still
// earn (the daily cap), negative for no limit. A second payment of the same order changes nothing
// (delta 0, changed false), whatever event id it arrives under.
func (o *Order) Pay(amountFen int64, earn Entitlement, allowance int64) (delta int64, changed bool, err error) {
	if amountFen < 0 {
		return 0, false, fmt.Errorf("paid amount %d fen is negative", amountFen)
	}
	if o.Paid {
		return 0, false, nil
	}
	o.Paid, o.PaidFen = true, amountFen
	o.Ceiling = earn(amountFen)
	if allowance >= 0 {
		o.Ceiling = min(o.Ceiling, allowance)
	}
	return o.settle(earn), true, nil
}

// Refund records one refund by its id and returns the points it moves (zero or negative).
// The same refund id twice changes nothing.
func (o *Order) Refund(refundID string, amountFen int64, earn Entitlement) (delta int64, changed bool, err error) {
	if amountFen < 0 {
		return 0, false, fmt.Errorf("refund %s amount %d fen is negative", refundID, amountFen)
	}
	if _, seen := o.Refunds[refundID]; seen {
		return 0, false, nil
	}
	if o.Refunds == nil {
		o.Refunds = map[string]int64{}
	}
	o.Refunds[refundID] = amountFen
	return o.settle(earn), true, nil
}

// settle moves AwardedPoints to what the order's net amount earns, within its ceiling, and returns
// the difference.
func (o *Order) settle(earn Entitlement) int64 {
	target := int64(0)
	if o.Paid {
		target = min(o.Ceiling, earn(o.NetFen()))
	}
	delta := target - o.AwardedPoints
	o.AwardedPoints = target
	return delta
}
