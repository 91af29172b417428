package pointsaward

import (
	"errors"
	"slices"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/amount"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/store"
)

// split moves the orders that left with a split's identities to the target member: each order's
// lot (what remains of its points), its amount and count. The target's account comes back from a
// merge if it had been absorbed. The split event's receipt makes it happen once; a second split of
// the same identities is refused upstream (they are no longer on the member).
func (h *Handler) split(tx store.Tx, ev cloudevents.Event, d events.MemberSplitData, moving map[string]member.Order) error {
	from, err := h.liveAccount(tx, d.FromOneID)
	if err != nil {
		return err
	}
	to := member.Account{OneID: d.ToOneID}
	if err := tx.Get(member.Accounts, d.ToOneID, &to); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	to.Policy, to.MergedInto = h.Rules.Refunds.AfterRedemption, ""
	keys := make([]string, 0, len(moving))
	for k := range moving {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	docs, err := tx.GetAll(member.Orders, keys)
	if err != nil {
		return err
	}
	now := h.Now()
	fromBefore, toBefore := from.Balance, to.Balance
	for i, doc := range docs {
		var o member.Order
		if err := doc.DataTo(&o); err != nil {
			return err
		}
		o.OneID = d.ToOneID
		if err := tx.Set(member.Orders, keys[i], o); err != nil {
			return err
		}
		if err := moveOrder(&from, &to, o, keys[i]); err != nil {
			return err
		}
	}
	for _, a := range []member.Account{from, to} {
		if err := h.writeAccount(tx, a, now); err != nil {
			return err
		}
	}
	return writeLines(tx, ev, []entry{
		{OneID: from.OneID, Delta: from.Balance - fromBefore, BalanceAfter: from.Balance, Cause: "split", SourceID: ev.ID(), At: now},
		{OneID: to.OneID, Delta: to.Balance - toBefore, BalanceAfter: to.Balance, Cause: "split", SourceID: ev.ID(), At: now}})
}

// moveOrder moves one order's lot and totals between accounts, with checked sums.
func moveOrder(from, to *member.Account, o member.Order, key string) error {
	lot, ok, err := from.Take(key)
	if err == nil && ok {
		err = to.Put(lot)
	}
	if err != nil {
		return err
	}
	if o.Paid {
		from.OrderCount--
		to.OrderCount++
	}
	if from.NetAmountFen, err = amount.Sub(from.NetAmountFen, o.NetFen()); err != nil {
		return err
	}
	to.NetAmountFen, err = amount.Add(to.NetAmountFen, o.NetFen())
	return err
}
