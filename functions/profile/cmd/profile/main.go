// Command profile runs the read API alone: GET /v1/members/{oneId} and GET /v1/members:lookup.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/omnimember/omnimember/functions/profile"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store/backend"
	"github.com/omnimember/omnimember/shared/tier"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		os.Exit(1)
	}
}

func run() error {
	rt, err := runtime.FromEnv()
	if err != nil {
		return err
	}
	sc, err := backend.FromEnv()
	if err != nil {
		return err
	}
	st, err := sc.Open(context.Background())
	if err != nil {
		return err
	}
	defer st.Close()
	ladder, err := tier.FromEnv()
	if err != nil {
		return err
	}
	api := &profile.API{Store: st, Ladder: ladder}
	return runtime.Run(rt, slog.Group("profile", "store", sc), api.Function())
}
