package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/broker/brokertest"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/stream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// orderJSON is a valid order.paid at the tests' clock, with fields to override.
func orderJSON(over map[string]any) map[string]any {
	d := map[string]any{"orderId": "JD-1", "channel": "jd", "shopId": "jd-shop-9", "amountFen": 99900,
		"paidAt": t0.Add(-time.Hour).Format(time.RFC3339), "identities": []any{map[string]any{"type": "phone", "value": "13812345678"}}}
	for k, v := range over {
		d[k] = v
	}
	return d
}

// structured is a structured-mode CloudEvent with raw JSON data.
func structured(typ, id, source string, data any) map[string]any {
	return map[string]any{"specversion": "1.0", "type": typ, "source": source, "id": id, "datacontenttype": "application/json", "data": data}
}

func phones(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = map[string]any{"type": "phone", "value": fmt.Sprintf("1391234%04d", i)}
	}
	return out
}

func (e *hookEnv) postEvents(contentType string, headers map[string]string, body []byte) (int, runtime.ErrorBody) {
	e.t.Helper()
	return e.postEventsAs(testSenderToken, contentType, headers, body)
}

// postEventsAs posts to /v1/events with a sender token; headers set binary-mode attributes.
func (e *hookEnv) postEventsAs(token, contentType string, headers map[string]string, body []byte) (int, runtime.ErrorBody) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.base+EventsPath, bytes.NewReader(body))
	require.NoError(e.t, err)
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+token)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	var eb runtime.ErrorBody
	// Go's server answers 431 itself, in plain text, before any handler runs.
	if resp.StatusCode >= 400 && resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		require.NoError(e.t, json.Unmarshal(raw, &eb), "error body %s", raw)
	}
	return resp.StatusCode, eb
}

func mustJSON(t *testing.T, v any) []byte {
	raw, err := json.Marshal(v)
	require.NoError(t, err)
	return raw
}

