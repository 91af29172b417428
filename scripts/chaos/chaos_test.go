package chaos

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/admit"
)

func TestTruthFollowsTheDefaultRules(t *testing.T) {
	p := &Person{Phone: "15100000001", Orders: map[string]*Order{
		"tmall/a": {Channel: "tmall", ID: "a", PaidFen: 129_950},                            // 1299 points
		"jd/b":    {Channel: "jd", ID: "b", PaidFen: 250_000, RefundsFen: []int64{250_000}}, // fully refunded
		"pos/c":   {Channel: "pos", ID: "c", PaidFen: 30_099, RefundsFen: []int64{99, 10_000}},
	}}
	got := TruthFor(p)
	assert.Equal(t, Truth{Points: 1299 + 0 + 200, Orders: 3, NetFen: 129_950 + 20_000, LowestTier: "silver", HighestTier: "gold"}, got)
}

func TestCompareClassifiesLostDoubledAndWrong(t *testing.T) {
	want := Truth{Points: 100, Orders: 2, NetFen: 10_000, LowestTier: "member", HighestTier: "silver"}
	tests := []struct {
		name                 string
		points, orders, net  int64
		tier                 string
		lost, doubled, wrong int
	}{
		{"right", 100, 2, 10_000, "silver", 0, 0, 0},
		{"an order lost", 50, 1, 5_000, "member", 3, 0, 0},
		{"an award doubled", 200, 2, 10_000, "member", 0, 1, 0},
		{"tier beyond what was ever spent", 100, 2, 10_000, "gold", 0, 0, 1},
		{"no such tier", 100, 2, 10_000, "", 0, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got profile
			got.Points.Balance, got.Orders.Count, got.Orders.NetAmountFen, got.Tier.Level = tt.points, tt.orders, tt.net, tt.tier
			var r Report
			r.compare("15100000001", got, want)
			assert.Equal(t, []int{tt.lost, tt.doubled, tt.wrong}, []int{r.Lost, r.Doubled, r.Wrong}, "lost, doubled, wrong: got, want")
			assert.Equal(t, tt.lost+tt.doubled+tt.wrong == 0, r.OK())
		})
	}
}

func TestWorkloadIsValidAndReproducible(t *testing.T) {
	w := Generate(50, 400, 9)
	again := Generate(50, 400, 9)
	require.Equal(t, len(w.Events), len(again.Events))
	kinds := map[string]int{}
	edge := admit.Policy{Window: admit.Live(admit.DefaultMaxAge, admit.DefaultMaxSkew)}
	for i, ev := range w.Events {
		// Every event passes ingest's checks, the source convention (<channel>/<shopId>) included.
		_, err := edge.Check(ev)
		require.NoError(t, err, "event %d", i)
		assert.Equal(t, ev.ID(), again.Events[i].ID())
		kinds[ev.Type()]++
	}
	assert.Equal(t, 400, countOrders(w), "every order belongs to someone")
	assert.Positive(t, kinds[events.OrderRefunded])
	assert.GreaterOrEqual(t, kinds[events.MemberRegistered], 50, "everyone registers (some twice: duplicates)")
	assert.Greater(t, len(w.Events), 400+50+kinds[events.OrderRefunded], "duplicates and re-sends on top")
	for _, p := range w.People {
		for _, o := range p.Orders {
			assert.GreaterOrEqual(t, o.NetFen(), int64(0), "refunds never exceed the payment")
		}
	}
}

func countOrders(w *Workload) int {
	n := 0
	for _, p := range w.People {
		n += len(p.Orders)
	}
	return n
}

func TestCheckNotificationsClassifiesLostDoubledAndWrong(t *testing.T) {
	w := &Workload{People: []*Person{{Phone: "15100000001", Orders: map[string]*Order{
		"tmall/a": {Channel: "tmall", ID: "a", PaidFen: 10_000},
		"jd/b":    {Channel: "jd", ID: "b", PaidFen: 5_000, RefundsFen: []int64{5_000}}, // no points to award
	}}}}
	sent := map[string]bool{events.NotificationSent: true}
	failed := map[string]bool{events.NotificationFailed: true}
	tests := []struct {
		name                 string
		awards               map[string]map[string]bool
		causes               []string
		outcomes             map[string]map[string]map[string]bool
		lost, doubled, wrong int
	}{
		{"one award, one notification sent", map[string]map[string]bool{"a": {"aw1": true}}, []string{"aw1"},
			map[string]map[string]map[string]bool{"aw1": {"n1": sent}}, 0, 0, 0},
		{"the award never came", nil, nil, nil, 1, 0, 0},
		{"two awards for one order", map[string]map[string]bool{"a": {"aw1": true, "aw2": true}}, []string{"aw1", "aw2"},
			map[string]map[string]map[string]bool{"aw1": {"n1": sent}, "aw2": {"n2": sent}}, 0, 1, 0},
		{"an award without its notification", map[string]map[string]bool{"a": {"aw1": true}}, []string{"aw1"}, nil, 1, 0, 0},
		{"a tier change notified twice", map[string]map[string]bool{"a": {"aw1": true}}, []string{"aw1", "tc1"},
			map[string]map[string]map[string]bool{"aw1": {"n1": sent}, "tc1": {"n2": sent, "n3": sent}}, 0, 1, 0},
		{"a notification both sent and failed", map[string]map[string]bool{"a": {"aw1": true}}, []string{"aw1"},
			map[string]map[string]map[string]bool{"aw1": {"n1": {events.NotificationSent: true, events.NotificationFailed: true}}}, 0, 0, 1},
		{"a notification failed", map[string]map[string]bool{"a": {"aw1": true}}, []string{"aw1"},
			map[string]map[string]map[string]bool{"aw1": {"n1": failed}}, 0, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := &Notices{Awards: tt.awards, Causes: map[string]bool{}, Outcomes: tt.outcomes}
			for _, c := range tt.causes {
				n.Causes[c] = true
			}
			var r Report
			r.CheckNotifications(w, n)
			assert.Equal(t, []int{tt.lost, tt.doubled, tt.wrong}, []int{r.Lost, r.Doubled, r.Wrong}, "lost, doubled, wrong: got, want; %v", r.Problems)
			assert.Equal(t, len(tt.causes), r.Notifications)
		})
	}
}
