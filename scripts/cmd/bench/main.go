// Command bench measures, in one run on this machine: the raw JetStream publish+consume rate, the
// whole chain's orders per second end to end, and the latency from ingest's 202 to the tier being
// evaluated at half that rate. It prints each figure beside the raw rate.
package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	tierevaluate "github.com/omnimember/omnimember/functions/tier-evaluate"
	"github.com/omnimember/omnimember/scripts/stack"
	"github.com/omnimember/omnimember/shared/admit"
	"github.com/omnimember/omnimember/shared/pii"
	omruntime "github.com/omnimember/omnimember/shared/runtime"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

type settings struct {
	rawMessages int
	orders      int
	people      int
	batch       int
	clients     int
	latencyFor  time.Duration
	concurrency int
	cpuProfile  string
	storeNoSync bool
	// syncAlways makes JetStream fsync every message (sync_interval: always), as production's
	// lone-server setting; the store fsyncs too. The OS-crash-proof rate reported beside the bar.
	syncAlways   bool
	logTo        io.Writer
	members      int
	accounts     int
	backfillRows int
	// segmentMembers is the size of the dormant segment the campaign benchmark counts and fans out.
	segmentMembers int
	campaignOnly   bool
	traces         bool
	// soakFor, if set, runs only the soak: orders at soakRate (0: half the measured peak) that long.
	soakFor, soakEvery time.Duration
	soakRate           float64
	// soakPeople is the population of the soak: a brand's members order a few times a month, so
	// over a long run the orders spread over many people, not the throughput run's few thousand.
	soakPeople int
	// soakHeapDir, if set, receives a heap profile at every sample (go tool pprof -base first last).
	soakHeapDir string
}

