// Package segment selects members by rules over their profile data: tier, pool, channels, spend and
// orders in a window, recency, interactions in a window, tags and points balance.
package segment

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
)

// Rule is a segment: members matching every criterion that is set.
type Rule struct {
	// Tiers: the member's level is one of these.
	Tiers []string `json:"tiers,omitempty" yaml:"tiers"`
	// Pool: plaintext (reachable) or ciphertext (hashes and platform ids only).
	Pool string `json:"pool,omitempty" yaml:"pool"`
	// Channels: the member is on at least one of these channels.
	Channels []string `json:"channels,omitempty" yaml:"channels"`
	// SpendFen: net spend (paid minus refunded, in fen) in the last Days days; Days 0 is lifetime.
	SpendFen *Window `json:"spendFen,omitempty" yaml:"spendFen"`
	// Orders: paid orders in the last Days days; Days 0 is lifetime.
	Orders *Window `json:"orders,omitempty" yaml:"orders"`
	// DaysSinceLastOrder: only members who ordered at least once.
	DaysSinceLastOrder *Range `json:"daysSinceLastOrder,omitempty" yaml:"daysSinceLastOrder"`
	// Interactions: browse, live and community interactions in the last Days days (1..180).
	Interactions *Window `json:"interactions,omitempty" yaml:"interactions"`
	// DaysSinceLastInteraction: a member who never interacted has an unbounded count of days.
	DaysSinceLastInteraction *Range `json:"daysSinceLastInteraction,omitempty" yaml:"daysSinceLastInteraction"`
	// Tags: the member carries every one of these tags.
	Tags []string `json:"tags,omitempty" yaml:"tags"`
	// Points: the points balance.
	Points *Range `json:"points,omitempty" yaml:"points"`
}

// Range bounds a number, both ends inclusive; either may be absent.
type Range struct {
	Min *int64 `json:"min,omitempty" yaml:"min"`
	Max *int64 `json:"max,omitempty" yaml:"max"`
}

// Window is a Range over the last Days days.
type Window struct {
	Days  int `json:"days" yaml:"days"`
	Range `yaml:",inline"`
}

// Pools a rule may select.
const (
	PoolPlaintext  = "plaintext"
	PoolCiphertext = "ciphertext"
)

// Limits of windows: daily interaction counts are kept for MaxInteractionDays days.
const (
	MaxWindowDays      = 3650
	MaxInteractionDays = 180
)

var name = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,39}$`)

// FieldError names the rule field a validation failed on (a dotted path such as `spendFen.days`).
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Validate checks every criterion and that there is at least one; the first error names its field.
func (r Rule) Validate() error {
	if r.empty() {
		return fieldErr("rule", "a segment needs at least one criterion")
	}
	checks := []error{
		names("tiers", r.Tiers), names("channels", r.Channels), names("tags", r.Tags),
		r.validPool(), r.SpendFen.valid("spendFen", MaxWindowDays, true), r.Orders.valid("orders", MaxWindowDays, true),
		r.Interactions.valid("interactions", MaxInteractionDays, false),
		r.DaysSinceLastOrder.valid("daysSinceLastOrder"), r.DaysSinceLastInteraction.valid("daysSinceLastInteraction"),
		r.Points.valid("points"),
	}
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	return nil
}

func (r Rule) empty() bool {
	return len(r.Tiers) == 0 && r.Pool == "" && len(r.Channels) == 0 && r.SpendFen == nil && r.Orders == nil &&
		r.DaysSinceLastOrder == nil && r.Interactions == nil && r.DaysSinceLastInteraction == nil &&
		len(r.Tags) == 0 && r.Points == nil
}

func (r Rule) validPool() error {
	if r.Pool != "" && r.Pool != PoolPlaintext && r.Pool != PoolCiphertext {
		return fieldErr("pool", "%q: want %s or %s", r.Pool, PoolPlaintext, PoolCiphertext)
	}
	return nil
}

func names(field string, values []string) error {
	for i, v := range values {
		if !name.MatchString(v) {
			return fieldErr(fmt.Sprintf("%s[%d]", field, i), "%q: want lower-case letters, digits, - or _", v)
		}
		if slices.Contains(values[:i], v) {
			return fieldErr(fmt.Sprintf("%s[%d]", field, i), "%q appears twice", v)
		}
	}
	return nil
}

func (w *Window) valid(field string, maxDays int, lifetime bool) error {
	if w == nil {
		return nil
	}
	low := 1
	if lifetime {
		low = 0
	}
	if w.Days < low || w.Days > maxDays {
		return fieldErr(field+".days", "%d: want %d..%d", w.Days, low, maxDays)
	}
	return w.Range.valid(field)
}

func (r *Range) valid(field string) error {
	switch {
	case r == nil:
		return nil
	case r.Min == nil && r.Max == nil:
		return fieldErr(field, "set min, max or both")
	case r.Min != nil && *r.Min < 0:
		return fieldErr(field+".min", "%d: must not be negative", *r.Min)
	case r.Max != nil && *r.Max < 0:
		return fieldErr(field+".max", "%d: must not be negative", *r.Max)
	case r.Min != nil && r.Max != nil && *r.Min > *r.Max:
		return fieldErr(field+".max", "%d is below min %d", *r.Max, *r.Min)
	}
	return nil
}

// needsMin reports whether the range excludes zero, so only members with a recorded value match.
func (r Range) needsMin() bool { return r.Min != nil && *r.Min > 0 }

// ErrUnknown: no built-in segment has the name.
var ErrUnknown = errors.New("unknown segment")
