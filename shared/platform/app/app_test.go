package app

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

var creds = platform.Credentials{"brand-app": {"secret": "app-secret-1"}}

// signed signs a batch as the brand's backend does, from the documented scheme (not with the
// package's own signer): v1= hex HMAC-SHA256(secret, timestamp "\n" body).
func signed(appKey, secret string, ts time.Time, body string) platform.Push {
	stamp := strconv.FormatInt(ts.Unix(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(stamp + "\n" + body))
	h := textproto.MIMEHeader{}
	h.Set("X-Omnimember-App", appKey)
	h.Set("X-Omnimember-Timestamp", stamp)
	h.Set("X-Omnimember-Signature", "v1="+hex.EncodeToString(m.Sum(nil)))
	return platform.Push{Platform: Name, Method: "POST", Header: h, Body: []byte(body), ReceivedAt: received}
}

const batchBody = `{"batch":[
 {"type":"identify","messageId":"m-1","anonymousId":"anon-1","userId":"u-42","traits":{"phone":"13812345678","nickname":"Li"},"timestamp":"2026-11-25T09:59:00Z"},
 {"type":"track","messageId":"m-2","anonymousId":"anon-1","userId":"u-42","event":"Add To Cart","properties":{"sku":"LATTE","price":32.5,"tags":["hot"],"contact":"call 13812345678"},"timestamp":"2026-11-25T09:59:10Z"},
 {"type":"page","messageId":"m-3","anonymousId":"anon-1","name":"Menu","properties":{"path":"/menu"},"timestamp":"2026-11-25T09:59:20Z"},
 {"type":"screen","messageId":"m-4","anonymousId":"anon-1","timestamp":"2026-11-25T09:59:30Z"},
 {"type":"track","messageId":"m-5","event":"Open","timestamp":"2026-11-25T09:59:40Z"}
]}`

type normalised struct {
	Kind       string
	Identities []events.Identity
	Attributes map[string]string
}

func TestHandleNormalisesABatch(t *testing.T) {
	res, err := Adapter{}.Handle(context.Background(), signed("brand-app", "app-secret-1", received, batchBody), creds)
	require.NoError(t, err)
	require.NoError(t, Adapter{}.Verify(signed("brand-app", "app-secret-1", received, batchBody), creds))
	assert.Equal(t, "brand-app", res.Shop)
	assert.Equal(t, []string{"screen", "track (no id)"}, res.Unhandled)
	assert.JSONEq(t, `{"ok":true,"events":3}`, string(res.Reply.Body))
	want := []struct {
		typ, id string
		data    normalised
	}{
		{events.MemberRegistered, "m-1", normalised{Identities: []events.Identity{{Type: "app_user_id", Value: "u-42"},
			{Type: "anonymous_id", Value: "anon-1"}, {Type: "phone", Value: "13812345678"}}}},
		{events.InteractionRecorded, "m-2", normalised{Kind: "track_add_to_cart", Identities: []events.Identity{{Type: "app_user_id", Value: "u-42"},
			{Type: "anonymous_id", Value: "anon-1"}}, Attributes: map[string]string{"event": "Add To Cart", "sku": "LATTE", "price": "32.5", "tags": `["hot"]`,
			"contact": "call 138****5678"}}},
		{events.InteractionRecorded, "m-3", normalised{Kind: "page", Identities: []events.Identity{{Type: "anonymous_id", Value: "anon-1"}},
			Attributes: map[string]string{"page": "Menu", "path": "/menu"}}},
	}
	require.Len(t, res.Events, len(want))
	for i, w := range want {
		ev := res.Events[i]
		require.NoError(t, events.Validate(ev))
		assert.Equal(t, w.typ, ev.Type())
		assert.Equal(t, platform.EventID("app", "brand-app/"+w.id, 0), ev.ID())
		var got normalised
		require.NoError(t, ev.DataAs(&got))
		assert.Equal(t, w.data, got)
	}
}

func TestHandleRefuses(t *testing.T) {
	ok := func(body string) platform.Push { return signed("brand-app", "app-secret-1", received, body) }
	call := `{"type":"track","messageId":"m","event":"e","userId":"u","timestamp":"2026-11-25T10:00:00Z"}`
	tests := []struct {
		name      string
		push      platform.Push
		wantErr   error
		wantField string
	}{
		{"unknown app", signed("other-app", "app-secret-1", received, batchBody), platform.ErrUnknownShop, ""},
		{"wrong secret", signed("brand-app", "write-key", received, batchBody), platform.ErrSignature, ""},
		{"stale", signed("brand-app", "app-secret-1", received.Add(10*time.Minute), batchBody), platform.ErrSignature, ""},
		{"empty batch", ok(`{"batch":[]}`), nil, "batch"},
		{"no messageId", ok(`{"batch":[` + call + `,{"type":"page","userId":"u","timestamp":"2026-11-25T10:00:00Z"}]}`), nil, "batch.1.messageId"},
		{"no timestamp", ok(`{"batch":[{"type":"page","messageId":"m","userId":"u"}]}`), nil, "batch.0.timestamp"},
		{"track without event", ok(`{"batch":[{"type":"track","messageId":"m","userId":"u","timestamp":"2026-11-25T10:00:00Z"}]}`), nil, "batch.0.event"},
		{"bad phone", ok(`{"batch":[{"type":"identify","messageId":"m","userId":"u","traits":{"phone":"555"},"timestamp":"2026-11-25T10:00:00Z"}]}`), nil, "batch.0.traits.phone"},
		{"userId as number", ok(`{"batch":[{"type":"identify","messageId":"m","userId":42}]}`), nil, "batch.userId"},
		{"not JSON", ok(`batch`), nil, "body"},
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
			assert.NotContains(t, err.Error(), "555", "a phone is never echoed")
		})
	}
}

func TestKind(t *testing.T) {
	tests := []struct{ event, want string }{
		{"Add To Cart", "track_add_to_cart"},
		{"order_completed", "track_order_completed"},
		{"  --Live: Watch!! ", "track_live_watch"},
		{"直播观看", "track"},
		{"an event name far longer than the forty characters a kind may have", "track_an_event_name_far_longer_than_the"},
	}
	for _, tc := range tests {
		got := Kind(tc.event)
		assert.Equal(t, tc.want, got, tc.event)
		assert.LessOrEqual(t, len(got), 40)
	}
}

// FuzzParse: any body parses into calls whose events validate, or is refused with a field error.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{batchBody, `{"batch":[]}`, `{}`, `{"batch":[{"type":"track","messageId":"1","event":"\u0000","userId":"u","timestamp":"2026-01-01T00:00:00Z"}]}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := Parse(body)
		if err != nil {
			_, ok := errors.AsType[*events.FieldError](err)
			require.True(t, ok, "a parse error names its field: %v", err)
			return
		}
		res, err := Normalise("app-1", b)
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
