package ingest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/functions/ingest/jdtest"
	"github.com/omnimember/omnimember/functions/ingest/toptest"
	"github.com/omnimember/omnimember/shared/broker/brokertest"
	"github.com/omnimember/omnimember/shared/platform"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/stream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var quiet = slog.New(slog.NewJSONHandler(io.Discard, nil))

// storedIDs wraps the real publisher and remembers what JetStream acknowledged.
type storedIDs struct {
	Broker
	mu  sync.Mutex
	ids map[string]bool
}

func (s *storedIDs) Publish(ctx context.Context, cause *cloudevents.Event, evs []cloudevents.Event) error {
	err := s.Broker.Publish(ctx, cause, evs)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range evs {
		s.ids[ev.ID()] = err == nil
	}
	return err
}

func (s *storedIDs) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids[id]
}

func jetStream(t *testing.T) *storedIDs {
	srv := brokertest.Start(t)
	rt, err := runtime.New(context.Background(), runtime.Defaults(), brokertest.Connect(t, srv), quiet)
	require.NoError(t, err)
	return &storedIDs{Broker: rt.Publisher(Name), ids: map[string]bool{}}
}

func TestTMCPollerRunConfirmsOnlyStoredMessages(t *testing.T) {
	b := jetStream(t)
	gw := toptest.New(t, "app", "secret")
	gw.Add(toptest.Message{ID: "101", Topic: "taobao_trade_TradeBuyerPay", PubTime: "2026-11-11 00:00:00", UserID: 7,
		Content: `{"tid":1,"payment":"12.30","buyer_open_uid":"u1"}`},
		toptest.Message{ID: "102", Topic: "taobao_trade_TradeBuyerPay", PubTime: "2026-11-11 00:00:00", UserID: 7,
			Content: `{"tid":2,"payment":"twelve","buyer_open_uid":"u1"}`}) // malformed: confirmed, never published
	var unstored []string
	gw.OnConfirm = func(ids []string) {
		for _, id := range ids {
			if id == "101" && !b.has(platform.EventID("tmall", id, 0)) {
				unstored = append(unstored, id)
			}
		}
	}
	cfg := DefaultTMC()
	cfg.AppKey, cfg.Secret, cfg.URL, cfg.Interval, cfg.SignMethod = "app", "secret", gw.URL, 5*time.Millisecond, "md5"
	p := &TMCPoller{Config: cfg, HTTP: http.DefaultClient, Log: quiet, Now: time.Now}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx, b); close(done) }()
	select {
	case <-gw.Drained():
	case <-time.After(30 * time.Second):
		t.Fatal("messages not confirmed")
	}
	cancel()
	<-done
	assert.Empty(t, unstored)
	assert.Equal(t, map[string]int{"101": 1, "102": 1}, gw.Confirmed())
	assert.Zero(t, gw.BadSigns())
	got := brokertest.Events(t, b.JetStream(), stream.Events, events.Subject(events.OrderPaid))
	require.Len(t, got, 1, "the malformed message reached nothing")
	assert.Equal(t, platform.EventID("tmall", "101", 0), got[0].ID())
	m := metricsFor(b)
	for outcome, want := range map[string]float64{OutcomeItems: 2, OutcomeDropped: 1, OutcomeUnhandled: 0, OutcomeError: 0} {
		assert.Equal(t, want, testutil.ToFloat64(m.outcomes.WithLabelValues("tmc", outcome)), "omnimember_polls_total{tmc,%s}: got, want", outcome)
	}
}

func TestJDPollerFirstWindowAndCursor(t *testing.T) {
	b := jetStream(t)
	gw := jdtest.New(t, "jdapp", "secret", "token")
	now := time.Date(2026, 11, 11, 4, 0, 0, 0, time.UTC)
	gw.Put(jdtest.Order{ID: "9", Payment: "5.00", State: "FINISHED_L", PaidAt: "2026-11-11 11:00:00", Pin: "p", Modified: now.Add(-time.Hour)})
	cfg := DefaultJD()
	cfg.AppKey, cfg.Secret, cfg.AccessToken, cfg.URL, cfg.Lookback, cfg.Window = "jdapp", "secret", "token", gw.URL, 3*time.Hour, 2*time.Hour
	p := &JDPoller{Config: cfg, HTTP: http.DefaultClient, Log: quiet, Now: func() time.Time { return now }}
	for _, want := range []bool{true, false} {
		more, err := p.Once(context.Background(), b)
		require.NoError(t, err)
		assert.Equal(t, want, more)
	}
	assert.Equal(t, []jdtest.Window{{Start: "2026-11-11 09:00:00", End: "2026-11-11 11:00:00"}, {Start: "2026-11-11 10:55:00", End: "2026-11-11 12:00:00"}}, gw.Windows())
	kv, err := b.JetStream().KeyValue(context.Background(), CursorBucket)
	require.NoError(t, err)
	e, err := kv.Get(context.Background(), p.CursorKey())
	require.NoError(t, err)
	assert.Equal(t, "2026-11-11T04:00:00Z", string(e.Value()))
	assert.Len(t, brokertest.Events(t, b.JetStream(), stream.Events, events.Subject(events.OrderPaid)), 1)
	assert.Equal(t, 0.0, testutil.ToFloat64(metricsFor(b).lag.WithLabelValues("jd")), "caught up with now")
	assert.Equal(t, 2.0, testutil.ToFloat64(metricsFor(b).outcomes.WithLabelValues("jd", OutcomeItems)), "the order, seen again in the overlap")
}

