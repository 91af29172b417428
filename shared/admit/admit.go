// Package admit is the one validation of channel events at the edge: ingest runs it on every event
// before it answers 202, on every native push's events and on what its pollers read; the backfill
// converter runs its content checks on every row and builds its sources with HistorySource. It runs
// the checks the later stages run, from their own definitions — the schemas and bounds of events/,
// strict typed decoding, shared/identity's normalisation and rules — plus the time window the
// loyalty caps rely on, so nothing is accepted that a later stage would refuse, and the source
// convention (source.go) that binds a sender's data to the source its token is scoped to.
package admit

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/identity"
)

// Checks an event can fail, in the order they run. Attributes, size, schema and decoding are about
// the event's form (from a platform adapter: a bug of ours); source, identities and time about what
// it says.
const (
	CheckAttributes = "attributes"
	CheckSize       = "size"
	CheckSchema     = "schema"
	CheckDecode     = "decode"
	CheckSource     = "source"
	CheckIdentities = "identities"
	CheckTime       = "time"
)

// Error is a refused event: which check refused it, and why. It wraps an *events.FieldError naming
// the field (an HTTP edge answers 400; 413 for CheckSize, data over events.MaxDataBytes).
type Error struct {
	Check string
	err   error
}

func (e *Error) Error() string { return e.err.Error() }
func (e *Error) Unwrap() error { return e.err }

// Form reports whether the check that refused err is about the event's form rather than its content.
func Form(err error) bool {
	var e *Error
	return errors.As(err, &e) && slices.Contains([]string{CheckAttributes, CheckSize, CheckSchema, CheckDecode}, e.Check)
}

// TooLarge reports whether err refuses an event for its size (an HTTP edge answers 413).
func TooLarge(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Check == CheckSize
}

func refuse(check, field, format string, args ...any) error {
	return &Error{Check: check, err: &events.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}}
}

// Policy is what the checks need besides the event: the merge rules (the blocklist and which types
// can resolve a member), the time window, the clock, and whether the source convention applies.
type Policy struct {
	Rules  *identity.Rules
	Window Window
	Now    func() time.Time
	// PlatformSource skips the source check (SourceAgrees) for events a platform adapter built
	// (shared/platform: native pushes, the pollers): their source is the adapter's own,
	// `omnimember/webhooks/<platform>`, not a sender's scope, and their shop is the one the
	// platform signed the push for or its API answered for. Everything a sender posts is checked.
	PlatformSource bool
}

// Check runs every check on one channel event and returns the first refusal (an *Error), or the
// event's data decoded into its Go type. Its source must agree with its data (SourceAgrees) unless
// PlatformSource is set.
func (p Policy) Check(ev cloudevents.Event) (any, error) {
	if err := checkAttributes(ev); err != nil {
		return nil, err
	}
	if len(ev.Data()) > events.MaxDataBytes {
		return nil, refuse(CheckSize, "data", "%d bytes of data, at most %d per event", len(ev.Data()), events.MaxDataBytes)
	}
	if !utf8.Valid(ev.Data()) {
		return nil, refuse(CheckSchema, "data", "not valid UTF-8")
	}
	if err := events.Validate(ev); err != nil {
		return nil, &Error{Check: CheckSchema, err: err}
	}
	data, err := events.DecodeData(ev.Type(), ev.Data())
	if err != nil {
		return nil, &Error{Check: CheckDecode, err: err}
	}
	if c, ok := facts(data); ok && !p.PlatformSource { // other types are refused by CheckData
		if err := c.agrees(ev.Source()); err != nil {
			return nil, err
		}
	}
	if err := p.CheckData(ev.Type(), data); err != nil {
		return nil, err
	}
	return data, nil
}

// CheckData runs the content checks of the data alone (identities, time window) on channel data
// already decoded into its Go type (a pointer, as events.DecodeData returns). The backfill
// converter, which builds that data itself within the contract's bounds and its source with
// HistorySource, runs these on every row.
func (p Policy) CheckData(eventType string, data any) error {
	c, ok := facts(data)
	if !ok {
		return refuse(CheckAttributes, "type", "%q is not a channel event", eventType)
	}
	if err := p.identities(eventType, c.identities); err != nil {
		return err
	}
	return p.Window.check(c, p.now())
}

func (p Policy) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// checkAttributes bounds the CloudEvents attributes a later stage stores or repeats: an id comes
// back as the sourceId of what it causes (at most events.MaxString), every attribute travels in a
// NATS header, and a store refuses invalid UTF-8.
func checkAttributes(ev cloudevents.Event) error {
	for _, a := range []struct{ name, value string }{
		{"id", ev.ID()}, {"source", ev.Source()}, {"subject", ev.Subject()}, {"dataschema", ev.DataSchema()}, {"type", ev.Type()},
	} {
		if err := boundedText(a.name, a.value, events.MaxString); err != nil {
			return err
		}
	}
	exts := ev.Extensions()
	if len(exts) > events.MaxExtensions {
		return refuse(CheckAttributes, "extensions", "%d extension attributes, at most %d", len(exts), events.MaxExtensions)
	}
	for name, v := range exts {
		if err := boundedText(name, fmt.Sprint(v), events.MaxExtensionBytes); err != nil {
			return err
		}
	}
	return nil
}

func boundedText(name, value string, limit int) error {
	switch {
	case len(value) > limit:
		return refuse(CheckAttributes, name, "%d bytes, at most %d", len(value), limit)
	case !utf8.ValidString(value):
		return refuse(CheckAttributes, name, "not valid UTF-8")
	case strings.ContainsFunc(value, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return refuse(CheckAttributes, name, "contains a control character")
	}
	return nil
}
