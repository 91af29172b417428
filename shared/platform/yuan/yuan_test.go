package yuan

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestToFen(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{{"0.01", 1}, {"12.3", 1230}, {"30", 3000}, {" 1299.00 ", 129900}, {"0", 0}, {"007.10", 710}} {
		got, err := ToFen(c.in)
		require.NoError(t, err, c.in)
		assert.Equal(t, c.want, got, "%q: got, want", c.in)
	}
	for _, bad := range []string{"", ".5", "1.", "1.234", "-1", "1e3", "1,00", "12.3a", "99999999999999999999"} {
		_, err := ToFen(bad)
		assert.Error(t, err, "%q", bad)
	}
}

func FuzzToFen(f *testing.F) {
	for _, s := range []string{"0.01", "12.3", "1.", "-1", "99999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fen, err := ToFen(s)
		if err == nil && (fen < 0 || fen > maxFen) {
			t.Fatalf("%q gave %d", s, fen)
		}
	})
}
