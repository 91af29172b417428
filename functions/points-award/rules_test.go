package pointsaward

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/broker/brokertest"
	"github.com/omnimember/omnimember/shared/loyalty"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
	"github.com/omnimember/omnimember/shared/store/embedded"
	"github.com/omnimember/omnimember/shared/store/firestore"
	"github.com/omnimember/omnimember/shared/store/firestore/firestoretest"
	"github.com/omnimember/omnimember/shared/stream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { firestoretest.Main(m) }

// eachStore runs a test on the embedded store and on Firestore (the emulator).
func eachStore(t *testing.T, test func(t *testing.T, s Store)) {
	t.Run("embedded", func(t *testing.T) {
		s, err := embedded.Open(t.TempDir()+"/store.db", embedded.Options{Indexes: member.Indexes})
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		test(t, s)
	})
	t.Run("firestore", func(t *testing.T) {
		firestoretest.Host(t)
		s, err := firestore.Open(context.Background(), firestore.Config{ProjectID: firestoretest.ProjectID(t)})
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		test(t, s)
	})
}

// api serves points-award's HTTP routes with a real JetStream behind its publisher.
type api struct {
	h   *Handler
	url string
	js  jetstream.JetStream
	pub *runtime.Publisher
}

func newAPI(t *testing.T, s Store, rules *loyalty.Rules, now *time.Time) *api {
	h := &Handler{Store: s, Rules: rules, Now: func() time.Time { return *now }, APIToken: "pos-token", AdminToken: "ops-token"}
	srv := brokertest.Start(t)
	rt, err := runtime.New(context.Background(), runtime.Defaults(), brokertest.Connect(t, srv), slog.New(slog.NewJSONHandler(io.Discard, nil)))
	require.NoError(t, err)
	mux := http.NewServeMux()
	pub := rt.Publisher(Name)
	h.Routes(mux, pub)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return &api{h: h, url: hs.URL, js: rt.JetStream(), pub: pub}
}

func (a *api) post(t *testing.T, path, token, body string, into any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, a.url+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	if into != nil {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(into))
	}
	return resp.StatusCode
}

func (a *api) handle(t *testing.T, ev cloudevents.Event) []cloudevents.Event {
	t.Helper()
	outs, err := a.h.Handle(context.Background(), ev)
	require.NoError(t, err)
	return outs
}

func accountOf(t *testing.T, s Store, oneID string) member.Account {
	var a member.Account
	require.NoError(t, s.RunTransaction(context.Background(), func(_ context.Context, tx store.Tx) error {
		return tx.Get(member.Accounts, oneID, &a)
	}))
	return a
}

func TestRedemptionsAnywhereOnceAndReversible(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		now := t0
		a := newAPI(t, s, plainRules(t, loyalty.RefundNegative), &now)
		a.handle(t, paid(t, "e1", alice, "o1", 50000))
		var red Redemption
		body := `{"idempotencyKey":"pos-12-receipt-7","channel":"pos","points":200,"note":"lipstick"}`
		require.Equal(t, http.StatusCreated, a.post(t, "/v1/members/"+alice+"/redemptions", "pos-token", body, &red))
		assert.Equal(t, int64(300), red.BalanceAfter)
		require.Equal(t, http.StatusOK, a.post(t, "/v1/members/"+alice+"/redemptions", "pos-token", body, &red), "the same key twice")
		assert.Equal(t, int64(300), accountOf(t, s, alice).Balance, "redeemed once")

		var conflict map[string]any
		require.Equal(t, http.StatusConflict, a.post(t, "/v1/members/"+alice+"/redemptions", "pos-token",
			`{"idempotencyKey":"k2","channel":"app","points":301}`, &conflict))
		assert.Equal(t, "points", conflict["field"])
		assert.Equal(t, float64(300), conflict["balance"])
		for _, bad := range []struct{ body, field string }{
			{`{"channel":"pos","points":5}`, "idempotencyKey"},
			{`{"idempotencyKey":"k","channel":"ebay","points":5}`, "channel"},
			{`{"idempotencyKey":"k","channel":"pos","points":0}`, "points"},
			{`{"idempotencyKey":"k","channel":"pos","points":"5"}`, "body"},
		} {
			var eb runtime.ErrorBody
			require.Equal(t, http.StatusBadRequest, a.post(t, "/v1/members/"+alice+"/redemptions", "pos-token", bad.body, &eb), bad.body)
			assert.Equal(t, bad.field, eb.Field)
		}
		assert.Equal(t, http.StatusUnauthorized, a.post(t, "/v1/members/"+alice+"/redemptions", "wrong", body, nil))

		require.Equal(t, http.StatusOK, a.post(t, "/v1/members/"+alice+"/redemptions/"+red.ID+":reverse", "pos-token", `{"reason":"receipt voided"}`, &red))
		assert.Equal(t, RedemptionReversed, red.Status)
		require.Equal(t, http.StatusOK, a.post(t, "/v1/members/"+alice+"/redemptions/"+red.ID+":reverse", "pos-token", `{}`, nil))
		acct := accountOf(t, s, alice)
		require.NoError(t, acct.Check())
		assert.Equal(t, int64(500), acct.Balance, "reversed once, back into the lot it came from")
		assert.Len(t, brokertest.Events(t, a.js, stream.Events, events.PointsRedeemed), 1)
		assert.Len(t, brokertest.Events(t, a.js, stream.Events, events.RedemptionReversed), 1)
		assertBalanceIsSumOfEntries(t, s, alice)
	})
}

