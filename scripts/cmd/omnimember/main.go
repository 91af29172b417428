// Command omnimember runs the whole chain on one machine — embedded NATS JetStream, the embedded
// store and every function — replays the demo, prints a summary, and serves until Ctrl-C.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/omnimember/omnimember/functions/campaign"
	"github.com/omnimember/omnimember/functions/ingest"
	"github.com/omnimember/omnimember/functions/profile"
	"github.com/omnimember/omnimember/scripts/demo"
	"github.com/omnimember/omnimember/scripts/stack"
	"github.com/omnimember/omnimember/shared/loyalty"
	"github.com/omnimember/omnimember/shared/pii"
	"github.com/omnimember/omnimember/shared/runtime"
)

type config struct {
	DataDir  string // OMNIMEMBER_DATA: where JetStream, the store, the log and the dev key live
	HTTPAddr string // OMNIMEMBER_HTTP_ADDR
	NATSPort int    // OMNIMEMBER_NATS_PORT: for functions started as their own processes (0: none)
	// ExternalNATS (OMNIMEMBER_EXTERNAL_NATS) runs the chain against that NATS server instead of an
	// embedded one (the fault harness does, to kill NATS and the functions separately).
	ExternalNATS string
	Demo         bool // OMNIMEMBER_DEMO=0 skips the replay
	// AdminToken opens the operator endpoints (OMNIMEMBER_ADMIN_TOKEN) and APIToken the channel
	// APIs such as redemptions (OMNIMEMBER_API_TOKEN); development tokens are printed when unset.
	AdminToken, APIToken string
	// MarketerToken opens the campaign API and console (OMNIMEMBER_MARKETER_TOKEN).
	MarketerToken string
	Runtime       runtime.Config
}

func loadConfig() (config, error) {
	c := config{DataDir: ".data", HTTPAddr: "127.0.0.1:8080", NATSPort: 4222, Demo: os.Getenv("OMNIMEMBER_DEMO") != "0"}
	if v := os.Getenv("OMNIMEMBER_DATA"); v != "" {
		c.DataDir = v
	}
	if v := os.Getenv("OMNIMEMBER_HTTP_ADDR"); v != "" {
		c.HTTPAddr = v
	}
	if v := os.Getenv("OMNIMEMBER_NATS_PORT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 65535 {
			return c, fmt.Errorf("OMNIMEMBER_NATS_PORT %q: want a port number, or 0 for none", v)
		}
		c.NATSPort = n
	}
	c.AdminToken, c.APIToken = os.Getenv(runtime.AdminTokenEnv), os.Getenv(runtime.APITokenEnv)
	c.ExternalNATS = os.Getenv("OMNIMEMBER_EXTERNAL_NATS")
	c.MarketerToken = os.Getenv(campaign.MarketerTokenEnv)
	var err error
	c.Runtime, err = runtime.FromEnv()
	return c, err
}

// devKeys uses OMNIMEMBER_PII_KEYS when set; otherwise a key generated once into the data
// directory, which is fine for a laptop and never for production.
func devKeys(dir string) (*pii.Keyring, string, error) {
	if os.Getenv(pii.KeysEnv) != "" {
		k, err := pii.FromEnv()
		return k, "from " + pii.KeysEnv, err
	}
	spec, path, err := devSecret(dir, "dev-pii.key", func() string { return pii.NewKey("dev1") })
	if err != nil {
		return nil, "", err
	}
	k, err := pii.ParseKeyring(spec)
	return k, "development key in " + path, err
}

// jetStreamKey encrypts the embedded JetStream's files: OMNIMEMBER_JETSTREAM_KEY, else a
// development key kept in the data directory.
func jetStreamKey(dir string) (string, error) {
	if v := os.Getenv("OMNIMEMBER_JETSTREAM_KEY"); v != "" {
		return v, nil
	}
	key, _, err := devSecret(dir, "dev-jetstream.key", func() string { return strings.TrimPrefix(pii.NewKey("js"), "js:") })
	return key, err
}

