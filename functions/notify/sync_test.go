package notify

import (
	"context"

	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTOPSignMatchesTheDocumentedExample uses TOP's own worked example: foo=1, bar=2, foo_bar=3,
// foobar=4 sort to "bar2foo1foo_bar3foobar4", signed md5(secret + that + secret).
func TestTOPSignMatchesTheDocumentedExample(t *testing.T) {
	params := map[string]string{"foo": "1", "bar": "2", "foo_bar": "3", "foobar": "4", "sign": "ignored"}
	sum := md5.Sum([]byte("appsecret" + "bar2foo1foo_bar3foobar4" + "appsecret"))
	assert.Equal(t, strings.ToUpper(hex.EncodeToString(sum[:])), TOPSign(params, "appsecret", "md5"))
	mac := hmac.New(sha256.New, []byte("appsecret"))
	mac.Write([]byte("bar2foo1foo_bar3foobar4"))
	assert.Equal(t, strings.ToUpper(hex.EncodeToString(mac.Sum(nil))), TOPSign(params, "appsecret", "hmac-sha256"))
}

// topServer checks what TOP checks: the signature over the sorted parameters and a timestamp
// within ten minutes, in GMT+8.
type topServer struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	got    []url.Values
	answer string
}

func (s *topServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	require.NoError(s.t, r.ParseForm())
	keys := make([]string, 0)
	for k := range r.PostForm {
		if k != "sign" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var concat string
	for _, k := range keys {
		concat += k + r.PostForm.Get(k)
	}
	mac := hmac.New(sha256.New, []byte(s.secret))
	mac.Write([]byte(concat))
	if r.PostForm.Get("sign") != strings.ToUpper(hex.EncodeToString(mac.Sum(nil))) {
		_, _ = io.WriteString(w, `{"error_response":{"code":25,"msg":"Invalid signature","sub_code":"isv.invalid-signature"}}`)
		return
	}
	ts, err := time.ParseInLocation("2006-01-02 15:04:05", r.PostForm.Get("timestamp"), shanghai)
	if err != nil || ts.Sub(now).Abs() > 10*time.Minute {
		_, _ = io.WriteString(w, `{"error_response":{"code":27,"msg":"Invalid timestamp"}}`)
		return
	}
	s.mu.Lock()
	s.got = append(s.got, r.PostForm)
	s.mu.Unlock()
	answer := s.answer
	if answer == "" {
		answer = `{"crm_member_sync_response":{"result":true}}`
	}
	_, _ = io.WriteString(w, answer)
}

type doudianServer struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	got    []map[string]string
}

func (s *doudianServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	q := r.URL.Query()
	mac := hmac.New(sha256.New, []byte(s.secret))
	mac.Write([]byte(s.secret + "app_key" + q.Get("app_key") + "method" + q.Get("method") + "param_json" + string(body) +
		"timestamp" + q.Get("timestamp") + "v" + q.Get("v") + s.secret))
	if q.Get("sign") != hex.EncodeToString(mac.Sum(nil)) || r.URL.Path != "/"+strings.ReplaceAll(q.Get("method"), ".", "/") {
		_, _ = io.WriteString(w, `{"code":30001,"msg":"sign error"}`)
		return
	}
	var params map[string]string
	require.NoError(s.t, json.Unmarshal(body, &params))
	s.mu.Lock()
	s.got = append(s.got, params)
	s.mu.Unlock()
	_, _ = io.WriteString(w, `{"code":10000,"msg":"success"}`)
}

type wecomServer struct {
	t        *testing.T
	secret   string
	mu       sync.Mutex
	tokens   int
	expireOn int // answer 42001 to this mark_tag call (1-based), as if the token expired
	calls    int
	got      []map[string]any
}

func (s *wecomServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.URL.Path {
	case "/cgi-bin/gettoken":
		if r.URL.Query().Get("corpsecret") != s.secret {
			_, _ = io.WriteString(w, `{"errcode":40001,"errmsg":"invalid secret"}`)
			return
		}
		s.tokens++
		_, _ = io.WriteString(w, `{"errcode":0,"access_token":"tok-`+string(rune('0'+s.tokens))+`","expires_in":7200}`)
	case "/cgi-bin/externalcontact/mark_tag":
		s.calls++
		if s.calls == s.expireOn || r.URL.Query().Get("access_token") != "tok-"+string(rune('0'+s.tokens)) {
			_, _ = io.WriteString(w, `{"errcode":42001,"errmsg":"access_token expired"}`)
			return
		}
		var body map[string]any
		require.NoError(s.t, json.NewDecoder(r.Body).Decode(&body))
		s.got = append(s.got, body)
		_, _ = io.WriteString(w, `{"errcode":0,"errmsg":"ok"}`)
	default:
		http.NotFound(w, r)
	}
}

