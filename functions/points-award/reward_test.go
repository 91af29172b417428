package pointsaward

import (
	"context"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rewarded is a campaign's reward to one member as the campaign function publishes it.
func rewarded(t *testing.T, id, campaignID, oneID string, bonus int64, m *events.PointsMultiplier) cloudevents.Event {
	ev, err := events.New(events.CampaignRewarded, id, events.Source("campaign"), t0, events.CampaignRewardedData{
		CampaignID: campaignID, OneID: oneID, BonusPoints: bonus, Multiplier: m, SourceID: campaignID})
	require.NoError(t, err)
	require.NoError(t, events.Validate(ev))
	return ev
}

// double is a ×2 window around t0 (the orders' payment time): [t0 − 1h, t0 + 1h).
func double() *events.PointsMultiplier {
	return &events.PointsMultiplier{Factor: "2", From: t0.Add(-time.Hour), To: t0.Add(time.Hour)}
}

// ledgerOf sums the ledger entries of one member with the given cause.
func ledgerOf(t *testing.T, s store.Store, oneID, cause string) (count int, sum int64) {
	docs, err := s.Query(context.Background(), store.Query{Collection: member.LedgerEntries})
	require.NoError(t, err)
	for _, d := range docs {
		var e entry
		require.NoError(t, d.DataTo(&e))
		if e.OneID == oneID && e.Cause == cause {
			count, sum = count+1, sum+e.Delta
		}
	}
	return count, sum
}

func TestCampaignBonusIsCreditedOnce(t *testing.T) {
	tests := []struct {
		name        string
		steps       func(t *testing.T) []step
		wantBalance int64
		wantEntries int
		wantBonus   int64
	}{
		{"bonus credited", func(t *testing.T) []step {
			return []step{{ev: rewarded(t, "r1", "cmp_1", alice, 200, nil)}}
		}, 200, 1, 200},
		{"redelivered event credits once", func(t *testing.T) []step {
			return []step{{ev: rewarded(t, "r1", "cmp_1", alice, 200, nil)}, {ev: rewarded(t, "r1", "cmp_1", alice, 200, nil)}}
		}, 200, 1, 200},
		{"the same reward under another event id credits once", func(t *testing.T) []step {
			return []step{{ev: rewarded(t, "r1", "cmp_1", alice, 200, nil)}, {ev: rewarded(t, "r1-again", "cmp_1", alice, 200, nil)}}
		}, 200, 1, 200},
		{"two campaigns credit twice", func(t *testing.T) []step {
			return []step{{ev: rewarded(t, "r1", "cmp_1", alice, 200, nil)}, {ev: rewarded(t, "r2", "cmp_2", alice, 50, nil)}}
		}, 250, 2, 250},
		{"bonus on top of earned points", func(t *testing.T) []step {
			return []step{{paid(t, "e1", alice, "o1", 10000), events.PointsAwarded, 100, 100},
				{ev: rewarded(t, "r1", "cmp_1", alice, 200, nil)}}
		}, 300, 1, 200},
		{"a multiplier-only campaign credits no points", func(t *testing.T) []step {
			return []step{{ev: rewarded(t, "r1", "cmp_1", alice, 0, double())}}
		}, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, s := newHandler(t)
			run(t, h, tt.steps(t))
			a := account(t, s, alice)
			assertLotsMakeTheBalance(t, a)
			assert.Equal(t, tt.wantBalance, a.Balance, "got balance, want")
			n, sum := ledgerOf(t, s, alice, "campaign")
			assert.Equal(t, tt.wantEntries, n, "got campaign ledger entries, want")
			assert.Equal(t, tt.wantBonus, sum, "got points the campaign entries credited, want")
		})
	}
}

func TestCampaignBonusLotExpiresLikeEarnedPoints(t *testing.T) {
	h, s := newHandler(t)
	run(t, h, []step{{ev: rewarded(t, "r1", "cmp_1", alice, 200, nil)}})
	a := account(t, s, alice)
	require.Len(t, a.Lots, 1)
	assert.Equal(t, CampaignLotID("cmp_1"), a.Lots[0].ID)
	assert.True(t, h.Rules.ExpiresAt(t0).Equal(a.Lots[0].ExpiresAt), "got expiry %s, want 12 months after the reward", a.Lots[0].ExpiresAt)
	require.NotNil(t, a.NextExpiryAt, "the expiry job must find the account")
}