// TestBadEventsAreRefusedAtTheEdge is the issue's "accepted, then lost" and "200 KB ids answer
// 503": every event a later stage would refuse gets its status and the field named at
// /v1/events, and nothing of it reaches JetStream.
func TestBadEventsAreRefusedAtTheEdge(t *testing.T) {
	e := startIngest(t, testEdge(), nil)
	const ce = "application/cloudevents+json"
	big := strings.Repeat("x", 200<<10)
	tests := []struct {
		name       string
		body       []byte
		headers    map[string]string // binary mode when set
		wantStatus int
		wantField  string
	}{
		{"amount of 1e30", []byte(`{"specversion":"1.0","type":"omnimember.order.paid","source":"jd/jd-shop-9","id":"e1","data":` +
			`{"orderId":"JD-1","channel":"jd","shopId":"jd-shop-9","amountFen":1e30,"paidAt":"` + t0.Format(time.RFC3339) + `","identities":[{"type":"jd_pin","value":"p"}]}}`),
			nil, 400, "data.amountFen"},
		{"amount of 12.0 (a JSON Schema integer, not an int64)", []byte(`{"specversion":"1.0","type":"omnimember.order.paid","source":"jd/jd-shop-9","id":"e2","data":` +
			`{"orderId":"JD-1","channel":"jd","shopId":"jd-shop-9","amountFen":12.0,"paidAt":"` + t0.Format(time.RFC3339) + `","identities":[{"type":"jd_pin","value":"p"}]}}`),
			nil, 400, "data.amountFen"},
		{"amount of int64's maximum", mustJSON(t, structured(events.OrderPaid, "e3", "jd/jd-shop-9", orderJSON(map[string]any{"amountFen": int64(9223372036854775807)}))), nil, 400, "data.amountFen"},
		{"amount one fen over the bound", mustJSON(t, structured(events.OrderPaid, "e4", "jd/jd-shop-9", orderJSON(map[string]any{"amountFen": events.MaxFen + 1}))), nil, 400, "data.amountFen"},
		{"quantity of 2.5", mustJSON(t, structured(events.OrderPaid, "e5", "jd/jd-shop-9", orderJSON(map[string]any{
			"items": []any{map[string]any{"sku": "a", "quantity": 2.5, "amountFen": 1}}}))), nil, 400, "data.items.0.quantity"},
		{"paidAt in year 9999", mustJSON(t, structured(events.OrderPaid, "e6", "jd/jd-shop-9", orderJSON(map[string]any{"paidAt": "9999-12-31T00:00:00Z"}))), nil, 400, "data.paidAt"},
		{"paidAt an hour ahead", mustJSON(t, structured(events.OrderPaid, "e7", "jd/jd-shop-9", orderJSON(map[string]any{"paidAt": t0.Add(time.Hour).Format(time.RFC3339)}))), nil, 400, "data.paidAt"},
		{"paidAt 330 days ago", mustJSON(t, structured(events.OrderPaid, "e8", "jd/jd-shop-9", orderJSON(map[string]any{"paidAt": t0.AddDate(0, 0, -330).Format(time.RFC3339)}))), nil, 400, "data.paidAt"},
		{"refundedAt 30 days ago", mustJSON(t, structured(events.OrderRefunded, "e9", "jd/jd-shop-9", map[string]any{"orderId": "JD-1", "refundId": "r", "channel": "jd",
			"amountFen": 100, "refundedAt": t0.AddDate(0, 0, -30).Format(time.RFC3339), "identities": []any{map[string]any{"type": "jd_pin", "value": "p"}}})), nil, 400, "data.refundedAt"},
		{"occurredAt in 2030", mustJSON(t, structured(events.InteractionRecorded, "e10", "app/miniprogram", map[string]any{"channel": "app", "kind": "page",
			"occurredAt": "2030-01-01T00:00:00Z", "identities": []any{map[string]any{"type": "app_user_id", "value": "u"}}})), nil, 400, "data.occurredAt"},
		{"66 identities", mustJSON(t, structured(events.OrderPaid, "e11", "jd/jd-shop-9", orderJSON(map[string]any{"identities": phones(66)}))), nil, 400, "data.identities"},
		{"22 phones: 66 after normalisation", mustJSON(t, structured(events.OrderPaid, "e12", "jd/jd-shop-9", orderJSON(map[string]any{"identities": phones(22)}))), nil, 400, "data.identities"},
		{"only an invalid phone", mustJSON(t, structured(events.OrderPaid, "e13", "jd/jd-shop-9", orderJSON(map[string]any{
			"identities": []any{map[string]any{"type": "phone", "value": "12345"}}}))), nil, 400, "data.identities.0"},
		{"only a blocklisted phone", mustJSON(t, structured(events.OrderPaid, "e14", "jd/jd-shop-9", orderJSON(map[string]any{
			"identities": []any{map[string]any{"type": "phone", "value": "13800000000"}}}))), nil, 400, "data.identities"},
		{"only a masked phone", mustJSON(t, structured(events.OrderRefunded, "e15", "jd/jd-shop-9", map[string]any{"orderId": "JD-1", "refundId": "r", "channel": "jd",
			"amountFen": 100, "refundedAt": t0.Format(time.RFC3339), "identities": []any{map[string]any{"type": "phone_masked", "value": "138****5678"}}})), nil, 400, "data.identities"},
		{"a scoped id without its shop", mustJSON(t, structured(events.OrderPaid, "e16", "jd/jd-shop-9", orderJSON(map[string]any{
			"identities": []any{map[string]any{"type": "jd_xid", "value": "x"}}}))), nil, 400, "data.identities.0"},
		{"an id of 200 KB", mustJSON(t, structured(events.OrderPaid, big, "jd/jd-shop-9", orderJSON(nil))), nil, 400, "id"},
		{"a source of 300 bytes", mustJSON(t, structured(events.OrderPaid, "e17", "jd/"+strings.Repeat("s", 300), orderJSON(nil))), nil, 400, "source"},
		{"an attribute value of 200 KB", mustJSON(t, structured(events.InteractionRecorded, "e18", "app/miniprogram", map[string]any{"channel": "app", "kind": "page",
			"occurredAt": t0.Format(time.RFC3339), "identities": []any{map[string]any{"type": "app_user_id", "value": "u"}}, "attributes": map[string]any{"q": big}})),
			nil, 400, "data.attributes.q"},
		{"data of 300 KB", mustJSON(t, structured(events.OrderPaid, "e19", "jd/jd-shop-9", orderJSON(map[string]any{"items": bigItems(1200)}))), nil, 413, "data"},
		{"an extension of 40 KB (binary mode)", mustJSON(t, orderJSON(nil)), map[string]string{"ce-specversion": "1.0", "ce-type": events.OrderPaid,
			"ce-source": "jd/jd-shop-9", "ce-id": "e20", "ce-tracestate": big[:40<<10]}, 400, "tracestate"},
		{"headers of 200 KB (binary mode)", mustJSON(t, orderJSON(nil)), map[string]string{"ce-specversion": "1.0", "ce-type": events.OrderPaid,
			"ce-source": "jd/jd-shop-9", "ce-id": "e20b", "ce-tracestate": big}, 431, ""},
		{"an invalid UTF-8 id (binary mode)", mustJSON(t, orderJSON(nil)), map[string]string{"ce-specversion": "1.0", "ce-type": events.OrderPaid,
			"ce-source": "jd/jd-shop-9", "ce-id": "e\xff\xfe"}, 400, "id"},
		{"a backfill source from a live sender (its * does not cover history)", mustJSON(t, structured(events.OrderPaid, "e21", "backfill/jd/jd-shop-9", orderJSON(nil))), nil, 400, "source"},
		{"a batch with one bad event names its index", mustJSON(t, []any{structured(events.OrderPaid, "e22", "jd/jd-shop-9", orderJSON(nil)),
			structured(events.OrderPaid, "e23", "jd/jd-shop-9", orderJSON(map[string]any{"paidAt": "9999-01-01T00:00:00Z"}))}), nil, 400, "[1].data.paidAt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			contentType := ce
			switch {
			case tc.headers != nil:
				contentType = "application/json"
			case bytes.HasPrefix(tc.body, []byte("[")):
				contentType = "application/cloudevents-batch+json"
			}
			status, eb := e.postEvents(contentType, tc.headers, tc.body)
			assert.Equal(t, tc.wantStatus, status, "got status, want (error %q)", eb.Error)
			assert.Equal(t, tc.wantField, eb.Field, "got field, want (error %q)", eb.Error)
		})
	}
	assert.Empty(t, brokertest.Messages(t, e.js, stream.Events, events.Prefix+">"), "nothing refused reached JetStream")

	status, _ := e.postEvents(ce, nil, mustJSON(t, structured(events.OrderPaid, "good-1", "jd/jd-shop-9", orderJSON(nil))))
	require.Equal(t, http.StatusAccepted, status, "the control event is accepted")
	got := brokertest.Events(t, e.js, stream.Events, events.OrderPaid)
	require.Len(t, got, 1)
	at, ok := events.ReceivedAt(got[0])
	require.True(t, ok, "stored with the time ingest received it")
	assert.True(t, t0.Equal(at))
}

