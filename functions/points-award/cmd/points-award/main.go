// Command points-award runs the points ledger alone: consumer of identity.resolved, member.merged,
// member.split and campaign.rewarded; redemptions and the expiry job over HTTP.
package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	pointsaward "github.com/omnimember/omnimember/functions/points-award"
	"github.com/omnimember/omnimember/shared/loyalty"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store/backend"
)

func main() { runtime.Main(pointsaward.Name, run) }

// run reads the runtime, store and loyalty rules (LOYALTY_RULES_FILE) configuration and the tokens
// (OMNIMEMBER_API_TOKEN for redemptions, OMNIMEMBER_ADMIN_TOKEN for the expiry job) once, then serves.
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
	h := &pointsaward.Handler{Store: st, Rules: rules, Now: time.Now,
		APIToken: os.Getenv(runtime.APITokenEnv), AdminToken: os.Getenv(runtime.AdminTokenEnv)}
	settings := slog.Group("pointsAward", "store", sc, "rulesVersion", rules.Version, "redemptions", h.APIToken != "")
	return runtime.Run(rt, settings, h.Function())
}
