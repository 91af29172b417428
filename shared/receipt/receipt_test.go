package receipt_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/receipt"
	"github.com/omnimember/omnimember/shared/store"
	"github.com/omnimember/omnimember/shared/store/embedded"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAnInvalidOutputCommitsNothing is the finding: a negative-points event was
// dead-lettered while the store had already changed. Outputs are validated inside the
// transaction, so an invalid one aborts it: no effect and no receipt.
func TestAnInvalidOutputCommitsNothing(t *testing.T) {
	s, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"), embedded.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	in, err := events.Example(events.IdentityResolved)
	require.NoError(t, err)
	now := func() time.Time { return time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC) }
	bad := events.PointsAwardedData{OneID: "om_0123456789", OrderID: "o", Channel: "jd", ShopID: "s", Points: -40000,
		Balance: -2, OrderNetAmountFen: 0, PaidAt: now(), SourceID: in.ID()}
	out, err := events.New(events.PointsAwarded, "out-1", events.Source("test"), now(), bad)
	require.NoError(t, err)

	_, err = receipt.Once(context.Background(), s, "test", in, now, func(tx store.Tx) ([]cloudevents.Event, error) {
		if err := tx.Set("accounts", "om_0123456789", map[string]int64{"balance": -2}); err != nil {
			return nil, err
		}
		return []cloudevents.Event{out}, nil
	})
	var fe *events.FieldError
	require.True(t, errors.As(err, &fe), "got %v, want the output's bad field", err)
	assert.Equal(t, "data.points", fe.Field)
	var doc map[string]int64
	require.ErrorIs(t, s.Get(context.Background(), "accounts", "om_0123456789", &doc), store.ErrNotFound, "the effect did not commit")
	_, done, err := loadReceipt(s, in)
	require.NoError(t, err)
	assert.False(t, done, "no receipt either: a replay after a fix runs the handler again")
}

func loadReceipt(s store.Store, ev cloudevents.Event) ([]cloudevents.Event, bool, error) {
	var outs []cloudevents.Event
	var done bool
	err := s.RunTransaction(context.Background(), func(_ context.Context, tx store.Tx) error {
		var err error
		outs, done, err = receipt.Load(tx, "test", ev)
		return err
	})
	return outs, done, err
}
