package ingest

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/cenats"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/stretchr/testify/require"
)

// FuzzEventsBody feeds /v1/events bodies (structured mode) through the receiver's decoding and
// ingest's admission: an event is either refused as bad input, or everything a later stage does
// with it works — its schema, strict decoding into the Go type match decodes, identities that
// normalise within the bound (and one that resolves a member for money), a NATS round trip and a
// receipt's JSON round trip that keep it the same event.
//
//	cd functions/ingest && go test -run '^$' -fuzz FuzzEventsBody -fuzztime 60s .
func FuzzEventsBody(f *testing.F) {
	for _, typ := range Accepts {
		raw, err := events.ExampleJSON(typ)
		require.NoError(f, err)
		f.Add(raw)
	}
	f.Add([]byte(`{"specversion":"1.0","type":"omnimember.order.paid","source":"jd/jd-shop-9","id":"a","data":{"orderId":"o","channel":"jd","shopId":"jd-shop-9","amountFen":12.0,"paidAt":"2026-11-20T10:00:00+08:00","identities":[{"type":"jd_pin","value":"p"}]}}`))
	f.Add([]byte(`{"specversion":"1.0","type":"omnimember.order.paid","source":"jd/jd-shop-9","id":"\xff","data":{"orderId":"o","channel":"jd","shopId":"jd-shop-9","amountFen":1,"paidAt":"2026-11-20T10:00:00+08:00","identities":[{"type":"phone","value":"+86 138 1234 5678"}]}}`))
	h := &Handler{Edge: exampleEdge()}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, EventsPath, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/cloudevents+json")
		ev, err := cehttp.NewEventFromHTTPRequest(req)
		if err != nil {
			return // the receiver answers 400 "not a CloudEvent"
		}
		outs, err := h.Handle(context.Background(), *ev)
		if err != nil {
			var fe *events.FieldError
			var rf *runtime.Refusal
			require.True(t, errors.As(err, &fe) || errors.As(err, &rf), "a refusal must name a field: %v", err)
			return
		}
		require.Len(t, outs, 1)
		laterStagesAccept(t, outs[0])
	})
}

func laterStagesAccept(t *testing.T, ev cloudevents.Event) {
	require.NoError(t, events.Validate(ev))
	data, err := events.DecodeData(ev.Type(), ev.Data())
	require.NoError(t, err, "match decodes what ingest accepted")
	var ids []events.Identity
	switch d := data.(type) {
	case *events.OrderPaidData:
		ids = d.Identities
	case *events.OrderRefundedData:
		ids = d.Identities
	case *events.MemberRegisteredData:
		ids = d.Identities
	case *events.InteractionRecordedData:
		ids = d.Identities
	}
	norm, err := identity.NormalizeAll(ids)
	require.NoError(t, err, "every identity normalises")
	require.LessOrEqual(t, len(norm), events.MaxIdentities, "identity.resolved can carry them")

	msg, err := cenats.ToMsg(events.Subject(ev.Type()), ev)
	require.NoError(t, err)
	back, err := cenats.FromMsg(msg.Header, msg.Data)
	require.NoError(t, err, "the NATS round trip decodes")
	require.Equal(t, ev.ID(), back.ID())
	require.Equal(t, ev.Source(), back.Source())
	require.Equal(t, ev.Data(), back.Data())

	raw, err := ev.MarshalJSON()
	require.NoError(t, err)
	var again cloudevents.Event
	require.NoError(t, again.UnmarshalJSON(raw), "a receipt stores and loads it")
	require.Equal(t, ev.ID(), again.ID(), "the receipt's copy is the same event")
}

// FuzzOrderFields fuzzes the fields of an order.paid body that later stages read — the id, the
// amount as written (12.0, 1e30, -0), the payment time, an identity and an item's quantity — so
// that most inputs reach the edge's checks, with the same verdict as FuzzEventsBody.
//
//	cd functions/ingest && go test -run '^$' -fuzz FuzzOrderFields -fuzztime 60s .
func FuzzOrderFields(f *testing.F) {
	f.Add("e-1", "99900", "2026-11-20T10:00:00+08:00", "phone", "+86 138-1234-5678", "1")
	f.Add("e-2", "12.0", "2026-11-20T10:00:00+08:00", "jd_pin", "p", "2")
	f.Add("e-3", "1e30", "9999-12-31T23:59:59Z", "phone_sha256", "ABC", "1.5")
	f.Add("e\xff", "9223372036854775807", "2026-11-20T10:00:00Z", "tmall_ouid", "x", "1000001")
	f.Add("e-5", "10000000000", "2026-11-14T10:00:00.123456789+08:00", "phone_masked", "138****5678", "1")
	h := &Handler{Edge: exampleEdge()}
	f.Fuzz(func(t *testing.T, id, amount, paidAt, idType, idValue, quantity string) {
		body := []byte(`{"specversion":"1.0","type":"omnimember.order.paid","source":"jd/jd-shop-9","id":` + quote(id) +
			`,"data":{"orderId":"o","channel":"jd","shopId":"jd-shop-9","amountFen":` + amount + `,"paidAt":` + quote(paidAt) +
			`,"identities":[{"type":` + quote(idType) + `,"value":` + quote(idValue) + `}],"items":[{"sku":"a","quantity":` + quantity + `,"amountFen":1}]}}`)
		req := httptest.NewRequest(http.MethodPost, EventsPath, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/cloudevents+json")
		ev, err := cehttp.NewEventFromHTTPRequest(req)
		if err != nil {
			return
		}
		outs, err := h.Handle(context.Background(), *ev)
		if err != nil {
			var fe *events.FieldError
			var rf *runtime.Refusal
			require.True(t, errors.As(err, &fe) || errors.As(err, &rf), "a refusal must name a field: %v", err)
			return
		}
		laterStagesAccept(t, outs[0])
		d, err := events.Decode[events.OrderPaidData](outs[0])
		require.NoError(t, err)
		require.GreaterOrEqual(t, d.AmountFen, int64(0))
		require.LessOrEqual(t, d.AmountFen, events.MaxFen, "the ledger's bound holds")
	})
}

// quote writes s as a JSON string as a careless sender might: raw bytes, only quotes and
// backslashes escaped, so invalid UTF-8 reaches the decoder.
func quote(s string) string {
	var b bytes.Buffer
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte("0123456789abcdef"[c>>4])
			b.WriteByte("0123456789abcdef"[c&0xf])
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
