package profile

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/credential"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/ledger"
	"github.com/omnimember/omnimember/shared/loyalty"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store/embedded"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const alice, absorbed = "om_aaaaaaaaaaaaaaaaaaaa", "om_bbbbbbbbbbbbbbbbbbbb"

var t0 = time.Date(2026, 11, 11, 0, 0, 0, 0, time.UTC)

// readerToken opens every read route in these tests (a staff tool's credential).
const readerToken = "staff-tool-token-0123456789"

// testKeyerSpec keys the seeded identities as match would.
var testKeyerSpec = identity.NewKey("p1")

func testKeyer(t testing.TB) *identity.Keyer {
	k, err := identity.ParseKeys(testKeyerSpec)
	require.NoError(t, err)
	return k
}

func server(t *testing.T) *httptest.Server {
	return serverWith(t, testReaders(t))
}

// testReaders holds the staff tool's reader, with a rate no test reaches.
func testReaders(t *testing.T) *credential.Readers {
	readers, err := credential.NewReaders(credential.Reader{Name: "staff", Token: readerToken, Scopes: credential.Scopes, LookupsPerMinute: 6000, LookupBurst: 100})
	require.NoError(t, err)
	return readers
}

func serverWith(t *testing.T, readers *credential.Readers) *httptest.Server {
	s := seededStore(t)
	mux := http.NewServeMux()
	(&API{Store: s, Keyer: testKeyer(t), Ladder: loyalty.Defaults().Ladder(), Now: func() time.Time { return t0 }, Readers: readers}).Routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// seededStore holds alice (phone 13812345678 with its keyed hashes, tmall_omid omid-1, silver, 2470
// points), the member she absorbed, their orders and activity, keyed with testKeyer.
func seededStore(t testing.TB) *embedded.Store {
	s, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"), embedded.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	keys := testKeyer(t)
	phone := events.Identity{Type: "phone", Value: "13812345678"}
	md5 := keys.Current(events.Identity{Type: "phone_md5", Value: identity.PhoneMD5("13812345678")})
	sha := keys.Current(events.Identity{Type: "phone_sha256", Value: identity.PhoneSHA256("13812345678")})
	omid := events.Identity{Type: "tmall_omid", Value: "omid-1"}
	m := member.Member{OneID: alice, CreatedAt: t0, UpdatedAt: t0, Channels: []string{"tmall", "jd"}, Pool: member.PoolPlaintext,
		MergedFrom: []string{absorbed}, Identities: []member.StoredIdentity{
			{Type: "phone", Key: keys.Key(phone), Sealed: "k1:c2VhbGVk", Masked: "138****5678", Channel: "jd", FirstSeen: t0},
			{Type: "phone_sha256", Key: sha.Key, Value: sha.Identity.Value, Sealed: "k1:c2VhbGVk", Channel: "jd", FirstSeen: t0},
			{Type: "phone_md5", Key: md5.Key, Value: md5.Identity.Value, Sealed: "k1:c2VhbGVk", Channel: "jd", FirstSeen: t0},
			{Type: "tmall_omid", Key: keys.Key(omid), Value: "omid-1", Channel: "tmall", FirstSeen: t0}}}
	require.NoError(t, s.Set(ctx, member.Members, alice, m))
	require.NoError(t, s.Set(ctx, member.Members, absorbed, member.Member{OneID: absorbed, MergedInto: alice}))
	for _, l := range []struct{ key, typ string }{{keys.Key(phone), "phone"}, {md5.Key, "phone_md5"}, {keys.Key(omid), "tmall_omid"}} {
		require.NoError(t, s.Set(ctx, member.Identities, l.key, member.IdentityLink{OneID: alice, Type: l.typ}))
	}
	lots := []member.Lot{{ID: "l1", OrderID: "o1", Channel: "tmall", Earned: 1000, Remaining: 970, EarnedAt: t0, ExpiresAt: t0.AddDate(1, 0, 0)},
		{ID: "l2", OrderID: "o2", Channel: "jd", Earned: 1000, Remaining: 1000, EarnedAt: t0.AddDate(0, 0, 10), ExpiresAt: t0.AddDate(1, 0, 10)},
		{ID: "l3", OrderID: "o3", Channel: "jd", Earned: 500, Remaining: 500, EarnedAt: t0.AddDate(0, 0, 40), ExpiresAt: t0.AddDate(1, 0, 40)}}
	require.NoError(t, s.Set(ctx, member.Accounts, alice, member.Account{OneID: alice, Account: ledger.Account{Balance: 2470, Lots: lots}, OrderCount: 3, NetAmountFen: 247000}))
	// Two orders resolved to alice, one to the member she absorbed, and a refund still waiting for its order.
	for _, o := range []member.Order{
		{OrderID: "o1", Channel: "tmall", OneID: alice, PaidAt: t0, Order: ledger.Order{Paid: true, PaidFen: 100000, Refunds: map[string]int64{"r": 3000}, AwardedPoints: 970}},
		{OrderID: "o2", Channel: "jd", OneID: absorbed, PaidAt: t0.AddDate(0, 0, 10), Order: ledger.Order{Paid: true, PaidFen: 100000, AwardedPoints: 1000}},
		{OrderID: "o3", Channel: "jd", OneID: alice, PaidAt: t0.AddDate(0, 0, 40), Order: ledger.Order{Paid: true, PaidFen: 50000, AwardedPoints: 500}},
		{OrderID: "o4", Channel: "pos", OneID: alice, Order: ledger.Order{Refunds: map[string]int64{"r": 100}}},
	} {
		require.NoError(t, s.Set(ctx, member.Orders, o.Channel+"-"+o.OrderID, o))
	}
	require.NoError(t, s.Set(ctx, member.Activities, absorbed, member.Activity{OneID: absorbed, ByChannel: map[string]*member.ChannelActivity{
		"app": {Count: 2, LastAt: t0.AddDate(0, 2, 0), Kinds: map[string]int64{"live_view": 2}}}}))
	require.NoError(t, s.Set(ctx, member.Tiers, alice, member.TierState{OneID: alice, Level: "silver", NetSpendFen: 247000, Score: 247000}))
	return s
}

func get(t *testing.T, url string, into any) int {
	t.Helper()
	return getAs(t, readerToken, url, into)
}

func getAs(t *testing.T, token, url string, into any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, "application/json; charset=utf-8", resp.Header.Get("Content-Type"))
	require.NoError(t, json.NewDecoder(resp.Body).Decode(into))
	return resp.StatusCode
}

