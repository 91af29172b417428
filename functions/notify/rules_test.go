package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/contact"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/store"
	"github.com/omnimember/omnimember/shared/store/firestore/firestoretest"
	"github.com/omnimember/omnimember/shared/store/teststores"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// clock is a settable time (a clock, not a mock: the code reads it as it reads time.Now).
type clock struct{ ns atomic.Int64 }

func newClock(at time.Time) *clock { c := &clock{}; c.set(at); return c }
func (c *clock) now() time.Time    { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) set(at time.Time)  { c.ns.Store(at.UnixNano()) }

var cst = time.FixedZone("CST", 8*3600)

// at is a wall-clock time in Asia/Shanghai on 2026-11-<day>.
func at(day, hh, mm int) time.Time { return time.Date(2026, 11, day, hh, mm, 0, 0, cst) }

func requested(t *testing.T, id, oneID, category, channel string) cloudevents.Event {
	t.Helper()
	ev, err := events.New(events.NotificationRequested, id, events.Source("campaign"), now, events.NotificationRequestedData{
		NotificationID: id, OneID: oneID, Category: category, Channel: channel, Template: "winback_coupon",
		Vars: map[string]string{"text": "好久不见！送您50元券。", "coupon": "50元券"}, CampaignID: "c1", SourceID: "c1"})
	require.NoError(t, err)
	return ev
}

// collected records what DrainDeferred publishes.
type collected struct {
	mu  sync.Mutex
	evs []cloudevents.Event
}

func (c *collected) Publish(_ context.Context, _ *cloudevents.Event, evs []cloudevents.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evs = append(c.evs, evs...)
	return nil
}

func TestMain(m *testing.M) { firestoretest.Main(m) }

func rulesHandler(t *testing.T, c *clock) (*Handler, store.Store) {
	h, s := newHandler(t, map[string]any{"outbox": Outbox{}}, "outbox")
	h.Now = c.now
	return h, s
}

// onEachStore runs a rules test on the embedded store and on the Firestore emulator, whose
// optimistic transactions retry under contention: the cap must hold on both.
func onEachStore(t *testing.T, c *clock, test func(t *testing.T, h *Handler, s store.Store)) {
	teststores.Each(t, StoreIndexes(member.Indexes), func(t *testing.T, s store.Store) {
		h := &Handler{Store: s, Sinks: map[string]any{"outbox": Outbox{}}, Channel: "outbox", Locale: "zh-CN", Templates: DefaultTemplates(),
			MaxAttempts: 3, Rules: DefaultRules(), Now: c.now}
		test(t, h, s)
	})
}

func handleOne(t *testing.T, h *Handler, ev cloudevents.Event) (string, events.NotificationOutcomeData) {
	t.Helper()
	outs, err := h.Handle(context.Background(), ev)
	require.NoError(t, err)
	return outcome(t, outs)
}

// grant records a member's marketing consent on channel as a brand's system does, through the
// consent API's path: marketing needs it (contact.json defaults every channel to opt-in).
func grant(t *testing.T, h *Handler, oneID, channel string) {
	t.Helper()
	_, err := h.setContact(context.Background(), oneID, ConsentRequest{Channel: channel, Consent: contact.ConsentGranted}, "test", "api")
	require.NoError(t, err)
}

