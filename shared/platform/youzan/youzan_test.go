package youzan_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/textproto"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/platform"
	"github.com/omnimember/omnimember/shared/platform/youzan"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	clientID = "6cd25b3f99727975b5"
	secret   = "c3f3b5d5c2a1b3d9e8f7a6b5c4d3e2f1"
	kdtID    = "40061234"
	tid      = "E20261125183000012000001"
	openID   = "y8JGv2Y0Zr1xXw3aYqT0pNbLkE"
	cipher   = "$UkVBTExZX0VOQ1JZUFRFRF9QSE9ORQ==$1$"
)

// paidMsg is a trade_TradePaid msg as Youzan documents it (full_order_info with order_info,
// pay_info, buyer_info and orders), before URL encoding.
func paidMsg(payment, phone string) string {
	return fmt.Sprintf(`{"full_order_info":{"order_info":{"tid":%q,"status":"WAIT_SELLER_SEND_GOODS","created":"2026-11-25 18:29:41","pay_time":"2026-11-25 18:30:00","type":0},`+
		`"pay_info":{"payment":%q,"total_fee":%q,"post_fee":"0.00"},`+
		`"buyer_info":{"yz_open_id":%q,"buyer_phone":%q,"outer_user_id":"oA1B2c3D4e5F6g7H8i9J0","fans_type":1},`+
		`"orders":[{"oid":"1496342371542123456","item_id":542108888,"sku_id":36542109,"outer_sku_id":"SKU-RED-L","title":"羊毛大衣 红色 L","num":1,"payment":%q}]}}`,
		tid, payment, payment, openID, phone, payment)
}

func refundMsg(refundID, fee string) string {
	return fmt.Sprintf(`{"tid":%q,"refund_id":%q,"refunded_fee":%q,"update_time":"2026-11-26 09:15:00","refund_type":"REFUND_ONLY","oids":"1496342371542123456"}`, tid, refundID, fee)
}

type envelope struct {
	ClientID  string `json:"client_id"`
	ID        string `json:"id"`
	KdtID     int64  `json:"kdt_id"`
	KdtName   string `json:"kdt_name"`
	Mode      int    `json:"mode"`
	Msg       string `json:"msg"`
	SendCount int    `json:"sendCount"`
	Sign      string `json:"sign"`
	Status    string `json:"status"`
	Test      bool   `json:"test"`
	Type      string `json:"type"`
	Version   int64  `json:"version"`
}

// signed builds the JSON push, signing it independently: MD5(client_id + URL-encoded msg + secret).
func signed(t *testing.T, msgType, status, msg string, edit ...func(*envelope)) []byte {
	t.Helper()
	enc := url.QueryEscape(msg)
	e := envelope{ClientID: clientID, ID: tid, KdtID: 40061234, KdtName: "有赞测试店", Mode: 1, Msg: enc,
		Status: status, Type: msgType, Version: 1795602600}
	sum := md5.Sum([]byte(clientID + enc + secret))
	e.Sign = hex.EncodeToString(sum[:])
	for _, f := range edit {
		f(&e)
	}
	b, err := json.Marshal(e)
	require.NoError(t, err)
	return b
}

func push(b []byte) platform.Push {
	return platform.Push{Platform: "youzan", Method: "POST", Header: textproto.MIMEHeader{"Content-Type": {"application/json"}}, Body: b,
		ReceivedAt: time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)}
}

func creds() platform.Credentials {
	return platform.Credentials{clientID: {"secret": secret, "kdtId": kdtID}}
}

// buyers stands in for a Youzan trade lookup (youzan.trade.get).
type buyers map[string]youzan.Buyer

func (b buyers) TradeBuyer(_ context.Context, _ platform.Shop, kdt, id string) (youzan.Buyer, error) {
	if kdt != kdtID {
		return youzan.Buyer{}, fmt.Errorf("kdt %s", kdt)
	}
	return b[id], nil
}

func withBuyer() buyers { return buyers{tid: {OpenID: openID, Phone: cipher}} }

