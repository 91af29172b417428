package profile

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/broker/brokertest"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/loyalty"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/stream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const spiAppKey, spiSecret = "12497914", "spi-secret"

// platformSign signs an SPI call as 会员通 would under the TOP scheme, written here from TOP's
// document rather than with shared/platform/top: md5(secret + sorted name+value + body + secret).
func platformSign(q url.Values, body, secret string) string {
	names := make([]string, 0, len(q))
	for k := range q {
		names = append(names, k)
	}
	sort.Strings(names)
	s := secret
	for _, k := range names {
		s += k + q.Get(k)
	}
	sum := md5.Sum([]byte(s + body + secret))
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

func spiRequest(method, body string, mutate func(q url.Values)) *http.Request {
	q := url.Values{"app_key": {spiAppKey}, "method": {method}, "timestamp": {"2026-11-11 08:00:30"}, "sign_method": {"md5"}}
	if mutate != nil {
		mutate(q)
	}
	if q.Get("sign") == "" {
		q.Set("sign", platformSign(q, body, spiSecret))
	}
	return httptest.NewRequest(http.MethodPost, TmallMemberPath+"?"+q.Encode(), strings.NewReader(body))
}

// t0 is 2026-11-11 00:00 UTC = 08:00 GMT+8, so the requests above are 30 s old.
func spiAPI(s Store) *API {
	return &API{Store: s, Keyer: fuzzKeyer, Ladder: loyalty.Defaults().Ladder(), Now: func() time.Time { return t0 },
		Tmall: &TmallMember{AppKey: spiAppKey, Secret: spiSecret, Log: slog.New(slog.NewJSONHandler(io.Discard, nil))}}
}

type noPublish struct{ calls int }

func (p *noPublish) Publish(context.Context, *cloudevents.Event, []cloudevents.Event) error {
	p.calls++
	return errors.New("nothing may be published here")
}

func call(t *testing.T, h http.Handler, r *http.Request) (int, map[string]any) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var out map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &out), w.Body.String())
	return w.Code, out
}

// TestVerifySPIBothReadings: whether 会员通 signs the body after the parameters is unconfirmed;
// each reading accepts what it signs and rejects the other's sign.
func TestVerifySPIBothReadings(t *testing.T) {
	q := url.Values{"app_key": {spiAppKey}, "method": {SPIMethodQuery}, "timestamp": {"2026-11-11 08:00:30"}, "sign_method": {"md5"}}
	body := `{"mobile":"13812345678"}`
	params := func(sign string) map[string]string {
		return map[string]string{"app_key": spiAppKey, "method": SPIMethodQuery, "timestamp": "2026-11-11 08:00:30", "sign_method": "md5", "sign": sign}
	}
	withBody, withoutBody := platformSign(q, body, spiSecret), platformSign(q, "", spiSecret)
	for _, c := range []struct {
		name      string
		sign      string
		signsBody bool
		ok        bool
	}{
		{"body signed, body reading", withBody, true, true},
		{"body not signed, body reading", withoutBody, true, false},
		{"body not signed, parameters reading", withoutBody, false, true},
		{"body signed, parameters reading", withBody, false, false},
	} {
		err := verifySPI(params(c.sign), []byte(body), spiSecret, t0, c.signsBody)
		assert.Equal(t, c.ok, err == nil, "%s: got %v", c.name, err)
	}
}

func TestTmallMemberBindQuery(t *testing.T) {
	pub := &noPublish{}
	h := spiAPI(seededStore(t)).TmallMemberHandler(pub)
	for _, c := range []struct {
		name, body, code string
		point, level     float64
	}{
		{"by mobile", `{"seller_name":"omni旗舰店","nick":"zhangsan","mobile":"13812345678"}`, "SUC", 2470, 2},
		{"by union_id (omid)", `{"union_id":"omid-1"}`, "SUC", 2470, 2},
		{"unknown mobile", `{"mobile":"13900000000"}`, "E01", 0, 0},
	} {
		status, got := call(t, h, spiRequest(SPIMethodQuery, c.body, nil))
		require.Equal(t, http.StatusOK, status, c.name)
		assert.Equal(t, c.code, got["query_code"], "%s: got query_code, want", c.name)
		m := got["member"].(map[string]any)
		assert.Equal(t, c.point, m["point"], "%s: got point, want", c.name)
		assert.Equal(t, c.level, m["level"], "%s: got level, want (silver is rank 1, level 2)", c.name)
	}
	assert.Zero(t, pub.calls, "a query publishes nothing")
}

