package backfill_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/omnimember/omnimember/scripts/backfill"
	"github.com/omnimember/omnimember/shared/broker"
	"github.com/omnimember/omnimember/shared/export"
	"github.com/omnimember/omnimember/shared/stream"
)

func jetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	srv, err := broker.Start(broker.Options{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect("backfill-test")
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	require.NoError(t, stream.Ensure(context.Background(), js, stream.DefaultTopology()))
	return js
}

func tmallFormat(t *testing.T) export.Format {
	formats, err := export.Builtin()
	require.NoError(t, err)
	return formats["tmall-orders"]
}

// expected converts the file independently of the importer: events and refused rows it must produce.
func expected(t *testing.T, path string, f export.Format) (evs, refused int) {
	file, err := os.Open(path)
	require.NoError(t, err)
	defer file.Close()
	rd, err := export.NewReader(file, f)
	require.NoError(t, err)
	c := export.Converter{Format: f}
	for {
		row, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return evs, refused
		}
		require.NoError(t, err)
		out, err := c.Events(row)
		if err != nil {
			refused++
			continue
		}
		evs += len(out)
	}
}

func stored(t *testing.T, js jetstream.JetStream) int {
	s, err := js.Stream(context.Background(), stream.Events)
	require.NoError(t, err)
	info, err := s.Info(context.Background())
	require.NoError(t, err)
	return int(info.State.Msgs)
}

// cancelOnFirstProgress interrupts the import at its first checkpoint, as Ctrl-C would.
type cancelOnFirstProgress struct{ cancel context.CancelFunc }

func (c cancelOnFirstProgress) Write(p []byte) (int, error) { c.cancel(); return len(p), nil }

func TestInterruptedImportResumesWithoutLosingOrDoubling(t *testing.T) {
	js := jetStream(t)
	path := filepath.Join(t.TempDir(), "tmall.csv")
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, backfill.GenerateTmall(f, 30_000, 5_000))
	require.NoError(t, f.Close())
	format := tmallFormat(t)
	wantEvents, wantRefused := expected(t, path, format)
	require.Positive(t, wantRefused, "the generated file has unpaid orders")

	ctx, cancel := context.WithCancel(context.Background())
	first, err := backfill.Import(ctx, js, backfill.Options{Path: path, Format: format, Every: 1, Progress: cancelOnFirstProgress{cancel}})
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, first.Complete)
	require.Less(t, first.Rows, 30_000, "interrupted before the end")

	second, err := backfill.Import(context.Background(), js, backfill.Options{Path: path, Format: format})
	require.NoError(t, err)
	assert.True(t, second.Complete)
	assert.Positive(t, second.Resumed, "the acknowledged rows were skipped")
	assert.Equal(t, 30_000, second.Resumed+second.Rows, "every row read once after the checkpoint")
	assert.Equal(t, wantEvents, stored(t, js), "stored events: got, want (none lost, none doubled)")
	assert.Equal(t, wantRefused, countLines(t, path+".rejects.jsonl"), "refused rows listed once each")

	again, err := backfill.Import(context.Background(), js, backfill.Options{Path: path, Format: format})
	require.NoError(t, err)
	assert.Zero(t, again.Rows, "a finished file is not read again")

	require.NoError(t, os.Remove(path+".progress"))
	fresh, err := backfill.Import(context.Background(), js, backfill.Options{Path: path, Format: format})
	require.NoError(t, err)
	assert.Equal(t, wantEvents, fresh.Events)
	assert.Equal(t, wantEvents, stored(t, js), "re-published events carry the same message ids: the stream keeps one of each")
}

func TestCheckpointOfAnotherFileIsRefused(t *testing.T) {
	js := jetStream(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "orders.csv")
	require.NoError(t, os.WriteFile(path, []byte("订单编号,买家实际支付金额,订单付款时间,联系手机,店铺ID\n1,1.00,2026-01-01 00:00:00,13812345678,s\n"), 0o600))
	_, err := backfill.Import(context.Background(), js, backfill.Options{Path: path, Format: tmallFormat(t)})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, []byte("订单编号,买家实际支付金额,订单付款时间,联系手机,店铺ID\n2,2.00,2026-01-01 00:00:00,13812345678,s\n"), 0o600))
	_, err = backfill.Import(context.Background(), js, backfill.Options{Path: path, Format: tmallFormat(t)})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "belongs to another version")
}

func countLines(t *testing.T, path string) int {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	n := 0
	for sc := bufio.NewScanner(f); sc.Scan(); {
		if strings.TrimSpace(sc.Text()) != "" {
			n++
		}
	}
	return n
}
