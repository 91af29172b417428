package wecom_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/platform"
	"github.com/omnimember/omnimember/shared/platform/wecom"
	"github.com/omnimember/omnimember/shared/platform/wxcrypt/wxcrypttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The official WeCom sample (WXBizMsgCrypt Sample.cs/Sample.py, document 90968/90307).
const (
	sampleToken  = "QDG6eK"
	sampleCorpID = "wx5823bf96d3bd56c7"
	sampleAESKey = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
	sampleBody   = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA[RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>"
)

// addContact is the add_external_contact event exactly as 92130 (客户联系 › 回调通知 › 事件格式)
// shows it, with ToUserName set to the corp.
const addContact = `<xml>
<ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>
<FromUserName><![CDATA[sys]]></FromUserName>
<CreateTime>1403610513</CreateTime>
<MsgType><![CDATA[event]]></MsgType>
<Event><![CDATA[change_external_contact]]></Event>
<ChangeType><![CDATA[add_external_contact]]></ChangeType>
<UserID><![CDATA[zhangsan]]></UserID>
<ExternalUserID><![CDATA[woAJ2GCAAAXtWyujaWJHDDGi0mAAAA]]></ExternalUserID>
<State><![CDATA[teststate]]></State>
<WelcomeCode><![CDATA[WELCOMECODE]]></WelcomeCode>
</xml>`

const addContactTime = 1403610513

var creds = platform.Credentials{sampleCorpID: {"token": sampleToken, "aesKey": sampleAESKey}}

var sender = wxcrypttest.Sender{Token: sampleToken, EncodingAESKey: sampleAESKey, ReceiveID: sampleCorpID}

// signedPush is a POST as WeCom sends it: msg, encrypted by the independent test sender, in the
// XML envelope, msg_signature in the query, received at receivedAt.
func signedPush(s wxcrypttest.Sender, msg string, ts int64, nonce, random string, receivedAt int64) platform.Push {
	encrypt := s.Seal(random, msg)
	tsText := strconv.FormatInt(ts, 10)
	return platform.Push{
		Platform: wecom.Name, Rest: sampleCorpID, Method: "POST",
		Query:      url.Values{"msg_signature": {wxcrypttest.Sign(s.Token, tsText, nonce, encrypt)}, "timestamp": {tsText}, "nonce": {nonce}},
		Body:       wxcrypttest.Envelope(sampleCorpID, encrypt, "1000002"),
		ReceivedAt: time.Unix(receivedAt, 0),
	}
}

func handle(t *testing.T, push platform.Push) (platform.Result, error) {
	t.Helper()
	res, err := wecom.Adapter{}.Handle(context.Background(), push, creds)
	if err == nil {
		require.NoError(t, wecom.Adapter{}.Verify(push, creds), "Verify accepts what Handle accepts")
	}
	return res, err
}

func TestURLCheckOfficialVector(t *testing.T) {
	// The GET of the sample, query values URL-decoded as ingest hands them over.
	q, err := url.ParseQuery("msg_signature=5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3&timestamp=1409659589&nonce=263014780&echostr=P9nAzCzyDtyTWESHep1vC5X9xho%2FqYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp%2B4RPcs8TgAE7OaBO%2BFZXvnaqQ%3D%3D")
	require.NoError(t, err)
	res, err := handle(t, platform.Push{Platform: wecom.Name, Rest: sampleCorpID, Method: "GET", Query: q, ReceivedAt: time.Now()})
	require.NoError(t, err)
	assert.Equal(t, "1616140317555161061", string(res.Reply.Body))
	assert.Empty(t, res.Events)

	q.Set("msg_signature", "0000000000000000000000000000000000000000")
	_, err = handle(t, platform.Push{Platform: wecom.Name, Rest: sampleCorpID, Method: "GET", Query: q})
	assert.ErrorIs(t, err, platform.ErrSignature)
}

func TestOfficialMessageVector(t *testing.T) {
	// The sample POST is a text message: verified, decrypted, acknowledged and left unhandled.
	push := platform.Push{
		Platform: wecom.Name, Rest: sampleCorpID, Method: "POST",
		Query:      url.Values{"msg_signature": {"477715d11cdb4164915debcba66cb864d751f3e6"}, "timestamp": {"1409659813"}, "nonce": {"1372623149"}},
		Body:       []byte(sampleBody),
		ReceivedAt: time.Unix(1409659813+2, 0),
	}
	res, err := handle(t, push)
	require.NoError(t, err)
	assert.Equal(t, []string{"text"}, res.Unhandled)
	assert.Empty(t, res.Events)
	assert.Equal(t, "success", string(res.Reply.Body))
}

func TestAddExternalContact(t *testing.T) {
	res, err := handle(t, signedPush(sender, addContact, addContactTime, "1372623149", "0123456789abcdef", addContactTime+1))
	require.NoError(t, err)
	require.Len(t, res.Events, 1)
	assert.Equal(t, "success", string(res.Reply.Body))
	assert.Equal(t, sampleCorpID, res.Shop)
	ev := res.Events[0]
	require.NoError(t, events.Validate(ev))
	assert.Equal(t, events.InteractionRecorded, ev.Type())
	assert.Equal(t, platform.Source("wecom"), ev.Source())
	d, err := events.Decode[events.InteractionRecordedData](ev)
	require.NoError(t, err)
	want := events.InteractionRecordedData{
		Channel:    events.ChannelWeChat,
		Kind:       "wecom_add_external_contact",
		OccurredAt: time.Unix(addContactTime, 0).UTC(),
		Identities: []events.Identity{{Type: "wecom_external_userid", Value: "woAJ2GCAAAXtWyujaWJHDDGi0mAAAA", Scope: sampleCorpID}},
		Attributes: map[string]string{"corpId": sampleCorpID, "userId": "zhangsan", "state": "teststate"},
	}
	assert.Equal(t, want, d)
}

func TestRetryHasTheSameEventID(t *testing.T) {
	// WeCom retries with a new timestamp, nonce and random prefix: the event id must not move.
	first, err := handle(t, signedPush(sender, addContact, addContactTime, "1", "0123456789abcdef", addContactTime))
	require.NoError(t, err)
	retry, err := handle(t, signedPush(sender, addContact, addContactTime+5, "2", "fedcba9876543210", addContactTime+5))
	require.NoError(t, err)
	require.Len(t, first.Events, 1)
	require.Len(t, retry.Events, 1)
	assert.Equal(t, first.Events[0].ID(), retry.Events[0].ID())

	// Another staff member adding the same contact in the same second is another event.
	other, err := handle(t, signedPush(sender, strings.ReplaceAll(addContact, "zhangsan", "lisi"), addContactTime, "3", "0123456789abcdef", addContactTime))
	require.NoError(t, err)
	require.Len(t, other.Events, 1)
	assert.NotEqual(t, first.Events[0].ID(), other.Events[0].ID())
}

func TestChangeTypes(t *testing.T) {
	tests := []struct {
		changeType    string
		wantKind      string
		wantUnhandled string
	}{
		{"add_external_contact", "wecom_add_external_contact", ""},
		{"add_half_external_contact", "wecom_add_half_external_contact", ""},
		{"edit_external_contact", "wecom_edit_external_contact", ""},
		{"del_external_contact", "wecom_del_external_contact", ""},
		{"del_follow_user", "wecom_del_follow_user", ""},
		{"transfer_fail", "", "change_external_contact.transfer_fail"},
	}
	for _, tt := range tests {
		t.Run(tt.changeType, func(t *testing.T) {
			msg := strings.ReplaceAll(addContact, "add_external_contact", tt.changeType)
			res, err := handle(t, signedPush(sender, msg, addContactTime, "n", "0123456789abcdef", addContactTime))
			require.NoError(t, err)
			if tt.wantUnhandled != "" {
				assert.Empty(t, res.Events)
				assert.Equal(t, []string{tt.wantUnhandled}, res.Unhandled)
				return
			}
			require.Len(t, res.Events, 1)
			d, err := events.Decode[events.InteractionRecordedData](res.Events[0])
			require.NoError(t, err)
			assert.Equal(t, tt.wantKind, d.Kind)
			require.NoError(t, events.Validate(res.Events[0]))
		})
	}
}

func TestOtherEventsAreUnhandled(t *testing.T) {
	tests := []struct{ msg, want string }{
		{`<xml><ToUserName>c</ToUserName><FromUserName>u</FromUserName><CreateTime>1403610513</CreateTime><MsgType>event</MsgType><Event>enter_agent</Event></xml>`, "enter_agent"},
		{`<xml><ToUserName>c</ToUserName><FromUserName>sys</FromUserName><CreateTime>1403610513</CreateTime><MsgType>event</MsgType><Event>change_external_chat</Event><ChangeType>create</ChangeType></xml>`, "change_external_chat.create"},
		{`<xml><MsgType>image</MsgType></xml>`, "image"},
		{`<xml></xml>`, "unknown"},
	}
	for _, tt := range tests {
		res, err := handle(t, signedPush(sender, tt.msg, addContactTime, "n", "0123456789abcdef", addContactTime))
		require.NoError(t, err)
		assert.Empty(t, res.Events)
		assert.Equal(t, []string{tt.want}, res.Unhandled)
		assert.Equal(t, "success", string(res.Reply.Body))
	}
}

func TestRejects(t *testing.T) {
	good := func() platform.Push {
		return signedPush(sender, addContact, addContactTime, "n", "0123456789abcdef", addContactTime)
	}
	otherCorp := sender
	otherCorp.ReceiveID = "ww0000000000000001"
	tests := []struct {
		name      string
		push      func() platform.Push
		wantIs    error
		wantField string
	}{
		{"bad signature", func() platform.Push { p := good(); p.Query.Set("msg_signature", wxcrypttest.Sign("x")); return p }, platform.ErrSignature, ""},
		{"missing signature", func() platform.Push { p := good(); p.Query.Del("msg_signature"); return p }, platform.ErrSignature, ""},
		{"signed by another token", func() platform.Push {
			s := sender
			s.Token = "other"
			return signedPush(s, addContact, addContactTime, "n", "0123456789abcdef", addContactTime)
		}, platform.ErrSignature, ""},
		{"stale timestamp", func() platform.Push {
			return signedPush(sender, addContact, addContactTime, "n", "0123456789abcdef", addContactTime+301)
		}, platform.ErrSignature, ""},
		{"future timestamp", func() platform.Push {
			return signedPush(sender, addContact, addContactTime+301, "n", "0123456789abcdef", addContactTime)
		}, platform.ErrSignature, ""},
		{"timestamp not a number", func() platform.Push {
			p := good()
			encrypt := sender.Seal("0123456789abcdef", addContact)
			p.Query = url.Values{"msg_signature": {wxcrypttest.Sign(sampleToken, "soon", "n", encrypt)}, "timestamp": {"soon"}, "nonce": {"n"}}
			p.Body = wxcrypttest.Envelope(sampleCorpID, encrypt, "")
			return p
		}, nil, "timestamp"},
		{"wrong receive id", func() platform.Push {
			return signedPush(otherCorp, addContact, addContactTime, "n", "0123456789abcdef", addContactTime)
		}, platform.ErrSignature, ""},
		{"unknown corp", func() platform.Push { p := good(); p.Rest = "ww404"; return p }, platform.ErrUnknownShop, ""},
		{"body not XML", func() platform.Push { p := good(); p.Body = []byte("<xml><Encrypt>"); return p }, nil, "body"},
		{"root not xml", func() platform.Push { p := good(); p.Body = []byte("<html></html>"); return p }, nil, "body"},
		{"no Encrypt", func() platform.Push { p := good(); p.Body = []byte("<xml><ToUserName>x</ToUserName></xml>"); return p }, nil, "Encrypt"},
		{"bad padding", func() platform.Push {
			encrypt := sender.SealPadded("0123456789abcdef", "<xml/>", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
			return signedEnvelope(encrypt)
		}, nil, "Encrypt"},
		{"decrypted message not XML", func() platform.Push {
			return signedPush(sender, "<xml><Event>", addContactTime, "n", "0123456789abcdef", addContactTime)
		}, nil, "body"},
		{"no ExternalUserID", func() platform.Push {
			return signedPush(sender, strings.ReplaceAll(addContact, "woAJ2GCAAAXtWyujaWJHDDGi0mAAAA", ""), addContactTime, "n", "0123456789abcdef", addContactTime)
		}, nil, "ExternalUserID"},
		{"ExternalUserID over the contract's 256 bytes", func() platform.Push {
			return signedPush(sender, strings.ReplaceAll(addContact, "woAJ2GCAAAXtWyujaWJHDDGi0mAAAA", strings.Repeat("w", 257)), addContactTime, "n", "0123456789abcdef", addContactTime)
		}, nil, "data.identities.0.value"},
		{"URL check without echostr", func() platform.Push {
			return platform.Push{Platform: wecom.Name, Rest: sampleCorpID, Method: "GET", Query: url.Values{"msg_signature": {"x"}, "timestamp": {"1"}, "nonce": {"n"}}}
		}, nil, "echostr"},
		{"bad CreateTime", func() platform.Push {
			return signedPush(sender, strings.ReplaceAll(addContact, "1403610513", "yesterday"), addContactTime, "n", "0123456789abcdef", addContactTime)
		}, nil, "CreateTime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := handle(t, tt.push())
			require.Error(t, err)
			assert.Empty(t, res.Events)
			if tt.wantIs != nil {
				assert.ErrorIs(t, err, tt.wantIs)
				assert.ErrorIs(t, wecom.Adapter{}.Verify(tt.push(), creds), tt.wantIs, "Verify refuses what Handle cannot verify")
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

func TestCorpIDAndReceiveIDFromCredentials(t *testing.T) {
	// A corp configured under an app name: the scope is corpId, the plaintext ends with receiveId.
	suite := wxcrypttest.Sender{Token: sampleToken, EncodingAESKey: sampleAESKey, ReceiveID: "ww-suite-1"}
	byName := platform.Credentials{"crm-app": {"token": sampleToken, "aesKey": sampleAESKey, "corpId": "ww-corp-1", "receiveId": "ww-suite-1"}}
	p := signedPush(suite, addContact, addContactTime, "n", "0123456789abcdef", addContactTime)
	p.Rest = "crm-app/"
	res, err := wecom.Adapter{}.Handle(context.Background(), p, byName)
	require.NoError(t, err)
	require.Len(t, res.Events, 1)
	d, err := events.Decode[events.InteractionRecordedData](res.Events[0])
	require.NoError(t, err)
	assert.Equal(t, "ww-corp-1", d.Identities[0].Scope)
}

func TestCorpFromEnvelopeOrOnlyCorp(t *testing.T) {
	several := platform.Credentials{sampleCorpID: creds[sampleCorpID], "ww-other": {"token": "t", "aesKey": sampleAESKey}}
	post := func(toUserName string) platform.Push {
		p := signedPush(sender, addContact, addContactTime, "n", "0123456789abcdef", addContactTime)
		p.Rest = ""
		p.Body = []byte(strings.Replace(string(p.Body), sampleCorpID, toUserName, 1))
		return p
	}
	get, err := url.ParseQuery("msg_signature=5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3&timestamp=1409659589&nonce=263014780&echostr=P9nAzCzyDtyTWESHep1vC5X9xho%2FqYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp%2B4RPcs8TgAE7OaBO%2BFZXvnaqQ%3D%3D")
	require.NoError(t, err)
	tests := []struct {
		name       string
		push       platform.Push
		creds      platform.Credentials
		wantEvents int
		wantErr    error
	}{
		{"bare path, ToUserName names a corp", post(sampleCorpID), several, 1, nil},
		{"bare path, ToUserName unknown, one corp", post("ww-unknown"), creds, 1, nil},
		{"bare path, ToUserName unknown, several corps", post("ww-unknown"), several, 0, platform.ErrUnknownShop},
		{"bare path, ToUserName of another configured corp", post("ww-other"), several, 0, platform.ErrSignature},
		{"bare GET, one corp", platform.Push{Platform: wecom.Name, Method: "GET", Query: get}, creds, 0, nil},
		{"bare GET, several corps", platform.Push{Platform: wecom.Name, Method: "GET", Query: get}, several, 0, platform.ErrUnknownShop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := wecom.Adapter{}.Handle(context.Background(), tt.push, tt.creds)
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Len(t, res.Events, tt.wantEvents)
		})
	}
}

func signedEnvelope(encrypt string) platform.Push {
	ts := strconv.Itoa(addContactTime)
	return platform.Push{
		Platform: wecom.Name, Rest: sampleCorpID, Method: "POST",
		Query:      url.Values{"msg_signature": {wxcrypttest.Sign(sampleToken, ts, "n", encrypt)}, "timestamp": {ts}, "nonce": {"n"}},
		Body:       wxcrypttest.Envelope(sampleCorpID, encrypt, ""),
		ReceivedAt: time.Unix(addContactTime, 0),
	}
}

// FuzzHandle pushes arbitrary decrypted messages through a correctly signed and encrypted
// callback: no panic, and every event that comes out is a valid contract event.
func FuzzHandle(f *testing.F) {
	f.Add(addContact)
	f.Add(strings.ReplaceAll(addContact, "add_external_contact", "del_follow_user"))
	f.Add(`<xml><MsgType>text</MsgType><MsgId>1</MsgId></xml>`)
	f.Add(`{"MsgType":"event","Event":"change_external_contact","ChangeType":"add_external_contact","ExternalUserID":"wo1","CreateTime":"1403610513"}`)
	f.Add(`{"MsgType":"event","Event":"change_external_contact","ChangeType":"del_follow_user","ExternalUserID":"wo1","CreateTime":1403610513}`)
	f.Add(`<xml><CreateTime>-1</CreateTime></xml>`)
	f.Fuzz(func(t *testing.T, msg string) {
		p := signedPush(sender, msg, addContactTime, "n", "0123456789abcdef", addContactTime)
		require.NoError(t, wecom.Adapter{}.Verify(p, creds), "a signed push verifies whatever its message")
		res, err := handle(t, p)
		if err != nil {
			var fe *events.FieldError
			require.True(t, errors.As(err, &fe), "a signed push fails only as malformed, got %v", err)
			return
		}
		for _, ev := range res.Events {
			require.NoError(t, events.Validate(ev), fmt.Sprintf("event from %q", msg))
		}
	})
}
