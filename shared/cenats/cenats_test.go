package cenats

import (
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/omnimember/omnimember/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRoundTripEveryExampleWithTraceContext(t *testing.T) {
	for _, typ := range events.All {
		t.Run(events.ShortName(typ), func(t *testing.T) {
			ev, err := events.Example(typ)
			require.NoError(t, err)
			ev.SetExtension("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
			ev.SetExtension("tracestate", "rojo=00f067aa0ba902b7")
			ev.SetSubject("订单 \"双11\" 100%")
			msg, err := ToMsg(events.Subject(typ), ev)
			require.NoError(t, err)
			assert.Equal(t, typ, msg.Subject)
			assert.Equal(t, ev.Data(), msg.Data, "binary mode carries data as-is")
			got, err := FromMsg(msg.Header, msg.Data)
			require.NoError(t, err)
			assertSameEvent(t, ev, got)
		})
	}
}

func assertSameEvent(t *testing.T, want, got event.Event) {
	t.Helper()
	assert.Equal(t, want.ID(), got.ID())
	assert.Equal(t, want.Type(), got.Type())
	assert.Equal(t, want.Source(), got.Source())
	assert.Equal(t, want.Subject(), got.Subject())
	assert.Equal(t, want.DataSchema(), got.DataSchema())
	assert.Equal(t, want.DataContentType(), got.DataContentType())
	assert.True(t, want.Time().Equal(got.Time()), "got time %v, want %v", got.Time(), want.Time())
	assert.Equal(t, want.Extensions(), got.Extensions())
	assert.JSONEq(t, string(want.Data()), string(got.Data()))
}

func TestHeadersFollowTheBinding(t *testing.T) {
	ev := event.New()
	ev.SetID("1234-1234-1234")
	ev.SetType("com.example.someevent")
	ev.SetSource("/mycontext/subcontext")
	ev.SetTime(time.Date(2018, 4, 5, 3, 56, 24, 0, time.UTC))
	ev.SetSubject("Euro € 😀")
	require.NoError(t, ev.SetData("application/json", map[string]int{"n": 1}))
	msg, err := ToMsg("mySubject", ev)
	require.NoError(t, err)
	assert.Equal(t, "1.0", msg.Header.Get("ce-specversion"))
	assert.Equal(t, "com.example.someevent", msg.Header.Get("ce-type"))
	assert.Equal(t, "2018-04-05T03:56:24Z", msg.Header.Get("ce-time"))
	assert.Equal(t, "application/json", msg.Header.Get("ce-datacontenttype"))
	// The binding's own example of §3.1.3.2.
	assert.Equal(t, "Euro%20%E2%82%AC%20%F0%9F%98%80", msg.Header.Get("ce-subject"))
	assert.Empty(t, msg.Header.Get("Content-Type"), "binary mode must not claim a structured content type")
}

func TestReadsStructuredMode(t *testing.T) {
	raw, err := events.ExampleJSON(events.OrderPaid)
	require.NoError(t, err)
	h := nats.Header{"Content-Type": []string{"Application/CloudEvents+JSON; charset=utf-8"}}
	got, err := FromMsg(h, raw)
	require.NoError(t, err)
	want, err := events.Example(events.OrderPaid)
	require.NoError(t, err)
	assertSameEvent(t, want, got)
}

func TestDecodeRejectsBadMessages(t *testing.T) {
	tests := []struct {
		name   string
		header nats.Header
	}{
		{"no headers", nats.Header{}},
		{"missing id", nats.Header{"ce-specversion": {"1.0"}, "ce-type": {"t"}, "ce-source": {"s"}}},
		{"bad percent", nats.Header{"ce-specversion": {"1.0"}, "ce-id": {"a%2"}, "ce-type": {"t"}, "ce-source": {"s"}}},
		{"overlong utf-8", nats.Header{"ce-specversion": {"1.0"}, "ce-id": {"%C0%A0"}, "ce-type": {"t"}, "ce-source": {"s"}}},
		{"bad time", nats.Header{"ce-specversion": {"1.0"}, "ce-id": {"1"}, "ce-type": {"t"}, "ce-source": {"s"}, "ce-time": {"noon"}}},
		{"bad extension name", nats.Header{"ce-specversion": {"1.0"}, "ce-id": {"1"}, "ce-type": {"t"}, "ce-source": {"s"}, "ce-Bad_Name": {"x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FromMsg(tt.header, []byte(`{}`))
			require.Error(t, err)
		})
	}
}

func TestAcceptsQuotedAndLowercaseEncodings(t *testing.T) {
	h := nats.Header{"CE-SpecVersion": {"1.0"}, "ce-id": {`"a b"`}, "ce-type": {"t"}, "ce-source": {"s"}, "ce-subject": {"caf%c3%a9"}}
	got, err := FromMsg(h, nil)
	require.NoError(t, err)
	assert.Equal(t, "a b", got.ID())
	assert.Equal(t, "café", got.Subject())
}

func FuzzFromMsg(f *testing.F) {
	f.Add("1.0", "id-1", "omnimember.order.paid", "caf%C3%A9", []byte(`{"a":1}`))
	f.Add("1.0", `"q\"uoted"`, "t", "%", []byte{})
	f.Fuzz(func(t *testing.T, spec, id, typ, subject string, data []byte) {
		h := nats.Header{"ce-specversion": {spec}, "ce-id": {id}, "ce-type": {typ}, "ce-source": {"s"}, "ce-subject": {subject}}
		ev, err := FromMsg(h, data)
		if err != nil {
			return
		}
		msg, err := ToMsg("x", ev)
		require.NoError(t, err, "a decoded event must re-encode")
		again, err := FromMsg(msg.Header, msg.Data)
		require.NoError(t, err)
		require.Equal(t, ev.ID(), again.ID())
		require.Equal(t, ev.Subject(), again.Subject())
	})
}
