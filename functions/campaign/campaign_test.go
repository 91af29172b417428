package campaign

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/broker/brokertest"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/segment"
	"github.com/omnimember/omnimember/shared/store"
	"github.com/omnimember/omnimember/shared/stream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCreateRejectsBadInputNamingTheField(t *testing.T) {
	e := newEnv(t)
	e.start()
	n := func(v int64) *int64 { return &v }
	future := t0.Add(time.Hour)
	past := t0.Add(-time.Hour)
	tests := []struct {
		name   string
		change func(r *CreateRequest)
		field  string
	}{
		{"no name", func(r *CreateRequest) { r.Name = " " }, "name"},
		{"unknown segment", func(r *CreateRequest) { r.Segment = "whales" }, "segment"},
		{"segment and rule", func(r *CreateRequest) { r.Rule = &segment.Rule{Pool: "plaintext"} }, "segment"},
		{"bad rule", func(r *CreateRequest) {
			r.Segment, r.Rule = "", &segment.Rule{SpendFen: &segment.Window{Days: 30, Range: segment.Range{Min: n(10), Max: n(1)}}}
		}, "rule.spendFen.max"},
		{"channel", func(r *CreateRequest) { r.Channel = "pigeon" }, "channel"},
		{"template", func(r *CreateRequest) { r.Template = "nope" }, "template"},
		{"template needs a coupon", func(r *CreateRequest) { r.Coupon = nil }, "coupon"},
		{"coupon without code", func(r *CreateRequest) { r.Coupon.Code = "" }, "coupon.code"},
		{"bonus points", func(r *CreateRequest) { r.BonusPoints = -5 }, "bonusPoints"},
		{"multiplier factor", func(r *CreateRequest) { r.Multiplier = &Multiplier{Factor: "1", From: t0, To: future} }, "multiplier.factor"},
		{"multiplier factor too precise", func(r *CreateRequest) { r.Multiplier = &Multiplier{Factor: "1.23456", From: t0, To: future} }, "multiplier.factor"},
		{"multiplier factor above 10", func(r *CreateRequest) { r.Multiplier = &Multiplier{Factor: "10.5", From: t0, To: future} }, "multiplier.factor"},
		{"multiplier window", func(r *CreateRequest) { r.Multiplier = &Multiplier{Factor: "2", From: future, To: t0} }, "multiplier.to"},
		{"schedule in the past", func(r *CreateRequest) { r.ScheduledAt = &past }, "scheduledAt"},
		{"variable too long", func(r *CreateRequest) { r.Vars = map[string]string{"brand": strings.Repeat("咖", 120)} }, "vars.brand"},
		{"variable name", func(r *CreateRequest) { r.Vars = map[string]string{"a b": "x"} }, "vars"},
		{"empty variable the template needs", func(r *CreateRequest) { r.Vars = map[string]string{"brand": ""} }, "vars.brand"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := dormantCampaign()
			tt.change(&req)
			var got runtime.ErrorBody
			require.Equal(t, http.StatusBadRequest, e.call("POST", "/v1/campaigns", req, &got))
			assert.Equal(t, tt.field, got.Field, "got field, want (error %q)", got.Error)
		})
	}
	var got runtime.ErrorBody
	require.Equal(t, http.StatusBadRequest, e.call("POST", "/v1/campaigns", map[string]any{"name": "x", "colour": "red"}, &got))
	assert.Equal(t, "body", got.Field)
	require.Equal(t, http.StatusBadRequest, e.call("POST", "/v1/campaigns", map[string]any{"name": 7}, &got))
	assert.Equal(t, "name", got.Field)
}

func TestAPIWantsTheMarketersToken(t *testing.T) {
	e := newEnv(t)
	e.start()
	for _, path := range []string{"/v1/campaigns", "/v1/segments", "/v1/segments/dormant:count"} {
		resp, err := http.Get(e.base + path)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, path)
	}
	req, _ := http.NewRequest("POST", e.base+"/v1/admin/campaigns:run-due", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the marketer's token does not run the scheduler")
}

