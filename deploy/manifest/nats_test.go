package manifest_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	certmanagerv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/omnimember/omnimember/deploy/natsauth"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/functions/campaign"
	"github.com/omnimember/omnimember/functions/ingest"
	"github.com/omnimember/omnimember/functions/match"
	"github.com/omnimember/omnimember/functions/notify"
	pointsaward "github.com/omnimember/omnimember/functions/points-award"
	"github.com/omnimember/omnimember/functions/profile"
	tierevaluate "github.com/omnimember/omnimember/functions/tier-evaluate"
	"github.com/omnimember/omnimember/shared/broker/brokertest"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/stream"
)

// natsAccount is the account of omnimember's streams in auth.conf (KEDA reads lag under it).
const natsAccount = "OMNIMEMBER"

// testPhone is a plaintext phone as the streams carry them (events before match, raw pushes,
// dead letters); no stored file may show it.
const testPhone = "13987654321"

// natsFunction is a function as its package declares it.
type natsFunction struct {
	name            string
	consumes, emits []string
}

// natsFunctions are every function's NATS needs, read from the functions' own packages.
var natsFunctions = []natsFunction{
	{ingest.Name, nil, ingest.Emits},
	{match.Name, match.Consumes, match.Emits},
	{pointsaward.Name, pointsaward.Consumes, pointsaward.Emits},
	{tierevaluate.Name, tierevaluate.Consumes, tierevaluate.Emits},
	{notify.Name, notify.Consumes, notify.Emits},
	{profile.Name, profile.Consumes, profile.Emits},
	{campaign.Name, campaign.Consumes, campaign.Emits},
}

// natsSetup is a rendered overlay's NATS configuration made runnable here: the config files with
// the pod's mount paths moved into a temp dir, a test CA and server certificate where cert-manager's
// would be, and fresh Secrets (natsauth.Generate, as make nats-secrets) set as the server pod's
// environment through the StatefulSet's own env references.
type natsSetup struct {
	conf   string // nats.conf
	data   string // what the data volume holds: JetStream's files
	tls    brokertest.TLSFiles
	server map[string]string // the nats-server Secret
	seeds  map[string]string // user → seed file
}

func setupNATS(t *testing.T, r *rendered) natsSetup {
	t.Helper()
	sts, ok := r.statefulSets["nats"]
	require.True(t, ok, "%s: no NATS StatefulSet", r.dir)
	cert, ok := r.certificates[natsCertificate]
	require.True(t, ok, "%s: no Certificate %s", r.dir, natsCertificate)
	serverSecret, clientSecret, err := natsauth.Generate("omnimember")
	require.NoError(t, err)
	dir := t.TempDir()
	s := natsSetup{data: filepath.Join(dir, "data"), tls: brokertest.TLS(t, append([]string{"127.0.0.1"}, cert.Spec.DNSNames...)...),
		server: serverSecret.StringData, seeds: map[string]string{}}
	local := map[string]string{"data": s.data, "run": filepath.Join(dir, "run")}
	for _, v := range sts.Spec.Template.Spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == cert.Spec.SecretName {
			local[v.Name] = s.tls.Dir
		}
	}
	c := sts.Spec.Template.Spec.Containers[0]
	confDir := filepath.Join(dir, "conf")
	replace := []string{}
	for _, m := range c.VolumeMounts {
		if m.Name == "config" {
			continue
		}
		to, ok := local[m.Name]
		require.True(t, ok, "volume %s mounted at %s: the test knows no local place for it", m.Name, m.MountPath)
		require.NoError(t, os.MkdirAll(to, 0o700))
		replace = append(replace, m.MountPath+"/", to+"/")
	}
	require.NoError(t, os.MkdirAll(confDir, 0o700))
	for name, text := range r.configMaps["nats-config"].Data {
		text = strings.NewReplacer(replace...).Replace(text)
		require.NoError(t, os.WriteFile(filepath.Join(confDir, name), []byte(text), 0o600))
	}
	s.conf = filepath.Join(confDir, "nats.conf")
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			require.Equal(t, natsauth.ServerSecret, ref.Name, "env %s", e.Name)
			v, ok := s.server[ref.Key]
			require.True(t, ok, "env %s: make nats-secrets makes no key %s", e.Name, ref.Key)
			t.Setenv(e.Name, v)
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
			t.Setenv(e.Name, "nats-0")
		}
	}
	for _, u := range natsauth.Users() {
		p := filepath.Join(dir, u+".nk")
		require.NoError(t, os.WriteFile(p, []byte(clientSecret.StringData[natsauth.SeedKey(u)]), 0o600))
		s.seeds[u] = p
	}
	return s
}