func TestRulesOfContact(t *testing.T) {
	yes, no := true, false
	granted := ConsentRequest{Channel: "outbox", Consent: contact.ConsentGranted}
	tests := []struct {
		name       string
		before     []ConsentRequest // contact state set through the consent API's path
		sentToday  int              // marketing messages already sent today
		category   string
		channel    string
		at         time.Time
		wantType   string
		wantReason string
	}{
		{"marketing without consent (the default: opt-in) is suppressed", nil, 0, events.CategoryMarketing, "outbox", at(25, 10, 0),
			events.NotificationSuppressed, contact.ReasonNoConsent},
		{"transactional needs no opt-in", nil, 0, events.CategoryTransactional, "outbox", at(25, 10, 0), events.NotificationSent, ""},
		{"marketing by day goes once consented", []ConsentRequest{granted}, 0, events.CategoryMarketing, "outbox", at(25, 10, 0), events.NotificationSent, ""},
		{"consent on another channel is not consent here", []ConsentRequest{{Channel: "sms", Consent: contact.ConsentGranted}}, 0,
			events.CategoryMarketing, "outbox", at(25, 10, 0), events.NotificationSuppressed, contact.ReasonNoConsent},
		{"second marketing message of the day", []ConsentRequest{granted}, 1, events.CategoryMarketing, "outbox", at(25, 18, 0), events.NotificationSuppressed, contact.ReasonDailyCap},
		{"transactional is exempt from the cap", []ConsentRequest{granted}, 1, events.CategoryTransactional, "outbox", at(25, 18, 0), events.NotificationSent, ""},
		{"transactional is exempt from quiet hours", nil, 0, events.CategoryTransactional, "outbox", at(25, 23, 0), events.NotificationSent, ""},
		{"opted out", []ConsentRequest{granted, {Channel: "outbox", OptedOut: &yes}}, 0, events.CategoryMarketing, "outbox", at(25, 10, 0),
			events.NotificationSuppressed, contact.ReasonOptedOut},
		{"opt-out lifted", []ConsentRequest{granted, {Channel: "outbox", OptedOut: &yes}, {Channel: "outbox", OptedOut: &no}}, 0,
			events.CategoryMarketing, "outbox", at(25, 10, 0), events.NotificationSent, ""},
		{"consent withdrawn", []ConsentRequest{{Channel: "outbox", Consent: contact.ConsentWithdrawn}}, 0, events.CategoryMarketing,
			"outbox", at(25, 10, 0), events.NotificationSuppressed, contact.ReasonNoConsent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock(tt.at)
			h, s := rulesHandler(t, c)
			for _, req := range tt.before {
				_, err := h.setContact(context.Background(), alice, req, "test", "api")
				require.NoError(t, err)
			}
			for i := range tt.sentToday {
				typ, _ := handleOne(t, h, requested(t, "earlier"+itoa(int64(i)), alice, events.CategoryMarketing, tt.channel))
				require.Equal(t, events.NotificationSent, typ)
			}
			typ, d := handleOne(t, h, requested(t, "r1", alice, tt.category, tt.channel))
			assert.Equal(t, tt.wantType, typ)
			assert.Equal(t, tt.wantReason, d.Reason)
			docs, err := s.Query(context.Background(), store.Query{Collection: member.Outbox})
			require.NoError(t, err)
			wantSent := tt.sentToday
			if typ == events.NotificationSent {
				wantSent++
			}
			assert.Len(t, docs, wantSent, "suppressed messages never reach the sink")
		})
	}
}

func TestQuietHoursDeferToEightNotDrop(t *testing.T) {
	c := newClock(at(25, 22, 30))
	onEachStore(t, c, func(t *testing.T, h *Handler, s store.Store) {
		c.set(at(25, 22, 30))
		quietHoursDeferToEight(t, c, h, s)
	})
}

func quietHoursDeferToEight(t *testing.T, c *clock, h *Handler, s store.Store) {
	ctx := context.Background()
	grant(t, h, alice, "outbox")
	ev := requested(t, "night", alice, events.CategoryMarketing, "outbox")
	for range 2 { // a redelivery while deferred changes nothing
		outs, err := h.Handle(ctx, ev)
		require.NoError(t, err)
		assert.Empty(t, outs, "deferred: no outcome yet")
	}
	pub := &collected{}
	c.set(at(26, 7, 59))
	n, err := h.DrainDeferred(ctx, pub)
	require.NoError(t, err)
	assert.Equal(t, 0, n, "not before 08:00")

	c.set(at(26, 8, 0))
	n, err = h.DrainDeferred(ctx, pub)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	typ, d := outcome(t, pub.evs)
	assert.Equal(t, events.NotificationSent, typ)
	assert.Equal(t, at(26, 8, 0).UTC(), d.At.UTC())

	n, err = h.DrainDeferred(ctx, pub)
	require.NoError(t, err)
	assert.Equal(t, 0, n, "the queue is empty once sent")
	outs, err := h.Handle(ctx, ev)
	require.NoError(t, err)
	assert.Equal(t, pub.evs[0].ID(), outs[0].ID(), "a late redelivery reports the same outcome")
	docs, err := s.Query(ctx, store.Query{Collection: member.Outbox})
	require.NoError(t, err)
	assert.Len(t, docs, 1, "sent exactly once")

	// Deferred to 08:00 it counts on the day it goes: a second campaign that morning is capped.
	typ, d = handleOne(t, h, requested(t, "morning", alice, events.CategoryMarketing, "outbox"))
	assert.Equal(t, events.NotificationSuppressed, typ)
	assert.Equal(t, contact.ReasonDailyCap, d.Reason)
}

