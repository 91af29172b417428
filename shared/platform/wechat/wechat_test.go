package wechat_test

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/platform"
	"github.com/omnimember/omnimember/shared/platform/wechat"
	"github.com/omnimember/omnimember/shared/platform/wxcrypt/wxcrypttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	plainApp = "wx-plain-app"
	safeApp  = "wxb11529c136998cb6"
	token    = "pamtest"
	// The EncodingAESKey of WeChat's published Java sample (WXBizMsgCryptTest.java).
	aesKey = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	openID = "oia2TjjewbmiOUlr6X-1crbLOvLw"
	at     = 1700000000
)

// subscribe is the 关注事件 of 公众号 › 基础消息能力 › 接收事件推送, as documented.
const subscribe = `<xml>
  <ToUserName><![CDATA[gh_7f083739789a]]></ToUserName>
  <FromUserName><![CDATA[oia2TjjewbmiOUlr6X-1crbLOvLw]]></FromUserName>
  <CreateTime>1700000000</CreateTime>
  <MsgType><![CDATA[event]]></MsgType>
  <Event><![CDATA[subscribe]]></Event>
</xml>`

// subscribeByQR is the 扫描带参数二维码事件 for a user who was not following yet.
const subscribeByQR = `<xml><ToUserName><![CDATA[gh_7f083739789a]]></ToUserName><FromUserName><![CDATA[oia2TjjewbmiOUlr6X-1crbLOvLw]]></FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[qrscene_store42]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket></xml>`

// text is an ordinary message (接收普通消息 › 文本消息).
const text = `<xml><ToUserName><![CDATA[gh_7f083739789a]]></ToUserName><FromUserName><![CDATA[oia2TjjewbmiOUlr6X-1crbLOvLw]]></FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[this is a test]]></Content><MsgId>1234567890123456</MsgId></xml>`

var creds = platform.Credentials{
	plainApp: {"token": token},
	safeApp:  {"token": token, "aesKey": aesKey},
}

var sender = wxcrypttest.Sender{Token: token, EncodingAESKey: aesKey, ReceiveID: safeApp}

// plainPush is a plain-mode POST: signature over token, timestamp, nonce in the query.
func plainPush(body string, ts int64, nonce string, receivedAt int64) platform.Push {
	t := strconv.FormatInt(ts, 10)
	return platform.Push{
		Platform: wechat.Name, Rest: plainApp, Method: "POST",
		Query:      url.Values{"signature": {wxcrypttest.Sign(token, t, nonce)}, "timestamp": {t}, "nonce": {nonce}, "openid": {openID}},
		Body:       []byte(body),
		ReceivedAt: time.Unix(receivedAt, 0),
	}
}

// safePush is a safe-mode POST: msg encrypted for s.ReceiveID, msg_signature over the ciphertext.
// json wraps it the way a mini-program configured for JSON does.
func safePush(s wxcrypttest.Sender, msg string, ts int64, nonce string, receivedAt int64, json bool) platform.Push {
	t := strconv.FormatInt(ts, 10)
	encrypt := s.Seal("aaaabbbbccccdddd", msg)
	body := wxcrypttest.Envelope("gh_7f083739789a", encrypt, "")
	if json {
		body = []byte(`{"ToUserName":"gh_7f083739789a","Encrypt":"` + encrypt + `"}`)
	}
	return platform.Push{
		Platform: wechat.Name, Rest: safeApp, Method: "POST",
		Query: url.Values{
			"signature": {wxcrypttest.Sign(s.Token, t, nonce)}, "timestamp": {t}, "nonce": {nonce}, "openid": {openID},
			"encrypt_type": {"aes"}, "msg_signature": {wxcrypttest.Sign(s.Token, t, nonce, encrypt)},
		},
		Body:       body,
		ReceivedAt: time.Unix(receivedAt, 0),
	}
}

func handle(t *testing.T, push platform.Push) (platform.Result, error) {
	t.Helper()
	res, err := wechat.Adapter{}.Handle(context.Background(), push, creds)
	if err == nil {
		require.NoError(t, wechat.Adapter{}.Verify(push, creds), "Verify accepts what Handle accepts")
	}
	return res, err
}

