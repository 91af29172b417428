package stack

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/omnimember/omnimember/scripts/backfill"
	"github.com/omnimember/omnimember/shared/export"
)

// TestBackfilledHistoryReachesProfiles imports a Tmall export into a running chain and reads the
// members back; importing the file again (checkpoint removed) changes nothing.
func TestBackfilledHistoryReachesProfiles(t *testing.T) {
	s := start(t, testOptions(t, t.TempDir()))
	raw, err := os.ReadFile("../../shared/export/testdata/tmall-orders.csv")
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "tmall-orders.csv")
	require.NoError(t, os.WriteFile(path, raw, 0o600))
	nc, err := s.Broker.Connect("backfill")
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	formats, err := export.Builtin()
	require.NoError(t, err)

	check := func() {
		waitQuiet(t, s)
		tests := []struct {
			phone         string
			points, count int64
			netFen        int64
		}{
			{"13812345678", 1299, 1, 129900},
			{"13700002222", 70, 1, 7000}, // ¥100 paid, ¥30 refunded
		}
		for _, tt := range tests {
			p := lookup(t, s, "phone", tt.phone)
			assert.Equal(t, tt.points, p.Points.Balance, "%s points: got, want", tt.phone)
			assert.Equal(t, tt.count, p.Orders.Count, "%s orders", tt.phone)
			assert.Equal(t, tt.netFen, p.Orders.NetAmountFen, "%s net", tt.phone)
		}
	}
	res, err := backfill.Import(context.Background(), js, backfill.Options{Path: path, Format: formats["tmall-orders"]})
	require.NoError(t, err)
	assert.Equal(t, 2, res.Refused, "the masked-phone order (nobody to credit) and the unpaid one")
	check()

	require.NoError(t, os.Remove(path+".progress"))
	_, err = backfill.Import(context.Background(), js, backfill.Options{Path: path, Format: formats["tmall-orders"]})
	require.NoError(t, err)
	check()
}
