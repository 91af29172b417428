package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/store"
	"github.com/omnimember/omnimember/shared/store/embedded"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

const alice = "om_aaaaaaaaaaaaaaaaaaaa"

// testKeyer keys identities as match does (the SMS replies find their member through it).
var testKeyerSpec = identity.NewKey("n1")

var testKeyer = func() *identity.Keyer {
	k, err := identity.ParseKeys(testKeyerSpec)
	if err != nil {
		panic(err)
	}
	return k
}()

func newHandler(t *testing.T, sinks map[string]any, channel string) (*Handler, store.Store) {
	s, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"), embedded.Options{Indexes: StoreIndexes(member.Indexes)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return &Handler{Store: s, Sinks: sinks, Channel: channel, Locale: "zh-CN", Templates: DefaultTemplates(),
		MaxAttempts: 3, Rules: DefaultRules(), Keyer: testKeyer, Now: func() time.Time { return now }}, s
}

func tierChanged(t *testing.T, id string) cloudevents.Event {
	ev, err := events.New(events.TierChanged, id, events.Source("tier-evaluate"), now, events.TierChangedData{
		OneID: alice, From: "member", To: "silver", Direction: "upgrade", NetSpendFen: 129900, EvaluatedAt: now, SourceID: "s"})
	require.NoError(t, err)
	return ev
}

func pointsAwarded(t *testing.T, id string, points int64) cloudevents.Event {
	ev, err := events.New(events.PointsAwarded, id, events.Source("points-award"), now, events.PointsAwardedData{
		OneID: alice, OrderID: "o1", Channel: "jd", ShopID: "s", Points: points, Balance: points, OrderNetAmountFen: points * 100, PaidAt: now, SourceID: "s"})
	require.NoError(t, err)
	return ev
}

func outcome(t *testing.T, outs []cloudevents.Event) (string, events.NotificationOutcomeData) {
	t.Helper()
	require.Len(t, outs, 1)
	require.NoError(t, events.Validate(outs[0]))
	d, err := events.Decode[events.NotificationOutcomeData](outs[0])
	require.NoError(t, err)
	return outs[0].Type(), d
}

func TestOutboxDeliversOnceInChinese(t *testing.T) {
	h, s := newHandler(t, map[string]any{"outbox": Outbox{}}, "outbox")
	ev := tierChanged(t, "t1")
	first, err := h.Handle(context.Background(), ev)
	require.NoError(t, err)
	typ, d := outcome(t, first)
	assert.Equal(t, events.NotificationSent, typ)
	second, err := h.Handle(context.Background(), ev)
	require.NoError(t, err)
	assert.Equal(t, first[0].ID(), second[0].ID(), "redelivery reports the same outcome")

	docs, err := s.Query(context.Background(), store.Query{Collection: member.Outbox})
	require.NoError(t, err)
	require.Len(t, docs, 1, "sent exactly once")
	var n Notification
	require.NoError(t, docs[0].DataTo(&n))
	assert.Equal(t, d.NotificationID, n.ID)
	assert.Equal(t, "恭喜您升级为银卡会员！全渠道同享银卡权益。", n.Text)
}

func TestZeroPointAwardsSendNothing(t *testing.T) {
	h, _ := newHandler(t, map[string]any{"outbox": Outbox{}}, "outbox")
	outs, err := h.Handle(context.Background(), pointsAwarded(t, "p0", 0))
	require.NoError(t, err)
	assert.Empty(t, outs)
}

// provider is an in-test webhook receiver that checks what a real receiver would: the signature
// over timestamp and body, and the idempotency key.
type provider struct {
	t        *testing.T
	secret   []byte
	statuses []int
	mu       sync.Mutex
	calls    int
	keys     []string
}