func TestURLCheck(t *testing.T) {
	q := url.Values{"signature": {wxcrypttest.Sign(token, "1700000000", "n1")}, "timestamp": {"1700000000"}, "nonce": {"n1"}, "echostr": {"7423485829403"}}
	for _, app := range []string{plainApp, safeApp} {
		res, err := handle(t, platform.Push{Platform: wechat.Name, Rest: app, Method: "GET", Query: q})
		require.NoError(t, err, app)
		assert.Equal(t, "7423485829403", string(res.Reply.Body), app)
	}
	bad := url.Values{"signature": {wxcrypttest.Sign("other", "1700000000", "n1")}, "timestamp": {"1700000000"}, "nonce": {"n1"}, "echostr": {"x"}}
	_, err := handle(t, platform.Push{Platform: wechat.Name, Rest: plainApp, Method: "GET", Query: bad})
	assert.ErrorIs(t, err, platform.ErrSignature)
}

func TestFollowEvents(t *testing.T) {
	openIDOf := func(app string) events.Identity {
		return events.Identity{Type: "wechat_openid", Value: openID, Scope: app}
	}
	tests := []struct {
		name     string
		push     platform.Push
		wantKind string
		wantIDs  []events.Identity
		wantAttr map[string]string
	}{
		{"plain subscribe", plainPush(subscribe, at, "n", at), "wechat_subscribe", []events.Identity{openIDOf(plainApp)}, map[string]string{"appId": plainApp}},
		{"plain unsubscribe", plainPush(strings.Replace(subscribe, "[subscribe]", "[unsubscribe]", 1), at, "n", at), "wechat_unsubscribe", []events.Identity{openIDOf(plainApp)}, map[string]string{"appId": plainApp}},
		{"plain subscribe through a QR code", plainPush(subscribeByQR, at, "n", at), "wechat_subscribe", []events.Identity{openIDOf(plainApp)}, map[string]string{"appId": plainApp, "eventKey": "qrscene_store42"}},
		{"plain JSON subscribe", plainPush(`{"ToUserName":"gh_7f083739789a","FromUserName":"`+openID+`","CreateTime":1700000000,"MsgType":"event","Event":"subscribe"}`, at, "n", at),
			"wechat_subscribe", []events.Identity{openIDOf(plainApp)}, map[string]string{"appId": plainApp}},
		{"safe subscribe", safePush(sender, subscribe, at, "n", at, false), "wechat_subscribe", []events.Identity{openIDOf(safeApp)}, map[string]string{"appId": safeApp}},
		{"safe JSON with a unionid", safePush(sender, `{"ToUserName":"gh_7f083739789a","FromUserName":"`+openID+`","CreateTime":1700000000,"MsgType":"event","Event":"subscribe","UnionId":"o6_bmasdasdsad6_2sgVt7hMZOPfL"}`, at, "n", at, true),
			"wechat_subscribe", []events.Identity{openIDOf(safeApp), {Type: "wechat_unionid", Value: "o6_bmasdasdsad6_2sgVt7hMZOPfL"}}, map[string]string{"appId": safeApp}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := handle(t, tt.push)
			require.NoError(t, err)
			assert.Equal(t, "success", string(res.Reply.Body))
			assert.Equal(t, tt.push.Rest, res.Shop)
			require.Len(t, res.Events, 1)
			ev := res.Events[0]
			require.NoError(t, events.Validate(ev))
			assert.Equal(t, events.InteractionRecorded, ev.Type())
			d, err := events.Decode[events.InteractionRecordedData](ev)
			require.NoError(t, err)
			want := events.InteractionRecordedData{Channel: events.ChannelWeChat, Kind: tt.wantKind, OccurredAt: time.Unix(at, 0).UTC(), Identities: tt.wantIDs, Attributes: tt.wantAttr}
			assert.Equal(t, want, d)
		})
	}
}

