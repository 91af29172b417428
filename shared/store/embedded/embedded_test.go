package embedded

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/omnimember/omnimember/shared/store"
	"github.com/omnimember/omnimember/shared/store/storetest"
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
