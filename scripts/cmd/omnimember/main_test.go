package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnimember/omnimember/functions/campaign"
	"github.com/omnimember/omnimember/scripts/demo"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// syncBuffer is run's stdout, written by run while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// output is what one make run printed and logged.
type output struct {
	stdout, log, dir string
}

// makeRun runs make run's body with the demo on a fresh data directory until it has printed its
// examples, then stops it as Ctrl-C would.
func makeRun(t *testing.T, env map[string]string) output {
	dir := t.TempDir()
	for k, v := range map[string]string{"OMNIMEMBER_DATA": dir, "OMNIMEMBER_HTTP_ADDR": "127.0.0.1:0", "OMNIMEMBER_NATS_PORT": "0", "OMNIMEMBER_DEMO": "1"} {
		t.Setenv(k, v)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, out) }()
	deadline := time.After(3 * time.Minute)
	for printed := false; !printed; {
		select {
		case err := <-done:
			t.Fatalf("make run stopped before printing its examples: %v\n%s", err, out.String())
		case <-deadline:
			t.Fatalf("make run printed no examples within 3 minutes:\n%s", out.String())
		case <-time.After(20 * time.Millisecond): // polling the output: nothing to wait on
			printed = strings.Contains(out.String(), "Marketer console")
		}
	}
	cancel()
	require.NoError(t, <-done)
	log, err := os.ReadFile(filepath.Join(dir, "omnimember.log"))
	require.NoError(t, err)
	require.Contains(t, out.String(), "One member per person", "the demo ran")
	return output{stdout: out.String(), log: string(log), dir: dir}
}

// anyMobile is an 11-digit mainland mobile number standing alone (not inside a longer number
// such as an order id).
var anyMobile = regexp.MustCompile(`(^|[^0-9])1[3-9][0-9]{9}([^0-9]|$)`)

// demoPhones are the demo people's numbers in the forms the demo sends them.
func demoPhones() []string {
	var out []string
	for _, p := range demo.People {
		out = append(out, p.Phone, p.Phone[:3]+"-"+p.Phone[3:7]+"-"+p.Phone[7:], p.Phone[:3]+" "+p.Phone[3:7]+" "+p.Phone[7:])
	}
	return out
}

// secretsIn reads every secret of the data directory but the generated tokens: the webhook
// secrets, the PII key and the JetStream key.
func secretsIn(t *testing.T, dir string) []string {
	raw, err := os.ReadFile(filepath.Join(dir, devWebhookSecretsFile))
	require.NoError(t, err)
	var hooks map[string]map[string]map[string]string
	require.NoError(t, json.Unmarshal(raw, &hooks))
	var out []string
	for _, shops := range hooks {
		for _, shop := range shops {
			for _, v := range shop {
				out = append(out, v)
			}
		}
	}
	for _, f := range []string{"dev-pii.key", "dev-jetstream.key"} {
		raw, err := os.ReadFile(filepath.Join(dir, f))
		require.NoError(t, err)
		_, key, _ := strings.Cut(strings.TrimSpace(string(raw)), ":") // the pii key has an id: before it
		if key == "" {
			key = strings.TrimSpace(string(raw))
		}
		out = append(out, key)
	}
	return out
}

var tokenFiles = []string{"dev-admin.token", "dev-api.token", "dev-marketer.token", "dev-sender.token", "dev-reader.token"}

// assertAbsent fails when text holds needle, without printing all of text.
func assertAbsent(t *testing.T, text, needle, format string, args ...any) {
	t.Helper()
	if i := strings.Index(text, needle); i >= 0 {
		t.Errorf(format+": …%s…", append(args, text[max(0, i-40):min(len(text), i+len(needle)+40)])...)
	}
}

// assertClean holds what every run must never show: no phone, no secret.
func assertClean(t *testing.T, o output) {
	for where, text := range map[string]string{"stdout": o.stdout, "log": o.log} {
		for _, phone := range demoPhones() {
			assertAbsent(t, text, phone, "%s shows a demo phone", where)
		}
		assert.False(t, anyMobile.MatchString(text), "%s shows a mobile number: %q", where, anyMobile.FindString(text))
		for _, secret := range secretsIn(t, o.dir) {
			assertAbsent(t, text, secret, "%s shows a webhook or key secret", where)
		}
	}
}

// TestMakeRunOutputHoldsNoPhoneTokenOrSecret runs make run with the demo (as a new user does,
// then with every token given through the environment) and reads its stdout and its log.
func TestMakeRunOutputHoldsNoPhoneTokenOrSecret(t *testing.T) {
	t.Run("generated tokens", func(t *testing.T) {
		o := makeRun(t, map[string]string{runtime.AdminTokenEnv: "", runtime.APITokenEnv: "", campaign.MarketerTokenEnv: "", senderTokenEnv: "", readerTokenEnv: ""})
		assertClean(t, o)
		for _, f := range tokenFiles {
			raw, err := os.ReadFile(filepath.Join(o.dir, f))
			require.NoError(t, err)
			token := strings.TrimSpace(string(raw))
			assertAbsent(t, o.log, token, "the log shows %s", f)
			assert.Contains(t, o.stdout, token, "the examples use %s", f)
			for _, line := range strings.Split(o.stdout, "\n") {
				if strings.Contains(line, token) {
					assert.True(t, strings.Contains(line, "Authorization: Bearer "+token) || strings.Contains(line, "/console/#token="+token),
						"a generated token is printed only in a credential of an example: %q", line)
				}
			}
		}
		t.Run("raw phone hashes", func(t *testing.T) { assertNoRawPhoneHashes(t, o) })
	})
	t.Run("tokens from the environment", func(t *testing.T) {
		env := map[string]string{runtime.AdminTokenEnv: "env-admin-token-0123456789", runtime.APITokenEnv: "env-api-token-0123456789",
			campaign.MarketerTokenEnv: "env-marketer-token-0123456789", senderTokenEnv: "env-sender-token-0123456789", readerTokenEnv: "env-reader-token-0123456789"}
		o := makeRun(t, env)
		assertClean(t, o)
		for name, token := range env {
			assertAbsent(t, o.stdout, token, "stdout shows %s", name)
			assertAbsent(t, o.log, token, "the log shows %s", name)
			assert.Contains(t, o.stdout, "$"+name, "the examples name %s instead", name)
			_, err := os.Stat(filepath.Join(o.dir, "dev-"+strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(name, "OMNIMEMBER_"), "_TOKEN"))+".token"))
			assert.ErrorIs(t, err, os.ErrNotExist, "no development token is generated for %s", name)
		}
	})
}

// assertNoRawPhoneHashes: no unsalted SHA-256 or MD5 of a demo phone, whole or as the 12-character
// prefix the demo's summary prints, since either gives the number back by enumeration.
func assertNoRawPhoneHashes(t *testing.T, o output) {
	for _, p := range demo.People {
		sha := sha256.Sum256([]byte(p.Phone))
		md := md5.Sum([]byte(p.Phone))
		for _, h := range []string{hex.EncodeToString(sha[:]), hex.EncodeToString(md[:])} {
			for where, text := range map[string]string{"stdout": o.stdout, "log": o.log} {
				assertAbsent(t, text, h[:12], "%s shows a raw hash of %s's phone", where, p.Name)
			}
		}
	}
}
