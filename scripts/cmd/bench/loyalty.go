package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	pointsaward "github.com/omnimember/omnimember/functions/points-award"
	"github.com/omnimember/omnimember/shared/ledger"
	"github.com/omnimember/omnimember/shared/loyalty"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/store"
	"github.com/omnimember/omnimember/shared/store/embedded"
)

// loyaltyBench measures points awards with the example rules evaluated, and the expiry job over
// accounts members of which a tenth have points due.
func loyaltyBench(awards, accounts int) error {
	dir, err := os.MkdirTemp("", "omnimember-bench-loyalty-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s, err := embedded.Open(filepath.Join(dir, "store.db"), embedded.Options{Indexes: member.Indexes})
	if err != nil {
		return err
	}
	defer s.Close()
	h := &pointsaward.Handler{Store: s, Rules: loyalty.Example(), Now: time.Now}
	perSec, err := awardRate(h, awards)
	if err != nil {
		return err
	}
	fmt.Printf("  %-58s %10.0f awards/s  (example rules: channel, category, tier, campaign, caps)\n", "loyalty: points-award handler, store transaction each", perSec)
	if accounts == 0 {
		return nil
	}
	asOf := time.Now()
	start := time.Now()
	if err := loadAccounts(s, accounts, asOf); err != nil {
		return err
	}
	fmt.Printf("  %-58s %10.0f accounts/s  (%d accounts in %s)\n", "loyalty: bulk load of accounts with lots", float64(accounts)/time.Since(start).Seconds(),
		accounts, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	rep, err := h.Expire(context.Background(), asOf, func(context.Context, []cloudevents.Event) error { return nil })
	if err != nil {
		return err
	}
	took := time.Since(start)
	fmt.Printf("  %-58s %10s  (%d of %d accounts due, %d points expired, %d reminded)\n", "loyalty: expiry job over the accounts",
		took.Round(time.Millisecond), rep.Accounts, accounts, rep.Expired, rep.Reminded)
	return nil
}

func awardRate(h *pointsaward.Handler, n int) (float64, error) {
	evs := make([]cloudevents.Event, n)
	now := time.Now()
	for i := range n {
		oneID := member.OneIDFor("bench", fmt.Sprint(i%5000))
		d := events.IdentityResolvedData{OneID: oneID, SourceType: events.OrderPaid, SourceID: fmt.Sprint("o", i),
			Identities: []events.Identity{{Type: "pos_card", Value: fmt.Sprint("c", i%5000)}},
			Order: &events.OrderPaidData{OrderID: fmt.Sprint("o", i), Channel: events.Channels[i%len(events.Channels)], ShopID: "s",
				AmountFen: int64(1000 + i%90000), PaidAt: now, Identities: []events.Identity{{Type: "pos_card", Value: fmt.Sprint("c", i%5000)}},
				Items: []events.OrderItem{{SKU: "a", Category: "skincare", Quantity: 1, AmountFen: int64(1000 + i%90000)}}}}
		ev, err := events.New(events.IdentityResolved, fmt.Sprint("r", i), events.Source("match"), now, d)
		if err != nil {
			return 0, err
		}
		evs[i] = ev
	}
	work := make(chan cloudevents.Event, n)
	for _, ev := range evs {
		work <- ev
	}
	close(work)
	var failed atomic.Value
	start := time.Now()
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for ev := range work {
				if _, err := h.Handle(context.Background(), ev); err != nil {
					failed.Store(err)
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// loadAccounts writes n accounts with two lots each; every tenth has one lot already due at asOf.
func loadAccounts(s store.Store, n int, asOf time.Time) error {
	const perTx = 5000
	for start := 0; start < n; start += perTx {
		err := s.RunTransaction(context.Background(), func(_ context.Context, tx store.Tx) error {
			for i := start; i < min(start+perTx, n); i++ {
				due := asOf.AddDate(0, 3, 0)
				if i%10 == 0 {
					due = asOf.Add(-time.Hour)
				}
				a := member.Account{OneID: member.OneIDFor("acct", fmt.Sprint(i)), Account: ledger.Account{Policy: ledger.Negative}}
				a.Earn(ledger.Lot{ID: fmt.Sprint("a", i), ExpiresAt: due}, 100)
				a.Earn(ledger.Lot{ID: fmt.Sprint("b", i), ExpiresAt: asOf.AddDate(1, 0, 0)}, 50)
				next := a.Lots[0].ExpiresAt.UTC().Truncate(time.Second)
				a.NextExpiryAt = &next
				if err := tx.Set(member.Accounts, a.OneID, a); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