func TestProfileFields(t *testing.T) {
	srv := server(t)
	var raw map[string]any
	require.Equal(t, http.StatusOK, get(t, srv.URL+"/v1/members/"+alice, &raw))
	for _, field := range []string{"oneId", "identities", "pool", "points", "tier", "orders"} {
		assert.Contains(t, raw, field, "the contract's profile fields")
	}
	var p Profile
	require.Equal(t, http.StatusOK, get(t, srv.URL+"/v1/members/"+alice, &p))
	assert.Equal(t, int64(2470), p.Points.Balance)
	assert.Equal(t, "silver", p.Tier.Level)
	assert.Equal(t, &NextLevel{Level: "gold", RemainingFen: 53000}, p.Tier.Next)
	assert.Equal(t, loyalty.Defaults().Ladder()[1].Benefits, p.Tier.Benefits)
	assert.Equal(t, int64(3), p.Orders.Count, "orders under the absorbed OneID count; a refund waiting for its order does not")
	assert.Equal(t, int64(97000+100000+50000), p.Orders.NetAmountFen)
	assert.Equal(t, int64(247000/3), p.Orders.AverageOrderFen)
	assert.Equal(t, map[string]int64{"tmall": 1, "jd": 2}, map[string]int64{"tmall": p.Orders.ByChannel["tmall"].Count, "jd": p.Orders.ByChannel["jd"].Count})
	require.NotNil(t, p.Orders.RepurchaseCycleDays)
	assert.Equal(t, 20.0, *p.Orders.RepurchaseCycleDays, "median of 10 and 30 days")
	assert.Len(t, p.RecentOrders, 3)
	assert.Equal(t, "o3", p.RecentOrders[0].OrderID, "newest first")
	assert.Equal(t, &Expiry{At: t0.AddDate(1, 0, 0), Points: 970}, p.Points.NextExpiry)
	assert.Len(t, p.Points.Lots, 3)
	assert.Equal(t, int64(2), p.Interactions.Count)
	assert.Equal(t, int64(2), p.Interactions.ByChannel["app"].Kinds["live_view"])
	assert.Equal(t, t0.AddDate(0, 2, 0), *p.LastActiveAt, "the live view came after the last order")
	assert.Len(t, p.IdentitiesByChannel["jd"], 1)
	assert.Equal(t, []Coupon{}, p.Coupons)
	assert.Equal(t, member.PoolPlaintext, p.Pool)
	assert.Equal(t, "138****5678", p.Identities[0].Value, "phones only masked")
	assert.Len(t, p.Identities, 2, "the phone's mask and the omid: no hash of the phone, keyed or not")
	body, err := json.Marshal(raw)
	require.NoError(t, err)
	keys := testKeyer(t)
	for _, leak := range []string{"13812345678", identity.PhoneSHA256("13812345678"), identity.PhoneMD5("13812345678"), "phone_sha256", "phone_md5",
		keys.Key(events.Identity{Type: "phone", Value: "13812345678"}), keys.Key(events.Identity{Type: "phone_md5", Value: identity.PhoneMD5("13812345678")})} {
		assert.NotContains(t, string(body), leak, "the profile shows the phone's mask only")
	}
}

