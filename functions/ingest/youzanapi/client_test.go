package youzanapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/omnimember/omnimember/functions/ingest/outbound"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/omnimember/omnimember/functions/ingest/youzanapi"
	"github.com/omnimember/omnimember/shared/platform"
	"github.com/omnimember/omnimember/shared/platform/youzan"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	clientID = "6cd25b3f99727975b5"
	secret   = "c3f3b5d5c2a1b3d9e8f7a6b5c4d3e2f1"
	kdtID    = "40061234"
	tid      = "E20261125183000012000001"
)

// gateway plays the Youzan cloud gateway: /auth/token checks the silent-authorisation request and
// issues numbered tokens; youzan.trade.get accepts only the last issued token.
type gateway struct {
	mu       sync.Mutex
	issued   int
	current  string
	expires  time.Time
	calls    map[string]int
	fail     int  // 503 for this many next requests
	revoke   bool // answer the next trade.get with 4202 (token invalid)
	rejected int
}

func newGateway(t *testing.T) (*gateway, *httptest.Server) {
	g := &gateway{calls: map[string]int{}}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return g, srv
}

func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls[r.URL.Path]++
	if g.fail > 0 {
		g.fail--
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	var body map[string]any
	raw, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(raw, &body)
	switch r.URL.Path {
	case "/auth/token":
		want := map[string]any{"client_id": clientID, "client_secret": secret, "authorize_type": "silent", "grant_id": kdtID, "refresh": false}
		if fmt.Sprint(body) != fmt.Sprint(want) {
			g.rejected++
			fmt.Fprint(w, `{"success":false,"code":4001,"message":"client_secret 错误"}`)
			return
		}
		g.issued++
		g.current = fmt.Sprintf("token-%d", g.issued)
		fmt.Fprintf(w, `{"success":true,"code":200,"message":"success","data":{"access_token":%q,"expires":%d,"scope":"trade"}}`, g.current, g.expires.UnixMilli())
	case "/api/youzan.trade.get/4.0.0":
		if r.URL.Query().Get("access_token") != g.current || g.revoke {
			g.revoke = false
			fmt.Fprint(w, `{"success":false,"code":4202,"message":"access_token 无效"}`)
			return
		}
		if body["tid"] != tid {
			fmt.Fprint(w, `{"success":false,"code":50000,"message":"订单不存在"}`)
			return
		}
		fmt.Fprint(w, `{"success":true,"code":200,"message":"success","data":{"full_order_info":{"order_info":{"tid":"`+tid+`"},"buyer_info":{"yz_open_id":"yzOpen1","buyer_phone":"$UkVBTA==$1$","outer_user_id":"o1"}}}}`)
	default:
		http.NotFound(w, r)
	}
}

func shop() platform.Shop {
	return platform.Shop{youzan.KeyClientID: clientID, youzan.KeySecret: secret}
}

func client(srv *httptest.Server, now *time.Time) *youzanapi.Client {
	c := youzanapi.New(srv.URL, outbound.Options{Backoff: time.Millisecond})
	c.Now = func() time.Time { return *now }
	return c
}

var wantBuyer = youzan.Buyer{OpenID: "yzOpen1", Phone: "$UkVBTA==$1$"}

func TestTradeBuyerGetsATokenRetriesAndCaches(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	g, srv := newGateway(t)
	g.expires = now.Add(7 * 24 * time.Hour)
	g.fail = 1
	c := client(srv, &now)
	for range 2 {
		got, err := c.TradeBuyer(context.Background(), shop(), kdtID, tid)
		require.NoError(t, err)
		assert.Equal(t, wantBuyer, got)
	}
	assert.Equal(t, map[string]int{"/auth/token": 2, "/api/youzan.trade.get/4.0.0": 1}, g.calls, "token retried after a 503, trade served once then cached")
	assert.Zero(t, g.rejected)
}

func TestTokenRenewal(t *testing.T) {
	tests := []struct {
		name       string
		advance    time.Duration
		revoke     bool
		wantTokens int
	}{
		{"still valid", time.Hour, false, 1},
		{"within five minutes of expiry", 2*time.Hour - 4*time.Minute, false, 2},
		{"revoked by the gateway", time.Hour, true, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
			g, srv := newGateway(t)
			g.expires = now.Add(2 * time.Hour)
			c := youzanapi.New(srv.URL, outbound.Options{Backoff: time.Millisecond, CacheSize: -1})
			c.Now = func() time.Time { return now }
			_, err := c.TradeBuyer(context.Background(), shop(), kdtID, tid)
			require.NoError(t, err)
			now = now.Add(tt.advance)
			g.mu.Lock()
			g.revoke = tt.revoke
			g.mu.Unlock()
			got, err := c.TradeBuyer(context.Background(), shop(), kdtID, tid)
			require.NoError(t, err)
			assert.Equal(t, wantBuyer, got)
			assert.Equal(t, tt.wantTokens, g.issued)
		})
	}
}

func TestFailuresAreUpstream(t *testing.T) {
	tests := []struct {
		name string
		shop platform.Shop
		tid  string
		fail int
	}{
		{"wrong secret", platform.Shop{youzan.KeyClientID: clientID, youzan.KeySecret: "wrong"}, tid, 0},
		{"unknown trade", shop(), "E0", 0},
		{"gateway down", shop(), tid, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
			g, srv := newGateway(t)
			g.expires, g.fail = now.Add(time.Hour), tt.fail
			_, err := client(srv, &now).TradeBuyer(context.Background(), tt.shop, kdtID, tt.tid)
			require.ErrorIs(t, err, platform.ErrUpstream)
		})
	}
}

func TestConfiguredAccessTokenSkipsTheTokenCall(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	g, srv := newGateway(t)
	g.current = "configured"
	s := shop()
	s["accessToken"] = "configured"
	got, err := client(srv, &now).TradeBuyer(context.Background(), s, kdtID, tid)
	require.NoError(t, err)
	assert.Equal(t, wantBuyer, got)
	assert.Zero(t, g.calls["/auth/token"])
}
