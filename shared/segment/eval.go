package segment

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Fact is a member attribute the store holds in an indexed field.
type Fact string

// Facts a rule selects on; each lives in one indexed field of one collection.
const (
	FactTier              Fact = "tier"              // level
	FactPool              Fact = "pool"              // plaintext / ciphertext
	FactMergedInto        Fact = "mergedInto"        // set on a member absorbed by another
	FactErasedAt          Fact = "erasedAt"          // set on an erased member
	FactLifetimeSpendFen  Fact = "lifetimeSpendFen"  // net spend of every order
	FactLifetimeOrders    Fact = "lifetimeOrders"    // paid orders
	FactLastOrderAt       Fact = "lastOrderAt"       // UTC time, whole seconds
	FactLastInteractionAt Fact = "lastInteractionAt" // UTC time, whole seconds
	FactPoints            Fact = "points"            // points balance
	FactTag               Fact = "tag"               // one tag of a member
)

// Measure is a per-member quantity summed over a window of days.
type Measure string

// Measures over a window.
const (
	MeasureSpendFen     Measure = "spendFen"
	MeasureOrders       Measure = "orders"
	MeasureInteractions Measure = "interactions"
)

// Comparison operators of Select.
const (
	OpEq  = "=="
	OpLt  = "<"
	OpLte = "<="
	OpGt  = ">"
	OpGte = ">="
)

// Index answers the questions a rule asks of member data. The store behind it filters: Select is one
// indexed query, Sums reads only the documents of the window.
type Index interface {
	// Select returns the OneIDs whose fact compares with value by op.
	Select(ctx context.Context, fact Fact, op string, value any) ([]string, error)
	// Sums adds up a measure per OneID over the documents dated at or after since.
	Sums(ctx context.Context, m Measure, since time.Time) (map[string]int64, error)
	// Channels returns the channels each of the members is on (a list the store cannot filter by).
	Channels(ctx context.Context, oneIDs []string) (map[string][]string, error)
	// Members returns every live member, for rules whose criteria only exclude.
	Members(ctx context.Context) ([]string, error)
}

// Result is the set of OneIDs a rule selects.
type Result struct{ ids map[string]int }

// Count is how many members the rule selects.
func (r Result) Count() int { return len(r.ids) }

// Contains reports whether the member is selected.
func (r Result) Contains(oneID string) bool { _, ok := r.ids[oneID]; return ok }

// Sorted lists the OneIDs in byte order: the order a fan-out walks, so a cursor can resume it.
func (r Result) Sorted() []string {
	out := make([]string, 0, len(r.ids))
	for id := range r.ids {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// First returns the n smallest OneIDs (a stable sample) without sorting the whole set.
func (r Result) First(n int) []string {
	out := make([]string, 0, n+1)
	for id := range r.ids {
		if len(out) == n && n > 0 && id >= out[n-1] {
			continue
		}
		i, _ := slices.BinarySearch(out, id)
		out = slices.Insert(out, i, id)
		if len(out) > n {
			out = out[:n]
		}
	}
	return out
}

// plan is what a rule asks: sets a member must be in, sets it must not be in, and checks on the
// few candidates left that the store cannot do.
type plan struct {
	include  [][]string
	exclude  [][]string
	channels []string
}

// Evaluate selects the members of a rule as of now: every criterion becomes indexed queries, the
// smallest included set is intersected with the others, then the excluded sets are removed.
func Evaluate(ctx context.Context, ix Index, r Rule, now time.Time) (Result, error) {
	if err := r.Validate(); err != nil {
		return Result{}, err
	}
	p, err := planRule(ctx, ix, r, now)
	if err != nil {
		return Result{}, err
	}
	if len(p.include) == 0 {
		all, err := ix.Members(ctx)
		if err != nil {
			return Result{}, fmt.Errorf("list members: %w", err)
		}
		p.include = append(p.include, all)
	}
	set := intersect(p.include)
	for _, ids := range p.exclude {
		for _, id := range ids {
			delete(set, id)
		}
	}
	if len(p.channels) > 0 {
		if err := keepOnChannels(ctx, ix, set, p.channels); err != nil {
			return Result{}, err
		}
	}
	return Result{ids: set}, nil
}

// intersect keeps the ids found in every set: one map of the smallest set, each id counting the
// sets it was seen in (no map per set), then those short of all of them leave.
func intersect(sets [][]string) map[string]int {
	slices.SortFunc(sets, func(a, b []string) int { return len(a) - len(b) })
	seen := make(map[string]int, len(sets[0]))
	for _, id := range sets[0] {
		seen[id] = 1
	}
	for i, ids := range sets[1:] {
		for _, id := range ids {
			if n, ok := seen[id]; ok && n == i+1 {
				seen[id] = n + 1
			}
		}
	}
	if len(sets) > 1 {
		for id, n := range seen {
			if n < len(sets) {
				delete(seen, id)
			}
		}
	}
	return seen
}

func keepOnChannels(ctx context.Context, ix Index, set map[string]int, channels []string) error {
	ids := make([]string, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	on, err := ix.Channels(ctx, ids)
	if err != nil {
		return fmt.Errorf("channels of %d members: %w", len(ids), err)
	}
	for _, id := range ids {
		if !slices.ContainsFunc(on[id], func(c string) bool { return slices.Contains(channels, c) }) {
			delete(set, id)
		}
	}
	return nil
}
