package stack

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/scripts/demo"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/loyalty"
	"github.com/omnimember/omnimember/shared/pii"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
	"github.com/omnimember/omnimember/shared/store/firestore/firestoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { firestoretest.Main(m) }

func testOptions(t *testing.T, dir string) Options {
	keys, err := pii.ParseKeyring(pii.NewKey("t1"))
	require.NoError(t, err)
	idKeys, err := identity.ParseKeys(identity.NewKey("i1"))
	require.NoError(t, err)
	cfg := runtime.Defaults()
	cfg.AckWait, cfg.Backoff, cfg.Concurrency = time.Second, []time.Duration{20 * time.Millisecond}, 8
	return Options{DataDir: dir, HTTPAddr: "127.0.0.1:0", Keys: keys, IdentityKeys: idKeys, Runtime: &cfg, Loyalty: loyalty.Defaults(),
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), SenderToken: testSenderToken, ReaderToken: testReaderToken}
}

// The development credentials testOptions gives every stack: a sender of any source, a reader of
// every profile route.
const (
	testSenderToken = "stack-test-sender-0123456789"
	testReaderToken = "stack-test-reader-0123456789"
)

// readerGet is a GET of a profile route with the test reader's credential.
func readerGet(t *testing.T, s *Stack, path string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+s.Addr+path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testReaderToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	return resp
}

// apiClient posts events and looks members up on the stack with testOptions' credentials.
func apiClient(s *Stack) demo.Client {
	return demo.Client{BaseURL: "http://" + s.Addr, SenderToken: testSenderToken, ReaderToken: testReaderToken}
}

