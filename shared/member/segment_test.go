package member_test

import (
	"context"
	"testing"
	"time"

	"github.com/omnimember/omnimember/shared/ledger"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/segment"
	"github.com/omnimember/omnimember/shared/store"
	"github.com/omnimember/omnimember/shared/store/teststores"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var now = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)

func daysAgo(n int) time.Time { return now.AddDate(0, 0, -n) }

type person struct {
	id, pool, mergedInto, tier, tag string
	channels                        []string
	orders                          []order // paid days ago, fen, refunded fen
	interactions                    []int   // days ago of each interaction
	balance                         int64
}

type order struct {
	daysAgo        int
	fen, refundFen int64
}

// people are written as match, points-award, tier-evaluate, profile and campaign write them.
var people = []person{
	{id: "om_a", pool: "plaintext", channels: []string{"tmall"}, balance: 600,
		orders: []order{{10, 60000, 0}}, interactions: repeat(5, 12)},
	{id: "om_b", pool: "plaintext", channels: []string{"douyin"}, tag: "vip",
		orders: []order{{3, 5000, 0}}, interactions: repeat(2, 15)},
	{id: "om_c", pool: "ciphertext", channels: []string{"jd"}, tier: "gold",
		orders: []order{{400, 150000, 0}, {200, 50000, 0}}, interactions: []int{190}},
	{id: "om_d", pool: "plaintext", channels: []string{"jd", "tmall"},
		orders: []order{{200, 200000, 0}}, interactions: []int{10}},
	{id: "om_e", pool: "plaintext", mergedInto: "om_a", channels: []string{"tmall"}},
	{id: "om_f", pool: "ciphertext", channels: []string{"douyin"}},
	{id: "om_g", pool: "plaintext", channels: []string{"app"},
		orders: []order{{300, 200000, 150000}}},
}

func repeat(day, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = day
	}
	return out
}

func seed(t *testing.T, s store.Store) { seedPeople(t, s, people) }

// seedPeople writes people as the functions do. An absorbed member's orders and interactions stay
// under its own OneID (points-award keeps an order's oneId, profile its activity document), while
// points-award moves its totals into the survivor's account and leaves its own account empty.
func seedPeople(t *testing.T, s store.Store, people []person) {
	ctx := context.Background()
	accounts := map[string]*member.Account{}
	account := func(p person) *member.Account {
		id := p.id
		if p.mergedInto != "" {
			id = p.mergedInto
		}
		if accounts[id] == nil {
			accounts[id] = &member.Account{OneID: id}
		}
		return accounts[id]
	}
	for _, p := range people {
		m := member.Member{OneID: p.id, Pool: p.pool, Channels: p.channels, MergedInto: p.mergedInto,
			Identities: []member.StoredIdentity{{Type: "phone", Key: "k" + p.id, Masked: "138****" + p.id[3:], Channel: "app"}}}
		require.NoError(t, s.Set(ctx, member.Members, p.id, m))
		acct := account(p)
		acct.Balance += p.balance
		for i, o := range p.orders {
			paid := member.IndexTime(daysAgo(o.daysAgo))
			od := member.Order{OrderID: p.id + string(rune('0'+i)), Channel: "jd", OneID: p.id, PaidAt: paid, PaidAtUTC: &paid,
				Order: ledger.Order{Paid: true, PaidFen: o.fen}}
			if o.refundFen > 0 {
				od.Refunds = map[string]int64{"r": o.refundFen}
			}
			require.NoError(t, s.Set(ctx, member.Orders, member.OrderKey("jd", od.OrderID), od))
			acct.OrderCount++
			acct.NetAmountFen += o.fen - o.refundFen
			if acct.LastOrderAt == nil || paid.After(*acct.LastOrderAt) {
				acct.LastOrderAt = &paid
			}
		}
		if p.mergedInto != "" && (len(p.orders) > 0 || p.balance > 0) {
			require.NoError(t, s.Set(ctx, member.Accounts, p.id, member.Account{OneID: p.id, MergedInto: p.mergedInto}))
		}
		if len(p.interactions) > 0 {
			act := member.Activity{OneID: p.id}
			for _, d := range p.interactions {
				act.Record(daysAgo(d), now)
			}
			require.NoError(t, s.Set(ctx, member.Activities, p.id, act))
		}
		if p.tier != "" {
			require.NoError(t, s.Set(ctx, member.Tiers, p.id, member.TierState{OneID: p.id, Level: p.tier}))
		}
		if p.tag != "" {
			require.NoError(t, s.Set(ctx, member.Tags, member.TagKey(p.tag, p.id), member.Tag{Tag: p.tag, OneID: p.id, At: now}))
		}
	}
	for id, acct := range accounts {
		if acct.OrderCount > 0 || acct.Balance > 0 {
			require.NoError(t, s.Set(ctx, member.Accounts, id, *acct))
		}
	}
}

