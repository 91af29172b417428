package pointsaward

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/loyalty"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/store"
	"github.com/omnimember/omnimember/shared/store/embedded"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 11, 11, 0, 0, 0, 0, time.UTC)

const alice, bob = "om_aaaaaaaaaaaaaaaaaaaa", "om_bbbbbbbbbbbbbbbbbbbb"

// plainRules earn 1 point per yuan on every channel, with no caps, multipliers or campaigns.
func plainRules(t *testing.T, policy string) *loyalty.Rules {
	r, err := loyalty.Parse([]byte(`
version: plain
timezone: Asia/Shanghai
earning: {fenPerPoint: 100}
expiry: {months: 12, reminderDays: 30}
redemption: {minPoints: 1}
refunds: {afterRedemption: ` + policy + `}
tiers:
  basis: spend
  windowDays: 365
  evaluationDay: 1
  levels: [{name: member, min: 0}, {name: silver, min: 100000}, {name: gold, min: 300000}]
`))
	require.NoError(t, err)
	return r
}

func newHandler(t *testing.T) (*Handler, store.Store) {
	s, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"), embedded.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return &Handler{Store: s, Rules: plainRules(t, loyalty.RefundNegative), Now: func() time.Time { return t0 }}, s
}

func resolved(t *testing.T, id, oneID string, d events.IdentityResolvedData) cloudevents.Event {
	d.OneID, d.SourceID, d.Identities = oneID, "src-"+id, []events.Identity{{Type: "crm_id", Value: "c1"}}
	d.IdentityKeys = []string{crmKey}
	if d.Order != nil {
		d.SourceType = events.OrderPaid
		d.Order.Identities = d.Identities
	} else {
		d.SourceType = events.OrderRefunded
		d.Refund.Identities = d.Identities
	}
	ev, err := events.New(events.IdentityResolved, id, events.Source("match"), t0, d)
	require.NoError(t, err)
	return ev
}

// crmKey stands for the keyed document key match gives the crm_id c1.
const crmKey = "t1:0123456789abcdef0123456789abcdef01234567"

func paid(t *testing.T, id, oneID, orderID string, fen int64) cloudevents.Event {
	return resolved(t, id, oneID, events.IdentityResolvedData{Order: &events.OrderPaidData{
		OrderID: orderID, Channel: "tmall", ShopID: "s1", AmountFen: fen, PaidAt: t0}})
}

func refunded(t *testing.T, id, oneID, orderID, refundID string, fen int64) cloudevents.Event {
	return resolved(t, id, oneID, events.IdentityResolvedData{Refund: &events.OrderRefundedData{
		OrderID: orderID, RefundID: refundID, Channel: "tmall", AmountFen: fen, RefundedAt: t0}})
}

func merged(t *testing.T, id, survivor string, absorbed ...string) cloudevents.Event {
	ev, err := events.New(events.MemberMerged, id, events.Source("match"), t0, events.MemberMergedData{
		SurvivorOneID: survivor, AbsorbedOneIDs: absorbed, LinkedBy: []string{"phone"}, SourceID: "x", MergedAt: t0})
	require.NoError(t, err)
	return ev
}

func account(t *testing.T, s store.Store, oneID string) member.Account {
	var a member.Account
	require.NoError(t, s.Get(context.Background(), member.Accounts, oneID, &a))
	return a
}

// step delivers one event and says what should come out.
type step struct {
	ev          cloudevents.Event
	wantType    string // empty: no event
	wantPoints  int64
	wantBalance int64
}

func run(t *testing.T, h *Handler, steps []step) {
	t.Helper()
	for i, s := range steps {
		outs, err := h.Handle(context.Background(), s.ev)
		require.NoError(t, err, "step %d", i)
		if s.wantType == "" {
			assert.Empty(t, outs, "step %d: want no event", i)
			continue
		}
		require.Len(t, outs, 1, "step %d", i)
		require.Equal(t, s.wantType, outs[0].Type(), "step %d", i)
		require.NoError(t, events.Validate(outs[0]))
		var points, balance int64
		if s.wantType == events.PointsAwarded {
			d, err := events.Decode[events.PointsAwardedData](outs[0])
			require.NoError(t, err)
			points, balance = d.Points, d.Balance
		} else {
			d, err := events.Decode[events.PointsReversedData](outs[0])
			require.NoError(t, err)
			points, balance = d.Points, d.Balance
		}
		assert.Equal(t, s.wantPoints, points, "step %d: got points, want", i)
		assert.Equal(t, s.wantBalance, balance, "step %d: got balance, want", i)
	}
}

