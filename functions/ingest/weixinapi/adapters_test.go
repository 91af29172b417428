package weixinapi_test

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/functions/ingest/weixinapi/weixinapitest"
	"github.com/omnimember/omnimember/shared/platform"
	"github.com/omnimember/omnimember/shared/platform/wechat"
	"github.com/omnimember/omnimember/shared/platform/wecom"
	"github.com/omnimember/omnimember/shared/platform/wxcrypt/wxcrypttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The official WeCom sample's corp (WXBizMsgCrypt Sample, document 90968) and a WeChat app.
const (
	corpID   = "wx5823bf96d3bd56c7"
	corpKey  = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
	appID    = "wx-plain-app"
	wxToken  = "QDG6eK"
	openID   = "oia2TjjewbmiOUlr6X-1crbLOvLw"
	external = "woAJ2GCAAAXtWyujaWJHDDGi0mAAAA"
	pushedAt = 1700000000
)

// addContact is the add_external_contact event of 92130 (客户联系 › 回调通知 › 事件格式).
var addContact = `<xml><ToUserName><![CDATA[` + corpID + `]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>` +
	`<CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_contact]]></Event>` +
	`<ChangeType><![CDATA[add_external_contact]]></ChangeType><UserID><![CDATA[zhangsan]]></UserID>` +
	`<ExternalUserID><![CDATA[` + external + `]]></ExternalUserID></xml>`

// subscribe is the 关注事件 of 公众号 › 接收事件推送.
const subscribe = `<xml><ToUserName><![CDATA[gh_7f083739789a]]></ToUserName><FromUserName><![CDATA[` + openID + `]]></FromUserName>` +
	`<CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event></xml>`

// wecomPush is a POST as WeCom sends it, sealed and signed by the independent test sender.
func wecomPush(msg string) platform.Push {
	s := wxcrypttest.Sender{Token: wxToken, EncodingAESKey: corpKey, ReceiveID: corpID}
	encrypt := s.Seal("0123456789abcdef", msg)
	ts := strconv.Itoa(pushedAt)
	return platform.Push{
		Platform: wecom.Name, Rest: corpID, Method: "POST",
		Query:      url.Values{"msg_signature": {wxcrypttest.Sign(wxToken, ts, "n", encrypt)}, "timestamp": {ts}, "nonce": {"n"}},
		Body:       wxcrypttest.Envelope(corpID, encrypt, "1000002"),
		ReceivedAt: time.Unix(pushedAt, 0),
	}
}

// wechatPush is a plain-mode POST: the signature over token, timestamp and nonce in the query.
func wechatPush(msg string) platform.Push {
	ts := strconv.Itoa(pushedAt)
	return platform.Push{
		Platform: wechat.Name, Rest: appID, Method: "POST",
		Query:      url.Values{"signature": {wxcrypttest.Sign(wxToken, ts, "n")}, "timestamp": {ts}, "nonce": {"n"}, "openid": {openID}},
		Body:       []byte(msg),
		ReceivedAt: time.Unix(pushedAt, 0),
	}
}

// identitiesOf handles the push and returns the identities and the unionid lookup note of its
// one interaction event.
func identitiesOf(t *testing.T, a platform.Adapter, push platform.Push, creds platform.Credentials) ([]events.Identity, string, error) {
	t.Helper()
	res, err := a.Handle(context.Background(), push, creds)
	if err != nil {
		assert.Empty(t, res.Events)
		return nil, "", err
	}
	require.Len(t, res.Events, 1)
	require.NoError(t, events.Validate(res.Events[0]))
	d, err := events.Decode[events.InteractionRecordedData](res.Events[0])
	require.NoError(t, err)
	return d.Identities, d.Attributes["unionidLookup"], nil
}

