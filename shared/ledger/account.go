package ledger

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/omnimember/omnimember/shared/amount"
)

// Lot is the points one order earned, spent and expired first in, first out (oldest expiry first).
type Lot struct {
	ID        string    `json:"id"`
	OrderID   string    `json:"orderId"`
	Channel   string    `json:"channel"`
	Earned    int64     `json:"earned"`
	Remaining int64     `json:"remaining"`
	EarnedAt  time.Time `json:"earnedAt"`
	ExpiresAt time.Time `json:"expiresAt"`
	Reminded  bool      `json:"reminded,omitempty"`
}

// Policies for points a refund takes back after they were spent.
const (
	// Negative: the shortfall is subtracted from the balance, which may go below zero.
	Negative = "negative"
	// Clawback: the balance stays the sum of the lots; the shortfall is owed and repaid first
	// from the next earnings.
	Clawback = "clawback"
)

// Account is a member's points: lots, and what refunds took back after the points were spent
// (Debt). Earnings always repay Debt first. Balance = Σ lots' Remaining − Debt under Negative,
// Σ lots' Remaining under Clawback.
type Account struct {
	Balance int64  `json:"balance"`
	Lots    []Lot  `json:"lots,omitempty"`
	Debt    int64  `json:"debt,omitempty"`
	Policy  string `json:"policy,omitempty"`
}

// ErrInsufficient is a redemption larger than the balance.
var ErrInsufficient = errors.New("insufficient points")

