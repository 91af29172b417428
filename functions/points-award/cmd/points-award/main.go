// Command points-award runs the points ledger alone: consumer of identity.resolved and member.merged.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	pointsaward "github.com/omnimember/omnimember/functions/points-award"
	"github.com/omnimember/omnimember/shared/ledger"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store/backend"
)

type config struct {
	Runtime     runtime.Config
	Store       backend.Config
	FenPerPoint int64 // POINTS_FEN_PER_POINT: fen that earn one point (default 100: 1 yuan = 1 point)
}

func loadConfig() (config, error) {
	c := config{FenPerPoint: ledger.DefaultFenPerPoint}
	var err error
	if c.Runtime, err = runtime.FromEnv(); err != nil {
		return c, err
	}
	if c.Store, err = backend.FromEnv(); err != nil {
		return c, err
	}
	if v := os.Getenv("POINTS_FEN_PER_POINT"); v != "" {
		if c.FenPerPoint, err = strconv.ParseInt(v, 10, 64); err != nil || c.FenPerPoint < 1 {
			return c, fmt.Errorf("POINTS_FEN_PER_POINT %q: want a positive integer", v)
		}
	}
	return c, nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "points-award:", err)
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
	h := &pointsaward.Handler{Store: st, FenPerPoint: cfg.FenPerPoint, Now: time.Now}
	return runtime.Run(cfg.Runtime, slog.Group("pointsAward", "store", cfg.Store, "fenPerPoint", cfg.FenPerPoint), h.Function())
}
