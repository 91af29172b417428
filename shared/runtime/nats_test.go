package runtime

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/broker/brokertest"
	"github.com/omnimember/omnimember/shared/stream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// userSeed writes a fresh user nkey seed to a file and returns its path and public key.
func userSeed(t *testing.T) (path, public string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	require.NoError(t, err)
	seed, err := kp.Seed()
	require.NoError(t, err)
	public, err = kp.PublicKey()
	require.NoError(t, err)
	path = filepath.Join(t.TempDir(), "seed.nk")
	require.NoError(t, os.WriteFile(path, seed, 0o600))
	return path, public
}

func TestNATSSettingsFromEnv(t *testing.T) {
	seed, _ := userSeed(t)
	tlsFiles := brokertest.TLS(t, "localhost")
	account, err := nkeys.CreateAccount()
	require.NoError(t, err)
	accountSeed, err := account.Seed()
	require.NoError(t, err)
	notUser := filepath.Join(t.TempDir(), "account.nk")
	require.NoError(t, os.WriteFile(notUser, accountSeed, 0o600))

	t.Setenv("NATS_URL", "tls://nats.omnimember.svc.cluster.local:4222")
	t.Setenv("NATS_NKEY", seed)
	t.Setenv("NATS_CA", tlsFiles.CA)
	t.Setenv("NATS_INBOX_PREFIX", "_INBOX_match")
	c, err := FromEnv()
	require.NoError(t, err)
	assert.Equal(t, Config{NATSNKey: seed, NATSCA: tlsFiles.CA, NATSInboxPrefix: "_INBOX_match"},
		Config{NATSNKey: c.NATSNKey, NATSCA: c.NATSCA, NATSInboxPrefix: c.NATSInboxPrefix})
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("start", "config", c)
	assert.NotContains(t, buf.String(), seed, "the seed's path is masked in the start line")
	assert.Contains(t, buf.String(), `"natsNKey":"***"`)

	tests := []struct{ name, variable, value, want string }{
		{"seed file missing", "NATS_NKEY", filepath.Join(t.TempDir(), "none.nk"), "NATS_NKEY"},
		{"an account seed, not a user's", "NATS_NKEY", notUser, "NATS_NKEY"},
		{"CA file missing", "NATS_CA", filepath.Join(t.TempDir(), "none.crt"), "NATS_CA"},
		{"CA file without a certificate", "NATS_CA", tlsFiles.Key, "NATS_CA"},
		{"creds and nkey both", "NATS_CREDS", "/var/run/secrets/nats.creds", "NATS_CREDS and NATS_NKEY"},
		{"inbox prefix with a wildcard", "NATS_INBOX_PREFIX", "_INBOX.>", "NATS_INBOX_PREFIX"},
		{"inbox prefix ending in a dot", "NATS_INBOX_PREFIX", "_INBOX_match.", "NATS_INBOX_PREFIX"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(tt.variable, tt.value)
			_, err := FromEnv()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want, "got %q, want the variable named", err)
		})
	}
}

// TestRuntimeConnectsWithItsNKeyOverVerifiedTLS: against a server that requires TLS and knows one
// nkey user allowed only its own inbox, the runtime connects with NATS_NKEY, NATS_CA and
// NATS_INBOX_PREFIX and creates the streams; without the CA, with another CA, without the
// seed or with the default inbox it does not get through.
func TestRuntimeConnectsWithItsNKeyOverVerifiedTLS(t *testing.T) {
	tlsFiles := brokertest.TLS(t, "localhost", "127.0.0.1")
	other := brokertest.TLS(t, "localhost", "127.0.0.1")
	seed, public := userSeed(t)
	strangerSeed, _ := userSeed(t)
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: tlsFiles.Cert, KeyFile: tlsFiles.Key})
	require.NoError(t, err)
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
		TLSConfig: tc, TLSTimeout: 2,
		Nkeys: []*server.NkeyUser{{Nkey: public, Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{"$JS.API.STREAM.CREATE.*", "$JS.API.STREAM.UPDATE.*"}},
			Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX_tester.>"}}}}}})
	require.NoError(t, err)
	srv.Start()
	t.Cleanup(srv.Shutdown)
	require.True(t, srv.ReadyForConnections(10*time.Second))

	good := Defaults()
	good.NATSURL, good.NATSNKey, good.NATSCA, good.NATSInboxPrefix = "tls://"+srv.Addr().String(), seed, tlsFiles.CA, "_INBOX_tester"
	tests := []struct {
		name   string
		change func(c *Config)
		ok     bool
	}{
		{"its seed, the CA, its inbox", func(*Config) {}, true},
		{"no CA: the test CA is no system root", func(c *Config) { c.NATSCA = "" }, false},
		{"another CA", func(c *Config) { c.NATSCA = other.CA }, false},
		{"no user", func(c *Config) { c.NATSNKey = "" }, false},
		{"a stranger's seed", func(c *Config) { c.NATSNKey = strangerSeed }, false},
		{"plain nats:// without a CA", func(c *Config) { c.NATSURL, c.NATSCA = "nats://"+srv.Addr().String(), "" }, false},
		{"the default inbox, which the user may not read", func(c *Config) { c.NATSInboxPrefix = "" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.change(&cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			rt, err := New(ctx, cfg, nil, slog.New(slog.NewJSONHandler(io.Discard, nil)))
			if tt.ok {
				require.NoError(t, err, "stream.Ensure needs only STREAM.CREATE and STREAM.UPDATE")
				rt.Close()
				return
			}
			if err == nil {
				rt.Close()
			}
			assert.Error(t, err, "got a runtime, want refused")
		})
	}
}

// TestPublisherRefusesTypesOutsideEmits: a function that declares what it emits cannot publish
// anything else; the event is dead-lettered with the reason, nothing reaches the stream.
func TestPublisherRefusesTypesOutsideEmits(t *testing.T) {
	nc := brokertest.Connect(t, brokertest.Start(t))
	emit := func(typ string) Handler {
		return func(_ context.Context, in cloudevents.Event) ([]cloudevents.Event, error) {
			ev, err := events.Example(typ)
			if err != nil {
				return nil, err
			}
			ev.SetID("out-" + in.ID())
			return []cloudevents.Event{ev}, nil
		}
	}
	fns := []Function{
		{Name: "declared", Consumes: []string{events.OrderPaid}, Emits: []string{events.TierChanged}, Handle: emit(events.TierChanged)},
		{Name: "undeclared", Consumes: []string{events.OrderPaid}, Emits: []string{events.TierChanged}, Handle: emit(events.PointsAwarded)},
	}
	h := startHarness(t, nc, testConfig(), fns...)
	brokertest.Publish(t, h.js, events.OrderPaid, orderEvent(t, "order-emits"))
	require.Eventually(t, func() bool {
		dead, err := stream.ListDeadLetters(context.Background(), h.js, "undeclared")
		return err == nil && len(dead) == 1 && strings.Contains(dead[0].Reason, "Emits")
	}, 10*time.Second, 10*time.Millisecond, "the undeclared type is dead-lettered with the reason")
	require.Eventually(t, func() bool { return len(brokertest.Events(t, h.js, stream.Events, events.TierChanged)) == 1 },
		10*time.Second, 10*time.Millisecond, "the declared type is published")
	assert.Empty(t, brokertest.Events(t, h.js, stream.Events, events.PointsAwarded), "nothing undeclared reached the stream")

	bad := Function{Name: "typo", Emits: []string{"omnimember.points.awared"}}
	assert.ErrorContains(t, bad.Validate(), "emits unknown event type", "an unknown type in Emits is refused at start")
}
