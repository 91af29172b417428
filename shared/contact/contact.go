// Package contact holds the rules of contact (consent per channel, opt-out, the marketing cap and
// quiet hours) and the pure decision whether a message may go now, later, or not at all.
package contact

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Collection is the store collection of each member's contact state, keyed by OneID (writer: notify).
const Collection = "contacts"

// Categories a message can have (the same words as the notification.requested contract).
const (
	Marketing     = "marketing"
	Transactional = "transactional"
	Sync          = "sync" // a level/balance sync to a platform: not a message to the member
)

// Suppression reasons, as notification.suppressed reports them.
const (
	ReasonNoConsent = "no_consent"
	ReasonOptedOut  = "opted_out"
	ReasonDailyCap  = "daily_cap"
	ReasonNoAddress = "no_address"
)

// Consent states a member can give a channel; empty means never asked (the rules' default applies).
const (
	ConsentGranted   = "granted"
	ConsentWithdrawn = "withdrawn"
)

// Rules are a brand's rules of contact, read from a data file and validated at start.
type Rules struct {
	// TimeZone names the zone of quiet hours and of the cap's days (IANA name).
	TimeZone string `json:"timeZone"`
	// DefaultConsent is whether a channel may carry marketing to a member who never said; "*" is
	// the fallback for channels not listed.
	DefaultConsent map[string]bool `json:"defaultConsent"`
	// MarketingPerDay caps marketing messages per member per day, across channels.
	MarketingPerDay int `json:"marketingPerDay"`
	// QuietHours is when marketing waits: start and end as "HH:MM"; start after end wraps midnight.
	QuietHours Window `json:"quietHours"`
	loc        *time.Location
}

// Window is a daily span of wall-clock time.
type Window struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// Parse reads and validates a rules file; unknown fields are errors, so a typo does not silently
// fall back to a default.
func Parse(raw []byte) (Rules, error) {
	var r Rules
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Rules{}, fmt.Errorf("contact rules: %w", err)
	}
	if dec.More() {
		return Rules{}, errors.New("contact rules: trailing data after the JSON object")
	}
	if err := r.validate(); err != nil {
		return Rules{}, fmt.Errorf("contact rules: %w", err)
	}
	return r, nil
}

func (r *Rules) validate() error {
	loc, err := time.LoadLocation(r.TimeZone)
	if err != nil || r.TimeZone == "" {
		return fmt.Errorf("timeZone %q: want an IANA zone such as Asia/Shanghai", r.TimeZone)
	}
	r.loc = loc
	if r.MarketingPerDay < 0 || r.MarketingPerDay > 100 {
		return fmt.Errorf("marketingPerDay %d: want 0 (no marketing) to 100", r.MarketingPerDay)
	}
	if _, ok := r.DefaultConsent["*"]; !ok {
		return errors.New(`defaultConsent: want a "*" entry for channels not listed`)
	}
	for _, ch := range slices.Sorted(maps.Keys(r.DefaultConsent)) {
		if ch == "" || strings.TrimSpace(ch) != ch {
			return fmt.Errorf("defaultConsent: channel %q: want a channel name", ch)
		}
	}
	start, err := minuteOfDay(r.QuietHours.Start)
	if err != nil {
		return fmt.Errorf("quietHours.start: %w", err)
	}
	end, err := minuteOfDay(r.QuietHours.End)
	if err != nil {
		return fmt.Errorf("quietHours.end: %w", err)
	}
	if start == end && r.QuietHours.Start != "" {
		return errors.New("quietHours: start equals end; leave both empty for none")
	}
	return nil
}

// minuteOfDay reads "HH:MM"; empty is -1 (no quiet hours).
func minuteOfDay(s string) (int, error) {
	if s == "" {
		return -1, nil
	}
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || len(h) != 2 || len(m) != 2 || err1 != nil || err2 != nil || hh < 0 || hh > 23 || mm < 0 || mm > 59 {
		return 0, fmt.Errorf("%q: want HH:MM", s)
	}
	return hh*60 + mm, nil
}

// Location is the rules' time zone.
func (r Rules) Location() *time.Location { return r.loc }

// Day is the cap's day of t (YYYY-MM-DD in the rules' zone).
func (r Rules) Day(t time.Time) string { return t.In(r.loc).Format(time.DateOnly) }
