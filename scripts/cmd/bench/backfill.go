package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnimember/omnimember/scripts/backfill"
	"github.com/omnimember/omnimember/shared/broker"
	"github.com/omnimember/omnimember/shared/export"
	"github.com/omnimember/omnimember/shared/stream"
)

// backfillBench imports a generated Tmall export of n orders into JetStream (embedded server,
// default sync interval) as `make backfill` does, and prints rows and events per second.
func backfillBench(n int, raw float64) error {
	dir, err := os.MkdirTemp("", "omnimember-bench-backfill-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "tmall-orders.csv")
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := backfill.GenerateTmall(f, n, max(1, n/4)); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	srv, err := broker.Start(broker.Options{Dir: filepath.Join(dir, "nats")})
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	nc, err := srv.Connect("bench-backfill")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(8192))
	if err != nil {
		return err
	}
	ctx := context.Background()
	if err := stream.Ensure(ctx, js, stream.DefaultTopology()); err != nil {
		return err
	}
	formats, err := export.Builtin()
	if err != nil {
		return err
	}
	res, err := backfill.Import(ctx, js, backfill.Options{Path: path, Format: formats["tmall-orders"]})
	if err != nil {
		return err
	}
	eventsPerSec := float64(res.Events) / res.Took.Seconds()
	fmt.Printf("  %-58s %10.0f rows/s  (%d rows → %d events, %.0f events/s = %.1f%% of raw; bar 20 000 rows/s)\n",
		"backfill: Tmall export file → JetStream (checkpointed)", res.RowsPerSecond(), res.Rows, res.Events, eventsPerSec, 100*eventsPerSec/raw)
	return nil
}
