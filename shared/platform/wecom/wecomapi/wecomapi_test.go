package wecomapi_test

import (
	"context"
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
	assert.ErrorIs(t, err, platform.ErrUpstream, "gettoken refused")
	assert.NotContains(t, err.Error(), "wrong secret", "the secret stays out of errors")

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
