package stack

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"github.com/omnimember/omnimember/functions/ingest/weixinapi/weixinapitest"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/omnimember/omnimember/functions/ingest"
	"github.com/omnimember/omnimember/functions/profile"
	"github.com/omnimember/omnimember/shared/platform"
	"github.com/omnimember/omnimember/shared/platform/wechat"
	"github.com/omnimember/omnimember/shared/platform/wecom"
	"github.com/omnimember/omnimember/shared/platform/wxcrypt/wxcrypttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	wxToken  = "QDG6eK"
	wxAESKey = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
	wxCorpID = "ww-brand-corp"
	wxAppID  = "wx-brand-mp"
)

// wxSecrets configure the brand's corp and mini-program, and the corp of WeCom's official sample.
var wxSecrets = ingest.Secrets{
	wecom.Name:  {wxCorpID: {"token": wxToken, "aesKey": wxAESKey}, "wx5823bf96d3bd56c7": {"token": wxToken, "aesKey": wxAESKey}},
	wechat.Name: {wxAppID: {"token": wxToken, "aesKey": wxAESKey}},
}

// wxPush is a POST as WeCom or WeChat safe mode sends it: msg encrypted for receiveID by the
// independent test sender, msg_signature over the ciphertext, sent now.
func wxPush(platformName, receiveID, msg, nonce string) platform.Push {
	s := wxcrypttest.Sender{Token: wxToken, EncodingAESKey: wxAESKey, ReceiveID: receiveID}
	now := time.Now()
	ts := strconv.FormatInt(now.Unix(), 10)
	encrypt := s.Seal("0123456789abcdef", msg)
	return platform.Push{
		Platform: platformName, Rest: receiveID, Method: "POST",
		Query: url.Values{"msg_signature": {wxcrypttest.Sign(wxToken, ts, nonce, encrypt)}, "timestamp": {ts}, "nonce": {nonce},
			"encrypt_type": {"aes"}, "signature": {wxcrypttest.Sign(wxToken, ts, nonce)}},
		Body:       wxcrypttest.Envelope(receiveID, encrypt, ""),
		ReceivedAt: now,
	}
}

// deliver sends a push to ingest's /webhooks/{platform}/{rest} as the platform would and checks
// the answer (WeCom and WeChat retry anything but 200 "success"), then waits for the chain.
func deliver(t *testing.T, s *Stack, push platform.Push) {
	t.Helper()
	status, body := send(t, s, push)
	require.Equal(t, http.StatusOK, status, body)
	require.Equal(t, "success", body)
	waitQuiet(t, s)
}