func assertBalanceIsSumOfEntries(t *testing.T, s Store, oneID string) {
	t.Helper()
	docs, err := s.Query(context.Background(), store.Query{Collection: member.LedgerEntries,
		Filters: []store.Filter{{Field: "oneId", Op: store.OpEq, Value: oneID}}})
	require.NoError(t, err)
	var sum int64
	for _, d := range docs {
		var e entry
		require.NoError(t, d.DataTo(&e))
		sum += e.Delta
		assert.NotEmpty(t, e.Cause)
		assert.NotEmpty(t, e.SourceID)
	}
	assert.Equal(t, accountOf(t, s, oneID).Balance, sum, "%s: the balance is the sum of the ledger", oneID)
}

func TestRefundAfterRedemptionFollowsThePolicy(t *testing.T) {
	for _, policy := range []string{loyalty.RefundNegative, loyalty.RefundClawback} {
		t.Run(policy, func(t *testing.T) {
			eachStore(t, func(t *testing.T, s Store) {
				now := t0
				a := newAPI(t, s, plainRules(t, policy), &now)
				a.handle(t, paid(t, "e1", alice, "o1", 30000))
				require.Equal(t, http.StatusCreated, a.post(t, "/v1/members/"+alice+"/redemptions", "pos-token",
					`{"idempotencyKey":"k1","channel":"pos","points":250}`, nil))
				outs := a.handle(t, refunded(t, "e2", alice, "o1", "r1", 30000))
				require.Len(t, outs, 1)
				acct := accountOf(t, s, alice)
				require.NoError(t, acct.Check())
				assert.Equal(t, int64(250), acct.Debt, "the spent points are owed, not lost")
				want := map[string]int64{loyalty.RefundNegative: -250, loyalty.RefundClawback: 0}[policy]
				assert.Equal(t, want, acct.Balance)
				a.handle(t, paid(t, "e3", alice, "o2", 40000))
				acct = accountOf(t, s, alice)
				assert.Equal(t, int64(150), acct.Balance, "the next order repays the debt first")
				assert.Zero(t, acct.Debt)
				assertBalanceIsSumOfEntries(t, s, alice)
			})
		})
	}
}

