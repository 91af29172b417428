package weixinapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnimember/omnimember/functions/ingest/weixinapi"
	"github.com/omnimember/omnimember/functions/ingest/weixinapi/weixinapitest"
	"github.com/omnimember/omnimember/shared/platform"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// client calls the stand-ins at a clock the test moves.
func client(wecom, wechat *httptest.Server) (*weixinapi.Client, *time.Time) {
	now := time.Unix(1700000000, 0)
	c := weixinapi.New(http.DefaultClient)
	c.Now = func() time.Time { return now }
	if wecom != nil {
		c.WeComURL = wecom.URL
	}
	if wechat != nil {
		c.WeChatURL = wechat.URL
	}
	return c, &now
}

func fakeWeCom(t *testing.T) (*weixinapitest.WeCom, *weixinapi.Client, *time.Time) {
	t.Helper()
	srv := weixinapitest.NewWeCom("ww-corp", "s3cret", map[string]weixinapitest.Contact{
		"wmWeChatUser": {Type: 1, UnionID: "oUnion001"},
		"wmWeComUser":  {Type: 2},
	})
	t.Cleanup(srv.Close)
	c, now := client(srv.Server, nil)
	return srv, c, now
}

func fakeWeChat(t *testing.T) (*weixinapitest.WeChat, *weixinapi.Client, *time.Time) {
	t.Helper()
	srv := weixinapitest.NewWeChat("wx-oa", "app-secret", map[string]string{"oBound": "oUnion001", "oUnbound": ""})
	t.Cleanup(srv.Close)
	c, now := client(nil, srv.Server)
	return srv, c, now
}

func TestContactUnionID(t *testing.T) {
	_, c, _ := fakeWeCom(t)
	tests := []struct{ id, want string }{
		{"wmWeChatUser", "oUnion001"},
		{"wmWeComUser", ""},
		{"wmGone", ""}, // 84061: no relation any more
	}
	for _, tt := range tests {
		got, err := c.ContactUnionID(context.Background(), "ww-corp", "s3cret", tt.id)
		require.NoError(t, err, tt.id)
		assert.Equal(t, tt.want, got, "got, want for %s", tt.id)
	}
}

func TestUnionID(t *testing.T) {
	_, c, _ := fakeWeChat(t)
	tests := []struct {
		openID, want string
		wantErr      error
	}{
		{"oBound", "oUnion001", nil},
		{"oUnbound", "", nil},
		{"oStranger", "", platform.ErrRefused}, // 40003 invalid openid
	}
	for _, tt := range tests {
		got, err := c.UnionID(context.Background(), "wx-oa", "app-secret", tt.openID)
		if tt.wantErr != nil {
			assert.ErrorIs(t, err, tt.wantErr, tt.openID)
			assert.ErrorContains(t, err, "user/info: errcode 40003")
			continue
		}
		require.NoError(t, err, tt.openID)
		assert.Equal(t, tt.want, got, "got, want for %s", tt.openID)
	}
}

func TestWeComTokenIsCachedAndRefreshed(t *testing.T) {
	srv, c, now := fakeWeCom(t)
	ctx := context.Background()
	for range 3 {
		_, err := c.ContactUnionID(ctx, "ww-corp", "s3cret", "wmWeChatUser")
		require.NoError(t, err)
	}
	assert.Equal(t, 1, srv.TokensIssued(), "one token for three calls")

	srv.ExpireTokens() // WeCom answers 42001: the client fetches a new token once and carries on
	_, err := c.ContactUnionID(ctx, "ww-corp", "s3cret", "wmWeChatUser")
	require.NoError(t, err)
	assert.Equal(t, 2, srv.TokensIssued())

	*now = now.Add(7200*time.Second - 5*time.Minute) // the cached token's refresh time
	_, err = c.ContactUnionID(ctx, "ww-corp", "s3cret", "wmWeChatUser")
	require.NoError(t, err)
	assert.Equal(t, 3, srv.TokensIssued())
}

func TestStableTokenIsCachedAndNeverForced(t *testing.T) {
	srv, c, now := fakeWeChat(t)
	ctx := context.Background()
	for range 3 {
		_, err := c.UnionID(ctx, "wx-oa", "app-secret", "oBound")
		require.NoError(t, err)
	}
	assert.Equal(t, 1, srv.TokensIssued())

	srv.ExpireTokens()
	_, err := c.UnionID(ctx, "wx-oa", "app-secret", "oBound")
	require.NoError(t, err, "an expired token is fetched anew once")
	assert.Equal(t, 2, srv.TokensIssued())

	*now = now.Add(7200*time.Second - time.Minute)
	_, err = c.UnionID(ctx, "wx-oa", "app-secret", "oBound")
	require.NoError(t, err)
	assert.Equal(t, 3, srv.TokensIssued(), "renewed a minute before expiry")
	assert.Zero(t, srv.ForcedRefreshes(), "normal mode only: a forced refresh would cut the brand's other services off")
}

