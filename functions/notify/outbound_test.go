package notify

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/broker/brokertest"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
	"github.com/omnimember/omnimember/shared/store/embedded"
	"github.com/omnimember/omnimember/shared/stream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The secret and the access token the providers below hand out; no error, log line, stored record
// or event may quote them.
const (
	leakSecret = "corpsecret-DO-NOT-LEAK-0123456789"
	leakToken  = "access-token-DO-NOT-LEAK-9876543210"
)

// failingProvider issues leakToken for any secret, then fails every other call: abort cuts the
// connection (a transport error), otherwise it answers status with an error body.
type failingProvider struct {
	abort  bool
	status int
}

func (p failingProvider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/cgi-bin/gettoken", "/cgi-bin/stable_token":
		_, _ = io.WriteString(w, `{"errcode":0,"access_token":"`+leakToken+`","expires_in":7200}`)
		return
	}
	if p.abort {
		panic(http.ErrAbortHandler) // the server closes the connection without an answer
	}
	w.WriteHeader(p.status)
	_, _ = io.WriteString(w, `{"errcode":-1,"errmsg":"system error"}`)
}

// startProvider serves p; closed serves nothing at all (connection refused).
func startProvider(t *testing.T, p failingProvider, closed bool) string {
	t.Helper()
	srv := httptest.NewServer(p)
	if closed {
		srv.Close()
	} else {
		t.Cleanup(srv.Close)
	}
	return srv.URL
}

// TestOutboundErrorsCarryNoSecret: every sink that puts a secret or a token in its URL fails without
// quoting them, whether the transport fails or the provider answers an error.
func TestOutboundErrorsCarryNoSecret(t *testing.T) {
	providers := []struct {
		name   string
		p      failingProvider
		closed bool
	}{
		{"closed server", failingProvider{}, true},
		{"connection cut", failingProvider{abort: true}, false},
		{"answers 502", failingProvider{status: http.StatusBadGateway}, false},
		{"answers 403", failingProvider{status: http.StatusForbidden}, false},
	}
	clock := func() time.Time { return now }
	sinks := []struct {
		name string
		sink func(url string) Sink
		n    Notification
	}{
		{"wecom gettoken and mark_tag", func(u string) Sink {
			return NewWeCom(WeCom{URL: u, CorpID: "corp", Secret: leakSecret, StaffUserID: "guide-1", TagByLevel: map[string]string{"gold": "tag-g"},
				Client: http.DefaultClient, Now: clock})
		}, Notification{Vars: map[string]string{"identity": "wm-1", "level": "gold"}}},
		{"doudian access_token", func(u string) Sink {
			return Doudian{URL: u, AppKey: "dd-app", Secret: leakSecret, AccessToken: leakToken, Method: "member.level.sync", Client: http.DefaultClient, Now: clock}
		}, Notification{Vars: map[string]string{"identity": "dy-1", "scope": "shop", "level": "gold"}}},
		{"webhook with a token in its URL", func(u string) Sink {
			return Webhook{URL: u + "/hook?token=" + leakToken, Secret: []byte(leakSecret), Client: http.DefaultClient, Now: clock}
		}, Notification{ID: "n1"}},
	}
	for _, s := range sinks {
		for _, p := range providers {
			t.Run(s.name+"/"+p.name, func(t *testing.T) {
				err := s.sink(startProvider(t, p.p, p.closed)).Deliver(context.Background(), s.n)
				require.Error(t, err)
				assert.NotContains(t, err.Error(), leakSecret, "got %v", err)
				assert.NotContains(t, err.Error(), leakToken, "got %v", err)
			})
		}
	}
}

// TestDeliveryFailuresLeakNoSecret runs notify in the runtime on a real JetStream: a WeCom provider
// that cuts the connection, a mini-program one that answers 403 and a webhook whose server is gone.
// The retries' log lines, the notification.failed events and the stored records quote neither the
// secret nor the token.
func TestDeliveryFailuresLeakNoSecret(t *testing.T) {
	st, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"), embedded.Options{NoSync: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	require.NoError(t, st.Set(context.Background(), member.Members, alice, member.Member{OneID: alice, Identities: []member.StoredIdentity{
		{Type: "wecom_external_userid", Scope: "corp-1", Value: "wmEXT1", Key: "k1"}, {Type: "wechat_openid", Scope: "wx-app", Value: "oOPEN1", Key: "k2"}}}))
	wecomURL := startProvider(t, failingProvider{abort: true}, false)
	wxURL := startProvider(t, failingProvider{status: http.StatusForbidden}, false)
	goneURL := startProvider(t, failingProvider{}, true)
	sinks := map[string]any{
		"wecom": WeComContact{API: NewWeCom(WeCom{URL: wecomURL, CorpID: "corp-1", Secret: leakSecret, Client: http.DefaultClient, Now: time.Now}), Members: st},
		"miniprogram": NewMiniProgram(MiniProgram{URL: wxURL, AppID: "wx-app", Secret: leakSecret, State: "formal", Members: st,
			Templates: SubscribeTemplates{"generic": {TemplateID: "TPL-1", Data: map[string]string{"thing1": "{{message}}"}}}, Client: http.DefaultClient, Now: time.Now}),
		"webhook": Webhook{URL: goneURL + "/hook?token=" + leakToken, Secret: []byte(leakSecret), Client: http.DefaultClient, Now: time.Now},
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := &Handler{Store: st, Sinks: sinks, Channel: "webhook", Locale: "zh-CN", Templates: DefaultTemplates(), MaxAttempts: 2, Log: log, Now: time.Now}

	nc := brokertest.Connect(t, brokertest.Start(t))
	cfg := runtime.Defaults()
	cfg.AckWait, cfg.MaxDeliver, cfg.Backoff, cfg.ShutdownTimeout = 5*time.Second, 10, []time.Duration{20 * time.Millisecond}, 5*time.Second
	rt, err := runtime.New(context.Background(), cfg, nc, log)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.ServeListener(ctx, ln, h.Function()) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })

	js := rt.JetStream()
	channels := []string{"wecom", "miniprogram", "webhook"}
	for _, ch := range channels {
		ev := channelRequest(t, "r-"+ch, ch, map[string]string{"text": "双11会员日"})
		brokertest.Publish(t, js, events.Subject(ev.Type()), ev)
	}
	require.Eventually(t, func() bool {
		return len(brokertest.Events(t, js, stream.Events, events.NotificationFailed)) == len(channels)
	}, 20*time.Second, 20*time.Millisecond, "every channel fails for good after its attempts")

	var texts []string
	for _, ev := range brokertest.Events(t, js, stream.Events, events.NotificationFailed) {
		texts = append(texts, string(ev.Data()))
	}
	docs, err := st.Query(context.Background(), store.Query{Collection: member.Notifications})
	require.NoError(t, err)
	require.Len(t, docs, len(channels))
	for _, d := range docs {
		texts = append(texts, string(d.Data))
	}
	require.Contains(t, logs.String(), "deliver notification", "the retried deliveries were logged")
	texts = append(texts, logs.String())
	for _, text := range texts {
		assert.NotContains(t, text, leakSecret)
		assert.NotContains(t, text, leakToken)
	}
}

// syncBuffer collects log lines written from the runtime's goroutines.
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