// Spent is what a redemption took from one lot, kept so the redemption can be reversed exactly.
type Spent struct {
	LotID     string    `json:"lotId"`
	Points    int64     `json:"points"`
	OrderID   string    `json:"orderId"`
	Channel   string    `json:"channel"`
	EarnedAt  time.Time `json:"earnedAt"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// Earn credits points to the order's lot (creating it from lot), after repaying any debt first.
// It returns how much went to the debt. Points beyond events.MaxPoints, or a lot or balance
// beyond events.MaxTotal, are an error wrapping amount.ErrOutOfBounds (the caller's transaction
// then writes nothing).
func (a *Account) Earn(lot Lot, points int64) (repaid int64, err error) {
	if points <= 0 {
		return 0, nil
	}
	if err := amount.Points("earned", points); err != nil {
		return 0, err
	}
	repaid = min(points, a.Debt)
	a.Debt -= repaid
	credit := points - repaid
	i := slices.IndexFunc(a.Lots, func(l Lot) bool { return l.ID == lot.ID })
	if i < 0 {
		lot.Earned, lot.Remaining = 0, 0
		a.Lots = append(a.Lots, lot)
		i = len(a.Lots) - 1
	}
	if a.Lots[i].Earned, err = amount.Add(a.Lots[i].Earned, points); err != nil {
		return 0, err
	}
	if a.Lots[i].Remaining, err = amount.Add(a.Lots[i].Remaining, credit); err != nil {
		return 0, err
	}
	return repaid, a.settle()
}

// Reverse takes points back from the order's lot; what the lot no longer holds (it was spent or
// expired) becomes debt, never lost. It returns how much came from the lot and how much is owed.
func (a *Account) Reverse(lotID string, points int64) (fromLot, owed int64, err error) {
	if points <= 0 {
		return 0, 0, nil
	}
	if err := amount.Points("reversed", points); err != nil {
		return 0, 0, err
	}
	if i := slices.IndexFunc(a.Lots, func(l Lot) bool { return l.ID == lotID }); i >= 0 {
		fromLot = min(points, a.Lots[i].Remaining)
		a.Lots[i].Remaining -= fromLot
	}
	owed = points - fromLot
	if a.Debt, err = amount.Add(a.Debt, owed); err != nil {
		return 0, 0, err
	}
	return fromLot, owed, a.settle()
}

// Redeem spends points from the lots that expire first. It refuses more than the balance.
func (a *Account) Redeem(points int64) ([]Spent, error) {
	if points <= 0 {
		return nil, fmt.Errorf("redeem %d points: want a positive number", points)
	}
	if points > a.Balance {
		return nil, fmt.Errorf("%w: balance %d, asked %d", ErrInsufficient, a.Balance, points)
	}
	var spent []Spent
	left := points
	for i := range a.Lots {
		if left == 0 {
			break
		}
		take := min(left, a.Lots[i].Remaining)
		if take == 0 {
			continue
		}
		l := &a.Lots[i]
		l.Remaining -= take
		left -= take
		spent = append(spent, Spent{LotID: l.ID, Points: take, OrderID: l.OrderID, Channel: l.Channel, EarnedAt: l.EarnedAt, ExpiresAt: l.ExpiresAt})
	}
	if left > 0 {
		// Under Negative the balance already counts the debt; lots cannot cover more than they hold.
		return nil, fmt.Errorf("%w: lots hold %d less than the balance says", ErrInsufficient, left)
	}
	return spent, a.settle()
}

// Restore puts a reversed redemption's points back into the lots they came from (recreating a lot
// that was emptied), so they expire when they would have.
func (a *Account) Restore(spent []Spent) error {
	for _, s := range spent {
		i := slices.IndexFunc(a.Lots, func(l Lot) bool { return l.ID == s.LotID })
		if i < 0 {
			a.Lots = append(a.Lots, Lot{ID: s.LotID, OrderID: s.OrderID, Channel: s.Channel, EarnedAt: s.EarnedAt, ExpiresAt: s.ExpiresAt})
			i = len(a.Lots) - 1
		}
		var err error
		if a.Lots[i].Remaining, err = amount.Add(a.Lots[i].Remaining, s.Points); err != nil {
			return err
		}
		a.Lots[i].Earned = max(a.Lots[i].Earned, a.Lots[i].Remaining)
	}
	return a.settle()
}

// Expire removes the points of lots whose expiry is at or before asOf and returns those lots as
// they were.
func (a *Account) Expire(asOf time.Time) ([]Lot, error) {
	var gone []Lot
	for i := range a.Lots {
		if !a.Lots[i].ExpiresAt.After(asOf) && a.Lots[i].Remaining > 0 {
			gone = append(gone, a.Lots[i])
			a.Lots[i].Remaining = 0
		}
	}
	return gone, a.settle()
}

// Absorb takes over another account's lots and debt (a merge). Sums beyond events.MaxTotal are
// an error wrapping amount.ErrOutOfBounds.
func (a *Account) Absorb(b Account) error {
	a.Lots = append(a.Lots, b.Lots...)
	var err error
	if a.Debt, err = amount.Add(a.Debt, b.Debt); err != nil {
		return err
	}
	return a.settle()
}

// Take removes one lot and returns it (a split moving an order away).
func (a *Account) Take(lotID string) (Lot, bool, error) {
	i := slices.IndexFunc(a.Lots, func(l Lot) bool { return l.ID == lotID })
	if i < 0 {
		return Lot{}, false, nil
	}
	l := a.Lots[i]
	a.Lots = slices.Delete(a.Lots, i, i+1)
	return l, true, a.settle()
}

// Put adds a lot taken from another account; a balance beyond events.MaxTotal is an error.
func (a *Account) Put(l Lot) error {
	a.Lots = append(a.Lots, l)
	return a.settle()
}

// NextExpiry is the earliest expiry of a lot that still holds points.
func (a *Account) NextExpiry() (time.Time, bool) {
	if len(a.Lots) == 0 {
		return time.Time{}, false
	}
	return a.Lots[0].ExpiresAt, true
}

// settle drops empty lots, keeps the rest oldest expiry first, and recomputes the balance with
// checked sums: a balance beyond ±events.MaxTotal is an error wrapping amount.ErrOutOfBounds.
func (a *Account) settle() error {
	a.Lots = slices.DeleteFunc(a.Lots, func(l Lot) bool { return l.Remaining <= 0 })
	slices.SortStableFunc(a.Lots, func(x, y Lot) int {
		if c := x.ExpiresAt.Compare(y.ExpiresAt); c != 0 {
			return c
		}
		return x.EarnedAt.Compare(y.EarnedAt)
	})
	var sum int64
	for _, l := range a.Lots {
		var err error
		if sum, err = amount.Add(sum, l.Remaining); err != nil {
			return fmt.Errorf("balance: %w", err)
		}
	}
	if a.Policy != Clawback {
		var err error
		if sum, err = amount.Sub(sum, a.Debt); err != nil {
			return fmt.Errorf("balance: %w", err)
		}
	}
	a.Balance = sum
	return nil
}

// Check verifies the account's invariants, for tests and audits.
func (a Account) Check() error {
	var sum int64
	for i, l := range a.Lots {
		if l.Remaining <= 0 || l.Remaining > l.Earned {
			return fmt.Errorf("lot %s holds %d of %d earned", l.ID, l.Remaining, l.Earned)
		}
		if i > 0 && l.ExpiresAt.Before(a.Lots[i-1].ExpiresAt) {
			return fmt.Errorf("lot %s expires before the lot ahead of it", l.ID)
		}
		sum += l.Remaining
	}
	want := sum
	if a.Policy != Clawback {
		want -= a.Debt
	}
	if a.Balance != want || a.Debt < 0 {
		return fmt.Errorf("balance %d, lots %d, debt %d, policy %q", a.Balance, sum, a.Debt, a.Policy)
	}
	return nil
}
