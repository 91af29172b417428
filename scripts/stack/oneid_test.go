package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/functions/profile"
	"github.com/omnimember/omnimember/shared/store/firestore"
	"github.com/omnimember/omnimember/shared/store/firestore/firestoretest"
	"github.com/omnimember/omnimember/shared/stream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func post(t *testing.T, s *Stack, ev cloudevents.Event) {
	t.Helper()
	status, err := apiClient(s).Post(context.Background(), ev)
	require.NoError(t, err)
	require.Equal(t, http.StatusAccepted, status)
	waitQuiet(t, s)
}

func orderEvent(t *testing.T, id, channel string, fen int64, ids ...events.Identity) cloudevents.Event {
	ev, err := events.New(events.OrderPaid, id, channel+"/shop", time.Now(), events.OrderPaidData{OrderID: "o-" + id,
		Channel: channel, ShopID: "shop", AmountFen: fen, PaidAt: time.Now().Add(-time.Hour), Identities: ids})
	require.NoError(t, err)
	return ev
}

func lookup(t *testing.T, s *Stack, typ, value string) profile.Profile {
	t.Helper()
	resp := readerGet(t, s, "/v1/members:lookup?type="+typ+"&value="+value)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var p profile.Profile
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&p))
	return p
}

// TestSplitUndoesAWrongMerge merges two people through a shared account, then splits them: the
// restored member gets back its identities, orders, points and tier; the survivor's tier is corrected.
func TestSplitUndoesAWrongMerge(t *testing.T) {
	onEachStore(t, testSplit)
}

// onEachStore runs a chain test on the embedded store and on Firestore (the emulator).
func onEachStore(t *testing.T, test func(t *testing.T, opts Options)) {
	t.Run("embedded", func(t *testing.T) { test(t, testOptions(t, t.TempDir())) })
	t.Run("firestore", func(t *testing.T) {
		firestoretest.Host(t)
		fs, err := firestore.Open(context.Background(), firestore.Config{ProjectID: firestoretest.ProjectID(t)})
		require.NoError(t, err)
		t.Cleanup(func() { _ = fs.Close() })
		opts := testOptions(t, t.TempDir())
		opts.Store = fs
		// The emulator resolves contention with lock timeouts of seconds: give handlers that long,
		// as production's 30s ack wait does.
		opts.Runtime.AckWait, opts.Runtime.MaxDeliver = 30*time.Second, 20
		test(t, opts)
	})
}

func testSplit(t *testing.T, opts Options) {
	opts.AdminToken = "ops-token"
	s := start(t, opts)
	id := func(typ, v string) events.Identity { return events.Identity{Type: typ, Value: v} }
	post(t, s, orderEvent(t, "a1", "tmall", 200000, id("tmall_omid", "om-a"), id("phone", "13811112222")))
	post(t, s, orderEvent(t, "b1", "jd", 150000, id("jd_pin", "pin-b"), id("phone", "13933334444")))
	linked, err := events.New(events.MemberRegistered, "wrong-link", "app/crm/import", time.Now(), events.MemberRegisteredData{
		Channel: "app", ShopID: "crm", RegisteredAt: time.Now().Add(-time.Minute), Identities: []events.Identity{id("tmall_omid", "om-a"), id("jd_pin", "pin-b")}})
	require.NoError(t, err)
	post(t, s, linked)
	merged := lookup(t, s, "phone", "13933334444")
	require.Len(t, merged.MergedFrom, 1, "the CRM import merged them")
	assert.Equal(t, int64(3500), merged.Points.Balance)
	assert.Equal(t, "gold", merged.Tier.Level)
	survivor, absorbed := merged.OneID, merged.MergedFrom[0]

	body, err := json.Marshal(map[string]any{"identities": []events.Identity{id("jd_pin", "pin-b"), id("phone", "13933334444")}, "reason": "CRM import joined two customers"})
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, "http://"+s.Addr+"/v1/members/"+survivor+":split", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer ops-token")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var answer map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&answer))
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "split answered %v", answer)
	waitQuiet(t, s)

	a, b := lookup(t, s, "phone", "13811112222"), lookup(t, s, "phone", "13933334444")

	assert.Equal(t, survivor, a.OneID)
	assert.Equal(t, absorbed, b.OneID, "the absorbed member comes back under its own OneID")
	assert.Equal(t, []int64{2000, 1, 200000}, []int64{a.Points.Balance, a.Orders.Count, a.Orders.NetAmountFen})
	assert.Equal(t, []int64{1500, 1, 150000}, []int64{b.Points.Balance, b.Orders.Count, b.Orders.NetAmountFen})
	assert.Equal(t, "silver", a.Tier.Level, "the merge's gold was a mistake: corrected down")
	assert.Equal(t, "silver", b.Tier.Level)
	assert.Equal(t, "split", a.History[len(a.History)-1].Kind)
	assert.Equal(t, "restored", b.History[len(b.History)-1].Kind)
	assert.Empty(t, a.MergedFrom)
	assert.Equal(t, a.OneID, lookup(t, s, "tmall_omid", "om-a").OneID)
	assert.Equal(t, b.OneID, lookup(t, s, "jd_pin", "pin-b").OneID)
}

// TestRacingEventsThatLinkTheSameIdentitiesConverge posts, all at once, events that each link a
// phone or a card to a neighbour: whatever order match sees them in, they end as one member.
func TestRacingEventsThatLinkTheSameIdentitiesConverge(t *testing.T) {
	onEachStore(t, func(t *testing.T, opts Options) { testRacing(t, start(t, opts)) })
}

func testRacing(t *testing.T, s *Stack) {
	id := func(typ, v string) events.Identity { return events.Identity{Type: typ, Value: v} }
	chain := []events.Identity{id("phone", "13700000001"), id("pos_card", "c1"), id("jd_pin", "p1"), id("wechat_unionid", "w1"),
		id("pos_card", "c2"), id("tmall_omid", "t1"), id("douyin_unionid", "d1"), id("app_user_id", "u1")}
	var evs []cloudevents.Event
	for i := range chain {
		evs = append(evs, orderEvent(t, "alone-"+chain[i].Value, "pos", 1000, chain[i]))
		if i > 0 {
			evs = append(evs, orderEvent(t, "link-"+chain[i].Value, "pos", 1000, chain[i-1], chain[i]))
		}
	}
	var wg sync.WaitGroup
	for _, ev := range evs {
		wg.Go(func() {
			status, err := apiClient(s).Post(context.Background(), ev)
			assert.NoError(t, err)
			assert.Equal(t, http.StatusAccepted, status)
		})
	}
	wg.Wait()
	waitQuiet(t, s)
	dead, err := stream.ListDeadLetters(context.Background(), s.Runtime.JetStream(), "")
	require.NoError(t, err)
	require.Empty(t, dead, "contention is retried, never given up on")
	want := lookup(t, s, "phone", "13700000001")
	for _, c := range chain[1:] {
		assert.Equal(t, want.OneID, lookup(t, s, c.Type, c.Value).OneID, "%s resolves to the same member", c.Type)
	}
	assert.Equal(t, int64(len(evs)), want.Orders.Count, "every order counted once, on the one member")
	assert.Equal(t, int64(len(evs)*10), want.Points.Balance)
}
