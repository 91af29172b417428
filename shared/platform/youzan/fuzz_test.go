package youzan_test

import (
	"context"
	"errors"
	"net/url"
	"testing"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/platform/youzan"
	"github.com/stretchr/testify/require"
)

// FuzzParse: any body parses or fails with a field error, never panics; the msg of a paid or
// refund message likewise, and whatever parses has an id and a non-negative amount.
func FuzzParse(f *testing.F) {
	paid := url.QueryEscape(paidMsg("1285.50", cipher))
	refund := url.QueryEscape(refundMsg("201811211234567890", "85.5"))
	seeds := []string{
		`{"client_id":"6cd25b3f99727975b5","id":"E20261125183000012000001","kdt_id":40061234,"kdt_name":"有赞测试店","mode":1,"msg":"` + paid + `","sendCount":0,"sign":"0123456789abcdef0123456789abcdef","status":"TRADE_PAID","test":false,"type":"trade_TradePaid","version":1795602600}`,
		`{"client_id":"6cd25b3f99727975b5","id":"E1","kdt_id":"40061234","msg":"` + refund + `","sign":"x","status":"SUCCESS","test":"false","type":"trade_refund_RefundSuccess"}`,
		`{"client_id":"c","kdt_id":1,"msg":"{\"tid\":\"E1\",\"refund_id\":\"R1\",\"refunded_fee\":\"1.00\"}","sign":"x","type":"youzan_trade_RefundSuccess"}`,
		`{"client_id":"c","msg":"","sign":"x","type":"trade_TradePaid","test":true}`,
		`client_id=c&kdt_id=1&type=trade_TradePaid&sign=x&msg=` + url.QueryEscape(paid),
		`{"client_id":"c","msg":"%ZZ","sign":"x","type":"trade_TradePaid"}`,
		`[]`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		require.Error(t, youzan.New(nil).Verify(push(body), creds()), "a body nobody signed never verifies (ingest would archive it)")
		env, err := youzan.ParseEnvelope(body)
		if err != nil {
			requireFieldError(t, err)
			return
		}
		if p, err := youzan.ParsePaid(env.Msg); err != nil {
			requireFieldError(t, err)
		} else {
			require.NotEmpty(t, p.TID)
			require.GreaterOrEqual(t, p.AmountFen, int64(0))
			for _, it := range p.Items {
				require.NotEmpty(t, it.SKU)
				require.GreaterOrEqual(t, it.Quantity, 1)
			}
		}
		if r, err := youzan.ParseRefund(env.Msg); err != nil {
			requireFieldError(t, err)
		} else {
			require.NotEmpty(t, r.TID)
			require.NotEmpty(t, r.RefundID)
			require.GreaterOrEqual(t, r.AmountFen, int64(0))
		}
	})
}

func requireFieldError(t *testing.T, err error) {
	t.Helper()
	var fe *events.FieldError
	require.True(t, errors.As(err, &fe), "error %v names no field", err)
	require.NotEmpty(t, fe.Field)
}

// FuzzHandle signs a push around whatever msg it gets and runs the whole adapter: it either fails
// with a field error or yields events that pass the contract's schemas.
func FuzzHandle(f *testing.F) {
	f.Add(false, paidMsg("1285.50", cipher))
	f.Add(true, refundMsg("201811211234567890", "85.5"))
	f.Add(false, paidMsg("0", "13812345678"))
	f.Add(true, `{"tid":"E1","refund_id":"R1","refunded_fee":"99999999999.99","update_time":"9999-12-31 23:59:59"}`)
	f.Fuzz(func(t *testing.T, refund bool, msg string) {
		typ, status := "trade_TradePaid", "TRADE_PAID"
		if refund {
			typ, status = "trade_refund_RefundSuccess", "SUCCESS"
		}
		require.NoError(t, youzan.New(nil).Verify(push(signed(t, typ, status, msg)), creds()), "a signed push verifies whatever its msg")
		res, err := youzan.New(withBuyer()).Handle(context.Background(), push(signed(t, typ, status, msg)), creds())
		if err != nil {
			requireFieldError(t, err)
			return
		}
		require.Equal(t, `{"code":0,"msg":"success"}`, string(res.Reply.Body))
		for _, ev := range res.Events {
			require.NoError(t, events.Validate(ev))
		}
	})
}
