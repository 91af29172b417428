package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/stream"
	"go.opentelemetry.io/otel/trace"
)

// Runtime holds the broker connection and the HTTP server that one process's functions share.
type Runtime struct {
	cfg     Config
	nc      *nats.Conn
	js      jetstream.JetStream
	log     *slog.Logger
	ready   atomic.Bool
	owned   bool
	metrics *metrics
	tracer  *tracer // nil: tracing off
	routes  routeList
}

// Option adjusts a Runtime at creation.
type Option func(*Runtime)

// WithTracerProvider turns tracing on with tp (Run builds one from the environment; tests pass
// an SDK provider with an in-memory recorder). Without it the runtime creates no spans and only
// passes each input event's traceparent/tracestate on to the events it causes.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(r *Runtime) { r.tracer = newTracer(tp) }
}

// NewLogger is the JSON logger every function writes to stdout.
func NewLogger(level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: level}))
}

// New connects to NATS (or uses nc, for functions sharing one embedded server) and creates the
// stream topology if needed.
func New(ctx context.Context, cfg Config, nc *nats.Conn, log *slog.Logger, opts ...Option) (*Runtime, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("runtime config: %w", err)
	}
	r := &Runtime{cfg: cfg, nc: nc, log: log, metrics: newMetrics()}
	for _, o := range opts {
		o(r)
	}
	if nc == nil {
		opts, err := cfg.NATSOptions("omnimember")
		if err != nil {
			return nil, err
		}
		conn, err := nats.Connect(cfg.NATSURL, opts...)
		if err != nil {
			return nil, fmt.Errorf("connect to NATS %s: %w", maskURL(cfg.NATSURL), err)
		}
		r.nc, r.owned = conn, true
	}
	js, err := jetstream.New(r.nc, jetstream.WithPublishAsyncMaxPending(16384))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	r.js = js
	if err := stream.Ensure(ctx, js, cfg.Topology); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// JetStream exposes the JetStream context, for tools and tests.
func (r *Runtime) JetStream() jetstream.JetStream { return r.js }

// Publisher publishes on behalf of the named function.
func (r *Runtime) Publisher(function string) *Publisher {
	return &Publisher{js: r.js, function: function, metrics: r.metrics, atomic: r.cfg.AtomicBatches, replicas: r.cfg.Topology.Replicas}
}

// publisherFor publishes on behalf of fn and only the types it declares in Emits.
func (r *Runtime) publisherFor(fn Function) *Publisher {
	p := r.Publisher(fn.Name)
	if len(fn.Emits) > 0 {
		p.emits = make(map[string]bool, len(fn.Emits))
		for _, t := range fn.Emits {
			p.emits[t] = true
		}
	}
	return p
}

// Close closes the connection if the runtime opened it.
func (r *Runtime) Close() {
	if r.owned {
		_ = r.nc.Drain()
	}
}

// Serve listens on the configured HTTP address and runs the functions until ctx ends.
func (r *Runtime) Serve(ctx context.Context, fns ...Function) error {
	ln, err := net.Listen("tcp", r.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", r.cfg.HTTPAddr, err)
	}
	return r.ServeListener(ctx, ln, fns...)
}

// ServeListener runs the functions on ln until ctx ends, then drains: the HTTP server finishes
// in-flight requests and consumers stop pulling and finish what they hold.
func (r *Runtime) ServeListener(ctx context.Context, ln net.Listener, fns ...Function) error {
	defer ln.Close()
	mux := &recordingMux{ServeMux: http.NewServeMux(), list: &r.routes}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", r.readyz)
	mux.Handle("GET /metrics", r.metrics.handler())
	var consumers []*consumer
	bgCtx, stopBackground := context.WithCancel(ctx)
	var background sync.WaitGroup
	defer func() {
		stopBackground()
		background.Wait()
		for _, c := range consumers {
			c.stop()
		}
	}()
	for _, fn := range fns {
		if err := fn.Validate(); err != nil {
			return err
		}
		pub := r.publisherFor(fn)
		if fn.EventsPath != "" {
			mux.Handle(fn.EventsPath, r.receiver(fn, pub))
		}
		if fn.Routes != nil {
			fn.Routes(mux, pub)
		}
		if fn.Background != nil {
			background.Go(func() { fn.Background(bgCtx, pub) })
		}
		if len(fn.Consumes) > 0 {
			c, err := startConsumer(ctx, r, fn)
			if err != nil {
				return err
			}
			consumers = append(consumers, c)
		}
	}
	srv := r.httpServer(r.tracer.traceHTTP(mux.ServeMux))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	r.ready.Store(true)
	r.log.Info("serving", "addr", ln.Addr().String(), "functions", len(fns))
	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("http server: %w", err)
	}
	r.ready.Store(false)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), r.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		r.log.Warn("http shutdown", "error", err)
	}
	return nil
}

