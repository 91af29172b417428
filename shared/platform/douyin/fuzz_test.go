package douyin_test

import (
	"context"
	"errors"
	"testing"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/platform"
	"github.com/omnimember/omnimember/shared/platform/douyin"
	"github.com/stretchr/testify/require"
)

// FuzzParse: any body either parses or fails with a field error, never panics; whatever parses
// keeps its ids as digit strings and its amounts non-negative.
func FuzzParse(f *testing.F) {
	seeds := []string{
		`[]`,
		`[{"tag":"101","msg_id":"7000000000000000001","data":"{\"p_id\":4781320682406083640,\"s_ids\":[4781320682406083640],\"shop_id\":4463798,\"order_status\":2,\"order_type\":0,\"pay_type\":1,\"pay_time\":1630022564,\"pay_amount\":12900}"}]`,
		`[{"tag":"206","msg_id":"7000000000000000002","data":"{\"aftersale_id\":7001234567890123456,\"aftersale_status\":12,\"aftersale_type\":2,\"p_id\":4781320682406083640,\"refund_amount\":2900,\"refund_post_amount\":0,\"s_id\":4781320682406083640,\"shop_id\":4463798,\"success_time\":1630108964}"}]`,
		`[{"tag":"100","msg_id":"1","data":"{\"p_id\":1}"},{"tag":"0","msg_id":"0","data":""}]`,
		`[{"tag":101,"msg_id":1,"data":"{\"p_id\":\"1\",\"shop_id\":\"2\",\"pay_amount\":\"3\"}"}]`,
		`[{"tag":"101","msg_id":"1","data":{"p_id":1}}]`,
		`[{"tag":"206","msg_id":"1","data":"{\"p_id\":1e30,\"shop_id\":-1}"}]`,
		`{"tag":"101"}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		msgs, err := douyin.Parse(body)
		if err != nil {
			var fe *events.FieldError
			require.True(t, errors.As(err, &fe), "error %v names no field", err)
			return
		}
		for _, m := range msgs {
			require.NotEmpty(t, m.MsgID)
			if m.Paid != nil {
				requireDigits(t, m.Paid.OrderID, m.Paid.ShopID)
				require.GreaterOrEqual(t, m.Paid.AmountFen, int64(0))
			}
			if m.Refund != nil {
				requireDigits(t, m.Refund.OrderID, m.Refund.ShopID, m.Refund.RefundID)
				require.GreaterOrEqual(t, m.Refund.AmountFen, int64(0))
			}
		}
	})
}

func requireDigits(t *testing.T, ids ...string) {
	t.Helper()
	for _, id := range ids {
		require.NotEmpty(t, id)
		for _, r := range id {
			require.True(t, r >= '0' && r <= '9', "id %q", id)
		}
	}
}

// FuzzHandle signs whatever body it gets and runs the whole adapter: a push either fails with a
// field error or yields events that pass the contract's schemas, with ids from msg_id.
func FuzzHandle(f *testing.F) {
	f.Add([]byte(`[{"tag":"101","msg_id":"1","data":"{\"p_id\":4781320682406083640,\"shop_id\":4463798,\"pay_amount\":12900,\"pay_time\":1630022564}"}]`))
	f.Add([]byte(`[{"tag":"206","msg_id":"2","data":"{\"p_id\":1,\"shop_id\":4463798,\"aftersale_id\":3,\"refund_amount\":0}"}]`))
	f.Add([]byte(`[{"tag":"206","msg_id":"3","data":"{\"p_id\":1,\"shop_id\":4463798,\"aftersale_id\":3,\"refund_amount\":1,\"success_time\":253402300799}"}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		creds := platform.Credentials{appKey: {"secret": secret}}
		require.NoError(t, douyin.New(nil).Verify(push(body, appKey, sign(appKey, secret, body)), creds), "a signed push verifies whatever its body")
		require.ErrorIs(t, douyin.New(nil).Verify(push(body, appKey, sign(appKey, "guess", body)), creds), platform.ErrSignature)
		res, err := douyin.New(buyer()).Handle(context.Background(), push(body, appKey, sign(appKey, secret, body)), creds)
		if err != nil {
			var fe *events.FieldError
			require.True(t, errors.As(err, &fe), "error %v names no field", err)
			return
		}
		require.Equal(t, `{"code":0,"msg":"success"}`, string(res.Reply.Body))
		for _, ev := range res.Events {
			require.NoError(t, events.Validate(ev))
		}
	})
}
