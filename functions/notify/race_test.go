package notify

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/store"
	"github.com/omnimember/omnimember/shared/store/embedded"
	"github.com/stretchr/testify/require"
)

// lostRace lets the first transaction run once, then has another delivery change what it read
// before it commits, so the store runs it again (as a conflict does): the interleaving of two
// deliveries of one request, made deterministic.
type lostRace struct {
	Store
	meanwhile func(ctx context.Context) error
	raced     bool
}

var errRaced = errors.New("another delivery committed first")

func (s *lostRace) RunTransaction(ctx context.Context, fn func(context.Context, store.Tx) error) error {
	if s.raced {
		return s.Store.RunTransaction(ctx, fn)
	}
	s.raced = true
	first := true
	return s.Store.RunTransaction(ctx, func(ctx context.Context, tx store.Tx) error {
		if err := fn(ctx, tx); err != nil || !first {
			return err
		}
		first = false
		if err := s.meanwhile(ctx); err != nil {
			return err
		}
		return errRaced // on reads that have since changed: the embedded store runs fn again
	})
}

// TestDeliveryThatLosesTheRaceDoesNotSendAgain: a delivery admitted on its first run, whose
// transaction runs again and finds the notification already sent by another delivery, reports
// the outcome and does not call the provider a second time. (It did: the first run's "admitted"
// outlived it.)
func TestDeliveryThatLosesTheRaceDoesNotSendAgain(t *testing.T) {
	st, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"), embedded.Options{NoSync: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	rc := &receiver{secret: []byte("whsec_0123456789abcdef"), now: time.Now(), seen: map[string]int{}}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	ev := channelRequest(t, "r-race", "webhook", map[string]string{"text": "双11会员日"})
	race := &lostRace{Store: st}
	h := &Handler{Store: race, Channel: "webhook", Locale: "zh-CN", Templates: DefaultTemplates(), MaxAttempts: 3, Now: time.Now,
		Sinks: map[string]any{"webhook": Webhook{URL: srv.URL, Secret: rc.secret, Client: srv.Client(), Now: time.Now}}}
	ns, err := h.build(context.Background(), ev)
	require.NoError(t, err)
	require.Len(t, ns, 1)
	race.meanwhile = func(ctx context.Context) error {
		return st.Set(ctx, member.Notifications, ns[0].ID, record{Notification: ns[0], Status: "sent", Attempts: 1, Updated: time.Now()})
	}

	outs, err := h.Handle(context.Background(), ev)
	require.NoError(t, err)
	require.True(t, race.raced, "the race was run")
	require.Len(t, outs, 1)
	require.Equal(t, events.NotificationSent, outs[0].Type(), "got %s, want the other delivery's outcome reported", outs[0].Type())
	rc.mu.Lock()
	defer rc.mu.Unlock()
	require.Empty(t, rc.seen, "got provider calls, want none: the other delivery sent it")
}