func TestCampaignRewardFollowsAndMovesWithMerges(t *testing.T) {
	h, s := newHandler(t)
	run(t, h, []step{
		{ev: rewarded(t, "r1", "cmp_1", bob, 200, double())},
		{merged(t, "m1", alice, bob), "", 0, 0},
		// A reward to bob delivered after the merge lands on alice, once.
		{ev: rewarded(t, "r2", "cmp_2", bob, 30, nil)},
		{ev: rewarded(t, "r2", "cmp_2", bob, 30, nil)},
		// bob's ×2 window came with him: alice's order inside it earns double.
		{paid(t, "e1", alice, "o1", 10000), events.PointsAwarded, 200, 430},
	})
	a := account(t, s, alice)
	assertLotsMakeTheBalance(t, a)
	assert.Equal(t, int64(430), a.Balance)
	require.Len(t, a.Windows, 1)
	assert.Equal(t, "cmp_1", a.Windows[0].CampaignID)
	assert.Zero(t, account(t, s, bob).Balance)
}

func TestCampaignMultiplierWindow(t *testing.T) {
	inside, outside := t0, t0.Add(2*time.Hour)
	tests := []struct {
		name        string
		steps       func(t *testing.T) []step
		wantBalance int64
	}{
		{"order inside the window earns double", func(t *testing.T) []step {
			return []step{{ev: rewarded(t, "r1", "cmp_1", alice, 0, double())},
				{paidOn(t, "e1", alice, "o1", 10000, inside), events.PointsAwarded, 200, 200}}
		}, 200},
		{"order after the window earns the base rate", func(t *testing.T) []step {
			return []step{{ev: rewarded(t, "r1", "cmp_1", alice, 0, double())},
				{paidOn(t, "e1", alice, "o1", 10000, outside), events.PointsAwarded, 100, 100}}
		}, 100},
		{"another member's window does not apply", func(t *testing.T) []step {
			return []step{{ev: rewarded(t, "r1", "cmp_1", bob, 0, double())},
				{paidOn(t, "e1", alice, "o1", 10000, inside), events.PointsAwarded, 100, 100}}
		}, 100},
		{"the better of two windows applies, not both", func(t *testing.T) []step {
			triple := &events.PointsMultiplier{Factor: "3", From: t0.Add(-time.Minute), To: t0.Add(time.Minute)}
			return []step{{ev: rewarded(t, "r1", "cmp_1", alice, 0, double())}, {ev: rewarded(t, "r2", "cmp_2", alice, 0, triple)},
				{paidOn(t, "e1", alice, "o1", 10000, inside), events.PointsAwarded, 300, 300}}
		}, 300},
		{"refund inside the window reverses the doubled points", func(t *testing.T) []step {
			return []step{{ev: rewarded(t, "r1", "cmp_1", alice, 0, double())},
				{paidOn(t, "e1", alice, "o1", 10000, inside), events.PointsAwarded, 200, 200},
				{refunded(t, "e2", alice, "o1", "rf1", 2500), events.PointsReversed, 50, 150},
				{refunded(t, "e3", alice, "o1", "rf2", 7500), events.PointsReversed, 150, 0}}
		}, 0},
		{"an order processed before the reward arrived keeps its base rate, later ones earn the window", func(t *testing.T) []step {
			// A rate is fixed when points-award sees the payment, so refunds reverse at it: a window
			// reaching the account later does not re-rate an order already awarded.
			return []step{{paidOn(t, "e1", alice, "o1", 10000, inside), events.PointsAwarded, 100, 100},
				{ev: rewarded(t, "r1", "cmp_1", alice, 0, double())},
				{paidOn(t, "e2", alice, "o2", 10000, inside), events.PointsAwarded, 200, 300}}
		}, 300},
		{"bonus and window together", func(t *testing.T) []step {
			return []step{{ev: rewarded(t, "r1", "cmp_1", alice, 200, double())},
				{paidOn(t, "e1", alice, "o1", 10000, inside), events.PointsAwarded, 200, 400}}
		}, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, s := newHandler(t)
			run(t, h, tt.steps(t))
			a := account(t, s, alice)
			assertLotsMakeTheBalance(t, a)
			assert.Equal(t, tt.wantBalance, a.Balance, "got balance, want")
		})
	}
}