type totals struct{ Balance, OrderCount, NetAmountFen int64 }

func want(balance, orders, net int64) totals { return totals{balance, orders, net} }

func TestOrdersRefundsAndDuplicates(t *testing.T) {
	tests := []struct {
		name     string
		steps    func(t *testing.T) []step
		wantAcct totals
	}{
		{"order earns floor(fen/100)", func(t *testing.T) []step {
			return []step{{paid(t, "e1", alice, "o1", 129999), events.PointsAwarded, 1299, 1299}}
		}, want(1299, 1, 129999)},
		{"same order under another event id earns once", func(t *testing.T) []step {
			return []step{{paid(t, "e1", alice, "o1", 10000), events.PointsAwarded, 100, 100},
				{paid(t, "e2", alice, "o1", 10000), "", 0, 0}}
		}, want(100, 1, 10000)},
		{"partial then full refund reverse down to net", func(t *testing.T) []step {
			return []step{{paid(t, "e1", alice, "o1", 10000), events.PointsAwarded, 100, 100},
				{refunded(t, "e2", alice, "o1", "r1", 2550), events.PointsReversed, 26, 74},
				{refunded(t, "e3", alice, "o1", "r1", 2550), "", 0, 0},
				{refunded(t, "e4", alice, "o1", "r2", 7450), events.PointsReversed, 74, 0}}
		}, want(0, 1, 0)},
		{"refund before its order waits for it", func(t *testing.T) []step {
			return []step{{refunded(t, "e1", alice, "o1", "r1", 3000), "", 0, 0},
				{paid(t, "e2", alice, "o1", 10000), events.PointsAwarded, 70, 70}}
		}, want(70, 1, 7000)},
		{"small refund moves spend but no points", func(t *testing.T) []step {
			return []step{{paid(t, "e1", alice, "o1", 10050), events.PointsAwarded, 100, 100},
				{refunded(t, "e2", alice, "o1", "r1", 50), events.PointsReversed, 0, 100}}
		}, want(100, 1, 10000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, s := newHandler(t)
			run(t, h, tt.steps(t))
			got := account(t, s, alice)
			assertLotsMakeTheBalance(t, got)
			assert.Equal(t, []int64{tt.wantAcct.Balance, tt.wantAcct.OrderCount, tt.wantAcct.NetAmountFen}, []int64{got.Balance, got.OrderCount, got.NetAmountFen},
				"got balance, orders, net; want")
		})
	}
}

func TestRedeliveryReturnsTheSameEventWithoutRepeatingTheEffect(t *testing.T) {
	h, s := newHandler(t)
	ev := paid(t, "e1", alice, "o1", 50000)
	first, err := h.Handle(context.Background(), ev)
	require.NoError(t, err)
	second, err := h.Handle(context.Background(), ev)
	require.NoError(t, err)
	require.Len(t, second, 1)
	assert.Equal(t, first[0].ID(), second[0].ID())
	assert.JSONEq(t, string(first[0].Data()), string(second[0].Data()))
	assert.Equal(t, int64(500), account(t, s, alice).Balance)
}

func TestMergeMovesBalancesOnceAndRedirectsLaterOrders(t *testing.T) {
	h, s := newHandler(t)
	run(t, h, []step{
		{paid(t, "e1", alice, "o1", 30000), events.PointsAwarded, 300, 300},
		{paid(t, "e2", bob, "o2", 20000), events.PointsAwarded, 200, 200},
		{merged(t, "m1", alice, bob), "", 0, 0},
		{merged(t, "m1", alice, bob), "", 0, 0},  // redelivered
		{merged(t, "m1b", alice, bob), "", 0, 0}, // the same merge reported again
		// An order resolved to bob before the merge, delivered after it, lands on alice.
		{paid(t, "e3", bob, "o3", 10000), events.PointsAwarded, 100, 600},
	})
	a := account(t, s, alice)
	assert.Equal(t, int64(600), a.Balance)
	assert.Equal(t, int64(3), a.OrderCount)
	assert.Equal(t, int64(60000), a.NetAmountFen)
	b := account(t, s, bob)
	assert.Equal(t, alice, b.MergedInto)
	assert.Zero(t, b.Balance)
}

