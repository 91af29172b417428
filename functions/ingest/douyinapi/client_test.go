package douyinapi_test

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/omnimember/omnimember/functions/ingest/outbound"
	"io"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/functions/ingest/douyinapi"
	"github.com/omnimember/omnimember/shared/platform"
	"github.com/omnimember/omnimember/shared/platform/douyin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	appKey  = "7012345678901234567"
	secret  = "a1b2c3d4-e5f6-7890-abcd-ef0123456789"
	token   = "b1e8a2f6-0c4d-4c7e-9a51-6b3f2d8e7c10"
	shopID  = "4463798"
	orderID = "4781320682406083640"
	openID  = "1@#Vk9ZbWFsbFNob3BPcGVuSWQ="
)

// gateway plays the 抖店 open API: it checks every request the way the gateway does (common
// parameters, the HMAC-SHA256 signature recomputed here from the documented string, param_json
// exactly as expected), serves order details and decrypts, fails on demand and counts calls.
type gateway struct {
	t        *testing.T
	mu       sync.Mutex
	calls    map[string]int
	batches  []int
	fail     int // answer this many next requests with 503
	code     int // business code to answer with instead of 10000
	virtual  map[string]bool
	refused  map[string]bool
	badSigns int
	issued   int    // tokens created or refreshed
	current  string // the last issued token; order calls may use it instead of the configured one
	refresh  string
	lifetime int64 // expires_in of issued tokens, seconds
	noRenew  bool  // refuse token.refresh
}

func newGateway(t *testing.T) (*gateway, *httptest.Server) {
	g := &gateway{t: t, calls: map[string]int{}, virtual: map[string]bool{}, refused: map[string]bool{}}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return g, srv
}

// wantSign is the documented signature, written here independently of the client.
func wantSign(q map[string]string, paramJSON string) string {
	s := secret + "app_key" + q["app_key"] + "method" + q["method"] + "param_json" + paramJSON + "timestamp" + q["timestamp"] + "v" + q["v"] + secret
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil))
}

var digits = regexp.MustCompile(`^[0-9]{10}$`)

