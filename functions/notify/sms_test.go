package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/contact"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/pii"
	"github.com/omnimember/omnimember/shared/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAliyunSignatureMatchesPublishedExample checks the signer against Aliyun's own example in the
// SMS API documentation "签名机制" (help.aliyun.com/document_detail/101343.html, Java sample: the
// GET request of SendSms with AccessKeyId testId, secret testSecret, SignatureNonce
// 45e25e9b-0a6f-4070-8c85-2956eda1b466, Timestamp 2017-07-12T02:42:19Z), whose printed signature
// is zJDF+Lrzhj/ThnlvIToysFRq6t4= (zJDF%2BLrzhj%2FThnlvIToysFRq6t4%3D once URL-encoded).
func TestAliyunSignatureMatchesPublishedExample(t *testing.T) {
	params := map[string]string{
		"AccessKeyId": "testId", "Action": "SendSms", "Format": "XML", "OutId": "123", "PhoneNumbers": "15300000001",
		"RegionId": "cn-hangzhou", "SignName": "阿里云短信测试专用", "SignatureMethod": "HMAC-SHA1",
		"SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466", "SignatureVersion": "1.0", "TemplateCode": "SMS_71390007",
		"TemplateParam": `{"customer":"test"}`, "Timestamp": "2017-07-12T02:42:19Z", "Version": "2017-05-25",
	}
	wantQuery := "AccessKeyId=testId&Action=SendSms&Format=XML&OutId=123&PhoneNumbers=15300000001&RegionId=cn-hangzhou" +
		"&SignName=%E9%98%BF%E9%87%8C%E4%BA%91%E7%9F%AD%E4%BF%A1%E6%B5%8B%E8%AF%95%E4%B8%93%E7%94%A8&SignatureMethod=HMAC-SHA1" +
		"&SignatureNonce=45e25e9b-0a6f-4070-8c85-2956eda1b466&SignatureVersion=1.0&TemplateCode=SMS_71390007" +
		"&TemplateParam=%7B%22customer%22%3A%22test%22%7D&Timestamp=2017-07-12T02%3A42%3A19Z&Version=2017-05-25"
	assert.Equal(t, wantQuery, aliyunQuery(params))
	got := AliyunSignature(http.MethodGet, "testSecret", params)
	assert.Equal(t, "zJDF+Lrzhj/ThnlvIToysFRq6t4=", got)
	assert.Equal(t, "zJDF%2BLrzhj%2FThnlvIToysFRq6t4%3D", aliyunEncode(got))
	assert.Equal(t, "a%20b%2Ac~d", aliyunEncode("a b*c~d"), "space, * and ~ as RFC 3986 wants them")
}

// TestTC3SignatureMatchesPublishedExample checks the signer against Tencent Cloud's worked example
// in "Signature v3" (签名方法 v3, cloud.tencent.com/document/api/213/30654): POST DescribeInstances
// to cvm.tencentcloudapi.com at timestamp 1551113065 with SecretKey Gu5t9xGARNpq86cd98joQYCN3EXAMPLE,
// payload hash 35e9c5b0…f064, hashed canonical request 5ffe6a04…7031 and signature 72e494ea…5168.
func TestTC3SignatureMatchesPublishedExample(t *testing.T) {
	payload := []byte(`{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}`)
	assert.Equal(t, "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064", sha256Hex(payload))
	sig, scope := TC3Signature("Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", "cvm", "cvm.tencentcloudapi.com",
		"application/json; charset=utf-8", payload, 1551113065)
	assert.Equal(t, "2019-02-25/cvm/tc3_request", scope)
	assert.Equal(t, "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168", sig)
}

