package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSMSConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "sms.json")
	require.NoError(t, os.WriteFile(good, []byte(`{"winback_coupon": {"code": "SMS_900001", "params": ["coupon", "optOut"]}}`), 0o600))
	bad := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"winback_coupon": {"code": ""}}`), 0o600))
	aliyun := map[string]string{"NOTIFY_SMS_PROVIDER": "aliyun", "SMS_ALIYUN_ACCESS_KEY_ID": "LTAI5tExampleKeyId",
		"SMS_ALIYUN_ACCESS_KEY_SECRET": "very-secret-value", "SMS_ALIYUN_SIGN_NAME": "山野咖啡", "NOTIFY_SMS_TEMPLATES_FILE": good}
	with := func(over map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range aliyun {
			out[k] = v
		}
		for k, v := range over {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"off", map[string]string{"NOTIFY_SMS_PROVIDER": ""}, ""},
		{"aliyun", aliyun, ""},
		{"tencent", map[string]string{"NOTIFY_SMS_PROVIDER": "tencent", "SMS_TENCENT_SECRET_ID": "AKIDexample", "SMS_TENCENT_SECRET_KEY": "k",
			"SMS_TENCENT_SDK_APP_ID": "1400000001", "SMS_TENCENT_SIGN_NAME": "山野咖啡", "NOTIFY_SMS_TEMPLATES_FILE": good}, ""},
		{"unknown provider", map[string]string{"NOTIFY_SMS_PROVIDER": "huawei"}, "NOTIFY_SMS_PROVIDER"},
		{"missing secret", with(map[string]string{"SMS_ALIYUN_ACCESS_KEY_SECRET": ""}), "SMS_ALIYUN_ACCESS_KEY_SECRET"},
		{"bad endpoint", with(map[string]string{"SMS_ALIYUN_ENDPOINT": "dysmsapi"}), "SMS_ALIYUN_ENDPOINT"},
		{"no templates", with(map[string]string{"NOTIFY_SMS_TEMPLATES_FILE": ""}), "NOTIFY_SMS_TEMPLATES_FILE"},
		{"bad templates", with(map[string]string{"NOTIFY_SMS_TEMPLATES_FILE": bad}), "empty code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"NOTIFY_SMS_PROVIDER", "SMS_ALIYUN_ACCESS_KEY_ID", "SMS_ALIYUN_ACCESS_KEY_SECRET", "SMS_ALIYUN_SIGN_NAME",
				"SMS_ALIYUN_ENDPOINT", "SMS_TENCENT_SECRET_ID", "SMS_TENCENT_SECRET_KEY", "SMS_TENCENT_SDK_APP_ID", "SMS_TENCENT_SIGN_NAME",
				"NOTIFY_SMS_TEMPLATES_FILE"} {
				t.Setenv(k, tt.env[k])
			}
			c, err := loadSMSConfig()
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			var buf bytes.Buffer
			slog.New(slog.NewJSONHandler(&buf, nil)).Info("starting", "sms", c)
			for _, secret := range []string{"very-secret-value", "LTAI5tExampleKeyId", "AKIDexample"} {
				assert.NotContains(t, buf.String(), secret, "secrets and key ids are not logged in full")
			}
		})
	}
}

func TestContactConfig(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "contact.json")
	require.NoError(t, os.WriteFile(rules, []byte(`{"timeZone": "Asia/Shanghai", "defaultConsent": {"*": true}, "marketingPerDay": 3}`), 0o600))
	tests := []struct {
		name, file, poll, token, wantErr string
		wantCap                          int
	}{
		{"defaults", "", "", "", "", 1},
		{"file", rules, "5s", "callback-token-1234", "", 3},
		{"missing file", filepath.Join(t.TempDir(), "nope.json"), "", "", "NOTIFY_CONTACT_RULES_FILE", 0},
		{"bad poll", "", "fast", "", "NOTIFY_DEFERRED_POLL", 0},
		{"short token", "", "", "short", "NOTIFY_SMS_CALLBACK_TOKEN", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("NOTIFY_CONTACT_RULES_FILE", tt.file)
			t.Setenv("NOTIFY_DEFERRED_POLL", tt.poll)
			t.Setenv("NOTIFY_SMS_CALLBACK_TOKEN", tt.token)
			c, err := loadContactConfig()
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantCap, c.Rules.MarketingPerDay)
		})
	}
}
