package pointsaward

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/amount"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/receipt"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
)

// expiryJob keys the expiry job's receipts and pending events.
const expiryJob = Name + "/expiry"

// ExpiryReport says what one run of the expiry job did.
type ExpiryReport struct {
	AsOf     time.Time `json:"asOf"`
	Accounts int       `json:"accounts"`
	Expired  int64     `json:"expiredPoints"`
	Reminded int64     `json:"remindedPoints"`
	Events   int       `json:"events"`
	// Resent counts events an interrupted earlier run left pending, sent now.
	Resent int `json:"resent"`
}

// expireJob serves POST /v1/admin/points:expire[?asOf=RFC3339], what a scheduler calls daily.
func (h *Handler) expireJob(w http.ResponseWriter, r *http.Request, pub *runtime.Publisher) {
	asOf := h.Now()
	if v := r.URL.Query().Get("asOf"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			runtime.WriteError(w, http.StatusBadRequest, "asOf", "want RFC 3339: %v", err)
			return
		}
		asOf = t
	}
	rep, err := h.Expire(r.Context(), asOf, func(ctx context.Context, evs []cloudevents.Event) error {
		return pub.Publish(ctx, nil, evs)
	})
	if err != nil {
		runtime.WriteError(w, http.StatusServiceUnavailable, "", "expire: %v (safe to run again)", err)
		return
	}
	runtime.WriteJSON(w, http.StatusOK, rep)
}

// Expire removes the points of lots expired at asOf and reminds members of lots expiring within
// the reminder window, one account per transaction. Only accounts whose next expiry falls in that
// window are read (an indexed query). Each account's outcome for the day is kept in a receipt, so
// running the job again the same day re-sends the same events and changes nothing.
func (h *Handler) Expire(ctx context.Context, asOf time.Time, publish func(context.Context, []cloudevents.Event) error) (ExpiryReport, error) {
	rep := ExpiryReport{AsOf: asOf}
	resent, err := receipt.Flush(ctx, h.Store, expiryJob, publish)
	rep.Resent = resent
	if err != nil {
		return rep, err
	}
	horizon := indexTime(asOf.AddDate(0, 0, h.Rules.Expiry.ReminderDays))
	docs, err := h.Store.Query(ctx, store.Query{Collection: member.Accounts,
		Filters: []store.Filter{{Field: "nextExpiryAt", Op: store.OpLte, Value: horizon}}})
	if err != nil {
		return rep, fmt.Errorf("find accounts with lots to expire: %w", err)
	}
	day := h.Rules.Day(asOf)
	// Accounts are independent: several at once, so the store batches their commits.
	var mu sync.Mutex
	err = forEach(ctx, docs, 16, func(d store.Document) error {
		events, expired, reminded, err := h.expireOne(ctx, d.ID, asOf, day, publish)
		mu.Lock()
		defer mu.Unlock()
		rep.Accounts++
		rep.Events, rep.Expired, rep.Reminded = rep.Events+events, rep.Expired+expired, rep.Reminded+reminded
		return err
	})
	if err != nil {
		return rep, err
	}
	return rep, nil
}

// expireOne runs one account's expiry once per day and publishes what it decided.
func (h *Handler) expireOne(ctx context.Context, oneID string, asOf time.Time, day string,
	publish func(context.Context, []cloudevents.Event) error) (sent int, expired, reminded int64, err error) {
	job := cloudevents.NewEvent()
	job.SetSource(events.Source(Name) + "/expiry")
	job.SetID(oneID + ":" + day)
	outs, fresh, err := receipt.Do(ctx, h.Store, expiryJob, job, h.Now, func(tx store.Tx) ([]cloudevents.Event, error) {
		outs, err := h.expireAccount(tx, oneID, asOf, job.ID())
		if err != nil {
			return nil, err
		}
		return outs, receipt.SavePending(tx, expiryJob, receipt.Key(expiryJob, job), outs, h.Now())
	})
	if err != nil {
		return 0, 0, 0, fmt.Errorf("expire account %s: %w", oneID, err)
	}
	if !fresh || len(outs) == 0 {
		return 0, 0, 0, nil // a run earlier today decided; its events were published or are pending
	}
	if err := publish(ctx, outs); err != nil {
		return 0, 0, 0, err
	}
	if err := receipt.Published(ctx, h.Store, receipt.Key(expiryJob, job)); err != nil {
		return 0, 0, 0, err
	}
	for _, o := range outs {
		switch o.Type() {
		case events.PointsExpired:
			x, _ := events.Decode[events.PointsExpiredData](o)
			expired += x.Points
		case events.PointsExpiring:
			x, _ := events.Decode[events.PointsExpiringData](o)
			reminded += x.Points
		}
	}
	return len(outs), expired, reminded, nil
}

