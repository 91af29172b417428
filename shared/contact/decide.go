package contact

import (
	"slices"
	"time"
)

// State is a member's contact document: consent and opt-out per channel, the marketing messages
// counted against the cap per day, and the audited history of every change.
type State struct {
	OneID     string                  `json:"oneId"`
	Channels  map[string]ChannelState `json:"channels,omitempty"`
	Marketing map[string][]string     `json:"marketing,omitempty"` // day → notification ids counted
	History   []Change                `json:"history,omitempty"`
	Updated   time.Time               `json:"updated"`
}

// ChannelState is what a member said about one channel.
type ChannelState struct {
	Consent  string    `json:"consent,omitempty"`  // granted, withdrawn, or empty for the default
	OptedOut bool      `json:"optedOut,omitempty"` // refused marketing (an SMS reply of R, T or TD)
	Updated  time.Time `json:"updated"`
}

// Change is one audited change of a member's contact state.
type Change struct {
	At      time.Time `json:"at"`
	Channel string    `json:"channel"`
	Field   string    `json:"field"` // consent or optedOut
	From    string    `json:"from"`
	To      string    `json:"to"`
	By      string    `json:"by"`     // the operator, or the provider whose inbound message did it
	Source  string    `json:"source"` // api, sms-reply
}

// Verdicts of a decision.
const (
	Send     = "send"
	Suppress = "suppress"
	Defer    = "defer"
)

// Decision says what to do with one message now.
type Decision struct {
	Verdict string
	Reason  string    // why it is suppressed
	Until   time.Time // when a deferred message may go
	Day     string    // the cap's day a marketing send counts on
}

// Message is what the decision needs to know about one message.
type Message struct {
	ID       string // the notification id: a message already counted is not counted twice
	Category string
	Channel  string
}

// Decide applies the rules to one message for a member at now. Syncs always go; transactional
// messages stop only when the member withdrew consent on the channel; marketing needs consent, no
// opt-out, daylight and room under the day's cap. Quiet hours defer rather than drop, and come
// before the cap, so a deferred message is counted on the day it actually goes.
func (r Rules) Decide(s State, m Message, now time.Time) Decision {
	if m.Category == Sync {
		return Decision{Verdict: Send}
	}
	ch := s.Channels[m.Channel]
	if m.Category != Marketing {
		if ch.Consent == ConsentWithdrawn {
			return Decision{Verdict: Suppress, Reason: ReasonNoConsent}
		}
		return Decision{Verdict: Send}
	}
	switch { // an opt-out is the member's own "stop": it names the reason before a missing consent
	case ch.OptedOut:
		return Decision{Verdict: Suppress, Reason: ReasonOptedOut}
	case !r.consents(ch, m.Channel):
		return Decision{Verdict: Suppress, Reason: ReasonNoConsent}
	}
	if until, quiet := r.quietUntil(now); quiet {
		return Decision{Verdict: Defer, Until: until}
	}
	day := r.Day(now)
	counted := s.Marketing[day]
	if !slices.Contains(counted, m.ID) && len(counted) >= r.MarketingPerDay {
		return Decision{Verdict: Suppress, Reason: ReasonDailyCap, Day: day}
	}
	return Decision{Verdict: Send, Day: day}
}

func (r Rules) consents(ch ChannelState, channel string) bool {
	switch ch.Consent {
	case ConsentGranted:
		return true
	case ConsentWithdrawn:
		return false
	}
	if d, ok := r.DefaultConsent[channel]; ok {
		return d
	}
	return r.DefaultConsent["*"]
}

// quietUntil reports whether now falls in quiet hours and, if so, the end of them.
func (r Rules) quietUntil(now time.Time) (time.Time, bool) {
	start, _ := minuteOfDay(r.QuietHours.Start)
	end, _ := minuteOfDay(r.QuietHours.End)
	if start < 0 {
		return time.Time{}, false
	}
	local := now.In(r.loc)
	minute := local.Hour()*60 + local.Minute()
	var quiet bool
	if start < end {
		quiet = minute >= start && minute < end
	} else {
		quiet = minute >= start || minute < end
	}
	if !quiet {
		return time.Time{}, false
	}
	y, mo, d := local.Date()
	until := time.Date(y, mo, d, end/60, end%60, 0, 0, r.loc)
	if !until.After(local) {
		until = time.Date(y, mo, d+1, end/60, end%60, 0, 0, r.loc)
	}
	return until.UTC(), true
}

// Count records a marketing send on its day, once per message id, and forgets days older than a
// week so the document stays small.
func (s *State) Count(day, id string) {
	if s.Marketing == nil {
		s.Marketing = map[string][]string{}
	}
	if !slices.Contains(s.Marketing[day], id) {
		s.Marketing[day] = append(s.Marketing[day], id)
	}
	for d := range s.Marketing {
		if d < weekBefore(day) {
			delete(s.Marketing, d)
		}
	}
}

func weekBefore(day string) string {
	t, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return ""
	}
	return t.AddDate(0, 0, -7).Format(time.DateOnly)
}

// Set changes one field of a channel's state and audits it; it reports whether anything changed,
// so repeating a change (a reply received twice) adds no history.
func (s *State) Set(channel, field, to, by, source string, at time.Time) bool {
	if s.Channels == nil {
		s.Channels = map[string]ChannelState{}
	}
	ch := s.Channels[channel]
	var from string
	switch field {
	case "consent":
		from, ch.Consent = ch.Consent, to
	case "optedOut":
		from = boolWord(ch.OptedOut)
		ch.OptedOut = to == "true"
	}
	if from == to {
		return false
	}
	ch.Updated = at
	s.Channels[channel] = ch
	s.History = append(s.History, Change{At: at, Channel: channel, Field: field, From: from, To: to, By: by, Source: source})
	s.Updated = at
	return true
}

func boolWord(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// Merged is what the rules see for a member whose profile absorbed others (match's merges): per
// channel the most recently changed state of any of them, so an opt-out given under an absorbed
// OneID still holds; and the marketing counted under any of them, so the cap is the person's.
func Merged(primary State, absorbed ...State) State {
	out := State{OneID: primary.OneID, Channels: map[string]ChannelState{}, Marketing: map[string][]string{}}
	for _, s := range append([]State{primary}, absorbed...) {
		for name, ch := range s.Channels {
			if cur, ok := out.Channels[name]; !ok || ch.Updated.After(cur.Updated) {
				out.Channels[name] = ch
			}
		}
		for day, ids := range s.Marketing {
			for _, id := range ids {
				if !slices.Contains(out.Marketing[day], id) {
					out.Marketing[day] = append(out.Marketing[day], id)
				}
			}
		}
	}
	return out
}