func TestOptOutWhileDeferredSuppresses(t *testing.T) {
	c := newClock(at(25, 23, 0))
	h, _ := rulesHandler(t, c)
	ctx := context.Background()
	grant(t, h, alice, "outbox")
	outs, err := h.Handle(ctx, requested(t, "night", alice, events.CategoryMarketing, "outbox"))
	require.NoError(t, err)
	require.Empty(t, outs)
	yes := true
	_, err = h.setContact(ctx, alice, ConsentRequest{Channel: "outbox", OptedOut: &yes}, "aliyun", "sms-reply")
	require.NoError(t, err)
	c.set(at(26, 9, 0))
	pub := &collected{}
	_, err = h.DrainDeferred(ctx, pub)
	require.NoError(t, err)
	typ, d := outcome(t, pub.evs)
	assert.Equal(t, events.NotificationSuppressed, typ, "opt-out is honoured before every send, deferred ones too")
	assert.Equal(t, contact.ReasonOptedOut, d.Reason)
}

func TestConcurrentMarketingSendsOneThePerDayCap(t *testing.T) {
	onEachStore(t, newClock(at(25, 10, 0)), concurrentMarketing)
}

func concurrentMarketing(t *testing.T, h *Handler, s store.Store) {
	const n = 8
	grant(t, h, alice, "outbox")
	types := make(chan string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			outs, err := h.Handle(context.Background(), requested(t, "c"+itoa(int64(i)), alice, events.CategoryMarketing, "outbox"))
			if assert.NoError(t, err) && assert.Len(t, outs, 1) {
				types <- outs[0].Type()
			}
		})
	}
	wg.Wait()
	close(types)
	got := map[string]int{}
	for typ := range types {
		got[typ]++
	}
	assert.Equal(t, map[string]int{events.NotificationSent: 1, events.NotificationSuppressed: n - 1}, got)
	docs, err := s.Query(context.Background(), store.Query{Collection: member.Outbox})
	require.NoError(t, err)
	assert.Len(t, docs, 1)
}

func TestConsentRoute(t *testing.T) {
	h, s := rulesHandler(t, newClock(at(25, 10, 0)))
	h.APIToken = "api-token"
	mux := http.NewServeMux()
	h.routes(mux, nil)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	put := func(path, token, body string) (int, map[string]any) {
		req, err := http.NewRequest(http.MethodPut, srv.URL+path, bytes.NewReader([]byte(body)))
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		req.Header.Set("X-Omnimember-Operator", "agent-li")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	tests := []struct {
		name, path, token, body string
		wantStatus              int
		wantField               string
	}{
		{"no token", "/v1/members/" + alice + "/consent", "", `{"channel":"sms","consent":"granted"}`, 401, ""},
		{"wrong token", "/v1/members/" + alice + "/consent", "nope", `{"channel":"sms","consent":"granted"}`, 401, ""},
		{"bad one id", "/v1/members/bob/consent", "api-token", `{"channel":"sms","consent":"granted"}`, 400, "oneId"},
		{"bad consent", "/v1/members/" + alice + "/consent", "api-token", `{"channel":"sms","consent":"maybe"}`, 400, "consent"},
		{"no channel", "/v1/members/" + alice + "/consent", "api-token", `{"consent":"granted"}`, 400, "channel"},
		{"unknown field", "/v1/members/" + alice + "/consent", "api-token", `{"channel":"sms","consnet":"granted"}`, 400, "body"},
		{"too large", "/v1/members/" + alice + "/consent", "api-token", `{"channel":"` + string(bytes.Repeat([]byte("x"), 5000)) + `"}`, 413, "body"},
		{"withdraw", "/v1/members/" + alice + "/consent", "api-token", `{"channel":"sms","consent":"withdrawn"}`, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := put(tt.path, tt.token, tt.body)
			assert.Equal(t, tt.wantStatus, status)
			if tt.wantField != "" {
				assert.Equal(t, tt.wantField, body["field"])
			}
		})
	}
	var st contact.State
	require.NoError(t, s.Get(context.Background(), contact.Collection, alice, &st))
	require.Len(t, st.History, 1)
	assert.Equal(t, contact.Change{At: at(25, 10, 0).UTC(), Channel: "sms", Field: "consent", From: "", To: contact.ConsentWithdrawn,
		By: "agent-li", Source: "api"}, st.History[0])
}

