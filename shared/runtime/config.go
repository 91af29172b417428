package runtime

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/omnimember/omnimember/shared/credential"
	"github.com/omnimember/omnimember/shared/stream"
)

// Config is what the runtime needs from the environment. Parse it once in main with FromEnv.
type Config struct {
	NATSURL         string          // NATS_URL
	NATSCreds       string          // NATS_CREDS: path of a credentials file (a secret; never logged)
	NATSNKey        string          // NATS_NKEY: path of the function's user nkey seed file (a secret; never logged)
	NATSCA          string          // NATS_CA: path of the PEM CA the server's certificate must chain to; TLS required
	NATSInboxPrefix string          // NATS_INBOX_PREFIX: where replies come (_INBOX_<function> in deploy/); default _INBOX
	HTTPAddr        string          // OMNIMEMBER_HTTP_ADDR
	AckWait         time.Duration   // OMNIMEMBER_ACK_WAIT: redelivery if a handler neither acks nor naks
	MaxDeliver      int             // OMNIMEMBER_MAX_DELIVER: attempts before the dead-letter stream
	Backoff         []time.Duration // OMNIMEMBER_BACKOFF: nak delays by delivery count, comma-separated
	Concurrency     int             // OMNIMEMBER_CONCURRENCY: events handled at once per function
	MaxBodyBytes    int64           // OMNIMEMBER_MAX_BODY_BYTES: larger HTTP bodies get 413
	ShutdownTimeout time.Duration   // OMNIMEMBER_SHUTDOWN_TIMEOUT: drain budget on SIGTERM
	LogLevel        slog.Level      // OMNIMEMBER_LOG_LEVEL: debug, info, warn, error
	Trigger         string          // OMNIMEMBER_TRIGGER: jetstream (pull consumer), http (pushed CloudEvents) or both
	EventsPath      string          // OMNIMEMBER_EVENTS_PATH: where pushed CloudEvents arrive in http mode
	Topology        stream.Topology // OMNIMEMBER_STREAM_REPLICAS, OMNIMEMBER_DUPLICATE_WINDOW, OMNIMEMBER_RAW_MAX_AGE, OMNIMEMBER_RAW_MAX_BYTES
	// AtomicBatches (OMNIMEMBER_ATOMIC_BATCHES): publish 8 or more events at once as atomic
	// batches. Worth it on a lone NATS server with sync_interval: always (one fsync per batch,
	// 4-5× the rate); on the default interval a batch costs ~3× more, and on three replicas it
	// measured the same as one by one (make bench).
	AtomicBatches bool
	// Traces is the span exporter: none (default) or otlp (OTEL_TRACES_EXPORTER, or otlp when
	// OTEL_EXPORTER_OTLP_ENDPOINT is set); the exporter reads the other OTEL_* variables itself.
	Traces string
	// HTTP bounds what one connection may hold: a request's headers and body must arrive within
	// the read timeouts, its answer leave within the write timeout.
	HTTP HTTPLimits
	// Senders are the credentials of whoever posts CloudEvents to a receiver (ingest's
	// /v1/events, a chained function's EventsPath): OMNIMEMBER_SENDER_TOKENS(_FILE). None: closed.
	Senders *credential.Senders
}

// Triggers: how a chained function receives its events.
const (
	TriggerJetStream = "jetstream" // a durable pull consumer (KEDA scales on its lag)
	TriggerHTTP      = "http"      // CloudEvents pushed over HTTP (Knative Eventing)
	TriggerBoth      = "both"
)

// Defaults are the production defaults; FromEnv overrides them.
func Defaults() Config {
	return Config{
		NATSURL: "nats://127.0.0.1:4222", HTTPAddr: ":8080",
		AckWait: 30 * time.Second, MaxDeliver: 5,
		Backoff:     []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute},
		Concurrency: 64, MaxBodyBytes: 1 << 20, ShutdownTimeout: 20 * time.Second,
		LogLevel: slog.LevelInfo, Topology: stream.DefaultTopology(),
		Trigger: TriggerJetStream, EventsPath: "/", Traces: TracesNone, HTTP: DefaultHTTPLimits(),
		Senders: &credential.Senders{},
	}
}

