// Package stack runs the whole chain in one process — embedded NATS JetStream, a document store and
// every function — for `make run`, the end-to-end tests and the benchmarks.
package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/omnimember/omnimember/functions/campaign"
	"github.com/omnimember/omnimember/functions/ingest"
	"github.com/omnimember/omnimember/functions/match"
	"github.com/omnimember/omnimember/functions/notify"
	pointsaward "github.com/omnimember/omnimember/functions/points-award"
	"github.com/omnimember/omnimember/functions/profile"
	tierevaluate "github.com/omnimember/omnimember/functions/tier-evaluate"
	"github.com/omnimember/omnimember/shared/broker"
	"github.com/omnimember/omnimember/shared/contact"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/loyalty"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/pii"
	"github.com/omnimember/omnimember/shared/receipt"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/segment"
	"github.com/omnimember/omnimember/shared/store"
	"github.com/omnimember/omnimember/shared/store/embedded"
	"github.com/omnimember/omnimember/shared/stream"
	"go.opentelemetry.io/otel/trace"
)

// Options configure a stack.
type Options struct {
	// DataDir holds JetStream's files and the embedded store.
	DataDir string
	// HTTPAddr serves every function's HTTP routes (127.0.0.1:0 picks a free port).
	HTTPAddr string
	// NATSPort lets other processes reach the embedded server (-1: a free port, 0: in-process only).
	NATSPort int
	// NATSURL, if set, is a NATS server to use instead of embedding one (Broker stays nil).
	NATSURL string
	// SyncAlways makes JetStream fsync every message.
	SyncAlways bool
	// JetStreamKey encrypts JetStream's files at rest.
	JetStreamKey string
	// StoreNoSync skips fsync in the embedded store.
	StoreNoSync bool
	// Store replaces the embedded store (a Firestore store, say); the stack does not close it.
	Store store.Store
	// Keys seal plaintext phones.
	Keys *pii.Keyring
	// Runtime overrides the runtime defaults (ack wait, concurrency, ...); HTTPAddr is ignored.
	Runtime *runtime.Config
	// Logger receives every function's logs.
	Logger *slog.Logger
	// Wrap, if set, wraps each chained function's handler (tests inject crashes, benches time).
	Wrap func(function string, h runtime.Handler) runtime.Handler
	// Now is the clock of every function.
	Now func() time.Time
	// ContactRules are notify's rules of contact (consent, caps, quiet hours); nil: contact.json's defaults.
	ContactRules *contact.Rules
	// AdminToken opens the operator endpoints (quarantine, merge preview, split, erasure, jobs);
	// APIToken the channel-facing write APIs (redemptions).
	AdminToken, APIToken string
	// MarketerToken opens the campaign API and the marketer console.
	MarketerToken string
	// Loyalty are the points and tier rules (default: the shipped example).
	Loyalty *loyalty.Rules
	// TracerProvider turns tracing on (tests pass one with an in-memory span recorder).
	TracerProvider trace.TracerProvider
	// WebhookSecrets are the shops whose native pushes ingest accepts at /webhooks/{platform}.
	WebhookSecrets ingest.Secrets
	// HTTPClient makes the adapters' outgoing calls (default http.DefaultClient).
	HTTPClient *http.Client
	// Pollers run beside ingest (Tmall/Taobao TMC, JD), TmallMember serves the 会员通 SPI on profile.
	Pollers     []ingest.Poller
	TmallMember *profile.TmallMember
}

// Stack is a running chain.
type Stack struct {
	// Points and Tiers are the handlers whose scheduled jobs (expiry, evaluation) RunJobs runs.
	Points *pointsaward.Handler
	Tiers  *tierevaluate.Handler
	// Campaigns serves the marketer console and fans campaigns out.
	Campaigns *campaign.Handler
	Broker    *broker.Server
	Store     store.Store
	Runtime   *runtime.Runtime
	// Addr is the HTTP address (host:port).
	Addr     string
	nc       *nats.Conn
	ownStore bool
	cancel   context.CancelFunc
	done     chan error
}

// Chained lists the functions that consume from JetStream, in chain order.
var Chained = []string{match.Name, pointsaward.Name, tierevaluate.Name, notify.Name, profile.Name, campaign.Name}