func TestOptOutUnderAMergedOneIDHolds(t *testing.T) {
	c := newClock(at(25, 9, 0))
	h, s := rulesHandler(t, c)
	ctx := context.Background()
	const absorbed = "om_bbbbbbbbbbbbbbbbbbbb"
	require.NoError(t, s.Set(ctx, member.Members, alice, member.Member{OneID: alice, MergedFrom: []string{absorbed}}))
	require.NoError(t, s.Set(ctx, member.Members, absorbed, member.Member{OneID: absorbed, MergedInto: alice}))
	grant(t, h, alice, "outbox") // opted in at 09:00, then replied R under the absorbed OneID at 10:00
	c.set(at(25, 10, 0))
	yes := true
	_, err := h.setContact(ctx, absorbed, ConsentRequest{Channel: "outbox", OptedOut: &yes}, "aliyun", "sms-reply")
	require.NoError(t, err)
	typ, d := handleOne(t, h, requested(t, "m1", alice, events.CategoryMarketing, "outbox"))
	assert.Equal(t, events.NotificationSuppressed, typ)
	assert.Equal(t, contact.ReasonOptedOut, d.Reason)
}

func TestDeferredIsSentByOneDrainerOnly(t *testing.T) {
	c := newClock(at(25, 22, 30))
	h, s := rulesHandler(t, c)
	ctx := context.Background()
	for i := range 10 {
		grant(t, h, oneIDOf(i), "outbox")
		outs, err := h.Handle(ctx, requested(t, "night"+itoa(int64(i)), oneIDOf(i), events.CategoryMarketing, "outbox"))
		require.NoError(t, err)
		require.Empty(t, outs)
	}
	c.set(at(26, 8, 0))
	pubs := []*collected{{}, {}, {}}
	var wg sync.WaitGroup
	for _, pub := range pubs { // three replicas wake at 08:00 together
		wg.Go(func() {
			_, err := h.DrainDeferred(ctx, pub)
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	total := 0
	for _, pub := range pubs {
		total += len(pub.evs)
	}
	assert.Equal(t, 10, total, "each deferred notification reported by exactly one drainer")
	docs, err := s.Query(ctx, store.Query{Collection: member.Outbox})
	require.NoError(t, err)
	assert.Len(t, docs, 10)
}

// TestShippedRulesMakeMarketingOptIn: contact.json as shipped (PIPL: marketing needs the member's
// consent) suppresses a marketing message to a member who never said yes, on every channel, and
// lets it go once they did; transactional messages need no opt-in.
func TestShippedRulesMakeMarketingOptIn(t *testing.T) {
	r := DefaultRules()
	now := at(25, 10, 0)
	for _, channel := range []string{"sms", "wecom", "miniprogram", "email", "webhook", "outbox", "a-channel-added-later"} {
		t.Run(channel, func(t *testing.T) {
			d := r.Decide(contact.State{}, contact.Message{ID: "m", Category: contact.Marketing, Channel: channel}, now)
			assert.Equal(t, contact.Decision{Verdict: contact.Suppress, Reason: contact.ReasonNoConsent}, d, "never asked: got, want")
			granted := contact.State{Channels: map[string]contact.ChannelState{channel: {Consent: contact.ConsentGranted}}}
			d = r.Decide(granted, contact.Message{ID: "m", Category: contact.Marketing, Channel: channel}, now)
			assert.Equal(t, contact.Send, d.Verdict, "opted in")
			d = r.Decide(contact.State{}, contact.Message{ID: "t", Category: contact.Transactional, Channel: channel}, now)
			assert.Equal(t, contact.Send, d.Verdict, "transactional")
		})
	}
}
