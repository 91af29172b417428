// Package runtime runs omnimember functions: one handler served as a JetStream durable consumer
// and as a CloudEvents HTTP receiver, with acks, retries, dead letters, logs and shutdown in one place.
package runtime

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
)

// Handler turns one event into the events it causes. It must be idempotent: the runtime may call
// it again for the same event after a crash or a lost ack, and publishes what it returns under
// deterministic message ids.
type Handler func(ctx context.Context, ev cloudevents.Event) ([]cloudevents.Event, error)

// Function is one deployable unit.
type Function struct {
	Name string
	// Consumes lists the event types pulled from JetStream; empty means no consumer.
	Consumes []string
	// Emits lists the event types the function publishes (from its handler, routes and
	// background work); its publisher refuses any other. Production NATS grants the function's
	// user publish rights on exactly these subjects (deploy/), so an undeclared type fails here,
	// in tests, not as a permissions violation in a cluster. Empty: no check (tools, tests).
	Emits  []string
	Handle Handler
	// EventsPath, if set, accepts CloudEvents over HTTP there (binary, structured and batch).
	EventsPath string
	// Routes adds HTTP routes (read APIs, webhooks) beside the receiver.
	Routes func(mux Mux, pub *Publisher)
	// Background, if set, runs beside the consumer and the routes until the process drains (a
	// scheduler, a fan-out that resumes from its cursor); it must return once ctx ends.
	Background func(ctx context.Context, pub *Publisher)
}

// Validate checks the function is complete.
func (f Function) Validate() error {
	switch {
	case f.Name == "":
		return errors.New("function without a name")
	case (len(f.Consumes) > 0 || f.EventsPath != "") && f.Handle == nil:
		return errors.New("function " + f.Name + " consumes events but has no handler")
	}
	for _, t := range f.Consumes {
		if !events.Known(t) {
			return errors.New("function " + f.Name + " consumes unknown event type " + t)
		}
	}
	for _, t := range f.Emits {
		if !events.Known(t) {
			return errors.New("function " + f.Name + " emits unknown event type " + t)
		}
	}
	return nil
}

// Mux is where a function registers its routes: an *http.ServeMux, which the runtime wraps to
// know every route it serves (Runtime.Routes; the tests walk them without a credential).
type Mux interface {
	Handle(pattern string, handler http.Handler)
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks an error that retrying cannot fix (a malformed event, a broken rule): the event
// goes to the dead-letter stream at once. Other errors are retried with backoff.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// IsPermanent reports whether err was marked Permanent, names a bad field of the event, or refuses it.
func IsPermanent(err error) bool {
	var p permanent
	var fe *events.FieldError
	var rf *Refusal
	return errors.As(err, &p) || errors.As(err, &fe) || errors.As(err, &rf)
}

// Refusal is bad input a handler refuses with a status other than 400 (which an *events.FieldError
// gets): 409 for the same event id with other data, 413 for an event too large. It is permanent;
// the HTTP receiver answers Status with Field named.
type Refusal struct {
	Status int
	Field  string
	Reason string
}

func (r *Refusal) Error() string { return r.Field + ": " + r.Reason }

// Refuse builds a Refusal.
func Refuse(status int, field, reason string) error {
	return &Refusal{Status: status, Field: field, Reason: reason}
}

type annotationsKey struct{}

type annotations struct {
	mu    sync.Mutex
	attrs []slog.Attr
}

// Annotate adds an attribute (the OneID, say) to the event's outcome log line.
func Annotate(ctx context.Context, key, value string) {
	if a, ok := ctx.Value(annotationsKey{}).(*annotations); ok {
		a.mu.Lock()
		a.attrs = append(a.attrs, slog.String(key, value))
		a.mu.Unlock()
	}
}

// SetOneID records the member an event resolved to, for the outcome log line.
func SetOneID(ctx context.Context, oneID string) { Annotate(ctx, "oneId", oneID) }

func withAnnotations(ctx context.Context) (context.Context, *annotations) {
	a := &annotations{}
	return context.WithValue(ctx, annotationsKey{}, a), a
}

type deliveryKey struct{}

// Delivery is the delivery count of the event being handled (1 on first delivery, 0 over HTTP).
func Delivery(ctx context.Context) uint64 {
	n, _ := ctx.Value(deliveryKey{}).(uint64)
	return n
}