// TestNATSConfigParsesAsTheServerReadsIt feeds nats.conf and auth.conf to nats-server's own
// parser: JetStream on the persistent volume and encrypted with the Secret's key, fsync per write
// where the cluster is the production one, a route per server over verified TLS, clients on TLS
// only, one nkey user per function (and the operator) in omnimember's account, each allowed to
// publish exactly the events its package declares and to read only its own inbox.
func TestNATSConfigParsesAsTheServerReadsIt(t *testing.T) {
	tests := []struct {
		dir        string
		syncAlways bool
	}{{"../base", true}, {"../overlays/prod", true}, {"../overlays/dev", false}}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.dir), func(t *testing.T) {
			r := render(t, tt.dir)
			s := setupNATS(t, r)
			opts, err := server.ProcessConfigFile(s.conf)
			require.NoError(t, err)
			assert.True(t, opts.JetStream)
			assert.Equal(t, "nats-0", opts.ServerName)
			assert.Equal(t, tt.syncAlways, opts.SyncAlways, "sync_interval: always")
			assert.True(t, strings.HasPrefix(opts.StoreDir, s.data+"/"), "store_dir %s must be on the persistent volume", opts.StoreDir)
			assert.Equal(t, server.ChaCha, opts.JetStreamCipher, "JetStream encrypts its files")
			assert.Equal(t, s.server[natsauth.JetStreamKeyKey], opts.JetStreamKey, "with the Secret's key, read whole")
			require.NotNil(t, opts.TLSConfig, "clients speak TLS")
			assert.False(t, opts.AllowNonTLS, "no plain client connection")

			replicas := int(*r.statefulSets["nats"].Spec.Replicas)
			if replicas > 1 {
				assert.Len(t, opts.Routes, replicas, "a route to every server of the StatefulSet")
				require.NotNil(t, opts.Cluster.TLSConfig, "routes speak TLS")
				assert.Equal(t, tls.RequireAndVerifyClientCert, opts.Cluster.TLSConfig.ClientAuth, "servers verify each other")
				for _, u := range opts.Routes {
					assert.True(t, certifies(r.certificates[natsCertificate], u.Hostname()), "the certificate names route host %s", u.Hostname())
				}
			} else {
				assert.Empty(t, opts.Routes, "a lone server with routes waits for peers that never come")
			}
			checkUsers(t, s, opts)
		})
	}
}

// checkUsers: one nkey user per function and the operator, in omnimember's account, with the
// rights auth.conf means to give.
func checkUsers(t *testing.T, s natsSetup, opts *server.Options) {
	t.Helper()
	byKey := map[string]*server.NkeyUser{}
	for _, u := range opts.Nkeys {
		byKey[u.Nkey] = u
	}
	require.Len(t, opts.Nkeys, len(natsauth.Users()), "got users, want one per function and the operator")
	for _, f := range natsFunctions {
		u, ok := byKey[s.server[natsauth.PublicKeyKey(f.name)]]
		require.True(t, ok, "no user for %s", f.name)
		require.NotNil(t, u.Account)
		assert.Equal(t, natsAccount, u.Account.Name, f.name)
		require.NotNil(t, u.Permissions, f.name)
		var emits []string
		for _, subject := range u.Permissions.Publish.Allow {
			assert.NotEqual(t, ">", subject, f.name)
			assert.False(t, strings.HasPrefix(subject, "$JS.API.>") || strings.HasPrefix(subject, "$JS.API.STREAM.DELETE") ||
				strings.HasPrefix(subject, "$JS.API.STREAM.PURGE"), "%s may not %s", f.name, subject)
			if strings.HasPrefix(subject, events.Prefix) {
				emits = append(emits, subject)
			}
		}
		want := make([]string, len(f.emits))
		for i, typ := range f.emits {
			want[i] = events.Subject(typ)
		}
		assert.ElementsMatch(t, want, emits, "%s: got the events its user may publish, want its package's Emits", f.name)
		assert.Equal(t, []string{natsauth.InboxPrefix(f.name) + ".>"}, u.Permissions.Subscribe.Allow, "%s reads its own inbox only", f.name)
	}
	op, ok := byKey[s.server[natsauth.PublicKeyKey(natsauth.Operator)]]
	require.True(t, ok, "no operator user")
	assert.Equal(t, natsAccount, op.Account.Name)
}