// forEach runs fn on the documents with n workers and returns the first error.
func forEach(ctx context.Context, docs []store.Document, n int, fn func(store.Document) error) error {
	work := make(chan store.Document)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for d := range work {
				if err := fn(d); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	var err error
feed:
	for _, d := range docs {
		select {
		case work <- d:
		case err = <-errs:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(work)
	wg.Wait()
	close(errs)
	if err != nil {
		return err
	}
	return <-errs
}

// expireAccount expires and reminds one account.
func (h *Handler) expireAccount(tx store.Tx, oneID string, asOf time.Time, jobID string) ([]cloudevents.Event, error) {
	var acct member.Account
	if err := tx.Get(member.Accounts, oneID, &acct); err != nil || acct.MergedInto != "" {
		return nil, err
	}
	acct.Policy = h.Rules.Refunds.AfterRedemption
	now := h.Now()
	before := acct.Balance
	gone, err := acct.Expire(asOf)
	if err != nil {
		return nil, err
	}
	var outs []cloudevents.Event
	if len(gone) > 0 {
		var points int64
		var ids []string
		for _, l := range gone {
			if points, err = amount.Add(points, l.Remaining); err != nil {
				return nil, fmt.Errorf("points expiring for %s: %w", oneID, err)
			}
			ids = append(ids, l.ID)
		}
		line := entry{OneID: oneID, Delta: acct.Balance - before, BalanceAfter: acct.Balance, Points: -points, Cause: "expiry", SourceID: jobID, At: now}
		if err := tx.Set(member.LedgerEntries, events.DerivedID(Name, jobID, 0), line); err != nil {
			return nil, err
		}
		ev, err := events.New(events.PointsExpired, events.DerivedID(Name, jobID, 0), events.Source(Name), now,
			events.PointsExpiredData{OneID: oneID, Points: points, Balance: acct.Balance, LotIDs: ids, ExpiredAt: asOf})
		if err != nil {
			return nil, err
		}
		outs = append(outs, ev)
	}
	reminder, ok, err := h.remind(&acct, asOf, jobID, now)
	if err != nil {
		return nil, err
	}
	if ok {
		outs = append(outs, reminder)
	}
	if len(outs) == 0 {
		return nil, nil
	}
	return outs, h.writeAccount(tx, acct, now)
}

// remind marks the lots expiring within the reminder window that nobody was told about yet.
func (h *Handler) remind(acct *member.Account, asOf time.Time, jobID string, now time.Time) (cloudevents.Event, bool, error) {
	horizon := asOf.AddDate(0, 0, h.Rules.Expiry.ReminderDays)
	var points int64
	var ids []string
	var first time.Time
	for i := range acct.Lots {
		l := &acct.Lots[i]
		if l.Reminded || l.ExpiresAt.After(horizon) {
			continue
		}
		l.Reminded = true
		points += l.Remaining
		ids = append(ids, l.ID)
		if first.IsZero() || l.ExpiresAt.Before(first) {
			first = l.ExpiresAt
		}
	}
	if points == 0 {
		return cloudevents.Event{}, false, nil
	}
	ev, err := events.New(events.PointsExpiring, events.DerivedID(Name, jobID, 1), events.Source(Name), now,
		events.PointsExpiringData{OneID: acct.OneID, Points: points, Balance: acct.Balance, LotIDs: ids, ExpiresAt: first})
	return ev, true, err
}
