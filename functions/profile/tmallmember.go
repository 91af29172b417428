package profile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/platform"
	"github.com/omnimember/omnimember/shared/platform/top"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
	"github.com/prometheus/client_golang/prometheus"
)

// TmallMemberPath is where 会员通 calls the brand's bind-query and join SPIs.
const TmallMemberPath = "/webhooks/tmall/member"

// The SPI method names, passed as the "method" query parameter: unconfirmed (the 会员通 console
// names each SPI's URL per brand), so one endpoint tells them apart by these two constants.
const (
	SPIMethodQuery = "tmall.member.query"
	SPIMethodJoin  = "tmall.member.join"
)

// spiSignsBody: whether the SPI sign covers the raw body after the sorted query parameters, as
// TOP's SpiUtils.checkSign does for non-form bodies. Unconfirmed for 会员通; one switch.
const spiSignsBody = true

// Query codes (会员通 查询会员 SPI, query_code): SUC bound, E01 no such member, E04 system error
// (the platform retries).
const (
	QuerySUC = "SUC"
	QueryE01 = "E01"
	QueryE04 = "E04"
)

// spiBudget is our share of the platform's ~1.2 s: past it we answer E04 rather than time out.
const spiBudget = time.Second

// maxSPIBody bounds an SPI body; larger ones get 413.
const maxSPIBody = 64 << 10

// levelBase maps ladder rank 0 to 会员通 level 1 (levels are numbers; the mapping is unconfirmed).
const levelBase = 1

// TmallMember configures the 会员通 SPI for one app.
type TmallMember struct {
	AppKey, Secret string
	Log            *slog.Logger
}

// Publisher stores events in JetStream and returns once acknowledged (*runtime.Publisher).
type Publisher interface {
	Publish(ctx context.Context, cause *cloudevents.Event, evs []cloudevents.Event) error
}

// SPIAnswer is the SPI's JSON answer; 会员通 marks every field required, so member is always set.
type SPIAnswer struct {
	QueryCode string    `json:"query_code"`
	Member    SPIMember `json:"member"`
}

// SPIMember is the member as 会员通 shows it. Mobile echoes the number the platform itself sent
// (the document requires the field); omnimember never reveals a stored phone.
type SPIMember struct {
	Point  int64  `json:"point"`
	Level  int    `json:"level"`
	Nick   string `json:"nick"`
	Mobile string `json:"mobile"`
	Extend string `json:"extend"`
}

// TmallMemberHandler serves POST /webhooks/tmall/member: verify, then bind-query or join. When pub
// has the runtime's registry, each call's latency lands in omnimember_tmall_member_seconds.
func (a *API) TmallMemberHandler(pub Publisher) http.Handler {
	observe := spiLatency(pub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx, cancel := context.WithTimeout(r.Context(), spiBudget)
		defer cancel()
		req, method, status, err := a.readSPI(w, r)
		if err != nil {
			field := ""
			var fe *events.FieldError
			if errors.As(err, &fe) {
				field = fe.Field
			}
			runtime.WriteError(w, status, field, "%v", err)
			observe("rejected", strconv.Itoa(status), time.Since(start))
			return
		}
		answer := a.bindQuery
		if method == SPIMethodJoin {
			answer = func(ctx context.Context, req SPIRequest) SPIAnswer { return a.join(ctx, pub, req) }
		}
		out := answer(ctx, req)
		runtime.WriteJSON(w, http.StatusOK, out)
		observe(method, out.QueryCode, time.Since(start))
	})
}

// spiLatency returns the observer of SPI latencies: a histogram on the runtime's registry, or a
// no-op when pub has none (unit tests).
func spiLatency(pub Publisher) func(method, code string, d time.Duration) {
	withRegistry, ok := pub.(interface{ Metrics() *prometheus.Registry })
	if !ok || withRegistry.Metrics() == nil {
		return func(string, string, time.Duration) {}
	}
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "omnimember", Name: "tmall_member_seconds",
		Help:    "Time the 会员通 SPI took to answer (the platform waits about 1.2 s), by method and query code or rejection status.",
		Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 1.2, 2}}, []string{"method", "code"})
	var already prometheus.AlreadyRegisteredError
	if err := withRegistry.Metrics().Register(h); errors.As(err, &already) {
		h = already.ExistingCollector.(*prometheus.HistogramVec)
	}
	return func(method, code string, d time.Duration) { h.WithLabelValues(method, code).Observe(d.Seconds()) }
}

// readSPI checks size, app key, signature and body, and returns the status of the first failure.
func (a *API) readSPI(w http.ResponseWriter, r *http.Request) (SPIRequest, string, int, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSPIBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return SPIRequest{}, "", http.StatusRequestEntityTooLarge, fmt.Errorf("body over %d bytes", maxSPIBody)
	} else if err != nil {
		return SPIRequest{}, "", http.StatusBadRequest, err
	}
	params := map[string]string{}
	for k, v := range r.URL.Query() {
		params[k] = v[0]
	}
	if params["app_key"] != a.Tmall.AppKey {
		return SPIRequest{}, "", http.StatusNotFound, fmt.Errorf("%w: app_key %q", platform.ErrUnknownShop, params["app_key"])
	}
	if err := verifySPI(params, body, a.Tmall.Secret, a.Now(), spiSignsBody); err != nil {
		return SPIRequest{}, "", http.StatusUnauthorized, err
	}
	method := params["method"]
	if method != SPIMethodQuery && method != SPIMethodJoin {
		return SPIRequest{}, "", http.StatusBadRequest, platform.Malformed("method", "want %s or %s", SPIMethodQuery, SPIMethodJoin)
	}
	req, err := ParseSPIRequest(body)
	if err != nil {
		return SPIRequest{}, "", http.StatusBadRequest, err
	}
	return req, method, 0, nil
}

