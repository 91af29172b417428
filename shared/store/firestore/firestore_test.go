package firestore

import (
	"context"
	"testing"

	"github.com/omnimember/omnimember/shared/store"
	"github.com/omnimember/omnimember/shared/store/firestore/firestoretest"
	"github.com/omnimember/omnimember/shared/store/storetest"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { firestoretest.Main(m) }

func TestContract(t *testing.T) {
	firestoretest.Host(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(context.Background(), Config{ProjectID: firestoretest.ProjectID(t)})
		require.NoError(t, err)
		return s
	})
}

// TestQueryWithACancelledContext: a background loop queries while its process drains; the query
// must fail cleanly (it once dereferenced the nil snapshot Firestore returns with the error).
func TestQueryWithACancelledContext(t *testing.T) {
	firestoretest.Host(t)
	s, err := Open(context.Background(), Config{ProjectID: firestoretest.ProjectID(t)})
	require.NoError(t, err)
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	q := store.Query{Collection: "campaigns", Filters: []store.Filter{{Field: "status", Op: store.OpEq, Value: "scheduled"}}}
	_, err = s.Query(ctx, q)
	require.ErrorContains(t, err, "canceled")
	_, err = s.QueryIDs(ctx, q)
	require.ErrorContains(t, err, "canceled")
}
