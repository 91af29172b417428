package pos

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/textproto"
	"strconv"
	"testing"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/platform"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var received = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

var creds = platform.Credentials{"store-7": {"secret": "pos-secret-7"}}

// signed builds a push the way a store system signs it, written here from the documented scheme
// (not with the package's own signer): v1= hex HMAC-SHA256(secret, timestamp "\n" body).
func signed(store, secret string, ts time.Time, body string) platform.Push {
	stamp := strconv.FormatInt(ts.Unix(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(stamp + "\n" + body))
	h := textproto.MIMEHeader{}
	h.Set("X-Omnimember-Store", store)
	h.Set("X-Omnimember-Timestamp", stamp)
	h.Set("X-Omnimember-Signature", "v1="+hex.EncodeToString(m.Sum(nil)))
	return platform.Push{Platform: Name, Method: "POST", Header: h, Body: []byte(body), ReceivedAt: received}
}

const (
	paidBody = `{"type":"order.paid","id":"m-1","order":{"id":"T-1001","amountFen":12900,"paidAt":"2026-11-25T17:58:00+08:00",` +
		`"items":[{"sku":"LATTE","name":"拿铁","quantity":2,"amountFen":12900}]},"member":{"phone":"+86 138-1234-5678","card":"C-88"}}`
	refundBody = `{"type":"order.refunded","id":"m-2","refund":{"id":"R-1","orderId":"T-1001","amountFen":6450,` +
		`"refundedAt":"2026-11-25T18:10:00+08:00"},"member":{"card":"C-88"}}`
	registerBody = `{"type":"member.registered","id":"m-3","member":{"phone":"13812345678","card":"C-88","crmId":"crm-9",` +
		`"registeredAt":"2026-11-25T17:00:00+08:00"}}`
)

func TestHandleNormalises(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantType  string
		wantIDs   []events.Identity
		wantData  string // a fragment of the event data
		unhandled []string
	}{
		{"paid", paidBody, events.OrderPaid, []events.Identity{{Type: "phone", Value: "+86 138-1234-5678"}, {Type: "pos_card", Value: "C-88"}},
			`"orderId":"T-1001","channel":"pos","shopId":"store-7","amountFen":12900`, nil},
		{"partial refund", refundBody, events.OrderRefunded, []events.Identity{{Type: "pos_card", Value: "C-88"}},
			`"orderId":"T-1001","refundId":"R-1","channel":"pos","shopId":"store-7","amountFen":6450`, nil},
		{"registered", registerBody, events.MemberRegistered,
			[]events.Identity{{Type: "phone", Value: "13812345678"}, {Type: "pos_card", Value: "C-88"}, {Type: "crm_id", Value: "crm-9"}},
			`"channel":"pos","shopId":"store-7"`, nil},
		{"other type", `{"type":"stock.changed","id":"m-4"}`, "", nil, "", []string{"stock.changed"}},
		{"cash sale without member", `{"type":"order.paid","id":"m-5","order":{"id":"T-2","amountFen":100,"paidAt":"2026-11-25T10:00:00Z"}}`,
			"", nil, "", []string{"order.paid (no member)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Adapter{}.Handle(context.Background(), signed("store-7", "pos-secret-7", received, tc.body), creds)
			require.NoError(t, err)
			require.NoError(t, Adapter{}.Verify(signed("store-7", "pos-secret-7", received, tc.body), creds))
			assert.Equal(t, "store-7", res.Shop)
			assert.Equal(t, tc.unhandled, res.Unhandled)
			assert.JSONEq(t, `{"ok":true,"id":"`+jsonID(t, tc.body)+`"}`, string(res.Reply.Body))
			if tc.wantType == "" {
				assert.Empty(t, res.Events)
				return
			}
			require.Len(t, res.Events, 1)
			ev := res.Events[0]
			require.NoError(t, events.Validate(ev))
			assert.Equal(t, tc.wantType, ev.Type())
			assert.Equal(t, platform.EventID("pos", "store-7/"+jsonID(t, tc.body), 0), ev.ID(), "derived from store and message id")
			assert.Contains(t, string(ev.Data()), tc.wantData)
			ids := struct{ Identities []events.Identity }{}
			require.NoError(t, ev.DataAs(&ids))
			assert.Equal(t, tc.wantIDs, ids.Identities)
		})
	}
}

