package match

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/broker/brokertest"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/pii"
	"github.com/omnimember/omnimember/shared/receipt"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
	"github.com/omnimember/omnimember/shared/stream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// operator serves match's operator endpoints with a real JetStream publisher behind them.
type operator struct {
	*fixture
	url string
	js  jetstream.JetStream
}

func newOperator(t *testing.T, s store.Store) *operator {
	f := newFixture(t, s)
	srv := brokertest.Start(t)
	cfg := runtime.Defaults()
	rt, err := runtime.New(context.Background(), cfg, brokertest.Connect(t, srv), slog.New(slog.NewJSONHandler(io.Discard, nil)))
	require.NoError(t, err)
	mux := http.NewServeMux()
	f.h.Routes(mux, rt.Publisher(Name))
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return &operator{fixture: f, url: hs.URL, js: rt.JetStream()}
}

func (o *operator) do(t *testing.T, method, path string, into any) int {
	t.Helper()
	req, err := http.NewRequest(method, o.url+path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer admin-secret")
	req.Header.Set("X-Omnimember-Operator", "privacy@brand.example")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	if into != nil {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(into))
	}
	return resp.StatusCode
}

func orderAt(t *testing.T, eventID, channel string, paidAt time.Time, ids ...events.Identity) cloudevents.Event {
	ev, err := events.New(events.OrderPaid, eventID, channel+"/shop-1", paidAt, events.OrderPaidData{
		OrderID: "o-" + eventID, Channel: channel, ShopID: "shop-1", AmountFen: 10000, PaidAt: paidAt, Identities: ids})
	require.NoError(t, err)
	return ev
}

func TestErasureKeepsAggregatesAndLateEventsOut(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		o := newOperator(t, s)
		ctx := context.Background()
		before := o.clock
		a := o.oneID(t, orderAt(t, "e1", "jd", before, phone("13812345678"), id("jd_pin", "pin-1")))
		o.clock = o.clock.Add(time.Hour)
		var er Erasure
		require.Equal(t, http.StatusOK, o.do(t, http.MethodDelete, "/v1/members/"+a+"/personal-data", &er))
		assert.Equal(t, a, er.OneID)
		assert.Equal(t, 3, er.ErasedIdentities, "phone (its sha256 shares the key), md5 and the JD pin")
		m := o.member(t, a)
		assert.Empty(t, m.Identities)
		assert.Equal(t, member.PoolCiphertext, m.Pool)
		require.NotNil(t, m.ErasedAt)
		assert.Equal(t, member.HistoryErased, m.History[len(m.History)-1].Kind)
		assert.Equal(t, "privacy@brand.example", m.History[len(m.History)-1].By)
		var link member.IdentityLink
		require.ErrorIs(t, o.store.Get(ctx, member.Identities, o.h.Keyer.Key(events.Identity{Type: "jd_pin", Value: "pin-1"}), &link), store.ErrNotFound)

		var again Erasure
		require.Equal(t, http.StatusOK, o.do(t, http.MethodDelete, "/v1/members/"+a+"/personal-data", &again))
		assert.Equal(t, er.ErasedAt, again.ErasedAt, "asked twice, erased once")
		erased := brokertest.Events(t, o.js, stream.Events, events.MemberErased)
		require.Len(t, erased, 1, "announced once (the second announcement has the same id)")

		// The platform retries the old order: it happened before the erasure, so nothing comes back.
		assert.Empty(t, o.handle(t, orderAt(t, "e1-retry", "jd", before, phone("13812345678"), id("jd_pin", "pin-1"))))
		assert.Empty(t, o.member(t, a).Identities)
		// A new order after the erasure is a new member.
		fresh := o.oneID(t, orderAt(t, "e2", "jd", o.clock.Add(time.Hour), phone("13812345678")))
		assert.NotEqual(t, a, fresh)
		assert.Equal(t, http.StatusNotFound, o.do(t, http.MethodDelete, "/v1/members/om_nobodynobodynobody0/personal-data", nil))
	})
}

func TestQuarantineIsListedReleasedAndRejectedOnce(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		o := newOperator(t, s)
		join := func(prefix string) cloudevents.Event {
			var cards []events.Identity
			for i := range 4 {
				c := id("pos_card", prefix+string(rune('a'+i)))
				cards = append(cards, c)
				o.oneID(t, order(t, prefix+string(rune('a'+i)), "pos", c))
			}
			ev := order(t, prefix+"-joiner", "pos", append(cards, phone("13812345678"))...)
			assert.Empty(t, o.handle(t, ev))
			return ev
		}
		first, second := join("x"), join("y")
		var list struct {
			Items []member.Quarantined `json:"items"`
		}
		require.Equal(t, http.StatusOK, o.do(t, http.MethodGet, "/v1/quarantine", &list))
		require.Len(t, list.Items, 2)
		raw, err := json.Marshal(list)
		require.NoError(t, err)
		assert.NotContains(t, string(raw), "13812345678", "held events are sealed")

		var q member.Quarantined
		require.Equal(t, http.StatusOK, o.do(t, http.MethodPost, "/v1/quarantine/"+receiptKey(first)+"/release", &q))
		assert.Equal(t, member.QuarantineReleased, q.Status)
		assert.Equal(t, "privacy@brand.example", q.DecidedBy)
		require.Equal(t, http.StatusOK, o.do(t, http.MethodPost, "/v1/quarantine/"+receiptKey(first)+"/release", nil), "a release may be repeated")
		released := brokertest.Events(t, o.js, stream.Events, events.OrderPaid)
		require.Len(t, released, 1, "re-sent once")
		assert.Equal(t, first.ID()+"~released", released[0].ID())
		assert.Contains(t, o.handle(t, released[0]), events.MemberMerged, "the released event merges")

		require.Equal(t, http.StatusOK, o.do(t, http.MethodPost, "/v1/quarantine/"+receiptKey(second)+"/reject", nil))
		assert.Equal(t, http.StatusConflict, o.do(t, http.MethodPost, "/v1/quarantine/"+receiptKey(second)+"/release", nil))
		assert.Equal(t, http.StatusNotFound, o.do(t, http.MethodPost, "/v1/quarantine/nope/release", nil))
		require.Equal(t, http.StatusOK, o.do(t, http.MethodGet, "/v1/quarantine", &list))
		assert.Empty(t, list.Items, "nothing pending")
	})
}