func TestHandleNormalises(t *testing.T) {
	ids := []events.Identity{{Type: "youzan_open_id", Value: openID}, {Type: "phone_ciphertext", Value: cipher, Scope: "youzan:" + kdtID}}
	paidAt := time.Date(2026, 11, 25, 10, 30, 0, 0, time.UTC) // 18:30 in Asia/Shanghai
	refundedAt := time.Date(2026, 11, 26, 1, 15, 0, 0, time.UTC)
	paid := func(fen int64, ids []events.Identity) events.OrderPaidData {
		return events.OrderPaidData{OrderID: tid, Channel: "youzan", ShopID: kdtID, AmountFen: fen, PaidAt: paidAt, Identities: ids,
			Items: []events.OrderItem{{SKU: "SKU-RED-L", Name: "羊毛大衣 红色 L", Quantity: 1, AmountFen: fen}}}
	}
	refund := func(id string, fen int64) events.OrderRefundedData {
		return events.OrderRefundedData{OrderID: tid, RefundID: id, Channel: "youzan", ShopID: kdtID, AmountFen: fen, RefundedAt: refundedAt, Identities: ids}
	}
	tests := []struct {
		name    string
		body    []byte
		typ     string
		wantKey string
		want    any
	}{
		{"paid, ciphertext phone", signed(t, "trade_TradePaid", "TRADE_PAID", paidMsg("1285.50", cipher)), events.OrderPaid,
			kdtID + "/trade_TradePaid/" + tid + "/TRADE_PAID/", paid(128550, ids)},
		{"paid, plaintext phone", signed(t, "trade_TradePaid", "TRADE_PAID", paidMsg("0.01", "13812345678")), events.OrderPaid,
			kdtID + "/trade_TradePaid/" + tid + "/TRADE_PAID/", paid(1, []events.Identity{ids[0], {Type: "phone", Value: "13812345678"}})},
		{"paid, masked phone", signed(t, "trade_TradePaid", "TRADE_PAID", paidMsg("12", "138****5678")), events.OrderPaid,
			kdtID + "/trade_TradePaid/" + tid + "/TRADE_PAID/", paid(1200, []events.Identity{ids[0], {Type: "phone_masked", Value: "138****5678"}})},
		{"full refund", signed(t, "trade_refund_RefundSuccess", "SUCCESS", refundMsg("201811211234567890", "1285.50")), events.OrderRefunded,
			kdtID + "/trade_refund_RefundSuccess/" + tid + "/SUCCESS/201811211234567890", refund("201811211234567890", 128550)},
		{"partial refund, new message type", signed(t, "youzan_trade_RefundSuccess", "SUCCESS", refundMsg("201811211234567891", "85.5")), events.OrderRefunded,
			kdtID + "/youzan_trade_RefundSuccess/" + tid + "/SUCCESS/201811211234567891", refund("201811211234567891", 8550)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := youzan.New(withBuyer()).Handle(context.Background(), push(tt.body), creds())
			require.NoError(t, err)
			require.NoError(t, youzan.New(nil).Verify(push(tt.body), creds()))
			require.Len(t, res.Events, 1)
			ev := res.Events[0]
			require.NoError(t, events.Validate(ev))
			assert.Equal(t, tt.typ, ev.Type())
			assert.Equal(t, platform.EventID("youzan", tt.wantKey, 0), ev.ID())
			assert.Equal(t, platform.Source("youzan"), ev.Source())
			assert.JSONEq(t, mustJSON(t, tt.want), string(ev.Data()))
			assert.Equal(t, `{"code":0,"msg":"success"}`, string(res.Reply.Body))
			assert.Empty(t, res.Unhandled)
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestHandleAcknowledgesWithoutEvents(t *testing.T) {
	tests := []struct {
		name   string
		body   []byte
		buyers youzan.BuyerSource
		want   []string
	}{
		{"test message", signed(t, "trade_TradePaid", "TRADE_PAID", paidMsg("1.00", cipher), func(e *envelope) { e.Test = true }), withBuyer(), []string{"test trade_TradePaid"}},
		{"test message with a broken msg", signed(t, "trade_TradePaid", "TRADE_PAID", "{", func(e *envelope) { e.Test = true }), withBuyer(), []string{"test trade_TradePaid"}},
		{"trade success", signed(t, "trade_TradeSuccess", "TRADE_SUCCESS", `{"tid":"E1"}`), withBuyer(), []string{"trade_TradeSuccess"}},
		{"refund without a buyer lookup", signed(t, "trade_refund_RefundSuccess", "SUCCESS", refundMsg("1", "1.00")), nil, []string{"trade_refund_RefundSuccess"}},
		{"refund whose buyer is unknown", signed(t, "trade_refund_RefundSuccess", "SUCCESS", refundMsg("1", "1.00")), buyers{}, []string{"trade_refund_RefundSuccess"}},
		{"paid without buyer_info", signed(t, "trade_TradePaid", "TRADE_PAID", `{"full_order_info":{"order_info":{"tid":"E1"},"pay_info":{"payment":"1.00"}}}`), withBuyer(), []string{"trade_TradePaid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := youzan.New(tt.buyers).Handle(context.Background(), push(tt.body), creds())
			require.NoError(t, err)
			assert.Empty(t, res.Events)
			assert.Equal(t, tt.want, res.Unhandled)
			assert.Equal(t, `{"code":0,"msg":"success"}`, string(res.Reply.Body))
		})
	}
}

func TestHandleRejects(t *testing.T) {
	good := paidMsg("1.00", cipher)
	tests := []struct {
		name      string
		body      []byte
		wantErr   error
		wantField string
	}{
		{"bad sign", signed(t, "trade_TradePaid", "TRADE_PAID", good, func(e *envelope) { e.Sign = strings.Repeat("0", 32) }), platform.ErrSignature, ""},
		{"sign over the decoded msg", signed(t, "trade_TradePaid", "TRADE_PAID", good, func(e *envelope) {
			sum := md5.Sum([]byte(clientID + good + secret))
			e.Sign = hex.EncodeToString(sum[:])
		}), platform.ErrSignature, ""},
		{"msg changed after signing", signed(t, "trade_TradePaid", "TRADE_PAID", good, func(e *envelope) { e.Msg = url.QueryEscape(paidMsg("1000.00", cipher)) }), platform.ErrSignature, ""},
		{"bad sign on a test message", signed(t, "trade_TradePaid", "TRADE_PAID", good, func(e *envelope) { e.Test, e.Sign = true, "x" }), platform.ErrSignature, ""},
		{"unknown client", signed(t, "trade_TradePaid", "TRADE_PAID", good, func(e *envelope) { e.ClientID = "other" }), platform.ErrUnknownShop, ""},
		{"another shop", signed(t, "trade_TradePaid", "TRADE_PAID", good, func(e *envelope) { e.KdtID = 999 }), platform.ErrUnknownShop, ""},
		{"body not JSON", []byte(`{"client_id":`), nil, "body"},
		{"sign missing", []byte(`{"client_id":"6cd25b3f99727975b5","type":"trade_TradePaid","msg":""}`), nil, "sign"},
		{"msg not JSON", signed(t, "trade_TradePaid", "TRADE_PAID", "tid=E1"), nil, "msg"},
		{"tid missing", signed(t, "trade_TradePaid", "TRADE_PAID", `{"full_order_info":{"order_info":{},"pay_info":{"payment":"1.00"}}}`), nil, "msg.full_order_info.order_info.tid"},
		{"payment with three decimals", signed(t, "trade_TradePaid", "TRADE_PAID", paidMsg("1.005", cipher)), nil, "msg.full_order_info.pay_info.payment"},
		{"payment negative", signed(t, "trade_TradePaid", "TRADE_PAID", paidMsg("-1.00", cipher)), nil, "msg.full_order_info.pay_info.payment"},
		{"pay_time not a local time", signed(t, "trade_TradePaid", "TRADE_PAID", strings.Replace(good, "2026-11-25 18:30:00", "2026-11-25T18:30:00+08:00", 1)), nil, "msg.full_order_info.order_info.pay_time"},
		{"order line quantity negative", signed(t, "trade_TradePaid", "TRADE_PAID", strings.Replace(good, `"num":1`, `"num":-1`, 1)), nil, "msg.full_order_info.orders.0.num"},
		{"refund_id missing", signed(t, "trade_refund_RefundSuccess", "SUCCESS", `{"tid":"E1","refunded_fee":"1.00"}`), nil, "msg.refund_id"},
		{"kdt_id missing", signed(t, "trade_TradePaid", "TRADE_PAID", good, func(e *envelope) { e.KdtID = 0 }), nil, "kdt_id"},
	}
	cr := platform.Credentials{clientID: {"secret": secret}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cr
			if tt.wantErr == platform.ErrUnknownShop {
				c = creds()
			}
			a := youzan.New(withBuyer())
			res, err := a.Handle(context.Background(), push(tt.body), c)
			require.Error(t, err)
			assert.Empty(t, res.Events)
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
				if tt.name != "another shop" { // kdt_id is checked after the sign, in Handle
					assert.ErrorIs(t, a.Verify(push(tt.body), c), tt.wantErr, "Verify refuses what Handle cannot verify")
				}
				return
			}
			var fe *events.FieldError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, tt.wantField, fe.Field)
		})
	}
}

