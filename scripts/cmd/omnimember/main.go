// Command omnimember runs the whole chain on one machine — embedded NATS JetStream, the embedded
// store and every function — replays the demo, prints a summary, and serves until Ctrl-C.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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
	"github.com/omnimember/omnimember/shared/credential"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/loyalty"
	"github.com/omnimember/omnimember/shared/member"
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
	// Admin opens the operator endpoints, API the channel write APIs such as redemptions, Marketer
	// the campaign API and console, Sender POST /v1/events (every source) and Reader the profile
	// routes (every scope): each from its variable, else generated into the data directory.
	Admin, API, Marketer, Sender, Reader devToken
	Runtime                              runtime.Config
}

// Development tokens of make run: a sender allowed every source, a reader allowed every profile
// route (besides the scoped ones of OMNIMEMBER_SENDER_TOKENS and OMNIMEMBER_READER_TOKENS).
const (
	senderTokenEnv = "OMNIMEMBER_SENDER_TOKEN"
	readerTokenEnv = "OMNIMEMBER_READER_TOKEN"
)

// devToken is one development credential: from its variable, or generated once into the data
// directory. Only a generated one is ever printed (it lives in .data anyway); one given through
// the environment shows as $VARIABLE.
type devToken struct {
	Env, File, Value string
	FromEnv          bool
}

func tokenFromEnv(env, file string) devToken {
	v := os.Getenv(env)
	return devToken{Env: env, File: file, Value: v, FromEnv: v != ""}
}

// load generates the token into the data directory unless the environment gave it.
func (t *devToken) load(dir string) error {
	if t.FromEnv {
		return nil
	}
	var err error
	t.Value, _, err = devSecret(dir, t.File, randomHex)
	return err
}

// Shown is the token as the printed examples use it.
func (t devToken) Shown() string {
	if t.FromEnv {
		return "$" + t.Env
	}
	return t.Value
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
	c.Admin, c.API = tokenFromEnv(runtime.AdminTokenEnv, "dev-admin.token"), tokenFromEnv(runtime.APITokenEnv, "dev-api.token")
	c.Marketer = tokenFromEnv(campaign.MarketerTokenEnv, "dev-marketer.token")
	c.Sender, c.Reader = tokenFromEnv(senderTokenEnv, "dev-sender.token"), tokenFromEnv(readerTokenEnv, "dev-reader.token")
	c.ExternalNATS = os.Getenv("OMNIMEMBER_EXTERNAL_NATS")
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

// devIdentityKeys uses OMNIMEMBER_IDENTITY_KEYS when set; otherwise a key generated once into the
// data directory, under an id of its own, so that a data directory whose key was lost is refused
// at start (member.CheckKeyed) instead of silently failing to find its members.
func devIdentityKeys(dir string) (*identity.Keyer, string, error) {
	if os.Getenv(identity.KeysEnv) != "" {
		k, err := identity.KeysFromEnv()
		return k, "from " + identity.KeysEnv, err
	}
	spec, path, err := devSecret(dir, "dev-identity.key", func() string { return identity.NewKey("dev-" + randomHex()[:8]) })
	if err != nil {
		return nil, "", err
	}
	k, err := identity.ParseKeys(spec)
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "omnimember:", err)
		os.Exit(1)
	}
}

// run starts the chain, replays the demo, prints the summary and the examples to out, and serves
// until ctx ends. Logs go to the data directory's omnimember.log.
func run(ctx context.Context, out io.Writer) error {
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
	s, devPOS, err := start(&cfg, log)
	if errors.Is(err, member.ErrUnkeyedStore) {
		return fmt.Errorf("%s was written by an older omnimember, before identities were keyed (its store and stream hold raw phone hashes): "+
			"remove it — `make clean` for .data; it holds development data only — and `make run` again", cfg.DataDir)
	}
	if err != nil {
		return err
	}
	defer s.Stop()
	base := "http://" + s.Addr
	fmt.Fprintf(out, "omnimember is running: HTTP %s, NATS %s, data in %s, logs in %s\n", base, natsURL(s, cfg.ExternalNATS), cfg.DataDir, logPath)
	if os.Getenv(pii.KeysEnv) == "" {
		fmt.Fprintf(out, "phones are sealed with a development key in %s (set %s in production)\n", filepath.Join(cfg.DataDir, "dev-pii.key"), pii.KeysEnv)
	}
	if os.Getenv(identity.KeysEnv) == "" {
		fmt.Fprintf(out, "identities are keyed with a development key in %s (set %s in production)\n", filepath.Join(cfg.DataDir, "dev-identity.key"), identity.KeysEnv)
	}
	client := demo.Client{BaseURL: base, SenderToken: cfg.Sender.Value, ReaderToken: cfg.Reader.Value}
	if cfg.Demo {
		if err := runDemo(ctx, s, client, out); err != nil {
			return err
		}
	}
	printTryIt(out, base, cfg)
	if devPOS {
		printTryWebhook(out, base, cfg.DataDir)
	}
	fmt.Fprintf(out, "\nMarketer console (segments, preview, send, progress; %s):\n  %s/console/#token=%s\n", campaign.MarketerTokenEnv, base, cfg.Marketer.Shown())
	go scheduleJobs(ctx, s, log)
	<-ctx.Done()
	fmt.Fprintln(out, "\nstopping: draining functions")
	return nil
}