func receiptKey(ev cloudevents.Event) string { return receipt.Key(Name, ev) }

func TestKeyRotationResealsEveryPhone(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		o := newOperator(t, s)
		a := o.oneID(t, order(t, "e1", "pos", phone("13812345678")))
		rotated, err := pii.ParseKeyring(pii.NewKey("k2") + "," + o.keySpec)
		require.NoError(t, err)
		o.h.Keys = rotated
		var r Reseal
		require.Equal(t, http.StatusOK, o.do(t, http.MethodPost, "/v1/admin/pii:reseal", &r))
		assert.Equal(t, Reseal{Members: 1, Resealed: 3, KeyID: "k2"}, r, "the phone and the two hashes it yields")
		want := map[string]string{identity.Phone: "13812345678", identity.PhoneSHA256Type: identity.PhoneSHA256("13812345678"),
			identity.PhoneMD5Type: identity.PhoneMD5("13812345678")}
		for _, s := range o.member(t, a).Identities {
			assert.True(t, strings.HasPrefix(s.Sealed, "k2:"), "%s: got sealed under %q, want k2", s.Type, s.Sealed[:3])
			plain, err := rotated.Open(s.Sealed, s.Type)
			require.NoError(t, err)
			assert.Equal(t, want[s.Type], plain, "%s: got opened, want", s.Type)
		}
		require.Equal(t, http.StatusOK, o.do(t, http.MethodPost, "/v1/admin/pii:reseal", &r))
		assert.Zero(t, r.Resealed, "nothing left under the old key")
	})
}

func TestSplitRequestsThatCannotBeDone(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		o := newOperator(t, s)
		a := o.oneID(t, order(t, "e1", "pos", phone("13811110000"), id("pos_card", "c1")))
		other := o.oneID(t, order(t, "e2", "pos", phone("13922220000")))
		post := func(target, body string) (int, map[string]any) {
			req, err := http.NewRequest(http.MethodPost, o.url+"/v1/members/"+target, strings.NewReader(body))
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer admin-secret")
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			var out map[string]any
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
			return resp.StatusCode, out
		}
		tests := []struct {
			name, target, body string
			want               int
		}{
			{"another member's identity", a + ":split", `{"identities":[{"type":"phone","value":"13922220000"}]}`, http.StatusBadRequest},
			{"every identity", a + ":split", `{"identities":[{"type":"phone","value":"13811110000"},{"type":"pos_card","value":"c1"}]}`, http.StatusBadRequest},
			{"malformed", a + ":split", `{"identities":"all"}`, http.StatusBadRequest},
			{"unknown member", "om_nobodynobodynobody0:split", `{"identities":[{"type":"pos_card","value":"c1"}]}`, http.StatusNotFound},
			{"not an action", a + ":explode", `{}`, http.StatusNotFound},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				status, out := post(tt.target, tt.body)
				assert.Equal(t, tt.want, status, "answer %v", out)
			})
		}
		status, out := post(a+":split", `{"identities":[{"type":"pos_card","value":"c1"}],"reason":"card lent to a friend"}`)
		require.Equal(t, http.StatusOK, status, "answer %v", out)
		to := out["toOneId"].(string)
		assert.NotEqual(t, a, to)
		assert.NotEqual(t, other, to, "identities that never belonged to an absorbed member go to a new one")
		assert.Equal(t, to, o.oneID(t, order(t, "e3", "pos", id("pos_card", "c1"))))
		splits := brokertest.Events(t, o.js, stream.Events, events.MemberSplit)
		require.Len(t, splits, 1)
	})
}

// TestOperatorBodiesOverTheLimitGet413: the merge preview and the split read at most 64 KiB and
// refuse more with 413 and a JSON error, splitting nothing.
func TestOperatorBodiesOverTheLimitGet413(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		o := newOperator(t, s)
		a := o.oneID(t, order(t, "e1", "pos", phone("13811110000"), id("pos_card", "c1")))
		big := `{"identities":[{"type":"pos_card","value":"c1"}],"reason":"` + strings.Repeat("x", 64<<10) + `"}`
		for _, path := range []string{"/v1/members:merge-preview", "/v1/members/" + a + ":split"} {
			req, err := http.NewRequest(http.MethodPost, o.url+path, strings.NewReader(big))
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer admin-secret")
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			var got runtime.ErrorBody
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
			resp.Body.Close()
			assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, "%s: got, want 413", path)
			assert.Equal(t, "body", got.Field, path)
		}
		assert.Empty(t, brokertest.Events(t, o.js, stream.Events, events.MemberSplit), "nothing split")
	})
}