func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	q := map[string]string{}
	for k, v := range r.URL.Query() {
		q[k] = v[0]
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	method := strings.ReplaceAll(strings.TrimPrefix(r.URL.Path, "/"), "/", ".")
	g.calls[method]++
	if g.fail > 0 {
		g.fail--
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	tokenOK := q["access_token"] == token || (g.current != "" && q["access_token"] == g.current)
	if strings.HasPrefix(method, "token.") {
		_, has := q["access_token"]
		tokenOK = !has
	}
	ok := r.Method == http.MethodPost && q["method"] == method && q["app_key"] == appKey && q["v"] == "2" &&
		q["sign_method"] == "hmac-sha256" && tokenOK && digits.MatchString(q["timestamp"]) &&
		hmac.Equal([]byte(q["sign"]), []byte(wantSign(q, string(body))))
	if !ok {
		g.badSigns++
		writeJSON(w, map[string]any{"code": 40004, "msg": "签名校验失败", "sub_code": "isv.signature-invalid", "data": map[string]any{}})
		return
	}
	if g.code != 0 {
		writeJSON(w, map[string]any{"code": g.code, "msg": "业务处理失败", "sub_code": "isv.business-failed", "data": map[string]any{}})
		return
	}
	switch method {
	case "token.create", "token.refresh":
		g.token(w, method, string(body))
	case "order.orderDetail":
		g.orderDetail(w, string(body))
	case "order.batchDecrypt":
		g.batchDecrypt(w, body)
	default:
		http.NotFound(w, r)
	}
}

func (g *gateway) token(w http.ResponseWriter, method, body string) {
	want := `{"code":"","grant_type":"authorization_self","shop_id":"` + shopID + `"}`
	if method == "token.refresh" {
		want = `{"grant_type":"refresh_token","refresh_token":"` + g.refresh + `"}`
	}
	if body != want || (method == "token.refresh" && g.noRenew) {
		writeJSON(w, map[string]any{"code": 30002, "msg": "授权失败", "sub_code": "isv.token-refused", "data": map[string]any{}})
		return
	}
	g.issued++
	g.current, g.refresh = fmt.Sprintf("issued-%d", g.issued), fmt.Sprintf("refresh-%d", g.issued)
	writeJSON(w, map[string]any{"code": 10000, "msg": "success", "data": map[string]any{
		"access_token": g.current, "expires_in": g.lifetime, "refresh_token": g.refresh, "scope": "SCOPE", "shop_id": 4463798, "shop_name": "测试店"}})
}

func (g *gateway) orderDetail(w http.ResponseWriter, body string) {
	if !assert.Equal(g.t, `{"shop_order_id":"`+orderID+`"}`, body) {
		writeJSON(w, map[string]any{"code": 40001, "msg": "bad param_json"})
		return
	}
	// Numbers as the gateway sends them: order_id a string, shop_id a bare number.
	fmt.Fprintf(w, `{"code":10000,"msg":"success","sub_code":"","sub_msg":"","log_id":"202611251000000101","data":{"shop_order_detail":{"order_id":"%s","shop_id":%s,"doudian_open_id":"%s","encrypt_post_tel":"#1TlM#cipher-1#1##","mask_post_tel":"138****5678","pay_amount":12900,"order_amount":12900}}}`, orderID, shopID, openID)
}

func (g *gateway) batchDecrypt(w http.ResponseWriter, body []byte) {
	var p struct {
		CipherInfos []struct {
			AuthID     string `json:"auth_id"`
			CipherText string `json:"cipher_text"`
		} `json:"cipher_infos"`
	}
	require.NoError(g.t, json.Unmarshal(body, &p))
	// param_json must be the canonical form: keys sorted, no spaces.
	var want strings.Builder
	want.WriteString(`{"cipher_infos":[`)
	infos := make([]map[string]any, 0, len(p.CipherInfos))
	for i, c := range p.CipherInfos {
		if i > 0 {
			want.WriteString(",")
		}
		fmt.Fprintf(&want, `{"auth_id":%q,"cipher_text":%q}`, c.AuthID, c.CipherText)
		info := map[string]any{"auth_id": c.AuthID, "cipher_text": c.CipherText, "decrypt_text": phoneOf(c.CipherText), "err_no": 0, "err_msg": "", "is_virtual_tel": g.virtual[c.CipherText]}
		if g.refused[c.CipherText] {
			info["err_no"], info["err_msg"], info["decrypt_text"] = 300008, "解密额度不足", ""
		}
		infos = append(infos, info)
	}
	want.WriteString(`]}`)
	assert.Equal(g.t, want.String(), string(body))
	g.batches = append(g.batches, len(p.CipherInfos))
	writeJSON(w, map[string]any{"code": 10000, "msg": "success", "data": map[string]any{"decrypt_infos": infos, "custom_err": map[string]any{"err_code": 0, "err_msg": ""}}})
}

// phoneOf derives a distinct phone per ciphertext so the test can tell the answers apart.
func phoneOf(cipher string) string {
	sum := md5.Sum([]byte(cipher))
	return fmt.Sprintf("138%08d", int(sum[0])<<16|int(sum[1])<<8|int(sum[2]))
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func shop() platform.Shop {
	return platform.Shop{"appKey": appKey, "secret": secret, "accessToken": token, "shopId": shopID}
}

func client(srv *httptest.Server) *douyinapi.Client {
	return douyinapi.New(srv.URL, outbound.Options{Attempts: 3, Backoff: time.Millisecond})
}

func TestOrderDetailIsSignedRetriedAndCached(t *testing.T) {
	g, srv := newGateway(t)
	g.fail = 1
	c := client(srv)
	got, err := c.OrderDetail(context.Background(), shop(), orderID)
	require.NoError(t, err)
	want := douyin.Order{OrderID: orderID, ShopID: shopID, OpenID: openID, EncryptPostTel: "#1TlM#cipher-1#1##", MaskPostTel: "138****5678", PayAmountFen: 12900}
	assert.Equal(t, want, got)
	assert.Equal(t, 2, g.calls["order.orderDetail"], "one 503, one retry")

	again, err := c.OrderDetail(context.Background(), shop(), orderID)
	require.NoError(t, err)
	assert.Equal(t, want, again)
	assert.Equal(t, 2, g.calls["order.orderDetail"], "served from the cache")
	assert.Zero(t, g.badSigns)
}

func TestCacheExpires(t *testing.T) {
	g, srv := newGateway(t)
	c := douyinapi.New(srv.URL, outbound.Options{CacheTTL: time.Minute})
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	c.Now = func() time.Time { return now }
	for _, step := range []struct {
		advance   time.Duration
		wantCalls int
	}{{0, 1}, {59 * time.Second, 1}, {time.Second, 2}} {
		now = now.Add(step.advance)
		_, err := c.OrderDetail(context.Background(), shop(), orderID)
		require.NoError(t, err)
		assert.Equal(t, step.wantCalls, g.calls["order.orderDetail"], "after %s", step.advance)
	}
}

func TestDecryptBatchesOfFiftyAndCaches(t *testing.T) {
	g, srv := newGateway(t)
	ciphers := make([]douyin.Cipher, 120)
	for i := range ciphers {
		ciphers[i] = douyin.Cipher{AuthID: fmt.Sprint(4781320682406083000 + i), Text: fmt.Sprintf("#1TlM#cipher-%d#1##", i)}
	}
	g.virtual[ciphers[1].Text] = true
	g.refused[ciphers[2].Text] = true
	c := client(srv)
	got, err := c.Decrypt(context.Background(), shop(), append(ciphers, ciphers[0]))
	require.NoError(t, err)
	assert.Equal(t, []int{50, 50, 20}, g.batches)
	assert.Len(t, got, 119, "the refused one is left out")
	assert.Equal(t, douyin.Plain{Phone: phoneOf(ciphers[0].Text)}, got[ciphers[0].Text])
	assert.Equal(t, douyin.Plain{Phone: phoneOf(ciphers[1].Text), Virtual: true}, got[ciphers[1].Text])
	assert.NotContains(t, got, ciphers[2].Text)

	again, err := c.Decrypt(context.Background(), shop(), ciphers[:3])
	require.NoError(t, err)
	assert.Equal(t, []int{50, 50, 20, 1}, g.batches, "only the refused one is asked again")
	assert.Len(t, again, 2)
}

func TestUpstreamFailures(t *testing.T) {
	tests := []struct {
		name      string
		fail      int
		code      int
		shop      platform.Shop
		wantCalls int
	}{
		{"5xx every time, three attempts", 100, 0, shop(), 3},
		{"business error, no retry", 0, 50002, shop(), 1},
		{"wrong secret: the gateway refuses the signature", 0, 0, platform.Shop{"appKey": appKey, "secret": "wrong", "accessToken": token}, 1},
		{"no access token configured", 0, 0, platform.Shop{"appKey": appKey, "secret": secret}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, srv := newGateway(t)
			g.fail, g.code = tt.fail, tt.code
			_, err := client(srv).OrderDetail(context.Background(), tt.shop, orderID)
			require.ErrorIs(t, err, platform.ErrUpstream)
			assert.Equal(t, tt.wantCalls, g.calls["order.orderDetail"])
		})
	}
}

func TestUnreachableGatewayIsUpstream(t *testing.T) {
	_, srv := newGateway(t)
	url := srv.URL
	srv.Close()
	_, err := douyinapi.New(url, outbound.Options{Attempts: 2, Backoff: time.Millisecond}).Decrypt(context.Background(), shop(), []douyin.Cipher{{AuthID: orderID, Text: "x"}})
	require.ErrorIs(t, err, platform.ErrUpstream)
}

// TestAdapterWithClient runs a signed push through the adapter and the real client against the
// gateway: the buyer's open id, ciphertext, mask and decrypted phone reach order.paid.
func TestAdapterWithClient(t *testing.T) {
	g, srv := newGateway(t)
	data := fmt.Sprintf(`{"p_id":%s,"s_ids":[%s],"shop_id":%s,"order_status":2,"order_type":0,"pay_type":1,"pay_time":1630022564,"pay_amount":12900}`, orderID, orderID, shopID)
	body, err := json.Marshal([]map[string]string{{"tag": "101", "msg_id": "7000000000000000001", "data": data}})
	require.NoError(t, err)
	sum := md5.Sum([]byte(appKey + string(body) + secret))
	h := textproto.MIMEHeader{}
	h.Set("app-id", appKey)
	h.Set("event-sign", hex.EncodeToString(sum[:]))
	creds := platform.Credentials{appKey: {"secret": secret, "accessToken": token}}
	res, err := douyin.New(client(srv)).Handle(context.Background(), platform.Push{Header: h, Body: body}, creds)
	require.NoError(t, err)
	require.Len(t, res.Events, 1)
	got, err := events.Decode[events.OrderPaidData](res.Events[0])
	require.NoError(t, err)
	assert.Equal(t, []events.Identity{
		{Type: "douyin_openid", Value: openID, Scope: shopID},
		{Type: "phone_ciphertext", Value: "#1TlM#cipher-1#1##", Scope: "douyin:" + shopID},
		{Type: "phone_masked", Value: "138****5678"},
		{Type: "phone", Value: phoneOf("#1TlM#cipher-1#1##")},
	}, got.Identities)
	assert.Equal(t, map[string]int{"order.orderDetail": 1, "order.batchDecrypt": 1}, g.calls)
	assert.Zero(t, g.badSigns)
}

func TestAccessTokenIsCreatedAndRefreshed(t *testing.T) {
	tests := []struct {
		name       string
		advance    time.Duration
		noRenew    bool
		wantCalls  map[string]int
		wantIssued int
	}{
		{"still valid", 30 * time.Minute, false, map[string]int{"token.create": 1, "order.orderDetail": 2}, 1},
		{"near expiry: refreshed", 55 * time.Minute, false, map[string]int{"token.create": 1, "token.refresh": 1, "order.orderDetail": 2}, 2},
		{"refresh refused: created again", 55 * time.Minute, true, map[string]int{"token.create": 2, "token.refresh": 1, "order.orderDetail": 2}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, srv := newGateway(t)
			g.lifetime, g.noRenew = 3600, tt.noRenew
			now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
			c := douyinapi.New(srv.URL, outbound.Options{Backoff: time.Millisecond, CacheSize: -1})
			c.Now = func() time.Time { return now }
			s := platform.Shop{"appKey": appKey, "secret": secret, "shopId": shopID} // no accessToken
			_, err := c.OrderDetail(context.Background(), s, orderID)
			require.NoError(t, err)
			now = now.Add(tt.advance)
			got, err := c.OrderDetail(context.Background(), s, orderID)
			require.NoError(t, err)
			assert.Equal(t, openID, got.OpenID)
			assert.Equal(t, tt.wantCalls, g.calls)
			assert.Equal(t, tt.wantIssued, g.issued)
			assert.Zero(t, g.badSigns)
		})
	}
}
