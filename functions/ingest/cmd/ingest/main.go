// Command ingest runs the ingest function alone: POST /v1/events, stored in JetStream before 202,
// and the platform pollers (Tmall/Taobao TMC) when configured.
package main

import (
	"log/slog"
	"os"

	"github.com/omnimember/omnimember/functions/ingest"
	"github.com/omnimember/omnimember/shared/runtime"
)

func main() {
	runtime.Main(ingest.Name, func() error {
		rt, err := runtime.FromEnv()
		if err != nil {
			return err
		}
		polls, err := ingest.PollConfigFromEnv(os.Getenv)
		if err != nil {
			return err
		}
		fn := ingest.WithPollers(ingest.Function(), polls.Pollers(runtime.NewLogger(rt.LogLevel))...)
		return runtime.Run(rt, slog.Group("ingest", "eventsPath", ingest.EventsPath, "pollers", polls), fn)
	})
}
