package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/shared/credential"
)

// authenticateSender finds the sender of a receiver's request, or answers 401 (no or an unknown
// token, with WWW-Authenticate) or 403 (no sender configured: the receiver is closed).
func (r *Runtime) authenticateSender(w http.ResponseWriter, req *http.Request, log *slog.Logger) (*credential.Sender, bool) {
	sender, err := r.cfg.Senders.Authenticate(req.Header.Get("Authorization"))
	if err != nil {
		log.LogAttrs(req.Context(), slog.LevelInfo, "http events", slog.String("outcome", "unauthenticated"),
			slog.String("path", req.URL.Path), slog.String("reason", err.Error()))
		writeAuthError(w, err, "a sender token (OMNIMEMBER_SENDER_TOKENS)")
		return nil, false
	}
	return sender, true
}

type senderKey struct{}

// SenderOf is the authenticated sender of the request a handler runs for (nil outside the HTTP
// receiver: events pulled from JetStream were authenticated when they entered).
func SenderOf(ctx context.Context) *credential.Sender {
	s, _ := ctx.Value(senderKey{}).(*credential.Sender)
	return s
}

// authorizeAll checks every event of a request against the sender's scope before any handler
// runs, so a refused request stores and publishes nothing; the 403 names the first offending
// event by its index in a batch.
func authorizeAll(ctx context.Context, w http.ResponseWriter, log *slog.Logger, sender *credential.Sender, evs []cloudevents.Event, batch bool) bool {
	for i, ev := range evs {
		field, err := sender.Check(ev.Type(), ev.Source())
		if err == nil {
			continue
		}
		at := "the event"
		if batch {
			field, at = fmt.Sprintf("[%d].%s", i, field), fmt.Sprintf("event [%d]", i)
		}
		log.LogAttrs(ctx, slog.LevelWarn, "http events", slog.String("outcome", "forbidden"), slog.String("sender", sender.Name),
			slog.String("field", field), slog.String("type", clip(ev.Type())), slog.String("source", clip(ev.Source())))
		w.Header().Set("WWW-Authenticate", `Bearer realm="omnimember", error="insufficient_scope"`)
		WriteError(w, http.StatusForbidden, field, "%s (id %q): %v", at, clip(ev.ID()), err)
		return false
	}
	return true
}

// clip keeps a caller-chosen string short enough for a log line or an error.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// writeAuthError maps credential errors to HTTP: anonymous or unknown 401 with WWW-Authenticate
// (RFC 6750), a valid token without the scope 403, nothing configured 403 (the route is closed).
func writeAuthError(w http.ResponseWriter, err error, what string) {
	switch {
	case errors.Is(err, credential.ErrClosed):
		WriteError(w, http.StatusForbidden, "", "this endpoint is closed: %s is not configured", what)
	case errors.Is(err, credential.ErrScope):
		w.Header().Set("WWW-Authenticate", `Bearer realm="omnimember", error="insufficient_scope"`)
		WriteError(w, http.StatusForbidden, "", "%v", err)
	case errors.Is(err, credential.ErrUnknown):
		w.Header().Set("WWW-Authenticate", `Bearer realm="omnimember", error="invalid_token"`)
		WriteError(w, http.StatusUnauthorized, "", "%s is required: %v", what, err)
	default:
		w.Header().Set("WWW-Authenticate", `Bearer realm="omnimember"`)
		WriteError(w, http.StatusUnauthorized, "", "%s is required: Authorization: Bearer <token>", what)
	}
}

// RequireReader lets a request through only with a reader token holding the scope; lookups
// (credential.ScopeLookup) also spend one of the reader's rate: 429 with Retry-After when it is
// used up. No reader configured: 403, the route is closed.
func RequireReader(readers *credential.Readers, scope string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reader, err := readers.Authenticate(r.Header.Get("Authorization"), scope)
		if err != nil {
			writeAuthError(w, err, "a reader token (OMNIMEMBER_READER_TOKENS)")
			return
		}
		if scope == credential.ScopeLookup {
			if ok, wait := readers.TakeLookup(reader); !ok {
				w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
				WriteError(w, http.StatusTooManyRequests, "", "reader %q has used its lookups (%d a minute); retry after %s",
					reader.Name, reader.LookupsPerMinute, wait.Round(time.Second))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// LongRunning lifts the write timeout for a route that runs a job (expiry, evaluation, reseal):
// its caller is a scheduler with its own deadline, and the answer comes when the job is done.
func LongRunning(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
		next.ServeHTTP(w, r)
	})
}
