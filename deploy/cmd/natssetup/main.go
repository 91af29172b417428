// Command natssetup is the deploy-time job (base/nats-setup.yaml) that makes omnimember's streams
// and every function's durable consumer before any function runs, so that KEDA sees a chained
// function's lag from the first event. It reads the runtime's variables (NATS_URL, NATS_NKEY,
// NATS_CA, NATS_INBOX_PREFIX, OMNIMEMBER_STREAM_REPLICAS, OMNIMEMBER_ACK_WAIT, …) and retries until
// NATS answers or -wait has passed, since it may start before the servers are up.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnimember/omnimember/deploy/natsauth"
	"github.com/omnimember/omnimember/deploy/natssetup"
	"github.com/omnimember/omnimember/shared/runtime"
)

func main() {
	wait := flag.Duration("wait", 10*time.Minute, "how long to retry while NATS is not up yet")
	flag.Parse()
	cfg, err := runtime.FromEnv()
	if err == nil {
		err = retry(*wait, runtime.NewLogger(cfg.LogLevel), func(ctx context.Context) error { return setup(ctx, cfg) })
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "natssetup:", err)
		os.Exit(1)
	}
}

// retry runs attempt until it succeeds or wait has passed, doubling the pause up to 30 s.
func retry(wait time.Duration, log *slog.Logger, attempt func(context.Context) error) error {
	deadline := time.Now().Add(wait)
	pause := time.Second
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := attempt(ctx)
		cancel()
		if err == nil || time.Now().Add(pause).After(deadline) {
			return err
		}
		log.Warn("NATS not ready; retrying", "error", err, "in", pause.String())
		time.Sleep(pause)
		pause = min(2*pause, 30*time.Second)
	}
}

func setup(ctx context.Context, cfg runtime.Config) error {
	opts, err := cfg.NATSOptions(natsauth.Setup)
	if err != nil {
		return err
	}
	nc, err := nats.Connect(cfg.NATSURL, append(opts, nats.MaxReconnects(0))...)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	made, err := natssetup.Run(ctx, js, cfg)
	if err != nil {
		return err
	}
	fmt.Printf("streams ready; consumers %v ready (replicas %d)\n", made, cfg.Topology.Replicas)
	return nil
}
