package douyin_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/platform"
	"github.com/omnimember/omnimember/shared/platform/douyin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	appKey  = "7012345678901234567"
	secret  = "a1b2c3d4-e5f6-7890-abcd-ef0123456789"
	shopID  = "4463798"
	orderID = "4781320682406083640" // > 2^53: must survive as text
	openID  = "1@#Vk9ZbWFsbFNob3BPcGVuSWQ="
	cipher  = "#1TlM#dGVzdGNpcGhlcnRleHQ=#1##"
)

// sign computes event-sign as 抖店 does, independently of the adapter: MD5(app_key + body + secret).
func sign(key, sec string, body []byte) string {
	sum := md5.Sum([]byte(key + string(body) + sec))
	return hex.EncodeToString(sum[:])
}

// msg builds one pushed message the way 抖店 documents it: data is a JSON object in a string.
func msg(tag, msgID, data string) map[string]string {
	return map[string]string{"tag": tag, "msg_id": msgID, "data": data}
}

func paidData(amount int) string {
	return fmt.Sprintf(`{"p_id":%s,"s_ids":[%s],"shop_id":%s,"order_status":2,"order_type":0,"pay_type":1,"pay_time":1630022564,"pay_amount":%d}`, orderID, orderID, shopID, amount)
}

func refundData(amount int) string {
	return fmt.Sprintf(`{"aftersale_id":7001234567890123456,"aftersale_status":12,"aftersale_type":2,"p_id":%s,"refund_amount":%d,"refund_post_amount":0,"s_id":%s,"shop_id":%s,"success_time":1630108964}`, orderID, amount, orderID, shopID)
}

func body(t *testing.T, msgs ...map[string]string) []byte {
	t.Helper()
	if msgs == nil {
		msgs = []map[string]string{}
	}
	b, err := json.Marshal(msgs)
	require.NoError(t, err)
	return b
}

