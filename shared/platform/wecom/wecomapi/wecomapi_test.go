package wecomapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnimember/omnimember/shared/platform"
	"github.com/omnimember/omnimember/shared/platform/wecom/wecomapi"
	"github.com/omnimember/omnimember/shared/platform/wecom/wecomapi/wecomapitest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func fake(t *testing.T) (*wecomapitest.Server, *wecomapi.Client, *time.Time) {
	t.Helper()
	srv := wecomapitest.New("ww-corp", "s3cret", map[string]wecomapitest.Contact{
		"wmWeChatUser": {Type: 1, UnionID: "oUnion001"},
		"wmWeComUser":  {Type: 2},
	})
	t.Cleanup(srv.Close)
	now := time.Unix(1700000000, 0)
	c := wecomapi.New(srv.Client())
	c.BaseURL, c.Now = srv.URL, func() time.Time { return now }
	return srv, c, &now
}

func TestContact(t *testing.T) {
	_, c, _ := fake(t)
	tests := []struct {
		id      string
		want    wecomapi.Contact
		wantErr error
	}{
		{"wmWeChatUser", wecomapi.Contact{ExternalUserID: "wmWeChatUser", Type: 1, UnionID: "oUnion001"}, nil},
		{"wmWeComUser", wecomapi.Contact{ExternalUserID: "wmWeComUser", Type: 2}, nil},
		{"wmGone", wecomapi.Contact{}, wecomapi.ErrNoContact},
	}
	for _, tt := range tests {
		got, err := c.Contact(context.Background(), "ww-corp", "s3cret", tt.id)
		if tt.wantErr != nil {
			assert.ErrorIs(t, err, tt.wantErr, tt.id)
			continue
		}
		require.NoError(t, err, tt.id)
		assert.Equal(t, tt.want, got, tt.id)
	}
}

func TestTokenIsCachedAndRefreshed(t *testing.T) {
	srv, c, now := fake(t)
	ctx := context.Background()
	for range 3 {
		_, err := c.Contact(ctx, "ww-corp", "s3cret", "wmWeChatUser")
		require.NoError(t, err)
	}
	assert.Equal(t, 1, srv.TokensIssued(), "one token for three calls")

	srv.ExpireTokens() // WeCom answers 42001: the client fetches a new token once and carries on
	_, err := c.Contact(ctx, "ww-corp", "s3cret", "wmWeChatUser")
	require.NoError(t, err)
	assert.Equal(t, 2, srv.TokensIssued())

	*now = now.Add(7200*time.Second - 5*time.Minute) // the cached token's refresh time
	_, err = c.Contact(ctx, "ww-corp", "s3cret", "wmWeChatUser")
	require.NoError(t, err)
	assert.Equal(t, 3, srv.TokensIssued())
}

func TestFailuresAreUpstream(t *testing.T) {
	srv, c, _ := fake(t)
	ctx := context.Background()
	_, err := c.Contact(ctx, "ww-corp", "wrong secret", "wmWeChatUser")
	var refused *wecomapi.RefusedError
	require.ErrorAs(t, err, &refused, "a wrong secret does not get better by retrying")
	assert.Equal(t, wecomapi.RefusedError{Call: "gettoken", Code: 40001}, *refused)
	assert.NotContains(t, err.Error(), "wrong secret", "the secret stays out of errors")

	srv.Refuse(60020)
	_, err = c.Contact(ctx, "ww-corp", "s3cret", "wmWeChatUser")
	require.ErrorAs(t, err, &refused, "an IP not on the list")
	assert.Equal(t, wecomapi.RefusedError{Call: "externalcontact/get", Code: 60020}, *refused)
	srv.Refuse(-1)
	_, err = c.Contact(ctx, "ww-corp", "s3cret", "wmWeChatUser")
	assert.ErrorIs(t, err, platform.ErrUpstream, "system busy is worth a retry")
	srv.Refuse(0)

	srv.FailNext(1)
	_, err = c.Contact(ctx, "ww-corp", "s3cret", "wmWeChatUser")
	assert.ErrorIs(t, err, platform.ErrUpstream, "HTTP 502")

	_, err = c.Contact(ctx, "ww-corp", "s3cret", "wmWeChatUser")
	require.NoError(t, err, "the next call goes through")

	srv.Close()
	_, err = c.Contact(ctx, "ww-corp", "s3cret", "wmWeChatUser")
	assert.ErrorIs(t, err, platform.ErrUpstream, "server gone")
	assert.NotContains(t, err.Error(), "access_token", "the token stays out of errors")
}

// FuzzContact serves arbitrary answers to externalcontact/get: the client never panics, and
// fails only as ErrUpstream (WeCom retries), ErrNoContact or a RefusedError.
func FuzzContact(f *testing.F) {
	f.Add(`{"errcode":0,"errmsg":"ok","external_contact":{"external_userid":"wm1","type":1,"unionid":"u"}}`)
	f.Add(`{"errcode":84061,"errmsg":"not external contact"}`)
	f.Add(`{"errcode":42001,"errmsg":"access_token expired"}`)
	f.Add(`{"errcode":"0"}`)
	f.Add(`[]`)
	var body atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/cgi-bin/gettoken" {
			_, _ = w.Write([]byte(`{"errcode":0,"access_token":"t","expires_in":7200}`))
			return
		}
		_, _ = w.Write([]byte(body.Load().(string)))
	}))
	defer srv.Close()
	c := wecomapi.New(srv.Client())
	c.BaseURL = srv.URL
	f.Fuzz(func(t *testing.T, answer string) {
		body.Store(answer)
		_, err := c.Contact(context.Background(), "ww-corp", "s", "wm1")
		var refused *wecomapi.RefusedError
		if err != nil && !errors.Is(err, platform.ErrUpstream) && !errors.Is(err, wecomapi.ErrNoContact) && !errors.As(err, &refused) {
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
	c := wecomapi.New(srv.Client())
	c.BaseURL, c.Timeout = srv.URL, 20*time.Millisecond
	_, err := c.Contact(context.Background(), "ww-corp", "s", "wm1")
	assert.ErrorIs(t, err, platform.ErrUpstream)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}
