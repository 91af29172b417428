package ingest

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/broker/brokertest"
	"github.com/omnimember/omnimember/shared/platform"
	"github.com/omnimember/omnimember/shared/platform/pos"
	"github.com/omnimember/omnimember/shared/stream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// postPOS sends a store's push signed as the POS documentation says (independently of the adapter).
func (e *hookEnv) postPOS(store, secret string, ts time.Time, body string) answer {
	e.t.Helper()
	stamp := strconv.FormatInt(ts.Unix(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(stamp + "\n" + body))
	req, err := http.NewRequest(http.MethodPost, e.base+"/webhooks/pos", strings.NewReader(body))
	require.NoError(e.t, err)
	req.Header.Set("X-Omnimember-Store", store)
	req.Header.Set("X-Omnimember-Timestamp", stamp)
	req.Header.Set("X-Omnimember-Signature", "v1="+hex.EncodeToString(m.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	return answer{status: resp.StatusCode}
}

func posOrder(msgID, orderID string) string {
	return fmt.Sprintf(`{"type":"order.paid","id":%q,"order":{"id":%q,"amountFen":5000,"paidAt":"2026-11-25T09:00:00Z"},"member":{"card":"C-1"}}`, msgID, orderID)
}

func TestRenormaliseAWindow(t *testing.T) {
	wh := testWebhooks()
	wh.Adapters["pos"] = pos.Adapter{}
	wh.Credentials["pos"] = platform.Credentials{"store-1": {"secret": "pos-secret"}}
	e := startHooks(t, wh)
	pushes := []struct {
		body, secret string
		want         int
	}{
		{posOrder("m-1", "T-1"), "pos-secret", 200},
		{posOrder("m-2", "T-2"), "pos-secret", 200},
		{posOrder("m-3", "T-3"), "wrong", 401},
		{`{"type":"stock.changed","id":"m-4"}`, "pos-secret", 200},
	}
	for _, p := range pushes {
		require.Equal(t, p.want, e.postPOS("store-1", p.secret, t0, p.body).status)
	}
	other := []byte(`{"type":"paid","id":"o-9","phone":"13812345678","fen":100}`)
	require.Equal(t, 200, e.post("/webhooks/testpay", "shop-1", sign("s3cret-s3cret", other), other).status)
	pub := e.rt.Publisher(Name)
	publish := func(ctx context.Context, evs []cloudevents.Event) error { return pub.Publish(ctx, nil, evs) }
	stored := func() int { return len(brokertest.Events(t, e.js, stream.Events, events.OrderPaid)) }
	require.Equal(t, 3, stored())

	// The archive's times are the broker's clock; the adapter checks signatures against ReceivedAt (t0),
	// so pushes verify days later as they did on arrival.
	window := Window{Platform: "pos", Since: time.Now().Add(-time.Hour), Until: time.Now().Add(time.Hour)}
	tests := []struct {
		name          string
		r             Renormalisation
		window        Window
		wantPublished int
		wantStored    int
	}{
		{"dry run publishes nothing", Renormalisation{Webhooks: wh, Publish: publish, DryRun: true}, window, 0, 3},
		{"revision 0 reproduces the ids", Renormalisation{Webhooks: wh, Publish: publish}, window, 2, 3},
		{"revision 1 publishes corrected events", Renormalisation{Webhooks: wh, Publish: publish, Revision: 1}, window, 2, 5},
		{"revision 1 again changes nothing", Renormalisation{Webhooks: wh, Publish: publish, Revision: 1}, window, 2, 5},
		{"all platforms, revision 2", Renormalisation{Webhooks: wh, Publish: publish, Revision: 2}, Window{Since: window.Since, Until: window.Until}, 3, 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := tc.r.Run(context.Background(), e.js, tc.window)
			require.NoError(t, err)
			wantRead := 3 // the push refused with 401 was never archived
			if tc.window.Platform == "" {
				wantRead = 4
			}
			assert.Equal(t, wantRead, rep.Read)
			assert.Equal(t, tc.wantPublished, rep.Published)
			assert.Zero(t, rep.Outcomes[OutcomeBadSignature], "only verified pushes are archived")
			assert.Equal(t, 1, rep.Outcomes[OutcomeUnhandled])
			assert.Equal(t, tc.wantStored, stored())
		})
	}
	t.Run("empty window", func(t *testing.T) {
		rep, err := Renormalisation{Webhooks: wh, Publish: publish}.Run(context.Background(), e.js,
			Window{Platform: "pos", Since: window.Since, Until: window.Since.Add(time.Minute)})
		require.NoError(t, err)
		assert.Equal(t, 0, rep.Read)
	})
}

func TestReviseIsDeterministic(t *testing.T) {
	mk := func() []cloudevents.Event {
		ev, err := events.Example(events.OrderPaid)
		require.NoError(t, err)
		return []cloudevents.Event{ev}
	}
	orig, r1, r1again, r2 := mk(), mk(), mk(), mk()
	Revise(orig, 0)
	Revise(r1, 1)
	Revise(r1again, 1)
	Revise(r2, 2)
	assert.Equal(t, mk()[0].ID(), orig[0].ID(), "revision 0 keeps the id")
	assert.Equal(t, r1[0].ID(), r1again[0].ID())
	assert.NotEqual(t, orig[0].ID(), r1[0].ID())
	assert.NotEqual(t, r1[0].ID(), r2[0].ID())
}
