package ledger

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/amount"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var day0 = time.Date(2026, 1, 31, 23, 30, 0, 0, time.FixedZone("CST", 8*3600))

func TestEarnReverseRedeemExpire(t *testing.T) {
	for _, policy := range []string{Negative, Clawback} {
		t.Run(policy, func(t *testing.T) {
			a := Account{Policy: policy}
			mustEarn(t, &a, Lot{ID: "march", ExpiresAt: day0.AddDate(0, 2, 0)}, 100)
			mustEarn(t, &a, Lot{ID: "jan", ExpiresAt: day0}, 50)
			require.NoError(t, a.Check())
			assert.Equal(t, "jan", a.Lots[0].ID, "oldest expiry first")

			spent, err := a.Redeem(120)
			require.NoError(t, err)
			assert.Equal(t, []int64{50, 70}, []int64{spent[0].Points, spent[1].Points}, "the January lot goes first")
			_, err = a.Redeem(31)
			require.ErrorIs(t, err, ErrInsufficient)

			// The March order is refunded in full after most of it was spent.
			fromLot, owed, err := a.Reverse("march", 100)
			require.NoError(t, err)
			assert.Equal(t, []int64{30, 70}, []int64{fromLot, owed}, "what was spent becomes debt, never lost")
			require.NoError(t, a.Check())
			wantBalance := map[string]int64{Negative: -70, Clawback: 0}[policy]
			assert.Equal(t, wantBalance, a.Balance)

			repaid := mustEarn(t, &a, Lot{ID: "april", ExpiresAt: day0.AddDate(0, 3, 0)}, 100)
			assert.Equal(t, int64(70), repaid, "the next earnings repay the debt first")
			assert.Equal(t, int64(30), a.Balance)
			assert.Zero(t, a.Debt)

			require.NoError(t, a.Restore(spent))
			require.NoError(t, a.Check())
			assert.Equal(t, int64(150), a.Balance)
			gone, err := a.Expire(day0)
			require.NoError(t, err)
			require.Len(t, gone, 1)
			assert.Equal(t, "jan", gone[0].ID, "only the lot due at asOf expires")
			assert.Equal(t, int64(100), a.Balance)
		})
	}
}

// model is an independent, plain implementation of the points rules, to check Account against.
type model struct {
	policy  string
	orders  map[string]*modelOrder
	redeems [][2]int64 // [points, active]
	expired int64
}

type modelOrder struct {
	paid      bool
	paidFen   int64
	refunds   map[string]int64
	expiresAt time.Time
}

func (m *model) target(id string) int64 {
	o := m.orders[id]
	if o == nil || !o.paid {
		return 0
	}
	net := o.paidFen
	for _, r := range o.refunds {
		net -= r
	}
	return max(0, net) / 100
}

// position is what the member is worth: everything earned minus what was spent and what expired.
func (m *model) position() int64 {
	var p int64
	for id := range m.orders {
		p += m.target(id)
	}
	for _, r := range m.redeems {
		p -= r[0] * r[1]
	}
	return p - m.expired
}

// TestRandomHistoriesKeepTheBooks replays random interleavings of payments, refunds (some before
// their payment, some twice), redemptions, reversals and expiries, on an Order/Account pair and on
// the plain model, checking the invariants after every step and the net position at the end.
func TestRandomHistoriesKeepTheBooks(t *testing.T) {
	for seed := range uint64(300) {
		policy := []string{Negative, Clawback}[seed%2]
		rng := rand.New(rand.NewPCG(seed, 99))
		acct := Account{Policy: policy}
		orders := map[string]*Order{}
		m := &model{policy: policy, orders: map[string]*modelOrder{}}
		var spent [][]Spent
		now := day0
		for step := range 60 {
			now = now.Add(time.Duration(rng.IntN(72)) * time.Hour)
			id := fmt.Sprint("o", rng.IntN(8))
			if orders[id] == nil {
				orders[id] = &Order{}
				m.orders[id] = &modelOrder{refunds: map[string]int64{}, expiresAt: now.AddDate(0, 1, 0)}
			}
			o, mo := orders[id], m.orders[id]
			lot := Lot{ID: id, OrderID: id, EarnedAt: now, ExpiresAt: mo.expiresAt}
			switch op := rng.IntN(10); {
			case op < 3: // pay (maybe again)
				fen := 1000 + rng.Int64N(50000)
				if mo.paid {
					fen = mo.paidFen
				}
				delta, _, err := o.Pay(fen, PerFen(100), -1)
				require.NoError(t, err)
				mo.paid, mo.paidFen = true, fen
				require.NoError(t, acct.apply(lot, delta))
			case op < 5: // refund, maybe a duplicate refund id
				rid := fmt.Sprint(id, "-r", rng.IntN(2))
				fen := rng.Int64N(20000)
				if prev, seen := mo.refunds[rid]; seen {
					fen = prev
				}
				delta, _, err := o.Refund(rid, fen, PerFen(100))
				require.NoError(t, err)
				mo.refunds[rid] = fen
				require.NoError(t, acct.apply(lot, delta))
			case op < 7: // redeem
				n := 1 + rng.Int64N(300)
				s, err := acct.Redeem(n)
				if err == nil {
					spent = append(spent, s)
					m.redeems = append(m.redeems, [2]int64{n, 1})
				} else {
					require.ErrorIs(t, err, ErrInsufficient)
				}
			case op < 8 && len(spent) > 0: // reverse a redemption once
				k := rng.IntN(len(spent))
				if m.redeems[k][1] == 1 {
					require.NoError(t, acct.Restore(spent[k]))
					m.redeems[k][1] = 0
				}
			default: // expire what is due
				gone, err := acct.Expire(now)
				require.NoError(t, err)
				for _, l := range gone {
					m.expired += l.Remaining
				}
			}
			require.NoError(t, acct.Check(), "seed %d step %d", seed, step)
			require.Equal(t, m.position(), netPosition(acct), "seed %d step %d: got net position, want the model's", seed, step)
		}
	}
}

