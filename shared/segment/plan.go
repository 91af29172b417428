package segment

import (
	"context"
	"fmt"
	"sync"
	"time"
)

const day = 24 * time.Hour

// planRule turns each criterion into the queries that answer it; the criteria's queries run
// concurrently (each is an index scan), and their sets are gathered in the rule's order.
func planRule(ctx context.Context, ix Index, r Rule, now time.Time) (plan, error) {
	steps := []func(q *plan) error{
		func(q *plan) error { return q.union(ctx, ix, FactTier, r.Tiers) },
		func(q *plan) error {
			if r.Pool == "" {
				return nil
			}
			return q.union(ctx, ix, FactPool, []string{r.Pool})
		},
		func(q *plan) error { return q.amount(ctx, ix, FactLifetimeSpendFen, MeasureSpendFen, r.SpendFen, now) },
		func(q *plan) error { return q.amount(ctx, ix, FactLifetimeOrders, MeasureOrders, r.Orders, now) },
		func(q *plan) error { return q.amount(ctx, ix, "", MeasureInteractions, r.Interactions, now) },
		func(q *plan) error { return q.lastOrder(ctx, ix, r.DaysSinceLastOrder, now) },
		func(q *plan) error { return q.lastInteraction(ctx, ix, r.DaysSinceLastInteraction, now) },
		func(q *plan) error { return q.points(ctx, ix, r.Points) },
		func(q *plan) error { return q.tags(ctx, ix, r.Tags) },
		func(q *plan) error { return q.gone(ctx, ix) },
	}
	parts := make([]plan, len(steps))
	errs := make([]error, len(steps))
	var wg sync.WaitGroup
	for i, step := range steps {
		wg.Go(func() { errs[i] = step(&parts[i]) })
	}
	wg.Wait()
	p := plan{channels: r.Channels}
	for i := range parts {
		if errs[i] != nil {
			return p, errs[i]
		}
		p.include = append(p.include, parts[i].include...)
		p.exclude = append(p.exclude, parts[i].exclude...)
	}
	return p, nil
}

func (p *plan) union(ctx context.Context, ix Index, f Fact, values []string) error {
	if len(values) == 0 {
		return nil
	}
	var all []string
	for _, v := range values {
		ids, err := ix.Select(ctx, f, OpEq, v)
		if err != nil {
			return fmt.Errorf("select %s == %s: %w", f, v, err)
		}
		all = append(all, ids...)
	}
	p.include = append(p.include, all)
	return nil
}

// bounded selects by an indexed fact: members must have it at least min; above max they leave.
// Without a positive min, members with no value (zero) match too, so max becomes an exclusion.
func (p *plan) bounded(ctx context.Context, ix Index, f Fact, r Range) error {
	if r.needsMin() {
		ids, err := ix.Select(ctx, f, OpGte, *r.Min)
		if err != nil {
			return fmt.Errorf("select %s >= %d: %w", f, *r.Min, err)
		}
		p.include = append(p.include, ids)
	}
	if r.Max != nil {
		ids, err := ix.Select(ctx, f, OpGt, *r.Max)
		if err != nil {
			return fmt.Errorf("select %s > %d: %w", f, *r.Max, err)
		}
		p.exclude = append(p.exclude, ids)
	}
	return nil
}

// amount is a spend, order or interaction criterion: lifetime from an indexed total, a window
// from the sums over the window's documents.
func (p *plan) amount(ctx context.Context, ix Index, lifetime Fact, m Measure, w *Window, now time.Time) error {
	if w == nil {
		return nil
	}
	if w.Days == 0 {
		return p.bounded(ctx, ix, lifetime, w.Range)
	}
	sums, err := ix.Sums(ctx, m, now.Add(-time.Duration(w.Days)*day))
	if err != nil {
		return fmt.Errorf("sum %s over %d days: %w", m, w.Days, err)
	}
	var in, out []string
	for id, v := range sums {
		switch {
		case w.Max != nil && v > *w.Max:
			out = append(out, id)
		case w.Min != nil && v < *w.Min:
			out = append(out, id)
		default:
			in = append(in, id)
		}
	}
	if w.needsMin() {
		p.include = append(p.include, in)
	}
	p.exclude = append(p.exclude, out)
	return nil
}

func cutoff(now time.Time, days int64) string {
	return now.UTC().Add(-time.Duration(days) * day).Truncate(time.Second).Format(time.RFC3339)
}

// lastOrder selects members who ordered, by how long ago their last order was.
func (p *plan) lastOrder(ctx context.Context, ix Index, r *Range, now time.Time) error {
	if r == nil {
		return nil
	}
	sel := func(op string, days int64) error {
		ids, err := ix.Select(ctx, FactLastOrderAt, op, cutoff(now, days))
		p.include = append(p.include, ids)
		return err
	}
	if r.Min != nil {
		if err := sel(OpLte, *r.Min); err != nil {
			return err
		}
	}
	if r.Max != nil {
		return sel(OpGte, *r.Max)
	}
	return nil
}

// lastInteraction: a member who never interacted is as far away as can be, so min excludes the
// recently active and max includes only those active since.
func (p *plan) lastInteraction(ctx context.Context, ix Index, r *Range, now time.Time) error {
	if r == nil {
		return nil
	}
	if r.Min != nil {
		ids, err := ix.Select(ctx, FactLastInteractionAt, OpGt, cutoff(now, *r.Min))
		if err != nil {
			return err
		}
		p.exclude = append(p.exclude, ids)
	}
	if r.Max != nil {
		ids, err := ix.Select(ctx, FactLastInteractionAt, OpGte, cutoff(now, *r.Max))
		if err != nil {
			return err
		}
		p.include = append(p.include, ids)
	}
	return nil
}

func (p *plan) points(ctx context.Context, ix Index, r *Range) error {
	if r == nil {
		return nil
	}
	return p.bounded(ctx, ix, FactPoints, *r)
}

func (p *plan) tags(ctx context.Context, ix Index, tags []string) error {
	for _, t := range tags {
		ids, err := ix.Select(ctx, FactTag, OpEq, t)
		if err != nil {
			return fmt.Errorf("select tag %s: %w", t, err)
		}
		p.include = append(p.include, ids)
	}
	return nil
}

// gone removes members merged into another or erased: they are no one to contact.
func (p *plan) gone(ctx context.Context, ix Index) error {
	for _, f := range []Fact{FactMergedInto, FactErasedAt} {
		ids, err := ix.Select(ctx, f, OpGt, "")
		if err != nil {
			return fmt.Errorf("select %s: %w", f, err)
		}
		p.exclude = append(p.exclude, ids)
	}
	return nil
}
