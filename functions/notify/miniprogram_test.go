package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wechatServer checks what WeChat checks for subscribeMessage.send: app id and secret at
// stable_token, a current access token (40001 otherwise, 42001 once expired), a template id it
// knows, exactly that template's fields each as {"value": ...} within the length of its kind
// (47003 otherwise), a touser, miniprogram_state and lang from the documented sets. answers
// scripts replies to accepted sends; expireOn and revokeOn spoil the token before that send.
type wechatServer struct {
	t         *testing.T
	appID     string
	secret    string
	templates map[string][]string // template id → field keys
	answers   []string
	expireOn  int
	revokeOn  int
	mu        sync.Mutex
	tokens    tokenIssuer
	calls     int
	got       []map[string]any
}

func (s *wechatServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Method != http.MethodPost {
		http.Error(w, "method", http.StatusMethodNotAllowed)
		return
	}
	switch r.URL.Path {
	case "/cgi-bin/stable_token":
		var req struct {
			GrantType    string `json:"grant_type"`
			AppID        string `json:"appid"`
			Secret       string `json:"secret"`
			ForceRefresh bool   `json:"force_refresh"`
		}
		if json.NewDecoder(r.Body).Decode(&req) != nil || req.GrantType != "client_credential" || req.AppID != s.appID || req.Secret != s.secret {
			_, _ = io.WriteString(w, `{"errcode":40125,"errmsg":"invalid appsecret"}`)
			return
		}
		_, _ = fmt.Fprintf(w, `{"access_token":%q,"expires_in":7200}`, s.tokens.get(req.ForceRefresh))
	case "/cgi-bin/message/subscribe/send":
		s.calls++
		s.tokens.expired = s.tokens.expired || s.calls == s.expireOn
		s.tokens.revoked = s.tokens.revoked || s.calls == s.revokeOn
		if code := s.tokens.check(r.URL.Query().Get("access_token"), 40001); code != 0 {
			_, _ = fmt.Fprintf(w, `{"errcode":%d,"errmsg":"access_token refused"}`, code)
			return
		}
		raw, _ := io.ReadAll(r.Body)
		if code := s.checkSend(raw); code != 0 {
			_, _ = fmt.Fprintf(w, `{"errcode":%d,"errmsg":"invalid"}`, code)
			return
		}
		var got map[string]any
		require.NoError(s.t, json.Unmarshal(raw, &got))
		s.got = append(s.got, got)
		answer := `{"errcode":0,"errmsg":"ok","msgid":294402298110051942}`
		if len(s.got) <= len(s.answers) {
			answer = s.answers[len(s.got)-1]
		}
		_, _ = io.WriteString(w, answer)
	default:
		http.NotFound(w, r)
	}
}

func (s *wechatServer) checkSend(raw []byte) int {
	var req struct {
		ToUser     string                       `json:"touser"`
		TemplateID string                       `json:"template_id"`
		Data       map[string]map[string]string `json:"data"`
		State      string                       `json:"miniprogram_state"`
		Lang       string                       `json:"lang"`
	}
	if json.Unmarshal(raw, &req) != nil || req.ToUser == "" {
		return 40003
	}
	fields, ok := s.templates[req.TemplateID]
	if !ok {
		return 40037
	}
	if !slices.Contains([]string{"developer", "trial", "formal"}, req.State) || !slices.Contains([]string{"zh_CN", "en_US", "zh_HK", "zh_TW"}, req.Lang) {
		return 47003
	}
	var keys []string
	for k, v := range req.Data {
		keys = append(keys, k)
		if strings.HasPrefix(k, "thing") && utf8.RuneCountInString(v["value"]) > 20 || len(v) != 1 {
			return 47003
		}
	}
	slices.Sort(keys)
	if !slices.Equal(keys, fields) {
		return 47003
	}
	return 0
}