func TestSegmentCountShowsMaskedSample(t *testing.T) {
	e := newEnv(t)
	want := e.seedDormant(30)
	e.start()
	var got SegmentCount
	require.Equal(t, http.StatusOK, e.call("GET", "/v1/segments/dormant:count", nil, &got))
	assert.Equal(t, len(want), got.Count, "got count, want")
	require.Len(t, got.Sample, SampleSize)
	assert.Equal(t, want[0], got.Sample[0].OneID)
	for _, s := range got.Sample {
		assert.Regexp(t, `^138\*\*\*\*\d{4}$`, s.Phone, "a sample shows masked phones only")
	}
	require.Equal(t, http.StatusOK, e.call("POST", "/v1/segments:count", segment.Rule{Pool: "plaintext"}, &got))
	assert.Equal(t, 2*len(want), got.Count)
	var bad runtime.ErrorBody
	require.Equal(t, http.StatusBadRequest, e.call("POST", "/v1/segments:count", segment.Rule{Pool: "blue"}, &bad))
	assert.Equal(t, "rule.pool", bad.Field)
	require.Equal(t, http.StatusNotFound, e.call("GET", "/v1/segments/whales:count", nil, &bad))
}

func TestTriggeringTwiceSendsOncePerMember(t *testing.T) {
	onEachStore(t, testTriggeringTwice)
}

func testTriggeringTwice(t *testing.T, e *env) {
	want := e.seedDormant(250) // 3 chunks of 100
	e.start()
	var c Campaign
	require.Equal(t, http.StatusCreated, e.call("POST", "/v1/campaigns", dormantCampaign(), &c))
	require.Equal(t, StatusDraft, c.Status)
	for range 2 {
		require.Equal(t, http.StatusAccepted, e.call("POST", "/v1/campaigns/"+c.ID+":trigger", nil, nil))
	}
	v := e.waitStatus(c.ID, StatusSent)
	assert.Equal(t, int64(len(want)), v.Progress.Targeted)
	assert.Equal(t, int64(len(want)), v.Progress.Published)
	e.settled()
	reqs := e.requests()
	require.Len(t, reqs, len(want), "got requests, want one per member")
	var got []string
	for _, ev := range reqs {
		d, err := events.Decode[events.NotificationRequestedData](ev)
		require.NoError(t, err)
		assert.Equal(t, RequestID(c.ID, d.OneID), ev.ID())
		assert.Equal(t, events.CategoryMarketing, d.Category)
		assert.Equal(t, "winback_coupon", d.Template)
		assert.Equal(t, "好久不见！山野咖啡为您准备了50元无门槛券，全渠道下单可用，期待您回来。", d.Vars["text"])
		got = append(got, d.OneID)
	}
	assert.ElementsMatch(t, want, got)
	assert.Empty(t, brokertest.Events(t, e.js, stream.Events, events.CampaignRewarded), "a coupon campaign credits no points")
	triggers := brokertest.Events(t, e.js, "OMNIMEMBER_EVENTS", events.CampaignTriggered)
	assert.Len(t, triggers, 1, "the second trigger's event is the same message")
	actions := e.audit(c.ID)
	require.Len(t, actions, 3, "got audit records %v, want a create and two triggers", actions)
	assert.Contains(t, actions, "create")
	assert.Contains(t, actions, "trigger")
	assert.Len(t, slices.DeleteFunc(actions, func(a string) bool { return !strings.HasPrefix(a, "trigger again (no effect") }), 1)
}

// audit lists a campaign's audit actions in time order.
func (e *env) audit(id string) []string {
	docs, err := e.st.Query(context.Background(), store.Query{Collection: AuditLog,
		Filters: []store.Filter{{Field: "campaignId", Op: store.OpEq, Value: id}}, OrderBy: "at"})
	require.NoError(e.t, err)
	var out []string
	for _, d := range docs {
		var a audit
		require.NoError(e.t, d.DataTo(&a))
		assert.Equal(e.t, "mei@brand.example", a.By)
		out = append(out, a.Action)
	}
	return out
}

func outcome(t *testing.T, typ string, req cloudevents.Event, reason string) cloudevents.Event {
	d, err := events.Decode[events.NotificationRequestedData](req)
	require.NoError(t, err)
	out, err := events.New(typ, events.DerivedID("notify", req.ID(), 0), events.Source("notify"), t0, events.NotificationOutcomeData{
		NotificationID: events.DerivedID("notify", req.ID(), 1), OneID: d.OneID, Channel: d.Channel, Template: d.Template,
		SourceID: req.ID(), Reason: reason, Attempts: 1, At: t0})
	require.NoError(t, err)
	return out
}

