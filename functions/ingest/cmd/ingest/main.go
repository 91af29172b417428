// Command ingest runs the ingest function alone: POST /v1/events and the native platform webhooks
// at /webhooks/{platform}, stored in JetStream before the answer, and the platform pollers
// (Tmall/Taobao TMC, JD) when configured.
package main

import (
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/omnimember/omnimember/functions/ingest"
	"github.com/omnimember/omnimember/shared/runtime"
)

func main() {
	runtime.Main(ingest.Name, func() error {
		rt, err := runtime.FromEnv()
		if err != nil {
			return err
		}
		adapters := ingest.Adapters(&http.Client{Timeout: 10 * time.Second})
		secrets, err := ingest.SecretsFromEnv(os.Getenv)
		if err != nil {
			return err
		}
		if err := secrets.Check(adapters); err != nil {
			return err
		}
		polls, err := ingest.PollConfigFromEnv(os.Getenv)
		if err != nil {
			return err
		}
		edge, err := ingest.EdgeFromEnv(os.Getenv, rt.Topology.DuplicateWindow)
		if err != nil {
			return err
		}
		wh := &ingest.Webhooks{Adapters: adapters, Credentials: secrets, MaxBodyBytes: rt.MaxBodyBytes, Now: time.Now,
			Log: runtime.NewLogger(rt.LogLevel).With("function", ingest.Name)}
		fn := ingest.WithPollers(ingest.Function(edge, wh), polls.Pollers(runtime.NewLogger(rt.LogLevel))...)
		return runtime.Run(rt, slog.Group(ingest.Name, "eventsPath", ingest.EventsPath, "edge", edge, "webhookSecrets", secrets,
			"pollers", polls), fn)
	})
}
