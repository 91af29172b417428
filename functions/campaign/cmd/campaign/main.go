// Command campaign runs the campaign function alone: the marketer console and API, the fan-out of
// triggered campaigns, the scheduler, and the count of notify's outcomes.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/omnimember/omnimember/functions/campaign"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store/backend"
)

func main() { runtime.Main(campaign.Name, run) }

// run reads the runtime and store configuration, SEGMENTS_FILE, CAMPAIGN_RATES, CAMPAIGN_BRAND,
// CAMPAIGN_POLL and the tokens once, then serves.
func run() error {
	rt, err := runtime.FromEnv()
	if err != nil {
		return err
	}
	cfg, err := campaign.ConfigFromEnv()
	if err != nil {
		return err
	}
	st, sc, err := backend.OpenFromEnv(context.Background(), campaign.StoreIndexes(member.Indexes))
	if err != nil {
		return err
	}
	defer st.Close()
	h := &campaign.Handler{Store: st, Segments: cfg.Segments, Templates: cfg.Templates, Rates: cfg.Rates,
		Brand: cfg.Brand, PollEvery: cfg.Poll, Role: cfg.Role, Now: time.Now, Log: runtime.NewLogger(rt.LogLevel),
		Token: os.Getenv(campaign.MarketerTokenEnv), AdminToken: os.Getenv(runtime.AdminTokenEnv)}
	settings := slog.Group("campaign", "store", sc, "segmentsVersion", cfg.Segments.Version,
		"rates", fmt.Sprint(cfg.Rates), "brand", cfg.Brand, "poll", cfg.Poll.String(), "role", cfg.Role,
		"console", h.Token != "", "scheduler", h.AdminToken != "")
	return runtime.Run(rt, settings, h.Function())
}
