package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/omnimember/omnimember/shared/platform/jd"
)

// CursorBucket is the NATS key-value bucket where pollers keep their cursors.
const CursorBucket = "omnimember_cursors"

// JDConfig configures the JD order poller (JD_* variables).
type JDConfig struct {
	AppKey      string        // JD_APP_KEY; the poller is off when empty
	Secret      string        // JD_APP_SECRET (never logged)
	AccessToken string        // JD_ACCESS_TOKEN: the shop's authorisation (never logged)
	URL         string        // JD_URL: the JOS gateway
	Interval    time.Duration // JD_POLL_INTERVAL: wait once the window reached now
	Overlap     time.Duration // JD_OVERLAP: how far each window reaches back before the cursor
	Window      time.Duration // JD_WINDOW: the longest modified-time window per search
	Lookback    time.Duration // JD_LOOKBACK: where the first window starts when no cursor exists
	PageSize    int           // JD_PAGE_SIZE: orders per page, 1..100
	OrderStates string        // JD_ORDER_STATES: comma-separated orderState values searched
}

// DefaultJD is the JD configuration before the environment. The order states are the paid and
// cancelled states of pop orders (unconfirmed as a complete list).
func DefaultJD() JDConfig {
	return JDConfig{URL: "https://api.jd.com/routerjson", Interval: time.Minute, Overlap: 5 * time.Minute, Window: time.Hour,
		Lookback: 24 * time.Hour, PageSize: 100,
		OrderStates: "WAIT_SELLER_STOCK_OUT,WAIT_GOODS_RECEIVE_CONFIRM,WAIT_SELLER_DELIVERY,FINISHED_L,TRADE_CANCELED,LOCKED"}
}

// Validate checks a configured poller's settings.
func (c JDConfig) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.Secret != "" && c.AccessToken != "", "JD_APP_SECRET and JD_ACCESS_TOKEN are required with JD_APP_KEY")
	u, err := url.Parse(c.URL)
	check(err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "", "JD_URL %q: want an http(s) URL", c.URL)
	check(c.Interval > 0 && c.Window > 0 && c.Lookback > 0, "JD_POLL_INTERVAL, JD_WINDOW and JD_LOOKBACK must be positive")
	check(c.Overlap >= 0 && c.Overlap < c.Window, "JD_OVERLAP %s: want 0 or more and less than JD_WINDOW", c.Overlap)
	check(c.PageSize >= 1 && c.PageSize <= 100, "JD_PAGE_SIZE %d: want 1..100", c.PageSize)
	check(c.OrderStates != "", "JD_ORDER_STATES is empty")
	return errors.Join(errs...)
}

// LogValue shows the configuration with secrets masked.
func (c JDConfig) LogValue() slog.Value {
	return slog.GroupValue(slog.String("appKey", c.AppKey), slog.String("secret", "***"), slog.String("accessToken", "***"),
		slog.String("url", c.URL), slog.String("interval", c.Interval.String()), slog.String("overlap", c.Overlap.String()),
		slog.String("window", c.Window.String()), slog.String("lookback", c.Lookback.String()), slog.Int("pageSize", c.PageSize),
		slog.String("orderStates", c.OrderStates))
}

// JDPoller searches JD orders by modified time, window after window. Each window starts Overlap
// before the cursor (orders modified while the last search ran are not missed); the cursor moves
// to the window's end only after JetStream acknowledged the window's events, and the events'
// ids derive from the order ids, so the overlap and a restart re-publish duplicates the stream
// and match drop.
type JDPoller struct {
	Config JDConfig
	HTTP   *http.Client
	Log    *slog.Logger
	Now    func() time.Time
}

// Name names the poller in logs.
func (p *JDPoller) Name() string { return "jd" }

// Run polls until ctx ends.
func (p *JDPoller) Run(ctx context.Context, b Broker) {
	m := metricsFor(b)
	loop(ctx, p.Log.With("poller", p.Name()), p.Config.Interval, func(ctx context.Context) (bool, error) {
		more, err := p.once(ctx, b, m)
		if err != nil && ctx.Err() == nil { // a poll cut short by shutdown is not a failure
			m.add(p.Name(), OutcomeError, 1)
		}
		return more, err
	})
}

var keyUnsafe = regexp.MustCompile(`[^a-zA-Z0-9_=-]`)

// CursorKey is the poller's key in CursorBucket.
func (p *JDPoller) CursorKey() string {
	return "jd." + keyUnsafe.ReplaceAllString(p.Config.AppKey, "_")
}

// Once searches one window, publishes its events and advances the cursor; more reports that
// the window stopped short of now.
func (p *JDPoller) Once(ctx context.Context, b Broker) (more bool, err error) {
	return p.once(ctx, b, metricsFor(b))
}

func (p *JDPoller) once(ctx context.Context, b Broker, m *pollMetrics) (more bool, err error) {
	kv, err := b.KeyValue(ctx, jetstream.KeyValueConfig{Bucket: CursorBucket, Description: "platform pollers' cursors"})
	if err != nil {
		return false, err
	}
	now := p.Now()
	from, rev, err := p.cursor(ctx, kv, now)
	if err != nil {
		return false, err
	}
	to := from.Add(p.Config.Window)
	if to.After(now) {
		to = now
	}
	if !to.After(from) {
		return false, nil
	}
	evs, to, err := p.searchFitting(ctx, from, to, m)
	if err != nil {
		return false, err
	}
	if len(evs) > 0 {
		if err := b.Publish(ctx, nil, evs); err != nil {
			return false, fmt.Errorf("publish %d JD events: %w", len(evs), err)
		}
	}
	if err := p.advance(ctx, kv, rev, to); err != nil {
		return false, err
	}
	m.setLag(p.Name(), now.Sub(to).Seconds())
	return to.Before(now), nil
}