// certifies reports whether the Certificate names host (wildcards as TLS matches them).
func certifies(c certmanagerv1.Certificate, host string) bool {
	for _, name := range c.Spec.DNSNames {
		if name == host {
			return true
		}
		if rest, ok := strings.CutPrefix(name, "*."); ok {
			if _, parent, found := strings.Cut(host, "."); found && parent == rest {
				return true
			}
		}
	}
	return false
}

// TestNATSCertificateChain: the servers' certificate is cert-manager's, issued by the CA Issuer
// whose CA is the self-signed one, names what clients dial and serves both ends of a route.
func TestNATSCertificateChain(t *testing.T) {
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			r := render(t, dir)
			c, ok := r.certificates[natsCertificate]
			require.True(t, ok)
			host := strings.TrimPrefix(r.runtimeConfig(t, "match").Data["NATS_URL"], "tls://")
			host, _, err := net.SplitHostPort(host)
			require.NoError(t, err)
			assert.True(t, certifies(c, host), "the certificate names %s, the host of NATS_URL", host)
			assert.Subset(t, c.Spec.Usages, []certmanagerv1.KeyUsage{certmanagerv1.UsageServerAuth, certmanagerv1.UsageClientAuth})
			issuer, ok := r.issuers[c.Spec.IssuerRef.Name]
			require.True(t, ok, "issuer %s is rendered", c.Spec.IssuerRef.Name)
			require.NotNil(t, issuer.Spec.CA, "a CA issuer")
			var ca *certmanagerv1.Certificate
			for _, cert := range r.certificates {
				if cert.Spec.SecretName == issuer.Spec.CA.SecretName {
					ca = &cert
				}
			}
			require.NotNil(t, ca, "a Certificate writes the CA Secret %s", issuer.Spec.CA.SecretName)
			assert.True(t, ca.Spec.IsCA)
			root, ok := r.issuers[ca.Spec.IssuerRef.Name]
			require.True(t, ok)
			assert.NotNil(t, root.Spec.SelfSigned)
			mounted := false
			for _, v := range r.statefulSets["nats"].Spec.Template.Spec.Volumes {
				mounted = mounted || (v.Secret != nil && v.Secret.SecretName == c.Spec.SecretName)
			}
			assert.True(t, mounted, "the NATS servers mount the certificate's Secret %s", c.Spec.SecretName)
		})
	}
}

// startNATS runs a server from opts on free local ports, alone (a cluster's routes point at pods).
func startNATS(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	opts.Host, opts.Port, opts.HTTPHost, opts.HTTPPort = "127.0.0.1", -1, "127.0.0.1", -1
	opts.Cluster, opts.Routes = server.ClusterOpts{}, nil
	opts.NoSigs, opts.NoLog = true, true
	srv, err := server.NewServer(opts)
	require.NoError(t, err)
	srv.Start()
	t.Cleanup(srv.Shutdown)
	require.True(t, srv.ReadyForConnections(10*time.Second))
	return srv
}

// natsClient is one user's connection, made with the runtime's own options, recording the
// server's permission refusals.
type natsClient struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	mu   sync.Mutex
	errs []string
}

func connectAs(t *testing.T, srv *server.Server, s natsSetup, user string) *natsClient {
	t.Helper()
	cfg := runtime.Defaults()
	cfg.NATSURL = "tls://" + srv.Addr().String()
	cfg.NATSNKey, cfg.NATSCA, cfg.NATSInboxPrefix = s.seeds[user], s.tls.CA, natsauth.InboxPrefix(user)
	require.NoError(t, cfg.Validate())
	opts, err := cfg.NATSOptions(user)
	require.NoError(t, err)
	c := &natsClient{}
	opts = append(opts, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.errs = append(c.errs, err.Error())
	}))
	c.nc, err = nats.Connect(cfg.NATSURL, opts...)
	require.NoError(t, err, "%s connects with its seed and the CA", user)
	t.Cleanup(c.nc.Close)
	c.js, err = jetstream.New(c.nc)
	require.NoError(t, err)
	return c
}

