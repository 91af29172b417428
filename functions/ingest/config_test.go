package ingest

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/omnimember/omnimember/shared/platform"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSecrets(t *testing.T) {
	tests := []struct {
		name, raw string
		want      Secrets
		wantErr   string
	}{
		{"two platforms, two shops", `{"pos":{"store-1":{"secret":"a"},"store-2":{"secret":"b"}},"app":{"web":{"secret":"c"}}}`,
			Secrets{"pos": {"store-1": {"secret": "a"}, "store-2": {"secret": "b"}}, "app": {"web": {"secret": "c"}}}, ""},
		{"empty object", `{}`, Secrets{}, ""},
		{"not JSON", `pos=1`, nil, "want {"},
		{"trailing data", `{} {}`, nil, "trailing data"},
		{"number value", `{"pos":{"s":{"secret":1}}}`, nil, "want {"},
		{"bad platform name", `{"POS":{"s":{"secret":"a"}}}`, nil, `platform "POS"`},
		{"empty shop key", `{"pos":{"":{"secret":"a"}}}`, nil, "empty shop key"},
		{"no value", `{"pos":{"s":{"secret":""}}}`, nil, `shop "s" has no non-empty value`},
		{"null shop", `{"pos":{"s":null}}`, nil, `shop "s" has no non-empty value`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSecrets([]byte(tc.raw))
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestSecretsFromEnv(t *testing.T) {
	file := filepath.Join(t.TempDir(), "secrets.json")
	require.NoError(t, os.WriteFile(file, []byte(`{"pos":{"from-file":{"secret":"f"}}}`), 0o600))
	tests := []struct {
		name    string
		env     map[string]string
		want    Secrets
		wantErr string
	}{
		{"none", nil, Secrets{}, ""},
		{"variable", map[string]string{EnvWebhookSecrets: `{"pos":{"s":{"secret":"v"}}}`}, Secrets{"pos": {"s": {"secret": "v"}}}, ""},
		{"file wins", map[string]string{EnvWebhookSecrets: `{"pos":{"s":{"secret":"v"}}}`, EnvWebhookSecretsFile: file},
			Secrets{"pos": {"from-file": {"secret": "f"}}}, ""},
		{"missing file: the optional secret is absent, no shop", map[string]string{EnvWebhookSecretsFile: file + ".nope"}, Secrets{}, ""},
		{"unreadable file", map[string]string{EnvWebhookSecretsFile: t.TempDir()}, nil, EnvWebhookSecretsFile},
		{"bad variable", map[string]string{EnvWebhookSecrets: `{"pos":1}`}, nil, EnvWebhookSecrets},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SecretsFromEnv(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestSecretsCheckAndLogMasked(t *testing.T) {
	s := Secrets{"pos": {"store-1": {"secret": "very-secret-value", "note": "x"}}, "tmall": {"shop": {"secret": "other-secret"}}}
	err := s.Check(map[string]platform.Adapter{"pos": signedAdapter{}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"tmall"`)
	var buf strings.Builder
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("start", "webhookSecrets", s)
	got := buf.String()
	assert.Contains(t, got, `"store-1":"note,secret=***"`)
	for _, secret := range []string{"very-secret-value", "other-secret"} {
		assert.NotContains(t, got, secret, "values are never logged")
	}
}

// FuzzParseSecrets: any input either parses into secrets that all pass validation again, or errors;
// never a panic.
func FuzzParseSecrets(f *testing.F) {
	for _, seed := range []string{`{"pos":{"store-1":{"secret":"a"}}}`, `{}`, `{"pos":{"":{}}}`, `[]`, `{"a":{"b":null}}`, "\x00"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := ParseSecrets(raw)
		if err != nil {
			return
		}
		for name, shops := range s {
			require.True(t, platformName.MatchString(name), name)
			for key, shop := range shops {
				require.NotEmpty(t, strings.TrimSpace(key))
				require.True(t, hasValue(shop), fmt.Sprint(key))
			}
		}
	})
}
