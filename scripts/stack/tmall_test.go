package stack

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/functions/ingest"
	"github.com/omnimember/omnimember/functions/ingest/toptest"
	"github.com/omnimember/omnimember/shared/platform"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const tmcAppKey, tmcSecret = "12497914", "tmc-test-secret"

var tmcMessages = []toptest.Message{
	{ID: "9223372036854775001", Topic: "taobao_trade_TradeBuyerPay", PubTime: "2026-11-11 00:00:05", UserID: 2200112233,
		Content: `{"tid":3012345678901234567,"payment":"1299.00","buyer_open_uid":"AAHk5d-buyer","seller_nick":"omni旗舰店"}`},
	{ID: "9223372036854775002", Topic: "taobao_trade_TradeCreate", PubTime: "2026-11-11 00:00:06", UserID: 2200112233,
		Content: `{"tid":3012345678901234568}`},
	{ID: "9223372036854775003", Topic: "taobao_refund_RefundSuccess", PubTime: "2026-11-12 10:00:01", UserID: 2200112233,
		Content: `{"tid":3012345678901234567,"refund_id":90001,"refund_fee":"200.50","buyer_open_uid":"AAHk5d-buyer","modified":"2026-11-12 10:00:00"}`},
}

func newTMCGateway(t *testing.T) *toptest.Server { return toptest.New(t, tmcAppKey, tmcSecret) }

func tmcPoller(url string) *ingest.TMCPoller {
	cfg := ingest.DefaultTMC()
	cfg.AppKey, cfg.Secret, cfg.URL, cfg.Interval, cfg.Quantity = tmcAppKey, tmcSecret, url, 10*time.Millisecond, 10
	return &ingest.TMCPoller{Config: cfg, HTTP: http.DefaultClient, Log: slog.New(slog.NewJSONHandler(io.Discard, nil)), Now: time.Now}
}

// TestTMCPollerToProfile: a paid trade and its refund polled from a TOP gateway that checks every
// signature reach the buyer's profile; each message is confirmed only after its events were
// stored; a poller that dies between publish and confirm is replaced by a new instance that
// neither loses nor repeats anything.
func TestTMCPollerToProfile(t *testing.T) {
	s := start(t, testOptions(t, t.TempDir()))
	gw := toptest.New(t, tmcAppKey, tmcSecret)
	gw.Add(tmcMessages...)
	b := newRecordingBroker(s)
	var early []string
	gw.OnConfirm = func(ids []string) {
		for _, id := range ids {
			if id != "9223372036854775002" && !b.Stored(platform.EventID("tmall", id, 0)) {
				early = append(early, id)
			}
		}
	}
	ctx := context.Background()
	gw.FailConfirms(1) // the first instance publishes, then loses its confirm: as if it crashed there
	_, err := tmcPoller(gw.URL).Once(ctx, b)
	require.Error(t, err)
	assert.Empty(t, gw.Confirmed())

	restarted := tmcPoller(gw.URL)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { restarted.Run(runCtx, b); close(done) }()
	select {
	case <-gw.Drained():
	case <-time.After(30 * time.Second):
		t.Fatal("the restarted poller did not confirm the messages")
	}
	stop()
	<-done
	waitQuiet(t, s)

	assert.Empty(t, early, "confirmed before JetStream stored the events")
	assert.Zero(t, gw.BadSigns(), "every request was signed as TOP checks it")
	assert.Equal(t, map[string]int{"9223372036854775001": 1, "9223372036854775002": 1, "9223372036854775003": 1}, gw.Confirmed())
	assert.Equal(t, 1, stored(t, s, events.OrderPaid), "got stored order.paid, want once despite the re-publish")
	assert.Equal(t, 1, stored(t, s, events.OrderRefunded))
	p := lookupIdentity(t, s, events.Identity{Type: "taobao_open_uid", Value: "AAHk5d-buyer", Scope: tmcAppKey})
	assert.Equal(t, int64(1), p.Orders.Count)
	assert.Equal(t, int64(129900-20050), p.Orders.NetAmountFen)
	assert.Equal(t, int64((129900-20050)/100), p.Points.Balance, "got points, want floor(net yuan)")
}

func TestTMCPollerWithAWrongSecretPublishesNothing(t *testing.T) {
	s := start(t, testOptions(t, t.TempDir()))
	gw := toptest.New(t, tmcAppKey, "the-real-secret")
	gw.Add(tmcMessages...)
	_, err := tmcPoller(gw.URL).Once(context.Background(), newRecordingBroker(s))
	require.ErrorContains(t, err, "Invalid signature")
	assert.Equal(t, 1, gw.BadSigns())
	assert.Zero(t, stored(t, s, events.OrderPaid))
}
