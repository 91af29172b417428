package campaign

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/broker/brokertest"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/segment"
	"github.com/omnimember/omnimember/shared/store"
	"github.com/omnimember/omnimember/shared/store/embedded"
	"github.com/omnimember/omnimember/shared/store/firestore/firestoretest"
	"github.com/omnimember/omnimember/shared/store/teststores"
	"github.com/omnimember/omnimember/shared/stream"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { firestoretest.Main(m) }

const (
	token      = "marketer-token"
	adminToken = "admin-token"
)

var t0 = time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC)

// clock is a settable time for the handler.
type clock struct{ ns atomic.Int64 }

func newClock(at time.Time) *clock { c := &clock{}; c.set(at); return c }
func (c *clock) now() time.Time    { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) set(at time.Time)  { c.ns.Store(at.UnixNano()) }

// env is one campaign function on a real JetStream and a real embedded store, restartable.
type env struct {
	t     *testing.T
	nc    *nats.Conn
	js    jetstream.JetStream
	st    store.Store
	clock *clock
	rates Rates
	chunk int
	role  string // the Handler's Role (RoleAll unless a test splits the function)
	h     *Handler
	base  string
	stop  func()
}

func newEnv(t *testing.T) *env {
	st, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"), embedded.Options{Indexes: StoreIndexes(member.Indexes), NoSync: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return newEnvOn(t, st)
}

// onEachStore runs a test on the embedded store and on the Firestore emulator.
func onEachStore(t *testing.T, test func(t *testing.T, e *env)) {
	teststores.Each(t, StoreIndexes(member.Indexes), func(t *testing.T, st store.Store) { test(t, newEnvOn(t, st)) })
}

func newEnvOn(t *testing.T, st store.Store) *env {
	srv := brokertest.Start(t)
	nc := brokertest.Connect(t, srv)
	e := &env{t: t, nc: nc, st: st, clock: newClock(t0), rates: Rates{"*": 0}, chunk: 100}
	rt := e.runtime()
	e.js = rt.JetStream()
	return e
}

func testConfig() runtime.Config {
	c := runtime.Defaults()
	c.AckWait = 5 * time.Second
	c.MaxDeliver = 5
	c.Backoff = []time.Duration{50 * time.Millisecond}
	c.Concurrency = 8
	c.ShutdownTimeout = 5 * time.Second
	return c
}

func (e *env) runtime() *runtime.Runtime {
	rt, err := runtime.New(context.Background(), testConfig(), e.nc, testLog())
	require.NoError(e.t, err)
	return rt
}

func (e *env) handler() *Handler {
	cat, err := segment.Default()
	require.NoError(e.t, err)
	tpls, err := DefaultTemplates()
	require.NoError(e.t, err)
	h := &Handler{Store: e.st, Segments: cat, Templates: tpls, Rates: e.rates, ChunkSize: e.chunk, Now: e.clock.now,
		Token: token, AdminToken: adminToken, Brand: "山野咖啡", PollEvery: 100 * time.Millisecond,
		Role: e.role, Log: testLog()}
	h.Init()
	return h
}

// start runs the campaign function until stop (or the test's end).
func (e *env) start() {
	t := e.t
	e.h = e.handler()
	rt := e.runtime()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.ServeListener(ctx, ln, e.h.Function()) }()
	e.base = "http://" + ln.Addr().String()
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(e.stop)
	require.Eventually(t, func() bool {
		resp, err := http.Get(e.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 10*time.Millisecond)
}

// call makes an API request with the marketer's token and decodes the answer into out.
func (e *env) call(method, path string, body any, out any) int {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(e.t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	require.NoError(e.t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("X-Omnimember-Operator", "mei@brand.example")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	if out != nil {
		require.NoError(e.t, json.NewDecoder(resp.Body).Decode(out))
	}
	return resp.StatusCode
}

// seedDormant writes n members the dormant segment selects, and n others it does not, as match and
// points-award write them.
func (e *env) seedDormant(n int) []string {
	ctx := context.Background()
	var ids []string
	old := member.IndexTime(t0.AddDate(0, 0, -200))
	recent := member.IndexTime(t0.AddDate(0, 0, -3))
	for i := range 2 * n {
		id := fmt.Sprintf("om_%012d", 100000+i)
		m := member.Member{OneID: id, Pool: member.PoolPlaintext, Channels: []string{"tmall"},
			Identities: []member.StoredIdentity{{Type: "phone", Key: "k" + id, Sealed: "sealed", Masked: "138****" + id[len(id)-4:], Channel: "tmall"}}}
		require.NoError(e.t, e.st.Set(ctx, member.Members, id, m))
		a := member.Account{OneID: id, OrderCount: 3, NetAmountFen: 250000, LastOrderAt: &old}
		if i%2 == 1 {
			a.LastOrderAt = &recent
		} else {
			ids = append(ids, id)
		}
		require.NoError(e.t, e.st.Set(ctx, member.Accounts, id, a))
	}
	return ids
}

func dormantCampaign() CreateRequest {
	return CreateRequest{Name: "双十二唤醒", Segment: "dormant", Channel: "sms", Template: "winback_coupon",
		Coupon: &Coupon{Code: "WB50", Title: "50元无门槛券"}}
}

// requests are the notification.requested events stored in JetStream.
func (e *env) requests() []cloudevents.Event {
	return brokertest.Events(e.t, e.js, stream.Events, events.NotificationRequested)
}

func (e *env) waitStatus(id, status string) View {
	e.t.Helper()
	var v View
	require.Eventually(e.t, func() bool {
		v = View{}
		return e.call("GET", "/v1/campaigns/"+id, nil, &v) == http.StatusOK && v.Status == status
	}, 30*time.Second, 20*time.Millisecond, "campaign %s never reached %s", id, status)
	return v
}

// settled waits until the campaign consumer has handled everything stored for it.
func (e *env) settled() {
	e.t.Helper()
	require.Eventually(e.t, func() bool {
		ok, err := stream.Settled(context.Background(), e.js, stream.Events, Name)
		return err == nil && ok
	}, 30*time.Second, 20*time.Millisecond)
}

func jsonDecode(resp *http.Response, out any) error { return json.NewDecoder(resp.Body).Decode(out) }

func testLog() *slog.Logger {
	if os.Getenv("CAMPAIGN_TEST_LOG") != "" {
		return slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewJSONHandler(io.Discard, nil))
}
