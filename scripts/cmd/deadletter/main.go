// Command deadletter lists or replays the events functions gave up on.
//
//	deadletter [-function points-award] list
//	deadletter [-function points-award] replay
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/stream"
)

func main() {
	function := flag.String("function", "", "only this function's dead letters (default: all)")
	url := flag.String("nats", envOr("NATS_URL", nats.DefaultURL), "NATS server URL (NATS_URL)")
	flag.Parse()
	if err := run(*url, *function, flag.Arg(0)); err != nil {
		fmt.Fprintln(os.Stderr, "deadletter:", err)
		os.Exit(1)
	}
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func run(url, function, command string) error {
	cfg, err := runtime.FromEnv() // NATS_NKEY or NATS_CREDS, NATS_CA, NATS_INBOX_PREFIX: the operator's user in deploy/
	if err != nil {
		return err
	}
	opts, err := cfg.NATSOptions("omnimember-deadletter")
	if err != nil {
		return err
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	switch command {
	case "list", "":
		dead, err := stream.ListDeadLetters(ctx, js, function)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "SEQ\tFUNCTION\tTYPE\tEVENT\tDELIVERIES\tAT\tREASON")
		for _, d := range dead {
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%d\t%s\t%s\n", d.Sequence, d.Function, d.EventType, d.EventID, d.Deliveries, d.At.Format(time.RFC3339), d.Reason)
		}
		return w.Flush()
	case "replay":
		n, err := stream.ReplayDeadLetters(ctx, js, function)
		fmt.Printf("replayed %d dead letters\n", n)
		return err
	}
	return fmt.Errorf("unknown command %q: want list or replay", command)
}