func send(t *testing.T, s *Stack, push platform.Push) (int, string) {
	t.Helper()
	target := "http://" + s.Addr + "/webhooks/" + push.Platform + "/" + push.Rest + "?" + push.Query.Encode()
	req, err := http.NewRequest(push.Method, target, bytes.NewReader(push.Body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "text/xml")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(raw)
}

func kindCount(p profile.Profile, kind string) int64 {
	return p.Interactions.ByChannel["wechat"].Kinds[kind]
}

// TestWeComAndWeChatPushesReachTheProfile: a signed, encrypted WeCom add_external_contact push
// makes a member holding the wecom_external_userid; a WeChat subscribe makes one holding the
// openid and unionid; a redelivered push changes nothing.
func TestWeComAndWeChatPushesReachTheProfile(t *testing.T) {
	opts := testOptions(t, t.TempDir())
	opts.WebhookSecrets = wxSecrets
	s := start(t, opts)
	created := strconv.FormatInt(time.Now().Add(-time.Minute).Unix(), 10)
	add := `<xml><ToUserName><![CDATA[` + wxCorpID + `]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>` + created +
		`</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[add_external_contact]]></ChangeType>` +
		`<UserID><![CDATA[zhangsan]]></UserID><ExternalUserID><![CDATA[wmExternal001]]></ExternalUserID><State><![CDATA[store42]]></State><WelcomeCode><![CDATA[WELCOMECODE]]></WelcomeCode></xml>`
	deliver(t, s, wxPush(wecom.Name, wxCorpID, add, "n1"))
	deliver(t, s, wxPush(wecom.Name, wxCorpID, add, "n2")) // WeCom's retry

	p := lookupScoped(t, s, "wecom_external_userid", "wmExternal001", wxCorpID)
	assert.Contains(t, identitiesOf(p), "wecom_external_userid:wmExternal001@"+wxCorpID)
	assert.Equal(t, int64(1), kindCount(p, "wecom_add_external_contact"), "the retry counts once")

	follow := `<xml><ToUserName><![CDATA[gh_brand]]></ToUserName><FromUserName><![CDATA[oOpenID001]]></FromUserName><CreateTime>` + created +
		`</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event><UnionId><![CDATA[oUnion001]]></UnionId></xml>`
	deliver(t, s, wxPush(wechat.Name, wxAppID, follow, "n3"))
	deliver(t, s, wxPush(wechat.Name, wxAppID, follow, "n4"))

	m := lookupScoped(t, s, "wechat_openid", "oOpenID001", wxAppID)
	assert.Subset(t, identitiesOf(m), []string{"wechat_openid:oOpenID001@" + wxAppID, "wechat_unionid:oUnion001@"})
	assert.Equal(t, int64(1), kindCount(m, "wechat_subscribe"))
	assert.NotEqual(t, p.OneID, m.OneID, "nothing links the two yet")
}

func identitiesOf(p profile.Profile) []string {
	var out []string
	for _, id := range p.Identities {
		out = append(out, id.Type+":"+id.Value+"@"+id.Scope)
	}
	return out
}

// TestWeComCallbackOverHTTP: the URL check of WeCom's official sample answers the plain echostr;
// a push with a bad signature, a stale timestamp or for an unknown corp is refused with its status
// and reaches nothing.
func TestWeComCallbackOverHTTP(t *testing.T) {
	opts := testOptions(t, t.TempDir())
	opts.WebhookSecrets = wxSecrets
	s := start(t, opts)
	check, err := url.ParseQuery("msg_signature=5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3&timestamp=1409659589&nonce=263014780&echostr=P9nAzCzyDtyTWESHep1vC5X9xho%2FqYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp%2B4RPcs8TgAE7OaBO%2BFZXvnaqQ%3D%3D")
	require.NoError(t, err)
	status, body := send(t, s, platform.Push{Platform: wecom.Name, Rest: "wx5823bf96d3bd56c7", Method: http.MethodGet, Query: check})
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, "1616140317555161061", body)

	add := `<xml><ToUserName>` + wxCorpID + `</ToUserName><FromUserName>sys</FromUserName><CreateTime>1700000000</CreateTime><MsgType>event</MsgType>` +
		`<Event>change_external_contact</Event><ChangeType>add_external_contact</ChangeType><UserID>u</UserID><ExternalUserID>wmRefused</ExternalUserID></xml>`
	badSig := wxPush(wecom.Name, wxCorpID, add, "n")
	badSig.Query.Set("msg_signature", wxcrypttest.Sign("not the token"))
	stale := wxPush(wecom.Name, wxCorpID, add, "n")
	staleTS := strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10)
	stale.Query.Set("timestamp", staleTS)
	stale.Query.Set("msg_signature", wxcrypttest.Sign(wxToken, staleTS, "n", encryptOf(t, stale.Body)))
	unknown := wxPush(wecom.Name, wxCorpID, add, "n")
	unknown.Rest = "ww-unknown"
	tests := []struct {
		name string
		push platform.Push
		want int
	}{
		{"bad signature", badSig, http.StatusUnauthorized},
		{"stale timestamp", stale, http.StatusUnauthorized},
		{"unknown corp", unknown, http.StatusNotFound},
	}
	for _, tt := range tests {
		status, body := send(t, s, tt.push)
		assert.Equal(t, tt.want, status, "%s: %s", tt.name, body)
	}
	waitQuiet(t, s)
	resp := readerGet(t, s, "/v1/members:lookup?type=wecom_external_userid&value=wmRefused&scope="+wxCorpID)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "a refused push makes no member")
}

