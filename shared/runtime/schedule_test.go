package runtime

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/broker/brokertest"
	"github.com/omnimember/omnimember/shared/stream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestScheduledEventAppearsAtItsTime: a scheduled event is not on its subject before its time and
// is there, decodable, once the server fires it, with nothing of the publisher running; a second
// schedule of the same event replaces the first (one event, at the later time). A type outside
// Emits is refused as Publish refuses it.
func TestScheduledEventAppearsAtItsTime(t *testing.T) {
	srv := brokertest.Start(t)
	h := startHarness(t, brokertest.Connect(t, srv), testConfig())
	pub := h.rt.publisherFor(Function{Name: "tester", Emits: []string{events.OrderPaid}})
	ctx := context.Background()
	ev := orderEvent(t, "scheduled-1")
	require.NoError(t, pub.Schedule(ctx, ev, time.Now().Add(time.Hour)))
	at := time.Now().Add(2 * time.Second)
	require.NoError(t, pub.Schedule(ctx, ev, at), "again, sooner: replaces the first")
	assert.Empty(t, brokertest.Events(t, h.js, stream.Events, events.OrderPaid), "got an event before its time, want none")

	var got []string
	require.Eventually(t, func() bool {
		got = nil
		for _, e := range brokertest.Events(t, h.js, stream.Events, events.OrderPaid) {
			got = append(got, e.ID())
		}
		return len(got) > 0
	}, 15*time.Second, 50*time.Millisecond, "the scheduled event never appeared")
	assert.False(t, time.Now().Before(at), "got it before its time")
	assert.Equal(t, []string{"scheduled-1"}, got, "got, want the event once")

	s, err := h.js.Stream(ctx, stream.Events)
	require.NoError(t, err)
	_, err = s.GetLastMsgForSubject(ctx, stream.ScheduleSubject("tester", "scheduled-1"))
	assert.ErrorIs(t, err, jetstream.ErrMsgNotFound, "the fired schedule is gone")

	refused := orderEvent(t, "scheduled-2")
	refused.SetType(events.PointsAwarded)
	assert.True(t, IsPermanent(pub.Schedule(ctx, refused, at)), "a type outside Emits")
}
