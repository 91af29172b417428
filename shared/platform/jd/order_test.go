package jd

import (
	"errors"
	"testing"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/platform"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// searchSample follows the shape of jingdong.pop.order.search's response (including JD's
// "responce" spelling): string order ids, yuan strings, GMT+8 times.
const searchSample = `{"jingdong_pop_order_search_responce":{"code":"0","searchorderinfo_result":{"apiResult":{"success":true,"numberCode":100},"orderTotal":3,"orderInfoList":[
 {"orderId":"230012345678","venderId":"10086","orderTotalPrice":"2199.00","orderPayment":"2180.00","orderState":"WAIT_SELLER_STOCK_OUT","paymentConfirmTime":"2026-11-11 00:10:00","modified":"2026-11-11 00:10:05","pin":"ENC_pin_1","open_id_buyer":"oid-1","xid_buyer":"xid-1"},
 {"orderId":"230012345679","venderId":"10086","orderPayment":"99.9","orderState":"TRADE_CANCELED","paymentConfirmTime":"2026-11-11 01:00:00","modified":"2026-11-11 02:00:00","pin":"ENC_pin_2"},
 {"orderId":"230012345680","venderId":"10086","orderPayment":"10.00","orderState":"WAIT_PAY","paymentConfirmTime":"","modified":"2026-11-11 02:00:00","pin":"ENC_pin_3"}
]}}}`

func TestParseAndNormalizeOrders(t *testing.T) {
	res, err := ParseOrderSearch([]byte(searchSample))
	require.NoError(t, err)
	require.Equal(t, 3, res.Total)
	require.Len(t, res.Orders, 3)
	n := Normalizer{AppKey: "app-1"}

	evs, err := n.Normalize(res.Orders[0])
	require.NoError(t, err)
	require.Len(t, evs, 1)
	assert.Equal(t, platform.EventID("jd", "230012345678/paid", 0), evs[0].ID())
	paid, err := events.Decode[events.OrderPaidData](evs[0])
	require.NoError(t, err)
	assert.Equal(t, int64(218000), paid.AmountFen, "orderPayment, not orderTotalPrice")
	assert.Equal(t, "10086", paid.ShopID)
	assert.True(t, paid.PaidAt.Equal(time.Date(2026, 11, 10, 16, 10, 0, 0, time.UTC)))
	assert.Equal(t, []events.Identity{{Type: "jd_pin", Value: "ENC_pin_1"}, {Type: "jd_open_id", Value: "oid-1", Scope: "app-1"},
		{Type: "jd_xid", Value: "xid-1", Scope: "app-1"}}, paid.Identities)

	evs, err = n.Normalize(res.Orders[1])
	require.NoError(t, err)
	require.Len(t, evs, 2, "a cancelled paid order: paid, then refunded in full")
	refund, err := events.Decode[events.OrderRefundedData](evs[1])
	require.NoError(t, err)
	assert.Equal(t, events.OrderRefunded, evs[1].Type())
	assert.Equal(t, int64(9990), refund.AmountFen)

	evs, err = n.Normalize(res.Orders[2])
	require.NoError(t, err)
	assert.Empty(t, evs, "unpaid orders yield nothing")
}

func TestParseOrderSearchErrors(t *testing.T) {
	_, err := ParseOrderSearch([]byte(`{"error_response":{"code":"19","zh_desc":"token已过期","en_desc":"Invalid access_token"}}`))
	var apiErr *APIError
	require.True(t, errors.As(err, &apiErr))
	assert.Equal(t, "19", apiErr.Code.String())
	_, err = ParseOrderSearch([]byte(`{"jingdong_pop_order_search_responce":{"searchorderinfo_result":{"apiResult":{"success":false,"numberCode":1001,"englishErrCode":"bad window"}}}}`))
	require.True(t, errors.As(err, &apiErr))
	for _, bad := range []string{`[`, `{}`, `{"jingdong_pop_order_search_responce":{"searchorderinfo_result":{"apiResult":{"success":true},"orderTotal":-1}}}`} {
		_, err := ParseOrderSearch([]byte(bad))
		var fe *events.FieldError
		assert.True(t, errors.As(err, &fe), "%s: got %v", bad, err)
	}
}

func TestNormalizeNamesTheBadField(t *testing.T) {
	n := Normalizer{AppKey: "a"}
	base := Order{OrderID: "1", OrderPayment: "1.00", PaymentConfirmTime: "2026-11-11 00:00:00", Pin: "p"}
	for _, c := range []struct {
		mutate func(*Order)
		field  string
	}{
		{func(o *Order) { o.Pin = "" }, "pin"},
		{func(o *Order) { o.OrderPayment = "1.2.3" }, "orderPayment"},
		{func(o *Order) { o.OrderPayment, o.OrderTotalPrice = "", "x" }, "orderTotalPrice"},
		{func(o *Order) { o.PaymentConfirmTime = "11/11/2026" }, "paymentConfirmTime"},
		{func(o *Order) { o.OrderState, o.Modified = StateCanceled, "" }, "modified"},
		{func(o *Order) { o.OrderID = "" }, "orderId"},
	} {
		o := base
		c.mutate(&o)
		_, err := n.Normalize(o)
		var fe *events.FieldError
		require.True(t, errors.As(err, &fe), "%s: got %v", c.field, err)
		assert.Equal(t, c.field, fe.Field)
	}
}

func FuzzOrderSearch(f *testing.F) {
	f.Add([]byte(searchSample))
	f.Add([]byte(`{"error_response":{"code":"19"}}`))
	f.Add([]byte(`{"jingdong_pop_order_search_responce":{"searchorderinfo_result":{"apiResult":{"success":true},"orderTotal":0,"orderInfoList":[]}}}`))
	n := Normalizer{AppKey: "a"}
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := ParseOrderSearch(body)
		if err != nil {
			return
		}
		for _, o := range res.Orders {
			evs, err := n.Normalize(o)
			if err != nil {
				continue
			}
			for _, ev := range evs {
				if err := events.Validate(ev); err != nil {
					t.Fatalf("normalised an invalid event: %v", err)
				}
			}
		}
	})
}
