// Command tier-evaluate runs the tier ladder alone: consumer of points events, merges and splits;
// the evaluation job over HTTP.
package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	tierevaluate "github.com/omnimember/omnimember/functions/tier-evaluate"
	"github.com/omnimember/omnimember/shared/loyalty"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store/backend"
)

func main() { runtime.Main(tierevaluate.Name, run) }

// run reads the runtime, store and loyalty rules (LOYALTY_RULES_FILE: the ladder, its basis, grace
// and evaluation day) and the operator token once, then serves.
func run() error {
	rt, err := runtime.FromEnv()
	if err != nil {
		return err
	}
	rules, err := loyalty.FromEnv()
	if err != nil {
		return err
	}
	st, sc, err := backend.OpenFromEnv(context.Background(), member.Indexes)
	if err != nil {
		return err
	}
	defer st.Close()
	h := &tierevaluate.Handler{Store: st, Rules: rules, Now: time.Now, AdminToken: os.Getenv(runtime.AdminTokenEnv)}
	return runtime.Run(rt, slog.Group("tierEvaluate", "store", sc, "rulesVersion", rules.Version, "basis", rules.Tiers.Basis), h.Function())
}
