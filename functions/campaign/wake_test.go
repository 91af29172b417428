package campaign

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/broker/brokertest"
	"github.com/omnimember/omnimember/shared/stream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// triggers lists the ids of the campaign.triggered events stored.
func (e *env) triggers() []string {
	var ids []string
	for _, ev := range brokertest.Events(e.t, e.js, stream.Events, events.CampaignTriggered) {
		ids = append(ids, ev.ID())
	}
	return ids
}

// TestScheduledCampaignWakesTheWorkerAtItsTime: created through the API alone (nothing consuming,
// no dispatcher polling), a scheduled campaign's trigger is stored by JetStream at its time — the
// lag that wakes the worker — and the worker started then sends it, triggered by the scheduler.
func TestScheduledCampaignWakesTheWorkerAtItsTime(t *testing.T) {
	e := newEnv(t)
	want := e.seedDormant(3)
	now := time.Now().UTC()
	e.clock.set(now)
	e.role = RoleAPI
	e.start()
	at := now.Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
	req := dormantCampaign()
	req.ScheduledAt = &at
	var c Campaign
	require.Equal(t, http.StatusCreated, e.call("POST", "/v1/campaigns", req, &c))
	require.Equal(t, StatusScheduled, c.Status)
	assert.NotContains(t, e.triggers(), c.ID, "got its trigger before its time, want none")

	require.Eventually(t, func() bool { return slices.Contains(e.triggers(), c.ID) }, 20*time.Second, 50*time.Millisecond,
		"its trigger never appeared at its time")
	assert.False(t, time.Now().Before(at), "got the trigger before scheduledAt")

	e.stop()
	e.clock.set(at)
	e.role = RoleWorker
	e.start()
	v := e.waitStatus(c.ID, StatusSent)
	assert.Equal(t, int64(len(want)), v.Progress.Targeted, "targeted, got, want")
	assert.Equal(t, scheduledBy, v.TriggeredBy)
}

// sendingLag is what KEDA's scaler reads of SendingConsumer: pending plus ack-pending.
func (e *env) sendingLag() int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cons, err := e.js.Consumer(ctx, stream.Events, SendingConsumer)
	if err != nil {
		return -1
	}
	info, err := cons.Info(ctx)
	require.NoError(e.t, err)
	return int(info.NumPending) + info.NumAckPending
}

// TestWorkerHoldsASendingCampaign: while a campaign fans out, its trigger is held on
// SendingConsumer (lag KEDA sees, keeping the worker up); once sent, the lag is gone and the
// worker may reach zero.
func TestWorkerHoldsASendingCampaign(t *testing.T) {
	e := newEnv(t)
	e.rates = Rates{"*": 10}
	e.chunk = 10
	e.seedDormant(30)
	e.start()
	var c Campaign
	require.Equal(t, http.StatusCreated, e.call("POST", "/v1/campaigns", dormantCampaign(), &c))
	require.Equal(t, http.StatusAccepted, e.call("POST", "/v1/campaigns/"+c.ID+":trigger", nil, nil))
	var held bool
	require.Eventually(t, func() bool {
		var v View
		e.call("GET", "/v1/campaigns/"+c.ID, nil, &v)
		held = held || (v.Status == StatusSending && e.sendingLag() >= 1)
		return v.Status == StatusSent
	}, 30*time.Second, 20*time.Millisecond)
	assert.True(t, held, "got no lag while sending, want the trigger held")
	require.Eventually(t, func() bool { return e.sendingLag() == 0 }, 10*time.Second, 20*time.Millisecond,
		"got lag %d after the campaign was sent, want 0", e.sendingLag())
}

// TestAPIRoleNeitherConsumesNorDispatches: the API half (a Knative Service) is woken by requests
// only; the worker half pulls and dispatches.
func TestAPIRoleNeitherConsumesNorDispatches(t *testing.T) {
	tests := []struct {
		role   string
		pulls  bool
		serves bool
	}{{RoleAPI, false, true}, {RoleWorker, true, true}, {RoleAll, true, true}}
	for _, tt := range tests {
		fn := (&Handler{Role: tt.role}).Function()
		assert.Equal(t, tt.pulls, len(fn.Consumes) > 0 && fn.Background != nil, "role %q: pulls and dispatches, got, want", tt.role)
		assert.Equal(t, tt.serves, fn.Routes != nil, "role %q: serves routes, got, want", tt.role)
	}
}
