package stream

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/omnimember/omnimember/shared/broker/brokertest"
	"github.com/stretchr/testify/require"
)

// TestEnsureUpgradesAnExistingStream: a store directory from before atomic batches (make run's
// .data) gets allow_atomic on its events stream at the next start, its messages kept.
func TestEnsureUpgradesAnExistingStream(t *testing.T) {
	ctx := context.Background()
	js, err := jetstream.New(brokertest.Connect(t, brokertest.Start(t)))
	require.NoError(t, err)
	topology := DefaultTopology()
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: Events, Subjects: Subjects(), Storage: jetstream.FileStorage,
		Duplicates: topology.DuplicateWindow, MaxAge: topology.MaxAge})
	require.NoError(t, err)
	_, err = js.Publish(ctx, Subjects()[0], []byte(`{}`))
	require.NoError(t, err)

	require.NoError(t, Ensure(ctx, js, topology))
	require.NoError(t, Ensure(ctx, js, topology), "a second run changes nothing")
	str, err := js.Stream(ctx, Events)
	require.NoError(t, err)
	info, err := str.Info(ctx)
	require.NoError(t, err)
	require.True(t, info.Config.AllowAtomicPublish, "got allow_atomic off, want it on after Ensure")
	require.Equal(t, uint64(1), info.State.Msgs, "got messages, want the one stored before")
}