func TestCampaignWindowIsRecordedOnTheOrdersRate(t *testing.T) {
	h, s := newHandler(t)
	run(t, h, []step{{ev: rewarded(t, "r1", "cmp_1", alice, 0, double())},
		{paid(t, "e1", alice, "o1", 10000), events.PointsAwarded, 200, 200}})
	var od member.Order
	require.NoError(t, s.Get(context.Background(), member.Orders, member.OrderKey("tmall", "o1"), &od))
	require.NotNil(t, od.Rate)
	assert.Equal(t, int64(20000), od.Rate.MultiplierBP, "got rate, want ×2 fixed at payment so refunds reverse at it")
	assert.Contains(t, od.Rate.Rule(), "campaign cmp_1 ×2", "the ledger says why")
}

func TestCampaignWindowsEndedLongAgoAreForgotten(t *testing.T) {
	old := &events.PointsMultiplier{Factor: "2", From: t0.Add(-90 * 24 * time.Hour), To: t0.Add(-60 * 24 * time.Hour)}
	h, s := newHandler(t)
	run(t, h, []step{{ev: rewarded(t, "r1", "cmp_old", alice, 0, old)}, {ev: rewarded(t, "r2", "cmp_new", alice, 0, double())}})
	a := account(t, s, alice)
	require.Len(t, a.Windows, 1, "got windows %+v", a.Windows)
	assert.Equal(t, "cmp_new", a.Windows[0].CampaignID)
}

func TestMalformedCampaignRewardIsPermanent(t *testing.T) {
	tests := []struct {
		name string
		data any
	}{
		{"factor not a number", events.CampaignRewardedData{CampaignID: "cmp_1", OneID: alice, SourceID: "cmp_1",
			Multiplier: &events.PointsMultiplier{Factor: "double", From: t0, To: t0.Add(time.Hour)}}},
		{"window ends before it starts", events.CampaignRewardedData{CampaignID: "cmp_1", OneID: alice, SourceID: "cmp_1",
			Multiplier: &events.PointsMultiplier{Factor: "2", From: t0, To: t0.Add(-time.Hour)}}},
		{"not JSON", "{"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, s := newHandler(t)
			ev, err := events.New(events.CampaignRewarded, "bad", events.Source("campaign"), t0, tt.data)
			require.NoError(t, err)
			if raw, ok := tt.data.(string); ok {
				ev.DataEncoded = []byte(raw)
			}
			_, err = h.Handle(context.Background(), ev)
			require.Error(t, err)
			assert.True(t, runtime.IsPermanent(err), "got %v, want a permanent error (dead letter)", err)
			var a member.Account
			assert.ErrorIs(t, s.Get(context.Background(), member.Accounts, alice, &a), store.ErrNotFound, "nothing written")
		})
	}
}

func TestCampaignRewardToAnErasedMemberCreditsNothing(t *testing.T) {
	h, s := newHandler(t)
	erasedAt := t0.Add(-time.Minute)
	require.NoError(t, s.Set(context.Background(), member.Members, alice, member.Member{OneID: alice, ErasedAt: &erasedAt}))
	run(t, h, []step{{ev: rewarded(t, "r1", "cmp_1", alice, 200, double())}})
	var a member.Account
	assert.ErrorIs(t, s.Get(context.Background(), member.Accounts, alice, &a), store.ErrNotFound, "got an account, want none")
	var done rewardDoc
	require.NoError(t, s.Get(context.Background(), CampaignRewards, RewardKey("cmp_1", alice), &done))
	assert.Equal(t, "erased", done.Skipped, "the skip is recorded, so a redelivery does not look again")
}