func bigItems(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = map[string]any{"sku": fmt.Sprint("sku-", i), "name": strings.Repeat("n", 240), "quantity": 1, "amountFen": 1}
	}
	return out
}

// TestSameIDWithOtherDataIs409 is the finding: the same id with other data was silently
// dropped by the stream's duplicate window (then match's receipt). A true retry keeps its 202.
func TestSameIDWithOtherDataIs409(t *testing.T) {
	e := startIngest(t, testEdge(), nil)
	const ce = "application/cloudevents+json"
	first := mustJSON(t, structured(events.OrderPaid, "same-1", "jd/jd-shop-9", orderJSON(nil)))
	status, _ := e.postEvents(ce, nil, first)
	require.Equal(t, http.StatusAccepted, status)

	var reordered map[string]any
	require.NoError(t, json.Unmarshal(first, &reordered))
	retry, err := json.MarshalIndent(reordered, "", "  ") // the same event, other whitespace and key order
	require.NoError(t, err)
	status, _ = e.postEvents(ce, nil, retry)
	assert.Equal(t, http.StatusAccepted, status, "a retry of the same event is accepted")

	other := mustJSON(t, structured(events.OrderPaid, "same-1", "jd/jd-shop-9", orderJSON(map[string]any{"amountFen": 1})))
	status, eb := e.postEvents(ce, nil, other)
	assert.Equal(t, http.StatusConflict, status, eb.Error)
	assert.Equal(t, "id", eb.Field)

	otherSource := mustJSON(t, structured(events.OrderPaid, "same-1", "jd/jd-shop-9/connector-2", orderJSON(map[string]any{"amountFen": 1})))
	status, _ = e.postEvents(ce, nil, otherSource)
	assert.Equal(t, http.StatusAccepted, status, "an id is unique within its source")

	got := brokertest.Events(t, e.js, stream.Events, events.OrderPaid)
	require.Len(t, got, 2, "the first event and the other source's, once each")
	d, err := events.Decode[events.OrderPaidData](got[0])
	require.NoError(t, err)
	assert.Equal(t, int64(99900), d.AmountFen, "the first data stands")
}