// TestLookupDuringARotation: identities match keyed under the older key are still found while it
// is listed after the new current one.
func TestLookupDuringARotation(t *testing.T) {
	rotated, err := identity.ParseKeys(identity.NewKey("p2") + "," + testKeyerSpec)
	require.NoError(t, err)
	mux := http.NewServeMux()
	(&API{Store: seededStore(t), Keyer: rotated, Ladder: loyalty.Defaults().Ladder(), Now: func() time.Time { return t0 }, Readers: testReaders(t)}).Routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	var p Profile
	require.Equal(t, http.StatusOK, get(t, srv.URL+"/v1/members:lookup?type=phone&value=13812345678", &p))
	assert.Equal(t, alice, p.OneID)
}

func TestAbsorbedOneIDAnswersWithTheSurvivor(t *testing.T) {
	srv := server(t)
	var p Profile
	require.Equal(t, http.StatusOK, get(t, srv.URL+"/v1/members/"+absorbed, &p))
	assert.Equal(t, alice, p.OneID)
	assert.Equal(t, absorbed, p.RequestedOneID)
}

func TestLookup(t *testing.T) {
	srv := server(t)
	tests := []struct {
		name, typ, value string
		wantStatus       int
		wantField        string
	}{
		{"plain phone", "phone", "13812345678", http.StatusOK, ""},
		{"formatted phone", "phone", "+86 138-1234-5678", http.StatusOK, ""},
		{"full-width phone", "phone", "１３８１２３４５６７８", http.StatusOK, ""},
		{"platform's sha256, keyed on arrival", "phone_sha256", identity.PhoneSHA256("13812345678"), http.StatusOK, ""},
		{"platform's md5, keyed on arrival", "phone_md5", strings.ToUpper(identity.PhoneMD5("13812345678")), http.StatusOK, ""},
		{"a keyed value is no platform hash", "phone_sha256", testKeyer(t).Key(events.Identity{Type: "phone", Value: "13812345678"}), http.StatusBadRequest, "value"},
		{"platform id", "tmall_omid", "omid-1", http.StatusOK, ""},
		{"unknown phone", "phone", "13900000000", http.StatusNotFound, ""},
		{"not a phone", "phone", "12345", http.StatusBadRequest, "value"},
		{"no value", "phone", "", http.StatusBadRequest, "value"},
		{"scoped without scope", "tmall_ouid", "x", http.StatusBadRequest, "value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := srv.URL + "/v1/members:lookup?type=" + url.QueryEscape(tt.typ) + "&value=" + url.QueryEscape(tt.value)
			if tt.wantStatus == http.StatusOK {
				var p Profile
				require.Equal(t, tt.wantStatus, get(t, u, &p))
				assert.Equal(t, alice, p.OneID)
				return
			}
			var eb runtime.ErrorBody
			require.Equal(t, tt.wantStatus, get(t, u, &eb))
			assert.NotEmpty(t, eb.Error)
			assert.Equal(t, tt.wantField, eb.Field)
		})
	}
}

