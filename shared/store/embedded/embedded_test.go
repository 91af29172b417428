package embedded

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/omnimember/omnimember/shared/store"
	"github.com/omnimember/omnimember/shared/store/storetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(filepath.Join(t.TempDir(), "store.db"), Options{})
		require.NoError(t, err)
		return s
	})
}

func TestReopenKeepsCommittedDocuments(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := Open(path, Options{})
	require.NoError(t, err)
	require.NoError(t, s.Set(context.Background(), "members", "om_1", map[string]any{"n": 1}))
	require.NoError(t, s.Close())

	s, err = Open(path, Options{})
	require.NoError(t, err)
	defer s.Close()
	var got map[string]any
	require.NoError(t, s.Get(context.Background(), "members", "om_1", &got))
	require.Equal(t, float64(1), got["n"])
}

// TestContractWithIndexes runs the whole contract with indexes on the queried fields: an index
// must never change a query's answer.
func TestContractWithIndexes(t *testing.T) {
	indexes := map[string][]string{"profiles": {"tier", "balance", "orders.count"}, "counters": {"n"}, "members": {"owner"}}
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(filepath.Join(t.TempDir(), "store.db"), Options{Indexes: indexes})
		require.NoError(t, err)
		return s
	})
}

func TestIndexesFollowWritesAndBuildForOldDocuments(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := Open(path, Options{})
	require.NoError(t, err)
	for i, v := range []float64{-2.5, -1, 0, 3, 1e6, 7} {
		require.NoError(t, s.Set(ctx, "orders", fmt.Sprint("o", i), map[string]any{"oneId": fmt.Sprint("m", i%2), "fen": v}))
	}
	require.NoError(t, s.Close())

	s, err = Open(path, Options{Indexes: map[string][]string{"orders": {"oneId", "fen"}}})
	require.NoError(t, err, "declaring an index builds it over existing documents")
	defer s.Close()
	query := func(filters ...store.Filter) []string {
		docs, err := s.Query(ctx, store.Query{Collection: "orders", Filters: filters})
		require.NoError(t, err)
		var out []string
		for _, d := range docs {
			out = append(out, d.ID)
		}
		return out
	}
	assert.ElementsMatch(t, []string{"o0", "o2", "o4"}, query(store.Filter{Field: "oneId", Op: "==", Value: "m0"}))
	assert.ElementsMatch(t, []string{"o0", "o1"}, query(store.Filter{Field: "fen", Op: "<", Value: 0}))
	assert.ElementsMatch(t, []string{"o2", "o3", "o5"}, query(store.Filter{Field: "fen", Op: ">=", Value: 0}, store.Filter{Field: "fen", Op: "<=", Value: 7}))
	assert.ElementsMatch(t, []string{"o4"}, query(store.Filter{Field: "fen", Op: ">", Value: 7}))

	require.NoError(t, s.Set(ctx, "orders", "o0", map[string]any{"oneId": "m9", "fen": 5}))
	require.NoError(t, s.Delete(ctx, "orders", "o2"))
	assert.ElementsMatch(t, []string{"o4"}, query(store.Filter{Field: "oneId", Op: "==", Value: "m0"}), "moved and deleted documents leave the index")
	assert.ElementsMatch(t, []string{"o0"}, query(store.Filter{Field: "oneId", Op: "==", Value: "m9"}))
	assert.Empty(t, query(store.Filter{Field: "oneId", Op: "==", Value: 5}), "values of another kind never match")
}