// Start brings the chain up and returns once it serves HTTP and every consumer runs.
func Start(opts Options) (*Stack, error) {
	if opts.Keys == nil || opts.Logger == nil || opts.DataDir == "" {
		return nil, errors.New("stack: DataDir, Keys and Logger are required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Loyalty == nil {
		opts.Loyalty = loyalty.Example()
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = http.DefaultClient
	}
	s := &Stack{done: make(chan error, 1)}
	if err := s.open(opts); err != nil {
		s.close()
		return nil, err
	}
	ln, err := net.Listen("tcp", opts.HTTPAddr)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("listen on %s: %w", opts.HTTPAddr, err)
	}
	s.Addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	fns := s.functions(opts)
	go func() { s.done <- s.Runtime.ServeListener(ctx, ln, fns...) }()
	if err := s.waitReady(10 * time.Second); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Stack) open(opts Options) error {
	if err := s.connect(opts); err != nil {
		return err
	}
	var err error
	s.Store = opts.Store
	if s.Store == nil {
		if s.Store, err = embedded.Open(filepath.Join(opts.DataDir, "omnimember.db"), embedded.Options{NoSync: opts.StoreNoSync,
			Indexes: notify.StoreIndexes(campaign.StoreIndexes(member.Indexes)), Expire: receipt.Expiry, Logger: opts.Logger}); err != nil {
			return err
		}
		s.ownStore = true
	}
	cfg := runtime.Defaults()
	if opts.Runtime != nil {
		cfg = *opts.Runtime
	}
	cfg.HTTPAddr = "unused:0" // the stack listens itself
	// Atomic batches pay off only where NATS fsyncs every message (runtime.Config.AtomicBatches).
	cfg.AtomicBatches = cfg.AtomicBatches || opts.SyncAlways
	var rtOpts []runtime.Option
	if opts.TracerProvider != nil {
		rtOpts = append(rtOpts, runtime.WithTracerProvider(opts.TracerProvider))
	}
	s.Runtime, err = runtime.New(context.Background(), cfg, s.nc, opts.Logger, rtOpts...)
	return err
}

// connect embeds a NATS server, or reaches the one opts.NATSURL names (and keeps trying when it is
// down: the functions resume once it is back).
func (s *Stack) connect(opts Options) error {
	var err error
	if opts.NATSURL != "" {
		s.nc, err = nats.Connect(opts.NATSURL, nats.Name("omnimember-stack"), nats.MaxReconnects(-1), nats.ReconnectWait(time.Second))
		return err
	}
	if s.Broker, err = broker.Start(broker.Options{Dir: filepath.Join(opts.DataDir, "jetstream"), Port: opts.NATSPort,
		SyncAlways: opts.SyncAlways, EncryptionKey: opts.JetStreamKey}); err != nil {
		return err
	}
	s.nc, err = s.Broker.Connect("omnimember-stack")
	return err
}

// functions wires every function to the store and the rules.
func (s *Stack) functions(opts Options) []runtime.Function {
	st := s.Store
	wrap := func(f runtime.Function) runtime.Function {
		if opts.Wrap != nil && f.Handle != nil {
			f.Handle = opts.Wrap(f.Name, f.Handle)
		}
		return f
	}
	cfg := runtime.Defaults()
	if opts.Runtime != nil {
		cfg = *opts.Runtime
	}
	s.Points = &pointsaward.Handler{Store: st, Rules: opts.Loyalty, Now: opts.Now, APIToken: opts.APIToken, AdminToken: opts.AdminToken}
	s.Tiers = &tierevaluate.Handler{Store: st, Rules: opts.Loyalty, Now: opts.Now, AdminToken: opts.AdminToken}
	segments, err := segment.Default()
	if err != nil {
		panic(err) // the shipped segments file is validated by its tests
	}
	templates, err := campaign.DefaultTemplates()
	if err != nil {
		panic(err)
	}
	s.Campaigns = &campaign.Handler{Store: st, Segments: segments, Templates: templates, Rates: campaign.DefaultRates(),
		Brand: "omnimember", Now: opts.Now, Token: opts.MarketerToken, AdminToken: opts.AdminToken, Log: opts.Logger}
	notifyTemplates := notify.DefaultTemplates()
	for name, texts := range templates.Texts() {
		notifyTemplates[name] = texts // notify renders and delivers the marketing texts the console previews
	}
	return []runtime.Function{
		ingest.WithPollers(ingest.Function(&ingest.Webhooks{Adapters: ingest.Adapters(opts.HTTPClient), Credentials: opts.WebhookSecrets,
			MaxBodyBytes: cfg.MaxBodyBytes, Now: opts.Now, Log: opts.Logger.With("function", ingest.Name)}), opts.Pollers...),
		wrap((&match.Handler{Store: st, Keys: opts.Keys, Rules: identity.DefaultRules(), Ladder: opts.Loyalty.Ladder(), Now: opts.Now,
			AdminToken: opts.AdminToken}).Function()),
		wrap(s.Points.Function()),
		wrap(s.Tiers.Function()),
		wrap((&notify.Handler{Store: st, Sinks: map[string]any{"outbox": notify.Outbox{}}, Channel: "outbox", Locale: "zh-CN",
			Templates: notifyTemplates, MaxAttempts: cfg.MaxDeliver, Rules: contactRules(opts), APIToken: opts.APIToken, Now: opts.Now}).Function()),
		wrap((&profile.API{Store: st, Ladder: opts.Loyalty.Ladder(), Now: opts.Now, Tmall: opts.TmallMember}).Function()),
		wrap(s.Campaigns.Function()),
	}
}