// TestFailures: what retrying will not change is ErrRefused, the rest ErrUpstream (the platform
// retries its push); secrets and tokens stay out of errors.
func TestFailures(t *testing.T) {
	wecom, _, _ := fakeWeCom(t)
	wechat, _, _ := fakeWeChat(t)
	c, _ := client(wecom.Server, wechat.Server)
	ctx := context.Background()
	contact := func(secret string) error {
		_, err := c.ContactUnionID(ctx, "ww-corp", secret, "wmWeChatUser")
		return err
	}
	follower := func(secret string) error {
		_, err := c.UnionID(ctx, "wx-oa", secret, "oBound")
		return err
	}
	tests := []struct {
		name     string
		prepare  func()
		call     func(secret string) error
		secret   string
		wantErr  error
		wantText string
	}{
		{"wecom wrong secret", func() {}, contact, "wrong secret", platform.ErrRefused, "gettoken: errcode 40001"},
		{"wecom IP not on the list", func() { wecom.Refuse(60020) }, contact, "s3cret", platform.ErrRefused, "externalcontact/get: errcode 60020"},
		{"wecom system busy", func() { wecom.Refuse(-1) }, contact, "s3cret", platform.ErrUpstream, "errcode -1"},
		{"wecom HTTP 502", func() { wecom.FailNext(1) }, contact, "s3cret", platform.ErrUpstream, "status 502"},
		{"wechat wrong secret", func() {}, follower, "wrong secret", platform.ErrRefused, "stable_token: errcode 40125"},
		{"wechat HTTP 502", func() { wechat.FailNext(1) }, follower, "app-secret", platform.ErrUpstream, "status 502"},
		{"wechat server gone", wechat.Close, follower, "app-secret", platform.ErrUpstream, "wechat /cgi-bin/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.prepare()
			defer wecom.Refuse(0)
			err := tt.call(tt.secret)
			assert.ErrorIs(t, err, tt.wantErr)
			assert.ErrorContains(t, err, tt.wantText)
			assert.NotContains(t, err.Error(), tt.secret, "the secret stays out of errors")
			assert.NotContains(t, err.Error(), "access_token=", "the token stays out of errors")
		})
	}
	require.NoError(t, contact("s3cret"), "after the failures a call goes through")
}

// FuzzAnswers serves arbitrary answers to both lookups: the client never panics, and fails only
// as ErrUpstream (the platform retries) or ErrRefused.
func FuzzAnswers(f *testing.F) {
	f.Add(`{"errcode":0,"errmsg":"ok","external_contact":{"external_userid":"wm1","type":1,"unionid":"u"}}`)
	f.Add(`{"errcode":84061,"errmsg":"not external contact"}`)
	f.Add(`{"errcode":42001,"errmsg":"access_token expired"}`)
	f.Add(`{"subscribe":1,"openid":"o","unionid":"u"}`)
	f.Add(`{"errcode":40003,"errmsg":"invalid openid"}`)
	f.Add(`{"errcode":"0"}`)
	f.Add(`{"unionid":7}`)
	f.Add(`[]`)
	var body atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/cgi-bin/gettoken", "/cgi-bin/stable_token":
			_, _ = w.Write([]byte(`{"errcode":0,"access_token":"t","expires_in":7200}`))
		default:
			_, _ = w.Write([]byte(body.Load().(string)))
		}
	}))
	defer srv.Close()
	c, _ := client(srv, srv)
	f.Fuzz(func(t *testing.T, answer string) {
		body.Store(answer)
		_, err1 := c.ContactUnionID(context.Background(), "ww-corp", "s", "wm1")
		_, err2 := c.UnionID(context.Background(), "wx", "s", "o")
		for _, err := range []error{err1, err2} {
			if err != nil && !errors.Is(err, platform.ErrUpstream) && !errors.Is(err, platform.ErrRefused) {
				t.Fatalf("unexpected error kind: %v", err)
			}
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
	c, _ := client(srv, srv)
	c.Timeout = 20 * time.Millisecond
	_, err := c.ContactUnionID(context.Background(), "ww-corp", "s", "wm1")
	assert.ErrorIs(t, err, platform.ErrUpstream)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	_, err = c.UnionID(context.Background(), "wx", "s", "o")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}
