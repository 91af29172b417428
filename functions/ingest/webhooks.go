package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/textproto"
	"regexp"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/admit"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/platform"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultMaxWebhookBytes is the body limit of a native push; larger bodies get 413.
const DefaultMaxWebhookBytes = 1 << 20

// Outcomes of a push, the outcome label of omnimember_webhooks_total.
const (
	OutcomeAccepted        = "accepted"         // events stored (or nothing to store), reply sent
	OutcomeUnhandled       = "unhandled"        // acknowledged and archived; its message types make no events
	OutcomeBadSignature    = "bad_signature"    // 401
	OutcomeMalformed       = "malformed"        // 400
	OutcomeUnknownShop     = "unknown_shop"     // 404
	OutcomeUnknownPlatform = "unknown_platform" // 404, label platform="unknown"
	OutcomeUpstream        = "upstream"         // 503: an API the adapter needs, the archive or the event stream failed
	OutcomeTooLarge        = "too_large"        // 413
	OutcomeError           = "error"            // 500: an adapter bug (an invalid event, say)
)

// ErrUnknownPlatform: no adapter serves the platform named in the path → 404.
var ErrUnknownPlatform = errors.New("unknown platform")

// Webhooks receives native platform pushes on /webhooks/{platform}[/{rest...}]: the platform's
// adapter verifies each push, ingest archives the verified raw push, the adapter normalises it,
// and ingest publishes the events and answers the adapter's reply only after JetStream stored
// them. A push that does not verify is answered 401 (or 404 for an unknown shop) and never
// archived, so strangers cannot fill or roll the raw archive.
type Webhooks struct {
	// Adapters by platform name (the path segment), built explicitly in main.
	Adapters map[string]platform.Adapter
	// Credentials per platform: each shop's secrets (OMNIMEMBER_WEBHOOK_SECRETS).
	Credentials map[string]platform.Credentials
	// MaxBodyBytes limits a push's body (default DefaultMaxWebhookBytes).
	MaxBodyBytes int64
	// Now is the clock stamping ReceivedAt (adapters check timestamp windows against it).
	Now func() time.Time
	// Log receives one outcome line per push (never a phone).
	Log *slog.Logger
	// Edge is what the pushes' events must pass, as /v1/events's do (Function sets ingest's;
	// the zero value is DefaultEdge). The live window is counted from the push's ReceivedAt.
	Edge Edge
}

// Verify checks with the push's adapter that it comes from the platform (its signature), with
// the platform's credentials.
func (wh *Webhooks) Verify(push platform.Push) error {
	ad, ok := wh.Adapters[push.Platform]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownPlatform, push.Platform)
	}
	if err := ad.Verify(push, wh.Credentials[push.Platform]); err != nil {
		return fmt.Errorf("%s push: %w", push.Platform, err)
	}
	return nil
}

// Normalise runs the push's adapter with the platform's credentials, then admits its events as
// /v1/events admits one (shared/admit, against the time the push arrived) and stamps them with
// that time. Ingest and the re-normalisation command share it, so an archived push re-run days
// later is judged as on arrival.
func (wh *Webhooks) Normalise(ctx context.Context, push platform.Push) (platform.Result, error) {
	ad, ok := wh.Adapters[push.Platform]
	if !ok {
		return platform.Result{}, fmt.Errorf("%w %q", ErrUnknownPlatform, push.Platform)
	}
	res, err := ad.Handle(ctx, push, wh.Credentials[push.Platform])
	if err == nil {
		err = wh.admit(push, res.Events)
	}
	if err != nil {
		return res, fmt.Errorf("%s push: %w", push.Platform, err)
	}
	return res, nil
}