func TestDailyCapAndRatesComeFromTheRules(t *testing.T) {
	rules, err := loyalty.Parse([]byte(`
version: capped-v3
timezone: Asia/Shanghai
earning:
  fenPerPoint: 100
  channels: {pos: {multiplier: 1.2}}
  caps: {perOrder: 500, perDay: 800}
expiry: {months: 12, reminderDays: 30}
redemption: {minPoints: 1}
refunds: {afterRedemption: negative}
tiers: {basis: spend, windowDays: 365, evaluationDay: 1, levels: [{name: member, min: 0}]}
`))
	require.NoError(t, err)
	eachStore(t, func(t *testing.T, s Store) {
		now := t0
		a := newAPI(t, s, rules, &now)
		at := func(h int) time.Time { return time.Date(2026, 11, 11, h, 0, 0, 0, time.UTC) }
		order := func(id string, fen int64, paidAt time.Time, channel string) cloudevents.Event {
			return resolved(t, id, alice, events.IdentityResolvedData{Order: &events.OrderPaidData{
				OrderID: id, Channel: channel, ShopID: "s1", AmountFen: fen, PaidAt: paidAt}})
		}
		pointsOf := func(outs []cloudevents.Event) int64 {
			d, err := events.Decode[events.PointsAwardedData](outs[0])
			require.NoError(t, err)
			return d.Points
		}
		assert.Equal(t, int64(500), pointsOf(a.handle(t, order("big", 100000, at(2), "tmall"))), "capped per order")
		assert.Equal(t, int64(240), pointsOf(a.handle(t, order("store", 20000, at(3), "pos"))), "the store earns 1.2x")
		assert.Equal(t, int64(60), pointsOf(a.handle(t, order("third", 20000, at(4), "tmall"))), "capped per day: 800 - 740")
		// 16:00 UTC is midnight in Shanghai: a new day, a new allowance.
		assert.Equal(t, int64(200), pointsOf(a.handle(t, order("next-day", 20000, at(16), "tmall"))))
		docs, err := s.Query(context.Background(), store.Query{Collection: member.LedgerEntries,
			Filters: []store.Filter{{Field: "orderId", Op: store.OpEq, Value: "store"}}})
		require.NoError(t, err)
		require.Len(t, docs, 1)
		var e entry
		require.NoError(t, docs[0].DataTo(&e))
		assert.Equal(t, "capped-v3", e.RulesVersion, "each entry names the rules version")
		assert.Contains(t, e.Rule, "channel pos ×1.2", "and the rule that decided it")
	})
}

// TestDailyCapCountsTheDayIngestReceivedTheOrder is the finding: one batch of orders with
// paidAt spread over 330 days earned the cap of every one of those days (19 730 000 points). A
// live order now counts toward the day ingest received it; history (no receivedAt: backfill, the
// pollers) toward its paid day.
func TestDailyCapCountsTheDayIngestReceivedTheOrder(t *testing.T) {
	rules, err := loyalty.Parse([]byte(`
version: capped
timezone: Asia/Shanghai
earning: {fenPerPoint: 100, caps: {perDay: 2500}}
expiry: {months: 12, reminderDays: 30}
redemption: {minPoints: 1}
refunds: {afterRedemption: negative}
tiers: {basis: spend, windowDays: 365, evaluationDay: 1, levels: [{name: member, min: 0}]}
`))
	require.NoError(t, err)
	received := time.Date(2026, 11, 11, 2, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		receivedAt *time.Time
		want       int64
	}{
		{"live: one day's cap however the paidAt spread", &received, 2500},
		{"history: each paid day its own cap", nil, 10 * 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, s := newHandler(t)
			h.Rules = rules
			for i := range 10 {
				ev := resolved(t, fmt.Sprint("spread-", i), alice, events.IdentityResolvedData{ReceivedAt: tc.receivedAt,
					Order: &events.OrderPaidData{OrderID: fmt.Sprint("S-", i), Channel: "tmall", ShopID: "s1", AmountFen: 100_000,
						PaidAt: received.AddDate(0, 0, -i)}})
				_, err := h.Handle(context.Background(), ev)
				require.NoError(t, err)
			}
			assert.Equal(t, tc.want, account(t, s, alice).Balance)
		})
	}
}

