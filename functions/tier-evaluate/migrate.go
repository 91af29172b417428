package tierevaluate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/store"
)

// rollsAtMigration names the one pass that gives tier states written before rollsAt existed their
// rollsAt: without it a member with no activity since would never be found when its window rolls.
const rollsAtMigration = "rolls-at"

// migrationBatch is how many tier states one migration transaction reads and writes (Firestore
// allows 500 writes in a transaction).
const migrationBatch = 300

// Migration records a one-time pass the evaluation job made over the stored tier states.
type Migration struct {
	Name    string    `json:"name"`
	DoneAt  time.Time `json:"doneAt"`
	Changed int       `json:"changed"`
}

// migrateRollsAt sets rollsAt on every live tier state that has purchases and none, once: a read of
// one document on every later run. Safe to run twice at once (each state is set in a transaction
// that reads it; the same value either way).
func (h *Handler) migrateRollsAt(ctx context.Context) error {
	done, err := h.migrated(ctx, rollsAtMigration)
	if err != nil || done {
		return err
	}
	ids, err := store.QueryIDs(ctx, h.Store, store.Query{Collection: member.Tiers,
		Filters: []store.Filter{{Field: "level", Op: store.OpGte, Value: ""}}})
	if err != nil {
		return fmt.Errorf("migration %s: list tier states: %w", rollsAtMigration, err)
	}
	changed := 0
	for start := 0; start < len(ids); start += migrationBatch {
		n, err := h.setRollsAt(ctx, ids[start:min(start+migrationBatch, len(ids))])
		if err != nil {
			return fmt.Errorf("migration %s: %w", rollsAtMigration, err)
		}
		changed += n
	}
	return h.Store.RunTransaction(ctx, func(_ context.Context, tx store.Tx) error {
		return tx.Set(member.TierJobs, rollsAtMigration, Migration{Name: rollsAtMigration, DoneAt: h.Now(), Changed: changed})
	})
}

func (h *Handler) migrated(ctx context.Context, name string) (bool, error) {
	err := h.Store.RunTransaction(ctx, func(_ context.Context, tx store.Tx) error {
		return tx.Get(member.TierJobs, name, &Migration{})
	})
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// setRollsAt gives the states of ids that lack it their next change after their last decision.
func (h *Handler) setRollsAt(ctx context.Context, ids []string) (int, error) {
	changed := 0
	err := h.Store.RunTransaction(ctx, func(_ context.Context, tx store.Tx) error {
		changed = 0
		docs, err := tx.GetAll(member.Tiers, ids)
		if err != nil {
			return err
		}
		for _, d := range docs {
			var s member.TierState
			if !d.Exists {
				continue
			}
			if err := d.DataTo(&s); err != nil {
				return err
			}
			next, ok := h.Rules.NextChange(s.Purchases, s.EvaluatedAt)
			if s.RollsAt != nil || s.MergedInto != "" || !ok {
				continue
			}
			s.RollsAt = indexedUp(next)
			if err := tx.Set(member.Tiers, d.ID, s); err != nil {
				return err
			}
			changed++
		}
		return nil
	})
	return changed, err
}
