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

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/broker/brokertest"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func conflictCheck(t testing.TB) *conflicts {
	srv := brokertest.Start(t)
	rt, err := runtime.New(context.Background(), runtime.Defaults(), brokertest.Connect(t, srv), slog.New(slog.NewJSONHandler(io.Discard, nil)))
	require.NoError(t, err)
	c := &conflicts{ttl: time.Minute}
	c.use(rt.Publisher(Name))
	return c
}

func exampleOrder(t testing.TB, id string, amount int64) (ev events.OrderPaidData, data any) {
	d := events.OrderPaidData{OrderID: "o-" + id, Channel: "jd", ShopID: "jd-shop-9", AmountFen: amount, PaidAt: t0,
		Identities: []events.Identity{{Type: "jd_pin", Value: "p"}}}
	return d, &d
}

// TestRacingSendersOfOneIDOneWins: two senders race the same id with different data; the
// key-value create is atomic, so exactly one is accepted and the other gets 409.
func TestRacingSendersOfOneIDOneWins(t *testing.T) {
	c := conflictCheck(t)
	const racers = 8
	results := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			d, data := exampleOrder(t, "race", int64(100+i))
			ev, err := events.New(events.OrderPaid, "race", "jd/jd-shop-9", t0, d)
			require.NoError(t, err)
			results[i] = c.claim(context.Background(), ev, data)
		})
	}
	wg.Wait()
	accepted := 0
	for _, err := range results {
		if err == nil {
			accepted++
			continue
		}
		rf, ok := err.(*runtime.Refusal)
		require.True(t, ok, "got %v, want a refusal", err)
		assert.Equal(t, http.StatusConflict, rf.Status)
	}
	assert.Equal(t, 1, accepted, "got accepted, want exactly one")
}

// BenchmarkSameIDCheck measures what the 409 check adds to each new event: one key-value create
// (a JetStream publish and its ack) on an embedded server with a file store.
func BenchmarkSameIDCheck(b *testing.B) {
	c := conflictCheck(b)
	d, data := exampleOrder(b, "bench", 100)
	ev, err := events.New(events.OrderPaid, "x", "jd/jd-shop-9", t0, d)
	require.NoError(b, err)
	ctx := context.Background()
	_, err = c.bucket(ctx)
	require.NoError(b, err)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ev.SetID(fmt.Sprint("bench-", i))
		i++
		if err := c.claim(ctx, ev, data); err != nil {
			b.Fatal(err)
		}
	}
}
