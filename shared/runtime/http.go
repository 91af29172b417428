package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/credential"
	"github.com/omnimember/omnimember/shared/receipt"
	"go.opentelemetry.io/otel/trace"
)

// ErrorBody is the JSON body of every 4xx/5xx answer: what went wrong and, for bad input, which field.
type ErrorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// WriteJSON writes v as JSON with the status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError writes an ErrorBody.
func WriteError(w http.ResponseWriter, status int, field, format string, args ...any) {
	WriteJSON(w, status, ErrorBody{Error: fmt.Sprintf(format, args...), Field: field})
}

type accepted struct {
	Accepted int      `json:"accepted"`
	IDs      []string `json:"ids"`
}

// receiver accepts CloudEvents over HTTP in binary, structured and batch modes, runs the handler on
// each, and answers 202 only after every emitted event is stored in JetStream. A batch is all or
// nothing at the handler stage: one bad event rejects the batch with its index in the field name.
func (r *Runtime) receiver(fn Function, pub *Publisher) http.Handler {
	log := r.log.With("function", fn.Name)
	replay := r.metrics.replayCounter(fn.Name)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			WriteError(w, http.StatusMethodNotAllowed, "", "use POST")
			return
		}
		start := time.Now()
		sender, ok := r.authenticateSender(w, req, log)
		if !ok {
			return
		}
		req.Body = http.MaxBytesReader(w, req.Body, r.cfg.MaxBodyBytes)
		evs, batch, err := decodeRequest(req)
		if err != nil {
			writeDecodeError(w, err, r.cfg.MaxBodyBytes)
			return
		}
		// The whole request is in scope before any handler runs: a refused event stores nothing.
		if !authorizeAll(req.Context(), w, log, sender, evs, batch) {
			return
		}
		ctx, notes := withAnnotations(context.WithValue(req.Context(), senderKey{}, sender))
		ctx = receipt.OnReplay(ctx, replay)
		ctx = events.WithValidationMemo(ctx)
		results := make([]handled, 0, len(evs))
		defer func() { endAll(results, err) }()
		for i := range evs {
			h := handled{cause: evs[i]}
			h.ctx, h.span = r.tracer.startHandler(ctx, fn.Name, &h.cause, trace.SpanKindInternal, 0)
			began := time.Now()
			h.outs, err = call(h.ctx, fn.Handle, h.cause)
			r.metrics.handled(fn.Name, h.cause.Type(), TriggerLabelHTTP, time.Since(began))
			results = append(results, h)
			if err != nil {
				r.metrics.failed(fn.Name, h.cause.Type(), err)
				r.writeHandlerError(w, err, batch, i)
				log.LogAttrs(ctx, slog.LevelWarn, "event", slog.String("id", h.cause.ID()), slog.String("type", h.cause.Type()),
					slog.String("outcome", "rejected"), slog.String("sender", sender.Name), slog.String("error", logSafe(err)))
				return
			}
		}
		ids := make([]string, 0, len(evs))
		caused := make([]Caused, 0, len(results))
		for _, h := range results {
			caused = append(caused, Caused{Ctx: h.ctx, Cause: &h.cause, Events: h.outs})
			ids = append(ids, h.cause.ID())
		}
		if err = pub.PublishAll(ctx, caused); err != nil {
			r.metrics.failed(fn.Name, results[0].cause.Type(), err)
			r.writeHandlerError(w, err, batch, -1)
			log.LogAttrs(ctx, slog.LevelWarn, "http events", slog.Int("events", len(evs)), slog.String("outcome", "not stored"),
				slog.String("sender", sender.Name), slog.String("error", logSafe(err)))
			return
		}
		attrs := append([]slog.Attr{slog.Int("events", len(evs)), slog.String("outcome", "accepted"),
			slog.Duration("took", time.Since(start))}, notes.attrs...)
		if len(evs) == 1 {
			attrs = append(attrs, slog.String("id", evs[0].ID()), slog.String("type", evs[0].Type()))
		}
		log.LogAttrs(ctx, slog.LevelInfo, "http events", attrs...)
		WriteJSON(w, http.StatusAccepted, accepted{Accepted: len(ids), IDs: ids})
	})
}

// handled is one event of a request: its handler's span stays open until its outputs are stored.
type handled struct {
	cause cloudevents.Event
	outs  []cloudevents.Event
	ctx   context.Context
	span  trace.Span
}

