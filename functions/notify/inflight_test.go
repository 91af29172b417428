package notify

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// blockingSink holds the first call until released, counting calls.
type blockingSink struct {
	calls   atomic.Int32
	entered chan struct{}
	release chan struct{}
}

func (b *blockingSink) Deliver(ctx context.Context, n Notification) error {
	if b.calls.Add(1) == 1 {
		b.entered <- struct{}{}
		<-b.release
	}
	return nil
}

// TestARedeliveryDuringACallDoesNotCallAgain delivers an event while its first delivery is still
// calling the provider (a redelivery after the ack wait, or a duplicate on another replica): the
// second is told to retry without calling; after the first finished, it reports the outcome. Past
// the lease (the first caller crashed), a delivery calls again.
func TestARedeliveryDuringACallDoesNotCallAgain(t *testing.T) {
	sink := &blockingSink{entered: make(chan struct{}, 2), release: make(chan struct{})}
	h, _ := newHandler(t, map[string]any{"wecom": sink}, "outbox")
	clock := now
	h.Now = func() time.Time { return clock }
	ev := channelRequest(t, "r1", "wecom", map[string]string{"text": "hi"})

	first := make(chan error, 1)
	go func() { _, err := h.Handle(context.Background(), ev); first <- err }()
	<-sink.entered
	_, err := h.Handle(context.Background(), ev)
	require.ErrorIs(t, err, errInFlight)
	assert.EqualValues(t, 1, sink.calls.Load(), "the provider is not called a second time")

	close(sink.release)
	require.NoError(t, <-first)
	outs, err := h.Handle(context.Background(), ev)
	require.NoError(t, err)
	typ, d := outcome(t, outs)
	assert.Equal(t, events.NotificationSent, typ)
	assert.Equal(t, 1, d.Attempts)
	assert.EqualValues(t, 1, sink.calls.Load())
}

func TestACrashedCallIsRepeatedAfterTheLease(t *testing.T) {
	sink := &blockingSink{entered: make(chan struct{}, 2), release: make(chan struct{})}
	h, _ := newHandler(t, map[string]any{"wecom": sink}, "outbox")
	clock := now
	h.Now = func() time.Time { return clock }
	ev := channelRequest(t, "r1", "wecom", map[string]string{"text": "hi"})
	stuck := make(chan struct{})
	go func() { defer close(stuck); _, _ = h.Handle(context.Background(), ev) }() // hangs in the call: as good as crashed
	<-sink.entered
	defer func() { close(sink.release); <-stuck }()

	clock = now.Add(DefaultSendingLease + time.Second)
	outs, err := h.Handle(context.Background(), ev)
	require.NoError(t, err)
	typ, d := outcome(t, outs)
	assert.Equal(t, events.NotificationSent, typ)
	assert.Equal(t, 2, d.Attempts, "the crashed call counts")
	assert.EqualValues(t, 2, sink.calls.Load())
}