func TestMiniProgramSubscriptionMessages(t *testing.T) {
	openid := member.StoredIdentity{Type: "wechat_openid", Scope: "wx-app", Value: "oOPEN1", Key: "k1"}
	otherApp := member.StoredIdentity{Type: "wechat_openid", Scope: "wx-other", Value: "oOTHER", Key: "k2"}
	busy := `{"errcode":-1,"errmsg":"system error"}`
	long := strings.Repeat("会员日", 10)
	tests := []struct {
		name                               string
		identities                         []member.StoredIdentity
		template, text                     string
		answers                            []string
		expireOn, revokeOn                 int
		wantType                           string
		wantAttempts, wantSent, wantTokens int
		wantForced                         int
		wantReason, wantThing1             string
	}{
		{"sent", []member.StoredIdentity{otherApp, openid}, "generic", "双11会员日", nil, 0, 0, events.NotificationSent, 1, 1, 1, 0, "", "双11会员日"},
		{"long text is cut to what thing allows", []member.StoredIdentity{openid}, "generic", long, nil, 0, 0, events.NotificationSent, 1, 1, 1, 0, "", string([]rune(long)[:19]) + "…"},
		{"expired token is refreshed", []member.StoredIdentity{openid}, "generic", "hi", nil, 1, 0, events.NotificationSent, 1, 1, 2, 0, "", "hi"},
		{"revoked token forces a refresh", []member.StoredIdentity{openid}, "generic", "hi", nil, 0, 1, events.NotificationSent, 1, 1, 2, 1, "", "hi"},
		{"system busy is retried", []member.StoredIdentity{openid}, "generic", "hi", []string{busy}, 0, 0, events.NotificationSent, 2, 2, 1, 0, "", "hi"},
		{"no subscription is rejected", []member.StoredIdentity{openid}, "generic", "hi", []string{`{"errcode":43101,"errmsg":"user refuse to accept the msg"}`}, 0, 0, events.NotificationFailed, 1, 1, 1, 0, "43101", "hi"},
		{"no openid in this app", []member.StoredIdentity{otherApp}, "generic", "hi", nil, 0, 0, events.NotificationSuppressed, 1, 0, 0, 0, "no_address", ""},
		{"template without mapping", []member.StoredIdentity{openid}, "tier_changed", "hi", nil, 0, 0, events.NotificationFailed, 1, 0, 0, 0, "no subscription template", ""},
	}
	mapping := SubscribeTemplates{"generic": {TemplateID: "TPL-1", Page: "pages/member/index", Data: map[string]string{"thing1": "{{message}}", "thing2": "{{shop}}"}}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wx := &wechatServer{t: t, appID: "wx-app", secret: "wx-secret", templates: map[string][]string{"TPL-1": {"thing1", "thing2"}},
				answers: tt.answers, expireOn: tt.expireOn, revokeOn: tt.revokeOn}
			srv := httptest.NewServer(wx)
			defer srv.Close()
			h, s := newHandler(t, nil, "outbox")
			h.Sinks = map[string]any{"miniprogram": NewMiniProgram(MiniProgram{URL: srv.URL, AppID: "wx-app", Secret: "wx-secret", State: "formal",
				Templates: mapping, Members: s, Client: srv.Client(), Now: func() time.Time { return now }})}
			require.NoError(t, s.Set(context.Background(), member.Members, alice, member.Member{OneID: alice, Identities: tt.identities}))

			ev, err := events.New(events.NotificationRequested, "r1", events.Source("campaign"), now, events.NotificationRequestedData{
				NotificationID: "n1", OneID: alice, Category: events.CategoryTransactional, Channel: "miniprogram", Template: tt.template,
				Vars: map[string]string{"text": tt.text, "shop": "上海旗舰店"}, SourceID: "r1"})
			require.NoError(t, err)
			typ, d := outcome(t, mustHandleUntilDone(t, h, ev))
			assert.Equal(t, tt.wantType, typ, d.Reason)
			assert.Equal(t, tt.wantAttempts, d.Attempts)
			assert.Contains(t, d.Reason, tt.wantReason)
			require.Len(t, wx.got, tt.wantSent)
			assert.Equal(t, tt.wantTokens, wx.tokens.issued)
			assert.Equal(t, tt.wantForced, wx.tokens.forced)
			for _, got := range wx.got {
				assert.Equal(t, map[string]any{"touser": "oOPEN1", "template_id": "TPL-1", "page": "pages/member/index", "miniprogram_state": "formal",
					"lang": "zh_CN", "data": map[string]any{"thing1": map[string]any{"value": tt.wantThing1}, "thing2": map[string]any{"value": "上海旗舰店"}}}, got)
			}
			mustHandleUntilDone(t, h, ev)
			assert.Len(t, wx.got, tt.wantSent, "a finished notification is never sent again")
		})
	}
}

func TestParseSubscribeTemplates(t *testing.T) {
	raw, err := os.ReadFile("testdata/subscribe_templates.json")
	require.NoError(t, err)
	got, err := ParseSubscribeTemplates(raw)
	require.NoError(t, err, "the example file in the README parses")
	assert.Equal(t, "pages/points/index", got["points_awarded"].Page)

	for _, tt := range []struct{ name, raw, want string }{
		{"not json", `{`, "subscription templates"},
		{"unknown field", `{"a": {"templateId": "T", "data": {"thing1": "x"}, "color": "red"}}`, "unknown field"},
		{"missing template id", `{"a": {"data": {"thing1": "x"}}}`, "missing templateId"},
		{"no fields", `{"a": {"templateId": "T"}}`, "no data fields"},
		{"bad field key", `{"a": {"templateId": "T", "data": {"title": "x"}}}`, `field "title"`},
		{"empty value", `{"a": {"templateId": "T", "data": {"thing1": " "}}}`, "empty value"},
		{"page with slash", `{"a": {"templateId": "T", "page": "/pages/x", "data": {"thing1": "x"}}}`, "leading slash"},
		{"trailing data", `{} {}`, "trailing data"},
		{"empty", `{}`, "none mapped"},
		{"null", `null`, "none mapped"},
	} {
		_, err := ParseSubscribeTemplates([]byte(tt.raw))
		require.Error(t, err, tt.name)
		assert.Contains(t, err.Error(), tt.want, tt.name)
	}
}

// FuzzParseSubscribeTemplates checks the parser never panics and whatever it accepts is valid and
// survives a round trip unchanged.
func FuzzParseSubscribeTemplates(f *testing.F) {
	raw, err := os.ReadFile("testdata/subscribe_templates.json")
	require.NoError(f, err)
	f.Add(raw)
	f.Add([]byte(`{"a": {"templateId": "T", "data": {"thing1": "{{message}}"}}}`))
	f.Add([]byte(`{"a": {"templateId": "T", "data": {"thing0": "x"}}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := ParseSubscribeTemplates(raw)
		if err != nil {
			return
		}
		require.NoError(t, got.Validate())
		again, err := json.Marshal(got)
		require.NoError(t, err)
		back, err := ParseSubscribeTemplates(again)
		require.NoError(t, err)
		assert.Equal(t, got, back)
	})
}
