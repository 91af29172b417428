package amount

import (
	"math"
	"testing"

	"github.com/omnimember/omnimember/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAddRefusesWhatWouldWrapOrLeaveTheBounds(t *testing.T) {
	for _, c := range []struct {
		name    string
		a, b    int64
		want    int64
		refused bool
	}{
		{"small", 2, 3, 5, false},
		{"negative", -2, -3, -5, false},
		{"at the bound", events.MaxTotal - 1, 1, events.MaxTotal, false},
		{"past the bound", events.MaxTotal, 1, 0, true},
		{"below the bound", -events.MaxTotal, -1, 0, true},
		{"int64 wraps", math.MaxInt64, math.MaxInt64, 0, true},
		{"two maximum orders of the issue", 9223372036854775807, 9223372036854775807, 0, true},
		{"int64 wraps downwards", math.MinInt64, -1, 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Add(c.a, c.b)
			if c.refused {
				require.ErrorIs(t, err, ErrOutOfBounds)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
		})
	}
	_, err := Sub(0, math.MinInt64)
	require.ErrorIs(t, err, ErrOutOfBounds)
	got, err := Sum(1, 2, 3)
	require.NoError(t, err)
	assert.Equal(t, int64(6), got)
	_, err = Sum(events.MaxTotal, events.MaxTotal, -events.MaxTotal)
	require.ErrorIs(t, err, ErrOutOfBounds, "a partial sum past the bound is refused even if the total would come back")
}

func TestFenAndPointsBounds(t *testing.T) {
	require.NoError(t, Fen("order", events.MaxFen))
	require.ErrorIs(t, Fen("order", events.MaxFen+1), ErrOutOfBounds)
	require.ErrorIs(t, Fen("order", -1), ErrOutOfBounds)
	require.NoError(t, Points("award", events.MaxPoints))
	require.ErrorIs(t, Points("award", events.MaxPoints+1), ErrOutOfBounds)
	require.ErrorIs(t, Points("award", -1), ErrOutOfBounds)
}