func TestWeComContactUnionIDThroughTheAdapter(t *testing.T) {
	srv, c, _ := fakeWeCom(t)
	srv.CorpID, srv.Secret = corpID, "contact-secret"
	adapter := wecom.Adapter{Contacts: c}
	withSecret := platform.Credentials{corpID: {"token": wxToken, "aesKey": corpKey, "secret": "contact-secret"}}
	noSecret := platform.Credentials{corpID: {"token": wxToken, "aesKey": corpKey}}
	contact := func(id string) events.Identity {
		return events.Identity{Type: "wecom_external_userid", Value: id, Scope: corpID}
	}
	union := events.Identity{Type: "wechat_unionid", Value: "oUnion001"}
	tests := []struct {
		name         string
		msg          string
		creds        platform.Credentials
		fail, refuse int
		want         []events.Identity
		wantNote     string
		wantErr      error
	}{
		{"WeChat user added", strings.ReplaceAll(addContact, external, "wmWeChatUser"), withSecret, 0, 0, []events.Identity{contact("wmWeChatUser"), union}, "", nil},
		{"WeChat user edited", strings.NewReplacer(external, "wmWeChatUser", "[add_external_contact]", "[edit_external_contact]").Replace(addContact), withSecret, 0, 0, []events.Identity{contact("wmWeChatUser"), union}, "", nil},
		{"WeCom user: no unionid", strings.ReplaceAll(addContact, external, "wmWeComUser"), withSecret, 0, 0, []events.Identity{contact("wmWeComUser")}, "", nil},
		{"contact already gone", addContact, withSecret, 0, 0, []events.Identity{contact(external)}, "", nil},
		{"deletions are not looked up", strings.Replace(addContact, "[add_external_contact]", "[del_follow_user]", 1), withSecret, 5, 0, []events.Identity{contact(external)}, "", nil},
		{"corp without a secret", addContact, noSecret, 5, 0, []events.Identity{contact(external)}, "", nil},
		{"IP not on the corp's list: kept, without unionid", strings.ReplaceAll(addContact, external, "wmWeChatUser"), withSecret, 0, 60020, []events.Identity{contact("wmWeChatUser")},
			"refused by the platform API: wecom externalcontact/get: errcode 60020", nil},
		{"API down: WeCom must retry", addContact, withSecret, 5, 0, nil, "", platform.ErrUpstream},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.FailNext(tt.fail)
			srv.Refuse(tt.refuse)
			defer srv.FailNext(0)
			defer srv.Refuse(0)
			got, note, err := identitiesOf(t, adapter, wecomPush(tt.msg), tt.creds)
			require.ErrorIs(t, err, tt.wantErr)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.wantNote, note)
		})
	}
}

func TestWeChatFollowerUnionIDThroughTheAdapter(t *testing.T) {
	srv := weixinapitest.NewWeChat(appID, "app-secret", map[string]string{openID: "oUnion001", "oUnbound": ""})
	t.Cleanup(srv.Close)
	c, _ := client(nil, srv.Server)
	adapter := wechat.Adapter{Users: c}
	withSecret := platform.Credentials{appID: {"token": wxToken, "secret": "app-secret"}}
	follower := func(id string) events.Identity {
		return events.Identity{Type: "wechat_openid", Value: id, Scope: appID}
	}
	union := events.Identity{Type: "wechat_unionid", Value: "oUnion001"}
	tests := []struct {
		name     string
		msg      string
		creds    platform.Credentials
		fail     int
		want     []events.Identity
		wantNote string
		wantErr  error
	}{
		{"follow", subscribe, withSecret, 0, []events.Identity{follower(openID), union}, "", nil},
		{"follow, account without Open Platform", strings.Replace(subscribe, openID, "oUnbound", 1), withSecret, 0, []events.Identity{follower("oUnbound")}, "", nil},
		{"unfollow is not looked up", strings.Replace(subscribe, "[subscribe]", "[unsubscribe]", 1), withSecret, 5, []events.Identity{follower(openID)}, "", nil},
		{"app without a secret", subscribe, platform.Credentials{appID: {"token": wxToken}}, 5, []events.Identity{follower(openID)}, "", nil},
		{"wrong secret: kept, without unionid", subscribe, platform.Credentials{appID: {"token": wxToken, "secret": "wrong"}}, 0, []events.Identity{follower(openID)},
			"refused by the platform API: wechat stable_token: errcode 40125", nil},
		{"API down: WeChat must retry", subscribe, withSecret, 5, nil, "", platform.ErrUpstream},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.FailNext(tt.fail)
			defer srv.FailNext(0)
			got, note, err := identitiesOf(t, adapter, wechatPush(tt.msg), tt.creds)
			require.ErrorIs(t, err, tt.wantErr)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.wantNote, note)
		})
	}
	assert.Zero(t, srv.ForcedRefreshes())
}