// TestWebhookEventsPassTheEdge: a native push whose event says what a later stage would refuse is
// answered 400 naming the event's field, and nothing reaches the chain.
func TestWebhookEventsPassTheEdge(t *testing.T) {
	e := startHooks(t, testWebhooks())
	for _, tc := range []struct {
		name, body, wantField string
	}{
		{"paidAt a year ahead", `{"type":"paid","id":"w-1","phone":"13812345678","fen":100,"paidAt":"2027-11-25T10:00:00Z"}`, "events.0.data.paidAt"},
		{"paidAt 30 days before the push", `{"type":"paid","id":"w-2","phone":"13812345678","fen":100,"paidAt":"2026-10-26T10:00:00Z"}`, "events.0.data.paidAt"},
		{"a phone that does not normalise", `{"type":"paid","id":"w-3","phone":"12345","fen":100}`, "events.0.data.identities.0"},
		{"a blocklisted phone only", `{"type":"paid","id":"w-4","phone":"13800000000","fen":100}`, "events.0.data.identities"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := e.post("/webhooks/testpay", "shop-1", sign("s3cret-s3cret", []byte(tc.body)), []byte(tc.body))
			assert.Equal(t, http.StatusBadRequest, got.status, got.body)
			var eb runtime.ErrorBody
			require.NoError(t, json.Unmarshal([]byte(got.body), &eb))
			assert.Equal(t, tc.wantField, eb.Field)
		})
	}
	assert.Empty(t, brokertest.Events(t, e.js, stream.Events, events.OrderPaid), "nothing reached the chain")
	assert.Equal(t, 4.0, e.count("testpay", OutcomeMalformed))

	body := []byte(`{"type":"paid","id":"w-5","phone":"13812345678","fen":100}`)
	got := e.post("/webhooks/testpay", "shop-1", sign("s3cret-s3cret", body), body)
	require.Equal(t, http.StatusOK, got.status, got.body)
	stored := brokertest.Events(t, e.js, stream.Events, events.OrderPaid)
	require.Len(t, stored, 1)
	at, ok := events.ReceivedAt(stored[0])
	require.True(t, ok)
	assert.True(t, t0.Equal(at), "stamped with the time the push arrived")
}