func (p *provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ts := r.Header.Get(HeaderTimestamp)
	mac := hmac.New(sha256.New, p.secret)
	mac.Write([]byte(ts + "." + string(body)))
	if r.Header.Get(HeaderSignature) != "v1="+hex.EncodeToString(mac.Sum(nil)) {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Unix(sec, 0).Sub(now).Abs() > 5*time.Minute {
		http.Error(w, "stale", http.StatusUnauthorized)
		return
	}
	var n Notification
	if json.Unmarshal(body, &n) != nil || n.Text == "" {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys = append(p.keys, r.Header.Get(HeaderID))
	status := http.StatusOK
	if p.calls < len(p.statuses) {
		status = p.statuses[p.calls]
	}
	p.calls++
	w.WriteHeader(status)
}

func TestWebhookDelivery(t *testing.T) {
	tests := []struct {
		name         string
		secret       string
		statuses     []int
		wantType     string
		wantAttempts int
		wantCalls    int
	}{
		{"first try", "s3cret", nil, events.NotificationSent, 1, 1},
		{"retried until it works", "s3cret", []int{503, 502}, events.NotificationSent, 3, 3},
		{"rejection fails at once", "s3cret", []int{400}, events.NotificationFailed, 1, 1},
		{"wrong secret is a rejection", "other", nil, events.NotificationFailed, 1, 0}, // refused before it counts
		{"gives up after max attempts", "s3cret", []int{503, 503, 503, 503}, events.NotificationFailed, 3, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &provider{t: t, secret: []byte("s3cret"), statuses: tt.statuses}
			srv := httptest.NewServer(p)
			defer srv.Close()
			sink := Webhook{URL: srv.URL, Secret: []byte(tt.secret), Client: srv.Client(), Now: func() time.Time { return now }}
			h, _ := newHandler(t, map[string]any{"webhook": sink}, "webhook")
			ev := pointsAwarded(t, "p1", 120)
			var outs []cloudevents.Event
			var err error
			for range 10 { // the runtime redelivers after a transient error
				if outs, err = h.Handle(context.Background(), ev); err == nil {
					break
				}
			}
			require.NoError(t, err)
			typ, d := outcome(t, outs)
			assert.Equal(t, tt.wantType, typ)
			assert.Equal(t, tt.wantAttempts, d.Attempts)
			assert.Equal(t, tt.wantCalls, p.calls)
			for _, k := range p.keys {
				assert.Equal(t, d.NotificationID, k, "every attempt carries the same idempotency key")
			}
			again, err := h.Handle(context.Background(), ev)
			require.NoError(t, err)
			assert.Equal(t, outs[0].ID(), again[0].ID())
			assert.Equal(t, tt.wantCalls, p.calls, "a finished notification is never sent again")
		})
	}
}

func TestUnknownChannelFails(t *testing.T) {
	h, _ := newHandler(t, map[string]any{}, "sms")
	outs, err := h.Handle(context.Background(), tierChanged(t, "t1"))
	require.NoError(t, err)
	typ, d := outcome(t, outs)
	assert.Equal(t, events.NotificationFailed, typ)
	assert.Contains(t, d.Reason, "no sink")
}

func TestTemplates(t *testing.T) {
	tpl := DefaultTemplates()
	require.NoError(t, tpl.Validate())
	text, err := tpl.Render("points_awarded", "en", map[string]string{"points": "12", "balance": "40", "orderId": "o9"})
	require.NoError(t, err)
	assert.Equal(t, "Order o9 earned you 12 points; your balance is 40, usable on every channel.", text)
	text, err = tpl.Render("tier_upgraded", "fr", map[string]string{"tier": "金卡"})
	require.NoError(t, err)
	assert.Contains(t, text, "金卡", "unknown locale falls back to zh-CN")
	_, err = tpl.Render("nope", "en", nil)
	assert.Error(t, err)

	for name, raw := range map[string]string{
		"missing english":  `{"a": {"zh-CN": "你好"}}`,
		"variables differ": `{"a": {"zh-CN": "{{x}}", "en": "{{y}}"}}`,
		"not json":         `{`,
	} {
		_, err := ParseTemplates([]byte(raw))
		assert.Error(t, err, name)
	}
}