// refused waits until the server has refused what (`publish to "subject"`, say).
func (c *natsClient) refused(t *testing.T, what string) {
	t.Helper()
	require.NoError(t, c.nc.Flush())
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return slices.ContainsFunc(c.errs, func(e string) bool {
			return strings.Contains(strings.ToLower(e), strings.ToLower("permissions violation for "+what))
		})
	}, 10*time.Second, 5*time.Millisecond, "got no permissions violation for %s (got %q)", what, c.errors())
}

func (c *natsClient) errors() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.errs)
}

// stored counts the messages of the events stream on subject.
func stored(t *testing.T, js jetstream.JetStream, streamName, subject string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, streamName)
	require.NoError(t, err)
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subject))
	require.NoError(t, err)
	return info.State.Subjects[subject]
}

// TestNATSServerFromTheManifests starts a real nats-server from each overlay's rendered
// configuration and the Secrets make nats-secrets makes, and connects as the functions do.
func TestNATSServerFromTheManifests(t *testing.T) {
	for _, dir := range []string{"../overlays/dev", "../overlays/prod"} {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			s := setupNATS(t, render(t, dir))
			opts, err := server.ProcessConfigFile(s.conf)
			require.NoError(t, err)
			srv := startNATS(t, opts)
			addr := srv.Addr().String()

			t.Run("a plain connection is refused: TLS is required", func(t *testing.T) {
				conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
				require.NoError(t, err)
				defer conn.Close()
				require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
				rd := bufio.NewReader(conn)
				info, err := rd.ReadString('\n')
				require.NoError(t, err)
				assert.Contains(t, info, `"tls_required":true`)
				_, err = conn.Write([]byte("CONNECT {\"verbose\":false}\r\nPUB omnimember.order.paid 2\r\n{}\r\nPING\r\n"))
				require.NoError(t, err)
				answer, _ := rd.ReadString('\n')
				assert.NotContains(t, answer, "PONG", "got %q", answer)
			})
			t.Run("a client without credentials is refused", func(t *testing.T) {
				_, err := nats.Connect("tls://"+addr, nats.RootCAs(s.tls.CA), nats.MaxReconnects(0))
				require.Error(t, err)
				assert.Contains(t, strings.ToLower(err.Error()), "authorization violation")
			})
			t.Run("a stranger's nkey is refused", func(t *testing.T) {
				seed, _ := natsauthStranger(t)
				o, err := nats.NkeyOptionFromSeed(seed)
				require.NoError(t, err)
				_, err = nats.Connect("tls://"+addr, nats.RootCAs(s.tls.CA), o, nats.MaxReconnects(0))
				require.Error(t, err)
				assert.Contains(t, strings.ToLower(err.Error()), "authorization violation")
			})
			t.Run("clients verify the server's certificate", func(t *testing.T) {
				o, err := nats.NkeyOptionFromSeed(s.seeds["match"])
				require.NoError(t, err)
				_, err = nats.Connect("tls://"+addr, nats.RootCAs(brokertest.TLS(t, "127.0.0.1").CA), o, nats.MaxReconnects(0))
				require.Error(t, err, "a server certificate from another CA is refused")
				assert.Contains(t, err.Error(), "certificate")
			})

			op := connectAs(t, srv, s, natsauth.Operator)
			for _, f := range natsFunctions {
				t.Run(f.name, func(t *testing.T) { checkFunctionUser(t, srv, s, op, f) })
			}
			t.Run("ingest keeps raw pushes and its pollers' cursors", func(t *testing.T) { checkIngestExtras(t, srv, s) })
			t.Run("the setup job makes streams and consumers, nothing else", func(t *testing.T) { checkSetupUser(t, srv, s) })
			t.Run("campaign holds its sending campaigns and schedules its triggers", func(t *testing.T) { checkCampaignExtras(t, srv, s) })
			t.Run("the operator lists and replays dead letters", func(t *testing.T) { checkOperator(t, op) })
		})
	}
}

