package embedded

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEncodedOrderIsValueOrder checks the index encoding sorts like the values, zero bytes included.
func TestEncodedOrderIsValueOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	nums := []float64{-1e300, -5, -0.5, 0, 1e-9, 0.5, 3, 1 << 53, 1e300}
	for range 200 {
		nums = append(nums, (rng.Float64()-0.5)*1e6)
	}
	slices.Sort(nums)
	strs := []string{"", "\x00", "\x00\x00", "\x00a", "a", "a\x00", "a\x00b", "ab", "b"}
	for i := 1; i < len(nums); i++ {
		a, _ := encodeValue(json.Number(formatFloat(nums[i-1])))
		b, _ := encodeValue(json.Number(formatFloat(nums[i])))
		require.LessOrEqual(t, bytes.Compare(indexKey(a, "z"), indexKey(b, "a")), 0, "%v then %v", nums[i-1], nums[i])
	}
	for i := 1; i < len(strs); i++ {
		a, _ := encodeValue(strs[i-1])
		b, _ := encodeValue(strs[i])
		require.Negative(t, bytes.Compare(indexKey(a, "zzz"), indexKey(b, "a")), "%q then %q", strs[i-1], strs[i])
		value, id := splitKey(indexKey(a, "doc-1"))
		require.Equal(t, escape(a), value)
		require.Equal(t, "doc-1", id)
	}
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func TestIDListKeepsEveryIDInOrder(t *testing.T) {
	for _, n := range []int{0, 1, 256, 257, 70000, 200001} {
		var l idList
		want := make([]string, n)
		for i := range n {
			want[i] = strconv.Itoa(i)
			l.add([]byte(want[i]))
		}
		got := l.all()
		if n == 0 {
			require.Empty(t, got)
			continue
		}
		require.Equal(t, want, got, "n=%d: got ids, want all in order", n)
	}
}