func push(b []byte, key, sig string) platform.Push {
	h := textproto.MIMEHeader{}
	h.Set("app-id", key)
	h.Set("event-sign", sig)
	return platform.Push{Platform: "douyin", Method: "POST", Header: h, Body: b, ReceivedAt: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
}

func creds() platform.Credentials {
	return platform.Credentials{appKey: {"secret": secret, "shopId": shopID, "accessToken": "tok"}}
}

// orders stands in for the 抖店 open API (the real client is tested against a signature-checking
// server in functions/ingest/douyinapi); it records what the adapter asked.
type orders struct {
	mu       sync.Mutex
	detail   douyin.Order
	plain    map[string]douyin.Plain
	err      error
	asked    []string
	appKeyOf []string
}

func (o *orders) OrderDetail(_ context.Context, shop platform.Shop, id string) (douyin.Order, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.asked = append(o.asked, id)
	o.appKeyOf = append(o.appKeyOf, shop["appKey"])
	return o.detail, o.err
}

func (o *orders) Decrypt(_ context.Context, _ platform.Shop, cs []douyin.Cipher) (map[string]douyin.Plain, error) {
	out := map[string]douyin.Plain{}
	for _, c := range cs {
		if p, ok := o.plain[c.Text]; ok && c.AuthID == orderID {
			out[c.Text] = p
		}
	}
	return out, nil
}

func buyer() *orders {
	return &orders{
		detail: douyin.Order{OrderID: orderID, ShopID: shopID, OpenID: openID, EncryptPostTel: cipher, MaskPostTel: "138****5678", PayAmountFen: 12900},
		plain:  map[string]douyin.Plain{cipher: {Phone: "13812345678"}},
	}
}

var wantIDs = []events.Identity{
	{Type: "douyin_openid", Value: openID, Scope: shopID},
	{Type: "phone_ciphertext", Value: cipher, Scope: "douyin:" + shopID},
	{Type: "phone_masked", Value: "138****5678"},
	{Type: "phone", Value: "13812345678"},
}

func TestHandleNormalisesPaidAndRefunds(t *testing.T) {
	paid := events.OrderPaidData{OrderID: orderID, Channel: "douyin", ShopID: shopID, AmountFen: 12900,
		PaidAt: time.Unix(1630022564, 0).UTC(), Identities: wantIDs}
	refund := func(fen int64) events.OrderRefundedData {
		return events.OrderRefundedData{OrderID: orderID, RefundID: "7001234567890123456", Channel: "douyin", ShopID: shopID,
			AmountFen: fen, RefundedAt: time.Unix(1630108964, 0).UTC(), Identities: wantIDs}
	}
	tests := []struct {
		name string
		msg  map[string]string
		typ  string
		want any
	}{
		{"paid", msg("101", "7000000000000000001", paidData(12900)), events.OrderPaid, paid},
		{"full refund", msg("206", "7000000000000000002", refundData(12900)), events.OrderRefunded, refund(12900)},
		{"partial refund", msg("206", "7000000000000000003", refundData(2900)), events.OrderRefunded, refund(2900)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := body(t, tt.msg)
			res, err := douyin.New(buyer()).Handle(context.Background(), push(b, appKey, sign(appKey, secret, b)), creds())
			require.NoError(t, err)
			require.NoError(t, douyin.New(nil).Verify(push(b, appKey, sign(appKey, secret, b)), creds()))
			require.Len(t, res.Events, 1)
			ev := res.Events[0]
			require.NoError(t, events.Validate(ev))
			assert.Equal(t, tt.typ, ev.Type())
			assert.Equal(t, platform.EventID("douyin", tt.msg["msg_id"], 0), ev.ID())
			assert.Equal(t, platform.Source("douyin"), ev.Source())
			assert.JSONEq(t, mustJSON(t, tt.want), string(ev.Data()))
			assert.Equal(t, 200, res.Reply.Status)
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

func TestHandleAcknowledgesWhatItDoesNotNormalise(t *testing.T) {
	tests := []struct {
		name          string
		msgs          []map[string]string
		wantUnhandled []string
		wantEvents    int
	}{
		{"empty array", nil, nil, 0},
		{"created and shipped", []map[string]string{msg("100", "1", `{"p_id":1}`), msg("102", "2", "not json at all")}, []string{"tag 100", "tag 102"}, 0},
		{"verification push (tag 0, unconfirmed)", []map[string]string{msg("0", "0", "{}")}, []string{"tag 0"}, 0},
		{"unknown tag beside a paid one", []map[string]string{msg("999", "3", ""), msg("101", "4", paidData(100))}, []string{"tag 999"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := body(t, tt.msgs...)
			res, err := douyin.New(buyer()).Handle(context.Background(), push(b, appKey, sign(appKey, secret, b)), creds())
			require.NoError(t, err)
			assert.Equal(t, tt.wantUnhandled, res.Unhandled)
			assert.Len(t, res.Events, tt.wantEvents)
			assert.Equal(t, `{"code":0,"msg":"success"}`, string(res.Reply.Body))
		})
	}
}

func TestHandleRejects(t *testing.T) {
	good := body(t, msg("101", "7000000000000000001", paidData(100)))
	otherShop := body(t, msg("101", "5", strings.Replace(paidData(100), `"shop_id":`+shopID, `"shop_id":999`, 1)))
	tests := []struct {
		name      string
		body      []byte
		key, sig  string
		src       *orders
		wantErr   error
		wantField string
	}{
		{"bad signature", good, appKey, sign(appKey, "wrong", good), buyer(), platform.ErrSignature, ""},
		{"signature over another body", good, appKey, sign(appKey, secret, append([]byte(" "), good...)), buyer(), platform.ErrSignature, ""},
		{"no signature", good, appKey, "", buyer(), platform.ErrSignature, ""},
		{"unknown app-id", good, "999", sign("999", secret, good), buyer(), platform.ErrUnknownShop, ""},
		{"missing app-id", good, "", sign("", secret, good), buyer(), platform.ErrUnknownShop, ""},
		{"message of another shop", otherShop, appKey, sign(appKey, secret, otherShop), buyer(), platform.ErrUnknownShop, ""},
		{"order API down", good, appKey, sign(appKey, secret, good), &orders{err: fmt.Errorf("order detail: %w", platform.ErrUpstream)}, platform.ErrUpstream, ""},
		{"not an array", []byte(`{"tag":"101"}`), appKey, "", buyer(), nil, "body"},
		{"p_id not a number", body(t, msg("101", "1", strings.Replace(paidData(1), `"p_id":`+orderID, `"p_id":"47x"`, 1))), appKey, "", buyer(), nil, "[0].data.p_id"},
		{"p_id missing", body(t, msg("206", "1", `{"shop_id":1,"aftersale_id":2,"refund_amount":1}`)), appKey, "", buyer(), nil, "[0].data.p_id"},
		{"negative amount", body(t, msg("101", "1", `{"p_id":1,"shop_id":1,"pay_amount":-5}`)), appKey, "", buyer(), nil, "[0].data.pay_amount"},
		{"fractional amount", body(t, msg("101", "1", `{"p_id":1,"shop_id":1,"pay_amount":1.5}`)), appKey, "", buyer(), nil, "[0].data.pay_amount"},
		{"aftersale_id missing", body(t, msg("206", "1", `{"p_id":1,"shop_id":1,"refund_amount":1}`)), appKey, "", buyer(), nil, "[0].data.aftersale_id"},
		{"data not double-encoded", []byte(`[{"tag":"101","msg_id":"1","data":{"p_id":1}}]`), appKey, "", buyer(), nil, "[0].data"},
		{"data string not an object", body(t, msg("101", "1", `[1]`)), appKey, "", buyer(), nil, "[0].data"},
		{"msg_id missing", []byte(`[{"tag":"101","data":"{}"}]`), appKey, "", buyer(), nil, "[0].msg_id"},
		{"second message broken", body(t, msg("101", "1", paidData(1)), msg("206", "2", `{"p_id":1}`)), appKey, "", buyer(), nil, "[1].data.shop_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig := tt.sig
			if sig == "" && tt.wantField != "" {
				sig = sign(appKey, secret, tt.body)
			}
			a := douyin.New(tt.src)
			res, err := a.Handle(context.Background(), push(tt.body, tt.key, sig), creds())
			require.Error(t, err)
			assert.Empty(t, res.Events)
			verr := a.Verify(push(tt.body, tt.key, sig), creds())
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
				if tt.wantErr == platform.ErrSignature || tt.wantErr == platform.ErrUnknownShop && tt.name != "message of another shop" {
					assert.ErrorIs(t, verr, tt.wantErr, "Verify refuses what Handle cannot verify")
				} else {
					assert.NoError(t, verr, "signed: Verify accepts it (ingest archives it)")
				}
				return
			}
			assert.NoError(t, verr, "signed: Verify accepts it (ingest archives it)")
			var fe *events.FieldError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, tt.wantField, fe.Field)
		})
	}
}

func TestSignatureHexIsCaseInsensitive(t *testing.T) {
	b := body(t, msg("101", "1", paidData(100)))
	res, err := douyin.New(buyer()).Handle(context.Background(), push(b, appKey, strings.ToUpper(sign(appKey, secret, b))), creds())
	require.NoError(t, err)
	assert.Len(t, res.Events, 1)
}

func TestRedeliveredMessageHasTheSameEventID(t *testing.T) {
	first := body(t, msg("101", "7000000000000000001", paidData(100)))
	// The same message again, this time second in a batch: the id depends on msg_id only.
	again := body(t, msg("100", "9", "{}"), msg("101", "7000000000000000001", paidData(100)))
	a := douyin.New(buyer())
	r1, err := a.Handle(context.Background(), push(first, appKey, sign(appKey, secret, first)), creds())
	require.NoError(t, err)
	r2, err := a.Handle(context.Background(), push(again, appKey, sign(appKey, secret, again)), creds())
	require.NoError(t, err)
	require.Len(t, r1.Events, 1)
	require.Len(t, r2.Events, 1)
	assert.Equal(t, r1.Events[0].ID(), r2.Events[0].ID())
	assert.Equal(t, r1.Events[0].Data(), r2.Events[0].Data())
}

func TestBuyerIdentities(t *testing.T) {
	tests := []struct {
		name   string
		detail douyin.Order
		plain  map[string]douyin.Plain
		want   []events.Identity
	}{
		{"virtual number is never a key", douyin.Order{OpenID: openID, EncryptPostTel: cipher, MaskPostTel: "170****5678"},
			map[string]douyin.Plain{cipher: {Phone: "17012345678", Virtual: true}}, wantIDs[:1]},
		{"decrypt refused", douyin.Order{OpenID: openID, EncryptPostTel: cipher, MaskPostTel: "138****5678"}, nil, wantIDs[:3]},
		{"odd mask dropped", douyin.Order{OpenID: openID, EncryptPostTel: cipher, MaskPostTel: "1*********8"},
			map[string]douyin.Plain{cipher: {Phone: "+86 138-1234-5678"}}, []events.Identity{wantIDs[0], wantIDs[1], wantIDs[3]}},
		{"open id only", douyin.Order{OpenID: openID}, nil, wantIDs[:1]},
		{"phone only", douyin.Order{EncryptPostTel: cipher, MaskPostTel: "138****5678"}, map[string]douyin.Plain{cipher: {Phone: "13812345678"}}, wantIDs[1:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := body(t, msg("101", "1", paidData(100)))
			res, err := douyin.New(&orders{detail: tt.detail, plain: tt.plain}).Handle(context.Background(), push(b, appKey, sign(appKey, secret, b)), creds())
			require.NoError(t, err)
			require.Len(t, res.Events, 1)
			got, err := events.Decode[events.OrderPaidData](res.Events[0])
			require.NoError(t, err)
			assert.Equal(t, tt.want, got.Identities)
		})
	}
}

func TestOrderWithoutBuyerIsAcknowledgedNotPublished(t *testing.T) {
	b := body(t, msg("101", "1", paidData(100)))
	res, err := douyin.New(&orders{}).Handle(context.Background(), push(b, appKey, sign(appKey, secret, b)), creds())
	require.NoError(t, err)
	assert.Empty(t, res.Events)
	assert.Equal(t, []string{"tag 101 without buyer"}, res.Unhandled)
}

func TestAdapterPassesTheAppKeyToTheOrderSource(t *testing.T) {
	src := buyer()
	b := body(t, msg("101", "1", paidData(100)))
	_, err := douyin.New(src).Handle(context.Background(), push(b, appKey, sign(appKey, secret, b)), creds())
	require.NoError(t, err)
	assert.Equal(t, []string{orderID}, src.asked)
	assert.Equal(t, []string{appKey}, src.appKeyOf)
}

// perOrder serves a different buyer per order and records the decrypt batches.
type perOrder struct {
	mu      sync.Mutex
	batches [][]douyin.Cipher
}

func (p *perOrder) OrderDetail(_ context.Context, _ platform.Shop, id string) (douyin.Order, error) {
	return douyin.Order{OrderID: id, OpenID: "open-" + id, EncryptPostTel: "#cipher-" + id + "#", MaskPostTel: "138****5678"}, nil
}

func (p *perOrder) Decrypt(_ context.Context, _ platform.Shop, cs []douyin.Cipher) (map[string]douyin.Plain, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.batches = append(p.batches, cs)
	out := map[string]douyin.Plain{}
	for i, c := range cs {
		out[c.Text] = douyin.Plain{Phone: fmt.Sprintf("1381234567%d", i)}
	}
	return out, nil
}

func TestOnePushDecryptsInOneBatch(t *testing.T) {
	data := func(order string) string {
		return fmt.Sprintf(`{"p_id":%s,"shop_id":%s,"pay_amount":100,"pay_time":1630022564}`, order, shopID)
	}
	b := body(t, msg("101", "1", data("11")), msg("102", "2", "{}"), msg("101", "3", data("12")), msg("206", "4", strings.Replace(data("13"), `"pay_amount":100`, `"aftersale_id":5,"refund_amount":100`, 1)))
	src := &perOrder{}
	res, err := douyin.New(src).Handle(context.Background(), push(b, appKey, sign(appKey, secret, b)), creds())
	require.NoError(t, err)
	assert.Equal(t, [][]douyin.Cipher{{{AuthID: "11", Text: "#cipher-11#"}, {AuthID: "12", Text: "#cipher-12#"}, {AuthID: "13", Text: "#cipher-13#"}}}, src.batches)
	require.Len(t, res.Events, 3)
	for i, want := range []string{"13812345670", "13812345671", "13812345672"} {
		var d struct{ Identities []events.Identity }
		require.NoError(t, json.Unmarshal(res.Events[i].Data(), &d))
		assert.Contains(t, d.Identities, events.Identity{Type: "phone", Value: want})
	}
	assert.Equal(t, []string{"tag 102"}, res.Unhandled)
}
