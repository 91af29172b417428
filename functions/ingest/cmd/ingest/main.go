// Command ingest runs the ingest function alone: POST /v1/events, stored in JetStream before 202.
package main

import (
	"log/slog"

	"github.com/omnimember/omnimember/functions/ingest"
	"github.com/omnimember/omnimember/shared/runtime"
)

func main() {
	runtime.Main(ingest.Name, func() error {
		rt, err := runtime.FromEnv()
		if err != nil {
			return err
		}
		return runtime.Run(rt, slog.String("eventsPath", ingest.EventsPath), ingest.Function())
	})
}