// FromEnv reads the runtime's variables over Defaults and validates the result.
func FromEnv() (Config, error) {
	c := Defaults()
	var errs []error
	str := func(name string, dst *string) {
		if v, ok := os.LookupEnv(name); ok {
			*dst = v
		}
	}
	dur := func(name string, dst *time.Duration) {
		if v, ok := os.LookupEnv(name); ok {
			d, err := time.ParseDuration(v)
			errs = append(errs, wrapEnv(name, err))
			*dst = d
		}
	}
	num := func(name string, dst *int) {
		if v, ok := os.LookupEnv(name); ok {
			n, err := strconv.Atoi(v)
			errs = append(errs, wrapEnv(name, err))
			*dst = n
		}
	}
	str("NATS_URL", &c.NATSURL)
	str("NATS_CREDS", &c.NATSCreds)
	str("NATS_NKEY", &c.NATSNKey)
	str("NATS_CA", &c.NATSCA)
	str("NATS_INBOX_PREFIX", &c.NATSInboxPrefix)
	str("OMNIMEMBER_HTTP_ADDR", &c.HTTPAddr)
	str("OMNIMEMBER_TRIGGER", &c.Trigger)
	str("OMNIMEMBER_EVENTS_PATH", &c.EventsPath)
	dur("OMNIMEMBER_ACK_WAIT", &c.AckWait)
	num("OMNIMEMBER_MAX_DELIVER", &c.MaxDeliver)
	num("OMNIMEMBER_CONCURRENCY", &c.Concurrency)
	dur("OMNIMEMBER_SHUTDOWN_TIMEOUT", &c.ShutdownTimeout)
	num("OMNIMEMBER_STREAM_REPLICAS", &c.Topology.Replicas)
	dur("OMNIMEMBER_DUPLICATE_WINDOW", &c.Topology.DuplicateWindow)
	dur("OMNIMEMBER_RAW_MAX_AGE", &c.Topology.RawMaxAge)
	num64 := func(name string, dst *int64) {
		if v, ok := os.LookupEnv(name); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			errs = append(errs, wrapEnv(name, err))
			*dst = n
		}
	}
	num64("OMNIMEMBER_MAX_BODY_BYTES", &c.MaxBodyBytes)
	dur("OMNIMEMBER_HTTP_READ_HEADER_TIMEOUT", &c.HTTP.ReadHeaderTimeout)
	dur("OMNIMEMBER_HTTP_READ_TIMEOUT", &c.HTTP.ReadTimeout)
	dur("OMNIMEMBER_HTTP_WRITE_TIMEOUT", &c.HTTP.WriteTimeout)
	dur("OMNIMEMBER_HTTP_IDLE_TIMEOUT", &c.HTTP.IdleTimeout)
	num("OMNIMEMBER_MAX_HEADER_BYTES", &c.HTTP.MaxHeaderBytes)
	senders, err := credential.SendersFromEnv(os.Getenv)
	errs = append(errs, err)
	c.Senders = senders
	num64("OMNIMEMBER_RAW_MAX_BYTES", &c.Topology.RawMaxBytes)
	if v, ok := os.LookupEnv("OMNIMEMBER_BACKOFF"); ok {
		b, err := parseBackoff(v)
		errs = append(errs, wrapEnv("OMNIMEMBER_BACKOFF", err))
		c.Backoff = b
	}
	if v, ok := os.LookupEnv("OMNIMEMBER_ATOMIC_BATCHES"); ok {
		b, err := strconv.ParseBool(v)
		errs = append(errs, wrapEnv("OMNIMEMBER_ATOMIC_BATCHES", err))
		c.AtomicBatches = b
	}
	if v, ok := os.LookupEnv("OMNIMEMBER_LOG_LEVEL"); ok {
		errs = append(errs, wrapEnv("OMNIMEMBER_LOG_LEVEL", c.LogLevel.UnmarshalText([]byte(v))))
	}
	traces, err := tracesFromEnv()
	errs = append(errs, err)
	c.Traces = traces
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	return c, c.Validate()
}

func wrapEnv(name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", name, err)
}

func parseBackoff(v string) ([]time.Duration, error) {
	var out []time.Duration
	for _, part := range strings.Split(v, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// Validate checks ranges and relations between settings.
func (c Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.NATSURL != "", "NATS_URL is empty")
	errs = append(errs, c.natsErrors()...)
	check(c.HTTPAddr != "", "OMNIMEMBER_HTTP_ADDR is empty")
	check(c.AckWait >= time.Second, "OMNIMEMBER_ACK_WAIT %s: want at least 1s", c.AckWait)
	check(c.MaxDeliver >= 1, "OMNIMEMBER_MAX_DELIVER %d: want at least 1", c.MaxDeliver)
	check(len(c.Backoff) > 0, "OMNIMEMBER_BACKOFF: want at least one delay")
	for _, d := range c.Backoff {
		check(d > 0, "OMNIMEMBER_BACKOFF: delay %s must be positive", d)
	}
	check(c.Concurrency >= 1 && c.Concurrency <= 4096, "OMNIMEMBER_CONCURRENCY %d: want 1..4096", c.Concurrency)
	check(c.MaxBodyBytes >= 1024, "OMNIMEMBER_MAX_BODY_BYTES %d: want at least 1024", c.MaxBodyBytes)
	check(c.ShutdownTimeout > 0, "OMNIMEMBER_SHUTDOWN_TIMEOUT must be positive")
	errs = append(errs, c.HTTP.validate())
	check(c.Trigger == TriggerJetStream || c.Trigger == TriggerHTTP || c.Trigger == TriggerBoth,
		"OMNIMEMBER_TRIGGER %q: want %s, %s or %s", c.Trigger, TriggerJetStream, TriggerHTTP, TriggerBoth)
	check(c.Traces == "" || c.Traces == TracesNone || c.Traces == TracesOTLP, "OTEL_TRACES_EXPORTER %q: want %s or %s", c.Traces, TracesOTLP, TracesNone)
	check(strings.HasPrefix(c.EventsPath, "/"), "OMNIMEMBER_EVENTS_PATH %q: want a path starting with /", c.EventsPath)
	if err := c.Topology.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("OMNIMEMBER_STREAM_REPLICAS/OMNIMEMBER_DUPLICATE_WINDOW/OMNIMEMBER_RAW_*: %w", err))
	}
	return errors.Join(errs...)
}