func start(t *testing.T, opts Options) *Stack {
	s, err := Start(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

func waitQuiet(t *testing.T, s *Stack) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(t, s.WaitQuiet(ctx))
}

// want is the demo's ground truth, worked out by hand from demo.Steps.
type want struct {
	points, orders, netFen int64
	tier                   string
	notifications          int
}

var demoTruth = map[string]want{
	// Tmall 129 900 + JD 218 000 (the retried JD webhook counts once); silver then gold.
	"13812345678": {129900/100 + 218000/100, 2, 129900 + 218000, "gold", 2 + 2},
	// Douyin 59 900 and WeChat 89 900 on two members merged into one; then 20 000 refunded on
	// Douyin: 599 - (599 - floor(39 900/100)) + 899. Silver once merged (149 800), kept after the refund.
	"13987654321": {399 + 899, 2, 39900 + 89900, "silver", 2 + 1},
	// Store 45 000 (fully refunded later) + Tmall 88 000 sent twice under two ids; silver at 133 000.
	"13700001234": {0 + 880, 2, 0 + 88000, "silver", 2 + 1},
}

func checkDemo(t *testing.T, s *Stack) {
	ctx := context.Background()
	for phone, w := range demoTruth {
		p, err := apiClient(s).Lookup(ctx, phone)
		require.NoError(t, err, phone)
		assert.Equal(t, w.points, p.Points.Balance, "%s: got points, want", phone)
		assert.Equal(t, w.orders, p.Orders.Count, "%s: got order count, want", phone)
		assert.Equal(t, w.netFen, p.Orders.NetAmountFen, "%s: got net amount, want", phone)
		assert.Equal(t, w.tier, p.Tier.Level, "%s: got tier, want", phone)
		notes, err := demo.Notifications(ctx, s.Store, append([]string{p.OneID}, p.MergedFrom...)...)
		require.NoError(t, err)
		assert.Len(t, notes, w.notifications, "%s: got notifications, want", phone)
		raw, err := json.Marshal(p)
		require.NoError(t, err)
		assert.NotContains(t, string(raw), phone, "the profile never shows a plaintext phone")
	}
}

func replayDemo(t *testing.T, s *Stack) {
	steps, err := demo.Steps(time.Now())
	require.NoError(t, err)
	settle := func(ctx context.Context) error { return s.WaitQuiet(ctx) }
	require.NoError(t, demo.Replay(context.Background(), apiClient(s), steps, settle, io.Discard))
	waitQuiet(t, s)
}

func TestDemoTravelsTheWholeChain(t *testing.T) {
	onEachStore(t, func(t *testing.T, opts Options) {
		s := start(t, opts)
		replayDemo(t, s)
		checkDemo(t, s)
	})
}

// TestDuplicatesAndReorderingConverge posts the demo's events all at once, shuffled by
// concurrency, each twice, plus the same orders under fresh event ids: the totals still hold.
// Tiers are not compared here: with refunds racing their orders, the highest level ever reached
// depends on arrival order (upgrades are immediate, downgrades wait).
func TestDuplicatesAndReorderingConverge(t *testing.T) {
	s := start(t, testOptions(t, t.TempDir()))
	steps, err := demo.Steps(time.Now())
	require.NoError(t, err)
	var evs []cloudevents.Event
	for _, st := range steps {
		again := st.Event.Clone()
		again.SetID(st.Event.ID() + "-redelivered-under-new-id")
		evs = append(evs, st.Event, st.Event, again)
	}
	var wg sync.WaitGroup
	client := apiClient(s)
	for _, ev := range evs {
		wg.Go(func() {
			status, err := client.Post(context.Background(), ev)
			assert.NoError(t, err)
			assert.Equal(t, http.StatusAccepted, status)
		})
	}
	wg.Wait()
	waitQuiet(t, s)
	for phone, w := range demoTruth {
		p, err := client.Lookup(context.Background(), phone)
		require.NoError(t, err)
		assert.Equal(t, w.points, p.Points.Balance, "%s: got points, want", phone)
		assert.Equal(t, w.orders, p.Orders.Count, "%s: got order count, want", phone)
		assert.Equal(t, w.netFen, p.Orders.NetAmountFen, "%s: got net, want", phone)
	}
}

// TestCrashAfterStoreWriteBeforeAck lets points-award commit an award, then dies before
// publishing or acknowledging; the chain restarts on the same disk. The redelivered event must
// not award twice, and what the dead process never published must still reach tier and notify.
func TestCrashAfterStoreWriteBeforeAck(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(t, dir)
	crashed := make(chan struct{})
	var once sync.Once
	opts.Wrap = func(function string, h runtime.Handler) runtime.Handler {
		if function != "points-award" {
			return h
		}
		return func(ctx context.Context, ev cloudevents.Event) ([]cloudevents.Event, error) {
			outs, err := h(ctx, ev)
			crash := false
			once.Do(func() { crash = err == nil && len(outs) > 0 })
			if crash {
				close(crashed)
				return nil, errors.New("process died after its store write, before its ack")
			}
			return outs, err
		}
	}
	s, err := Start(opts)
	require.NoError(t, err)
	steps, err := demo.Steps(time.Now())
	require.NoError(t, err)
	status, err := apiClient(s).Post(context.Background(), steps[0].Event)
	require.NoError(t, err)
	require.Equal(t, http.StatusAccepted, status)
	<-crashed
	require.NoError(t, s.Stop())

	again := testOptions(t, dir)
	again.Keys, again.IdentityKeys = opts.Keys, opts.IdentityKeys // the same secrets, as a restarted process reads them
	restarted := start(t, again)
	waitQuiet(t, restarted)
	p, err := apiClient(restarted).Lookup(context.Background(), "13812345678")
	require.NoError(t, err)
	assert.Equal(t, int64(1299), p.Points.Balance, "awarded once")
	assert.Equal(t, "silver", p.Tier.Level, "the award the crash swallowed still reached tier-evaluate")
	notes, err := demo.Notifications(context.Background(), restarted.Store, p.OneID)
	require.NoError(t, err)
	assert.Len(t, notes, 2, "points and tier notifications, once each")
}

func TestBadInputNeverReachesTheChain(t *testing.T) {
	s := start(t, testOptions(t, t.TempDir()))
	ev, err := events.Example(events.OrderPaid)
	require.NoError(t, err)
	ev.DataEncoded = []byte(`{"orderId":"1","channel":"tmall","shopId":"s","amountFen":"12","paidAt":"2026-11-11T00:00:00Z","identities":[{"type":"phone","value":"13812345678"}]}`)
	status, err := apiClient(s).Post(context.Background(), ev)
	require.NoError(t, err)
	assert.Equal(t, http.StatusBadRequest, status)
	quiet, err := s.Quiet(context.Background())
	require.NoError(t, err)
	assert.True(t, quiet, "nothing reached the chain")
	docs, err := s.Store.Query(context.Background(), store.Query{Collection: "members"})
	require.NoError(t, err)
	assert.Empty(t, docs)
}
