package ingest

import (
	"bytes"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestPollConfigFromEnv(t *testing.T) {
	off, err := PollConfigFromEnv(env(nil))
	require.NoError(t, err)
	assert.Nil(t, off.TMC, "off when TMC_APP_KEY is unset")
	assert.Empty(t, off.Pollers(slog.Default()))

	c, err := PollConfigFromEnv(env(map[string]string{"TMC_APP_KEY": "12497914", "TMC_APP_SECRET": "s3cr3t-value",
		"TMC_GROUP": "vip", "TMC_POLL_INTERVAL": "250ms", "TMC_QUANTITY": "200", "TMC_CHANNEL": "taobao"}))
	require.NoError(t, err)
	want := TMCConfig{AppKey: "12497914", Secret: "s3cr3t-value", Group: "vip", URL: DefaultTMC().URL, Interval: 250 * time.Millisecond,
		Quantity: 200, Channel: "taobao", SignMethod: "hmac-sha256"}
	assert.Equal(t, want, *c.TMC)
	require.Len(t, c.Pollers(slog.Default()), 1)
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("start", "pollers", c)
	assert.NotContains(t, logged.String(), "s3cr3t-value", "the secret is masked")
	assert.Contains(t, logged.String(), `"appKey":"12497914"`)

	for _, bad := range []map[string]string{
		{"TMC_APP_KEY": "k"},
		{"TMC_APP_KEY": "k", "TMC_APP_SECRET": "s", "TMC_QUANTITY": "5"},
		{"TMC_APP_KEY": "k", "TMC_APP_SECRET": "s", "TMC_POLL_INTERVAL": "soon"},
		{"TMC_APP_KEY": "k", "TMC_APP_SECRET": "s", "TMC_URL": "ftp://x"},
		{"TMC_APP_KEY": "k", "TMC_APP_SECRET": "s", "TMC_SIGN_METHOD": "sha1"},
		{"TMC_APP_KEY": "k", "TMC_APP_SECRET": "s", "TMC_CHANNEL": "jd"},
	} {
		_, err := PollConfigFromEnv(env(bad))
		assert.Error(t, err, "%v", bad)
	}
}

func TestJDPollConfigFromEnv(t *testing.T) {
	c, err := PollConfigFromEnv(env(map[string]string{"JD_APP_KEY": "jdkey", "JD_APP_SECRET": "jd-s3cret", "JD_ACCESS_TOKEN": "jd-t0ken",
		"JD_OVERLAP": "10m", "JD_PAGE_SIZE": "50"}))
	require.NoError(t, err)
	require.NotNil(t, c.JD)
	assert.Nil(t, c.TMC)
	want := DefaultJD()
	want.AppKey, want.Secret, want.AccessToken, want.Overlap, want.PageSize = "jdkey", "jd-s3cret", "jd-t0ken", 10*time.Minute, 50
	assert.Equal(t, want, *c.JD)
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("start", "pollers", c)
	assert.NotContains(t, logged.String(), "jd-s3cret")
	assert.NotContains(t, logged.String(), "jd-t0ken")
	for _, bad := range []map[string]string{
		{"JD_APP_KEY": "k", "JD_APP_SECRET": "s"},
		{"JD_APP_KEY": "k", "JD_APP_SECRET": "s", "JD_ACCESS_TOKEN": "t", "JD_OVERLAP": "2h"},
		{"JD_APP_KEY": "k", "JD_APP_SECRET": "s", "JD_ACCESS_TOKEN": "t", "JD_PAGE_SIZE": "500"},
		{"JD_APP_KEY": "k", "JD_APP_SECRET": "s", "JD_ACCESS_TOKEN": "t", "JD_WINDOW": "-1m"},
	} {
		_, err := PollConfigFromEnv(env(bad))
		assert.Error(t, err, "%v", bad)
	}
}

func TestBackoff(t *testing.T) {
	for _, c := range []struct {
		failures int
		want     time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {4, 8 * time.Second}, {30, maxBackoff}} {
		assert.Equal(t, c.want, backoff(10*time.Millisecond, c.failures), "after %d failures: got, want", c.failures)
	}
}
