package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/omnimember/omnimember/functions/notify"
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

func TestChannelsShareTheWeComTokenCacheWithTheSync(t *testing.T) {
	env := full(t)
	c, err := loadChannels(func(k string) string { return env[k] })
	require.NoError(t, err)
	sync := notify.NewWeCom(notify.WeCom{URL: "https://qyapi.weixin.qq.com", CorpID: "ww-corp", Secret: "wecom-contact-secret"})
	got := c.sinks(http.DefaultClient, noMembers{}, map[string]any{notify.SyncWeCom: sync})["wecom"].(notify.WeComContact)
	assert.Equal(t, sync, got.API, "same corp and secret: one client, one token cache")
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
