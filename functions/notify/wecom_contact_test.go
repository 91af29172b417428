package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tokenIssuer hands out access tokens the way WeCom's gettoken and WeChat's stable_token do: the
// same token while it is valid, a new one once it expired (or on a forced refresh), and only the
// current one is accepted.
type tokenIssuer struct {
	issued  int
	forced  int
	current string
	expired bool
	revoked bool // refused by the API yet still handed out without a forced refresh
}

func (ti *tokenIssuer) get(force bool) string {
	if force {
		ti.forced++
	}
	if ti.current == "" || ti.expired || force {
		ti.issued++
		ti.current, ti.expired, ti.revoked = fmt.Sprintf("tok-%d", ti.issued), false, false
	}
	return ti.current
}

// check answers as the providers do for a token: 0 if current, 42001 if expired, 40014/40001 if unknown.
func (ti *tokenIssuer) check(token string, invalid int) int {
	switch {
	case token == "" || token != ti.current || ti.revoked:
		return invalid
	case ti.expired:
		return 42001
	}
	return 0
}

// wecomContactServer checks what WeCom checks for add_msg_template: the corp secret at gettoken,
// a current access token, and the JSON body shape (chat_type single, external_userid list, text
// content within 4000 bytes). answers scripts the replies to accepted calls; expireOn expires the
// token just before that (1-based) call arrives.
type wecomContactServer struct {
	t        *testing.T
	corpID   string
	secret   string
	answers  []string
	expireOn int
	mu       sync.Mutex
	tokens   tokenIssuer
	calls    int
	got      []map[string]any
}

func (s *wecomContactServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := r.URL.Query()
	switch r.URL.Path {
	case "/cgi-bin/gettoken":
		if q.Get("corpid") != s.corpID || q.Get("corpsecret") != s.secret {
			_, _ = io.WriteString(w, `{"errcode":40001,"errmsg":"invalid credential"}`)
			return
		}
		_, _ = fmt.Fprintf(w, `{"errcode":0,"errmsg":"ok","access_token":%q,"expires_in":7200}`, s.tokens.get(false))
	case "/cgi-bin/externalcontact/add_msg_template":
		s.calls++
		if s.calls == s.expireOn {
			s.tokens.expired = true
		}
		if code := s.tokens.check(q.Get("access_token"), 40014); code != 0 || r.Method != http.MethodPost {
			_, _ = fmt.Fprintf(w, `{"errcode":%d,"errmsg":"access_token refused"}`, code)
			return
		}
		var body struct {
			ChatType       string            `json:"chat_type"`
			ExternalUserID []string          `json:"external_userid"`
			Sender         string            `json:"sender"`
			Text           map[string]string `json:"text"`
		}
		raw, _ := io.ReadAll(r.Body)
		if json.Unmarshal(raw, &body) != nil || body.ChatType != "single" || len(body.ExternalUserID) == 0 ||
			body.Text["content"] == "" || len(body.Text["content"]) > 4000 {
			_, _ = io.WriteString(w, `{"errcode":40058,"errmsg":"invalid parameter"}`)
			return
		}
		var got map[string]any
		require.NoError(s.t, json.Unmarshal(raw, &got))
		s.got = append(s.got, got)
		answer := `{"errcode":0,"errmsg":"ok","fail_list":[],"msgid":"msg1"}`
		if len(s.got) <= len(s.answers) {
			answer = s.answers[len(s.got)-1]
		}
		_, _ = io.WriteString(w, answer)
	default:
		http.NotFound(w, r)
	}
}

// channelRequest asks for a transactional message on channel: the adapters' tests are about the
// provider; the rules of contact (consent for marketing, caps, quiet hours) have their own tests.
func channelRequest(t *testing.T, id, channel string, vars map[string]string) cloudevents.Event {
	ev, err := events.New(events.NotificationRequested, id, events.Source("campaign"), now, events.NotificationRequestedData{
		NotificationID: "n-" + id, OneID: alice, Category: events.CategoryTransactional, Channel: channel, Template: "generic",
		Vars: vars, SourceID: id})
	require.NoError(t, err)
	return ev
}

// handleUntilDone redelivers an event as the runtime would after a transient error.
func mustHandleUntilDone(t *testing.T, h *Handler, ev cloudevents.Event) []cloudevents.Event {
	t.Helper()
	outs, err := handleUntilDone(t, h, ev)
	require.NoError(t, err)
	return outs
}