func main() {
	var s settings
	flag.IntVar(&s.rawMessages, "raw", 200_000, "messages for the raw JetStream rate")
	flag.IntVar(&s.orders, "orders", 20_000, "orders for the throughput run")
	flag.IntVar(&s.people, "people", 5_000, "distinct people placing them")
	flag.IntVar(&s.batch, "batch", 100, "events per HTTP batch in the throughput run")
	flag.IntVar(&s.clients, "clients", 8, "concurrent HTTP clients")
	flag.DurationVar(&s.latencyFor, "latency-for", 10*time.Second, "duration of the paced latency run")
	flag.IntVar(&s.concurrency, "concurrency", 64, "events each function handles at once")
	flag.BoolVar(&s.storeNoSync, "store-nosync", false, "skip fsync in the embedded store (survives a process kill, not an OS crash)")
	logFile := flag.String("log", "", "append the functions' warnings (retries, dead letters) to this file")
	flag.IntVar(&s.members, "members", 1_000_000, "members (5 identities each) for the identity benchmark; 0 skips it")
	flag.IntVar(&s.accounts, "accounts", 1_000_000, "accounts for the expiry-job benchmark; 0 skips it")
	flag.IntVar(&s.backfillRows, "backfill", 1_000_000, "orders in the generated export file the backfill benchmark imports; 0 skips it")
	flag.IntVar(&s.segmentMembers, "segment-members", 1_000_000, "members of the dormant segment for the campaign benchmark; 0 skips it")
	flag.BoolVar(&s.campaignOnly, "campaign-only", false, "run only the campaign benchmark")
	flag.BoolVar(&s.traces, "traces", false, "trace every event with the OpenTelemetry SDK (spans batched to an exporter that drops them)")
	flag.StringVar(&s.cpuProfile, "cpuprofile", "", "write a CPU profile of the throughput run to this file")
	flag.DurationVar(&s.soakFor, "soak", 0, "run only the soak this long (heap and goroutines sampled; fails on growth)")
	flag.DurationVar(&s.soakEvery, "soak-every", 30*time.Second, "soak sampling interval")
	flag.Float64Var(&s.soakRate, "soak-rate", 0, "soak orders per second (0: half the peak measured first)")
	flag.IntVar(&s.soakPeople, "soak-people", 100_000, "distinct people placing the soak's orders")
	flag.StringVar(&s.soakHeapDir, "soak-heap", "", "write a heap profile at every soak sample into this directory")
	flag.Parse()
	s.logTo = io.Discard
	if *logFile != "" {
		f, err := os.OpenFile(*logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		defer f.Close()
		s.logTo = f
	}
	if err := run(s); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(s settings) error {
	traced := ""
	if s.traces {
		traced = ", every event traced (OpenTelemetry SDK)"
	}
	fmt.Printf("omnimember bench — %d CPUs, %s, embedded NATS JetStream + embedded store%s\n", runtime.NumCPU(), runtime.Version(), traced)
	if s.campaignOnly {
		return campaignBench(s.segmentMembers)
	}
	if s.soakFor > 0 {
		return runSoak(s)
	}
	raw, err := rawJetStream(s.rawMessages, rawRun{})
	if err != nil {
		return fmt.Errorf("raw JetStream: %w", err)
	}
	fmt.Printf("  %-58s %10.0f msg/s\n", "raw JetStream publish+consume+ack (400 B, file storage)", raw)
	if err := rawVariants(s.rawMessages, raw); err != nil {
		return err
	}

	tp, spent, err := throughput(s)
	if err != nil {
		return fmt.Errorf("chain throughput: %w", err)
	}
	fmt.Printf("  %-58s %10.0f orders/s  (%.1f%% of raw; bar 10 000)\n", "chain end to end: HTTP batch ingest → notify (store fsync)", tp, 100*tp/raw)
	fmt.Printf("  %-58s %s\n", "  per order (functions, broker and store)", spent.perOrder(s.orders))
	fmt.Printf("  %-58s %10.0f orders/s  (raw rate / JetStream work per order)\n", "  ceiling if the broker had the machine to itself", spent.brokerCeiling(s.orders, raw))
	if !s.storeNoSync {
		if err := chainVariants(s, raw); err != nil {
			return err
		}
	}

	rate := tp / 2
	lat, achieved, err := latency(s, rate)
	if err != nil {
		return fmt.Errorf("chain latency: %w", err)
	}
	fmt.Printf("  %-58s p50 %6.1f ms  p99 %6.1f ms  (offered %.0f/s, achieved %.0f/s; bar p99 < 50 ms)\n",
		"latency 202 → tier evaluated, at half the measured rate", ms(percentile(lat, 50)), ms(percentile(lat, 99)), rate, achieved)
	if s.backfillRows > 0 {
		if err := backfillBench(s.backfillRows, raw); err != nil {
			return fmt.Errorf("backfill: %w", err)
		}
	}
	if s.members > 0 {
		if err := identityBench(s.members); err != nil {
			return fmt.Errorf("identity: %w", err)
		}
	}
	if err := loyaltyBench(20_000, s.accounts); err != nil {
		return fmt.Errorf("loyalty: %w", err)
	}
	if s.segmentMembers > 0 {
		if err := campaignBench(s.segmentMembers); err != nil {
			return fmt.Errorf("campaign: %w", err)
		}
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// rawJetStream publishes n 400-byte messages asynchronously to a file stream while a pull consumer
// acknowledges them, and returns messages per second for the whole round.
// chainVariants runs the throughput again with each durability setting relaxed or tightened.
func chainVariants(s settings, raw float64) error {
	variants := []struct {
		label string
		set   func(*settings)
	}{
		{"  the same, store without fsync (STORE_NOSYNC=1)", func(v *settings) { v.storeNoSync = true }},
		{"  the same, JetStream sync_interval: always (OS-crash-proof)", func(v *settings) { v.syncAlways = true }},
	}
	for _, variant := range variants {
		v := s
		v.cpuProfile = ""
		variant.set(&v)
		tp, spent, err := throughput(v)
		if err != nil {
			return fmt.Errorf("chain throughput, %s: %w", strings.TrimSpace(variant.label), err)
		}
		fmt.Printf("  %-58s %10.0f orders/s  (%.1f%% of raw)\n", variant.label, tp, 100*tp/raw)
		fmt.Printf("  %-58s %s\n", "  per order", spent.perOrder(s.orders))
	}
	return nil
}

// chain is a stack with tier-evaluate timed per order.
type chain struct {
	s         *stack.Stack
	base      string
	evaluated sync.Map // orderId → time tier-evaluate finished with it, while timing is on
	// timing turns the per-order record on: the latency run reads it; the soak leaves it off, or
	// the record of every order it ever sent would be what grows.
	timing atomic.Bool
	dir    string
	tp     *sdktrace.TracerProvider // with -traces
}

func startChain(s settings) (*chain, error) {
	dir, err := os.MkdirTemp("", "omnimember-bench-chain-")
	if err != nil {
		return nil, err
	}
	keys, err := pii.ParseKeyring(pii.NewKey("bench"))
	if err != nil {
		return nil, err
	}
	cfg := omruntime.Defaults()
	cfg.Concurrency = s.concurrency
	cfg.MaxBodyBytes = 8 << 20
	c := &chain{dir: dir}
	opts := stack.Options{DataDir: dir, HTTPAddr: "127.0.0.1:0", Keys: keys, IdentityKeys: benchKeyer, Runtime: &cfg, StoreNoSync: s.storeNoSync, SyncAlways: s.syncAlways,
		Logger: slog.New(slog.NewJSONHandler(s.logTo, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Wrap:   c.timeTier, SenderToken: benchSender}
	if s.traces {
		c.tp = sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
		opts.TracerProvider = c.tp
	}
	c.s, err = stack.Start(opts)
	if err != nil {
		return nil, err
	}
	c.base = "http://" + c.s.Addr
	return c, nil
}

func (c *chain) stop() {
	_ = c.s.Stop()
	if c.tp != nil {
		_ = c.tp.Shutdown(context.Background())
	}
	_ = os.RemoveAll(c.dir)
}

func (c *chain) timeTier(function string, h omruntime.Handler) omruntime.Handler {
	if function != tierevaluate.Name {
		return h
	}
	return func(ctx context.Context, ev cloudevents.Event) ([]cloudevents.Event, error) {
		outs, err := h(ctx, ev)
		if err == nil && c.timing.Load() && ev.Type() == events.PointsAwarded {
			if d, derr := events.Decode[events.PointsAwardedData](ev); derr == nil {
				c.evaluated.LoadOrStore(d.OrderID, time.Now())
			}
		}
		return outs, err
	}
}

// workload makes n orders by people shoppers across every channel, each with a plaintext phone
// (as a platform sends after payment) and the channel's own id.
func workload(n, people int, prefix string) []cloudevents.Event {
	// Seeded by the whole prefix: each batch of the soak draws other people (a seed of the
	// prefix's length gave every batch the same few, whose accounts then grew without end).
	seed := fnv.New64a()
	seed.Write([]byte(prefix))
	rng := rand.New(rand.NewPCG(7, seed.Sum64()))
	idTypes := map[string]string{"tmall": "tmall_omid", "taobao": "tmall_omid", "douyin": "douyin_unionid", "jd": "jd_pin",
		"wechat": "wechat_unionid", "youzan": "youzan_open_id", "app": "app_user_id", "pos": "pos_card"}
	now := time.Now().Add(-time.Hour)
	out := make([]cloudevents.Event, n)
	for i := range n {
		person := rng.IntN(people)
		channel := events.Channels[rng.IntN(len(events.Channels))]
		data := events.OrderPaidData{OrderID: fmt.Sprintf("%s-%d", prefix, i), Channel: channel, ShopID: channel + "-shop-1",
			AmountFen: 1000 + rng.Int64N(300_000), PaidAt: now, Identities: []events.Identity{
				{Type: "phone", Value: fmt.Sprintf("139%08d", person)},
				{Type: idTypes[channel], Value: fmt.Sprintf("%s-%d", channel, person)}}}
		ev, err := events.New(events.OrderPaid, fmt.Sprintf("%s-ev-%d", prefix, i), admit.Source(data.Channel, data.ShopID), now, data)
		if err != nil {
			panic(err)
		}
		out[i] = ev
	}
	return out
}

var client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// benchSender is the bench's development sender token (any source), fresh each run.
var benchSender = "bench-sender-" + crand.Text()

// postBatch sends events in batch mode and returns when ingest answered 202.
func postBatch(base string, evs []cloudevents.Event) error {
	body, err := json.Marshal(evs)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, base+"/v1/events", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/cloudevents-batch+json")
	req.Header.Set("Authorization", "Bearer "+benchSender)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("ingest answered %d", resp.StatusCode)
	}
	return nil
}

// throughput posts every order in batches from several clients and waits until the chain is quiet.
func throughput(s settings) (float64, cost, error) {
	c, err := startChain(s)
	if err != nil {
		return 0, cost{}, err
	}
	defer c.stop()
	evs := workload(s.orders, s.people, "tp")
	batches := make(chan []cloudevents.Event, len(evs)/s.batch+1)
	for i := 0; i < len(evs); i += s.batch {
		batches <- evs[i:min(i+s.batch, len(evs))]
	}
	close(batches)
	if s.cpuProfile != "" {
		f, err := os.Create(s.cpuProfile)
		if err != nil {
			return 0, cost{}, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return 0, cost{}, err
		}
		defer pprof.StopCPUProfile()
	}
	start, meter := time.Now(), startCost()
	var wg sync.WaitGroup
	errs := make(chan error, s.clients)
	for range s.clients {
		wg.Go(func() {
			for b := range batches {
				if err := postBatch(c.base, b); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, cost{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := c.s.WaitQuiet(ctx); err != nil {
		return 0, cost{}, err
	}
	rate, spent := float64(s.orders)/time.Since(start).Seconds(), meter.stop()
	spent.messages, spent.deliveries, err = c.s.Traffic(ctx)
	return rate, spent, err
}

// latency offers orders at rate for the configured time, one event per request, and returns each
// order's time from 202 to tier evaluated, and the rate achieved.
func latency(s settings, rate float64) ([]time.Duration, float64, error) {
	c, err := startChain(s)
	if err != nil {
		return nil, 0, err
	}
	defer c.stop()
	c.timing.Store(true)
	n := max(1, int(rate*s.latencyFor.Seconds()))
	evs := workload(n, s.people, "lat")
	accepted := make([]time.Time, n)
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	var failed atomic.Int64
	for i, ev := range evs {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait) // pacing the offered load, not synchronising a test
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := postBatch(c.base, []cloudevents.Event{ev}); err != nil {
				failed.Add(1)
				return
			}
			accepted[i] = time.Now()
		})
	}
	wg.Wait()
	achieved := float64(n) / time.Since(start).Seconds()
	if f := failed.Load(); f > 0 {
		return nil, 0, fmt.Errorf("%d posts failed", f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := c.s.WaitQuiet(ctx); err != nil {
		return nil, 0, err
	}
	lat := make([]time.Duration, 0, n)
	for i, ev := range evs {
		d, _ := events.Decode[events.OrderPaidData](ev)
		if done, ok := c.evaluated.Load(d.OrderID); ok {
			lat = append(lat, max(0, done.(time.Time).Sub(accepted[i])))
		}
	}
	if len(lat) != n {
		return nil, 0, fmt.Errorf("tier evaluated %d of %d orders", len(lat), n)
	}
	return lat, achieved, nil
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p/100))]
}
