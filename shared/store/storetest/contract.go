// Package storetest is the contract every store implementation passes: one suite, run against each.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnimember/omnimember/shared/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Opener returns an empty store for one test; the suite closes it.
type Opener func(t *testing.T) store.Store

type profile struct {
	Name    string            `json:"name"`
	Balance int64             `json:"balance"`
	Big     int64             `json:"big"`
	Ratio   float64           `json:"ratio"`
	Active  bool              `json:"active"`
	Since   time.Time         `json:"since"`
	Tags    []string          `json:"tags"`
	Attrs   map[string]string `json:"attrs,omitempty"`
	Orders  struct {
		Count int `json:"count"`
	} `json:"orders"`
	Note *string `json:"note"`
}

type counter struct {
	N     int    `json:"n"`
	Owner string `json:"owner,omitempty"`
}

// Run runs the whole contract against the stores open returns.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"GetMissing", testGetMissing},
		{"SetGetRoundTrip", testRoundTrip},
		{"SetReplacesWholeDocument", testSetReplaces},
		{"Delete", testDelete},
		{"InvalidNames", testInvalidNames},
		{"TransactionIsAtomicUnderContention", testCounterContention},
		{"TransactionErrorWritesNothing", testRollback},
		{"ReadAfterWriteIsRefused", testReadAfterWrite},
		{"CreateRefusesExisting", testCreateExisting},
		{"GetAllMixesExistingAndMissing", testGetAll},
		{"OnlyOneRacerCreates", testOnlyOneCreates},
		{"QueryFilters", testQueryFilters},
		{"QueryOrderAndLimit", testQueryOrder},
		{"CollectionsListsWhatHoldsDocuments", testCollections},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { _ = s.Close() })
			tt.fn(t, s)
		})
	}
}

func testGetMissing(t *testing.T, s store.Store) {
	var p profile
	require.ErrorIs(t, s.Get(context.Background(), "members", "nobody", &p), store.ErrNotFound)
}

func sample() profile {
	note := "VIP 会员"
	p := profile{Name: "张三 Zhang", Balance: -12, Big: 1<<62 + 7, Ratio: 1.5, Active: true,
		Since: time.Date(2026, 2, 28, 23, 59, 59, 123000000, time.FixedZone("CST", 8*3600)),
		Tags:  []string{"vip", "tmall"}, Attrs: map[string]string{"city": "上海"}, Note: &note}
	p.Orders.Count = 3
	return p
}

func testRoundTrip(t *testing.T, s store.Store) {
	ctx := context.Background()
	want := sample()
	require.NoError(t, s.Set(ctx, "members", "om_1", want))
	var got profile
	require.NoError(t, s.Get(ctx, "members", "om_1", &got))
	assert.True(t, want.Since.Equal(got.Since), "got since %v, want %v", got.Since, want.Since)
	got.Since = want.Since
	assert.Equal(t, want, got)

	empty := profile{Tags: []string{}}
	require.NoError(t, s.Set(ctx, "members", "om_2", empty))
	var gotEmpty profile
	require.NoError(t, s.Get(ctx, "members", "om_2", &gotEmpty))
	assert.Equal(t, []string{}, gotEmpty.Tags, "an empty list stays an empty list")
	assert.Nil(t, gotEmpty.Note)
}

func testSetReplaces(t *testing.T, s store.Store) {
	ctx := context.Background()
	require.NoError(t, s.Set(ctx, "c", "d", map[string]any{"a": 1, "b": 2}))
	require.NoError(t, s.Set(ctx, "c", "d", map[string]any{"a": 3}))
	var got map[string]any
	require.NoError(t, s.Get(ctx, "c", "d", &got))
	assert.Equal(t, map[string]any{"a": float64(3)}, got)
}

func testDelete(t *testing.T, s store.Store) {
	ctx := context.Background()
	require.NoError(t, s.Set(ctx, "c", "d", counter{N: 1}))
	require.NoError(t, s.Delete(ctx, "c", "d"))
	require.ErrorIs(t, s.Get(ctx, "c", "d", &counter{}), store.ErrNotFound)
	require.NoError(t, s.Delete(ctx, "c", "d"), "deleting a missing document is fine")
	require.NoError(t, s.Delete(ctx, "never", "d"), "deleting from a missing collection is fine")
}

func testInvalidNames(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, bad := range [][2]string{{"Members", "x"}, {"c", "a/b"}, {"c", ""}, {"c", "__x__"}, {"c", ".."}, {"", "x"}} {
		err := s.Set(ctx, bad[0], bad[1], counter{})
		require.ErrorIs(t, err, store.ErrInvalidName, "collection %q id %q", bad[0], bad[1])
	}
}