// pe is the test's own RFC 3986 encoder, written apart from aliyunEncode: only ALPHA, DIGIT and
// -_.~ stay, every other byte becomes %XX.
func pe(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("-_.~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// smsServer plays a provider: it verifies each request as the provider does (signature, key id,
// clock skew, nonce reuse) and answers with the next scripted code.
type smsServer struct {
	t      *testing.T
	now    func() time.Time
	codes  []string
	mu     sync.Mutex
	got    []map[string]any // what each accepted request asked for
	nonces map[string]bool
}

func (p *smsServer) next() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	code := "OK"
	if len(p.got) <= len(p.codes) && len(p.got) > 0 {
		code = p.codes[len(p.got)-1]
	}
	return code
}

func (p *smsServer) record(req map[string]any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, req)
}

func (p *smsServer) calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.got)
}

// aliyun verifies an RPC v1 signature: sorted, encoded parameters, POST&%2F&..., HMAC-SHA1 with
// secret + "&"; Timestamp within 15 minutes; a SignatureNonce is used once.
func (p *smsServer) aliyun(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	form, err := url.ParseQuery(string(raw))
	require.NoError(p.t, err)
	keys := make([]string, 0, len(form))
	for k := range form {
		if k != "Signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var pairs []string
	for _, k := range keys {
		pairs = append(pairs, pe(k)+"="+pe(form.Get(k)))
	}
	mac := hmac.New(sha1.New, []byte("aliyun-secret&"))
	mac.Write([]byte("POST&%2F&" + pe(strings.Join(pairs, "&"))))
	ts, _ := time.Parse("2006-01-02T15:04:05Z", form.Get("Timestamp"))
	p.mu.Lock()
	reused := p.nonces[form.Get("SignatureNonce")]
	p.nonces[form.Get("SignatureNonce")] = true
	p.mu.Unlock()
	var code string
	switch {
	case form.Get("AccessKeyId") != "aliyun-key":
		code = "InvalidAccessKeyId.NotFound"
	case form.Get("Signature") != base64.StdEncoding.EncodeToString(mac.Sum(nil)):
		code = "SignatureDoesNotMatch"
	case ts.Sub(p.now()).Abs() > 15*time.Minute:
		code = "InvalidTimeStamp.Expired"
	case reused:
		code = "SignatureNonceUsed"
	default:
		var params map[string]any
		require.NoError(p.t, json.Unmarshal([]byte(form.Get("TemplateParam")), &params))
		p.record(map[string]any{"phone": form.Get("PhoneNumbers"), "sign": form.Get("SignName"), "template": form.Get("TemplateCode"),
			"params": params, "outId": form.Get("OutId")})
		code = p.next()
	}
	// Like real providers, a refusal may quote the number it refused.
	_ = json.NewEncoder(w).Encode(map[string]string{"Code": code, "Message": code + " for " + form.Get("PhoneNumbers"), "RequestId": "r",
		"BizId": "biz-" + form.Get("OutId")})
}

var tc3Header = regexp.MustCompile(`^TC3-HMAC-SHA256 Credential=([^/]+)/(\d{4}-\d{2}-\d{2})/sms/tc3_request, SignedHeaders=content-type;host, Signature=([0-9a-f]{64})$`)

// tencent verifies TC3-HMAC-SHA256 from the request as received: canonical request over the
// content-type and host headers and the body hash, UTC date scope, the key chain, 5 minutes of skew.
func (p *smsServer) tencent(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	m := tc3Header.FindStringSubmatch(r.Header.Get("Authorization"))
	ts, _ := strconv.ParseInt(r.Header.Get("X-TC-Timestamp"), 10, 64)
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	code := ""
	switch {
	case m == nil || m[1] != "tencent-id":
		code = "AuthFailure.SecretIdNotFound"
	case time.Unix(ts, 0).Sub(p.now()).Abs() > 5*time.Minute:
		code = "AuthFailure.SignatureExpire"
	case m[2] != time.Unix(ts, 0).UTC().Format("2006-01-02") || r.Header.Get("X-TC-Action") != "SendSms" || r.Header.Get("X-TC-Version") != "2021-01-11":
		code = "AuthFailure.InvalidAuthorization"
	default:
		canonical := strings.Join([]string{"POST", "/", "", "content-type:" + strings.ToLower(r.Header.Get("Content-Type")) + "\nhost:" + r.Host + "\n",
			"content-type;host", sum(body)}, "\n")
		toSign := "TC3-HMAC-SHA256\n" + r.Header.Get("X-TC-Timestamp") + "\n" + m[2] + "/sms/tc3_request\n" + sum([]byte(canonical))
		key := mac(mac(mac([]byte("TC3tencent-secret"), m[2]), "sms"), "tc3_request")
		if hex.EncodeToString(mac(key, toSign)) != m[3] {
			code = "AuthFailure.SignatureFailure"
		}
	}
	if code != "" {
		_ = json.NewEncoder(w).Encode(map[string]any{"Response": map[string]any{"Error": map[string]string{"Code": code, "Message": code}, "RequestId": "r"}})
		return
	}
	var req struct {
		PhoneNumberSet, TemplateParamSet                  []string
		SmsSdkAppId, SignName, TemplateId, SessionContext string
	}
	require.NoError(p.t, json.Unmarshal(body, &req))
	require.Len(p.t, req.PhoneNumberSet, 1)
	p.record(map[string]any{"phone": strings.TrimPrefix(req.PhoneNumberSet[0], "+86"), "sign": req.SignName, "template": req.TemplateId,
		"params": req.TemplateParamSet, "outId": req.SessionContext, "app": req.SmsSdkAppId})
	code = p.next()
	if code == "OK" {
		code = "Ok"
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"Response": map[string]any{"RequestId": "r", "SendStatusSet": []map[string]any{
		{"SerialNo": "sn-" + req.SessionContext, "PhoneNumber": req.PhoneNumberSet[0], "Code": code, "Message": code, "SessionContext": req.SessionContext}}}})
}