// apply moves an order's delta through the account as points-award does.
func (a *Account) apply(lot Lot, delta int64) error {
	var err error
	switch {
	case delta > 0:
		_, err = a.Earn(lot, delta)
	case delta < 0:
		_, _, err = a.Reverse(lot.ID, -delta)
	}
	return err
}

func mustEarn(t *testing.T, a *Account, lot Lot, points int64) int64 {
	t.Helper()
	repaid, err := a.Earn(lot, points)
	require.NoError(t, err)
	return repaid
}

func netPosition(a Account) int64 {
	var sum int64
	for _, l := range a.Lots {
		sum += l.Remaining
	}
	return sum - a.Debt
}

func TestAbsorbAndTake(t *testing.T) {
	a := Account{Policy: Negative}
	b := Account{Policy: Negative}
	mustEarn(t, &a, Lot{ID: "a1", ExpiresAt: day0.AddDate(0, 1, 0)}, 10)
	mustEarn(t, &b, Lot{ID: "b1", ExpiresAt: day0}, 20)
	_, _, err := b.Reverse("b1", 25)
	require.NoError(t, err)
	require.NoError(t, a.Absorb(b))
	require.NoError(t, a.Check())
	assert.Equal(t, int64(5), a.Debt)
	assert.Equal(t, int64(5), a.Balance)
	l, ok, err := a.Take("a1")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, int64(10), l.Remaining)
	assert.False(t, slices.ContainsFunc(a.Lots, func(x Lot) bool { return x.ID == "a1" }))
	require.NoError(t, a.Check())
}

// TestAccountRefusesSumsPastTheBounds: a balance never wraps; what would leave ±MaxTotal is an
// error and the caller's transaction writes nothing.
func TestAccountRefusesSumsPastTheBounds(t *testing.T) {
	a := Account{Policy: Negative}
	for i := range events.MaxTotal / events.MaxPoints {
		mustEarn(t, &a, Lot{ID: fmt.Sprint("o", i), ExpiresAt: day0}, events.MaxPoints)
	}
	assert.Equal(t, events.MaxTotal, a.Balance)
	_, err := a.Earn(Lot{ID: "one-more", ExpiresAt: day0}, 1)
	require.ErrorIs(t, err, amount.ErrOutOfBounds)
	_, err = a.Earn(Lot{ID: "huge", ExpiresAt: day0}, math.MaxInt64)
	require.ErrorIs(t, err, amount.ErrOutOfBounds, "points one event moves are bounded")
	_, _, err = a.Reverse("x", events.MaxPoints+1)
	require.ErrorIs(t, err, amount.ErrOutOfBounds)

	b := Account{Policy: Negative}
	mustEarn(t, &b, Lot{ID: "b", ExpiresAt: day0}, 1)
	c := Account{Policy: Negative}
	for i := range events.MaxTotal / events.MaxPoints {
		mustEarn(t, &c, Lot{ID: fmt.Sprint("c", i), ExpiresAt: day0}, events.MaxPoints)
	}
	require.ErrorIs(t, b.Absorb(c), amount.ErrOutOfBounds, "a merge past the bound is refused")
}