// admit runs the edge's checks on a push's events. An event whose form is wrong (the schema, an
// attribute) is the adapter's bug: 500, archived for re-normalisation once fixed. One whose content
// is refused (a paidAt outside the window, an identity that does not normalise, an order no
// identity can resolve) is the push's fault: 400 naming the event and its field.
func (wh *Webhooks) admit(push platform.Push, evs []cloudevents.Event) error {
	edge := wh.Edge
	if edge.Rules == nil && edge.Window == (admit.Window{}) {
		edge = DefaultEdge()
	}
	policy := edge.policy()
	policy.Now = func() time.Time { return push.ReceivedAt }
	// The adapter's source is its own (platform.Source); the signature vouches for the shop.
	policy.PlatformSource = true
	for i := range evs {
		_, err := policy.Check(evs[i])
		if err != nil && admit.Form(err) {
			return errEmit{err}
		}
		if fe, ok := errors.AsType[*events.FieldError](err); ok {
			return &events.FieldError{Field: fmt.Sprintf("events.%d.%s", i, fe.Field), Reason: fe.Reason}
		}
		if err != nil {
			return err
		}
		events.StampReceived(&evs[i], push.ReceivedAt)
	}
	return nil
}

// Outcome maps an error of Normalise (or of storing) to the HTTP status and the outcome label.
func Outcome(err error) (int, string) {
	var fe *events.FieldError
	switch {
	case err == nil:
		return http.StatusOK, OutcomeAccepted
	case errors.Is(err, platform.ErrSignature):
		return http.StatusUnauthorized, OutcomeBadSignature
	case errors.Is(err, ErrUnknownPlatform):
		return http.StatusNotFound, OutcomeUnknownPlatform
	case errors.Is(err, platform.ErrUnknownShop):
		return http.StatusNotFound, OutcomeUnknownShop
	case isEmitError(err):
		return http.StatusInternalServerError, OutcomeError
	case errors.As(err, &fe):
		return http.StatusBadRequest, OutcomeMalformed
	case errors.Is(err, platform.ErrUpstream):
		return http.StatusServiceUnavailable, OutcomeUpstream
	default:
		return http.StatusInternalServerError, OutcomeError
	}
}

// Routes serves the webhooks beside ingest's CloudEvents receiver. GET reaches the adapter too
// (URL checks such as WeCom's echostr); it sees Push.Method.
func (wh *Webhooks) Routes(mux runtime.Mux, pub *runtime.Publisher) {
	h := &webhookHandler{wh: wh, pub: pub, archive: Archive{JS: pub.JetStream()}, counter: webhookCounter(pub.Metrics())}
	for _, pattern := range []string{"/webhooks/{platform}", "/webhooks/{platform}/{rest...}"} {
		mux.Handle("POST "+pattern, h)
		mux.Handle("GET "+pattern, h)
	}
}

// webhookCounter registers omnimember_webhooks_total on the runtime's registry (once per registry).
func webhookCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "omnimember", Name: "webhooks_total",
		Help: "Native webhook pushes by platform and outcome (accepted, unhandled, bad_signature, malformed, unknown_shop, unknown_platform, upstream, too_large, error)."},
		[]string{"platform", "outcome"})
	if err := reg.Register(c); err != nil {
		if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
			return are.ExistingCollector.(*prometheus.CounterVec)
		}
		panic(err) // only a programming error (a clashing metric name) gets here
	}
	return c
}

type webhookHandler struct {
	wh      *Webhooks
	pub     *runtime.Publisher
	archive Archive
	counter *prometheus.CounterVec
}

func (h *webhookHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("platform")
	if _, ok := h.wh.Adapters[name]; !ok {
		h.finish(w, name, 0, fmt.Errorf("%w %q", ErrUnknownPlatform, name))
		return
	}
	limit := h.wh.MaxBodyBytes
	if limit <= 0 {
		limit = DefaultMaxWebhookBytes
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		h.readFailed(w, name, limit, err)
		return
	}
	push := platform.Push{Platform: name, Rest: r.PathValue("rest"), Method: r.Method, Header: textproto.MIMEHeader(r.Header.Clone()),
		Query: r.URL.Query(), Body: body, ReceivedAt: h.now()}
	res, n, err := h.process(r.Context(), push)
	if err != nil {
		h.finish(w, name, n, err)
		return
	}
	h.reply(w, res.Reply)
	outcome := OutcomeAccepted
	if len(res.Unhandled) > 0 && len(res.Events) == 0 {
		outcome = OutcomeUnhandled
	}
	h.counter.WithLabelValues(name, outcome).Inc()
	h.log().Info("webhook", "platform", name, "shop", res.Shop, "outcome", outcome, "events", len(res.Events), "unhandled", res.Unhandled)
}