// advance stores the cursor only if nobody moved it since it was read (compare-and-set on the
// revision): a second replica that searched an older window cannot move it backwards, and the
// window it published again is a duplicate the stream drops.
func (p *JDPoller) advance(ctx context.Context, kv jetstream.KeyValue, rev uint64, to time.Time) error {
	value := []byte(to.UTC().Format(time.RFC3339Nano))
	var err error
	if rev == 0 {
		_, err = kv.Create(ctx, p.CursorKey(), value)
	} else {
		_, err = kv.Update(ctx, p.CursorKey(), value, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		p.Log.Info("JD cursor moved by another poller; searching from its position", "poller", p.Name())
		return nil
	}
	if err != nil {
		return fmt.Errorf("advance JD cursor: %w", err)
	}
	return nil
}

// cursor is where the next window starts, Overlap before the stored cursor or Lookback ago, and
// the cursor's revision (0: none yet).
func (p *JDPoller) cursor(ctx context.Context, kv jetstream.KeyValue, now time.Time) (time.Time, uint64, error) {
	e, err := kv.Get(ctx, p.CursorKey())
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return now.Add(-p.Config.Lookback), 0, nil
	}
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("read JD cursor: %w", err)
	}
	at, err := time.Parse(time.RFC3339Nano, string(e.Value()))
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("JD cursor %q: %w", e.Value(), err)
	}
	return at.Add(-p.Config.Overlap), e.Revision(), nil
}

// maxPages bounds one window's pagination (100 pages of up to 100 orders).
const maxPages = 100

// minWindow is the shortest window searchFitting halves down to.
const minWindow = time.Minute

var errWindowFull = errors.New("more orders than one window's pages hold")

// searchFitting searches [from, to], halving the window while it holds more than maxPages pages
// (a sale day), and returns the events and the end of the window it could take whole.
func (p *JDPoller) searchFitting(ctx context.Context, from, to time.Time, m *pollMetrics) ([]cloudevents.Event, time.Time, error) {
	for {
		evs, err := p.search(ctx, from, to, m)
		if !errors.Is(err, errWindowFull) || to.Sub(from) <= minWindow {
			return evs, to, err
		}
		to = from.Add(max(to.Sub(from)/2, minWindow))
	}
}

// search fetches every page of the window and normalises its orders.
func (p *JDPoller) search(ctx context.Context, from, to time.Time, m *pollMetrics) ([]cloudevents.Event, error) {
	norm := jd.Normalizer{AppKey: p.Config.AppKey}
	var evs []cloudevents.Event
	for page := 1; page <= maxPages; page++ {
		res, err := p.page(ctx, from, to, page)
		if err != nil {
			return nil, err
		}
		m.add(p.Name(), OutcomeItems, len(res.Orders))
		for _, o := range res.Orders {
			out, err := norm.Normalize(o)
			if err != nil {
				p.Log.Warn("JD order skipped", "poller", p.Name(), "orderId", o.OrderID.String(), "error", err)
				m.add(p.Name(), OutcomeDropped, 1)
				continue
			}
			evs = append(evs, out...)
		}
		if len(res.Orders) == 0 || page*p.Config.PageSize >= res.Total {
			return admitPolled(p.Log, m, p.Name(), evs), nil
		}
	}
	return nil, fmt.Errorf("JD window %s..%s: %w (%d pages)", from.Format(time.RFC3339), to.Format(time.RFC3339), errWindowFull, maxPages)
}

func (p *JDPoller) page(ctx context.Context, from, to time.Time, page int) (jd.SearchResult, error) {
	// dateType 0 searches by modified time (unconfirmed; JD documents 0 modified, 1 created).
	biz, err := json.Marshal(map[string]string{"start_date": from.In(jd.Beijing).Format(jd.DateLayout),
		"end_date": to.In(jd.Beijing).Format(jd.DateLayout), "order_state": p.Config.OrderStates, "dateType": "0",
		"optional_fields": "orderId,venderId,orderTotalPrice,orderPayment,orderState,paymentConfirmTime,modified,pin,open_id_buyer,xid_buyer",
		"page":            fmt.Sprint(page), "page_size": fmt.Sprint(p.Config.PageSize)})
	if err != nil {
		return jd.SearchResult{}, err
	}
	params := map[string]string{"method": jd.MethodOrderSearch, "app_key": p.Config.AppKey, "access_token": p.Config.AccessToken,
		"timestamp": jd.Timestamp(p.Now()), "v": "2.0", "360buy_param_json": string(biz)}
	form := url.Values{"sign": {jd.Sign(params, p.Config.Secret)}}
	for k, v := range params {
		form.Set(k, v)
	}
	body, err := postForm(ctx, p.HTTP, p.Config.URL, form)
	if err != nil {
		return jd.SearchResult{}, fmt.Errorf("call %s: %w", jd.MethodOrderSearch, err)
	}
	res, err := jd.ParseOrderSearch(body)
	if err != nil {
		return jd.SearchResult{}, fmt.Errorf("%s page %d: %w", jd.MethodOrderSearch, page, err)
	}
	return res, nil
}
