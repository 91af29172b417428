// Package brokertest gives tests a real NATS JetStream server in-process, on a temp dir, and
// helpers to read what landed in a stream.
package brokertest

import (
	"context"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/omnimember/omnimember/shared/broker"
	"github.com/omnimember/omnimember/shared/cenats"
	"github.com/stretchr/testify/require"
)

// Start runs an embedded server for the test, listening on a free port, and stops it at cleanup.
func Start(t testing.TB) *broker.Server {
	t.Helper()
	srv, err := broker.Start(broker.Options{Dir: t.TempDir(), Port: -1})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	return srv
}

// Connect opens a client connection closed at cleanup.
func Connect(t testing.TB, srv *broker.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(srv.URL(), nats.MaxReconnects(-1))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

// Messages returns every message currently stored in streamName on the subject filter.
func Messages(t testing.TB, js jetstream.JetStream, streamName, filter string) []jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, streamName, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	require.NoError(t, err)
	var out []jetstream.Msg
	for {
		info, err := cons.Info(ctx)
		require.NoError(t, err)
		if info.NumPending == 0 && uint64(len(out)) >= info.Delivered.Consumer {
			return out
		}
		batch, err := cons.Fetch(int(min(info.NumPending, 500)), jetstream.FetchMaxWait(5*time.Second))
		require.NoError(t, err)
		for m := range batch.Messages() {
			out = append(out, m)
		}
		require.NoError(t, batch.Error())
	}
}

// Events decodes every CloudEvent stored on the subject filter of streamName.
func Events(t testing.TB, js jetstream.JetStream, streamName, filter string) []cloudevents.Event {
	t.Helper()
	msgs := Messages(t, js, streamName, filter)
	out := make([]cloudevents.Event, len(msgs))
	for i, m := range msgs {
		ev, err := cenats.FromMsg(m.Headers(), m.Data())
		require.NoError(t, err)
		out[i] = ev
	}
	return out
}

// Publish stores ev on its subject (binary mode) and waits for the stream's ack.
func Publish(t testing.TB, js jetstream.JetStream, subject string, ev cloudevents.Event, opts ...jetstream.PublishOpt) {
	t.Helper()
	msg, err := cenats.ToMsg(subject, ev)
	require.NoError(t, err)
	_, err = js.PublishMsg(context.Background(), msg, opts...)
	require.NoError(t, err)
}