// httpServer bounds what a connection may hold: headers and body within the read timeouts (a
// stalled body no longer holds its goroutine), headers within MaxHeaderBytes (431 beyond).
func (r *Runtime) httpServer(h http.Handler) *http.Server {
	l := r.cfg.HTTP
	return &http.Server{Handler: h, ReadHeaderTimeout: l.ReadHeaderTimeout, ReadTimeout: l.ReadTimeout,
		WriteTimeout: l.WriteTimeout, IdleTimeout: l.IdleTimeout, MaxHeaderBytes: l.MaxHeaderBytes,
		ErrorLog: slog.NewLogLogger(r.log.Handler(), slog.LevelWarn)}
}

// Routes lists the patterns the runtime serves, in registration order (after ServeListener has
// started).
func (r *Runtime) Routes() []string {
	r.routes.mu.Lock()
	defer r.routes.mu.Unlock()
	return append([]string(nil), r.routes.patterns...)
}

type routeList struct {
	mu       sync.Mutex
	patterns []string
}

// recordingMux is an http.ServeMux that remembers its patterns.
type recordingMux struct {
	*http.ServeMux
	list *routeList
}

func (m *recordingMux) Handle(pattern string, h http.Handler) {
	m.list.mu.Lock()
	m.list.patterns = append(m.list.patterns, pattern)
	m.list.mu.Unlock()
	m.ServeMux.Handle(pattern, h)
}

func (m *recordingMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(h))
}

func (r *Runtime) readyz(w http.ResponseWriter, _ *http.Request) {
	if !r.ready.Load() || !r.nc.IsConnected() {
		WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
		return
	}
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// Run is main's one call: it connects, serves the functions and drains on SIGTERM or SIGINT.
// settings describes the function's own configuration (secrets masked) for the start line.
func Run(cfg Config, settings slog.Attr, fns ...Function) error {
	log := NewLogger(cfg.LogLevel)
	log.Info("starting", "runtime", cfg, settings)
	go func() { _ = events.Warm() }() // an error resurfaces at the first Validate
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	var opts []Option
	if cfg.Traces == TracesOTLP {
		tp, err := NewOTLPTracerProvider(ctx, serviceName(fns))
		if err != nil {
			return err
		}
		defer func() {
			if err := shutdownTracing(tp, 5*time.Second); err != nil {
				log.Warn("flush traces", "error", err)
			}
		}()
		opts = append(opts, WithTracerProvider(tp))
	}
	r, err := New(ctx, cfg, nil, log, opts...)
	if err != nil {
		return err
	}
	defer r.Close()
	return r.Serve(ctx, cfg.applyTrigger(fns)...)
}

// serviceName names the process in traces: its function, or omnimember when it runs several.
func serviceName(fns []Function) string {
	if len(fns) == 1 {
		return fns[0].Name
	}
	return "omnimember"
}

// applyTrigger lets the deployment choose how chained functions receive events: pulled from
// JetStream, pushed over HTTP at EventsPath, or both. Functions with their own HTTP path keep it.
func (c Config) applyTrigger(fns []Function) []Function {
	out := make([]Function, len(fns))
	for i, f := range fns {
		if len(f.Consumes) > 0 {
			if c.Trigger != TriggerJetStream && f.EventsPath == "" {
				f.EventsPath = c.EventsPath
			}
			if c.Trigger == TriggerHTTP {
				f.Consumes = nil
			}
		}
		out[i] = f
	}
	return out
}

// Main runs a function's main body and exits non-zero with the error on stderr.
func Main(function string, run func() error) {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", function, err)
		os.Exit(1)
	}
}