// checkFunctionUser: the function's user makes its streams, creates, pulls and acks its consumer,
// dead-letters, publishes what it emits; it cannot publish another type, pull or create another
// function's consumer, read another's inbox or an event subject, or delete or purge a stream.
func checkFunctionUser(t *testing.T, srv *server.Server, s natsSetup, op *natsClient, f natsFunction) {
	c := connectAs(t, srv, s, f.name)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, stream.Ensure(ctx, c.js, stream.DefaultTopology()), "its streams at start")
	for _, typ := range f.emits {
		_, err := c.js.Publish(ctx, events.Subject(typ), []byte(`{}`))
		require.NoError(t, err, "publish %s", typ)
	}
	if len(f.consumes) > 0 {
		cons, err := c.js.CreateOrUpdateConsumer(ctx, stream.Events, stream.ConsumerConfig(f.name, f.consumes, 30*time.Second, 64))
		require.NoError(t, err, "create its consumer")
		_, err = cons.Info(ctx)
		require.NoError(t, err, "read its consumer")
		_, err = op.js.Publish(ctx, events.Subject(f.consumes[0]), []byte(`{}`))
		require.NoError(t, err)
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(10*time.Second))
		require.NoError(t, err, "pull")
		var got int
		for m := range batch.Messages() {
			require.NoError(t, m.DoubleAck(ctx), "ack")
			got++
		}
		require.Equal(t, 1, got, "pulled, got, want")
		_, err = c.js.Publish(ctx, stream.DeadLetterSubject(f.name), []byte(`{}`))
		require.NoError(t, err, "dead-letter")
	}

	other := "match"
	if f.name == other {
		other = "notify"
	}
	var notEmitted string
	for _, typ := range events.All {
		if !slices.Contains(f.emits, typ) {
			notEmitted = events.Subject(typ)
			break
		}
	}
	before := stored(t, op.js, stream.Events, notEmitted)
	require.NoError(t, c.nc.Publish(notEmitted, []byte(`{}`)))
	c.refused(t, `publish to "`+notEmitted+`"`)
	assert.Equal(t, before, stored(t, op.js, stream.Events, notEmitted), "the refused %s was not stored", notEmitted)
	for _, subject := range []string{
		"$JS.API.CONSUMER.MSG.NEXT." + stream.Events + "." + other,
		"$JS.API.CONSUMER.CREATE." + stream.Events + "." + other,
		"$JS.API.STREAM.DELETE." + stream.Events,
		"$JS.API.STREAM.PURGE." + stream.Raw,
		stream.DeadLetterSubject(other),
	} {
		require.NoError(t, c.nc.Publish(subject, nil))
		c.refused(t, `publish to "`+subject+`"`)
	}
	for _, subject := range []string{natsauth.InboxPrefix(other) + ".>", events.Subject(events.OrderPaid), "_INBOX.>"} {
		_, err := c.nc.SubscribeSync(subject)
		require.NoError(t, err)
		c.refused(t, `subscription to "`+subject+`"`)
	}
}

// checkIngestExtras: ingest archives raw pushes, keeps its pollers' cursors and the same-id check's
// fingerprints in KV buckets, as its code does; match may not touch any of them.
func checkIngestExtras(t *testing.T, srv *server.Server, s natsSetup) {
	c := connectAs(t, srv, s, ingest.Name)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, stream.Ensure(ctx, c.js, stream.DefaultTopology()))
	_, err := c.js.Publish(ctx, stream.RawSubject("pos"), []byte(`{"phone":"`+testPhone+`"}`))
	require.NoError(t, err, "archive a raw push")
	kv, err := c.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: ingest.CursorBucket, Description: "platform pollers' cursors"})
	require.NoError(t, err, "the cursors' bucket (refusals %q)", c.errors())
	_, err = kv.Create(ctx, "jd-test", []byte("2026-11-25T00:00:00Z"))
	require.NoError(t, err)
	e, err := kv.Get(ctx, "jd-test")
	require.NoError(t, err)
	_, err = kv.Update(ctx, "jd-test", []byte("2026-11-26T00:00:00Z"), e.Revision())
	require.NoError(t, err)
	// The same-id check's bucket, made and used as functions/ingest/conflicts.go does.
	seen, err := c.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: ingest.ConflictBucket, TTL: 2 * time.Minute, History: 1})
	require.NoError(t, err, "the same-id bucket (refusals %q)", c.errors())
	_, err = seen.Create(ctx, "k1", []byte("fingerprint"))
	require.NoError(t, err)
	_, err = seen.Create(ctx, "k1", []byte("other"))
	require.ErrorIs(t, err, jetstream.ErrKeyExists, "the second claim of an id is refused")
	got, err := seen.Get(ctx, "k1")
	require.NoError(t, err)
	assert.Equal(t, "fingerprint", string(got.Value()))

	m := connectAs(t, srv, s, match.Name)
	for _, subject := range []string{stream.RawSubject("pos"), "$KV." + ingest.CursorBucket + ".jd-test", "$KV." + ingest.ConflictBucket + ".k1"} {
		require.NoError(t, m.nc.Publish(subject, nil))
		m.refused(t, `publish to "`+subject+`"`)
	}
}