func TestExpiryJobExpiresRemindsAndCanRunTwice(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		now := t0
		a := newAPI(t, s, plainRules(t, loyalty.RefundNegative), &now)
		old := time.Date(2025, 11, 1, 10, 0, 0, 0, time.UTC)    // expires 2026-11-01: gone by t0
		soon := time.Date(2025, 11, 30, 10, 0, 0, 0, time.UTC)  // expires 2026-11-30: within 30 days
		fresh := time.Date(2026, 10, 30, 10, 0, 0, 0, time.UTC) // a year away
		for _, o := range []struct {
			id string
			at time.Time
		}{{"old", old}, {"soon", soon}, {"fresh", fresh}} {
			a.handle(t, resolved(t, o.id, alice, events.IdentityResolvedData{Order: &events.OrderPaidData{
				OrderID: o.id, Channel: "tmall", ShopID: "s", AmountFen: 10000, PaidAt: o.at}}))
		}
		a.handle(t, resolved(t, "b", bob, events.IdentityResolvedData{Order: &events.OrderPaidData{
			OrderID: "b", Channel: "tmall", ShopID: "s", AmountFen: 10000, PaidAt: fresh}}))
		var published []cloudevents.Event
		collect := func(_ context.Context, evs []cloudevents.Event) error {
			published = append(published, evs...)
			return nil
		}
		rep, err := a.h.Expire(context.Background(), t0, collect)
		require.NoError(t, err)
		assert.Equal(t, ExpiryReport{AsOf: t0, Accounts: 1, Expired: 100, Reminded: 100, Events: 2}, rep, "bob's account is not even read")
		acct := accountOf(t, s, alice)
		require.NoError(t, acct.Check())
		assert.Equal(t, int64(200), acct.Balance)
		types := []string{published[0].Type(), published[1].Type()}
		assert.Equal(t, []string{events.PointsExpired, events.PointsExpiring}, types)

		again, err := a.h.Expire(context.Background(), t0, collect)
		require.NoError(t, err)
		assert.Equal(t, ExpiryReport{AsOf: t0, Accounts: 1}, again, "nothing expires or is reminded twice")
		assert.Len(t, published, 2)
		assert.Equal(t, int64(200), accountOf(t, s, alice).Balance)

		// A run that dies between its commit and the broker: the next run sends what it left.
		now = now.AddDate(0, 0, 2)
		a.handle(t, resolved(t, "late", bob, events.IdentityResolvedData{Order: &events.OrderPaidData{
			OrderID: "late", Channel: "tmall", ShopID: "s", AmountFen: 10000, PaidAt: time.Date(2025, 12, 1, 10, 0, 0, 0, time.UTC)}}))
		_, err = a.h.Expire(context.Background(), now, func(context.Context, []cloudevents.Event) error { return errors.New("broker down") })
		require.Error(t, err)
		rep, err = a.h.Expire(context.Background(), now, collect)
		require.NoError(t, err)
		assert.Equal(t, 1, rep.Resent, "the reminder the crashed run committed goes out now")
		assert.Equal(t, events.PointsExpiring, published[len(published)-1].Type())
		assertBalanceIsSumOfEntries(t, s, alice)
	})
}

// TestRandomInterleavingsOnTheStore drives the handler with random orders, refunds (before their
// orders too), duplicate deliveries, the same order under new event ids, redemptions, reversals,
// expiries and a merge, then checks the ledger against an independent calculation.
func TestRandomInterleavingsOnTheStore(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		for seed := range uint64(4) {
			t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { randomHistory(t, s, seed) })
		}
	})
}