// TestJDCursorNeverMovesBackwards: another replica advances the cursor while this poller searches
// an older window; this poller's compare-and-set loses and the newer cursor stays.
func TestJDCursorNeverMovesBackwards(t *testing.T) {
	b := jetStream(t)
	gw := jdtest.New(t, "jdapp", "secret", "token")
	now := time.Date(2026, 11, 11, 4, 0, 0, 0, time.UTC)
	cfg := DefaultJD()
	cfg.AppKey, cfg.Secret, cfg.AccessToken, cfg.URL = "jdapp", "secret", "token", gw.URL
	p := &JDPoller{Config: cfg, HTTP: http.DefaultClient, Log: quiet, Now: func() time.Time { return now }}
	kv, err := b.JetStream().CreateOrUpdateKeyValue(context.Background(), jetstreamKV())
	require.NoError(t, err)
	for _, c := range []struct {
		name        string
		now         time.Time
		other, want string
	}{
		{"no cursor yet: Create loses", now, "2026-11-11T05:00:00Z", "2026-11-11T05:00:00Z"},
		{"a cursor both read: Update loses", now.Add(90 * time.Minute), "2026-11-11T06:00:00Z", "2026-11-11T06:00:00Z"},
	} {
		p.Now = func() time.Time { return c.now }
		searched := false
		gw.OnSearch = func() {
			if !searched {
				searched = true
				_, err := kv.Put(context.Background(), p.CursorKey(), []byte(c.other))
				assert.NoError(t, err)
			}
		}
		_, err := p.Once(context.Background(), b)
		require.NoError(t, err, c.name)
		require.True(t, searched, c.name)
		e, err := kv.Get(context.Background(), p.CursorKey())
		require.NoError(t, err)
		assert.Equal(t, c.want, string(e.Value()), "%s: got cursor, want the other replica's", c.name)
	}
}

func jetstreamKV() jetstream.KeyValueConfig { return jetstream.KeyValueConfig{Bucket: CursorBucket} }

// TestJDWindowHalvesWhenTooFull: a window holding more orders than maxPages pages is halved until
// it fits; the cursor stops at the half it took whole and the next poll takes the rest.
func TestJDWindowHalvesWhenTooFull(t *testing.T) {
	b := jetStream(t)
	gw := jdtest.New(t, "jdapp", "secret", "token")
	now := time.Date(2026, 11, 11, 4, 0, 0, 0, time.UTC)
	for i := range maxPages + 1 { // one page each: 101 pages over the last 50 minutes
		gw.Put(jdtest.Order{ID: fmt.Sprint(1000 + i), Payment: "1.00", State: "FINISHED_L", PaidAt: "2026-11-11 11:00:00",
			Pin: fmt.Sprint("p", i), Modified: now.Add(-time.Duration(i) * 30 * time.Second)})
	}
	cfg := DefaultJD()
	cfg.AppKey, cfg.Secret, cfg.AccessToken, cfg.URL, cfg.PageSize = "jdapp", "secret", "token", gw.URL, 1
	cfg.Lookback, cfg.Window, cfg.Overlap = time.Hour, time.Hour, 0
	p := &JDPoller{Config: cfg, HTTP: http.DefaultClient, Log: quiet, Now: func() time.Time { return now }}
	more, err := p.Once(context.Background(), b)
	require.NoError(t, err)
	assert.True(t, more, "only the first half fitted")
	more, err = p.Once(context.Background(), b)
	require.NoError(t, err)
	assert.False(t, more)
	windows := gw.Windows()
	assert.Equal(t, []jdtest.Window{{Start: "2026-11-11 11:00:00", End: "2026-11-11 12:00:00"}, {Start: "2026-11-11 11:00:00", End: "2026-11-11 11:30:00"},
		{Start: "2026-11-11 11:30:00", End: "2026-11-11 12:00:00"}}, windows)
	assert.Len(t, brokertest.Events(t, b.JetStream(), stream.Events, events.Subject(events.OrderPaid)), maxPages+1, "every order once")
}

// TestPolledEventsTheEdgeRefusesAreDropped: what a poller reads passes the edge's checks under
// the history window; an order paid in 2099 is counted dropped and never published.
func TestPolledEventsTheEdgeRefusesAreDropped(t *testing.T) {
	b := jetStream(t)
	gw := jdtest.New(t, "jdapp", "secret", "token")
	now := time.Date(2026, 11, 11, 4, 0, 0, 0, time.UTC)
	gw.Put(jdtest.Order{ID: "10", Payment: "5.00", State: "FINISHED_L", PaidAt: "2026-11-11 11:00:00", Pin: "p", Modified: now.Add(-time.Hour)})
	gw.Put(jdtest.Order{ID: "11", Payment: "5.00", State: "FINISHED_L", PaidAt: "2099-11-11 11:00:00", Pin: "p", Modified: now.Add(-time.Hour)})
	cfg := DefaultJD()
	cfg.AppKey, cfg.Secret, cfg.AccessToken, cfg.URL, cfg.Lookback, cfg.Window = "jdapp", "secret", "token", gw.URL, 3*time.Hour, 3*time.Hour
	p := &JDPoller{Config: cfg, HTTP: http.DefaultClient, Log: quiet, Now: func() time.Time { return now }}
	_, err := p.Once(context.Background(), b)
	require.NoError(t, err)
	got := brokertest.Events(t, b.JetStream(), stream.Events, events.Subject(events.OrderPaid))
	require.Len(t, got, 1)
	assert.Equal(t, platform.EventID("jd", "10/paid", 0), got[0].ID())
	assert.Equal(t, 1.0, testutil.ToFloat64(metricsFor(b).outcomes.WithLabelValues("jd", OutcomeDropped)))
}