const bobPhone = "13812345678"

// seedMember writes a member the way match does: the plaintext phone sealed, its hash keyed.
func seedMember(t *testing.T, s store.Store, keys *pii.Keyring, oneID, phone string) {
	t.Helper()
	m := member.Member{OneID: oneID, Pool: member.PoolPlaintext}
	if phone != "" {
		sealed, err := keys.Seal(phone, identity.Phone)
		require.NoError(t, err)
		ph := events.Identity{Type: identity.Phone, Value: phone}
		m.Identities = append(m.Identities, member.StoredIdentity{Type: identity.Phone, Key: testKeyer.Key(ph), Sealed: sealed,
			Masked: identity.MaskPhone(phone), Channel: "tmall", FirstSeen: now})
		require.NoError(t, s.Set(context.Background(), member.Identities, testKeyer.Key(ph), member.IdentityLink{OneID: oneID, Type: identity.Phone}))
	}
	require.NoError(t, s.Set(context.Background(), member.Members, oneID, m))
}

var smsTemplates = map[string]SMSTemplate{"winback_coupon": {Code: "SMS_900001", Params: []string{"coupon", OptOutParam}},
	"points_awarded": {Code: "1234567", Params: []string{"points", "balance"}}}

func newSMSHandler(t *testing.T, provider string, p *smsServer, secret string) (*Handler, store.Store) {
	keys, err := pii.ParseKeyring(pii.NewKey("k1"))
	require.NoError(t, err)
	srv := httptest.NewServer(http.HandlerFunc(map[string]http.HandlerFunc{"aliyun": p.aliyun, "tencent": p.tencent}[provider]))
	t.Cleanup(srv.Close)
	var prov SMSProvider = Aliyun{Endpoint: srv.URL, AccessKeyID: "aliyun-key", AccessKeySecret: "aliyun-" + secret, RegionID: "cn-hangzhou",
		Client: srv.Client(), Now: p.now}
	if provider == "tencent" {
		prov = Tencent{Endpoint: srv.URL, SecretID: "tencent-id", SecretKey: "tencent-" + secret, SDKAppID: "1400000001", Region: "ap-guangzhou",
			Client: srv.Client(), Now: p.now}
	}
	h, s := newHandler(t, nil, "sms")
	h.Now = p.now
	h.Sinks = map[string]any{"sms": SMS{Provider: prov, Store: s, Keys: keys, SignName: "山野咖啡", Templates: smsTemplates,
		OptOutSuffix: DefaultOptOutSuffix}}
	seedMember(t, s, keys, alice, bobPhone)
	seedMember(t, s, keys, "om_nophone0000000000000", "")
	return h, s
}