// LogValue shows the configuration at start with secrets masked.
func (c Config) LogValue() slog.Value {
	masked := func(secret string) string {
		if secret == "" {
			return ""
		}
		return "***"
	}
	return slog.GroupValue(
		slog.String("natsURL", maskURL(c.NATSURL)), slog.String("natsCreds", masked(c.NATSCreds)),
		slog.String("natsNKey", masked(c.NATSNKey)), slog.String("natsCA", c.NATSCA), slog.String("natsInboxPrefix", c.NATSInboxPrefix),
		slog.String("httpAddr", c.HTTPAddr), slog.String("ackWait", c.AckWait.String()),
		slog.Int("maxDeliver", c.MaxDeliver), slog.String("backoff", fmt.Sprint(c.Backoff)),
		slog.Int("concurrency", c.Concurrency), slog.Int64("maxBodyBytes", c.MaxBodyBytes),
		slog.Any("http", c.HTTP), slog.Any("senders", c.Senders),
		slog.String("trigger", c.Trigger), slog.String("eventsPath", c.EventsPath),
		slog.Int("streamReplicas", c.Topology.Replicas), slog.String("duplicateWindow", c.Topology.DuplicateWindow.String()),
		slog.String("rawMaxAge", c.Topology.RawMaxAge.String()), slog.Int64("rawMaxBytes", c.Topology.RawMaxBytes),
		slog.String("traces", c.Traces), slog.Bool("atomicBatches", c.AtomicBatches),
	)
}

// maskURL hides a password or token in a NATS URL.
func maskURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	if userinfo, host, ok := strings.Cut(rest, "@"); ok {
		user, _, _ := strings.Cut(userinfo, ":")
		return scheme + "://" + user + ":***@" + host
	}
	return u
}

// backoffFor is the nak delay after the given delivery (1-based).
func (c Config) backoffFor(delivery uint64) time.Duration {
	i := int(delivery) - 1
	if i >= len(c.Backoff) {
		i = len(c.Backoff) - 1
	}
	return c.Backoff[max(i, 0)]
}

// HTTPLimits are the HTTP server's timeouts and header bound.
type HTTPLimits struct {
	ReadHeaderTimeout time.Duration // OMNIMEMBER_HTTP_READ_HEADER_TIMEOUT: the request line and headers
	ReadTimeout       time.Duration // OMNIMEMBER_HTTP_READ_TIMEOUT: the whole request, body included (a stalled body is cut)
	WriteTimeout      time.Duration // OMNIMEMBER_HTTP_WRITE_TIMEOUT: from the end of the headers to the end of the answer
	IdleTimeout       time.Duration // OMNIMEMBER_HTTP_IDLE_TIMEOUT: a kept-alive connection between requests
	MaxHeaderBytes    int           // OMNIMEMBER_MAX_HEADER_BYTES: larger request headers get 431
}

// DefaultHTTPLimits: a webhook's headers within 10 s and its body within 30 s, the answer within
// a minute (the Knative request timeout is 30 s), 64 KiB of headers (platforms send a few KB).
func DefaultHTTPLimits() HTTPLimits {
	return HTTPLimits{ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: time.Minute,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
}

func (h HTTPLimits) validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(h.ReadHeaderTimeout > 0, "OMNIMEMBER_HTTP_READ_HEADER_TIMEOUT must be positive")
	check(h.ReadTimeout >= h.ReadHeaderTimeout, "OMNIMEMBER_HTTP_READ_TIMEOUT %s: want at least the header timeout %s", h.ReadTimeout, h.ReadHeaderTimeout)
	check(h.WriteTimeout > h.ReadTimeout, "OMNIMEMBER_HTTP_WRITE_TIMEOUT %s: want more than the read timeout %s (it counts from the end of the headers)", h.WriteTimeout, h.ReadTimeout)
	check(h.IdleTimeout > 0, "OMNIMEMBER_HTTP_IDLE_TIMEOUT must be positive")
	check(h.MaxHeaderBytes >= 4<<10 && h.MaxHeaderBytes <= 1<<20, "OMNIMEMBER_MAX_HEADER_BYTES %d: want 4096..1048576", h.MaxHeaderBytes)
	return errors.Join(errs...)
}

// LogValue shows the limits at start.
func (h HTTPLimits) LogValue() slog.Value {
	return slog.GroupValue(slog.String("readHeaderTimeout", h.ReadHeaderTimeout.String()), slog.String("readTimeout", h.ReadTimeout.String()),
		slog.String("writeTimeout", h.WriteTimeout.String()), slog.String("idleTimeout", h.IdleTimeout.String()),
		slog.Int("maxHeaderBytes", h.MaxHeaderBytes))
}