func increment(ctx context.Context, s store.Store, id string) error {
	return s.RunTransaction(ctx, func(_ context.Context, tx store.Tx) error {
		var c counter
		if err := tx.Get("counters", id, &c); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		c.N++
		return tx.Set("counters", id, c)
	})
}

func testCounterContention(t *testing.T, s store.Store) {
	ctx := context.Background()
	const workers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for range workers {
		wg.Go(func() {
			for range each {
				errs <- increment(ctx, s, "shared")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	var c counter
	require.NoError(t, s.Get(ctx, "counters", "shared", &c))
	assert.Equal(t, workers*each, c.N, "got count, want every increment exactly once")
}

func testRollback(t *testing.T, s store.Store) {
	ctx := context.Background()
	boom := errors.New("boom")
	err := s.RunTransaction(ctx, func(_ context.Context, tx store.Tx) error {
		if err := tx.Set("c", "a", counter{N: 1}); err != nil {
			return err
		}
		return boom
	})
	require.ErrorIs(t, err, boom)
	require.ErrorIs(t, s.Get(ctx, "c", "a", &counter{}), store.ErrNotFound, "a failed transaction writes nothing")
}

func testReadAfterWrite(t *testing.T, s store.Store) {
	err := s.RunTransaction(context.Background(), func(_ context.Context, tx store.Tx) error {
		if err := tx.Set("c", "a", counter{N: 1}); err != nil {
			return err
		}
		return tx.Get("c", "b", &counter{})
	})
	require.ErrorIs(t, err, store.ErrReadAfterWrite)
}

func testCreateExisting(t *testing.T, s store.Store) {
	ctx := context.Background()
	require.NoError(t, s.RunTransaction(ctx, func(_ context.Context, tx store.Tx) error {
		return tx.Create("c", "a", counter{N: 1})
	}))
	err := s.RunTransaction(ctx, func(_ context.Context, tx store.Tx) error {
		if err := tx.Set("c", "other", counter{N: 9}); err != nil {
			return err
		}
		return tx.Create("c", "a", counter{N: 2})
	})
	require.ErrorIs(t, err, store.ErrExists)
	var c counter
	require.NoError(t, s.Get(ctx, "c", "a", &c))
	assert.Equal(t, 1, c.N, "create must not overwrite")
	require.ErrorIs(t, s.Get(ctx, "c", "other", &counter{}), store.ErrNotFound, "the failed transaction wrote nothing")
}

func testGetAll(t *testing.T, s store.Store) {
	ctx := context.Background()
	require.NoError(t, s.Set(ctx, "c", "a", counter{N: 1}))
	require.NoError(t, s.Set(ctx, "c", "c", counter{N: 3}))
	require.NoError(t, s.RunTransaction(ctx, func(_ context.Context, tx store.Tx) error {
		docs, err := tx.GetAll("c", []string{"a", "b", "c"})
		require.NoError(t, err)
		require.Len(t, docs, 3)
		assert.Equal(t, []bool{true, false, true}, []bool{docs[0].Exists, docs[1].Exists, docs[2].Exists})
		assert.Equal(t, []string{"a", "b", "c"}, []string{docs[0].ID, docs[1].ID, docs[2].ID})
		var c counter
		require.NoError(t, docs[2].DataTo(&c))
		assert.Equal(t, 3, c.N)
		assert.ErrorIs(t, docs[1].DataTo(&c), store.ErrNotFound)
		return nil
	}))
}

// testOnlyOneCreates races transactions that create a document when missing: one wins.
func testOnlyOneCreates(t *testing.T, s store.Store) {
	ctx := context.Background()
	const racers = 8
	created := make([]bool, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			err := s.RunTransaction(ctx, func(_ context.Context, tx store.Tx) error {
				created[i] = false // fn may run again; only the committed attempt counts
				err := tx.Get("members", "phone-key", &counter{})
				if err == nil {
					return nil
				}
				if !errors.Is(err, store.ErrNotFound) {
					return err
				}
				created[i] = true
				return tx.Set("members", "phone-key", counter{Owner: fmt.Sprint(i)})
			})
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	winners := 0
	for _, c := range created {
		if c {
			winners++
		}
	}
	assert.Equal(t, 1, winners, "got creators, want exactly one")
}

func seedProfiles(t *testing.T, s store.Store) {
	ctx := context.Background()
	rows := []struct {
		id      string
		tier    string
		balance int64
		count   int
	}{{"a", "gold", 500, 4}, {"b", "silver", 120, 1}, {"c", "gold", 3000, 9}, {"d", "member", 0, 0}, {"e", "gold", 120, 2}}
	for _, r := range rows {
		doc := map[string]any{"tier": r.tier, "balance": r.balance, "orders": map[string]any{"count": r.count}}
		require.NoError(t, s.Set(ctx, "profiles", r.id, doc))
	}
	require.NoError(t, s.Set(ctx, "profiles", "f", map[string]any{"tier": "gold"}), "no balance field")
	require.NoError(t, s.Set(ctx, "profiles", "g", map[string]any{"tier": "gold", "balance": "lots"}), "a string balance")
}

func ids(docs []store.Document) []string {
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = d.ID
	}
	return out
}

func testQueryFilters(t *testing.T, s store.Store) {
	seedProfiles(t, s)
	tests := []struct {
		name    string
		filters []store.Filter
		want    []string
	}{
		{"equality", []store.Filter{{Field: "tier", Op: "==", Value: "gold"}}, []string{"a", "c", "e", "f", "g"}},
		{"range", []store.Filter{{Field: "balance", Op: ">=", Value: 120}}, []string{"a", "b", "c", "e"}},
		{"strict range", []store.Filter{{Field: "balance", Op: "<", Value: 120}}, []string{"d"}},
		{"nested field", []store.Filter{{Field: "orders.count", Op: ">", Value: 3}}, []string{"a", "c"}},
		{"equality and range", []store.Filter{{Field: "tier", Op: "==", Value: "gold"}, {Field: "balance", Op: "<=", Value: 500}}, []string{"a", "e"}},
		{"none", []store.Filter{{Field: "tier", Op: "==", Value: "diamond"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := store.Query{Collection: "profiles", Filters: tt.filters}
			docs, err := s.Query(context.Background(), q)
			require.NoError(t, err)
			assert.ElementsMatch(t, tt.want, ids(docs), "got ids, want")
			only, err := store.QueryIDs(context.Background(), s, q)
			require.NoError(t, err)
			assert.ElementsMatch(t, tt.want, only, "QueryIDs: got ids, want")
		})
	}
	_, err := s.Query(context.Background(), store.Query{Collection: "profiles", Filters: []store.Filter{{Field: "tier", Op: "!=", Value: "x"}}})
	require.Error(t, err, "unsupported operator")
}

func testQueryOrder(t *testing.T, s store.Store) {
	seedProfiles(t, s)
	ctx := context.Background()
	docs, err := s.Query(ctx, store.Query{Collection: "profiles",
		Filters: []store.Filter{{Field: "balance", Op: ">=", Value: 0}}, OrderBy: "balance", Descending: true, Limit: 3})
	require.NoError(t, err)
	assert.Equal(t, []string{"c", "a", "e"}, ids(docs), "got order, want balance descending then id")
	docs, err = s.Query(ctx, store.Query{Collection: "profiles",
		Filters: []store.Filter{{Field: "balance", Op: ">=", Value: 0}}, OrderBy: "balance"})
	require.NoError(t, err)
	assert.Equal(t, []string{"d", "b", "e", "a", "c"}, ids(docs))
	var p map[string]any
	require.NoError(t, docs[0].DataTo(&p))
	assert.Equal(t, "member", p["tier"])
}

func testCollections(t *testing.T, s store.Store) {
	ctx := context.Background()
	lister, ok := s.(store.Lister)
	require.True(t, ok, "every store lists its collections")
	got, err := lister.Collections(ctx)
	require.NoError(t, err)
	assert.Empty(t, got, "an empty store")
	for _, c := range []string{"receipts", "members", "tombstones"} {
		require.NoError(t, s.Set(ctx, c, "a", counter{N: 1}))
	}
	require.NoError(t, s.Delete(ctx, "tombstones", "a"))
	got, err = lister.Collections(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"members", "receipts"}, got, "got collections, want those holding documents, sorted")
}

// Holding scans every document of every collection of s (ids and contents) for each needle and
// returns where it found them, as "collection/id: needle": what an audit for leaked or unerased
// personal data reads.
func Holding(t testing.TB, s store.Store, needles ...string) []string {
	t.Helper()
	ctx := context.Background()
	lister, ok := s.(store.Lister)
	require.True(t, ok, "the store lists its collections")
	collections, err := lister.Collections(ctx)
	require.NoError(t, err)
	var found []string
	for _, c := range collections {
		docs, err := s.Query(ctx, store.Query{Collection: c})
		require.NoError(t, err)
		for _, d := range docs {
			for _, n := range needles {
				if n != "" && (strings.Contains(d.ID, n) || strings.Contains(string(d.Data), n)) {
					found = append(found, c+"/"+d.ID+": "+n)
				}
			}
		}
	}
	return found
}