func TestSMSDelivery(t *testing.T) {
	tests := []struct {
		name         string
		oneID        string
		category     string
		codes        map[string][]string // scripted answers per provider
		wantType     string
		wantReason   string
		wantAttempts int
		wantCalls    int
	}{
		{"marketing sent with the opt-out suffix", alice, events.CategoryMarketing, nil, events.NotificationSent, "", 1, 1},
		{"throttled then sent", alice, events.CategoryMarketing,
			map[string][]string{"aliyun": {"isv.BUSINESS_LIMIT_CONTROL"}, "tencent": {"RequestLimitExceeded"}}, events.NotificationSent, "", 2, 2},
		{"provider error retried until the attempts run out", alice, events.CategoryMarketing,
			map[string][]string{"aliyun": {"isp.SYSTEM_ERROR", "isp.SYSTEM_ERROR", "isp.SYSTEM_ERROR"}, "tencent": {"InternalError", "InternalError", "InternalError"}},
			events.NotificationFailed, "", 3, 3},
		{"invalid number fails at once", alice, events.CategoryMarketing,
			map[string][]string{"aliyun": {"isv.MOBILE_NUMBER_ILLEGAL"}, "tencent": {"InvalidParameterValue.IncorrectPhoneNumber"}},
			events.NotificationFailed, "", 1, 1},
		{"member without a phone", "om_nophone0000000000000", events.CategoryMarketing, nil, events.NotificationSuppressed, contact.ReasonNoAddress, 1, 0},
	}
	for _, provider := range []string{"aliyun", "tencent"} {
		for _, tt := range tests {
			t.Run(provider+"/"+tt.name, func(t *testing.T) {
				c := newClock(at(25, 10, 0))
				p := &smsServer{t: t, now: c.now, codes: tt.codes[provider], nonces: map[string]bool{}}
				h, _ := newSMSHandler(t, provider, p, "secret")
				grant(t, h, tt.oneID, "sms")
				ev := requested(t, "sms-1", tt.oneID, tt.category, "sms")
				got, err := handleUntilDone(t, h, ev)
				require.NoError(t, err)
				typ, d := outcome(t, got)
				assert.Equal(t, tt.wantType, typ)
				if tt.wantReason != "" {
					assert.Equal(t, tt.wantReason, d.Reason)
				}
				assert.Equal(t, tt.wantAttempts, d.Attempts)
				assert.NotContains(t, d.Reason, bobPhone, "a provider's message quoting the number is masked")
				if typ == events.NotificationFailed && provider == "aliyun" {
					assert.Contains(t, d.Reason, "138****5678")
				}
				require.Equal(t, tt.wantCalls, p.calls())
				if typ == events.NotificationSent {
					last := p.got[len(p.got)-1]
					assert.Equal(t, bobPhone, last["phone"])
					assert.Equal(t, "山野咖啡", last["sign"])
					assert.Equal(t, d.NotificationID, last["outId"])
					want := map[string]any{"aliyun": map[string]any{"coupon": "50元券", "optOut": "拒收请回复R"},
						"tencent": []string{"50元券", "拒收请回复R"}}[provider]
					assert.Equal(t, want, last["params"])
				}
			})
		}
	}
}

// handleUntilDone redelivers as the runtime does after a transient error.
func handleUntilDone(t *testing.T, h *Handler, ev cloudevents.Event) ([]cloudevents.Event, error) {
	t.Helper()
	var outs []cloudevents.Event
	var err error
	for range 10 {
		if outs, err = h.Handle(context.Background(), ev); err == nil {
			return outs, nil
		}
	}
	return outs, err
}

