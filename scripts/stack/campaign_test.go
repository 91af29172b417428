package stack

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/functions/campaign"
	"github.com/omnimember/omnimember/functions/notify"
	"github.com/omnimember/omnimember/functions/profile"
	"github.com/omnimember/omnimember/shared/contact"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func marketerCall(t *testing.T, s *Stack, method, path string, body, out any) int {
	raw, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequest(method, "http://"+s.Addr+path, bytes.NewReader(raw))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer marketer")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	if out != nil {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
	}
	return resp.StatusCode
}

// campaignOptions is a stack with a marketer's token, the channel systems' token (consent) and
// notify's shipped rules of contact (marketing is opt-in) without quiet hours: the stack runs on the
// wall clock, and a campaign's messages would otherwise wait for 08:00 Asia/Shanghai whenever the
// tests run after 13:00 UTC (notify's own tests cover deferral at night).
func campaignOptions(t *testing.T) Options {
	t.Helper()
	opts := testOptions(t, t.TempDir())
	opts.MarketerToken, opts.APIToken = "marketer", "channel-api"
	rules := notify.DefaultRules()
	rules.QuietHours = contact.Window{}
	opts.ContactRules = &rules
	return opts
}

// grantConsent records a member's marketing consent on channel as a brand's system does: PUT
// /v1/members/{oneId}/consent with the channel systems' token.
func grantConsent(t *testing.T, s *Stack, oneID, channel string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, "http://"+s.Addr+"/v1/members/"+oneID+"/consent",
		bytes.NewReader([]byte(`{"channel":"`+channel+`","consent":"granted"}`)))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer channel-api")
	req.Header.Set("X-Omnimember-Operator", "mini-program registration")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "consent of %s on %s recorded", oneID, channel)
}

// TestCampaignThroughTheChain sends a campaign to the demo's reachable members through the real
// notify and watches its progress complete from notify's outcomes: the member who consented to
// marketing gets it, the others are counted suppressed for no consent.
func TestCampaignThroughTheChain(t *testing.T) {
	s := start(t, campaignOptions(t))
	replayDemo(t, s)
	var count campaign.SegmentCount
	require.Equal(t, http.StatusOK, marketerCall(t, s, "GET", "/v1/segments/plaintext-pool:count", nil, &count))
	require.Greater(t, count.Count, 1, "the demo has reachable members")
	require.NotEmpty(t, count.Sample)
	grantConsent(t, s, count.Sample[0].OneID, "outbox")
	var c campaign.Campaign
	require.Equal(t, http.StatusCreated, marketerCall(t, s, "POST", "/v1/campaigns", campaign.CreateRequest{
		Name: "会员关怀", Segment: "plaintext-pool", Channel: "outbox", Template: "vip_thanks"}, &c))
	require.Equal(t, http.StatusAccepted, marketerCall(t, s, "POST", "/v1/campaigns/"+c.ID+":trigger", nil, nil))
	var v campaign.View
	require.Eventually(t, func() bool {
		v = campaign.View{}
		return marketerCall(t, s, "GET", "/v1/campaigns/"+c.ID, nil, &v) == http.StatusOK && v.Progress.Done
	}, 60*time.Second, 50*time.Millisecond, "the campaign finishes")
	p := v.Progress
	assert.Equal(t, int64(count.Count), p.Targeted)
	assert.Equal(t, p.Targeted, p.Sent+p.Suppressed+p.Failed, "every request ends as one outcome")
	assert.Equal(t, int64(1), p.Sent, "the member who consented")
	assert.Equal(t, map[string]int64{contact.ReasonNoConsent: p.Targeted - 1}, p.SuppressedBy, "the others: no consent, counted")
}

// TestCampaignRewardsReachTheBalance creates and triggers (twice) a campaign promising 200 bonus
// points and double points for two hours, then watches the member's profile: the bonus credited
// once, an order inside the window earning double, its refund taking back the doubled points, and
// the member outside the segment getting nothing.
func TestCampaignRewardsReachTheBalance(t *testing.T) {
	s := start(t, campaignOptions(t))
	now := time.Now()
	post(t, s, orderEvent(t, "first", "tmall", 10000, events.Identity{Type: "phone", Value: "13622223333"}))
	post(t, s, orderEvent(t, "stranger", "douyin", 10000, events.Identity{Type: "crm_id", Value: "crm-9"}))
	reachable, stranger := lookup(t, s, "phone", "13622223333"), lookup(t, s, "crm_id", "crm-9")
	require.Equal(t, []int64{100, 100}, []int64{reachable.Points.Balance, stranger.Points.Balance}, "got balances before the campaign")
	grantConsent(t, s, reachable.OneID, "outbox")

	var c campaign.Campaign
	require.Equal(t, http.StatusCreated, marketerCall(t, s, "POST", "/v1/campaigns", campaign.CreateRequest{
		Name: "双倍积分+赠分", Segment: "plaintext-pool", Channel: "outbox", Template: "bonus_points", BonusPoints: 200,
		Multiplier: &campaign.Multiplier{Factor: "2", From: now.Add(-2 * time.Hour), To: now.Add(2 * time.Hour)}}, &c))
	for range 2 {
		require.Equal(t, http.StatusAccepted, marketerCall(t, s, "POST", "/v1/campaigns/"+c.ID+":trigger", nil, nil))
	}
	var v campaign.View
	require.Eventually(t, func() bool {
		v = campaign.View{}
		return marketerCall(t, s, "GET", "/v1/campaigns/"+c.ID, nil, &v) == http.StatusOK && v.Progress.Done
	}, 60*time.Second, 50*time.Millisecond, "the campaign finishes")
	assert.Equal(t, int64(1), v.Progress.Sent, "the message the bonus promises reached the member who consented")
	waitQuiet(t, s)

	tests := []struct {
		name        string
		ev          func(t *testing.T) cloudevents.Event
		wantBalance int64
	}{
		{"the bonus is credited once", nil, 100 + 200},
		{"an order inside the window earns double", func(t *testing.T) cloudevents.Event {
			return orderEvent(t, "inside", "jd", 10000, events.Identity{Type: "phone", Value: "13622223333"})
		}, 300 + 2*100},
		{"its refund takes back the doubled points", func(t *testing.T) cloudevents.Event {
			ev, err := events.New(events.OrderRefunded, "inside-refund", "jd/shop", time.Now(), events.OrderRefundedData{
				OrderID: "o-inside", RefundID: "rf-1", Channel: "jd", AmountFen: 5000, RefundedAt: time.Now(),
				Identities: []events.Identity{{Type: "phone", Value: "13622223333"}}})
			require.NoError(t, err)
			return ev
		}, 500 - 2*50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.ev != nil {
				post(t, s, tt.ev(t))
			}
			assert.Equal(t, tt.wantBalance, memberProfile(t, s, reachable.OneID).Points.Balance, "got balance, want")
		})
	}
	assert.Equal(t, int64(100), memberProfile(t, s, stranger.OneID).Points.Balance, "outside the segment: no bonus")
}

// memberProfile reads GET /v1/members/{oneId}.
func memberProfile(t *testing.T, s *Stack, oneID string) profile.Profile {
	t.Helper()
	resp := readerGet(t, s, "/v1/members/"+oneID)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var p profile.Profile
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&p))
	return p
}
