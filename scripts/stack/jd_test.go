package stack

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/functions/ingest"
	"github.com/omnimember/omnimember/functions/ingest/jdtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const jdAppKey, jdSecret, jdToken = "jd-app-1", "jd-test-secret", "jd-shop-token"

var jdT0 = time.Date(2026, 11, 11, 12, 0, 0, 0, time.UTC)

func jdPoller(url string, now time.Time) *ingest.JDPoller {
	cfg := ingest.DefaultJD()
	cfg.AppKey, cfg.Secret, cfg.AccessToken, cfg.URL = jdAppKey, jdSecret, jdToken, url
	cfg.Window, cfg.Overlap, cfg.Lookback, cfg.PageSize = time.Hour, 5*time.Minute, 2*time.Hour, 1
	return &ingest.JDPoller{Config: cfg, HTTP: http.DefaultClient, Log: slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Now: func() time.Time { return now }}
}

type failingBroker struct{ ingest.Broker }

func (failingBroker) Publish(context.Context, *cloudevents.Event, []cloudevents.Event) error {
	return errors.New("JetStream unavailable")
}

// drain runs Once until the poller reports the window reached now.
func drain(t *testing.T, p *ingest.JDPoller, b ingest.Broker) {
	t.Helper()
	for range 20 {
		more, err := p.Once(context.Background(), b)
		require.NoError(t, err)
		if !more {
			return
		}
	}
	t.Fatal("the poller never caught up with now")
}

func jdCursor(t *testing.T, s *Stack, p *ingest.JDPoller) string {
	kv, err := s.Runtime.JetStream().KeyValue(context.Background(), ingest.CursorBucket)
	require.NoError(t, err)
	e, err := kv.Get(context.Background(), p.CursorKey())
	require.NoError(t, err)
	return string(e.Value())
}

// TestJDPollerToProfile: orders searched window by window from a JD gateway that checks every
// signature reach their buyers' profiles; overlapping windows, a failed publish and a restarted
// poller neither lose nor repeat an order, and the cursor only moves after JetStream's ack.
func TestJDPollerToProfile(t *testing.T) {
	s := start(t, testOptions(t, t.TempDir()))
	gw := jdtest.New(t, jdAppKey, jdSecret, jdToken)
	gw.Put(jdtest.Order{ID: "230012345678", Payment: "2180.00", State: "WAIT_SELLER_STOCK_OUT", PaidAt: "2026-11-11 18:30:00",
		Pin: "ENC_pin_A", OpenID: "oid-A", Modified: jdT0.Add(-90 * time.Minute)})
	gw.Put(jdtest.Order{ID: "230012345679", Payment: "10.00", State: "WAIT_PAY", Pin: "ENC_pin_C", Modified: jdT0.Add(-30 * time.Minute)})
	gw.Put(jdtest.Order{ID: "230012345680", Payment: "99.90", State: "TRADE_CANCELED", PaidAt: "2026-11-11 19:00:00",
		Pin: "ENC_pin_B", Modified: jdT0.Add(-3 * time.Minute)})
	b := newRecordingBroker(s)

	first := jdPoller(gw.URL, jdT0)
	drain(t, first, b)
	assert.Equal(t, jdT0.Format(time.RFC3339Nano), jdCursor(t, s, first))
	again, err := first.Once(context.Background(), b) // the window is now only the overlap
	require.NoError(t, err)
	assert.False(t, again)

	restarted := jdPoller(gw.URL, jdT0.Add(2*time.Minute))
	_, err = restarted.Once(context.Background(), failingBroker{b})
	require.Error(t, err)
	assert.Equal(t, jdT0.Format(time.RFC3339Nano), jdCursor(t, s, restarted), "the cursor stays until JetStream acknowledged")
	drain(t, restarted, b)
	assert.Equal(t, jdT0.Add(2*time.Minute).Format(time.RFC3339Nano), jdCursor(t, s, restarted))
	waitQuiet(t, s)

	assert.Zero(t, gw.BadSigns(), "every request was signed as JD checks it")
	windows := gw.Windows()
	require.GreaterOrEqual(t, len(windows), 4)
	assert.Equal(t, jdtest.Window{Start: "2026-11-11 18:00:00", End: "2026-11-11 19:00:00"}, windows[0], "first window starts JD_LOOKBACK ago")
	assert.Equal(t, jdtest.Window{Start: "2026-11-11 18:55:00", End: "2026-11-11 19:55:00"}, windows[1], "the next reaches back JD_OVERLAP")
	assert.Equal(t, 2, stored(t, s, events.OrderPaid), "got stored order.paid, want one per paid order despite overlaps and the restart")
	assert.Equal(t, 1, stored(t, s, events.OrderRefunded))
	for _, c := range []struct {
		pin         string
		net, points int64
		orders      int64
	}{{"ENC_pin_A", 218000, 2180, 1}, {"ENC_pin_B", 0, 0, 1}} {
		p := lookupIdentity(t, s, events.Identity{Type: "jd_pin", Value: c.pin})
		assert.Equal(t, c.orders, p.Orders.Count, "%s: got orders, want", c.pin)
		assert.Equal(t, c.net, p.Orders.NetAmountFen, "%s: got net, want", c.pin)
		assert.Equal(t, c.points, p.Points.Balance, "%s: got points, want", c.pin)
	}
}

func TestJDPollerWithAWrongSecretPublishesNothing(t *testing.T) {
	s := start(t, testOptions(t, t.TempDir()))
	gw := jdtest.New(t, jdAppKey, "the-real-secret", jdToken)
	gw.Put(jdtest.Order{ID: "1", Payment: "1.00", State: "WAIT_SELLER_STOCK_OUT", PaidAt: "2026-11-11 19:00:00", Pin: "p", Modified: jdT0.Add(-time.Minute)})
	_, err := jdPoller(gw.URL, jdT0).Once(context.Background(), newRecordingBroker(s))
	require.ErrorContains(t, err, "Invalid signature")
	assert.Equal(t, 1, gw.BadSigns())
	assert.Zero(t, stored(t, s, events.OrderPaid))
}