// start loads the keys, tokens, rules and secrets and starts the stack; devPOS says whether the
// development webhook secrets were generated (then the examples sign a store's push with them).
func start(cfg *config, log *slog.Logger) (*stack.Stack, bool, error) {
	keys, keySource, err := devKeys(cfg.DataDir)
	if err != nil {
		return nil, false, err
	}
	idKeys, idKeySource, err := devIdentityKeys(cfg.DataDir)
	if err != nil {
		return nil, false, err
	}
	for _, t := range []*devToken{&cfg.Admin, &cfg.API, &cfg.Marketer, &cfg.Sender, &cfg.Reader} {
		if err := t.load(cfg.DataDir); err != nil {
			return nil, false, err
		}
	}
	readers, err := credential.ReadersFromEnv(os.Getenv)
	if err != nil {
		return nil, false, err
	}
	jsKey, err := jetStreamKey(cfg.DataDir)
	if err != nil {
		return nil, false, err
	}
	rules := loyalty.Example() // the shipped example; LOYALTY_RULES_FILE replaces it
	if os.Getenv(loyalty.RulesEnv) != "" {
		if rules, err = loyalty.FromEnv(); err != nil {
			return nil, false, err
		}
	}
	secrets, devPOS, err := webhookSecrets(cfg.DataDir)
	if err != nil {
		return nil, false, err
	}
	// The platforms that do not push (TMC, JD) and the 会员通 SPI, each on when its variables are set.
	polls, err := ingest.PollConfigFromEnv(os.Getenv)
	if err != nil {
		return nil, false, err
	}
	tmall, err := profile.TmallMemberFromEnv(os.Getenv, log)
	if err != nil {
		return nil, false, err
	}
	log.Info("starting omnimember (embedded)", "webhookSecrets", secrets, "pollers", polls, "tmallMember", tmall != nil, "runtime", cfg.Runtime,
		"readers", readers, "dataDir", cfg.DataDir, "piiKeys", keys, "piiKeySource", keySource, "identityKeys", idKeys, "identityKeySource", idKeySource)
	s, err := stack.Start(stack.Options{DataDir: cfg.DataDir, HTTPAddr: cfg.HTTPAddr, NATSPort: cfg.NATSPort, NATSURL: cfg.ExternalNATS,
		Keys: keys, IdentityKeys: idKeys, Runtime: &cfg.Runtime, Logger: log, JetStreamKey: jsKey, AdminToken: cfg.Admin.Value, APIToken: cfg.API.Value,
		MarketerToken: cfg.Marketer.Value, SenderToken: cfg.Sender.Value, ReaderToken: cfg.Reader.Value, Readers: readers,
		Loyalty: rules, WebhookSecrets: secrets, Pollers: polls.Pollers(log), TmallMember: tmall})
	return s, devPOS, err
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

func runDemo(ctx context.Context, s *stack.Stack, client demo.Client, out io.Writer) error {
	steps, err := demo.Steps(time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nReplaying %d webhooks from Tmall, Douyin, JD, WeChat, a store and the app:\n", len(steps))
	settle := func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return s.WaitQuiet(ctx)
	}
	if err := demo.Replay(ctx, client, steps, settle, out); err != nil {
		return err
	}
	fmt.Fprintln(out, "\nOne member per person, on every channel:")
	return demo.Summary(ctx, client, s.Store, out)
}

// webhookSecrets reads OMNIMEMBER_WEBHOOK_SECRETS(_FILE); when neither is set, development secrets
// for one store (store-demo) and one app (demo-app) are generated into the data directory, and
// devPOS says so (the examples then sign a store's push with the one in that file).
func webhookSecrets(dir string) (secrets ingest.Secrets, devPOS bool, err error) {
	secrets, err = ingest.SecretsFromEnv(os.Getenv)
	if err != nil {
		return nil, false, err
	}
	if os.Getenv(ingest.EnvWebhookSecrets) == "" && os.Getenv(ingest.EnvWebhookSecretsFile) == "" {
		raw, path, err := devSecret(dir, devWebhookSecretsFile, func() string {
			return fmt.Sprintf(`{"pos":{"store-demo":{"secret":%q}},"app":{"demo-app":{"secret":%q}}}`, randomHex(), randomHex())
		})
		if err != nil {
			return nil, false, err
		}
		if secrets, err = ingest.ParseSecrets([]byte(raw)); err != nil {
			return nil, false, fmt.Errorf("%s: %w", path, err)
		}
		devPOS = secrets["pos"]["store-demo"]["secret"] != ""
	}
	return secrets, devPOS, secrets.Check(ingest.Adapters(nil))
}

const devWebhookSecretsFile = "dev-webhook-secrets.json"

// printTryWebhook shows a signed native POS push; the shell reads store-demo's development secret
// from the data directory, so the secret itself is never printed.
func printTryWebhook(out io.Writer, base, dir string) {
	fmt.Fprintf(out, `
A store's native webhook, signed (functions/ingest/README.md; development secret in %[3]s):
  secret=$(sed -n 's/.*"store-demo":{"secret":"\([0-9a-f]*\)".*/\1/p' %[3]s)
  body='{"type":"order.paid","id":"till-1-0001","order":{"id":"SH-0001","amountFen":12900,"paidAt":"%[2]s"},"member":{"card":"C-0001"}}'
  ts=$(date +%%s); sig=$(printf '%%s\n%%s' "$ts" "$body" | openssl dgst -sha256 -hmac "$secret" | sed 's/^.* //')
  curl -s -X POST %[1]s/webhooks/pos -H 'X-Omnimember-Store: store-demo' -H "X-Omnimember-Timestamp: $ts" \
       -H "X-Omnimember-Signature: v1=$sig" -d "$body"
`, base, time.Now().UTC().Format(time.RFC3339), filepath.Join(dir, devWebhookSecretsFile))
}

// printTryIt shows each route with its credential: a generated development token as it is (it
// lives in the data directory), one given through the environment as $VARIABLE, never its value.
// The examples name members by the demo's platform ids, not by phone.
func printTryIt(out io.Writer, base string, cfg config) {
	fmt.Fprintf(out, `
Try it (Ctrl-C to stop):
  curl -s '%[1]s/v1/members:lookup?type=jd_pin&value=jd_zw_88' -H "Authorization: Bearer %[3]s"     # reader (%[8]s)
  curl -s -X POST %[1]s/v1/events -H "Authorization: Bearer %[4]s" -H 'Content-Type: application/cloudevents+json' -d '{
    "specversion":"1.0","type":"omnimember.order.paid","source":"jd/jd-shop-9","id":"my-order-1",
    "data":{"orderId":"JD-9001","channel":"jd","shopId":"jd-shop-9","amountFen":99900,
            "paidAt":"%[2]s","identities":[{"type":"jd_pin","value":"jd_zw_88"}]}}'     # sender (%[9]s)
  curl -s -X POST %[1]s/v1/members:merge-preview -H "Authorization: Bearer %[5]s" \
       -d '{"identities":[{"type":"jd_pin","value":"jd_zw_88"},{"type":"douyin_unionid","value":"dyu-ln"}]}'
  curl -s %[1]s/v1/quarantine -H "Authorization: Bearer %[5]s"     # operator endpoints (%[7]s)
  curl -s -X POST %[1]s/v1/members/<oneId>/redemptions -H "Authorization: Bearer %[6]s" \
       -d '{"idempotencyKey":"store-12-receipt-1","channel":"pos","points":100}'     # %[10]s
  curl -s -X PUT %[1]s/v1/members/<oneId>/consent -H "Authorization: Bearer %[6]s" \
       -d '{"channel":"outbox","consent":"granted"}'     # marketing is opt-in: a campaign reaches consented members (%[10]s)
`, base, time.Now().UTC().Format(time.RFC3339), cfg.Reader.Shown(), cfg.Sender.Shown(), cfg.Admin.Shown(), cfg.API.Shown(),
		runtime.AdminTokenEnv, readerTokenEnv, senderTokenEnv, runtime.APITokenEnv)
}