func TestSMSWrongSecretIsRefusedByTheProvider(t *testing.T) {
	for provider, want := range map[string]string{"aliyun": "SignatureDoesNotMatch", "tencent": "AuthFailure.SignatureFailure"} {
		t.Run(provider, func(t *testing.T) {
			c := newClock(at(25, 10, 0))
			p := &smsServer{t: t, now: c.now, nonces: map[string]bool{}}
			h, _ := newSMSHandler(t, provider, p, "wrong")
			got, err := handleUntilDone(t, h, requested(t, "w1", alice, events.CategoryTransactional, "sms"))
			require.NoError(t, err)
			typ, d := outcome(t, got)
			assert.Equal(t, events.NotificationFailed, typ)
			assert.Contains(t, d.Reason, want)
			assert.NotContains(t, d.Reason, bobPhone, "the phone never appears in an outcome")
			assert.Equal(t, 0, p.calls())
		})
	}
}

func TestSMSClockSkewIsRetried(t *testing.T) {
	c := newClock(at(25, 10, 0))
	p := &smsServer{t: t, now: c.now, nonces: map[string]bool{}}
	h, _ := newSMSHandler(t, "tencent", p, "secret")
	p.now = func() time.Time { return c.now().Add(10 * time.Minute) } // the provider's clock is 10 minutes ahead
	_, err := h.Handle(context.Background(), requested(t, "s1", alice, events.CategoryTransactional, "sms"))
	require.Error(t, err, "a signature the provider finds expired is worth another attempt")
	assert.Contains(t, err.Error(), "SignatureExpire")
	assert.NotContains(t, err.Error(), bobPhone)
}

func FuzzParseSMSTemplates(f *testing.F) {
	f.Add([]byte(`{"winback_coupon": {"code": "SMS_900001", "params": ["coupon", "optOut"]}}`))
	f.Add([]byte(`{"a": {"code": " "}}`))
	f.Add([]byte(`{"a": {"code": "1", "params": [""]}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := ParseSMSTemplates(raw)
		if err != nil {
			return
		}
		for name, tpl := range got {
			if strings.TrimSpace(tpl.Code) == "" {
				t.Fatalf("template %q accepted without a code", name)
			}
		}
	})
}

func TestFailedSMSGivesTheDaysCapBack(t *testing.T) {
	c := newClock(at(25, 10, 0))
	p := &smsServer{t: t, now: c.now, codes: []string{"isv.MOBILE_NUMBER_ILLEGAL"}, nonces: map[string]bool{}}
	h, _ := newSMSHandler(t, "aliyun", p, "secret")
	grant(t, h, alice, "sms")
	typ, _ := handleOne(t, h, requested(t, "m1", alice, events.CategoryMarketing, "sms"))
	require.Equal(t, events.NotificationFailed, typ)
	typ, _ = handleOne(t, h, requested(t, "m2", alice, events.CategoryMarketing, "sms"))
	assert.Equal(t, events.NotificationSent, typ, "a text that never went does not use up the day")
	typ, d := handleOne(t, h, requested(t, "m3", alice, events.CategoryMarketing, "sms"))
	assert.Equal(t, events.NotificationSuppressed, typ)
	assert.Equal(t, contact.ReasonDailyCap, d.Reason)
}

func TestExampleSMSTemplatesParse(t *testing.T) {
	raw, err := os.ReadFile("sms-templates.example.json")
	require.NoError(t, err)
	got, err := ParseSMSTemplates(raw)
	require.NoError(t, err)
	for _, name := range []string{"winback_coupon", "tier_upgraded", "points_awarded"} {
		assert.Contains(t, got, name)
	}
	for name, tpl := range got {
		_, transactional := DefaultTemplates()[name]
		assert.Equal(t, !transactional, slices.Contains(tpl.Params, OptOutParam), "%s: marketing templates carry the opt-out", name)
	}
}
