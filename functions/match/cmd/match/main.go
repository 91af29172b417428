// Command match runs the match function alone: JetStream consumer of channel events, writer of members.
package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/omnimember/omnimember/functions/match"
	"github.com/omnimember/omnimember/shared/pii"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store/backend"
)

func main() { runtime.Main(match.Name, run) }

// run reads the configuration — runtime (NATS_URL, ...), store (STORE, ...) and the PII keyring
// (OMNIMEMBER_PII_KEYS) — once, then serves.
func run() error {
	rt, err := runtime.FromEnv()
	if err != nil {
		return err
	}
	keys, err := pii.FromEnv()
	if err != nil {
		return err
	}
	st, sc, err := backend.OpenFromEnv(context.Background())
	if err != nil {
		return err
	}
	defer st.Close()
	h := &match.Handler{Store: st, Keys: keys, Now: time.Now}
	return runtime.Run(rt, slog.Group("match", "store", sc, "piiKeys", keys), h.Function())
}
