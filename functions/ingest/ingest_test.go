package ingest

import (
	"context"
	"errors"
	"testing"

	"github.com/omnimember/omnimember/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHandleAcceptsChannelEventsOnly(t *testing.T) {
	for _, typ := range events.All {
		t.Run(events.ShortName(typ), func(t *testing.T) {
			ev, err := events.Example(typ)
			require.NoError(t, err)
			outs, err := Handle(context.Background(), ev)
			var fe *events.FieldError
			switch typ {
			case events.MemberRegistered, events.OrderPaid, events.OrderRefunded, events.InteractionRecorded:
				require.NoError(t, err)
				require.Len(t, outs, 1)
				assert.Equal(t, ev.ID(), outs[0].ID(), "passed on unchanged")
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
	_, err = Handle(context.Background(), ev)
	var fe *events.FieldError
	require.True(t, errors.As(err, &fe))
	assert.Equal(t, "data.amountFen", fe.Field)
}