func TestProgressCountsEachOutcomeOnce(t *testing.T) {
	onEachStore(t, testProgress)
}

func testProgress(t *testing.T, e *env) {
	e.seedDormant(6)
	e.start()
	var c Campaign
	require.Equal(t, http.StatusCreated, e.call("POST", "/v1/campaigns", dormantCampaign(), &c))
	require.Equal(t, http.StatusAccepted, e.call("POST", "/v1/campaigns/"+c.ID+":trigger", nil, nil))
	e.waitStatus(c.ID, StatusSent)
	e.settled()
	reqs := e.requests()
	require.Len(t, reqs, 6)
	kinds := []struct{ typ, reason string }{{events.NotificationSent, ""}, {events.NotificationSent, ""},
		{events.NotificationSent, ""}, {events.NotificationSuppressed, "opted_out"}, {events.NotificationSuppressed, "daily_cap"},
		{events.NotificationFailed, "provider 500"}}
	for i, k := range kinds {
		ev := outcome(t, k.typ, reqs[i], k.reason)
		brokertest.Publish(t, e.js, ev.Type(), ev)
		brokertest.Publish(t, e.js, ev.Type(), ev) // a redelivery: no message id, stored twice
	}
	other, err := events.Example(events.NotificationSent) // notify's own, not a campaign's
	require.NoError(t, err)
	brokertest.Publish(t, e.js, other.Type(), other)
	e.settled()
	v := e.waitStatus(c.ID, StatusSent)
	p := v.Progress
	assert.Equal(t, []int64{6, 3, 2, 1, 0}, []int64{p.Targeted, p.Sent, p.Suppressed, p.Failed, p.Pending}, "got targeted, sent, suppressed, failed, pending")
	assert.Equal(t, map[string]int64{"opted_out": 1, "daily_cap": 1}, p.SuppressedBy)
	assert.True(t, p.Done)
	assert.Equal(t, 100, p.PercentFinished)
}

func TestScheduledCampaignFiresWhenDue(t *testing.T) {
	e := newEnv(t)
	want := e.seedDormant(5)
	e.start()
	at := t0.Add(2 * time.Hour)
	req := dormantCampaign()
	req.ScheduledAt = &at
	var c Campaign
	require.Equal(t, http.StatusCreated, e.call("POST", "/v1/campaigns", req, &c))
	require.Equal(t, StatusScheduled, c.Status)
	adminCall := func() []string {
		hreq, _ := http.NewRequest("POST", e.base+"/v1/admin/campaigns:run-due", nil)
		hreq.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(hreq)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var out struct{ Triggered []string }
		require.NoError(t, jsonDecode(resp, &out))
		return out.Triggered
	}
	assert.Empty(t, adminCall(), "not due yet")
	e.clock.set(at)
	due := adminCall()
	if len(due) == 0 { // the dispatcher's own poll may have fired it first
		assert.Contains(t, strings.Join(e.audit(c.ID), ","), "trigger")
	}
	v := e.waitStatus(c.ID, StatusSent)
	assert.Equal(t, int64(len(want)), v.Progress.Targeted)
	assert.Equal(t, "scheduler", v.TriggeredBy)
}

func TestFanOutKeepsTheRateAndResumesAfterACrash(t *testing.T) {
	e := newEnv(t)
	want := e.seedDormant(300)
	e.rates = Rates{"*": 400} // 600 requests take about 1.5 s: time to crash in between
	e.chunk = 50
	e.start()
	var c Campaign
	withBonus := dormantCampaign()
	withBonus.BonusPoints = 50 // each member's reward rides with its request, resumed alike
	require.Equal(t, http.StatusCreated, e.call("POST", "/v1/campaigns", withBonus, &c))
	require.Equal(t, http.StatusAccepted, e.call("POST", "/v1/campaigns/"+c.ID+":trigger", nil, nil))
	require.Eventually(t, func() bool {
		var got Campaign
		return e.st.Get(context.Background(), Campaigns, c.ID, &got) == nil && got.Cursor >= 2
	}, 30*time.Second, 5*time.Millisecond)
	e.stop() // the process goes away mid fan-out
	var mid Campaign
	require.NoError(t, e.st.Get(context.Background(), Campaigns, c.ID, &mid))
	require.Equal(t, StatusSending, mid.Status, "the crash came before the end")
	e.start()
	e.waitStatus(c.ID, StatusSent)
	reqs := e.requests()
	ids := map[string]int{}
	for _, ev := range reqs {
		ids[ev.ID()]++
	}
	assert.Len(t, ids, len(want), "got distinct requests, want one per member")
	assert.Len(t, reqs, len(want), "a chunk repeated after the crash is dropped by JetStream's dedupe")
	rewards := brokertest.Events(t, e.js, stream.Events, events.CampaignRewarded)
	rewarded := map[string]int{}
	for _, ev := range rewards {
		rewarded[ev.ID()]++
	}
	assert.Equal(t, []int{len(want), len(want)}, []int{len(rewarded), len(rewards)}, "got distinct and stored rewards, want one per member")
}