func n(v int64) *int64 { return &v }

func TestSegmentsSelectByIndexedFacts(t *testing.T) {
	catalog, err := segment.Default()
	require.NoError(t, err)
	builtin := func(name string) segment.Rule {
		s, err := catalog.Get(name)
		require.NoError(t, err)
		return s.Rule
	}
	tests := []struct {
		name string
		rule segment.Rule
		want []string
	}{
		{"high-value", builtin("high-value"), []string{"om_a"}},
		{"high-potential", builtin("high-potential"), []string{"om_b"}},
		{"dormant", builtin("dormant"), []string{"om_c"}},
		{"ciphertext pool", builtin("ciphertext-pool"), []string{"om_c", "om_f"}},
		{"plaintext pool leaves the merged member out", builtin("plaintext-pool"), []string{"om_a", "om_b", "om_d", "om_g"}},
		{"tier", segment.Rule{Tiers: []string{"gold", "silver"}}, []string{"om_c"}},
		{"channels any of", segment.Rule{Channels: []string{"tmall", "app"}}, []string{"om_a", "om_d", "om_g"}},
		{"channel and pool", segment.Rule{Channels: []string{"jd"}, Pool: "plaintext"}, []string{"om_d"}},
		{"tag", segment.Rule{Tags: []string{"vip"}}, []string{"om_b"}},
		{"points at least", segment.Rule{Points: &segment.Range{Min: n(100)}}, []string{"om_a"}},
		{"no points", segment.Rule{Points: &segment.Range{Max: n(0)}}, []string{"om_b", "om_c", "om_d", "om_f", "om_g"}},
		{"lifetime orders", segment.Rule{Orders: &segment.Window{Days: 0, Range: segment.Range{Min: n(2)}}}, []string{"om_c"}},
		{"orders in 30 days", segment.Rule{Orders: &segment.Window{Days: 30, Range: segment.Range{Min: n(1)}}}, []string{"om_a", "om_b"}},
		{"refunds count against spend", segment.Rule{SpendFen: &segment.Window{Range: segment.Range{Min: n(100000)}}}, []string{"om_c", "om_d"}},
		{"ordered recently", segment.Rule{DaysSinceLastOrder: &segment.Range{Max: n(30)}}, []string{"om_a", "om_b"}},
		{"last order between", segment.Rule{DaysSinceLastOrder: &segment.Range{Min: n(100), Max: n(250)}}, []string{"om_c", "om_d"}},
		{"interacted within a week", segment.Rule{DaysSinceLastInteraction: &segment.Range{Max: n(7)}}, []string{"om_a", "om_b"}},
		{"no interaction in 30 days", segment.Rule{Interactions: &segment.Window{Days: 30, Range: segment.Range{Max: n(0)}}}, []string{"om_c", "om_f", "om_g"}},
	}
	teststores.Each(t, member.Indexes, func(t *testing.T, s store.Store) {
		seed(t, s)
		ix := member.SegmentIndex{Store: s}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := segment.Evaluate(context.Background(), ix, tt.rule, now)
				require.NoError(t, err)
				assert.Equal(t, tt.want, got.Sorted(), "got members, want")
				assert.Equal(t, len(tt.want), got.Count())
			})
		}
		got, err := segment.Evaluate(context.Background(), ix, builtin("plaintext-pool"), now)
		require.NoError(t, err)
		samples, err := ix.Samples(context.Background(), got.First(2))
		require.NoError(t, err)
		require.Len(t, samples, 2)
		assert.Equal(t, []string{"om_a", "om_b"}, []string{samples[0].OneID, samples[1].OneID})
		assert.Equal(t, "138****a", samples[0].Phone, "a sample shows the masked phone only")
	})
}

