package notify

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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

// chain is notify on a real in-process JetStream and a real embedded store, started and stopped
// the way a scale-to-zero platform does: each start is a new runtime instance on the same durable
// consumer and store.
type chain struct {
	t     *testing.T
	nc    *nats.Conn
	js    jetstream.JetStream
	st    store.Store
	clock *clock
	stop  func()
}

func newChain(t *testing.T, c *clock) *chain {
	srv := brokertest.Start(t)
	st, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"), embedded.Options{Indexes: StoreIndexes(member.Indexes), NoSync: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	ch := &chain{t: t, nc: brokertest.Connect(t, srv), st: st, clock: c}
	ch.js = ch.runtime().JetStream()
	return ch
}

func (c *chain) runtime() *runtime.Runtime {
	cfg := runtime.Defaults()
	cfg.AckWait, cfg.MaxDeliver, cfg.Concurrency = 5*time.Second, 5, 8
	cfg.Backoff, cfg.ShutdownTimeout = []time.Duration{20 * time.Millisecond}, 5*time.Second
	rt, err := runtime.New(context.Background(), cfg, c.nc, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(c.t, err)
	return rt
}

// start runs a fresh notify instance until stop, which drains it as SIGTERM would.
func (c *chain) start() {
	h := &Handler{Store: c.st, Sinks: map[string]any{"outbox": Outbox{}}, Channel: "outbox", Locale: "zh-CN",
		Templates: DefaultTemplates(), MaxAttempts: 5, Rules: DefaultRules(), PollEvery: 20 * time.Millisecond, Now: c.clock.now}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(c.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.runtime().ServeListener(ctx, ln, h.Function()) }()
	c.stop = func() { cancel(); require.NoError(c.t, <-done) }
	require.Eventually(c.t, func() bool {
		resp, err := http.Get("http://" + ln.Addr().String() + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 10*time.Millisecond)
}

// publish stores a request while notify is down; a copy under another message id is a duplicate
// JetStream cannot drop (a producer's retry after a lost ack), which notify must.
func (c *chain) publish(id, oneID string, duplicate bool) {
	ev := requested(c.t, id, oneID, events.CategoryMarketing, "outbox")
	brokertest.Publish(c.t, c.js, events.Subject(ev.Type()), ev)
	if duplicate {
		brokertest.Publish(c.t, c.js, events.Subject(ev.Type()), ev, jetstream.WithMsgID("retry-"+id))
	}
}

func (c *chain) waitSettled() {
	require.Eventually(c.t, func() bool {
		ok, err := stream.Settled(context.Background(), c.js, stream.Events, Name)
		return err == nil && ok
	}, 30*time.Second, 10*time.Millisecond, "notify finishes the backlog")
}

// outcomes counts the outcome events in JetStream by type, and how often each notification appears.
func (c *chain) outcomes() (map[string]int, map[string]int) {
	byType, byID := map[string]int{}, map[string]int{}
	for _, typ := range []string{events.NotificationSent, events.NotificationSuppressed, events.NotificationFailed} {
		for _, ev := range brokertest.Events(c.t, c.js, stream.Events, events.Subject(typ)) {
			d, err := events.Decode[events.NotificationOutcomeData](ev)
			require.NoError(c.t, err)
			byType[typ]++
			byID[d.NotificationID]++
		}
	}
	return byType, byID
}

func (c *chain) outbox() int {
	docs, err := c.st.Query(context.Background(), store.Query{Collection: member.Outbox})
	require.NoError(c.t, err)
	return len(docs)
}

func oneIDOf(i int) string { return fmt.Sprintf("om_scale%014d", i) }

// grantMarketing records the first n members' consent to marketing on the outbox, as a brand does
// through the consent API (marketing is opt-in).
func (c *chain) grantMarketing(n int) {
	h := &Handler{Store: c.st, Now: c.clock.now}
	for i := range n {
		grant(c.t, h, oneIDOf(i), "outbox")
	}
}

// TestScaleToZeroFinishesTheBacklogOnce: stop notify, publish N requests (and duplicates) while it
// is down, start a new instance, and count exactly N outcomes and N messages.
func TestScaleToZeroFinishesTheBacklogOnce(t *testing.T) {
	const n = 60
	c := newChain(t, newClock(at(25, 10, 0)))
	c.start() // creates the durable consumer, as the first deployment does
	c.stop()
	c.grantMarketing(n)
	for i := range n {
		c.publish(fmt.Sprintf("req-%d", i), oneIDOf(i), i%3 == 0)
	}
	c.start()
	c.waitSettled()
	c.stop()
	byType, byID := c.outcomes()
	assert.Equal(t, map[string]int{events.NotificationSent: n}, byType)
	assert.Len(t, byID, n)
	for id, times := range byID {
		assert.Equal(t, 1, times, "notification %s reported once", id)
	}
	assert.Equal(t, n, c.outbox(), "each message sent exactly once")

	c.start() // another cold start with nothing new: nothing happens again
	c.waitSettled()
	c.stop()
	byType, _ = c.outcomes()
	assert.Equal(t, map[string]int{events.NotificationSent: n}, byType)
	assert.Equal(t, n, c.outbox())
}

// TestDeferredSurvivesScaleToZero: requests arriving at night are deferred, notify is stopped
// overnight, and the instance started after 08:00 sends every one of them exactly once.
func TestDeferredSurvivesScaleToZero(t *testing.T) {
	const n = 20
	c := newChain(t, newClock(at(25, 22, 0)))
	c.start()
	c.stop()
	c.grantMarketing(n)
	for i := range n {
		c.publish(fmt.Sprintf("night-%d", i), oneIDOf(i), i%2 == 0)
	}
	c.start()
	c.waitSettled()
	c.stop()
	byType, _ := c.outcomes()
	assert.Empty(t, byType, "deferred at night, not sent, not dropped")
	assert.Equal(t, 0, c.outbox())

	c.clock.set(at(26, 8, 0))
	c.start()
	require.Eventually(t, func() bool {
		docs, err := c.st.Query(context.Background(), store.Query{Collection: Deferred})
		return err == nil && len(docs) == 0
	}, 30*time.Second, 10*time.Millisecond, "the morning instance drains the deferred queue")
	c.stop()
	byType, byID := c.outcomes()
	assert.Equal(t, map[string]int{events.NotificationSent: n}, byType)
	for id, times := range byID {
		assert.Equal(t, 1, times, "notification %s reported once", id)
	}
	assert.Equal(t, n, c.outbox())
}