func encryptOf(t *testing.T, body []byte) string {
	t.Helper()
	var env struct {
		Encrypt string `xml:"Encrypt"`
	}
	require.NoError(t, xml.Unmarshal(body, &env))
	return env.Encrypt
}

// byHost sends each request to the stand-in server of the API host it names (the adapters call
// the real hosts).
type byHost map[string]*httptest.Server

func (b byHost) RoundTrip(r *http.Request) (*http.Response, error) {
	srv, ok := b[r.URL.Host]
	if !ok {
		return nil, fmt.Errorf("no stand-in for %s", r.URL.Host)
	}
	target, err := url.Parse(srv.URL)
	if err != nil {
		return nil, err
	}
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host, r.Host = target.Scheme, target.Host, target.Host
	return srv.Client().Transport.RoundTrip(r)
}

// TestWeComContactAndWeChatFollowerAreOneMember: a follow event carries only the openid and a
// WeCom contact event only the external user id; the two APIs give the unionid behind each, so
// the official-account follower and the WeCom contact are one member.
func TestWeComContactAndWeChatFollowerAreOneMember(t *testing.T) {
	wecomAPI := weixinapitest.NewWeCom(wxCorpID, "contact-secret", map[string]weixinapitest.Contact{"wmShared001": {Type: 1, UnionID: "oUnionShared"}})
	defer wecomAPI.Close()
	wechatAPI := weixinapitest.NewWeChat(wxAppID, "app-secret", map[string]string{"oOpenShared": "oUnionShared"})
	defer wechatAPI.Close()
	opts := testOptions(t, t.TempDir())
	opts.WebhookSecrets = ingest.Secrets{
		wecom.Name:  {wxCorpID: {"token": wxToken, "aesKey": wxAESKey, "secret": "contact-secret"}},
		wechat.Name: {wxAppID: {"token": wxToken, "aesKey": wxAESKey, "secret": "app-secret"}},
	}
	opts.HTTPClient = &http.Client{Transport: byHost{"qyapi.weixin.qq.com": wecomAPI.Server, "api.weixin.qq.com": wechatAPI.Server}}
	s := start(t, opts)

	created := strconv.FormatInt(time.Now().Add(-time.Minute).Unix(), 10)
	follow := `<xml><ToUserName>gh_brand</ToUserName><FromUserName>oOpenShared</FromUserName><CreateTime>` + created +
		`</CreateTime><MsgType>event</MsgType><Event>subscribe</Event></xml>`
	deliver(t, s, wxPush(wechat.Name, wxAppID, follow, "n1"))
	add := `<xml><ToUserName>` + wxCorpID + `</ToUserName><FromUserName>sys</FromUserName><CreateTime>` + created + `</CreateTime><MsgType>event</MsgType>` +
		`<Event>change_external_contact</Event><ChangeType>add_external_contact</ChangeType><UserID>zhangsan</UserID><ExternalUserID>wmShared001</ExternalUserID></xml>`
	deliver(t, s, wxPush(wecom.Name, wxCorpID, add, "n2"))

	byContact := lookupScoped(t, s, "wecom_external_userid", "wmShared001", wxCorpID)
	byFollow := lookupScoped(t, s, "wechat_openid", "oOpenShared", wxAppID)
	assert.Equal(t, byFollow.OneID, byContact.OneID, "one person")
	assert.Subset(t, identitiesOf(byContact), []string{"wecom_external_userid:wmShared001@" + wxCorpID, "wechat_openid:oOpenShared@" + wxAppID, "wechat_unionid:oUnionShared@"})
	assert.Equal(t, 1, wecomAPI.TokensIssued())
	assert.Equal(t, []int{1, 0}, []int{wechatAPI.TokensIssued(), wechatAPI.ForcedRefreshes()}, "tokens issued, forced")
}
