package wechat_test

import (
	"context"
	"strings"
	"testing"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/platform"
	"github.com/omnimember/omnimember/shared/platform/wechat"
	"github.com/omnimember/omnimember/shared/platform/wechat/wechatapi"
	"github.com/omnimember/omnimember/shared/platform/wechat/wechatapi/wechatapitest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFollowerUnionIDFromTheAPI(t *testing.T) {
	srv := wechatapitest.New(plainApp, "app-secret", map[string]string{openID: "oUnion001", "oUnbound": ""})
	defer srv.Close()
	client := wechatapi.New(srv.Client())
	client.BaseURL = srv.URL
	adapter := wechat.Adapter{Users: client}
	withSecret := platform.Credentials{plainApp: {"token": token, "secret": "app-secret"}}
	badSecret := platform.Credentials{plainApp: {"token": token, "secret": "wrong"}}

	follower := func(id string) events.Identity {
		return events.Identity{Type: "wechat_openid", Value: id, Scope: plainApp}
	}
	union := events.Identity{Type: "wechat_unionid", Value: "oUnion001"}
	tests := []struct {
		name     string
		msg      string
		creds    platform.Credentials
		fail     int
		want     []events.Identity
		wantAttr string
		wantErr  error
	}{
		{"follow", subscribe, withSecret, 0, []events.Identity{follower(openID), union}, "", nil},
		{"follow, account without Open Platform", strings.Replace(subscribe, openID, "oUnbound", 1), withSecret, 0, []events.Identity{follower("oUnbound")}, "", nil},
		{"unfollow is not looked up", strings.Replace(subscribe, "[subscribe]", "[unsubscribe]", 1), withSecret, 5, []events.Identity{follower(openID)}, "", nil},
		{"app without a secret", subscribe, creds, 5, []events.Identity{follower(openID)}, "", nil},
		{"wrong secret: kept, without unionid", subscribe, badSecret, 0, []events.Identity{follower(openID)}, "wechat stable_token refused: errcode 40125", nil},
		{"API down: WeChat must retry", subscribe, withSecret, 5, nil, "", platform.ErrUpstream},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.FailNext(tt.fail)
			defer srv.FailNext(0)
			res, err := adapter.Handle(context.Background(), plainPush(tt.msg, at, "n", at), tt.creds)
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
				assert.Empty(t, res.Events)
				return
			}
			require.NoError(t, err)
			require.Len(t, res.Events, 1)
			require.NoError(t, events.Validate(res.Events[0]))
			d, err := events.Decode[events.InteractionRecordedData](res.Events[0])
			require.NoError(t, err)
			assert.Equal(t, tt.want, d.Identities)
			assert.Equal(t, tt.wantAttr, d.Attributes["unionidLookup"])
		})
	}
	_, forced := srv.TokensIssued()
	assert.Zero(t, forced)
}
