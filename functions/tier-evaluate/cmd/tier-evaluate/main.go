// Command tier-evaluate runs the tier ladder alone: consumer of points events and merges.
package main

import (
	"context"
	"log/slog"
	"time"

	tierevaluate "github.com/omnimember/omnimember/functions/tier-evaluate"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store/backend"
	"github.com/omnimember/omnimember/shared/tier"
)

func main() { runtime.Main(tierevaluate.Name, run) }

// run reads the runtime, store and ladder (TIER_LADDER_FILE) configuration once, then serves.
func run() error {
	rt, err := runtime.FromEnv()
	if err != nil {
		return err
	}
	ladder, err := tier.FromEnv()
	if err != nil {
		return err
	}
	st, sc, err := backend.OpenFromEnv(context.Background(), member.Indexes)
	if err != nil {
		return err
	}
	defer st.Close()
	h := &tierevaluate.Handler{Store: st, Ladder: ladder, Now: time.Now}
	return runtime.Run(rt, slog.Group("tierEvaluate", "store", sc, "levels", len(ladder)), h.Function())
}
