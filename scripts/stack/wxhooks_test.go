package stack

import (
	"context"
	"net/url"
	"strconv"
	"testing"
	"time"

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

var wxCreds = map[string]platform.Credentials{
	wecom.Name:  {wxCorpID: {"token": wxToken, "aesKey": wxAESKey}},
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

// deliver hands a push to its adapter and posts what it yields to ingest, as the webhook
// framework does, then waits for the chain to settle.
func deliver(t *testing.T, s *Stack, a platform.Adapter, push platform.Push) {
	t.Helper()
	res, err := a.Handle(context.Background(), push, wxCreds[a.Name()])
	require.NoError(t, err)
	require.Equal(t, "success", string(res.Reply.Body))
	for _, ev := range res.Events {
		post(t, s, ev)
	}
}

func kindCount(p profile.Profile, kind string) int64 {
	return p.Interactions.ByChannel["wechat"].Kinds[kind]
}

func lookupScoped(t *testing.T, s *Stack, typ, value, scope string) profile.Profile {
	t.Helper()
	return lookup(t, s, typ, url.QueryEscape(value)+"&scope="+url.QueryEscape(scope))
}

// TestWeComAndWeChatPushesReachTheProfile: a signed, encrypted WeCom add_external_contact push
// makes a member holding the wecom_external_userid; a WeChat subscribe makes one holding the
// openid and unionid; a redelivered push changes nothing.
func TestWeComAndWeChatPushesReachTheProfile(t *testing.T) {
	s := start(t, testOptions(t, t.TempDir()))
	created := strconv.FormatInt(time.Now().Add(-time.Minute).Unix(), 10)
	add := `<xml><ToUserName><![CDATA[` + wxCorpID + `]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>` + created +
		`</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[add_external_contact]]></ChangeType>` +
		`<UserID><![CDATA[zhangsan]]></UserID><ExternalUserID><![CDATA[wmExternal001]]></ExternalUserID><State><![CDATA[store42]]></State><WelcomeCode><![CDATA[WELCOMECODE]]></WelcomeCode></xml>`
	deliver(t, s, wecom.Adapter{}, wxPush(wecom.Name, wxCorpID, add, "n1"))
	deliver(t, s, wecom.Adapter{}, wxPush(wecom.Name, wxCorpID, add, "n2")) // WeCom's retry

	p := lookupScoped(t, s, "wecom_external_userid", "wmExternal001", wxCorpID)
	assert.Contains(t, identitiesOf(p), "wecom_external_userid:wmExternal001@"+wxCorpID)
	assert.Equal(t, int64(1), kindCount(p, "wecom_add_external_contact"), "the retry counts once")

	follow := `<xml><ToUserName><![CDATA[gh_brand]]></ToUserName><FromUserName><![CDATA[oOpenID001]]></FromUserName><CreateTime>` + created +
		`</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event><UnionId><![CDATA[oUnion001]]></UnionId></xml>`
	deliver(t, s, wechat.Adapter{}, wxPush(wechat.Name, wxAppID, follow, "n3"))
	deliver(t, s, wechat.Adapter{}, wxPush(wechat.Name, wxAppID, follow, "n4"))

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
