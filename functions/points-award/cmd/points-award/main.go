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
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store/backend"
)

func main() { runtime.Main(pointsaward.Name, run) }

// positive reads a positive integer variable, or returns fallback when it is unset.
func positive(name string, fallback int64) (int64, error) {
	v := os.Getenv(name)
	if v == "" {
		return fallback, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%s %q: want a positive integer", name, v)
	}
	return n, nil
}

func run() error {
	rt, err := runtime.FromEnv()
	if err != nil {
		return err
	}
	rate, err := positive("POINTS_FEN_PER_POINT", ledger.DefaultFenPerPoint) // fen that earn one point
	if err != nil {
		return err
	}
	months, err := positive("POINTS_EXPIRY_MONTHS", 12) // lots expire this long after payment
	if err != nil {
		return err
	}
	st, sc, err := backend.OpenFromEnv(context.Background(), member.Indexes)
	if err != nil {
		return err
	}
	defer st.Close()
	h := &pointsaward.Handler{Store: st, FenPerPoint: rate, ExpiryMonths: int(months), Now: time.Now}
	return runtime.Run(rt, slog.Group("pointsAward", "store", sc, "fenPerPoint", rate, "expiryMonths", months), h.Function())
}
