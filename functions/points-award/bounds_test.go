package pointsaward

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOverflowingOrdersAreRefusedBeforeAnythingIsWritten is the finding: two orders of
// 9 223 372 036 854 775 807 fen (sent straight to the bus, past ingest) gave 40 000 points, diamond
// and a netSpendFen of -2. Now each is a permanent error and the store keeps nothing of it.
func TestOverflowingOrdersAreRefusedBeforeAnythingIsWritten(t *testing.T) {
	h, s := newHandler(t)
	for i := range 2 {
		_, err := h.Handle(context.Background(), paid(t, fmt.Sprint("max-", i), alice, fmt.Sprint("MAX-", i), math.MaxInt64))
		require.Error(t, err)
		assert.True(t, runtime.IsPermanent(err), "got %v, want a permanent error (dead letter, no retry)", err)
	}
	err := s.Get(context.Background(), member.Accounts, alice, &member.Account{})
	require.ErrorIs(t, err, store.ErrNotFound, "no account was written")
	var o member.Order
	err = s.Get(context.Background(), member.Orders, orderKey("tmall", "MAX-0"), &o)
	require.ErrorIs(t, err, store.ErrNotFound, "no order was written")
}

// TestCraftedRefundsNeverCountMoreThanWasPaid is the finding: crafted refunds gave
// refundedFen -999999899999. Refunds of the largest amount each now count up to the payment, the
// excess is noted in the ledger, and the points go to zero, never below.
func TestCraftedRefundsNeverCountMoreThanWasPaid(t *testing.T) {
	h, s := newHandler(t)
	run(t, h, []step{
		{ev: paid(t, "p", alice, "O-1", 100_000), wantType: events.PointsAwarded, wantPoints: 1000, wantBalance: 1000},
		{ev: refunded(t, "r1", alice, "O-1", "r1", events.MaxFen), wantType: events.PointsReversed, wantPoints: 1000, wantBalance: 0},
		{ev: refunded(t, "r2", alice, "O-1", "r2", events.MaxFen), wantType: events.PointsReversed, wantPoints: 0, wantBalance: 0},
	})
	var o member.Order
	require.NoError(t, s.Get(context.Background(), member.Orders, orderKey("tmall", "O-1"), &o))
	assert.Equal(t, int64(100_000), o.RefundedFen(), "refunds count up to the payment")
	assert.Equal(t, 2*events.MaxFen-100_000, o.RefundExcessFen, "the excess is recorded")
	assert.Zero(t, o.NetFen())
	a := account(t, s, alice)
	assert.Zero(t, a.NetAmountFen)
	assert.Zero(t, a.Balance)

	_, err := h.Handle(context.Background(), refunded(t, "r3", alice, "O-1", "r3", math.MaxInt64))
	require.Error(t, err)
	assert.True(t, runtime.IsPermanent(err), "a refund past the largest amount is dead-lettered with the reason")
}

// TestRefundsBeforeTheirOrderAreBounded: refunds waiting for a payment cannot total more than any
// order could be; once it arrives, they count up to it.
func TestRefundsBeforeTheirOrderAreBounded(t *testing.T) {
	h, _ := newHandler(t)
	run(t, h, []step{
		{ev: refunded(t, "r1", alice, "O-2", "r1", events.MaxFen)},
	})
	_, err := h.Handle(context.Background(), refunded(t, "r2", alice, "O-2", "r2", 1))
	require.Error(t, err)
	assert.True(t, runtime.IsPermanent(err))
	run(t, h, []step{
		{ev: paid(t, "p", alice, "O-2", 50_000), wantType: events.PointsAwarded, wantPoints: 0, wantBalance: 0},
	})
}

// TestAnOutputTheSchemaRefusesCommitsNothing: whatever the arithmetic, a handler's output is
// validated before its transaction commits, so store and stream cannot disagree.
func TestAnOutputTheSchemaRefusesCommitsNothing(t *testing.T) {
	h, s := newHandler(t)
	ev := paid(t, "bad-shop", alice, "O-3", 10_000)
	d, err := events.Decode[events.IdentityResolvedData](ev)
	require.NoError(t, err)
	d.Order.ShopID = "" // points.awarded requires a non-empty shopId
	ev, err = events.New(events.IdentityResolved, "bad-shop", events.Source("match"), t0, d)
	require.NoError(t, err)
	_, err = h.Handle(context.Background(), ev)
	var fe *events.FieldError
	require.True(t, errors.As(err, &fe), "got %v, want the output's bad field", err)
	assert.Equal(t, "data.shopId", fe.Field)
	assert.True(t, runtime.IsPermanent(err))
	err = s.Get(context.Background(), member.Accounts, alice, &member.Account{})
	require.ErrorIs(t, err, store.ErrNotFound, "the transaction committed nothing")
}

// TestAnOrderPaidInTheYear9999IsPermanent is the finding: paidAt in year 9999 was retried
// forever (its lot's expiry does not encode). Ingest refuses it; one that still arrives is dead-
// lettered at once, nothing written.
func TestAnOrderPaidInTheYear9999IsPermanent(t *testing.T) {
	h, s := newHandler(t)
	ev := resolved(t, "y9999", alice, events.IdentityResolvedData{Order: &events.OrderPaidData{
		OrderID: "Y", Channel: "tmall", ShopID: "s1", AmountFen: 100, PaidAt: time.Date(9999, 6, 1, 0, 0, 0, 0, time.UTC)}})
	_, err := h.Handle(context.Background(), ev)
	require.Error(t, err)
	assert.True(t, runtime.IsPermanent(err), "got %v", err)
	require.ErrorIs(t, s.Get(context.Background(), member.Accounts, alice, &member.Account{}), store.ErrNotFound)
}
