package embedded

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/omnimember/omnimember/shared/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExpireDeletesOnlyDocumentsPastTheirTime(t *testing.T) {
	ctx := context.Background()
	indexes := map[string][]string{"receipts": {"function"}}
	s := openTemp(t, Options{Indexes: indexes, Expire: map[string]string{"receipts": "expireAt"}, ExpireEvery: -1})
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	shanghai := time.FixedZone("CST", 8*3600)
	docs := map[string]any{
		"past":          map[string]any{"function": "f", "expireAt": now.Add(-time.Minute)},
		"past-fraction": map[string]any{"function": "f", "expireAt": now.Add(-time.Nanosecond)},
		"past-zoned":    map[string]any{"function": "f", "expireAt": now.Add(-9 * time.Hour).In(shanghai)},
		"future":        map[string]any{"function": "f", "expireAt": now.Add(time.Minute)},
		"future-zoned":  map[string]any{"function": "f", "expireAt": now.Add(time.Minute).In(time.FixedZone("EST", -5*3600))},
		"exactly-now":   map[string]any{"function": "f", "expireAt": now},
		"no-field":      map[string]any{"function": "f"},
		"not-a-time":    map[string]any{"function": "f", "expireAt": "soon"},
	}
	for id, d := range docs {
		require.NoError(t, s.Set(ctx, "receipts", id, d))
	}
	require.NoError(t, s.Set(ctx, "orders", "past", map[string]any{"expireAt": now.Add(-time.Hour)}))

	n, err := s.Expire(ctx, now)
	require.NoError(t, err)
	assert.Equal(t, 3, n, "got deleted, want the three past their time")
	for id := range docs {
		err := s.Get(ctx, "receipts", id, &map[string]any{})
		switch id {
		case "past", "past-fraction", "past-zoned":
			assert.ErrorIs(t, err, store.ErrNotFound, "%s is past its time", id)
		default:
			assert.NoError(t, err, "%s is kept", id)
		}
	}
	require.NoError(t, s.Get(ctx, "orders", "past", &map[string]any{}), "a collection without an expiry keeps its documents")
	left, err := s.Query(ctx, store.Query{Collection: "receipts", Filters: []store.Filter{{Field: "function", Op: "==", Value: "f"}}})
	require.NoError(t, err)
	assert.Len(t, left, 5, "deleted documents leave the indexes")
	assert.Equal(t, map[string][]string{"receipts": {"function"}}, indexes, "the caller's index map is not changed")

	n, err = s.Expire(ctx, now)
	require.NoError(t, err)
	assert.Zero(t, n, "a second sweep finds nothing")
}

func TestExpirySweepsInTheBackground(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, Options{Expire: map[string]string{"receipts": "expireAt"}, ExpireEvery: 10 * time.Millisecond})
	require.NoError(t, s.Set(ctx, "receipts", "old", map[string]any{"expireAt": time.Now().Add(-time.Hour)}))
	require.NoError(t, s.Set(ctx, "receipts", "new", map[string]any{"expireAt": time.Now().Add(time.Hour)}))
	require.Eventually(t, func() bool {
		return s.Get(ctx, "receipts", "old", &map[string]any{}) != nil
	}, 10*time.Second, 5*time.Millisecond, "the expired document is swept")
	require.NoError(t, s.Get(ctx, "receipts", "new", &map[string]any{}))
}

// TestExpireWalksPastWhatItKeeps: more expired documents than one transaction deletes, with
// candidates that turn out not to be past their time (a zone west of UTC sorts early) among them.
func TestExpireWalksPastWhatItKeeps(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, Options{Expire: map[string]string{"receipts": "expireAt"}, ExpireEvery: -1})
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	west := time.FixedZone("EST", -5*3600)
	const expired = 3*expireBatch + 17
	require.NoError(t, s.RunTransaction(ctx, func(_ context.Context, tx store.Tx) error {
		for i := range expired {
			at := now.Add(-time.Duration(i+1) * time.Second)
			if err := tx.Set("receipts", fmt.Sprint("old-", i), map[string]any{"expireAt": at}); err != nil {
				return err
			}
			if i%100 == 0 { // sorts among the expired ones, but is an hour ahead of now
				if err := tx.Set("receipts", fmt.Sprint("kept-", i), map[string]any{"expireAt": at.Add(time.Hour).In(west)}); err != nil {
					return err
				}
			}
		}
		return nil
	}))
	n, err := s.Expire(ctx, now)
	require.NoError(t, err)
	assert.Equal(t, expired, n, "got deleted, want every expired document")
	docs, err := s.Query(ctx, store.Query{Collection: "receipts"})
	require.NoError(t, err)
	assert.Len(t, docs, expired/100+1, "got kept, want the ones not yet past their time")
}
