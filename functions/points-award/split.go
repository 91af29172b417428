package pointsaward

import (
	"errors"
	"slices"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/store"
)

// split moves the orders that left with a split's identities to the target member: each order's
// lot (what remains of its points), its amount and count. The target's account comes back from a
// merge if it had been absorbed. The split event's receipt makes it happen once; a second split of
// the same identities is refused upstream (they are no longer on the member).
func (h *Handler) split(tx store.Tx, ev cloudevents.Event, d events.MemberSplitData, moving map[string]member.Order) error {
	from, err := liveAccount(tx, d.FromOneID)
	if err != nil {
		return err
	}
	to := member.Account{OneID: d.ToOneID}
	if err := tx.Get(member.Accounts, d.ToOneID, &to); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
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
	to.MergedInto = ""
	var moved int64
	for i, doc := range docs {
		var o member.Order
		if err := doc.DataTo(&o); err != nil {
			return err
		}
		o.OneID = d.ToOneID
		if err := tx.Set(member.Orders, keys[i], o); err != nil {
			return err
		}
		moved += moveOrder(&from, &to, o, keys[i])
	}
	from.UpdatedAt, to.UpdatedAt = now, now
	for _, a := range []member.Account{from, to} {
		if err := tx.Set(member.Accounts, a.OneID, a); err != nil {
			return err
		}
	}
	lines := []entry{{OneID: from.OneID, Delta: -moved, BalanceAfter: from.Balance, Cause: "split", SourceID: ev.ID(), At: now},
		{OneID: to.OneID, Delta: moved, BalanceAfter: to.Balance, Cause: "split", SourceID: ev.ID(), At: now}}
	for i, line := range lines {
		if err := tx.Set(member.LedgerEntries, events.DerivedID(Name, ev.ID(), i), line); err != nil {
			return err
		}
	}
	return nil
}

// moveOrder moves one order's lot and totals between accounts and returns the points moved.
func moveOrder(from, to *member.Account, o member.Order, key string) int64 {
	var points int64
	if i := slices.IndexFunc(from.Lots, func(l member.Lot) bool { return l.ID == key }); i >= 0 {
		lot := from.Lots[i]
		from.Lots = slices.Delete(from.Lots, i, i+1)
		to.Lots = sortLots(append(to.Lots, lot))
		points = lot.Remaining
	}
	from.Balance -= points
	to.Balance += points
	if o.Paid {
		from.OrderCount--
		to.OrderCount++
	}
	from.NetAmountFen -= o.NetFen()
	to.NetAmountFen += o.NetFen()
	return points
}