func TestBarePathServesTheOnlyApp(t *testing.T) {
	p := plainPush(subscribe, at, "n", at)
	p.Rest = ""
	res, err := wechat.Adapter{}.Handle(context.Background(), p, platform.Credentials{plainApp: creds[plainApp]})
	require.NoError(t, err)
	require.Len(t, res.Events, 1)
}

func TestUnhandled(t *testing.T) {
	tests := []struct {
		push platform.Push
		want string
	}{
		{plainPush(text, at, "n", at), "text"},
		{plainPush(strings.Replace(subscribe, "[subscribe]", "[CLICK]", 1), at, "n", at), "CLICK"},
		{safePush(sender, `{"ToUserName":"gh_1","FromUserName":"o1","CreateTime":1700000000,"MsgType":"event","Event":"user_authorization_revoke","OpenID":"o1","AppID":"wx1"}`, at, "n", at, true), "user_authorization_revoke"},
		{plainPush("<xml></xml>", at, "n", at), "unknown"},
	}
	for _, tt := range tests {
		res, err := handle(t, tt.push)
		require.NoError(t, err)
		assert.Empty(t, res.Events)
		assert.Equal(t, []string{tt.want}, res.Unhandled)
		assert.Equal(t, "success", string(res.Reply.Body))
	}
}

func TestDedupe(t *testing.T) {
	idOf := func(p platform.Push) string {
		t.Helper()
		res, err := handle(t, p)
		require.NoError(t, err)
		require.Len(t, res.Events, 1)
		return res.Events[0].ID()
	}
	first := idOf(plainPush(subscribe, at, "n1", at))
	assert.Equal(t, first, idOf(plainPush(subscribe, at+5, "n2", at+5)), "a retry (new timestamp and nonce) keeps the id")
	unfollow := idOf(plainPush(strings.Replace(subscribe, "[subscribe]", "[unsubscribe]", 1), at, "n1", at))
	assert.NotEqual(t, first, unfollow, "an unfollow in the same second is another event")
	assert.Equal(t, "wx1|msg|42", wechat.DedupeKey("wx1", wechat.Message{MsgID: "42", FromUserName: "o"}))
	assert.Equal(t, "wx1|o|1700000000|subscribe", wechat.DedupeKey("wx1", wechat.Message{FromUserName: "o", CreateTime: "1700000000", Event: "subscribe"}))
}

