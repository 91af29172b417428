// Command match runs the match function alone: JetStream consumer of channel events, writer of members.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/omnimember/omnimember/functions/match"
	"github.com/omnimember/omnimember/shared/pii"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store/backend"
)

type config struct {
	Runtime runtime.Config
	Store   backend.Config
	Keys    *pii.Keyring
}

func loadConfig() (config, error) {
	var c config
	var err error
	if c.Runtime, err = runtime.FromEnv(); err != nil {
		return c, err
	}
	if c.Store, err = backend.FromEnv(); err != nil {
		return c, err
	}
	c.Keys, err = pii.FromEnv()
	return c, err
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "match:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	st, err := cfg.Store.Open(context.Background())
	if err != nil {
		return err
	}
	defer st.Close()
	h := &match.Handler{Store: st, Keys: cfg.Keys, Now: time.Now}
	return runtime.Run(cfg.Runtime, slog.Group("match", "store", cfg.Store, "piiKeys", cfg.Keys), h.Function())
}
