package stack

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/omnimember/omnimember/functions/campaign"
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

// TestCampaignThroughTheChain sends a campaign to the demo's reachable members through the real
// notify and watches its progress complete from notify's outcomes.
func TestCampaignThroughTheChain(t *testing.T) {
	opts := testOptions(t, t.TempDir())
	opts.MarketerToken = "marketer"
	// The stack runs on the wall clock: without quiet hours, so the campaign finishes at any hour
	// (notify's own tests cover deferral at night).
	rules, err := contact.Parse([]byte(`{"timeZone": "Asia/Shanghai", "defaultConsent": {"*": true}, "marketingPerDay": 1}`))
	require.NoError(t, err)
	opts.ContactRules = &rules
	s := start(t, opts)
	replayDemo(t, s)
	var count campaign.SegmentCount
	require.Equal(t, http.StatusOK, marketerCall(t, s, "GET", "/v1/segments/plaintext-pool:count", nil, &count))
	require.Positive(t, count.Count, "the demo has reachable members")
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
}