func TestUnknownMemberIs404JSON(t *testing.T) {
	srv := server(t)
	for _, id := range []string{"om_cccccccccccccccccccc", "not..valid"} {
		var eb runtime.ErrorBody
		require.Equal(t, http.StatusNotFound, get(t, srv.URL+"/v1/members/"+id, &eb))
		assert.Contains(t, eb.Error, "not found")
	}
}

func TestOrdersArePaged(t *testing.T) {
	srv := server(t)
	var seen []string
	next := ""
	for range 5 {
		var page OrdersPage
		u := srv.URL + "/v1/members/" + alice + "/orders?limit=2"
		if next != "" {
			u += "&after=" + next
		}
		require.Equal(t, http.StatusOK, get(t, u, &page))
		for _, o := range page.Items {
			seen = append(seen, o.OrderID)
		}
		if next = page.Next; next == "" {
			break
		}
	}
	assert.Equal(t, []string{"o3", "o2", "o1"}, seen, "every order once, newest first")
	var eb runtime.ErrorBody
	require.Equal(t, http.StatusBadRequest, get(t, srv.URL+"/v1/members/"+alice+"/orders?after=garbage", &eb))
	assert.Equal(t, "after", eb.Field)
}

// TestReadRoutesNeedAReaderCredential: no profile route answers without a reader token; each
// needs its scope; with no reader configured the routes are closed; lookups are rate-limited
// per credential, so a phone lookup is no cheap membership oracle.
func TestReadRoutesNeedAReaderCredential(t *testing.T) {
	const appToken, closedToken = "channel-app-token-0123456789", "nobody-configured-0123456789"
	now := t0
	readers, err := credential.NewReaders(
		credential.Reader{Name: "staff", Token: readerToken, Scopes: credential.Scopes},
		credential.Reader{Name: "channel-app", Token: appToken, Scopes: []string{credential.ScopeLookup}, LookupsPerMinute: 2, LookupBurst: 2})
	require.NoError(t, err)
	readers.SetClock(func() time.Time { return now })
	srv := serverWith(t, readers)
	closed := serverWith(t, nil)
	lookup := "/v1/members:lookup?type=phone&value=13812345678"
	routes := []string{"/v1/members/" + alice, "/v1/members/" + alice + "/orders", lookup}
	for _, route := range routes {
		tests := []struct {
			name       string
			base       string
			token      string
			wantStatus int
		}{
			{"anonymous", srv.URL, "", http.StatusUnauthorized},
			{"unknown token", srv.URL, "not-a-reader-token-0123456789", http.StatusUnauthorized},
			{"no reader configured", closed.URL, closedToken, http.StatusForbidden},
			{"anonymous, no reader configured", closed.URL, "", http.StatusUnauthorized},
		}
		if route != lookup {
			tests = append(tests, struct {
				name       string
				base       string
				token      string
				wantStatus int
			}{"without the scope", srv.URL, appToken, http.StatusForbidden})
		}
		for _, tt := range tests {
			t.Run(route+" "+tt.name, func(t *testing.T) {
				var eb runtime.ErrorBody
				assert.Equal(t, tt.wantStatus, getAs(t, tt.token, tt.base+route, &eb), "got status, want (error %q)", eb.Error)
				assert.NotEmpty(t, eb.Error)
			})
		}
	}
	t.Run("lookups are rate-limited per credential", func(t *testing.T) {
		var p Profile
		for i := range 2 {
			require.Equal(t, http.StatusOK, getAs(t, appToken, srv.URL+lookup, &p), "lookup %d within the burst", i)
		}
		req, err := http.NewRequest(http.MethodGet, srv.URL+lookup, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+appToken)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
		assert.Equal(t, "30", resp.Header.Get("Retry-After"), "got Retry-After, want one lookup's refill at 2 a minute")
		require.Equal(t, http.StatusOK, getAs(t, readerToken, srv.URL+lookup, &p), "another credential has its own bucket")
		now = now.Add(30 * time.Second)
		require.Equal(t, http.StatusOK, getAs(t, appToken, srv.URL+lookup, &p), "refilled after Retry-After")
	})
}
