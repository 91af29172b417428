package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/omnimember/omnimember/functions/notify"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type noMembers struct{}

func (noMembers) Get(context.Context, string, string, any) error { return nil }

func full(t *testing.T) map[string]string {
	mapping := filepath.Join(t.TempDir(), "subscribe.json")
	require.NoError(t, os.WriteFile(mapping, []byte(`{"generic": {"templateId": "T1", "data": {"thing1": "{{message}}"}}}`), 0o600))
	return map[string]string{
		"NOTIFY_WEBHOOK_URL": "https://hooks.brand.example/member", "NOTIFY_WEBHOOK_SECRET": "whsec_0123456789abcdef",
		"NOTIFY_WECOM_CORP_ID": "ww-corp", "NOTIFY_WECOM_SECRET": "wecom-contact-secret", "NOTIFY_WECOM_SENDER": "guide-1",
		"NOTIFY_MINIPROGRAM_APP_ID": "wx-app", "NOTIFY_MINIPROGRAM_SECRET": "mini-secret", "NOTIFY_MINIPROGRAM_TEMPLATES_FILE": mapping,
		"NOTIFY_SMTP_ADDR": "smtp.brand.example:465", "NOTIFY_SMTP_USERNAME": "notify@brand.example", "NOTIFY_SMTP_PASSWORD": "smtp-password",
		"NOTIFY_SMTP_FROM": "品牌会员中心 <member@brand.example>",
	}
}

func TestChannelsFromEnv(t *testing.T) {
	c, err := loadChannels(func(string) string { return "" })
	require.NoError(t, err)
	assert.Equal(t, []string{"outbox"}, c.names(), "nothing configured: the outbox only")

	env := full(t)
	c, err = loadChannels(func(k string) string { return env[k] })
	require.NoError(t, err)
	assert.Equal(t, []string{"email", "miniprogram", "outbox", "webhook", "wecom"}, c.names())
	assert.Equal(t, "implicit", c.SMTPTLS, "port 465 speaks TLS from the start")
	sinks := c.sinks(http.DefaultClient, noMembers{}, nil)
	var keys []string
	for k := range sinks {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	assert.Equal(t, []string{"email", "miniprogram", "webhook", "wecom"}, keys)
	assert.True(t, sinks["email"].(notify.Email).ImplicitTLS)

	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("start", c.logValue())
	for _, secret := range []string{"whsec_0123456789abcdef", "wecom-contact-secret", "mini-secret", "smtp-password", "notify@brand.example", "member@brand.example"} {
		assert.NotContains(t, logged.String(), secret)
	}
	assert.Contains(t, logged.String(), "m***@brand.example")
}

// oneContact is a member store holding one member with a WeCom external contact in ww-corp.
type oneContact struct{}

func (oneContact) Get(_ context.Context, _, id string, dst any) error {
	*dst.(*member.Member) = member.Member{OneID: id, Identities: []member.StoredIdentity{{Type: "wecom_external_userid", Scope: "ww-corp", Value: "wmEXT"}}}
	return nil
}

// TestChannelsShareTheWeComTokenCacheWithTheSync counts gettoken calls at a WeCom stand-in: the
// level sync and the messages, configured with the same corp and secret, fetch one token.
func TestChannelsShareTheWeComTokenCacheWithTheSync(t *testing.T) {
	var mu sync.Mutex
	gettoken := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path == "/cgi-bin/gettoken" {
			gettoken++
			_, _ = io.WriteString(w, `{"errcode":0,"access_token":"tok","expires_in":7200}`)
			return
		}
		_, _ = io.WriteString(w, `{"errcode":0,"errmsg":"ok"}`)
	}))
	defer srv.Close()
	for _, tt := range []struct {
		name         string
		secret       string
		wantGettoken int
	}{{"same corp and secret", "wecom-contact-secret", 1}, {"another secret", "sync-secret", 2}} {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			gettoken = 0
			mu.Unlock()
			env := full(t)
			env["NOTIFY_WECOM_URL"] = srv.URL
			c, err := loadChannels(func(k string) string { return env[k] })
			require.NoError(t, err)
			syncSink := notify.NewWeCom(notify.WeCom{URL: srv.URL, CorpID: "ww-corp", Secret: tt.secret, TagByLevel: map[string]string{"gold": "t1"},
				Client: srv.Client(), Now: time.Now})
			contact := c.sinks(srv.Client(), oneContact{}, map[string]any{notify.SyncWeCom: syncSink})["wecom"].(notify.Sink)
			require.NoError(t, syncSink.Deliver(context.Background(), notify.Notification{Vars: map[string]string{"level": "gold", "identity": "wmEXT"}}))
			require.NoError(t, contact.Deliver(context.Background(), notify.Notification{ID: "n1", OneID: "om_x", Text: "hi"}))
			mu.Lock()
			defer mu.Unlock()
			assert.Equal(t, tt.wantGettoken, gettoken)
		})
	}
}

func TestChannelsRefuseIncompleteSettings(t *testing.T) {
	tests := []struct {
		name   string
		change map[string]string
		want   string
	}{
		{"short webhook secret", map[string]string{"NOTIFY_WEBHOOK_SECRET": "short"}, "NOTIFY_WEBHOOK_SECRET"},
		{"webhook not a URL", map[string]string{"NOTIFY_WEBHOOK_URL": "ftp://x"}, "NOTIFY_WEBHOOK_URL"},
		{"wecom without secret", map[string]string{"NOTIFY_WECOM_SECRET": ""}, "NOTIFY_WECOM_SECRET"},
		{"mini-program without mapping", map[string]string{"NOTIFY_MINIPROGRAM_TEMPLATES_FILE": ""}, "NOTIFY_MINIPROGRAM_TEMPLATES_FILE"},
		{"mapping file missing", map[string]string{"NOTIFY_MINIPROGRAM_TEMPLATES_FILE": "/nonexistent.json"}, "NOTIFY_MINIPROGRAM_TEMPLATES_FILE"},
		{"bad mini-program state", map[string]string{"NOTIFY_MINIPROGRAM_STATE": "prod"}, "NOTIFY_MINIPROGRAM_STATE"},
		{"smtp without port", map[string]string{"NOTIFY_SMTP_ADDR": "smtp.brand.example"}, "NOTIFY_SMTP_ADDR"},
		{"smtp user without password", map[string]string{"NOTIFY_SMTP_PASSWORD": ""}, "NOTIFY_SMTP_PASSWORD"},
		{"smtp bad from", map[string]string{"NOTIFY_SMTP_FROM": "not an address"}, "NOTIFY_SMTP_FROM"},
		{"smtp bad tls", map[string]string{"NOTIFY_SMTP_TLS": "none"}, "NOTIFY_SMTP_TLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := full(t)
			for k, v := range tt.change {
				env[k] = v
			}
			_, err := loadChannels(func(k string) string { return env[k] })
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestDefaultChannelMustBeConfigured(t *testing.T) {
	c := config{Channel: "email", Locale: "zh-CN"}
	assert.ErrorContains(t, c.validate(), "NOTIFY_CHANNEL")
	c.Channels.SMTPAddr = "smtp.brand.example:587"
	assert.NoError(t, c.validate())
}
