// Command renormalise re-runs the current platform adapters over a window of the raw webhook
// archive (OMNIMEMBER_RAW) and publishes what they make, e.g. after a parser fix:
//
//	renormalise -platform pos -since 2026-11-01T00:00:00Z -until 2026-11-02T00:00:00Z [-dry-run] [-revision N]
//
// It reads NATS_URL (and the other runtime variables) and the webhook secrets like ingest.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/functions/ingest"
	"github.com/omnimember/omnimember/shared/runtime"
)

type flags struct {
	window   ingest.Window
	dryRun   bool
	revision int
}

func parseFlags(args []string) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("renormalise", flag.ContinueOnError)
	since := fs.String("since", "", "start of the window, RFC 3339 (required)")
	until := fs.String("until", "", "end of the window (exclusive), RFC 3339 (default: now)")
	fs.StringVar(&f.window.Platform, "platform", "", "platform to re-normalise (default: all)")
	fs.BoolVar(&f.dryRun, "dry-run", false, "count what would be published, publish nothing")
	fs.IntVar(&f.revision, "revision", 0, "0 reproduces the original event ids; N > 0 publishes corrected events under new ids")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	var err error
	if f.window.Since, err = time.Parse(time.RFC3339, *since); err != nil {
		return f, fmt.Errorf("-since %q: want RFC 3339: %w", *since, err)
	}
	f.window.Until = time.Now()
	if *until != "" {
		if f.window.Until, err = time.Parse(time.RFC3339, *until); err != nil {
			return f, fmt.Errorf("-until %q: want RFC 3339: %w", *until, err)
		}
	}
	if !f.window.Until.After(f.window.Since) || f.revision < 0 {
		return f, errors.New("want -since before -until and -revision >= 0")
	}
	return f, nil
}

func main() { runtime.Main("renormalise", run) }

func run() error {
	f, err := parseFlags(os.Args[1:])
	if err != nil {
		return err
	}
	cfg, err := runtime.FromEnv()
	if err != nil {
		return err
	}
	adapters := ingest.Adapters(&http.Client{Timeout: 10 * time.Second})
	if _, ok := adapters[f.window.Platform]; f.window.Platform != "" && !ok {
		return fmt.Errorf("-platform %q: no adapter of that name", f.window.Platform)
	}
	secrets, err := ingest.SecretsFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	edge, err := ingest.EdgeFromEnv(os.Getenv, cfg.Topology.DuplicateWindow)
	if err != nil {
		return err
	}
	log := runtime.NewLogger(cfg.LogLevel)
	ctx := context.Background()
	rt, err := runtime.New(ctx, cfg, nil, log)
	if err != nil {
		return err
	}
	defer rt.Close()
	pub := rt.Publisher(ingest.Name) // ingest's own message ids, so revision 0 is deduped like the original
	r := ingest.Renormalisation{Webhooks: &ingest.Webhooks{Adapters: adapters, Credentials: secrets, Log: log, Edge: edge},
		DryRun: f.dryRun, Revision: f.revision,
		Publish: func(ctx context.Context, evs []cloudevents.Event) error { return pub.Publish(ctx, nil, evs) }}
	log.Info("renormalising", "platform", f.window.Platform, "since", f.window.Since, "until", f.window.Until,
		"dryRun", f.dryRun, "revision", f.revision, slog.Any("webhookSecrets", secrets))
	rep, err := r.Run(ctx, rt.JetStream(), f.window)
	out, _ := json.Marshal(rep)
	fmt.Println(string(out))
	return err
}
