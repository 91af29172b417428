// Command tier-evaluate runs the tier ladder alone: consumer of points events and merges.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	tierevaluate "github.com/omnimember/omnimember/functions/tier-evaluate"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store/backend"
	"github.com/omnimember/omnimember/shared/tier"
)

type config struct {
	Runtime runtime.Config
	Store   backend.Config
	Ladder  tier.Ladder // TIER_LADDER_FILE: a JSON ladder [{"name":..,"minSpendFen":..,"benefits":[..]}], else the default
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
	c.Ladder, err = tier.FromEnv()
	return c, err
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "tier-evaluate:", err)
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
	h := &tierevaluate.Handler{Store: st, Ladder: cfg.Ladder, Now: time.Now}
	return runtime.Run(cfg.Runtime, slog.Group("tierEvaluate", "store", cfg.Store, "levels", len(cfg.Ladder)), h.Function())
}