// checkSetupUser: the setup job's user makes the streams and every function's consumer, and is
// refused publishing an event, pulling a consumer, reading an inbox not its own and deleting.
func checkSetupUser(t *testing.T, srv *server.Server, s natsSetup) {
	c := connectAs(t, srv, s, natsauth.Setup)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, stream.Ensure(ctx, c.js, stream.DefaultTopology()), "the streams")
	for _, f := range natsFunctions {
		if len(f.consumes) == 0 {
			continue
		}
		_, err := c.js.CreateOrUpdateConsumer(ctx, stream.Events, stream.ConsumerConfig(f.name, f.consumes, 30*time.Second, 64))
		require.NoError(t, err, "create %s's consumer (refusals %q)", f.name, c.errors())
	}
	for _, subject := range []string{
		events.Subject(events.OrderPaid),
		"$JS.API.CONSUMER.MSG.NEXT." + stream.Events + ".match",
		"$JS.API.CONSUMER.DELETE." + stream.Events + ".match",
		"$JS.API.CONSUMER.CREATE." + stream.Events + ".stranger",
		"$JS.API.STREAM.DELETE." + stream.Events,
		"$JS.API.STREAM.PURGE." + stream.Events,
		stream.DeadLetterSubject("match"),
	} {
		require.NoError(t, c.nc.Publish(subject, nil))
		c.refused(t, `publish to "`+subject+`"`)
	}
	_, err := c.nc.SubscribeSync(natsauth.InboxPrefix("match") + ".>")
	require.NoError(t, err)
	c.refused(t, `subscription to "`+natsauth.InboxPrefix("match")+`.>"`)
}

// checkCampaignExtras: campaign's worker makes, pulls and acks consumer campaign-sending and
// schedules its triggers, as its code does; match may do neither.
func checkCampaignExtras(t *testing.T, srv *server.Server, s natsSetup) {
	c := connectAs(t, srv, s, campaign.Name)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rt, err := runtime.New(ctx, runtime.Defaults(), c.nc, slog.New(slog.DiscardHandler))
	require.NoError(t, err, "its streams (refusals %q)", c.errors())
	ev, err := events.New(events.CampaignTriggered, "cmp_test", events.Source(campaign.Name), time.Now(), events.CampaignTriggeredData{
		CampaignID: "cmp_test", Segment: "dormant", Channel: "outbox", Template: "reactivation", TriggeredBy: "scheduler", TriggeredAt: time.Now()})
	require.NoError(t, err)
	require.NoError(t, rt.Publisher(campaign.Name).Schedule(ctx, ev, time.Now().Add(time.Second)), "schedule (refusals %q)", c.errors())
	cons, err := c.js.CreateOrUpdateConsumer(ctx, stream.Events, campaign.SendingConsumerConfig())
	require.NoError(t, err, "create %s (refusals %q)", campaign.SendingConsumer, c.errors())
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(15*time.Second))
	require.NoError(t, err)
	var got int
	for m := range batch.Messages() {
		require.NoError(t, m.DoubleAck(ctx), "ack")
		got++
	}
	require.Equal(t, 1, got, "the scheduled trigger, pulled: got, want")

	m := connectAs(t, srv, s, match.Name)
	for _, subject := range []string{stream.ScheduleSubject(campaign.Name, "x"), stream.ScheduleSubject(match.Name, "x"),
		"$JS.API.CONSUMER.MSG.NEXT." + stream.Events + "." + campaign.SendingConsumer} {
		require.NoError(t, m.nc.Publish(subject, nil))
		m.refused(t, `publish to "`+subject+`"`)
	}
}

// checkOperator: the tools run by hand read and replay dead letters and read the raw archive.
func checkOperator(t *testing.T, op *natsClient) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dl := nats.NewMsg(stream.DeadLetterSubject("ops-test"))
	dl.Header.Set(stream.HeaderDeadLetterSubject, events.Subject(events.OrderPaid))
	dl.Data = []byte(`{}`)
	_, err := op.js.PublishMsg(ctx, dl)
	require.NoError(t, err)
	listed, err := stream.ListDeadLetters(ctx, op.js, "")
	require.NoError(t, err)
	assert.NotEmpty(t, listed)
	n, err := stream.ReplayDeadLetters(ctx, op.js, "ops-test")
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	raw, err := op.js.OrderedConsumer(ctx, stream.Raw, jetstream.OrderedConsumerConfig{FilterSubjects: []string{stream.RawPrefix + ">"}})
	require.NoError(t, err)
	_, err = raw.Next(jetstream.FetchMaxWait(10 * time.Second))
	require.NoError(t, err, "re-normalisation reads the raw archive")
}

