// Package teststores runs a test against every store implementation: the embedded store on a temp
// dir and Firestore on the emulator (skipped with one line without gcloud, unless required).
package teststores

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/omnimember/omnimember/shared/store"
	"github.com/omnimember/omnimember/shared/store/embedded"
	"github.com/omnimember/omnimember/shared/store/firestore"
	"github.com/omnimember/omnimember/shared/store/firestore/firestoretest"
)

// Each runs test as an "embedded" and a "firestore" subtest, each with a fresh, empty store; the
// embedded one keeps the given field indexes.
func Each(t *testing.T, indexes map[string][]string, test func(t *testing.T, s store.Store)) {
	t.Run("embedded", func(t *testing.T) { test(t, Embedded(t, indexes)) })
	t.Run("firestore", func(t *testing.T) { test(t, Firestore(t)) })
}

// Embedded opens an empty embedded store closed at cleanup.
func Embedded(t *testing.T, indexes map[string][]string) store.Store {
	t.Helper()
	s, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"), embedded.Options{Indexes: indexes})
	if err != nil {
		t.Fatalf("open embedded store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Firestore opens an empty Firestore project on the emulator, closed at cleanup.
func Firestore(t *testing.T) store.Store {
	t.Helper()
	firestoretest.Host(t)
	s, err := firestore.Open(context.Background(), firestore.Config{ProjectID: firestoretest.ProjectID(t)})
	if err != nil {
		t.Fatalf("open firestore: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
