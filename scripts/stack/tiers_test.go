package stack

import (
	"context"
	"testing"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/loyalty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTiersRollWithTheCalendar runs the chain under a 400-day window: the profile's net spend and
// score are the ladder's (one window), and with no activity the member falls level by level as
// its purchases leave the window, two years of monthly evaluations run by the jobs' asOf alone.
func TestTiersRollWithTheCalendar(t *testing.T) {
	onEachStore(t, func(t *testing.T, opts Options) {
		rules := *loyalty.Defaults()
		rules.Tiers.WindowDays = 400
		opts.Loyalty = &rules
		s := start(t, opts)
		phone := events.Identity{Type: "phone", Value: "13522223333"}
		now := time.Now()
		old, err := events.New(events.OrderPaid, "old-order", "backfill/jd/j", now, events.OrderPaidData{OrderID: "old-order", Channel: "jd",
			ShopID: "j", AmountFen: 100_000, PaidAt: now.AddDate(0, 0, -380), Identities: []events.Identity{phone}})
		require.NoError(t, err)
		publishHistory(t, s, old)
		post(t, s, orderEvent(t, "new-order", "tmall", 250_000, phone))

		p := lookup(t, s, "phone", phone.Value)
		assert.Equal(t, "gold", p.Tier.Level, "¥3 500 within 400 days")
		assert.Equal(t, []int64{350_000, 350_000}, []int64{p.Tier.Score, p.Tier.NetSpendFen}, "got score and net spend, want the ladder's")

		shanghai := rules.Location()
		levels := map[string]bool{}
		for month := 1; month <= 24; month++ {
			local := now.In(shanghai)
			asOf := time.Date(local.Year(), local.Month()+time.Month(month), 1, 0, 10, 0, 0, shanghai)
			_, _, err := s.RunJobs(context.Background(), asOf)
			require.NoError(t, err, asOf.String())
			waitQuiet(t, s)
			levels[lookup(t, s, "phone", phone.Value).Tier.Level] = true
		}
		p = lookup(t, s, "phone", phone.Value)
		assert.Equal(t, "member", p.Tier.Level, "two years on, nothing in the window")
		assert.Equal(t, []int64{0, 0}, []int64{p.Tier.Score, p.Tier.NetSpendFen})
		assert.Equal(t, map[string]bool{"gold": true, "silver": true, "member": true}, levels,
			"down to silver when the old order left, to member when the new one did")
	})
}