func TestTmallMemberRejectsBadCalls(t *testing.T) {
	pub := &noPublish{}
	h := spiAPI(seededStore(t)).TmallMemberHandler(pub)
	good := `{"mobile":"13812345678"}`
	for _, c := range []struct {
		name   string
		req    *http.Request
		status int
		field  string
	}{
		{"bad sign", spiRequest(SPIMethodJoin, good, func(q url.Values) { q.Set("sign", "00") }), 401, ""},
		{"body changed after signing", func() *http.Request {
			r := spiRequest(SPIMethodJoin, good, nil)
			r.Body = io.NopCloser(strings.NewReader(`{"mobile":"13900000000"}`))
			return r
		}(), 401, ""},
		{"stale timestamp", spiRequest(SPIMethodJoin, good, func(q url.Values) { q.Set("timestamp", "2026-11-11 07:40:00") }), 401, ""},
		{"unknown app", spiRequest(SPIMethodJoin, good, func(q url.Values) { q.Set("app_key", "999") }), 404, ""},
		{"unknown method", spiRequest("tmall.member.delete", good, nil), 400, "method"},
		{"not JSON", spiRequest(SPIMethodJoin, `{"mobile":`, nil), 400, "body"},
		{"bad mobile", spiRequest(SPIMethodJoin, `{"mobile":"12345"}`, nil), 400, "mobile"},
		{"no buyer", spiRequest(SPIMethodJoin, `{"nick":"x"}`, nil), 400, "mobile"},
		{"wrong type", spiRequest(SPIMethodJoin, `{"open_id":7}`, nil), 400, "open_id"},
		{"too large", spiRequest(SPIMethodJoin, `{"nick":"`+strings.Repeat("x", maxSPIBody)+`"}`, nil), 413, ""},
	} {
		status, got := call(t, h, c.req)
		assert.Equal(t, c.status, status, "%s: got status, want", c.name)
		assert.NotEmpty(t, got["error"], c.name)
		if c.field != "" {
			assert.Equal(t, c.field, got["field"], "%s: got field, want", c.name)
		}
	}
	assert.Zero(t, pub.calls, "nothing reached the chain")
}

func TestTmallMemberJoinIsIdempotent(t *testing.T) {
	srv := brokertest.Start(t)
	rt, err := runtime.New(context.Background(), runtime.Defaults(), brokertest.Connect(t, srv), slog.New(slog.NewJSONHandler(io.Discard, nil)))
	require.NoError(t, err)
	h := spiAPI(seededStore(t)).TmallMemberHandler(rt.Publisher(Name))
	body := `{"seller_name":"omni旗舰店","nick":"lisi","open_id":"AAE-open","union_id":"omid-new","mobile":"+86 139 8765 4321"}`
	for range 3 { // the first join and two backfills of it
		status, got := call(t, h, spiRequest(SPIMethodJoin, body, nil))
		require.Equal(t, http.StatusOK, status)
		assert.Equal(t, "SUC", got["query_code"])
		assert.Equal(t, float64(levelBase), got["member"].(map[string]any)["level"], "a new member starts at the base level")
	}
	stored := brokertest.Events(t, rt.JetStream(), stream.Events, events.Subject(events.MemberRegistered))
	require.Len(t, stored, 1, "got stored joins, want one")
	ev := stored[0]
	req, err := ParseSPIRequest([]byte(body))
	require.NoError(t, err)
	wantID, err := req.JoinID(spiAppKey, fuzzKeyer)
	require.NoError(t, err)
	assert.Equal(t, wantID, ev.ID())
	data, err := events.Decode[events.MemberRegisteredData](ev)
	require.NoError(t, err)
	assert.Equal(t, []events.Identity{{Type: "tmall_omid", Value: "omid-new"}, {Type: "taobao_open_uid", Value: "AAE-open", Scope: spiAppKey},
		{Type: "phone", Value: "13987654321"}}, data.Identities)
	assert.Equal(t, "omni旗舰店", data.ShopID)
	mfs, err := rt.Publisher(Name).Metrics().Gather()
	require.NoError(t, err)
	var observed []string
	for _, mf := range mfs {
		if mf.GetName() == "omnimember_tmall_member_seconds" {
			for _, m := range mf.GetMetric() {
				observed = append(observed, fmt.Sprintf("%s/%s:%d", m.GetLabel()[1].GetValue(), m.GetLabel()[0].GetValue(), m.GetHistogram().GetSampleCount()))
			}
		}
	}
	assert.Equal(t, []string{"tmall.member.join/SUC:3"}, observed, "got latency series (method/code:count), want")
}