// TestSegmentsCountAMergedPersonOnce is the finding: window sums keyed orders and
// interactions by the OneID that first saw them and skipped absorbed members, so a merged person was
// undercounted (om_j: ¥300 of its own in 30 days and ¥300 more as om_k) or wrongly dormant (om_h
// interacted as om_i). After a split restores om_k, its orders count for om_k again.
func TestSegmentsCountAMergedPersonOnce(t *testing.T) {
	merged := []person{
		{id: "om_h", pool: "plaintext", channels: []string{"jd"}, orders: []order{{200, 150000, 0}}},
		{id: "om_i", pool: "plaintext", mergedInto: "om_h", channels: []string{"app"}, interactions: repeat(10, 3), tag: "vip"},
		{id: "om_j", pool: "plaintext", channels: []string{"tmall"}, orders: []order{{10, 30000, 0}}, interactions: repeat(5, 6)},
		{id: "om_k", pool: "plaintext", mergedInto: "om_j", channels: []string{"jd"}, orders: []order{{12, 30000, 0}}, interactions: repeat(6, 6)},
	}
	catalog, err := segment.Default()
	require.NoError(t, err)
	dormant, err := catalog.Get("dormant")
	require.NoError(t, err)
	highValue, err := catalog.Get("high-value")
	require.NoError(t, err)
	tests := []struct {
		name string
		rule segment.Rule
		want []string
	}{
		{"high-value counts the absorbed member's orders and interactions", highValue.Rule, []string{"om_j"}},
		{"orders in 30 days", segment.Rule{Orders: &segment.Window{Days: 30, Range: segment.Range{Min: n(2)}}}, []string{"om_j"}},
		{"spend in 30 days", segment.Rule{SpendFen: &segment.Window{Days: 30, Range: segment.Range{Min: n(60000)}}}, []string{"om_j"}},
		{"not dormant: interacted as the absorbed member", dormant.Rule, nil},
		{"interacted within two weeks", segment.Rule{DaysSinceLastInteraction: &segment.Range{Max: n(14)}}, []string{"om_h", "om_j"}},
		{"the absorbed member's tag", segment.Rule{Tags: []string{"vip"}}, []string{"om_h"}},
	}
	teststores.Each(t, member.Indexes, func(t *testing.T, s store.Store) {
		seedPeople(t, s, merged)
		ix := member.SegmentIndex{Store: s}
		for _, tt := range tests {
			got, err := segment.Evaluate(context.Background(), ix, tt.rule, now)
			require.NoError(t, err)
			assert.Equal(t, tt.want, nilIfEmpty(got.Sorted()), "%s: got members, want", tt.name)
		}

		// A split gives om_k back its identities (match), its orders and their totals (points-award).
		ctx := context.Background()
		var k member.Member
		require.NoError(t, s.Get(ctx, member.Members, "om_k", &k))
		k.MergedInto = ""
		require.NoError(t, s.Set(ctx, member.Members, "om_k", k))
		got, err := segment.Evaluate(ctx, ix, segment.Rule{SpendFen: &segment.Window{Days: 30, Range: segment.Range{Min: n(30000)}}}, now)
		require.NoError(t, err)
		assert.Equal(t, []string{"om_j", "om_k"}, got.Sorted(), "after the split each counts its own orders")
		got, err = segment.Evaluate(ctx, ix, segment.Rule{SpendFen: &segment.Window{Days: 30, Range: segment.Range{Min: n(60000)}}}, now)
		require.NoError(t, err)
		assert.Empty(t, got.Sorted(), "nobody has both any more")
	})
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}