// process verifies, archives, normalises and publishes; n is the number of events the push made.
// Only a verified push is archived; a verified push whose normalisation fails (a parser that
// refuses it, an API down) stays archived for re-normalisation.
func (h *webhookHandler) process(ctx context.Context, push platform.Push) (platform.Result, int, error) {
	if err := h.wh.Verify(push); err != nil {
		return platform.Result{}, 0, err
	}
	if err := h.archive.Store(ctx, push); err != nil {
		return platform.Result{}, 0, fmt.Errorf("%w: %w", platform.ErrUpstream, err)
	}
	res, err := h.wh.Normalise(ctx, push)
	if err != nil {
		return res, 0, err
	}
	if err := h.pub.Publish(ctx, nil, res.Events); err != nil {
		if runtime.IsPermanent(err) {
			return res, len(res.Events), fmt.Errorf("%s adapter: %w", push.Platform, errEmit{err})
		}
		return res, len(res.Events), fmt.Errorf("%w: %w", platform.ErrUpstream, err)
	}
	return res, len(res.Events), nil
}

func (h *webhookHandler) readFailed(w http.ResponseWriter, name string, limit int64, err error) {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		h.counter.WithLabelValues(name, OutcomeTooLarge).Inc()
		h.log().Warn("webhook", "platform", name, "outcome", OutcomeTooLarge, "events", 0, "limit", limit)
		runtime.WriteError(w, http.StatusRequestEntityTooLarge, "", "body over %d bytes", limit)
		return
	}
	h.finish(w, name, 0, fmt.Errorf("read %s push: %w", name, errors.Join(platform.ErrUpstream, err)))
}

// finish answers a failed push with its status, counts and logs it. No event was published.
func (h *webhookHandler) finish(w http.ResponseWriter, name string, n int, err error) {
	status, outcome := Outcome(err)
	label := name
	if outcome == OutcomeUnknownPlatform {
		label = "unknown" // a sender must not create series at will
	}
	h.counter.WithLabelValues(label, outcome).Inc()
	level := slog.LevelWarn
	if status >= 500 {
		level = slog.LevelError
	}
	h.log().Log(context.Background(), level, "webhook", "platform", label, "outcome", outcome, "events", n, "error", redact(err.Error()))
	field := ""
	if fe, ok := errors.AsType[*events.FieldError](err); ok && status == http.StatusBadRequest {
		field = fe.Field
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1") // as /v1/events does; most platforms keep their own schedule
	}
	runtime.WriteError(w, status, field, "%s", redact(publicReason(status, err)))
}

// phoneLike finds mainland mobile numbers an error may quote (a schema error echoing a value).
var phoneLike = regexp.MustCompile(`1[3-9][0-9]{9}`)

// redact masks phone numbers in text bound for a log line or an answer.
func redact(s string) string {
	return phoneLike.ReplaceAllStringFunc(s, identity.MaskPhone)
}

// publicReason keeps internal details (stream names, adapter bugs) out of the answer.
func publicReason(status int, err error) string {
	switch status {
	case http.StatusInternalServerError:
		return "internal error"
	case http.StatusServiceUnavailable:
		return "temporarily unavailable, retry"
	}
	return err.Error()
}

func (h *webhookHandler) reply(w http.ResponseWriter, r platform.Reply) {
	status := r.Status
	if status == 0 {
		status = http.StatusOK
	}
	if r.ContentType != "" {
		w.Header().Set("Content-Type", r.ContentType)
	}
	w.WriteHeader(status)
	_, _ = w.Write(r.Body)
}

func (h *webhookHandler) now() time.Time {
	if h.wh.Now != nil {
		return h.wh.Now()
	}
	return time.Now()
}

func (h *webhookHandler) log() *slog.Logger {
	if h.wh.Log != nil {
		return h.wh.Log
	}
	return slog.Default()
}

// errEmit marks an adapter's invalid event: a bug of ours (500), not the sender's bad input.
type errEmit struct{ err error }

func (e errEmit) Error() string { return "emitted an invalid event: " + e.err.Error() }
func (e errEmit) Unwrap() error { return e.err }

func isEmitError(err error) bool {
	_, ok := errors.AsType[errEmit](err)
	return ok
}
