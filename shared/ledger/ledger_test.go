package ledger

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/amount"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNetPoints(t *testing.T) {
	tests := []struct {
		paid, refunded, want int64
	}{
		{129900, 0, 1299},
		{129999, 0, 1299},
		{99, 0, 0},
		{10000, 50, 99},
		{10000, 10000, 0},
		{10000, 20000, 0},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, NetPoints(tt.paid, tt.refunded, DefaultFenPerPoint), "paid %d refunded %d", tt.paid, tt.refunded)
	}
}

func TestOrderPayRefundSequences(t *testing.T) {
	type step struct {
		refundID  string // empty: payment
		fen       int64
		wantDelta int64
		wantNet   int64
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"pay then partial then full refund", []step{{"", 10000, 100, 10000}, {"r1", 2550, -26, 7450}, {"r2", 7450, -74, 0}}},
		{"duplicate payment is ignored", []step{{"", 10000, 100, 10000}, {"", 10000, 0, 10000}}},
		{"duplicate refund is ignored", []step{{"", 10000, 100, 10000}, {"r1", 5000, -50, 5000}, {"r1", 5000, 0, 5000}}},
		{"refund before payment waits", []step{{"r1", 3000, 0, 0}, {"", 10000, 70, 7000}}},
		{"over-refund floors at zero", []step{{"", 10000, 100, 10000}, {"r1", 8000, -80, 2000}, {"r2", 8000, -20, 0}}},
		{"refunds before payment over it are clamped", []step{{"r1", 8000, 0, 0}, {"r2", 8000, 0, 0}, {"", 10000, 0, 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o Order
			for i, s := range tt.steps {
				var delta int64
				var err error
				if s.refundID == "" {
					delta, _, err = o.Pay(s.fen, PerFen(DefaultFenPerPoint), -1)
				} else {
					delta, _, err = o.Refund(s.refundID, s.fen, PerFen(DefaultFenPerPoint))
				}
				require.NoError(t, err)
				assert.Equal(t, s.wantDelta, delta, "step %d: got delta, want", i)
				assert.Equal(t, s.wantNet, o.NetFen(), "step %d: got net, want", i)
			}
		})
	}
}

// TestOrderConvergesInAnyOrder delivers one payment and its refunds in random orders, with
// duplicates, and checks the awarded total always equals floor(net/100).
func TestOrderConvergesInAnyOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 500 {
		paid := rng.Int64N(500000)
		refunds := map[string]int64{}
		var refunded int64
		for i := range rng.IntN(4) {
			fen := rng.Int64N(paid/2 + 1)
			refunds[string(rune('a'+i))] = fen
			refunded += fen
		}
		type delivery struct {
			id  string
			fen int64
		}
		deliveries := []delivery{{"", paid}, {"", paid}}
		for id, fen := range refunds {
			deliveries = append(deliveries, delivery{id, fen}, delivery{id, fen})
		}
		rng.Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })
		var o Order
		var total int64
		for _, d := range deliveries {
			var delta int64
			var err error
			if d.id == "" {
				delta, _, err = o.Pay(d.fen, PerFen(DefaultFenPerPoint), -1)
			} else {
				delta, _, err = o.Refund(d.id, d.fen, PerFen(DefaultFenPerPoint))
			}
			require.NoError(t, err)
			total += delta
		}
		want := max(0, paid-refunded) / 100
		require.Equal(t, want, total, "trial %d: got total points, want floor(net/100)", trial)
	}
}

func TestNegativeAmountsAreRejected(t *testing.T) {
	var o Order
	_, _, err := o.Pay(-1, PerFen(DefaultFenPerPoint), -1)
	require.Error(t, err)
	_, _, err = o.Refund("r", -1, PerFen(DefaultFenPerPoint))
	require.Error(t, err)
}

// TestOrderAmountsAreBounded is the finding: two orders of 9 223 372 036 854 775 807 fen
// gave 40 000 points and crafted refunds a refundedFen of -999999899999. Amounts beyond MaxFen are
// refused before anything changes; refunds never count more than was paid.
func TestOrderAmountsAreBounded(t *testing.T) {
	earn := PerFen(DefaultFenPerPoint)
	var o Order
	_, _, err := o.Pay(math.MaxInt64, earn, -1)
	require.ErrorIs(t, err, amount.ErrOutOfBounds)
	assert.Equal(t, Order{}, o, "a refused payment leaves the order as it was")
	_, _, err = o.Pay(events.MaxFen+1, earn, -1)
	require.ErrorIs(t, err, amount.ErrOutOfBounds)

	delta, _, err := o.Pay(events.MaxFen, earn, -1)
	require.NoError(t, err)
	assert.Equal(t, events.MaxFen/100, delta)
	_, _, err = o.Refund("big", math.MaxInt64, earn)
	require.ErrorIs(t, err, amount.ErrOutOfBounds)
	for i := range 3 {
		_, _, err = o.Refund(fmt.Sprint("r", i), events.MaxFen, earn)
		require.NoError(t, err, "refund %d", i)
	}
	assert.Equal(t, events.MaxFen, o.RefundedFen(), "refunds count at most what was paid")
	assert.Equal(t, 2*events.MaxFen, o.RefundExcessFen, "and the excess is recorded")
	assert.Zero(t, o.NetFen())
	assert.Zero(t, o.AwardedPoints)

	var early Order
	_, _, err = early.Refund("r1", events.MaxFen, earn)
	require.NoError(t, err)
	_, _, err = early.Refund("r2", 1, earn)
	require.ErrorIs(t, err, amount.ErrOutOfBounds, "refunds before the payment cannot total more than any order")
	assert.Len(t, early.Refunds, 1, "the refused refund is not recorded")
}

// TestEntitlementOverflowIsAnError: an entitlement past MaxPoints is refused, never wrapped.
func TestEntitlementOverflowIsAnError(t *testing.T) {
	huge := func(int64) (int64, error) { return events.MaxPoints + 1, nil }
	var o Order
	_, _, err := o.Pay(100, huge, -1)
	require.ErrorIs(t, err, amount.ErrOutOfBounds)
	assert.False(t, o.Paid)
}