func TestLedgerBalanceEqualsSumOfEntries(t *testing.T) {
	h, s := newHandler(t)
	run(t, h, []step{
		{paid(t, "e1", alice, "o1", 30000), events.PointsAwarded, 300, 300},
		{paid(t, "e2", bob, "o2", 20000), events.PointsAwarded, 200, 200},
		{refunded(t, "e3", alice, "o1", "r1", 10000), events.PointsReversed, 100, 200},
		{merged(t, "m1", alice, bob), "", 0, 0},
	})
	docs, err := s.Query(context.Background(), store.Query{Collection: member.LedgerEntries})
	require.NoError(t, err)
	sums := map[string]int64{}
	for _, d := range docs {
		var e entry
		require.NoError(t, d.DataTo(&e))
		sums[e.OneID] += e.Delta
	}
	assert.Equal(t, account(t, s, alice).Balance, sums[alice], "alice: balance equals the sum of her entries")
	assert.Equal(t, account(t, s, bob).Balance, sums[bob], "bob: balance equals the sum of his entries")
}

func assertLotsMakeTheBalance(t *testing.T, a member.Account) {
	t.Helper()
	require.NoError(t, a.Check(), "ledger invariants")
}

func paidOn(t *testing.T, id, oneID, orderID string, fen int64, at time.Time) cloudevents.Event {
	return resolved(t, id, oneID, events.IdentityResolvedData{Order: &events.OrderPaidData{
		OrderID: orderID, Channel: "tmall", ShopID: "s1", AmountFen: fen, PaidAt: at}})
}

func TestLotsExpireAYearAfterPaymentAndRefundsTakeTheirOwnLot(t *testing.T) {
	h, s := newHandler(t)
	march := time.Date(2026, 3, 31, 10, 0, 0, 0, time.UTC)
	june := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	run(t, h, []step{
		{paidOn(t, "e1", alice, "june", 20000, june), events.PointsAwarded, 200, 200},
		{paidOn(t, "e2", alice, "march", 10000, march), events.PointsAwarded, 100, 300},
		{refunded(t, "e3", alice, "june", "r1", 5000), events.PointsReversed, 50, 250},
	})
	a := account(t, s, alice)
	assertLotsMakeTheBalance(t, a)
	require.Len(t, a.Lots, 2)
	assert.Equal(t, "march", a.Lots[0].OrderID, "the older lot expires first")
	assert.True(t, time.Date(2027, 3, 31, 10, 0, 0, 0, time.UTC).Equal(a.Lots[0].ExpiresAt), "got %s", a.Lots[0].ExpiresAt)
	assert.Equal(t, int64(100), a.Lots[0].Remaining, "the refund did not touch another order's lot")
	assert.Equal(t, int64(150), a.Lots[1].Remaining)

	run(t, h, []step{
		{paid(t, "e4", bob, "bobs", 40000), events.PointsAwarded, 400, 400},
		{merged(t, "m1", alice, bob), "", 0, 0},
	})
	a = account(t, s, alice)
	assertLotsMakeTheBalance(t, a)
	assert.Len(t, a.Lots, 3, "a merge brings the absorbed member's lots")
}

func TestLastOrderAtFollowsPaymentsAndMerges(t *testing.T) {
	h, s := newHandler(t)
	later := t0.Add(48*time.Hour + 500*time.Millisecond)
	run(t, h, []step{
		{paidOn(t, "e1", alice, "o1", 30000, t0), events.PointsAwarded, 300, 300},
		{paidOn(t, "e2", bob, "o2", 20000, later), events.PointsAwarded, 200, 200},
	})
	var od member.Order
	require.NoError(t, s.Get(context.Background(), member.Orders, member.OrderKey("tmall", "o2"), &od))
	require.NotNil(t, od.PaidAtUTC, "segments select orders of a window by paidAtUtc")
	assert.Equal(t, member.IndexTime(later), *od.PaidAtUTC)
	run(t, h, []step{{merged(t, "m1", alice, bob), "", 0, 0}})
	a, b := account(t, s, alice), account(t, s, bob)
	require.NotNil(t, a.LastOrderAt)
	assert.Equal(t, member.IndexTime(later), *a.LastOrderAt, "got survivor's last order, want the later of both")
	assert.Nil(t, b.LastOrderAt, "an absorbed account leaves the segment indexes")
}
