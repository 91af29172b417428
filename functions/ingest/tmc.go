package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/platform/top"
)

// TMCConfig configures the Tmall/Taobao TMC poller (TMC_* variables).
type TMCConfig struct {
	AppKey     string        // TMC_APP_KEY; the poller is off when empty
	Secret     string        // TMC_APP_SECRET (never logged)
	Group      string        // TMC_GROUP: the TMC user group to consume ("default")
	URL        string        // TMC_URL: the TOP gateway
	Interval   time.Duration // TMC_POLL_INTERVAL: wait after an empty batch
	Quantity   int           // TMC_QUANTITY: messages per consume, 10..200
	Channel    string        // TMC_CHANNEL: tmall or taobao, the channel of the orders
	SignMethod string        // TMC_SIGN_METHOD: md5, hmac or hmac-sha256
}

// DefaultTMC is the TMC configuration before the environment.
func DefaultTMC() TMCConfig {
	return TMCConfig{Group: "default", URL: "https://gw.api.taobao.com/router/rest", Interval: time.Second,
		Quantity: 100, Channel: events.ChannelTmall, SignMethod: top.SignHMACSHA256}
}

// Validate checks a configured poller's settings.
func (c TMCConfig) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.Secret != "", "TMC_APP_SECRET is required with TMC_APP_KEY")
	check(c.Group != "", "TMC_GROUP is empty")
	u, err := url.Parse(c.URL)
	check(err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "", "TMC_URL %q: want an http(s) URL", c.URL)
	check(c.Interval > 0, "TMC_POLL_INTERVAL must be positive")
	check(c.Quantity >= 10 && c.Quantity <= 200, "TMC_QUANTITY %d: want 10..200 (taobao.tmc.messages.consume)", c.Quantity)
	check(c.Channel == events.ChannelTmall || c.Channel == events.ChannelTaobao, "TMC_CHANNEL %q: want tmall or taobao", c.Channel)
	check(c.SignMethod == top.SignMD5 || c.SignMethod == top.SignHMAC || c.SignMethod == top.SignHMACSHA256,
		"TMC_SIGN_METHOD %q: want md5, hmac or hmac-sha256", c.SignMethod)
	return errors.Join(errs...)
}

// LogValue shows the configuration with the secret masked.
func (c TMCConfig) LogValue() slog.Value {
	return slog.GroupValue(slog.String("appKey", c.AppKey), slog.String("secret", "***"), slog.String("group", c.Group),
		slog.String("url", c.URL), slog.String("interval", c.Interval.String()), slog.Int("quantity", c.Quantity),
		slog.String("channel", c.Channel), slog.String("signMethod", c.SignMethod))
}

// TMCPoller consumes TMC messages, publishes their events and confirms the messages only after
// JetStream stored the events: a crash in between redelivers the messages, and their
// deterministic event ids make the second publish a duplicate the stream drops.
type TMCPoller struct {
	Config TMCConfig
	HTTP   *http.Client
	Log    *slog.Logger
	Now    func() time.Time
}

// Name names the poller in logs.
func (p *TMCPoller) Name() string { return "tmc" }

// Run polls until ctx ends.
func (p *TMCPoller) Run(ctx context.Context, b Broker) {
	log := p.Log.With("poller", p.Name(), "group", p.Config.Group)
	m := metricsFor(b)
	loop(ctx, log, p.Config.Interval, func(ctx context.Context) (bool, error) {
		n, err := p.once(ctx, b, m)
		if err != nil && ctx.Err() == nil { // a poll cut short by shutdown is not a failure
			m.add(p.Name(), OutcomeError, 1)
		}
		return n >= p.Config.Quantity, err
	})
}

// Once consumes one batch, publishes its events, confirms it and returns how many messages it held.
func (p *TMCPoller) Once(ctx context.Context, b Broker) (int, error) {
	return p.once(ctx, b, metricsFor(b))
}

func (p *TMCPoller) once(ctx context.Context, b Broker, m *pollMetrics) (int, error) {
	msgs, err := p.consume(ctx)
	if err != nil || len(msgs) == 0 {
		return 0, err
	}
	m.add(p.Name(), OutcomeItems, len(msgs))
	norm := top.Normalizer{AppKey: p.Config.AppKey, Channel: p.Config.Channel}
	var evs []cloudevents.Event
	ids := make([]string, 0, len(msgs))
	for _, msg := range msgs {
		out, handled, err := norm.Normalize(msg)
		switch {
		case err != nil:
			// Retrying cannot fix a message the platform got wrong: confirm it, and say which.
			p.Log.Warn("TMC message dropped", "poller", p.Name(), "id", msg.ID.String(), "topic", msg.Topic, "error", err)
			m.add(p.Name(), OutcomeDropped, 1)
		case !handled:
			p.Log.Debug("TMC topic not handled", "poller", p.Name(), "id", msg.ID.String(), "topic", msg.Topic)
			m.add(p.Name(), OutcomeUnhandled, 1)
		}
		evs = append(evs, out...)
		ids = append(ids, msg.ID.String())
	}
	if evs = admitPolled(p.Log, m, p.Name(), evs); len(evs) > 0 {
		if err := b.Publish(ctx, nil, evs); err != nil {
			return 0, fmt.Errorf("publish %d TMC events: %w", len(evs), err)
		}
	}
	if err := p.confirm(ctx, ids); err != nil {
		return 0, err
	}
	return len(msgs), nil
}

func (p *TMCPoller) consume(ctx context.Context) ([]top.Message, error) {
	body, err := p.call(ctx, top.MethodConsume, map[string]string{"group_name": p.Config.Group, "quantity": fmt.Sprint(p.Config.Quantity)})
	if err != nil {
		return nil, err
	}
	msgs, err := top.ParseConsume(body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", top.MethodConsume, err)
	}
	return msgs, nil
}

func (p *TMCPoller) confirm(ctx context.Context, ids []string) error {
	body, err := p.call(ctx, top.MethodConfirm, map[string]string{"group_name": p.Config.Group, "s_message_ids": strings.Join(ids, ",")})
	if err != nil {
		return err
	}
	if err := top.ParseConfirm(body); err != nil {
		return fmt.Errorf("%s of %d messages: %w", top.MethodConfirm, len(ids), err)
	}
	return nil
}

// call signs and posts one TOP API call with the system parameters of TOP's API 调用方法详解.
func (p *TMCPoller) call(ctx context.Context, method string, biz map[string]string) ([]byte, error) {
	params := map[string]string{"method": method, "app_key": p.Config.AppKey, "timestamp": top.Timestamp(p.Now()),
		"v": "2.0", "format": "json", "sign_method": p.Config.SignMethod}
	maps.Copy(params, biz)
	sign, err := top.Sign(params, p.Config.Secret, p.Config.SignMethod)
	if err != nil {
		return nil, err
	}
	form := url.Values{"sign": {sign}}
	for k, v := range params {
		form.Set(k, v)
	}
	body, err := postForm(ctx, p.HTTP, p.Config.URL, form)
	if err != nil {
		return nil, fmt.Errorf("call %s: %w", method, err)
	}
	return body, nil
}
