package stack

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/scripts/backfill"
	"github.com/omnimember/omnimember/scripts/demo"
	"github.com/omnimember/omnimember/shared/cenats"
	"github.com/omnimember/omnimember/shared/loyalty"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLoyaltyThroughTheChain runs the shipped example rules end to end: a store order earns 1.2x,
// a redemption on another channel spends it, the expiry job expires an old order's lot and the
// member is told; every step lands in the profile.
func TestLoyaltyThroughTheChain(t *testing.T) {
	opts := testOptions(t, t.TempDir())
	opts.Loyalty, opts.APIToken = loyalty.Example(), "pos-token"
	s := start(t, opts)
	id := func(typ, v string) events.Identity { return events.Identity{Type: typ, Value: v} }
	now := time.Now()
	// Orders of a year ago are history: ingest's live window refuses them, the backfill path
	// publishes them straight to JetStream.
	old, err := events.New(events.OrderPaid, "old", "backfill/tmall/t", now, events.OrderPaidData{OrderID: "old", Channel: "tmall", ShopID: "t",
		AmountFen: 10000, PaidAt: now.AddDate(-1, 0, -2), Identities: []events.Identity{id("phone", "13611112222")}})
	require.NoError(t, err)
	status, err := apiClient(s).Post(context.Background(), old)
	require.NoError(t, err)
	require.Equal(t, http.StatusBadRequest, status, "a live sender cannot post history")
	publishHistory(t, s, old)
	forgotten, err := events.New(events.OrderPaid, "forgotten", "backfill/jd/j", now, events.OrderPaidData{OrderID: "forgotten", Channel: "jd", ShopID: "j",
		AmountFen: 40000, PaidAt: now.AddDate(-1, 0, -1), Identities: []events.Identity{id("jd_pin", "pin-77")}})
	require.NoError(t, err)
	publishHistory(t, s, forgotten)
	post(t, s, orderEvent(t, "store", "pos", 20000, id("phone", "13611112222"), id("pos_card", "c-9")))
	p := lookup(t, s, "phone", "13611112222")
	assert.Equal(t, int64(100+240), p.Points.Balance, "¥100 on Tmall, ¥200 in the store at 1.2x")

	req, err := http.NewRequest(http.MethodPost, "http://"+s.Addr+"/v1/members/"+p.OneID+"/redemptions",
		strings.NewReader(`{"idempotencyKey":"app-1","channel":"app","points":150}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer pos-token")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	waitQuiet(t, s)

	expiry, _, err := s.RunJobs(context.Background(), now)
	require.NoError(t, err)
	assert.Equal(t, int64(200), expiry.Expired, "only the forgotten JD order expires (¥400 at half rate): the redemption spent the old Tmall lot first")
	waitQuiet(t, s)
	forgottenMember := lookup(t, s, "jd_pin", "pin-77")
	assert.Zero(t, forgottenMember.Points.Balance)
	notes, err := demo.Notifications(context.Background(), s.Store, forgottenMember.OneID)
	require.NoError(t, err)
	require.NotEmpty(t, notes)
	assert.Equal(t, "points_expired", notes[len(notes)-1].Template)
	p = lookup(t, s, "phone", "13611112222")
	assert.Equal(t, int64(190), p.Points.Balance)
	notes, err = demo.Notifications(context.Background(), s.Store, p.OneID)
	require.NoError(t, err)
	var texts []string
	for _, n := range notes {
		texts = append(texts, n.Template)
	}
	assert.Contains(t, texts, "points_redeemed", "the member hears about the redemption")
}

// publishHistory publishes an event as the backfill tool does: straight to JetStream, with the
// tool's message id, past ingest's live window.
func publishHistory(t *testing.T, s *Stack, ev cloudevents.Event) {
	t.Helper()
	nc, err := s.Broker.Connect("backfill")
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	msg, err := cenats.ToMsg(events.Subject(ev.Type()), ev)
	require.NoError(t, err)
	msg.Header.Set(jetstream.MsgIDHeader, runtime.MsgID(backfill.Producer, ev.Source(), ev.ID(), 0))
	_, err = js.PublishMsg(context.Background(), msg)
	require.NoError(t, err)
	waitQuiet(t, s)
}
