package member

import (
	"context"
	"fmt"
	"time"

	"github.com/omnimember/omnimember/shared/amount"
	"github.com/omnimember/omnimember/shared/ledger"
	"github.com/omnimember/omnimember/shared/segment"
	"github.com/omnimember/omnimember/shared/store"
)

// Tags holds one document per (tag, member), written by the campaign function.
const Tags = "member_tags"

// Tag is a marketer's label on a member.
type Tag struct {
	Tag   string    `json:"tag"`
	OneID string    `json:"oneId"`
	At    time.Time `json:"at"`
}

// TagKey is the document id of a member's tag.
func TagKey(tag, oneID string) string { return tag + ":" + oneID }

// where each segment fact is kept: collection and indexed field (see Indexes).
var factFields = map[segment.Fact][2]string{
	segment.FactTier:              {Tiers, "level"},
	segment.FactPool:              {Members, "pool"},
	segment.FactMergedInto:        {Members, "mergedInto"},
	segment.FactErasedAt:          {Members, "erasedAt"},
	segment.FactLifetimeSpendFen:  {Accounts, "netAmountFen"},
	segment.FactLifetimeOrders:    {Accounts, "orderCount"},
	segment.FactLastOrderAt:       {Accounts, "lastOrderAt"},
	segment.FactLastInteractionAt: {Activities, "lastAt"},
	segment.FactPoints:            {Accounts, "balance"},
	segment.FactTag:               {Tags, "tag"},
}

// SegmentIndex answers segment rules from the member documents through indexed store queries.
type SegmentIndex struct {
	Store store.Store
}

var _ segment.Index = SegmentIndex{}

// heldByTheirMember are the facts kept under the OneID that recorded them, which a merge does not
// move (interactions, tags): an absorbed member's count for its survivor. The others live in
// documents their writer merges (accounts, tier states) or are the member's own (pool).
var heldByTheirMember = map[segment.Fact]bool{segment.FactLastInteractionAt: true, segment.FactTag: true}

// Select implements segment.Index with one single-field query, answered from the index alone.
func (s SegmentIndex) Select(ctx context.Context, f segment.Fact, op string, value any) ([]string, error) {
	cf, ok := factFields[f]
	if !ok {
		return nil, fmt.Errorf("no field holds segment fact %s", f)
	}
	ids, err := store.QueryIDs(ctx, s.Store, store.Query{Collection: cf[0],
		Filters: []store.Filter{{Field: cf[1], Op: op, Value: value}}})
	if err != nil {
		return nil, err
	}
	if f == segment.FactTag {
		// Tag documents are keyed tag:oneId.
		for i, id := range ids {
			ids[i] = id[len(fmt.Sprint(value))+1:]
		}
	}
	if !heldByTheirMember[f] {
		return ids, nil
	}
	live, err := s.merges(ctx)
	if err != nil {
		return nil, err
	}
	return live.all(ids), nil
}

// merges maps each absorbed member to the member that holds it now, following MergedInto chains,
// from one indexed query (the members with mergedInto set; a split clears it, so a restored member
// counts as itself again).
func (s SegmentIndex) merges(ctx context.Context) (merged, error) {
	docs, err := s.Store.Query(ctx, store.Query{Collection: Members,
		Filters: []store.Filter{{Field: "mergedInto", Op: store.OpGt, Value: ""}}})
	if err != nil {
		return nil, fmt.Errorf("merged members: %w", err)
	}
	into := make(map[string]string, len(docs))
	for _, d := range docs {
		var m struct {
			MergedInto string `json:"mergedInto"`
		}
		if err := d.DataTo(&m); err != nil {
			return nil, err
		}
		into[d.ID] = m.MergedInto
	}
	out := make(merged, len(into))
	for id := range into {
		live := id
		for hops := 0; into[live] != "" && hops <= MaxMergeHops; hops++ {
			live = into[live]
		}
		out[id] = live
	}
	return out, nil
}

// merged maps absorbed OneIDs to their live member.
type merged map[string]string

// of is the member that holds oneID's orders and interactions now.
func (m merged) of(oneID string) string {
	if live, ok := m[oneID]; ok {
		return live
	}
	return oneID
}

// all maps ids to their live members, each once.
func (m merged) all(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := ids[:0]
	for _, id := range ids {
		if live := m.of(id); !seen[live] {
			seen[live] = true
			out = append(out, live)
		}
	}
	return out
}

// Members implements segment.Index: every member with a pool (merged and erased ones are excluded
// by the rule's own plan).
func (s SegmentIndex) Members(ctx context.Context) ([]string, error) {
	return s.Select(ctx, segment.FactPool, segment.OpGte, "")
}

