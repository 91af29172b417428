package embedded

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/omnimember/omnimember/shared/store"
	"github.com/omnimember/omnimember/shared/store/storetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	berrors "go.etcd.io/bbolt/errors"
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

type count struct {
	N int `json:"n"`
}

func openTemp(t *testing.T, opts Options) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "store.db"), opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestConflictingTransactionRunsAgain changes, from inside a transaction, the document it read:
// its commit must not overwrite that change but run again on the new version.
func TestConflictingTransactionRunsAgain(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, Options{})
	require.NoError(t, s.Set(ctx, "c", "x", count{N: 1}))
	attempts := 0
	err := s.RunTransaction(ctx, func(ctx context.Context, tx store.Tx) error {
		attempts++
		var c count
		if err := tx.Get("c", "x", &c); err != nil {
			return err
		}
		if attempts == 1 { // another writer commits between this read and this commit
			require.NoError(t, s.Set(ctx, "c", "x", count{N: 10}))
		}
		return tx.Set("c", "x", count{N: c.N + 1})
	})
	require.NoError(t, err)
	var got count
	require.NoError(t, s.Get(ctx, "c", "x", &got))
	assert.Equal(t, 11, got.N, "got n, want the concurrent write kept and incremented")
	assert.Equal(t, 2, attempts, "got attempts, want one conflict then a commit")
}

// TestErrorFromStaleReadRunsAgain: an error decided on a version that has since changed is not
// the transaction's answer; the error on the current version is.
func TestErrorFromStaleReadRunsAgain(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, Options{})
	require.NoError(t, s.Set(ctx, "c", "x", count{N: 0}))
	tooLow := errors.New("balance too low")
	attempts := 0
	err := s.RunTransaction(ctx, func(ctx context.Context, tx store.Tx) error {
		attempts++
		var c count
		if err := tx.Get("c", "x", &c); err != nil {
			return err
		}
		if attempts == 1 {
			require.NoError(t, s.Set(ctx, "c", "x", count{N: 5}))
		}
		if c.N < 5 {
			return tooLow
		}
		return tx.Set("c", "x", count{N: c.N - 5})
	})
	require.NoError(t, err, "the retry sees the credited balance")
	assert.Equal(t, 2, attempts)

	err = s.RunTransaction(ctx, func(_ context.Context, tx store.Tx) error {
		var c count
		if err := tx.Get("c", "x", &c); err != nil {
			return err
		}
		return tooLow
	})
	require.ErrorIs(t, err, tooLow, "an error on current reads is returned")
}

// TestHotDocumentCommitsEveryIncrement runs far more writers on one document than optimistic
// attempts can serve: those that keep conflicting run inside the writer, and none is lost.
func TestHotDocumentCommitsEveryIncrement(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, Options{Indexes: map[string][]string{"c": {"n"}}})
	const workers, each = 64, 20
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				assert.NoError(t, s.RunTransaction(ctx, func(_ context.Context, tx store.Tx) error {
					var c count
					if err := tx.Get("c", "hot", &c); err != nil && !errors.Is(err, store.ErrNotFound) {
						return err
					}
					return tx.Set("c", "hot", count{N: c.N + 1})
				}))
			}
		})
	}
	wg.Wait()
	var got count
	require.NoError(t, s.Get(ctx, "c", "hot", &got))
	assert.Equal(t, workers*each, got.N, "got count, want every increment once")
	docs, err := s.Query(ctx, store.Query{Collection: "c", Filters: []store.Filter{{Field: "n", Op: "==", Value: workers * each}}})
	require.NoError(t, err)
	assert.Len(t, docs, 1, "the index follows the last committed version")
	docs, err = s.Query(ctx, store.Query{Collection: "c", Filters: []store.Filter{{Field: "n", Op: "<", Value: workers * each}}})
	require.NoError(t, err)
	assert.Empty(t, docs, "no index entry of an overwritten version is left")
}

// TestFailedWriteLeavesTheBatch: a transaction whose write fails in the writer is answered with
// its error, and those committed beside it are kept.
func TestFailedWriteLeavesTheBatch(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, Options{})
	var wg sync.WaitGroup
	errs := make([]error, 50)
	for i := range errs {
		wg.Go(func() {
			errs[i] = s.RunTransaction(ctx, func(_ context.Context, stx store.Tx) error {
				if i == 7 { // past the name check: bbolt refuses an empty key when the writer puts it
					return stx.(*tx).buffer(docKey{"c", ""}, []byte(`{}`))
				}
				return stx.Set("c", fmt.Sprint("d", i), count{N: i})
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if i == 7 {
			assert.ErrorIs(t, err, berrors.ErrKeyRequired, "the failed write is reported")
			continue
		}
		require.NoError(t, err)
		var got count
		require.NoError(t, s.Get(ctx, "c", fmt.Sprint("d", i), &got))
		assert.Equal(t, i, got.N)
	}
}