// TestNATSStoresNoPlaintextPhone: through a server run from the production configuration, ingest
// stores an event and a raw push carrying a phone and match dead-letters one; once the server
// stopped, no file under the data volume holds the phone. The same run without the cipher does
// show it, so the scan can fail.
func TestNATSStoresNoPlaintextPhone(t *testing.T) {
	r := render(t, "../overlays/prod")
	for _, encrypted := range []bool{true, false} {
		s := setupNATS(t, r)
		if !encrypted {
			raw, err := os.ReadFile(s.conf)
			require.NoError(t, err)
			var kept []string
			for _, line := range strings.Split(string(raw), "\n") {
				if trimmed := strings.TrimSpace(line); !strings.HasPrefix(trimmed, "cipher:") && !strings.HasPrefix(trimmed, "key:") {
					kept = append(kept, line)
				}
			}
			require.NoError(t, os.WriteFile(s.conf, []byte(strings.Join(kept, "\n")), 0o600))
		}
		opts, err := server.ProcessConfigFile(s.conf)
		require.NoError(t, err)
		srv := startNATS(t, opts)
		in := connectAs(t, srv, s, ingest.Name)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		require.NoError(t, stream.Ensure(ctx, in.js, stream.DefaultTopology()))
		phone := []byte(`{"identities":[{"type":"phone","value":"` + testPhone + `"}]}`)
		_, err = in.js.Publish(ctx, events.Subject(events.OrderPaid), phone)
		require.NoError(t, err)
		_, err = in.js.Publish(ctx, stream.RawSubject("pos"), phone)
		require.NoError(t, err)
		m := connectAs(t, srv, s, match.Name)
		_, err = m.js.Publish(ctx, stream.DeadLetterSubject(match.Name), phone)
		require.NoError(t, err)
		cancel()
		srv.Shutdown()
		srv.WaitForShutdown()
		found := filesContaining(t, s.data, testPhone)
		if encrypted {
			assert.Empty(t, found, "encrypted at rest: no stored file holds the phone")
		} else {
			assert.NotEmpty(t, found, "without the cipher the phone is on disk: the scan sees it")
		}
	}
}

// filesContaining lists the files under dir that hold text.
func filesContaining(t *testing.T, dir, text string) []string {
	t.Helper()
	var found []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(raw, []byte(text)) {
			found = append(found, path.Base(p))
		}
		return nil
	}))
	return found
}

// TestNATSSecretsAreWhatTheManifestsRead: make nats-secrets makes a user per function and the
// operator, seeds that match the public keys, and exactly the keys the templates list.
func TestNATSSecretsAreWhatTheManifestsRead(t *testing.T) {
	var names []string
	for _, f := range natsFunctions {
		names = append(names, f.name)
	}
	assert.ElementsMatch(t, functionNames(t), names, "every function's NATS needs are checked")
	assert.ElementsMatch(t, functionNames(t), natsauth.Functions, "every function has a NATS user")
	server, clients, err := natsauth.Generate("omnimember")
	require.NoError(t, err)
	templates := secretTemplates(t)
	assert.ElementsMatch(t, templates[natsauth.ServerSecret], keys(server.StringData))
	assert.ElementsMatch(t, templates[natsauth.ClientSecret], keys(clients.StringData))
	for _, u := range natsauth.Users() {
		o, err := nats.NkeyOptionFromSeed(writeTemp(t, clients.StringData[natsauth.SeedKey(u)]))
		require.NoError(t, err, u)
		var got nats.Options
		require.NoError(t, o(&got))
		assert.Equal(t, server.StringData[natsauth.PublicKeyKey(u)], got.Nkey, "%s: the seed is the public key's", u)
	}
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

// natsauthStranger is a user nkey seed no Secret knows.
func natsauthStranger(t *testing.T) (string, string) {
	t.Helper()
	server, clients, err := natsauth.Generate("elsewhere")
	require.NoError(t, err)
	return writeTemp(t, clients.StringData[natsauth.SeedKey("match")]), server.StringData[natsauth.PublicKeyKey("match")]
}
