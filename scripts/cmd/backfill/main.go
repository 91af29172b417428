// Command backfill imports a platform's historical export (orders of Tmall, Douyin or JD, a store
// system's member list; CSV or JSON lines) into the chain through JetStream, with a progress bar.
// Interrupted, it resumes from its checkpoint; run again on the same file, it changes nothing.
//
//	backfill -format tmall-orders -file 2025-orders.csv [-shop tm-shop-1]
//	backfill -generate 1000000 -file /tmp/tmall-orders.csv      # a realistic test file
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnimember/omnimember/scripts/backfill"
	"github.com/omnimember/omnimember/shared/export"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/stream"
)

// config is the command's settings, checked once.
type config struct {
	url, file, format, formatsFile, shop, data string
	generate, window                           int
}

func main() {
	var c config
	flag.StringVar(&c.url, "nats", envOr("NATS_URL", nats.DefaultURL), "NATS server URL (NATS_URL)")
	flag.StringVar(&c.file, "file", "", "the export file (CSV with a header row, or JSON lines)")
	flag.StringVar(&c.format, "format", "", "the export's format: tmall-orders, douyin-orders, jd-orders, pos-members")
	flag.StringVar(&c.formatsFile, "formats", "", "a formats file of your own (see shared/export/formats.yaml)")
	flag.StringVar(&c.shop, "shop", "", "shop id for rows without one")
	flag.IntVar(&c.window, "window", 8192, "publishes awaiting acknowledgement at once")
	flag.StringVar(&c.data, "data", envOr("OMNIMEMBER_DATA", ".data"), "make run's data directory: its development identity key names member lists' events when OMNIMEMBER_IDENTITY_KEYS is unset")
	flag.IntVar(&c.generate, "generate", 0, "write this many generated Tmall orders to -file instead of importing")
	flag.Parse()
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "backfill:", err)
		os.Exit(1)
	}
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func run(c config) error {
	if c.file == "" {
		return fmt.Errorf("-file is required")
	}
	if c.generate > 0 {
		return generate(c.file, c.generate)
	}
	format, err := loadFormat(c.formatsFile, c.format)
	if err != nil {
		return err
	}
	var keys *identity.Keyer
	if format.Kind == export.KindMembers {
		if keys, err = identityKeys(c.data); err != nil {
			return err
		}
	}
	cfg, err := runtime.FromEnv() // NATS_NKEY or NATS_CREDS, NATS_CA, NATS_INBOX_PREFIX: the operator's user in deploy/
	if err != nil {
		return err
	}
	opts, err := cfg.NATSOptions("omnimember-backfill")
	if err != nil {
		return err
	}
	nc, err := nats.Connect(c.url, opts...)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", c.url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(c.window))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := js.Stream(ctx, stream.Events); err != nil {
		return fmt.Errorf("stream %s (is the chain running? make run starts it): %w", stream.Events, err)
	}
	res, err := backfill.Import(ctx, js, backfill.Options{Path: c.file, Format: format, Shop: c.shop, Keys: keys, Window: c.window, Progress: os.Stderr})
	fmt.Printf("%d rows imported (%d events, %d refused → %s.rejects.jsonl, %d already done) in %s: %.0f rows/s\n",
		res.Rows, res.Events, res.Refused, c.file, res.Resumed, res.Took.Round(1e7), res.RowsPerSecond())
	return err
}

// identityKeys are the chain's identity keys (a member row's event is named by its keyed identity):
// OMNIMEMBER_IDENTITY_KEYS, else the development key make run keeps in its data directory.
func identityKeys(data string) (*identity.Keyer, error) {
	if os.Getenv(identity.KeysEnv) != "" {
		return identity.KeysFromEnv()
	}
	raw, err := os.ReadFile(filepath.Join(data, "dev-identity.key"))
	if err != nil {
		return nil, fmt.Errorf("a member list needs the chain's identity keys: set %s (or run make run first, whose development key is in %s): %w",
			identity.KeysEnv, data, err)
	}
	return identity.ParseKeys(strings.TrimSpace(string(raw)))
}

func loadFormat(formatsFile, name string) (export.Format, error) {
	formats, err := export.Builtin()
	if formatsFile != "" {
		raw, rerr := os.ReadFile(formatsFile)
		if rerr != nil {
			return export.Format{}, rerr
		}
		formats, err = export.ParseFormats(raw)
	}
	if err != nil {
		return export.Format{}, err
	}
	f, ok := formats[name]
	if !ok {
		return export.Format{}, fmt.Errorf("-format %q: want one of %s", name, strings.Join(export.Names(formats), ", "))
	}
	return f, nil
}

func generate(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := backfill.GenerateTmall(f, n, max(1, n/4)); err != nil {
		f.Close()
		return err
	}
	fmt.Printf("wrote %d Tmall orders to %s\n", n, path)
	return f.Close()
}