// TestOnlyAHistoryCredentialPostsHistory: backfill/ sources pass under the history window only for
// a sender whose credential names them; a channel sender's `*` is refused with 400 naming source.
func TestOnlyAHistoryCredentialPostsHistory(t *testing.T) {
	e := startIngest(t, testEdge(), nil)
	old := orderJSON(map[string]any{"paidAt": t0.AddDate(-1, 0, 0).Format(time.RFC3339)})
	tests := []struct {
		name, token, source string
		wantStatus          int
		wantField           string
	}{
		{"a channel sender posting history", testSenderToken, "backfill/jd/jd-shop-9", http.StatusBadRequest, "source"},
		{"the backfill sender posting a channel source", testHistoryToken, "jd/jd-shop-9", http.StatusForbidden, "source"},
		{"the backfill sender posting history", testHistoryToken, "backfill/jd/jd-shop-9", http.StatusAccepted, ""},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := mustJSON(t, structured(events.OrderPaid, fmt.Sprint("h-", i), tc.source, old))
			req, err := http.NewRequest(http.MethodPost, e.base+EventsPath, bytes.NewReader(body))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/cloudevents+json")
			req.Header.Set("Authorization", "Bearer "+tc.token)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			var eb runtime.ErrorBody
			if resp.StatusCode >= 400 {
				require.NoError(t, json.NewDecoder(resp.Body).Decode(&eb))
			}
			assert.Equal(t, tc.wantStatus, resp.StatusCode, "got status, want (error %q)", eb.Error)
			assert.Equal(t, tc.wantField, eb.Field, "got field, want")
		})
	}
	got := brokertest.Events(t, e.js, stream.Events, events.OrderPaid)
	require.Len(t, got, 1, "only the backfill sender's history was stored")
	_, stamped := events.ReceivedAt(got[0])
	assert.False(t, stamped, "history counts its own days")
}

