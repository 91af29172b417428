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
