package tierevaluate

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOverflowingSpendIsRefusedBeforeAnythingIsWritten is the finding: two orders of
// 9 223 372 036 854 775 807 fen made a member diamond with netSpendFen -2. The second is now a
// permanent error (dead letter with the reason) and the member keeps the state of the first.
func TestOverflowingSpendIsRefusedBeforeAnythingIsWritten(t *testing.T) {
	h, s := newHandler(t)
	yesterday := now.Add(-24 * time.Hour)
	_, err := h.Handle(context.Background(), awarded(t, "a1", alice, "MAX-1", math.MaxInt64, yesterday))
	require.Error(t, err)
	assert.True(t, runtime.IsPermanent(err), "got %v", err)
	require.ErrorIs(t, s.Get(context.Background(), member.Tiers, alice, &member.TierState{}), store.ErrNotFound, "nothing written")

	_, err = h.Handle(context.Background(), awarded(t, "a2", alice, "OK-1", 100_000, yesterday))
	require.NoError(t, err)
	_, err = h.Handle(context.Background(), reversed(t, "a3", alice, "MAX-2", math.MaxInt64, yesterday))
	require.Error(t, err)
	var st member.TierState
	require.NoError(t, s.Get(context.Background(), member.Tiers, alice, &st))
	assert.Equal(t, int64(100_000), st.NetSpendFen)
	assert.Equal(t, "silver", st.Level)
}