// TestEventDataAgreesWithItsSource is the finding left open by sender scopes: a token for
// jd/jd-shop-9 posted {"channel":"tmall","shopId":"shop-1001"} under its own source and minted
// another shop's orders. The source is <channel>/<shopId>[/…]: data naming another channel or shop
// than its source gets 400 naming data.channel or data.shopId, and nothing of it is stored.
func TestEventDataAgreesWithItsSource(t *testing.T) {
	e := startIngest(t, testEdge(), nil)
	const ce = "application/cloudevents+json"
	at := t0.Add(-time.Hour).Format(time.RFC3339)
	browse := func(channel string) map[string]any {
		return map[string]any{"channel": channel, "kind": "page", "occurredAt": at,
			"identities": []any{map[string]any{"type": "jd_pin", "value": "p"}}}
	}
	refund := func(shop string) map[string]any {
		return map[string]any{"orderId": "JD-1", "refundId": "r-1", "channel": "jd", "shopId": shop, "amountFen": 100, "refundedAt": at,
			"identities": []any{map[string]any{"type": "jd_pin", "value": "p"}}}
	}
	registered := func(shop string) map[string]any {
		return map[string]any{"channel": "jd", "shopId": shop, "registeredAt": at, "identities": []any{map[string]any{"type": "jd_pin", "value": "p"}}}
	}
	tests := []struct {
		name       string
		token      string
		body       []byte
		headers    map[string]string // binary mode when set
		wantStatus int
		wantField  string
	}{
		{"another channel's order of another shop (the finding)", testShopToken, mustJSON(t, structured(events.OrderPaid, "s1", "jd/jd-shop-9",
			orderJSON(map[string]any{"channel": "tmall", "shopId": "shop-1001"}))), nil, 400, "data.channel"},
		{"another channel, the right shop", testShopToken, mustJSON(t, structured(events.OrderPaid, "s2", "jd/jd-shop-9",
			orderJSON(map[string]any{"channel": "tmall"}))), nil, 400, "data.channel"},
		{"another shop of the same channel", testShopToken, mustJSON(t, structured(events.OrderPaid, "s3", "jd/jd-shop-9",
			orderJSON(map[string]any{"shopId": "shop-1001"}))), nil, 400, "data.shopId"},
		{"a refund of another shop", testShopToken, mustJSON(t, structured(events.OrderRefunded, "s4", "jd/jd-shop-9", refund("shop-1001"))),
			nil, 400, "data.shopId"},
		{"a registration at another shop", testShopToken, mustJSON(t, structured(events.MemberRegistered, "s5", "jd/jd-shop-9", registered("jd-shop-10"))),
			nil, 400, "data.shopId"},
		{"an interaction of another channel", testShopToken, mustJSON(t, structured(events.InteractionRecorded, "s6", "jd/jd-shop-9", browse("tmall"))),
			nil, 400, "data.channel"},
		{"a wide sender is bound by the source it names", testSenderToken, mustJSON(t, structured(events.OrderPaid, "s7", "jd/jd-shop-10",
			orderJSON(nil))), nil, 400, "data.shopId"},
		{"binary mode, another channel", testShopToken, mustJSON(t, orderJSON(map[string]any{"channel": "tmall"})), map[string]string{
			"ce-specversion": "1.0", "ce-type": events.OrderPaid, "ce-source": "jd/jd-shop-9", "ce-id": "s8"}, 400, "data.channel"},
		{"a till's order of another store", testStoreToken, mustJSON(t, structured(events.OrderPaid, "s9", "pos/store-12/till-3",
			orderJSON(map[string]any{"channel": "pos", "shopId": "till-3"}))), nil, 400, "data.shopId"},
		{"history of another shop", testHistoryToken, mustJSON(t, structured(events.OrderPaid, "s10", "backfill/jd/jd-shop-9",
			orderJSON(map[string]any{"shopId": "shop-1001", "paidAt": t0.AddDate(-1, 0, 0).Format(time.RFC3339)}))), nil, 400, "data.shopId"},
		{"a batch with one event of another shop stores none", testShopToken, mustJSON(t, []any{
			structured(events.OrderPaid, "s11", "jd/jd-shop-9", orderJSON(nil)),
			structured(events.OrderPaid, "s12", "jd/jd-shop-9", orderJSON(map[string]any{"shopId": "shop-1001"}))}), nil, 400, "[1].data.shopId"},

		{"an order of the source's shop", testShopToken, mustJSON(t, structured(events.OrderPaid, "ok-1", "jd/jd-shop-9", orderJSON(nil))), nil, 202, ""},
		{"an interaction with the source's channel", testShopToken, mustJSON(t, structured(events.InteractionRecorded, "ok-2", "jd/jd-shop-9", browse("jd"))),
			nil, 202, ""},
		{"a refund naming no shop needs the channel only", testShopToken, mustJSON(t, structured(events.OrderRefunded, "ok-3", "jd/jd-shop-9", refund(""))),
			nil, 202, ""},
		{"a multi-segment source: a till of the store", testStoreToken, mustJSON(t, structured(events.OrderPaid, "ok-4", "pos/store-12/till-3",
			orderJSON(map[string]any{"orderId": "POS-1", "channel": "pos", "shopId": "store-12"}))), nil, 202, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			contentType := ce
			switch {
			case tc.headers != nil:
				contentType = "application/json"
			case bytes.HasPrefix(tc.body, []byte("[")):
				contentType = "application/cloudevents-batch+json"
			}
			status, eb := e.postEventsAs(tc.token, contentType, tc.headers, tc.body)
			assert.Equal(t, tc.wantStatus, status, "got status, want (error %q)", eb.Error)
			assert.Equal(t, tc.wantField, eb.Field, "got field, want (error %q)", eb.Error)
		})
	}
	var stored []string
	for _, ev := range brokertest.Events(t, e.js, stream.Events, events.Prefix+">") {
		stored = append(stored, ev.ID())
	}
	assert.ElementsMatch(t, []string{"ok-1", "ok-2", "ok-3", "ok-4"}, stored, "only the events whose data agrees with their source reached JetStream")
}
