package stack

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnimember/omnimember/functions/ingest"
	"github.com/omnimember/omnimember/functions/profile"
	"github.com/omnimember/omnimember/shared/platform"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	dyAppKey  = "7012345678901234567"
	dySecret  = "dy-secret-for-the-stack-test"
	dyToken   = "dy-access-token"
	dyShop    = "4463798"
	dyOrder   = "4781320682406083640"
	dyOpenID  = "dyBuyerOpenID001"
	dyCipher  = "#1TlM#c3RhY2stY2lwaGVy#1##"
	yzClient  = "6cd25b3f99727975b5"
	yzSecret  = "yz-secret-for-the-stack-test"
	yzKdt     = "40061234"
	yzOpenID  = "yzBuyerOpenID001"
	buyerTel  = "13812345678"
	ackExpect = `{"code":0,"msg":"success"}`
)

// douyinGateway plays the 抖店 open API for the chain: it recomputes each request's HMAC-SHA256
// signature from the documented string and answers order.orderDetail and order.batchDecrypt.
func douyinGateway(t *testing.T, badSigns *atomic.Int32) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		q := r.URL.Query()
		s := dySecret + "app_key" + q.Get("app_key") + "method" + q.Get("method") + "param_json" + string(body) + "timestamp" + q.Get("timestamp") + "v" + q.Get("v") + dySecret
		m := hmac.New(sha256.New, []byte(dySecret))
		m.Write([]byte(s))
		if q.Get("app_key") != dyAppKey || q.Get("access_token") != dyToken || q.Get("sign_method") != "hmac-sha256" ||
			!hmac.Equal([]byte(q.Get("sign")), []byte(hex.EncodeToString(m.Sum(nil)))) {
			badSigns.Add(1)
			fmt.Fprint(w, `{"code":40004,"msg":"签名校验失败","data":{}}`)
			return
		}
		switch r.URL.Path {
		case "/order/orderDetail":
			fmt.Fprintf(w, `{"code":10000,"msg":"success","data":{"shop_order_detail":{"order_id":"%s","shop_id":%s,"doudian_open_id":"%s","encrypt_post_tel":"%s","mask_post_tel":"138****5678","pay_amount":12900}}}`,
				dyOrder, dyShop, dyOpenID, dyCipher)
		case "/order/batchDecrypt":
			fmt.Fprintf(w, `{"code":10000,"msg":"success","data":{"decrypt_infos":[{"auth_id":"%s","cipher_text":"%s","decrypt_text":"%s","err_no":0,"is_virtual_tel":false}]}}`,
				dyOrder, dyCipher, buyerTel)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// youzanGateway plays the Youzan cloud gateway: a token for the silent authorisation of the shop,
// and youzan.trade.get with the buyer for that token only.
func youzanGateway(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		switch {
		case r.URL.Path == "/auth/token" && body["client_id"] == yzClient && body["client_secret"] == yzSecret && body["grant_id"] == yzKdt:
			fmt.Fprintf(w, `{"success":true,"code":200,"data":{"access_token":"yz-token","expires":%d}}`, time.Now().Add(time.Hour).UnixMilli())
		case r.URL.Path == "/api/youzan.trade.get/4.0.0" && r.URL.Query().Get("access_token") == "yz-token":
			fmt.Fprintf(w, `{"success":true,"code":200,"data":{"full_order_info":{"buyer_info":{"yz_open_id":%q,"buyer_phone":%q}}}}`, yzOpenID, buyerTel)
		default:
			fmt.Fprint(w, `{"success":false,"code":4202,"message":"invalid"}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// redirect sends the adapters' outgoing requests (to the platforms' real gateways) to the in-test ones.
type redirect map[string]string

func (rd redirect) RoundTrip(r *http.Request) (*http.Response, error) {
	to, err := url.Parse(rd[r.URL.Host])
	if err != nil || to.Host == "" {
		return nil, fmt.Errorf("no in-test server for %s", r.URL.Host)
	}
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host = to.Scheme, to.Host
	return http.DefaultTransport.RoundTrip(r)
}

func pushTo(t *testing.T, s *Stack, platformName string, body []byte, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+s.Addr+"/webhooks/"+platformName, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header = header
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func douyinPush(t *testing.T, tag, msgID, data, secret string) ([]byte, http.Header) {
	body, err := json.Marshal([]map[string]string{{"tag": tag, "msg_id": msgID, "data": data}})
	require.NoError(t, err)
	sum := md5.Sum([]byte(dyAppKey + string(body) + secret))
	return body, http.Header{"App-Id": {dyAppKey}, "Event-Sign": {hex.EncodeToString(sum[:])}}
}

func youzanPush(t *testing.T, paidAt time.Time) []byte {
	msg := fmt.Sprintf(`{"full_order_info":{"order_info":{"tid":"E20261125183000012000001","pay_time":%q},"pay_info":{"payment":"88.00"},`+
		`"buyer_info":{"yz_open_id":%q,"buyer_phone":%q},"orders":[{"outer_sku_id":"SKU-1","title":"围巾","num":1,"payment":"88.00"}]}}`,
		paidAt.In(time.FixedZone("CST", 8*3600)).Format(time.DateTime), yzOpenID, buyerTel)
	enc := url.QueryEscape(msg)
	sum := md5.Sum([]byte(yzClient + enc + yzSecret))
	b, err := json.Marshal(map[string]any{"client_id": yzClient, "id": "E20261125183000012000001", "kdt_id": 40061234, "kdt_name": "有赞测试店",
		"mode": 1, "msg": enc, "sendCount": 0, "sign": hex.EncodeToString(sum[:]), "status": "TRADE_PAID", "test": false,
		"type": "trade_TradePaid", "version": paidAt.Unix()})
	require.NoError(t, err)
	return b
}

func youzanRefund(t *testing.T, refundID, fee string) []byte {
	msg := fmt.Sprintf(`{"tid":"E20261125183000012000001","refund_id":%q,"refunded_fee":%q,"update_time":%q,"refund_type":"REFUND_ONLY"}`,
		refundID, fee, time.Now().In(time.FixedZone("CST", 8*3600)).Format(time.DateTime))
	enc := url.QueryEscape(msg)
	sum := md5.Sum([]byte(yzClient + enc + yzSecret))
	b, err := json.Marshal(map[string]any{"client_id": yzClient, "id": "E20261125183000012000001", "kdt_id": 40061234, "mode": 1, "msg": enc,
		"sendCount": 0, "sign": hex.EncodeToString(sum[:]), "status": "SUCCESS", "test": false, "type": "trade_refund_RefundSuccess", "version": 1})
	require.NoError(t, err)
	return b
}

func lookupScoped(t *testing.T, s *Stack, typ, value, scope string) profile.Profile {
	t.Helper()
	q := url.Values{"type": {typ}, "value": {value}, "scope": {scope}}
	resp := readerGet(t, s, "/v1/members:lookup?"+q.Encode())
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var p profile.Profile
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&p))
	return p
}

// TestNativeDouyinAndYouzanPushesReachTheProfile: a signed 抖店 paid push is enriched through the
// (in-test) open API, a redelivery counts once, a partial refund lowers the net, a forged push is
// refused; a signed Youzan paid push with the same phone lands on the same member, and a Youzan
// refund, whose buyer comes from the (in-test) youzan.trade.get, lowers the net again.
func TestNativeDouyinAndYouzanPushesReachTheProfile(t *testing.T) {
	var badSigns atomic.Int32
	opts := testOptions(t, t.TempDir())
	opts.HTTPClient = &http.Client{Timeout: 5 * time.Second, Transport: redirect{
		"openapi-fxg.jinritemai.com": douyinGateway(t, &badSigns).URL,
		"open.youzanyun.com":         youzanGateway(t).URL,
	}}
	opts.WebhookSecrets = ingest.Secrets{
		"douyin": platform.Credentials{dyAppKey: {"secret": dySecret, "accessToken": dyToken, "shopId": dyShop}},
		"youzan": platform.Credentials{yzClient: {"secret": yzSecret, "kdtId": yzKdt}},
	}
	s := start(t, opts)
	paidAt := time.Now().Add(-time.Hour).Truncate(time.Second)

	paid := fmt.Sprintf(`{"p_id":%s,"s_ids":[%s],"shop_id":%s,"order_status":2,"order_type":0,"pay_type":1,"pay_time":%d,"pay_amount":12900}`, dyOrder, dyOrder, dyShop, paidAt.Unix())
	forged, fh := douyinPush(t, "101", "7000000000000000009", strings.Replace(paid, "12900", "999900", 1), "not-the-secret")
	status, _ := pushTo(t, s, "douyin", forged, fh)
	assert.Equal(t, http.StatusUnauthorized, status)
	for range 2 { // Douyin redelivers until it reads the ack: the second is the same message
		body, h := douyinPush(t, "101", "7000000000000000001", paid, dySecret)
		status, reply := pushTo(t, s, "douyin", body, h)
		require.Equal(t, http.StatusOK, status)
		assert.Equal(t, ackExpect, reply)
	}
	waitQuiet(t, s)
	p := lookup(t, s, "phone", buyerTel)
	assert.Equal(t, []int64{1, 12900}, []int64{p.Orders.Count, p.Orders.NetAmountFen})
	assert.Equal(t, p.OneID, lookupScoped(t, s, "douyin_openid", dyOpenID, dyShop).OneID)
	assert.Equal(t, "plaintext", p.Pool)

	refund := fmt.Sprintf(`{"aftersale_id":7001234567890123456,"aftersale_status":12,"aftersale_type":2,"p_id":%s,"refund_amount":2900,"s_id":%s,"shop_id":%s,"success_time":%d}`, dyOrder, dyOrder, dyShop, paidAt.Add(30*time.Minute).Unix())
	body, h := douyinPush(t, "206", "7000000000000000002", refund, dySecret)
	status, _ = pushTo(t, s, "douyin", body, h)
	require.Equal(t, http.StatusOK, status)

	status, reply := pushTo(t, s, "youzan", youzanPush(t, paidAt), http.Header{})
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, ackExpect, reply)
	waitQuiet(t, s)

	p = lookup(t, s, "phone", buyerTel)
	assert.Equal(t, []int64{2, 12900 - 2900 + 8800}, []int64{p.Orders.Count, p.Orders.NetAmountFen})
	assert.Equal(t, p.OneID, lookupScoped(t, s, "youzan_open_id", yzOpenID, "").OneID)
	assert.Zero(t, badSigns.Load(), "every open API call verified")

	// A Youzan refund names no buyer: the adapter asks youzan.trade.get, and the net drops.
	status, reply = pushTo(t, s, "youzan", youzanRefund(t, "201811211234567890", "8.00"), http.Header{})
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, ackExpect, reply)
	waitQuiet(t, s)
	p = lookup(t, s, "phone", buyerTel)
	assert.Equal(t, []int64{2, 12900 - 2900 + 8800 - 800}, []int64{p.Orders.Count, p.Orders.NetAmountFen})
}
