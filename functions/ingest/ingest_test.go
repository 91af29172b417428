package ingest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/admit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// exampleEdge judges the contract's examples (10 to 20 November 2026) on 21 November.
func exampleEdge() Edge {
	e := DefaultEdge()
	e.Window = admit.Live(30*24*time.Hour, admit.DefaultMaxSkew)
	e.Now = func() time.Time { return time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC) }
	return e
}

func TestHandleAcceptsChannelEventsOnly(t *testing.T) {
	h := &Handler{Edge: exampleEdge()}
	for _, typ := range events.All {
		t.Run(events.ShortName(typ), func(t *testing.T) {
			ev, err := events.Example(typ)
			require.NoError(t, err)
			outs, err := h.Handle(context.Background(), ev)
			var fe *events.FieldError
			switch typ {
			case events.MemberRegistered, events.OrderPaid, events.OrderRefunded, events.InteractionRecorded:
				require.NoError(t, err)
				require.Len(t, outs, 1)
				assert.Equal(t, ev.ID(), outs[0].ID(), "passed on under its own id")
				assert.Equal(t, ev.Data(), outs[0].Data(), "with its data unchanged")
				at, ok := events.ReceivedAt(outs[0])
				require.True(t, ok, "stamped with the time ingest received it")
				assert.True(t, h.Edge.Now().Equal(at))
			default:
				require.True(t, errors.As(err, &fe), "internal events are refused")
				assert.Equal(t, "type", fe.Field)
			}
		})
	}
}

func TestHandleNamesTheBadField(t *testing.T) {
	ev, err := events.Example(events.OrderRefunded)
	require.NoError(t, err)
	ev.DataEncoded = []byte(`{"orderId":"1","refundId":"r","channel":"douyin","amountFen":-5,"refundedAt":"2026-11-14T09:30:00+08:00","identities":[{"type":"phone","value":"13812345678"}]}`)
	_, err = (&Handler{Edge: exampleEdge()}).Handle(context.Background(), ev)
	var fe *events.FieldError
	require.True(t, errors.As(err, &fe))
	assert.Equal(t, "data.amountFen", fe.Field)
}

// TestHandleOverwritesASendersReceivedAt: the stamp is the server's word, never the sender's.
func TestHandleOverwritesASendersReceivedAt(t *testing.T) {
	ev, err := events.Example(events.OrderPaid)
	require.NoError(t, err)
	events.StampReceived(&ev, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	h := &Handler{Edge: exampleEdge()}
	outs, err := h.Handle(context.Background(), ev)
	require.NoError(t, err)
	at, ok := events.ReceivedAt(outs[0])
	require.True(t, ok)
	assert.True(t, h.Edge.Now().Equal(at), "got %s, want ingest's clock", at)
}

func TestBackfillSourcesNeedAHistorySender(t *testing.T) {
	ev, err := events.Example(events.OrderPaid)
	require.NoError(t, err)
	ev.SetSource("backfill/tmall/shop-1001")
	d, err := events.Decode[events.OrderPaidData](ev)
	require.NoError(t, err)
	d.PaidAt = time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC) // history, far outside the live window
	require.NoError(t, ev.SetData("application/json", d))

	h := &Handler{Edge: exampleEdge()}
	_, err = h.Handle(context.Background(), ev)
	var fe *events.FieldError
	require.True(t, errors.As(err, &fe), "got %v", err)
	assert.Equal(t, "source", fe.Field, "a live sender cannot pass history off")

	h.Edge.HistorySender = func(context.Context) bool { return true }
	outs, err := h.Handle(context.Background(), ev)
	require.NoError(t, err, "a sender the hook vouches for posts history under the backfill's rules")
	_, stamped := events.ReceivedAt(outs[0])
	assert.False(t, stamped, "history counts its own days")
}
