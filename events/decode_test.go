package events

import (
	"context"
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewDataCoversTheContract(t *testing.T) {
	for _, typ := range All {
		v, ok := NewData(typ)
		require.True(t, ok, typ)
		assert.Equal(t, reflect.TypeOf(goTypes[typ]), reflect.TypeOf(v).Elem(), "got, want the Go type of %s", typ)
	}
	_, ok := NewData("omnimember.order.shipped")
	assert.False(t, ok)
}

// TestDecodeDataRefusesWhatTheSchemaLetsThrough: 12.0 and 1e30 are JSON Schema integers, not int64s.
func TestDecodeDataRefusesWhatTheSchemaLetsThrough(t *testing.T) {
	order := func(amount string) []byte {
		return []byte(`{"orderId":"o","channel":"jd","shopId":"s","amountFen":` + amount +
			`,"paidAt":"2026-11-20T10:00:00+08:00","identities":[{"type":"jd_pin","value":"p"}]}`)
	}
	for _, c := range []struct{ amount, field string }{{"1200", ""}, {"12.0", "data.amountFen"}, {"1e30", "data.amountFen"}, {"12.5", "data.amountFen"}} {
		t.Run(c.amount, func(t *testing.T) {
			_, err := DecodeData(OrderPaid, order(c.amount))
			if c.field == "" {
				require.NoError(t, err)
				return
			}
			fe, ok := err.(*FieldError)
			require.True(t, ok, "got %v", err)
			assert.Equal(t, c.field, fe.Field)
		})
	}
	_, err := DecodeData(OrderPaid, []byte(`{"orderId":"o","extra":1}`))
	require.Error(t, err, "unknown fields are refused")
}

func TestValidateOnceRemembersOnlyIdenticalEvents(t *testing.T) {
	ev, err := Example(OrderPaid)
	require.NoError(t, err)
	ctx := WithValidationMemo(context.Background())
	require.NoError(t, ValidateOnce(ctx, ev))
	require.NoError(t, ValidateOnce(ctx, ev), "the same event again")
	bad := ev.Clone()
	bad.DataEncoded = []byte(`{"orderId":""}`)
	require.Error(t, ValidateOnce(ctx, bad), "a changed event is validated again")
	require.Error(t, ValidateOnce(context.Background(), bad), "without a memo it validates")
}
