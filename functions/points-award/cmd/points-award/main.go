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

// fenPerPoint reads POINTS_FEN_PER_POINT: fen that earn one point (default 100: 1 yuan = 1 point).
func fenPerPoint() (int64, error) {
	v := os.Getenv("POINTS_FEN_PER_POINT")
	if v == "" {
		return ledger.DefaultFenPerPoint, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("POINTS_FEN_PER_POINT %q: want a positive integer", v)
	}
	return n, nil
}

func run() error {
	rt, err := runtime.FromEnv()
	if err != nil {
		return err
	}
	rate, err := fenPerPoint()
	if err != nil {
		return err
	}
	st, sc, err := backend.OpenFromEnv(context.Background(), member.Indexes)
	if err != nil {
		return err
	}
	defer st.Close()
	h := &pointsaward.Handler{Store: st, FenPerPoint: rate, Now: time.Now}
	return runtime.Run(rt, slog.Group("pointsAward", "store", sc, "fenPerPoint", rate), h.Function())
}