func jsonID(t *testing.T, body string) string {
	msg, err := Parse([]byte(body))
	require.NoError(t, err)
	return msg.ID
}

func TestHandleRefuses(t *testing.T) {
	tests := []struct {
		name      string
		push      platform.Push
		wantErr   error
		wantField string
	}{
		{"unknown store", signed("store-9", "pos-secret-7", received, paidBody), platform.ErrUnknownShop, ""},
		{"wrong secret", signed("store-7", "guess", received, paidBody), platform.ErrSignature, ""},
		{"replayed after the window", signed("store-7", "pos-secret-7", received.Add(-301*time.Second), paidBody), platform.ErrSignature, ""},
		{"no type", signed("store-7", "pos-secret-7", received, `{"id":"m"}`), nil, "type"},
		{"no id", signed("store-7", "pos-secret-7", received, `{"type":"order.paid"}`), nil, "id"},
		{"amount as text", signed("store-7", "pos-secret-7", received, `{"type":"order.paid","id":"m","order":{"amountFen":"12"}}`), nil, "order.amountFen"},
		{"no order", signed("store-7", "pos-secret-7", received, `{"type":"order.paid","id":"m"}`), nil, "order"},
		{"no paidAt", signed("store-7", "pos-secret-7", received, `{"type":"order.paid","id":"m","order":{"id":"o","amountFen":1}}`), nil, "order.paidAt"},
		{"bad phone", signed("store-7", "pos-secret-7", received, `{"type":"member.registered","id":"m","member":{"phone":"12345"}}`), nil, "member.phone"},
		{"refund of nothing", signed("store-7", "pos-secret-7", received, `{"type":"order.refunded","id":"m","refund":{"id":"r","orderId":"o","amountFen":0}}`), nil, "refund.amountFen"},
		{"item without sku", signed("store-7", "pos-secret-7", received, `{"type":"order.paid","id":"m","order":{"id":"o","amountFen":1,`+
			`"paidAt":"2026-11-25T10:00:00Z","items":[{"quantity":1,"amountFen":1}]},"member":{"card":"c"}}`), nil, "order.items.0.sku"},
		{"not JSON", signed("store-7", "pos-secret-7", received, `order.paid`), nil, "body"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Adapter{}.Handle(context.Background(), tc.push, creds)
			require.Error(t, err)
			if tc.wantErr != nil {
				assert.True(t, errors.Is(err, tc.wantErr), "got %v", err)
				assert.ErrorIs(t, Adapter{}.Verify(tc.push, creds), tc.wantErr, "Verify refuses what Handle cannot verify")
				return
			}
			assert.NoError(t, Adapter{}.Verify(tc.push, creds), "signed: Verify accepts it (ingest archives it)")
			fe, ok := errors.AsType[*events.FieldError](err)
			require.True(t, ok, "got %v", err)
			assert.Equal(t, tc.wantField, fe.Field)
			assert.NotContains(t, err.Error(), "12345", "a phone is never echoed")
		})
	}
}

// FuzzParse: any body parses into a message whose events validate, or is refused with a field
// error; never a panic, never an invalid event.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{paidBody, refundBody, registerBody, `{"type":"x","id":"1"}`, `{}`, `[]`, `{"type":"order.paid","id":"1","order":{"paidAt":"x"}}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		msg, err := Parse(body)
		if err != nil {
			_, ok := errors.AsType[*events.FieldError](err)
			require.True(t, ok, "a parse error names its field: %v", err)
			return
		}
		res, err := Normalise("store-1", msg)
		if err != nil {
			_, ok := errors.AsType[*events.FieldError](err)
			require.True(t, ok, "a schema refusal names its field: %v", err)
			return
		}
		for _, ev := range res.Events {
			require.NoError(t, events.Validate(ev), string(body))
		}
	})
}