func TestWeComContactMessages(t *testing.T) {
	ext := member.StoredIdentity{Type: "wecom_external_userid", Scope: "corp-1", Value: "wmEXT1", Key: "k1"}
	otherCorp := member.StoredIdentity{Type: "wecom_external_userid", Scope: "corp-2", Value: "wmEXT2", Key: "k2"}
	busy := `{"errcode":-1,"errmsg":"system busy"}`
	tests := []struct {
		name         string
		identities   []member.StoredIdentity
		answers      []string
		expireOn     int
		wantType     string
		wantAttempts int
		wantSent     int
		wantTokens   int
		wantReason   string
	}{
		{"sent", []member.StoredIdentity{otherCorp, ext}, nil, 0, events.NotificationSent, 1, 1, 1, ""},
		{"long text is cut to 4000 bytes", []member.StoredIdentity{ext}, nil, 0, events.NotificationSent, 1, 1, 1, ""},
		{"expired token is refreshed once", []member.StoredIdentity{ext}, nil, 1, events.NotificationSent, 1, 1, 2, ""},
		{"system busy is retried", []member.StoredIdentity{ext}, []string{busy}, 0, events.NotificationSent, 2, 2, 1, ""},
		{"busy until max attempts fails", []member.StoredIdentity{ext}, []string{busy, busy, busy}, 0, events.NotificationFailed, 3, 3, 1, "-1"},
		{"invalid external user is rejected", []member.StoredIdentity{ext}, []string{`{"errcode":40096,"errmsg":"invalid external userid"}`}, 0, events.NotificationFailed, 1, 1, 1, "40096"},
		{"not a contact of the sender is rejected", []member.StoredIdentity{ext}, []string{`{"errcode":0,"errmsg":"ok","fail_list":["wmEXT1"]}`}, 0, events.NotificationFailed, 1, 1, 1, "fail_list"},
		{"no contact in this corp", []member.StoredIdentity{otherCorp}, nil, 0, events.NotificationSuppressed, 1, 0, 0, "no_address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wc := &wecomContactServer{t: t, corpID: "corp-1", secret: "contact-secret", answers: tt.answers, expireOn: tt.expireOn}
			srv := httptest.NewServer(wc)
			defer srv.Close()
			h, s := newHandler(t, nil, "outbox")
			api := NewWeCom(WeCom{URL: srv.URL, CorpID: "corp-1", Secret: "contact-secret", Client: srv.Client(), Now: func() time.Time { return now }})
			h.Sinks = map[string]any{"wecom": WeComContact{API: api, Sender: "guide-1", Members: s}}
			require.NoError(t, s.Set(context.Background(), member.Members, alice, member.Member{OneID: alice, Identities: tt.identities}))

			text, want := "双11会员日", "双11会员日"
			if strings.HasPrefix(tt.name, "long") {
				text, want = strings.Repeat("会员日", 500), cutBytes(strings.Repeat("会员日", 500), 4000)
			}
			ev := channelRequest(t, "c1", "wecom", map[string]string{"text": text})
			typ, d := outcome(t, mustHandleUntilDone(t, h, ev))
			assert.Equal(t, tt.wantType, typ, d.Reason)
			assert.Equal(t, tt.wantAttempts, d.Attempts)
			assert.Contains(t, d.Reason, tt.wantReason)
			require.Len(t, wc.got, tt.wantSent)
			assert.Equal(t, tt.wantTokens, wc.tokens.issued)
			for _, got := range wc.got {
				assert.Equal(t, map[string]any{"chat_type": "single", "external_userid": []any{"wmEXT1"}, "sender": "guide-1",
					"text": map[string]any{"content": want}}, got)
			}
			mustHandleUntilDone(t, h, ev)
			assert.Len(t, wc.got, tt.wantSent, "a finished notification is never sent again")
		})
	}
}

func TestCutBytes(t *testing.T) {
	for _, tt := range []struct {
		in    string
		limit int
		want  string
	}{
		{"会员日", 9, "会员日"},
		{"会员日", 8, "会…"},
		{"会员日", 6, "会…"},
		{"会员日", 5, "…"},
		{"abcdef", 5, "ab…"},
	} {
		got := cutBytes(tt.in, tt.limit)
		assert.Equal(t, tt.want, got, "%q to %d", tt.in, tt.limit)
		assert.LessOrEqual(t, len(got), tt.limit)
		assert.True(t, utf8.ValidString(got))
	}
}

func TestWeComContactWithoutAddressSaysSo(t *testing.T) {
	_, s := newHandler(t, nil, "outbox")
	sink := WeComContact{API: NewWeCom(WeCom{CorpID: "corp-1", Now: time.Now}), Members: s}
	err := sink.Deliver(context.Background(), Notification{ID: "n1", OneID: alice, Text: "hi"})
	require.ErrorIs(t, err, ErrNoAddress, "an unknown member has no address")
	require.ErrorIs(t, err, ErrRejected, "and retrying cannot change that")
}
