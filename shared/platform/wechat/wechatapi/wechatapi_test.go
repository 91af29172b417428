package wechatapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnimember/omnimember/shared/platform"
	"github.com/omnimember/omnimember/shared/platform/wechat/wechatapi"
	"github.com/omnimember/omnimember/shared/platform/wechat/wechatapi/wechatapitest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func fake(t *testing.T) (*wechatapitest.Server, *wechatapi.Client, *time.Time) {
	t.Helper()
	srv := wechatapitest.New("wx-oa", "app-secret", map[string]string{"oBound": "oUnion001", "oUnbound": ""})
	t.Cleanup(srv.Close)
	now := time.Unix(1700000000, 0)
	c := wechatapi.New(srv.Client())
	c.BaseURL, c.Now = srv.URL, func() time.Time { return now }
	return srv, c, &now
}

func TestUnionID(t *testing.T) {
	_, c, _ := fake(t)
	tests := []struct {
		openID, want string
		wantCode     int
	}{
		{"oBound", "oUnion001", 0},
		{"oUnbound", "", 0},
		{"oStranger", "", 40003},
	}
	for _, tt := range tests {
		got, err := c.UnionID(context.Background(), "wx-oa", "app-secret", tt.openID)
		if tt.wantCode != 0 {
			var refused *wechatapi.RefusedError
			require.ErrorAs(t, err, &refused, tt.openID)
			assert.Equal(t, wechatapi.RefusedError{Call: "user/info", Code: tt.wantCode}, *refused)
			continue
		}
		require.NoError(t, err, tt.openID)
		assert.Equal(t, tt.want, got, tt.openID)
	}
}

func TestStableTokenIsCachedAndNeverForced(t *testing.T) {
	srv, c, now := fake(t)
	ctx := context.Background()
	for range 3 {
		_, err := c.UnionID(ctx, "wx-oa", "app-secret", "oBound")
		require.NoError(t, err)
	}
	issued, _ := srv.TokensIssued()
	assert.Equal(t, 1, issued)

	srv.ExpireTokens()
	_, err := c.UnionID(ctx, "wx-oa", "app-secret", "oBound")
	require.NoError(t, err, "an expired token is fetched anew once")
	issued, _ = srv.TokensIssued()
	assert.Equal(t, 2, issued)

	*now = now.Add(7200*time.Second - time.Minute)
	_, err = c.UnionID(ctx, "wx-oa", "app-secret", "oBound")
	require.NoError(t, err)
	issued, forced := srv.TokensIssued()
	assert.Equal(t, 3, issued, "renewed a minute before expiry")
	assert.Zero(t, forced, "normal mode only: a forced refresh would cut the brand's other services off")
}

func TestFailuresAreUpstream(t *testing.T) {
	srv, c, _ := fake(t)
	ctx := context.Background()
	_, err := c.UnionID(ctx, "wx-oa", "wrong secret", "oBound")
	var refused *wechatapi.RefusedError
	require.ErrorAs(t, err, &refused)
	assert.Equal(t, wechatapi.RefusedError{Call: "stable_token", Code: 40125}, *refused)
	assert.NotContains(t, err.Error(), "wrong secret")

	srv.FailNext(1)
	_, err = c.UnionID(ctx, "wx-oa", "app-secret", "oBound")
	assert.ErrorIs(t, err, platform.ErrUpstream)

	srv.Close()
	_, err = c.UnionID(ctx, "wx-oa", "app-secret", "oBound")
	assert.ErrorIs(t, err, platform.ErrUpstream)
	assert.NotContains(t, err.Error(), "access_token")
}

// FuzzUnionID serves arbitrary user/info answers: never a panic, failures only ErrUpstream or a
// RefusedError.
func FuzzUnionID(f *testing.F) {
	f.Add(`{"subscribe":1,"openid":"o","unionid":"u"}`)
	f.Add(`{"errcode":40003,"errmsg":"invalid openid"}`)
	f.Add(`{"errcode":42001}`)
	f.Add(`{"unionid":7}`)
	var body atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/cgi-bin/stable_token" {
			_, _ = w.Write([]byte(`{"access_token":"t","expires_in":7200}`))
			return
		}
		_, _ = w.Write([]byte(body.Load().(string)))
	}))
	defer srv.Close()
	c := wechatapi.New(srv.Client())
	c.BaseURL = srv.URL
	f.Fuzz(func(t *testing.T, answer string) {
		body.Store(answer)
		_, err := c.UnionID(context.Background(), "wx", "s", "o")
		var refused *wechatapi.RefusedError
		if err != nil && !errors.Is(err, platform.ErrUpstream) && !errors.As(err, &refused) {
			t.Fatalf("unexpected error kind: %v", err)
		}
	})
}

func TestSlowAPIIsUpstream(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // hang like an API that never answers, until the test ends
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	c := wechatapi.New(srv.Client())
	c.BaseURL, c.Timeout = srv.URL, 20*time.Millisecond
	_, err := c.UnionID(context.Background(), "wx", "s", "o")
	assert.ErrorIs(t, err, platform.ErrUpstream)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}