func randomHistory(t *testing.T, s Store, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	now := t0
	a := newAPI(t, s, plainRules(t, []string{loyalty.RefundNegative, loyalty.RefundClawback}[seed%2]), &now)
	p := fmt.Sprintf("s%d-", seed)
	people := []string{fmt.Sprintf("om_s%daaaaaaaaaaaaaaaaaa", seed), fmt.Sprintf("om_s%dbbbbbbbbbbbbbbbbbb", seed)}
	paidFen, refunds := map[string]int64{}, map[string]map[string]int64{}
	owner := map[string]string{}
	var delivered []cloudevents.Event
	redeemed, expired := int64(0), int64(0)
	mergeAt := 10 + rng.IntN(20) // B is absorbed into A part way; later events for B follow the merge
	for step := range 40 {
		if step == mergeAt {
			a.handle(t, merged(t, p+"merge", people[0], people[1]))
		}
		now = now.Add(time.Duration(rng.IntN(48)) * time.Hour)
		order := fmt.Sprint(p, "o", rng.IntN(6))
		if owner[order] == "" {
			owner[order] = people[rng.IntN(2)]
		}
		switch op := rng.IntN(10); {
		case op < 3:
			if _, ok := paidFen[order]; !ok {
				paidFen[order] = 1000 + rng.Int64N(40000)
			}
			ev := resolved(t, fmt.Sprint(p, "pay", step), owner[order], events.IdentityResolvedData{Order: &events.OrderPaidData{
				OrderID: order, Channel: "jd", ShopID: "s", AmountFen: paidFen[order], PaidAt: now}})
			delivered = append(delivered, ev)
			a.handle(t, ev)
		case op < 5:
			rid := fmt.Sprint(order, "-r", rng.IntN(2))
			if refunds[order] == nil {
				refunds[order] = map[string]int64{}
			}
			if _, ok := refunds[order][rid]; !ok {
				refunds[order][rid] = rng.Int64N(15000)
			}
			ev := resolved(t, fmt.Sprint(p, "ref", step), owner[order], events.IdentityResolvedData{Refund: &events.OrderRefundedData{
				OrderID: order, RefundID: rid, Channel: "jd", AmountFen: refunds[order][rid], RefundedAt: now}})
			delivered = append(delivered, ev)
			a.handle(t, ev)
		case op < 6 && len(delivered) > 0:
			a.handle(t, delivered[rng.IntN(len(delivered))]) // a redelivery
		case op < 8:
			n := 1 + rng.Int64N(200)
			var red Redemption
			status := a.post(t, "/v1/members/"+owner[order]+"/redemptions", "pos-token",
				fmt.Sprintf(`{"idempotencyKey":"%s%d","channel":"pos","points":%d}`, p, step, n), &red)
			require.Contains(t, []int{http.StatusCreated, http.StatusConflict}, status)
			if status == http.StatusCreated {
				redeemed += n
			}
		default:
			rep, err := a.h.Expire(context.Background(), now, func(context.Context, []cloudevents.Event) error { return nil })
			require.NoError(t, err)
			expired += rep.Expired
		}
	}
	a.handle(t, merged(t, p+"merge", people[0], people[1])) // delivered again at the end
	var earned int64
	for order, paid := range paidFen {
		net := paid
		for _, r := range refunds[order] {
			net -= r
		}
		earned += max(0, net) / 100
	}
	acct := accountOf(t, s, people[0])

	require.NoError(t, acct.Check())
	assert.Equal(t, earned-redeemed-expired, acct.Balance+creditedDebt(acct), "everything earned, minus spent and expired")
	for _, person := range people {
		assertBalanceIsSumOfEntries(t, s, person)
	}
}

// creditedDebt is what the balance leaves out under the clawback policy (it shows only the lots).
func creditedDebt(a member.Account) int64 {
	if a.Policy == loyalty.RefundClawback {
		return -a.Debt
	}
	return 0
}

// TestRedemptionBodiesOverTheLimitGet413: a redemption or a reversal with a body over its limit is
// refused with 413 and a JSON error, and nothing is redeemed or reversed.
func TestRedemptionBodiesOverTheLimitGet413(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store) {
		now := t0
		a := newAPI(t, s, plainRules(t, loyalty.RefundNegative), &now)
		a.handle(t, paid(t, "e1", alice, "o1", 50000))
		var red Redemption
		require.Equal(t, http.StatusCreated, a.post(t, "/v1/members/"+alice+"/redemptions", "pos-token",
			`{"idempotencyKey":"k1","channel":"pos","points":200}`, &red))
		pad := strings.Repeat("x", 16<<10)
		tests := []struct{ name, path, body string }{
			{"redeem", "/v1/members/" + alice + "/redemptions", `{"idempotencyKey":"k2","channel":"pos","points":100,"note":"` + pad + `"}`},
			{"reverse", "/v1/members/" + alice + "/redemptions/" + red.ID + ":reverse", `{"reason":"` + pad + `"}`},
		}
		for _, tt := range tests {
			var got runtime.ErrorBody
			assert.Equal(t, http.StatusRequestEntityTooLarge, a.post(t, tt.path, "pos-token", tt.body, &got), "%s: got, want 413", tt.name)
			assert.Equal(t, "body", got.Field, tt.name)
		}
		var eb runtime.ErrorBody
		assert.Equal(t, http.StatusBadRequest, a.post(t, tests[1].path, "pos-token", `{"reason":`, &eb), "a malformed reversal")
		assert.Equal(t, int64(300), accountOf(t, s, alice).Balance, "one redemption, not reversed")
		assert.Len(t, brokertest.Events(t, a.js, stream.Events, events.PointsRedeemed), 1)
		assert.Empty(t, brokertest.Events(t, a.js, stream.Events, events.RedemptionReversed))
	})
}
