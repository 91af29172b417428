package contact

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// defaults are MISSION §5's rules (the same as functions/notify/contact.json).
const defaults = `{"timeZone": "Asia/Shanghai", "defaultConsent": {"*": false, "sms": true, "outbox": true},
 "marketingPerDay": 1, "quietHours": {"start": "21:00", "end": "08:00"}}`

func rules(t *testing.T) Rules {
	t.Helper()
	r, err := Parse([]byte(defaults))
	require.NoError(t, err)
	return r
}

// shanghai is a wall-clock time in Asia/Shanghai (UTC+8, no daylight saving).
func shanghai(day, hh, mm int) time.Time {
	return time.Date(2026, 11, day, hh, mm, 0, 0, time.FixedZone("CST", 8*3600))
}

func TestDecide(t *testing.T) {
	granted := map[string]ChannelState{"email": {Consent: ConsentGranted}}
	withdrawn := map[string]ChannelState{"sms": {Consent: ConsentWithdrawn}}
	optedOut := map[string]ChannelState{"sms": {OptedOut: true}}
	tests := []struct {
		name  string
		state State
		msg   Message
		now   time.Time
		want  Decision
	}{
		{"marketing by day goes and counts on the Shanghai day", State{}, Message{"n1", Marketing, "sms"}, shanghai(25, 10, 0),
			Decision{Verdict: Send, Day: "2026-11-25"}},
		{"08:30 in Shanghai (00:30 UTC) counts on the Shanghai day", State{}, Message{"n1", Marketing, "sms"},
			shanghai(26, 8, 30), Decision{Verdict: Send, Day: "2026-11-26"}},
		{"channel without default consent", State{}, Message{"n1", Marketing, "email"}, shanghai(25, 10, 0),
			Decision{Verdict: Suppress, Reason: ReasonNoConsent}},
		{"explicit consent beats the default", State{Channels: granted}, Message{"n1", Marketing, "email"}, shanghai(25, 10, 0),
			Decision{Verdict: Send, Day: "2026-11-25"}},
		{"withdrawn consent", State{Channels: withdrawn}, Message{"n1", Marketing, "sms"}, shanghai(25, 10, 0),
			Decision{Verdict: Suppress, Reason: ReasonNoConsent}},
		{"opted out", State{Channels: optedOut}, Message{"n1", Marketing, "sms"}, shanghai(25, 10, 0),
			Decision{Verdict: Suppress, Reason: ReasonOptedOut}},
		{"opt-out wins over quiet hours: suppressed, not deferred", State{Channels: optedOut}, Message{"n1", Marketing, "sms"},
			shanghai(25, 23, 0), Decision{Verdict: Suppress, Reason: ReasonOptedOut}},
		{"cap reached", State{Marketing: map[string][]string{"2026-11-25": {"n0"}}}, Message{"n1", Marketing, "sms"}, shanghai(25, 10, 0),
			Decision{Verdict: Suppress, Reason: ReasonDailyCap, Day: "2026-11-25"}},
		{"the counted message itself may retry", State{Marketing: map[string][]string{"2026-11-25": {"n1"}}}, Message{"n1", Marketing, "sms"},
			shanghai(25, 10, 0), Decision{Verdict: Send, Day: "2026-11-25"}},
		{"yesterday's send does not count today", State{Marketing: map[string][]string{"2026-11-24": {"n0"}}}, Message{"n1", Marketing, "sms"},
			shanghai(25, 10, 0), Decision{Verdict: Send, Day: "2026-11-25"}},
		{"21:00 is quiet: deferred to 08:00 next day", State{}, Message{"n1", Marketing, "sms"}, shanghai(25, 21, 0),
			Decision{Verdict: Defer, Until: shanghai(26, 8, 0).UTC()}},
		{"03:00 is quiet: deferred to 08:00 the same day", State{}, Message{"n1", Marketing, "sms"}, shanghai(25, 3, 0),
			Decision{Verdict: Defer, Until: shanghai(25, 8, 0).UTC()}},
		{"07:59 is quiet", State{}, Message{"n1", Marketing, "sms"}, shanghai(25, 7, 59),
			Decision{Verdict: Defer, Until: shanghai(25, 8, 0).UTC()}},
		{"08:00 is not", State{}, Message{"n1", Marketing, "sms"}, shanghai(25, 8, 0),
			Decision{Verdict: Send, Day: "2026-11-25"}},
		{"20:59 is not", State{}, Message{"n1", Marketing, "sms"}, shanghai(25, 20, 59),
			Decision{Verdict: Send, Day: "2026-11-25"}},
		{"transactional ignores quiet hours and the cap", State{Marketing: map[string][]string{"2026-11-25": {"n0"}}},
			Message{"n1", Transactional, "sms"}, shanghai(25, 23, 30), Decision{Verdict: Send}},
		{"transactional ignores a marketing opt-out", State{Channels: optedOut}, Message{"n1", Transactional, "sms"}, shanghai(25, 10, 0),
			Decision{Verdict: Send}},
		{"transactional stops when consent is withdrawn", State{Channels: withdrawn}, Message{"n1", Transactional, "sms"},
			shanghai(25, 10, 0), Decision{Verdict: Suppress, Reason: ReasonNoConsent}},
		{"syncs always go", State{Channels: withdrawn}, Message{"n1", Sync, "sms"}, shanghai(25, 23, 0), Decision{Verdict: Send}},
	}
	r := rules(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := r.Decide(tt.state, tt.msg, tt.now)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestQuietHoursWithinOneDay(t *testing.T) {
	r, err := Parse([]byte(`{"timeZone": "Asia/Shanghai", "defaultConsent": {"*": true}, "marketingPerDay": 2,
		"quietHours": {"start": "12:00", "end": "14:00"}}`))
	require.NoError(t, err)
	tests := []struct {
		now  time.Time
		want string
	}{{shanghai(25, 11, 59), Send}, {shanghai(25, 12, 0), Defer}, {shanghai(25, 13, 59), Defer}, {shanghai(25, 14, 0), Send}}
	for _, tt := range tests {
		got := r.Decide(State{}, Message{"n", Marketing, "x"}, tt.now)
		assert.Equal(t, tt.want, got.Verdict, tt.now.String())
	}
	got := r.Decide(State{Marketing: map[string][]string{"2026-11-25": {"a"}}}, Message{"n", Marketing, "x"}, shanghai(25, 15, 0))
	assert.Equal(t, Send, got.Verdict, "a cap of 2 allows a second message")
}

func TestParseRejects(t *testing.T) {
	tests := []struct{ name, raw, want string }{
		{"not json", `{`, "contact rules"},
		{"unknown field", `{"timeZone": "Asia/Shanghai", "defaultConsent": {"*": true}, "quiet": 1}`, "unknown field"},
		{"bad zone", `{"timeZone": "Mars/Olympus", "defaultConsent": {"*": true}}`, "timeZone"},
		{"no fallback consent", `{"timeZone": "Asia/Shanghai", "defaultConsent": {"sms": true}}`, `"*"`},
		{"negative cap", `{"timeZone": "Asia/Shanghai", "defaultConsent": {"*": true}, "marketingPerDay": -1}`, "marketingPerDay"},
		{"bad hour", `{"timeZone": "Asia/Shanghai", "defaultConsent": {"*": true}, "quietHours": {"start": "25:00", "end": "08:00"}}`, "quietHours.start"},
		{"empty window", `{"timeZone": "Asia/Shanghai", "defaultConsent": {"*": true}, "quietHours": {"start": "08:00", "end": "08:00"}}`, "start equals end"},
		{"trailing data", defaults + `{}`, "trailing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.raw))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestStateSetAuditsOnlyChanges(t *testing.T) {
	var s State
	at := shanghai(25, 10, 0)
	assert.True(t, s.Set("sms", "optedOut", "true", "aliyun", "sms-reply", at))
	assert.False(t, s.Set("sms", "optedOut", "true", "aliyun", "sms-reply", at), "a second R changes nothing")
	assert.True(t, s.Set("sms", "consent", ConsentWithdrawn, "mei", "api", at))
	assert.Len(t, s.History, 2)
	assert.Equal(t, Change{At: at, Channel: "sms", Field: "optedOut", From: "false", To: "true", By: "aliyun", Source: "sms-reply"}, s.History[0])
	assert.True(t, s.Channels["sms"].OptedOut)
}

func TestCountOncePerMessageAndForgetsOldDays(t *testing.T) {
	s := State{Marketing: map[string][]string{"2026-11-01": {"old"}}}
	s.Count("2026-11-25", "n1")
	s.Count("2026-11-25", "n1")
	assert.Equal(t, map[string][]string{"2026-11-25": {"n1"}}, s.Marketing)
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(defaults))
	f.Add([]byte(`{"timeZone": "UTC", "defaultConsent": {"*": true}, "quietHours": {"start": "23:59", "end": "00:00"}}`))
	f.Add([]byte(`{"timeZone": "", "defaultConsent": null}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := Parse(raw)
		if err != nil {
			return
		}
		// Any accepted rules decide every message without panicking, and defer only into the future.
		now := shanghai(25, 22, 0)
		for _, cat := range []string{Marketing, Transactional, Sync} {
			d := r.Decide(State{}, Message{"n", cat, "sms"}, now)
			if d.Verdict == Defer && !d.Until.After(now) {
				t.Fatalf("deferred to %v, not after %v", d.Until, now)
			}
		}
	})
}

func TestMergedKeepsTheLatestChoiceAndTheWholeCap(t *testing.T) {
	early, late := shanghai(20, 10, 0), shanghai(22, 10, 0)
	survivor := State{OneID: "om_a", Channels: map[string]ChannelState{"wecom": {Consent: ConsentGranted, Updated: early}},
		Marketing: map[string][]string{"2026-11-25": {"n1"}}}
	absorbed := State{OneID: "om_b", Channels: map[string]ChannelState{"sms": {OptedOut: true, Updated: early},
		"wecom": {Consent: ConsentWithdrawn, Updated: late}}, Marketing: map[string][]string{"2026-11-25": {"n2", "n1"}}}
	got := Merged(survivor, absorbed)
	want := State{OneID: "om_a", Channels: map[string]ChannelState{"sms": {OptedOut: true, Updated: early},
		"wecom": {Consent: ConsentWithdrawn, Updated: late}}, Marketing: map[string][]string{"2026-11-25": {"n1", "n2"}}}
	assert.Equal(t, want, got)
	d := rules(t).Decide(got, Message{"n3", Marketing, "sms"}, shanghai(25, 10, 0))
	assert.Equal(t, Decision{Verdict: Suppress, Reason: ReasonOptedOut}, d, "an opt-out survives the merge")
}
