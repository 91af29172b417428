// Command profile runs the read API alone: GET /v1/members/{oneId} and GET /v1/members:lookup.
package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/omnimember/omnimember/functions/profile"
	"github.com/omnimember/omnimember/shared/loyalty"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store/backend"
)

func main() { runtime.Main(profile.Name, run) }

func run() error {
	rt, err := runtime.FromEnv()
	if err != nil {
		return err
	}
	rules, err := loyalty.FromEnv() // the ladder lives in the loyalty rules
	if err != nil {
		return err
	}
	ladder := rules.Ladder()
	st, sc, err := backend.OpenFromEnv(context.Background(), member.Indexes)
	if err != nil {
		return err
	}
	defer st.Close()
	api := &profile.API{Store: st, Ladder: ladder, Now: time.Now}
	return runtime.Run(rt, slog.Group("profile", "store", sc), api.Function())
}
