package pointsaward

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/ledger"
	"github.com/omnimember/omnimember/shared/loyalty"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
)

// CampaignRewards is the collection of campaign rewards credited, keyed by campaign and the member
// the campaign targeted: the reward's idempotency key, whatever event id carries it.
const CampaignRewards = "campaign_rewards"

// windowGrace is how long after a member's multiplier window ends it is kept: an order paid inside
// the window may reach points-award late (a platform retry, a backfill) and still earns the multiplier.
const windowGrace = 30 * 24 * time.Hour

// rewardDoc records one campaign reward credited: to whom (the live account after merges) and what.
type rewardDoc struct {
	CampaignID  string                   `json:"campaignId"`
	OneID       string                   `json:"oneId"`
	CreditedTo  string                   `json:"creditedTo"`
	BonusPoints int64                    `json:"bonusPoints"`
	Multiplier  *events.PointsMultiplier `json:"multiplier,omitempty"`
	SourceID    string                   `json:"sourceId"`
	At          time.Time                `json:"at"`
	Skipped     string                   `json:"skipped,omitempty"` // why nothing was credited
}

// RewardKey is a campaign reward's key: the campaign and the member it targeted.
func RewardKey(campaignID, oneID string) string { return campaignID + "." + oneID }

// CampaignLotID is the lot a campaign's bonus points are credited to.
func CampaignLotID(campaignID string) string { return "campaign:" + campaignID }

// planReward decodes a campaign.rewarded event into the transaction that credits it.
func (h *Handler) planReward(ctx context.Context, ev cloudevents.Event) (func(store.Tx) ([]cloudevents.Event, error), error) {
	d, err := events.Decode[events.CampaignRewardedData](ev)
	if err != nil {
		return nil, runtime.Permanent(err)
	}
	runtime.SetOneID(ctx, d.OneID)
	var w *loyalty.Window
	if d.Multiplier != nil {
		win, err := window(d.CampaignID, *d.Multiplier)
		if err != nil {
			return nil, runtime.Permanent(fmt.Errorf("campaign %s reward to %s: %w", d.CampaignID, d.OneID, err))
		}
		w = &win
	}
	return func(tx store.Tx) ([]cloudevents.Event, error) { return nil, h.reward(tx, ev, d, w) }, nil
}

// window converts a campaign's multiplier to the member's earning window.
func window(campaignID string, m events.PointsMultiplier) (loyalty.Window, error) {
	f, err := strconv.ParseFloat(m.Factor, 64)
	if err != nil || f <= 0 || f > 100 {
		return loyalty.Window{}, fmt.Errorf("multiplier factor %q: want a number in (0, 100]", m.Factor)
	}
	if !m.To.After(m.From) {
		return loyalty.Window{}, errors.New("multiplier window ends before it starts")
	}
	return loyalty.Window{CampaignID: campaignID, Multiplier: f, From: m.From, To: m.To}, nil
}

// reward credits a campaign's bonus points to the member's live account (a lot that expires like
// earned points) and keeps its multiplier window on the account, once per (campaign, member); a
// member erased since the campaign selected them gets nothing.
func (h *Handler) reward(tx store.Tx, ev cloudevents.Event, d events.CampaignRewardedData, w *loyalty.Window) error {
	key := RewardKey(d.CampaignID, d.OneID)
	var done rewardDoc
	err := tx.Get(CampaignRewards, key, &done)
	if err == nil {
		return nil // credited already, under this or another event id
	}
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	acct, err := h.liveAccount(tx, d.OneID)
	if err != nil {
		return err
	}
	erased, err := h.erased(tx, acct.OneID)
	if err != nil {
		return err
	}
	done = rewardDoc{CampaignID: d.CampaignID, OneID: d.OneID, CreditedTo: acct.OneID, BonusPoints: d.BonusPoints,
		Multiplier: d.Multiplier, SourceID: ev.ID(), At: h.Now()}
	if erased {
		// Erased after the campaign selected them: nobody is left to spend the points.
		done.CreditedTo, done.BonusPoints, done.Multiplier, done.Skipped = "", 0, nil, "erased"
	} else if err := h.credit(tx, ev, acct, d, w); err != nil {
		return err
	}
	return tx.Set(CampaignRewards, key, done)
}

// credit writes a reward's lot, window and ledger entry to the member's account.
func (h *Handler) credit(tx store.Tx, ev cloudevents.Event, acct member.Account, d events.CampaignRewardedData, w *loyalty.Window) error {
	now := h.Now()
	balanceBefore := acct.Balance
	line := entry{OneID: acct.OneID, Points: d.BonusPoints, Cause: "campaign", Rule: "campaign " + d.CampaignID,
		RulesVersion: h.Rules.Version, SourceID: ev.ID(), At: now}
	if d.BonusPoints > 0 {
		earned := ev.Time()
		var err error
		if line.Repaid, err = acct.Earn(ledger.Lot{ID: CampaignLotID(d.CampaignID), EarnedAt: earned,
			ExpiresAt: h.Rules.ExpiresAt(earned)}, d.BonusPoints); err != nil {
			return err
		}
	}
	if w != nil {
		acct.Windows = addWindow(acct.Windows, *w, now)
	}
	line.Delta, line.BalanceAfter = acct.Balance-balanceBefore, acct.Balance
	if err := h.writeAccount(tx, acct, now); err != nil {
		return err
	}
	if d.BonusPoints == 0 {
		return nil
	}
	return tx.Set(member.LedgerEntries, events.DerivedID(Name, ev.ID(), 0), line)
}

// erased says whether a member's personal data was erased on request.
func (h *Handler) erased(tx store.Tx, oneID string) (bool, error) {
	var m member.Member
	if err := tx.Get(member.Members, oneID, &m); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	return m.ErasedAt != nil, nil
}

// addWindow adds a campaign's window (replacing one of the same campaign) and forgets windows that
// ended more than windowGrace ago.
func addWindow(have []loyalty.Window, w loyalty.Window, now time.Time) []loyalty.Window {
	out := slices.DeleteFunc(slices.Clone(have), func(x loyalty.Window) bool {
		return x.CampaignID == w.CampaignID || now.Sub(x.To) > windowGrace
	})
	return append(out, w)
}

// mergeWindows gives the survivor of a merge the absorbed member's windows it does not have yet.
func mergeWindows(survivor, absorbed []loyalty.Window) []loyalty.Window {
	out := slices.Clone(survivor)
	for _, w := range absorbed {
		if !slices.ContainsFunc(out, func(x loyalty.Window) bool { return x.CampaignID == w.CampaignID }) {
			out = append(out, w)
		}
	}
	return out
}