func (s *Stack) waitReady(within time.Duration) error {
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if c, err := net.Dial("tcp", s.Addr); err == nil {
			c.Close()
			if s.consumersExist() {
				return nil
			}
		}
		select {
		case err := <-s.done:
			return fmt.Errorf("stack stopped while starting: %w", err)
		case <-deadline.C:
			return fmt.Errorf("stack not ready within %s", within)
		case <-tick.C:
		}
	}
}

func (s *Stack) consumersExist() bool {
	for _, name := range Chained {
		if _, err := s.Runtime.JetStream().Consumer(context.Background(), stream.Events, name); err != nil {
			return false
		}
	}
	return true
}

// Quiet reports whether every chained function has acknowledged everything stored for it.
func (s *Stack) Quiet(ctx context.Context) (bool, error) {
	for _, name := range Chained {
		settled, err := stream.Settled(ctx, s.Runtime.JetStream(), stream.Events, name)
		if err != nil || !settled {
			return false, err
		}
	}
	return true, nil
}

// Backlog sums what the chained functions have still to receive or acknowledge: level while the
// chain keeps up, growing when it falls behind.
func (s *Stack) Backlog(ctx context.Context) (uint64, error) {
	infos, err := s.consumers(ctx)
	var n uint64
	for _, info := range infos {
		n += info.NumPending + uint64(info.NumAckPending)
	}
	return n, err
}

// Traffic counts the events stream's messages and the deliveries the chained functions have
// received (redeliveries included): what the broker did for the work so far.
func (s *Stack) Traffic(ctx context.Context) (messages, deliveries uint64, err error) {
	str, err := s.Runtime.JetStream().Stream(ctx, stream.Events)
	if err != nil {
		return 0, 0, fmt.Errorf("stream %s: %w", stream.Events, err)
	}
	info, err := str.Info(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("stream %s: %w", stream.Events, err)
	}
	infos, err := s.consumers(ctx)
	for _, ci := range infos {
		deliveries += ci.Delivered.Consumer
	}
	return info.State.Msgs, deliveries, err
}

// consumers reads the state of each chained function's consumer.
func (s *Stack) consumers(ctx context.Context) ([]*jetstream.ConsumerInfo, error) {
	infos := make([]*jetstream.ConsumerInfo, 0, len(Chained))
	for _, name := range Chained {
		c, err := s.Runtime.JetStream().Consumer(ctx, stream.Events, name)
		if err != nil {
			return nil, fmt.Errorf("consumer %s: %w", name, err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("consumer %s: %w", name, err)
		}
		infos = append(infos, info)
	}
	return infos, nil
}

// WaitQuiet returns once no function has work left (twice in a row, since a function may be
// publishing the next step as the previous is acknowledged), or when ctx ends.
func (s *Stack) WaitQuiet(ctx context.Context) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	quiet := 0
	for quiet < 2 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("chain still busy: %w", ctx.Err())
		case <-tick.C:
		}
		ok, err := s.Quiet(ctx)
		if err != nil {
			return err
		}
		if ok {
			quiet++
		} else {
			quiet = 0
		}
	}
	return nil
}

// RunJobs runs the scheduled jobs as of now: points expiry (with reminders) and tier evaluation.
// In production a scheduler calls their endpoints; here `make run` calls this every hour.
func (s *Stack) RunJobs(ctx context.Context, now time.Time) (pointsaward.ExpiryReport, tierevaluate.EvaluationReport, error) {
	publish := func(ctx context.Context, evs []cloudevents.Event) error {
		return s.Runtime.Publisher("scheduler").Publish(ctx, nil, evs)
	}
	expiry, err := s.Points.Expire(ctx, now, publish)
	if err != nil {
		return expiry, tierevaluate.EvaluationReport{}, err
	}
	evaluation, err := s.Tiers.Evaluate(ctx, now, publish)
	return expiry, evaluation, err
}

// Stop drains the functions and closes the store and the broker.
func (s *Stack) Stop() error {
	var err error
	if s.cancel != nil {
		s.cancel()
		err = <-s.done
	}
	s.close()
	return err
}

func (s *Stack) close() {
	if s.nc != nil {
		s.nc.Close()
	}
	if s.ownStore && s.Store != nil {
		_ = s.Store.Close()
	}
	if s.Broker != nil {
		s.Broker.Shutdown()
	}
}

func contactRules(opts Options) contact.Rules {
	if opts.ContactRules != nil {
		return *opts.ContactRules
	}
	return notify.DefaultRules()
}