func TestScaleToZeroLosesNothingAndDoublesNothing(t *testing.T) {
	e := newEnv(t)
	want := e.seedDormant(120)
	e.start()
	var first, second Campaign
	require.Equal(t, http.StatusCreated, e.call("POST", "/v1/campaigns", dormantCampaign(), &first))
	require.Equal(t, http.StatusCreated, e.call("POST", "/v1/campaigns", dormantCampaign(), &second))
	require.Equal(t, http.StatusAccepted, e.call("POST", "/v1/campaigns/"+first.ID+":trigger", nil, nil))
	e.waitStatus(first.ID, StatusSent)
	e.settled()
	firstReqs := e.requests()
	e.stop() // scaled to zero: no campaign process runs

	// While it is down: the second campaign is triggered (the event waits in JetStream, twice) and
	// notify reports the first campaign's outcomes.
	pub := e.runtime().Publisher(Name)
	h := e.handler()
	require.NoError(t, h.Trigger(context.Background(), pub, second.ID, "mei@brand.example"))
	require.NoError(t, h.Trigger(context.Background(), pub, second.ID, "mei@brand.example"))
	for _, req := range firstReqs {
		ev := outcome(t, events.NotificationSent, req, "")
		brokertest.Publish(t, e.js, ev.Type(), ev)
	}
	var down Campaign
	require.NoError(t, e.st.Get(context.Background(), Campaigns, second.ID, &down))
	require.Equal(t, StatusTriggered, down.Status, "nothing ran while scaled to zero")

	e.start()
	v := e.waitStatus(second.ID, StatusSent)
	e.settled()
	assert.Equal(t, int64(len(want)), v.Progress.Targeted)
	var counts = map[string]int{}
	for _, ev := range e.requests() {
		d, err := events.Decode[events.NotificationRequestedData](ev)
		require.NoError(t, err)
		counts[d.CampaignID]++
	}
	assert.Equal(t, map[string]int{first.ID: len(want), second.ID: len(want)}, counts, "got requests per campaign, want one per member each")
	f, err := e.h.Get(context.Background(), first.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(len(want)), f.Progress.Sent, "every outcome that arrived while down is counted once")
	assert.True(t, f.Progress.Done)
}

func TestTagsSelectMembers(t *testing.T) {
	e := newEnv(t)
	ids := e.seedDormant(3)
	e.start()
	tag := func(method, oneID, tag string) int {
		return e.call(method, "/v1/members/"+oneID+"/tags/"+tag, nil, nil)
	}
	for _, id := range ids {
		require.Equal(t, http.StatusNoContent, tag("PUT", id, "vip"))
	}
	require.Equal(t, http.StatusNoContent, tag("PUT", ids[0], "vip"), "tagging twice is harmless")
	require.Equal(t, http.StatusNoContent, tag("DELETE", ids[1], "vip"))
	var got SegmentCount
	require.Equal(t, http.StatusOK, e.call("POST", "/v1/segments:count", segment.Rule{Tags: []string{"vip"}}, &got))
	assert.Equal(t, 2, got.Count, "got tagged members, want")
	var bad runtime.ErrorBody
	require.Equal(t, http.StatusBadRequest, e.call("PUT", "/v1/members/"+ids[0]+"/tags/VIP!", nil, &bad))
	assert.Equal(t, "tag", bad.Field)
	require.Equal(t, http.StatusBadRequest, e.call("PUT", "/v1/members/nobody/tags/vip", nil, &bad))
	assert.Equal(t, "oneId", bad.Field)
}

