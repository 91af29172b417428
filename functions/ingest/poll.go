package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/admit"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/prometheus/client_golang/prometheus"
)

// Broker is what a poller needs from the runtime (*runtime.Publisher): publish events and wait
// for JetStream's ack, the JetStream context for a cursor bucket, the registry for its metrics.
type Broker interface {
	Publish(ctx context.Context, cause *cloudevents.Event, evs []cloudevents.Event) error
	JetStream() jetstream.JetStream
	KeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error)
	Metrics() *prometheus.Registry
}

// Poller pulls a platform's messages or orders until ctx ends.
type Poller interface {
	Name() string
	Run(ctx context.Context, b Broker)
}

// WithPollers runs the pollers as the function's background work, beside its HTTP routes.
func WithPollers(f runtime.Function, pollers ...Poller) runtime.Function {
	if len(pollers) == 0 {
		return f
	}
	f.Background = func(ctx context.Context, pub *runtime.Publisher) {
		var wg sync.WaitGroup
		for _, p := range pollers {
			wg.Go(func() { p.Run(ctx, pub) })
		}
		wg.Wait()
	}
	return f
}

// loop calls once until ctx ends: again at once after a full batch, after interval when the
// source was drained, and with exponential backoff (up to maxBackoff) after errors.
func loop(ctx context.Context, log *slog.Logger, interval time.Duration, once func(context.Context) (more bool, err error)) {
	failures := 0
	for {
		more, err := once(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := interval
		switch {
		case err != nil:
			failures++
			wait = backoff(interval, failures)
			log.Warn("poll failed", "error", err, "failures", failures, "retryIn", wait.String())
		case more:
			failures, wait = 0, 0
		default:
			failures = 0
		}
		if !sleep(ctx, wait) {
			return
		}
	}
}

// maxBackoff caps the wait between failed polls.
const maxBackoff = 5 * time.Minute

func backoff(base time.Duration, failures int) time.Duration {
	d := max(base, time.Second)
	for range min(failures-1, 16) {
		d *= 2
		if d >= maxBackoff {
			return maxBackoff
		}
	}
	return d
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// maxResponse bounds what a platform API may answer (a 200-message TMC batch is far smaller).
const maxResponse = 16 << 20

// postForm posts a signed form to a platform API and returns the body of a 200 answer.
func postForm(ctx context.Context, client *http.Client, url string, form interface{ Encode() string }) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=utf-8")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return body, nil
}

// historyPolicy admits what the pollers read: the platform's own API, authenticated with the
// shop's credentials, so its times are history (any age, never in the future), its events carry the
// adapter's source (platform.Source: the API vouches for the shop, not a sender's scope), and every
// other check of the edge applies.
var historyPolicy = admit.Policy{Window: admit.History(admit.DefaultMaxSkew), PlatformSource: true}

// admitPolled keeps the polled events the edge admits; a refused one is logged with its field
// (never its value) and counted dropped, like a message that does not parse: re-polling cannot fix it.
func admitPolled(log *slog.Logger, m *pollMetrics, poller string, evs []cloudevents.Event) []cloudevents.Event {
	kept := evs[:0]
	for _, ev := range evs {
		if _, err := historyPolicy.Check(ev); err != nil {
			field := ""
			if fe, ok := errors.AsType[*events.FieldError](err); ok {
				field = fe.Field
			}
			log.Warn("polled event refused", "poller", poller, "id", ev.ID(), "type", ev.Type(), "field", field)
			m.add(poller, OutcomeDropped, 1)
			continue
		}
		kept = append(kept, ev)
	}
	return kept
}