func TestFormBodyAndUppercaseSign(t *testing.T) {
	enc := url.QueryEscape(paidMsg("1.00", cipher))
	sum := md5.Sum([]byte(clientID + enc + secret))
	form := url.Values{"client_id": {clientID}, "id": {tid}, "kdt_id": {kdtID}, "type": {"trade_TradePaid"}, "status": {"TRADE_PAID"},
		"msg": {enc}, "sign": {strings.ToUpper(hex.EncodeToString(sum[:]))}, "test": {"false"}, "mode": {"1"}, "sendCount": {"0"}}
	res, err := youzan.New(nil).Handle(context.Background(), push([]byte(form.Encode())), creds())
	require.NoError(t, err)
	require.Len(t, res.Events, 1)
	assert.Equal(t, events.OrderPaid, res.Events[0].Type())
}

func TestRedeliveryHasTheSameEventID(t *testing.T) {
	first := signed(t, "trade_TradePaid", "TRADE_PAID", paidMsg("1.00", cipher))
	again := signed(t, "trade_TradePaid", "TRADE_PAID", paidMsg("1.00", cipher), func(e *envelope) { e.SendCount, e.Version = 3, e.Version+60 })
	a := youzan.New(nil)
	r1, err := a.Handle(context.Background(), push(first), creds())
	require.NoError(t, err)
	r2, err := a.Handle(context.Background(), push(again), creds())
	require.NoError(t, err)
	require.Len(t, r1.Events, 1)
	require.Len(t, r2.Events, 1)
	assert.Equal(t, r1.Events[0].ID(), r2.Events[0].ID())

	// Two partial refunds of one trade are two events.
	ra, err := youzan.New(withBuyer()).Handle(context.Background(), push(signed(t, "trade_refund_RefundSuccess", "SUCCESS", refundMsg("R1", "1.00"))), creds())
	require.NoError(t, err)
	rb, err := youzan.New(withBuyer()).Handle(context.Background(), push(signed(t, "trade_refund_RefundSuccess", "SUCCESS", refundMsg("R2", "1.00"))), creds())
	require.NoError(t, err)
	require.Len(t, ra.Events, 1)
	require.Len(t, rb.Events, 1)
	assert.NotEqual(t, ra.Events[0].ID(), rb.Events[0].ID())
}

func TestYuanToFen(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"0.01", 1, false}, {"1", 100, false}, {"1.5", 150, false}, {"12.30", 1230, false}, {"1285.50", 128550, false},
		{"99999999.99", 9999999999, false}, {"1.500", 150, false},
		{"", 0, true}, {"1.005", 0, true}, {"-1", 0, true}, {"1e3", 0, true}, {"1.", 0, true}, {".5", 0, true}, {" 1", 0, true}, {"１.00", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := youzan.YuanToFen(tt.in)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestSignCoversMsgByteForByte(t *testing.T) {
	// A msg with a trailing space signed as sent verifies; trimming it before the check would not.
	body := signed(t, "trade_TradePaid", "TRADE_PAID", paidMsg("1.00", cipher), func(e *envelope) {
		e.Msg += " "
		sum := md5.Sum([]byte(clientID + e.Msg + secret))
		e.Sign = hex.EncodeToString(sum[:])
	})
	res, err := youzan.New(nil).Handle(context.Background(), push(body), creds())
	require.NoError(t, err)
	assert.Len(t, res.Events, 1)
}
