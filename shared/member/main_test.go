package member_test

import (
	"testing"

	"github.com/omnimember/omnimember/shared/store/firestore/firestoretest"
)

// TestMain stops the Firestore emulator the segment tests start.
func TestMain(m *testing.M) { firestoretest.Main(m) }
