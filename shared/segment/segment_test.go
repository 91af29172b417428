package segment

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func n(v int64) *int64 { return &v }

func TestRuleValidateNamesTheField(t *testing.T) {
	tests := []struct {
		name  string
		rule  Rule
		field string
	}{
		{"empty", Rule{}, "rule"},
		{"pool", Rule{Pool: "blue"}, "pool"},
		{"tier name", Rule{Tiers: []string{"Gold!"}}, "tiers[0]"},
		{"tier twice", Rule{Tiers: []string{"gold", "gold"}}, "tiers[1]"},
		{"window days", Rule{SpendFen: &Window{Days: -1, Range: Range{Min: n(1)}}}, "spendFen.days"},
		{"interaction window too long", Rule{Interactions: &Window{Days: 365, Range: Range{Min: n(1)}}}, "interactions.days"},
		{"lifetime interactions", Rule{Interactions: &Window{Days: 0, Range: Range{Min: n(1)}}}, "interactions.days"},
		{"no bounds", Rule{Orders: &Window{Days: 30}}, "orders"},
		{"max below min", Rule{Points: &Range{Min: n(10), Max: n(5)}}, "points.max"},
		{"negative", Rule{DaysSinceLastOrder: &Range{Min: n(-3)}}, "daysSinceLastOrder.min"},
		{"channel", Rule{Channels: []string{""}}, "channels[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fe *FieldError
			err := tt.rule.Validate()
			require.True(t, errors.As(err, &fe), "got %v, want a FieldError", err)
			assert.Equal(t, tt.field, fe.Field, "got field, want")
		})
	}
	require.NoError(t, Rule{Pool: PoolPlaintext, SpendFen: &Window{Days: 30, Range: Range{Min: n(0), Max: n(100)}}}.Validate())
}

func TestDefaultCatalogHasTheBuiltIns(t *testing.T) {
	c, err := Default()
	require.NoError(t, err)
	var names []string
	for _, s := range c.All() {
		names = append(names, s.Name)
		assert.NotEmpty(t, s.Title, s.Name)
	}
	assert.Equal(t, []string{"ciphertext-pool", "dormant", "high-potential", "high-value", "plaintext-pool"}, names)
	_, err = c.Get("nobody")
	assert.ErrorIs(t, err, ErrUnknown)
}

func TestParseRejectsBadFiles(t *testing.T) {
	tests := []struct {
		name, file, want string
	}{
		{"unknown field", "version: x\nsegments:\n  a:\n    title: A\n    rule: {pool: plaintext, colour: red}\n", "colour"},
		{"bad rule", "version: x\nsegments:\n  a:\n    title: A\n    rule: {spendFen: {days: 30}}\n", "segment a: rule.spendFen"},
		{"no title", "version: x\nsegments:\n  a:\n    rule: {pool: plaintext}\n", "title is required"},
		{"bad name", "version: x\nsegments:\n  A B:\n    title: A\n    rule: {pool: plaintext}\n", "segment name"},
		{"no version", "segments:\n  a:\n    title: A\n    rule: {pool: plaintext}\n", "version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.file))
			require.Error(t, err)
			assert.True(t, strings.Contains(err.Error(), tt.want), "got %v, want it to mention %q", err, tt.want)
		})
	}
}

func TestFirstIsTheSmallestIDs(t *testing.T) {
	r := Result{ids: map[string]int{}}
	for _, id := range []string{"om_q", "om_b", "om_z", "om_a", "om_m", "om_c"} {
		r.ids[id] = 1
	}
	assert.Equal(t, []string{"om_a", "om_b", "om_c"}, r.First(3))
	assert.Equal(t, r.Sorted(), r.First(10))
	assert.Empty(t, r.First(0))
}