func TestATriggerLostAfterTheStatusChangeIsSentAgain(t *testing.T) {
	e := newEnv(t)
	want := e.seedDormant(20)
	e.start()
	var c Campaign
	require.Equal(t, http.StatusCreated, e.call("POST", "/v1/campaigns", dormantCampaign(), &c))
	// The trigger committed its status, then the process died before publishing.
	at := t0.Add(-2 * stallAfter)
	require.NoError(t, e.h.update(context.Background(), c.ID, func(c *Campaign) bool {
		c.Status, c.TriggeredAt, c.TriggeredBy = StatusTriggered, &at, "mei@brand.example"
		return true
	}))
	v := e.waitStatus(c.ID, StatusSent)
	assert.Equal(t, int64(len(want)), v.Progress.Targeted)
	e.settled()
	assert.Len(t, e.requests(), len(want))
}

func TestRewardsArePublishedOncePerMemberAsTheMessagePromises(t *testing.T) {
	e := newEnv(t)
	want := e.seedDormant(150) // 2 chunks of 100
	e.start()
	req := dormantCampaign()
	req.Template, req.Coupon, req.BonusPoints = "bonus_points", nil, 200
	req.Multiplier = &Multiplier{Factor: "1.5", From: t0.Add(24 * time.Hour), To: t0.Add(72 * time.Hour)}
	var c Campaign
	require.Equal(t, http.StatusCreated, e.call("POST", "/v1/campaigns", req, &c))
	for range 2 {
		require.Equal(t, http.StatusAccepted, e.call("POST", "/v1/campaigns/"+c.ID+":trigger", nil, nil))
	}
	e.waitStatus(c.ID, StatusSent)
	e.settled()
	rewards := brokertest.Events(t, e.js, stream.Events, events.CampaignRewarded)
	require.Len(t, rewards, len(want), "got rewards, want one per member whatever the triggers")
	var got []string
	for _, ev := range rewards {
		require.NoError(t, events.Validate(ev))
		d, err := events.Decode[events.CampaignRewardedData](ev)
		require.NoError(t, err)
		assert.Equal(t, RewardID(c.ID, d.OneID), ev.ID())
		assert.NotEqual(t, RequestID(c.ID, d.OneID), ev.ID(), "a reward and a request must not share a message id")
		assert.Equal(t, []any{c.ID, int64(200), c.ID}, []any{d.CampaignID, d.BonusPoints, d.SourceID})
		require.NotNil(t, d.Multiplier)
		assert.Equal(t, "1.5", d.Multiplier.Factor)
		assert.True(t, req.Multiplier.From.Equal(d.Multiplier.From) && req.Multiplier.To.Equal(d.Multiplier.To), "got window %+v", d.Multiplier)
		got = append(got, d.OneID)
	}
	assert.ElementsMatch(t, want, got)
	reqs := e.requests()
	require.Len(t, reqs, len(want))
	d, err := events.Decode[events.NotificationRequestedData](reqs[0])
	require.NoError(t, err)
	assert.Equal(t, "200", d.Vars["bonusPoints"], "the message promises what points-award credits")
	assert.Contains(t, d.Vars["text"], "额外赠送200积分")
}

// TestOversizeBodiesGet413: every route that reads a JSON body refuses one over MaxBodyBytes with
// 413 and a JSON error, and stores nothing.
func TestOversizeBodiesGet413(t *testing.T) {
	e := newEnv(t)
	e.start()
	pad := strings.Repeat("x", MaxBodyBytes)
	tests := []struct{ name, path, body string }{
		{"count a rule", "/v1/segments:count", `{"pool":"plaintext","tags":["` + pad + `"]}`},
		{"preview", "/v1/campaigns:preview", `{"template":"vip_thanks","vars":{"brand":"` + pad + `"}}`},
		{"create", "/v1/campaigns", `{"name":"big","segment":"dormant","channel":"sms","template":"vip_thanks","vars":{"brand":"` + pad + `"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got runtime.ErrorBody
			require.Equal(t, http.StatusRequestEntityTooLarge, e.call("POST", tt.path, json.RawMessage(tt.body), &got), "got, want 413")
			assert.Equal(t, "body", got.Field)
			assert.Contains(t, got.Error, "body over")
		})
	}
	var list struct{ Campaigns []Campaign }
	require.Equal(t, http.StatusOK, e.call("GET", "/v1/campaigns", nil, &list))
	assert.Empty(t, list.Campaigns, "nothing stored")
}