// TestAGoldUpgradeSyncsEveryChannelTheMemberIsOn gives a member identities on Tmall, Douyin, WeCom
// and the mini-program, and checks one tier change reaches each platform, signed as it expects.
func TestAGoldUpgradeSyncsEveryChannelTheMemberIsOn(t *testing.T) {
	top := &topServer{t: t, secret: "top-secret"}
	dd := &doudianServer{t: t, secret: "dd-secret"}
	wc := &wecomServer{t: t, secret: "wc-secret", expireOn: 1}
	mp := &provider{t: t, secret: []byte("mini-program-secret")}
	servers := map[string]*httptest.Server{}
	for name, h := range map[string]http.Handler{"top": top, "dd": dd, "wc": wc, "mp": mp} {
		servers[name] = httptest.NewServer(h)
		defer servers[name].Close()
	}
	clock := func() time.Time { return now }
	sinks := map[string]any{
		"outbox":        Outbox{},
		SyncTmall:       TOP{URL: servers["top"].URL, AppKey: "12345678", Secret: "top-secret", Session: "sess", SignMethod: "hmac-sha256", Method: "taobao.crm.member.sync", Client: http.DefaultClient, Now: clock},
		SyncDouyin:      Doudian{URL: servers["dd"].URL, AppKey: "dd-app", Secret: "dd-secret", AccessToken: "tok", Method: "member.level.sync", Client: http.DefaultClient, Now: clock},
		SyncWeCom:       NewWeCom(WeCom{URL: servers["wc"].URL, CorpID: "corp", Secret: "wc-secret", StaffUserID: "guide-1", TagByLevel: map[string]string{"silver": "tag-s", "gold": "tag-g"}, Client: http.DefaultClient, Now: clock}),
		SyncMiniProgram: Webhook{URL: servers["mp"].URL, Secret: []byte("mini-program-secret"), Client: http.DefaultClient, Now: clock},
	}
	h, s := newHandler(t, sinks, "outbox")
	h.SyncChannels = DefaultSyncChannels
	m := member.Member{OneID: alice, Identities: []member.StoredIdentity{
		{Type: "tmall_ouid", Scope: "shop-1", Value: "ouid-1", Key: "k1"}, {Type: "douyin_openid", Scope: "dy-shop", Value: "dy-open-1", Key: "k2"},
		{Type: "wecom_external_userid", Scope: "corp", Value: "wm-ext-1", Key: "k3"}, {Type: "wechat_openid", Scope: "wx-app", Value: "oX-1", Key: "k4"},
		{Type: "phone", Key: "k5", Sealed: "sealed", Masked: "138****5678"}}}
	require.NoError(t, s.Set(context.Background(), member.Members, alice, m))

	ev, err := events.New(events.TierChanged, "t-gold", events.Source("tier-evaluate"), now, events.TierChangedData{
		OneID: alice, From: "silver", To: "gold", Direction: "upgrade", NetSpendFen: 300000, EvaluatedAt: now, SourceID: "s"})
	require.NoError(t, err)
	outs, err := h.Handle(context.Background(), ev)
	require.NoError(t, err)
	require.Len(t, outs, 5, "the member's message and four syncs")
	channels := map[string]bool{}
	for _, o := range outs {
		typ, d := outcome(t, []cloudevents.Event{o})
		assert.Equal(t, events.NotificationSent, typ, "%s: %s", d.Channel, d.Reason)
		channels[d.Channel] = true
	}
	assert.Equal(t, map[string]bool{"outbox": true, SyncTmall: true, SyncDouyin: true, SyncWeCom: true, SyncMiniProgram: true}, channels)
	require.Len(t, top.got, 1)
	assert.Equal(t, []string{"ouid-1", "gold"}, []string{top.got[0].Get("ouid"), top.got[0].Get("level")})
	require.Len(t, dd.got, 1)
	assert.Equal(t, map[string]string{"open_id": "dy-open-1", "shop_id": "dy-shop", "level": "gold"}, dd.got[0])
	require.Len(t, wc.got, 1, "the expired token was refreshed once and the call repeated")
	assert.Equal(t, 2, wc.tokens)
	assert.Equal(t, []any{"tag-g"}, wc.got[0]["add_tag"])
	assert.Equal(t, []any{"tag-s"}, wc.got[0]["remove_tag"])
	assert.Len(t, mp.keys, 1)

	again, err := h.Handle(context.Background(), ev)
	require.NoError(t, err)
	assert.Len(t, again, 5)
	assert.Len(t, top.got, 1, "a redelivered change syncs nothing twice")
	assert.Len(t, dd.got, 1)
}

func TestPlatformRejectionsFailAndTroubleRetries(t *testing.T) {
	top := &topServer{t: t, secret: "top-secret", answer: `{"error_response":{"code":15,"msg":"Remote service error","sub_code":"isp.remote-service-error"}}`}
	srv := httptest.NewServer(top)
	defer srv.Close()
	sink := TOP{URL: srv.URL, AppKey: "k", Secret: "wrong-secret", Session: "s", SignMethod: "hmac-sha256", Method: "m", Client: http.DefaultClient, Now: func() time.Time { return now }}
	err := sink.Deliver(context.Background(), Notification{Vars: map[string]string{"identityType": "tmall_ouid", "identity": "x", "level": "gold"}})
	require.ErrorIs(t, err, ErrRejected, "a bad signature is the platform saying no")
	sink.Secret = "top-secret"
	err = sink.Deliver(context.Background(), Notification{Vars: map[string]string{"identityType": "tmall_ouid", "identity": "x", "level": "gold"}})
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrRejected, "isp.* is the platform's trouble: retry")
}