func randomHex() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// devSecret reads a secret file of the data directory, creating it on first use.
func devSecret(dir, name string, generate func() string) (string, string, error) {
	path := filepath.Join(dir, name)
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		raw = []byte(generate())
		err = os.WriteFile(path, raw, 0o600)
	}
	return strings.TrimSpace(string(raw)), path, err
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "omnimember:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return err
	}
	logPath := filepath.Join(cfg.DataDir, "omnimember.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	defer logFile.Close()
	log := slog.New(slog.NewJSONHandler(logFile, &slog.HandlerOptions{Level: cfg.Runtime.LogLevel}))
	keys, keySource, err := devKeys(cfg.DataDir)
	if err != nil {
		return err
	}
	if cfg.AdminToken == "" {
		if cfg.AdminToken, _, err = devSecret(cfg.DataDir, "dev-admin.token", randomHex); err != nil {
			return err
		}
	}
	if cfg.APIToken == "" {
		if cfg.APIToken, _, err = devSecret(cfg.DataDir, "dev-api.token", randomHex); err != nil {
			return err
		}
	}
	if cfg.MarketerToken == "" {
		if cfg.MarketerToken, _, err = devSecret(cfg.DataDir, "dev-marketer.token", randomHex); err != nil {
			return err
		}
	}
	jsKey, err := jetStreamKey(cfg.DataDir)
	if err != nil {
		return err
	}
	rules := loyalty.Example() // the shipped example; LOYALTY_RULES_FILE replaces it
	if os.Getenv(loyalty.RulesEnv) != "" {
		if rules, err = loyalty.FromEnv(); err != nil {
			return err
		}
	}
	secrets, devPOS, err := webhookSecrets(cfg.DataDir)
	if err != nil {
		return err
	}
	// The platforms that do not push (TMC, JD) and the 会员通 SPI, each on when its variables are set.
	polls, err := ingest.PollConfigFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	tmall, err := profile.TmallMemberFromEnv(os.Getenv, log)
	if err != nil {
		return err
	}
	log.Info("starting omnimember (embedded)", "webhookSecrets", secrets, "pollers", polls, "tmallMember", tmall != nil, "runtime", cfg.Runtime, "dataDir", cfg.DataDir, "piiKeys", keys, "piiKeySource", keySource)
	s, err := stack.Start(stack.Options{DataDir: cfg.DataDir, HTTPAddr: cfg.HTTPAddr, NATSPort: cfg.NATSPort, NATSURL: cfg.ExternalNATS,
		Keys: keys, Runtime: &cfg.Runtime, Logger: log, JetStreamKey: jsKey, AdminToken: cfg.AdminToken, APIToken: cfg.APIToken,
		MarketerToken: cfg.MarketerToken, Loyalty: rules, WebhookSecrets: secrets, Pollers: polls.Pollers(log), TmallMember: tmall})
	if err != nil {
		return err
	}
	defer s.Stop()
	base := "http://" + s.Addr
	fmt.Printf("omnimember is running: HTTP %s, NATS %s, data in %s, logs in %s\n", base, natsURL(s, cfg.ExternalNATS), cfg.DataDir, logPath)
	if keySource != "from "+pii.KeysEnv {
		fmt.Printf("phones are sealed with a %s (set %s in production)\n", keySource, pii.KeysEnv)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.Demo {
		if err := runDemo(ctx, s, base); err != nil {
			return err
		}
	}
	printTryIt(base, cfg.AdminToken, cfg.APIToken)
	if devPOS != "" {
		printTryWebhook(base, devPOS)
	}
	fmt.Printf("\nMarketer console (segments, preview, send, progress; OMNIMEMBER_MARKETER_TOKEN):\n  %s/console/#token=%s\n", base, cfg.MarketerToken)
	go scheduleJobs(ctx, s, log)
	<-ctx.Done()
	fmt.Println("\nstopping: draining functions")
	return nil
}

// scheduleJobs runs points expiry and tier evaluation now and every hour (each is idempotent
// within a day), as a cluster's scheduler would call their endpoints.
func scheduleJobs(ctx context.Context, s *stack.Stack, log *slog.Logger) {
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	for {
		expiry, evaluation, err := s.RunJobs(ctx, time.Now())
		if err != nil {
			log.Warn("scheduled jobs", "error", err)
		} else {
			log.Info("scheduled jobs", "expiry", expiry, "evaluation", evaluation)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func natsURL(s *stack.Stack, external string) string {
	if external != "" {
		return external
	}
	if u := s.Broker.URL(); u != "" {
		return u
	}
	return "in-process only"
}

func runDemo(ctx context.Context, s *stack.Stack, base string) error {
	steps, err := demo.Steps(time.Now())
	if err != nil {
		return err
	}
	fmt.Printf("\nReplaying %d webhooks from Tmall, Douyin, JD, WeChat, a store and the app:\n", len(steps))
	settle := func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return s.WaitQuiet(ctx)
	}
	if err := demo.Replay(ctx, base, steps, settle, os.Stdout); err != nil {
		return err
	}
	fmt.Println("\nOne member per person, on every channel:")
	return demo.Summary(ctx, base, s.Store, os.Stdout)
}

// webhookSecrets reads OMNIMEMBER_WEBHOOK_SECRETS(_FILE); when neither is set, development secrets
// for one store (store-demo) and one app (demo-app) are generated into the data directory and the
// store's secret is returned so that the try-it lines can sign a push.
func webhookSecrets(dir string) (ingest.Secrets, string, error) {
	secrets, err := ingest.SecretsFromEnv(os.Getenv)
	if err != nil {
		return nil, "", err
	}
	if os.Getenv(ingest.EnvWebhookSecrets) == "" && os.Getenv(ingest.EnvWebhookSecretsFile) == "" {
		raw, path, err := devSecret(dir, "dev-webhook-secrets.json", func() string {
			return fmt.Sprintf(`{"pos":{"store-demo":{"secret":%q}},"app":{"demo-app":{"secret":%q}}}`, randomHex(), randomHex())
		})
		if err != nil {
			return nil, "", err
		}
		if secrets, err = ingest.ParseSecrets([]byte(raw)); err != nil {
			return nil, "", fmt.Errorf("%s: %w", path, err)
		}
	}
	if err := secrets.Check(ingest.Adapters(nil)); err != nil {
		return nil, "", err
	}
	return secrets, secrets["pos"]["store-demo"]["secret"], nil
}

// printTryWebhook shows a signed native POS push (development secret of store-demo).
func printTryWebhook(base, secret string) {
	fmt.Printf(`
A store's native webhook, signed (functions/ingest/README.md; development secret in .data/dev-webhook-secrets.json):
  body='{"type":"order.paid","id":"till-1-0001","order":{"id":"SH-0001","amountFen":12900,"paidAt":"%[2]s"},"member":{"phone":"13812345678","card":"C-0001"}}'
  ts=$(date +%%s); sig=$(printf '%%s\n%%s' "$ts" "$body" | openssl dgst -sha256 -hmac '%[3]s' | sed 's/^.* //')
  curl -s -X POST %[1]s/webhooks/pos -H 'X-Omnimember-Store: store-demo' -H "X-Omnimember-Timestamp: $ts" \
       -H "X-Omnimember-Signature: v1=$sig" -d "$body"
`, base, time.Now().UTC().Format(time.RFC3339), secret)
}

func printTryIt(base, token, apiToken string) {
	fmt.Printf(`
Try it (Ctrl-C to stop):
  curl -s '%[1]s/v1/members:lookup?type=phone&value=%%2B86%%20138-1234-5678'
  curl -s -X POST %[1]s/v1/events -H 'Content-Type: application/cloudevents+json' -d '{
    "specversion":"1.0","type":"omnimember.order.paid","source":"jd/jd-shop-9","id":"my-order-1",
    "data":{"orderId":"JD-9001","channel":"jd","shopId":"jd-shop-9","amountFen":99900,
            "paidAt":"%[2]s","identities":[{"type":"phone","value":"13812345678"}]}}'
  curl -s -X POST %[1]s/v1/members:merge-preview -H 'Authorization: Bearer %[3]s' \
       -d '{"identities":[{"type":"phone","value":"13812345678"},{"type":"phone","value":"13987654321"}]}'
  curl -s %[1]s/v1/quarantine -H 'Authorization: Bearer %[3]s'     # operator endpoints (OMNIMEMBER_ADMIN_TOKEN)
  curl -s -X POST %[1]s/v1/members/<oneId>/redemptions -H 'Authorization: Bearer %[4]s' \
       -d '{"idempotencyKey":"store-12-receipt-1","channel":"pos","points":100}'     # OMNIMEMBER_API_TOKEN
  curl -s -X PUT %[1]s/v1/members/<oneId>/consent -H 'Authorization: Bearer %[4]s' \
       -d '{"channel":"outbox","consent":"granted"}'     # marketing is opt-in: a campaign reaches consented members
`, base, time.Now().UTC().Format(time.RFC3339), token, apiToken)
}