// Sums implements segment.Index: orders paid since (net of refunds) or interactions counted on the
// days since, per member; only the window's documents are read. An order keeps the OneID that first
// resolved it and an interaction the OneID it was recorded under, so each is summed for the member
// that holds that OneID now: a merged person counts once, with everything of the members it absorbed.
func (s SegmentIndex) Sums(ctx context.Context, m segment.Measure, since time.Time) (map[string]int64, error) {
	from := IndexTime(since)
	live, err := s.merges(ctx)
	if err != nil {
		return nil, err
	}
	switch m {
	case segment.MeasureSpendFen, segment.MeasureOrders:
		docs, err := s.Store.Query(ctx, store.Query{Collection: Orders,
			Filters: []store.Filter{{Field: "paidAtUtc", Op: store.OpGte, Value: from}}})
		if err != nil {
			return nil, fmt.Errorf("orders since %s: %w", from, err)
		}
		return sumOrders(docs, m, live)
	case segment.MeasureInteractions:
		docs, err := s.Store.Query(ctx, store.Query{Collection: Activities,
			Filters: []store.Filter{{Field: "lastAt", Op: store.OpGte, Value: from}}})
		if err != nil {
			return nil, fmt.Errorf("activity since %s: %w", from, err)
		}
		return sumDays(docs, from.Format(time.DateOnly), live)
	}
	return nil, fmt.Errorf("unknown measure %s", m)
}

func sumOrders(docs []store.Document, m segment.Measure, live merged) (map[string]int64, error) {
	out := map[string]int64{}
	for _, d := range docs {
		var o struct {
			OneID string `json:"oneId"`
			ledger.Order
		}
		if err := d.DataTo(&o); err != nil {
			return nil, err
		}
		if !o.Paid {
			continue
		}
		holder := live.of(o.OneID)
		if m == segment.MeasureOrders {
			out[holder]++
			continue
		}
		sum, err := amount.Add(out[holder], o.NetFen())
		if err != nil {
			return nil, fmt.Errorf("net spend of %s: %w", holder, err)
		}
		out[holder] = sum
	}
	return out, nil
}

func sumDays(docs []store.Document, fromDay string, live merged) (map[string]int64, error) {
	out := map[string]int64{}
	for _, d := range docs {
		var a Activity
		if err := d.DataTo(&a); err != nil {
			return nil, err
		}
		for day, n := range a.Daily {
			if day >= fromDay {
				out[live.of(d.ID)] += n
			}
		}
	}
	return out, nil
}

// Channels implements segment.Index by reading the members' documents in batches.
func (s SegmentIndex) Channels(ctx context.Context, oneIDs []string) (map[string][]string, error) {
	out := make(map[string][]string, len(oneIDs))
	err := s.each(ctx, oneIDs, func(m Member) { out[m.OneID] = m.Channels })
	return out, err
}

// Sample is one member of a segment as the console shows it: the phone masked, never in clear.
type Sample struct {
	OneID    string   `json:"oneId"`
	Phone    string   `json:"phone,omitempty"`
	Pool     string   `json:"pool"`
	Channels []string `json:"channels"`
}

// Samples reads the members to show as a segment's sample.
func (s SegmentIndex) Samples(ctx context.Context, oneIDs []string) ([]Sample, error) {
	out := make([]Sample, 0, len(oneIDs))
	err := s.each(ctx, oneIDs, func(m Member) {
		smp := Sample{OneID: m.OneID, Pool: m.Pool, Channels: m.Channels}
		for _, id := range m.Identities {
			if id.Masked != "" && smp.Phone == "" {
				smp.Phone = id.Masked
			}
		}
		out = append(out, smp)
	})
	return out, err
}

const readBatch = 300

func (s SegmentIndex) each(ctx context.Context, oneIDs []string, fn func(Member)) error {
	for start := 0; start < len(oneIDs); start += readBatch {
		batch := oneIDs[start:min(start+readBatch, len(oneIDs))]
		var docs []store.Document
		err := s.Store.RunTransaction(ctx, func(_ context.Context, tx store.Tx) error {
			var err error
			docs, err = tx.GetAll(Members, batch)
			return err
		})
		if err != nil {
			return fmt.Errorf("read %d members: %w", len(batch), err)
		}
		for _, d := range docs {
			if !d.Exists {
				continue
			}
			var m Member
			if err := d.DataTo(&m); err != nil {
				return err
			}
			fn(m)
		}
	}
	return nil
}