// endAll ends the request's handler spans: a batch is accepted or rejected as a whole.
func endAll(results []handled, err error) {
	outcome := "accepted"
	if err != nil {
		outcome = "rejected"
	}
	for _, h := range results {
		endSpan(h.span, outcome, err)
	}
}

func decodeRequest(req *http.Request) (evs []cloudevents.Event, batch bool, err error) {
	if strings.HasPrefix(strings.ToLower(req.Header.Get("Content-Type")), "application/cloudevents-batch+json") {
		evs, err = cehttp.NewEventsFromHTTPRequest(req)
		if err == nil && len(evs) == 0 {
			err = errors.New("empty batch")
		}
		return evs, true, err
	}
	ev, err := cehttp.NewEventFromHTTPRequest(req)
	if err != nil {
		return nil, false, err
	}
	return []cloudevents.Event{*ev}, false, nil
}

// writeHandlerError maps the error classes to HTTP: a Refusal its status (409, 413), bad input 400,
// other permanent errors 422, transient errors 503 so the sender retries.
func (r *Runtime) writeHandlerError(w http.ResponseWriter, err error, batch bool, index int) {
	var fe *events.FieldError
	var rf *Refusal
	inBatch := func(field string) string {
		if batch && index >= 0 {
			return fmt.Sprintf("[%d].%s", index, field)
		}
		return field
	}
	switch {
	case errors.As(err, &rf):
		WriteError(w, rf.Status, inBatch(rf.Field), "%s", rf.Reason)
	case errors.As(err, &fe):
		WriteError(w, http.StatusBadRequest, inBatch(fe.Field), "%s", fe.Reason)
	case IsPermanent(err):
		WriteError(w, http.StatusUnprocessableEntity, "", "%v", err)
	default:
		// The cause (a store's or the broker's error, a panic's value and stack) stays in the
		// log: the sender only needs to know nothing was stored and to retry.
		w.Header().Set("Retry-After", "1")
		WriteError(w, http.StatusServiceUnavailable, "", "not stored, retry")
	}
}

// writeDecodeError answers a body that is not CloudEvents: too large 413, cut off by the read
// timeout 408, otherwise 400.
func writeDecodeError(w http.ResponseWriter, err error, maxBytes int64) {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		WriteError(w, http.StatusRequestEntityTooLarge, "body", "body exceeds %d bytes", maxBytes)
	case errors.Is(err, os.ErrDeadlineExceeded):
		WriteError(w, http.StatusRequestTimeout, "body", "the body did not arrive in time")
	default:
		WriteError(w, http.StatusBadRequest, "body", "not a CloudEvent: %v", err)
	}
}

// logSafe is an error as a log line may show it: a bad field by its name and the kind of
// failure, never the value (a phone in a schema reason, say); other errors whole.
func logSafe(err error) string {
	var fe *events.FieldError
	if errors.As(err, &fe) {
		kind := fe.Kind
		if kind == "" {
			kind = "invalid"
		}
		return strings.Replace(err.Error(), fe.Error(), fe.Field+": "+kind, 1)
	}
	return err.Error()
}

// AdminTokenEnv names the variable holding the operator endpoints' bearer token (a secret).
const AdminTokenEnv = "OMNIMEMBER_ADMIN_TOKEN"

// APITokenEnv names the variable holding the bearer token channel systems (stores, the app) use
// for write APIs such as redemptions (a secret).
const APITokenEnv = "OMNIMEMBER_API_TOKEN"

// RequireBearer lets a request through only with `Authorization: Bearer <token>`; an empty token
// disables the route (operator endpoints stay closed until a token is configured).
func RequireBearer(token string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token == "" {
			WriteError(w, http.StatusForbidden, "", "this endpoint is disabled: its bearer token is not configured")
			return
		}
		got, ok := credential.Bearer(r.Header.Get("Authorization"))
		if !ok || !credential.Same(got, token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="omnimember"`)
			WriteError(w, http.StatusUnauthorized, "", "a valid bearer token is required")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Operator names who made an authenticated request, for audit records (X-Omnimember-Operator,
// else "operator").
func Operator(r *http.Request) string {
	if who := strings.TrimSpace(r.Header.Get("X-Omnimember-Operator")); who != "" && len(who) <= 128 {
		return who
	}
	return "operator"
}