// verifySPI checks an SPI call's TOP signature over its query parameters and, when signsBody,
// the raw body after them (both readings are tested; spiSignsBody picks one).
func verifySPI(params map[string]string, body []byte, secret string, now time.Time, signsBody bool) error {
	if !signsBody {
		body = nil
	}
	if err := top.Verify(params, body, secret, now); err != nil {
		return fmt.Errorf("verify tmall member SPI: %w", err)
	}
	return nil
}

// bindQuery answers SUC with the member's points and level when any identity is known, else E01.
func (a *API) bindQuery(ctx context.Context, req SPIRequest) SPIAnswer {
	oneID, err := a.resolve(ctx, req.Identities(a.Tmall.AppKey))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return SPIAnswer{QueryCode: QueryE01, Member: SPIMember{Nick: req.Nick, Mobile: req.Mobile}}
	case err != nil:
		a.spiLog().Warn("tmall member SPI: resolve", "error", err)
		return SPIAnswer{QueryCode: QueryE04, Member: SPIMember{Nick: req.Nick, Mobile: req.Mobile}}
	}
	return a.answer(ctx, req, oneID)
}

// join publishes member.registered under the join's deterministic id and answers from the
// profile: the member as it stands, or a new member's zero points at the base level while the
// chain is still creating it.
func (a *API) join(ctx context.Context, pub Publisher, req SPIRequest) SPIAnswer {
	fail := SPIAnswer{QueryCode: QueryE04, Member: SPIMember{Nick: req.Nick, Mobile: req.Mobile}}
	id, err := req.JoinID(a.Tmall.AppKey, a.Keyer)
	if err != nil {
		return fail
	}
	shop := req.SellerName
	if shop == "" {
		shop = a.Tmall.AppKey
	}
	data := events.MemberRegisteredData{Channel: events.ChannelTmall, ShopID: shop, RegisteredAt: a.Now(), Identities: req.Identities(a.Tmall.AppKey)}
	ev, err := events.New(events.MemberRegistered, id, platform.Source("tmall"), a.Now(), data)
	if err == nil {
		err = pub.Publish(ctx, nil, []cloudevents.Event{ev})
	}
	if err != nil {
		a.spiLog().Warn("tmall member SPI: publish join", "id", id, "error", err)
		return fail
	}
	oneID, err := a.resolve(ctx, req.Identities(a.Tmall.AppKey))
	if err != nil {
		return SPIAnswer{QueryCode: QuerySUC, Member: SPIMember{Level: levelBase, Nick: req.Nick, Mobile: req.Mobile}}
	}
	return a.answer(ctx, req, oneID)
}

// resolve finds the member any of the identities belongs to, or store.ErrNotFound.
func (a *API) resolve(ctx context.Context, ids []events.Identity) (string, error) {
	for _, id := range ids {
		norm, err := identity.Normalize(id)
		if err != nil {
			return "", err
		}
		link, err := a.link(ctx, norm[0])
		if err == nil {
			return link.OneID, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return "", err
		}
	}
	return "", store.ErrNotFound
}

func (a *API) spiLog() *slog.Logger {
	if a.Tmall.Log == nil {
		return slog.Default()
	}
	return a.Tmall.Log
}

// answer reads the member's points and level, following merges to the surviving OneID.
func (a *API) answer(ctx context.Context, req SPIRequest, oneID string) SPIAnswer {
	m := SPIMember{Nick: req.Nick, Mobile: req.Mobile}
	live, err := a.live(ctx, oneID)
	var points PointsView
	if err == nil {
		oneID = live.OneID
		points, err = a.points(ctx, oneID)
	}
	if err == nil {
		m.Point = points.Balance
		var t TierView
		if t, err = a.tier(ctx, oneID); err == nil {
			m.Level = max(a.Ladder.Rank(t.Level), 0) + levelBase
		}
	}
	if err != nil {
		a.spiLog().Warn("tmall member SPI: read member", "oneId", oneID, "error", err)
		return SPIAnswer{QueryCode: QueryE04, Member: m}
	}
	return SPIAnswer{QueryCode: QuerySUC, Member: m}
}

// TmallMemberFromEnv reads TMALL_MEMBER_APP_KEY and TMALL_MEMBER_SECRET: nil (the SPI is off)
// when the app key is unset, an error when the secret is missing.
func TmallMemberFromEnv(getenv func(string) string, log *slog.Logger) (*TmallMember, error) {
	key := getenv("TMALL_MEMBER_APP_KEY")
	if key == "" {
		return nil, nil
	}
	secret := getenv("TMALL_MEMBER_SECRET")
	if secret == "" {
		return nil, errors.New("TMALL_MEMBER_SECRET is required with TMALL_MEMBER_APP_KEY")
	}
	return &TmallMember{AppKey: key, Secret: secret, Log: log}, nil
}

// LogValue shows the SPI settings with the secret masked.
func (t *TmallMember) LogValue() slog.Value {
	if t == nil {
		return slog.StringValue("off")
	}
	return slog.GroupValue(slog.String("path", TmallMemberPath), slog.String("appKey", t.AppKey), slog.String("secret", "***"))
}