func TestRejects(t *testing.T) {
	otherApp := sender
	otherApp.ReceiveID = "wx0000000000000000"
	otherToken := sender
	otherToken.Token = "other"
	tests := []struct {
		name      string
		push      func() platform.Push
		wantIs    error
		wantField string
	}{
		{"plain bad signature", func() platform.Push {
			p := plainPush(subscribe, at, "n", at)
			p.Query.Set("signature", wxcrypttest.Sign("x"))
			return p
		}, platform.ErrSignature, ""},
		{"plain missing signature", func() platform.Push { p := plainPush(subscribe, at, "n", at); p.Query.Del("signature"); return p }, platform.ErrSignature, ""},
		{"plain stale timestamp", func() platform.Push { return plainPush(subscribe, at, "n", at+301) }, platform.ErrSignature, ""},
		{"plain timestamp not a number", func() platform.Push {
			p := plainPush(subscribe, at, "n", at)
			p.Query.Set("timestamp", "now")
			p.Query.Set("signature", wxcrypttest.Sign(token, "now", "n"))
			return p
		}, nil, "timestamp"},
		{"plain push to a safe-mode app", func() platform.Push { p := plainPush(subscribe, at, "n", at); p.Rest = safeApp; return p }, platform.ErrSignature, ""},
		{"safe bad msg_signature", func() platform.Push {
			p := safePush(sender, subscribe, at, "n", at, false)
			p.Query.Set("msg_signature", wxcrypttest.Sign("x"))
			return p
		}, platform.ErrSignature, ""},
		{"safe signed by another token", func() platform.Push { return safePush(otherToken, subscribe, at, "n", at, false) }, platform.ErrSignature, ""},
		{"safe stale timestamp", func() platform.Push { return safePush(sender, subscribe, at, "n", at-301, false) }, platform.ErrSignature, ""},
		{"safe wrong AppID inside", func() platform.Push { return safePush(otherApp, subscribe, at, "n", at, false) }, platform.ErrSignature, ""},
		{"safe bad padding", func() platform.Push {
			p := safePush(sender, subscribe, at, "n", at, false)
			encrypt := sender.SealPadded("aaaabbbbccccdddd", "<xml/>", append(bytes.Repeat([]byte{40}, 19), 40))
			p.Body = wxcrypttest.Envelope("gh_7f083739789a", encrypt, "")
			p.Query.Set("msg_signature", wxcrypttest.Sign(token, strconv.Itoa(at), "n", encrypt))
			return p
		}, nil, "Encrypt"},
		{"safe no Encrypt", func() platform.Push {
			p := safePush(sender, subscribe, at, "n", at, false)
			p.Body = []byte("<xml><ToUserName>gh</ToUserName></xml>")
			return p
		}, nil, "Encrypt"},
		{"unknown app", func() platform.Push { p := plainPush(subscribe, at, "n", at); p.Rest = "wx404"; return p }, platform.ErrUnknownShop, ""},
		{"bare path with several apps", func() platform.Push { p := plainPush(subscribe, at, "n", at); p.Rest = ""; return p }, platform.ErrUnknownShop, ""},
		{"plain body not XML", func() platform.Push { return plainPush("<xml><Event>", at, "n", at) }, nil, "body"},
		{"missing FromUserName", func() platform.Push {
			return plainPush(strings.Replace(subscribe, openID, "", 1), at, "n", at)
		}, nil, "FromUserName"},
		{"openid over the contract's 256 bytes", func() platform.Push {
			return plainPush(strings.Replace(subscribe, openID, strings.Repeat("o", 257), 1), at, "n", at)
		}, nil, "data.identities.0.value"},
		{"URL check without echostr", func() platform.Push {
			q := url.Values{"signature": {wxcrypttest.Sign(token, "1700000000", "n1")}, "timestamp": {"1700000000"}, "nonce": {"n1"}}
			return platform.Push{Platform: wechat.Name, Rest: plainApp, Method: "GET", Query: q}
		}, nil, "echostr"},
		{"bad CreateTime", func() platform.Push { return plainPush(strings.Replace(subscribe, "1700000000", "0", 1), at, "n", at) }, nil, "CreateTime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := handle(t, tt.push())
			require.Error(t, err)
			assert.Empty(t, res.Events)
			if tt.wantIs != nil {
				assert.ErrorIs(t, err, tt.wantIs)
				assert.ErrorIs(t, wechat.Adapter{}.Verify(tt.push(), creds), tt.wantIs, "Verify refuses what Handle cannot verify")
			}
			if tt.wantField != "" {
				var fe *events.FieldError
				require.True(t, errors.As(err, &fe), "want a field error, got %v", err)
				assert.Equal(t, tt.wantField, fe.Field)
				assert.NotErrorIs(t, err, platform.ErrSignature)
			}
		})
	}
}

// FuzzHandle pushes arbitrary messages through correctly signed plain and safe-mode pushes: no
// panic, failures are only malformed bodies, and every event is a valid contract event.
func FuzzHandle(f *testing.F) {
	f.Add(subscribe, false)
	f.Add(subscribeByQR, true)
	f.Add(text, false)
	f.Add(`{"FromUserName":"o","CreateTime":1700000000,"MsgType":"event","Event":"unsubscribe","UnionId":"u"}`, true)
	f.Add(`{"CreateTime":[]}`, false)
	f.Fuzz(func(t *testing.T, msg string, safe bool) {
		p := plainPush(msg, at, "n", at)
		if safe {
			p = safePush(sender, msg, at, "n", at, false)
		}
		require.NoError(t, wechat.Adapter{}.Verify(p, creds), "a signed push verifies whatever its message")
		res, err := handle(t, p)
		if err != nil {
			var fe *events.FieldError
			require.True(t, errors.As(err, &fe), "a signed push fails only as malformed, got %v", err)
			return
		}
		for _, ev := range res.Events {
			require.NoError(t, events.Validate(ev), "event from %q", msg)
		}
	})
}