// fuzzKeyer keys the SPI's identities.
var fuzzKeyer = func() *identity.Keyer {
	k, err := identity.ParseKeys(testKeyerSpec)
	if err != nil {
		panic(err)
	}
	return k
}()

func FuzzSPIRequest(f *testing.F) {
	for _, s := range []string{`{"seller_name":"s","nick":"n","mobile":"15088890012"}`, `{"union_id":"u"}`, `{"open_id":1}`, `[]`, `{"mobile":"+8613812345678"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseSPIRequest(body)
		if err != nil {
			var fe *events.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error without a field: %v", err)
			}
			return
		}
		ids := r.Identities("k")
		if len(ids) == 0 {
			t.Fatal("accepted a request without a buyer")
		}
		if _, err := r.JoinID("k", fuzzKeyer); err != nil {
			t.Fatalf("accepted %q but cannot key its join: %v", body, err)
		}
		if slices.ContainsFunc(ids, func(id events.Identity) bool { return len(id.Value) > maxSPIField }) {
			t.Fatal("accepted an over-long field")
		}
	})
}

// BenchmarkTmallBindQuery measures the bind-query handler against the embedded store: signature
// check, body parse, identity lookup and the member's points and tier, reported as p50/p99.
func BenchmarkTmallBindQuery(b *testing.B) {
	h := spiAPI(seededStore(b)).TmallMemberHandler(&noPublish{})
	body := `{"seller_name":"omni旗舰店","nick":"zhangsan","mobile":"13812345678"}`
	proto := spiRequest(SPIMethodQuery, body, nil)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		r := proto.Clone(context.Background())
		r.Body = io.NopCloser(bytes.NewReader([]byte(body)))
		w := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(w, r)
		lat = append(lat, time.Since(start))
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"SUC"`) {
			b.Fatalf("got %d %s", w.Code, w.Body.String())
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

func TestTmallMemberFromEnv(t *testing.T) {
	get := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	off, err := TmallMemberFromEnv(get(nil), nil)
	require.NoError(t, err)
	assert.Nil(t, off)
	on, err := TmallMemberFromEnv(get(map[string]string{"TMALL_MEMBER_APP_KEY": "k", "TMALL_MEMBER_SECRET": "hush-hush"}), nil)
	require.NoError(t, err)
	assert.Equal(t, "k", on.AppKey)
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("start", "tmall", on)
	assert.NotContains(t, logged.String(), "hush-hush")
	_, err = TmallMemberFromEnv(get(map[string]string{"TMALL_MEMBER_APP_KEY": "k"}), nil)
	assert.Error(t, err)
}

// BenchmarkTmallJoin measures a join end to end on a real JetStream: verification, parsing, the
// member.registered publish and its acknowledgement, and the answer; every join is a new buyer.
func BenchmarkTmallJoin(b *testing.B) {
	srv := brokertest.Start(b)
	rt, err := runtime.New(context.Background(), runtime.Defaults(), brokertest.Connect(b, srv), slog.New(slog.NewJSONHandler(io.Discard, nil)))
	require.NoError(b, err)
	h := spiAPI(seededStore(b)).TmallMemberHandler(rt.Publisher(Name))
	lat := make([]time.Duration, 0, b.N)
	i := 0
	for b.Loop() {
		i++
		body := fmt.Sprintf(`{"seller_name":"omni旗舰店","open_id":"bench-%d","mobile":"139%08d"}`, i, i)
		r := spiRequest(SPIMethodJoin, body, nil)
		w := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(w, r)
		lat = append(lat, time.Since(start))
		if !strings.Contains(w.Body.String(), `"SUC"`) {
			b.Fatalf("got %d %s", w.Code, w.Body.String())
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
