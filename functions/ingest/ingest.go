// Package ingest is the front door: it accepts channel events and native platform webhooks over
// HTTP, validates them, and answers only once JetStream has stored them.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/admit"
	"github.com/omnimember/omnimember/shared/credential"
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

// Function is ingest as the runtime runs it: an HTTP receiver whose handler admits channel events
// under edge (shared/admit, plus the same-id check), and, when wh is not nil, the native platform
// webhooks, whose events pass the same checks.
func Function(edge Edge, wh *Webhooks) runtime.Function {
	h := &Handler{Edge: edge, same: &conflicts{ttl: edge.ConflictWindow}}
	f := runtime.Function{Name: Name, EventsPath: EventsPath, Handle: h.Handle, Emits: Emits}
	f.Routes = func(mux runtime.Mux, pub *runtime.Publisher) {
		h.same.use(pub)
		if wh != nil {
			wh.Edge = edge
			wh.Routes(mux, pub)
		}
	}
	return f
}

// Handler admits events posted to /v1/events.
type Handler struct {
	Edge Edge
	same *conflicts // nil: no same-id check (tests of the checks alone)
}

// Handle admits one channel event: every check a later stage runs and the source convention
// (shared/admit: the data's channel and shop agree with the source the sender is scoped to), then
// the same-id check, then it stamps when ingest received it (the loyalty caps count that day) and
// passes it on. The runtime stores it under a message id derived from its source and id, so a
// re-post within the duplicate window is stored once (and a later one is recognised by match's
// receipt).
func (h *Handler) Handle(ctx context.Context, ev cloudevents.Event) ([]cloudevents.Event, error) {
	if !slices.Contains(Accepts, ev.Type()) {
		return nil, &events.FieldError{Field: "type", Reason: fmt.Sprintf("%q is not accepted at ingest; send one of %v", ev.Type(), Accepts)}
	}
	policy, history := h.Edge.policy(), strings.HasPrefix(ev.Source(), BackfillSourcePrefix)
	if history {
		if h.Edge.HistorySender == nil || !h.Edge.HistorySender(ctx) {
			return nil, &events.FieldError{Field: "source", Reason: fmt.Sprintf("sources under %q are the backfill tool's (make backfill), "+
				"which publishes with its own credential and rules; live senders use their own source", BackfillSourcePrefix)}
		}
		policy.Window = admit.History(policy.Window.MaxSkew)
	}
	data, err := policy.Check(ev)
	if fe, ok := errors.AsType[*events.FieldError](err); ok && admit.TooLarge(err) {
		return nil, runtime.Refuse(http.StatusRequestEntityTooLarge, fe.Field, fe.Reason)
	}
	if err != nil {
		return nil, err
	}
	if h.same != nil {
		if err := h.same.claim(ctx, ev, data); err != nil {
			return nil, err
		}
	}
	if history {
		ev.SetExtension(events.ReceivedAtExtension, nil) // history counts its own days
	} else {
		events.StampReceived(&ev, h.Edge.now())
	}
	return []cloudevents.Event{ev}, nil
}

// BackfillSourcePrefix starts the source of every event the backfill tool publishes
// (shared/export). Such events are history: the live window does not apply (History's rules do),
// and they carry no receivedat, so the loyalty caps count their paidAt. The tool publishes them
// straight to JetStream with its own NATS credential; /v1/events refuses the prefix unless
// Edge.HistorySender vouches for the request's credential, so a live sender cannot pass an old
// paidAt off as history.
const BackfillSourcePrefix = credential.HistoryPrefix
