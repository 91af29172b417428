package notify

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/broker/brokertest"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store/embedded"
	"github.com/omnimember/omnimember/shared/stream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEveryChannelOverJetStream runs notify in the runtime on a real JetStream and the embedded
// store: one campaign request per channel, each delivered twice (a redelivery past the dedupe
// window), reaches each provider once and reports sent once.
func TestEveryChannelOverJetStream(t *testing.T) {
	st, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"), embedded.Options{NoSync: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	require.NoError(t, st.Set(context.Background(), member.Members, alice, member.Member{OneID: alice, Identities: []member.StoredIdentity{
		{Type: "wecom_external_userid", Scope: "corp-1", Value: "wmEXT1", Key: "k1"}, {Type: "wechat_openid", Scope: "wx-app", Value: "oOPEN1", Key: "k2"}}}))

	wc := &wecomContactServer{t: t, corpID: "corp-1", secret: "contact-secret"}
	wx := &wechatServer{t: t, appID: "wx-app", secret: "wx-secret", templates: map[string][]string{"TPL-1": {"thing1"}}}
	rc := &receiver{secret: []byte("whsec_0123456789abcdef"), now: time.Now(), seen: map[string]int{}}
	serverTLS, roots := testTLS(t)
	mailer := startSMTP(t, &smtpServer{tls: serverTLS, user: "notify@brand.example", pass: "app-password"})
	servers := map[string]*httptest.Server{}
	for name, h := range map[string]http.Handler{"wc": wc, "wx": wx, "rc": rc} {
		servers[name] = httptest.NewServer(h)
		t.Cleanup(servers[name].Close)
	}
	sinks := map[string]any{
		"wecom": WeComContact{API: NewWeCom(WeCom{URL: servers["wc"].URL, CorpID: "corp-1", Secret: "contact-secret", Client: servers["wc"].Client(), Now: time.Now}), Members: st},
		"miniprogram": NewMiniProgram(MiniProgram{URL: servers["wx"].URL, AppID: "wx-app", Secret: "wx-secret", State: "trial", Members: st,
			Templates: SubscribeTemplates{"generic": {TemplateID: "TPL-1", Data: map[string]string{"thing1": "{{message}}"}}}, Client: servers["wx"].Client(), Now: time.Now}),
		"email": Email{Addr: mailer.ln.Addr().String(), Username: "notify@brand.example", Password: "app-password", From: "member@brand.example",
			TLS: &tls.Config{RootCAs: roots}, Now: time.Now},
		"webhook": Webhook{URL: servers["rc"].URL, Secret: rc.secret, Client: servers["rc"].Client(), Now: time.Now},
	}
	h := &Handler{Store: st, Sinks: sinks, Channel: "webhook", Locale: "zh-CN", Templates: DefaultTemplates(), MaxAttempts: 3, Now: time.Now}

	nc := brokertest.Connect(t, brokertest.Start(t))
	cfg := runtime.Defaults()
	cfg.AckWait, cfg.MaxDeliver, cfg.Backoff, cfg.ShutdownTimeout = 5*time.Second, 10, []time.Duration{20 * time.Millisecond}, 5*time.Second
	rt, err := runtime.New(context.Background(), cfg, nc, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.ServeListener(ctx, ln, h.Function()) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })

	js := rt.JetStream()
	channels := []string{"wecom", "miniprogram", "email", "webhook"}
	for _, ch := range channels {
		ev := channelRequest(t, "r-"+ch, ch, map[string]string{"text": "双11会员日", "email": "li.lei@example.com"})
		brokertest.Publish(t, js, events.Subject(ev.Type()), ev)
		brokertest.Publish(t, js, events.Subject(ev.Type()), ev, jetstream.WithMsgID("again-"+ch)) // past the dedupe window
	}
	require.Eventually(t, func() bool {
		settled, err := stream.Settled(context.Background(), js, stream.Events, Name)
		return err == nil && settled
	}, 20*time.Second, 20*time.Millisecond)

	sent := brokertest.Events(t, js, stream.Events, events.Subject(events.NotificationSent))
	got := map[string]int{}
	for _, ev := range sent {
		d, err := events.Decode[events.NotificationOutcomeData](ev)
		require.NoError(t, err)
		got[d.Channel]++
	}
	assert.Equal(t, map[string]int{"wecom": 1, "miniprogram": 1, "email": 1, "webhook": 1}, got, "one sent event per channel")
	assert.Empty(t, brokertest.Events(t, js, stream.Events, events.Subject(events.NotificationFailed)))
	counts := func(mu *sync.Mutex, n func() int) int { mu.Lock(); defer mu.Unlock(); return n() }
	assert.Equal(t, 1, counts(&wc.mu, func() int { return len(wc.got) }), "wecom")
	assert.Equal(t, 1, counts(&wx.mu, func() int { return len(wx.got) }), "miniprogram")
	assert.Equal(t, 1, counts(&mailer.mu, func() int { return len(mailer.got) }), "email")
	assert.Equal(t, 1, counts(&rc.mu, func() int {
		for _, n := range rc.seen {
			return n
		}
		return 0
	}), "webhook: one request")
}
