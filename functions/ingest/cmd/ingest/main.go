// Command ingest runs the ingest function alone: POST /v1/events, stored in JetStream before 202.
package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/omnimember/omnimember/functions/ingest"
	"github.com/omnimember/omnimember/shared/runtime"
)

func main() {
	cfg, err := runtime.FromEnv()
	if err == nil {
		err = runtime.Run(cfg, slog.String("ingest", ingest.EventsPath), ingest.Function())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ingest:", err)
		os.Exit(1)
	}
}
