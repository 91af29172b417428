package stack

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"sync"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/functions/ingest"
	"github.com/omnimember/omnimember/functions/profile"
	"github.com/omnimember/omnimember/shared/broker/brokertest"
	"github.com/omnimember/omnimember/shared/stream"
	"github.com/stretchr/testify/require"
)

// recordingBroker remembers which event ids JetStream acknowledged, so a platform server can check
// that a message is confirmed only after its events were stored.
type recordingBroker struct {
	ingest.Broker
	mu     sync.Mutex
	stored map[string]bool
}

func newRecordingBroker(s *Stack) *recordingBroker {
	return &recordingBroker{Broker: s.Runtime.Publisher(ingest.Name), stored: map[string]bool{}}
}

func (b *recordingBroker) Publish(ctx context.Context, cause *cloudevents.Event, evs []cloudevents.Event) error {
	if err := b.Broker.Publish(ctx, cause, evs); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, ev := range evs {
		b.stored[ev.ID()] = true
	}
	return nil
}

func (b *recordingBroker) Stored(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stored[id]
}

// lookupIdentity reads a member's profile by any identity.
func lookupIdentity(t *testing.T, s *Stack, id events.Identity) profile.Profile {
	t.Helper()
	q := url.Values{"type": {id.Type}, "value": {id.Value}, "scope": {id.Scope}}
	resp := readerGet(t, s, "/v1/members:lookup?"+q.Encode())
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "lookup %s", id.Type)
	var p profile.Profile
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&p))
	return p
}

// stored counts the events of a type in the stream.
func stored(t *testing.T, s *Stack, eventType string) int {
	return len(brokertest.Messages(t, s.Runtime.JetStream(), stream.Events, events.Subject(eventType)))
}
