//go:build noembedded

package backend_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/omnimember/omnimember/shared/store/backend"
)

// TestAClusterBuildRefusesTheEmbeddedStore: built as the images are, STORE=embedded fails at start
// with a line that says what to set, rather than opening a store no other pod shares.
func TestAClusterBuildRefusesTheEmbeddedStore(t *testing.T) {
	_, err := backend.Config{Kind: backend.Embedded, Path: t.TempDir() + "/db"}.Open(context.Background())
	require.ErrorContains(t, err, "STORE=firestore")
}
