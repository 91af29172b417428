// Package ingest is the front door: it accepts channel events and native platform webhooks over
// HTTP, validates them, and answers only once JetStream has stored them.
package ingest

import (
	"context"
	"fmt"
	"slices"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/runtime"
)

// Name is the function's name.
const Name = "ingest"

// EventsPath is where CloudEvents are posted.
const EventsPath = "/v1/events"

// Accepts lists the event types the outside world may send; the rest are produced inside.
var Accepts = []string{events.MemberRegistered, events.OrderPaid, events.OrderRefunded, events.InteractionRecorded}

// Emits is what ingest publishes, from /v1/events, the webhooks and the pollers: what it accepts.
var Emits = Accepts

// Function is ingest as the runtime runs it: an HTTP receiver whose handler passes valid events on,
// and, when wh is not nil, the native platform webhooks.
func Function(wh *Webhooks) runtime.Function {
	f := runtime.Function{Name: Name, EventsPath: EventsPath, Handle: Handle, Emits: Emits}
	if wh != nil {
		f.Routes = wh.Routes
	}
	return f
}

// Handle accepts a valid channel event unchanged; the runtime stores it under a message id derived
// from its source and id, so a re-post within the duplicate window is stored once (and a later one
// is recognised by match's receipt).
func Handle(_ context.Context, ev cloudevents.Event) ([]cloudevents.Event, error) {
	if !slices.Contains(Accepts, ev.Type()) {
		return nil, &events.FieldError{Field: "type", Reason: fmt.Sprintf("%q is not accepted at ingest; send one of %v", ev.Type(), Accepts)}
	}
	if err := events.Validate(ev); err != nil {
		return nil, err
	}
	return []cloudevents.Event{ev}, nil
}
