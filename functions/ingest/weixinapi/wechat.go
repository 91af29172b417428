package weixinapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/omnimember/omnimember/shared/platform"
)

// WeChat error codes after which the token is fetched anew (全局返回码说明).
var wechatStale = map[int]bool{40001: true, 40014: true, 42001: true}

// UnionID reads user/info of a follower of the official account (用户管理 › 获取用户基本信息): the
// unionid is there when the account is bound to a WeChat Open Platform account, "" otherwise.
// Transport failures, HTTP errors and system busy are platform.ErrUpstream; other error codes
// (an unverified subscription account has no user/info rights) are platform.ErrRefused.
func (c *Client) UnionID(ctx context.Context, appID, secret, openID string) (string, error) {
	var unionID string
	answer, err := c.withToken(ctx, accountKey("wechat", appID, secret), c.stableToken(appID, secret), wechatStale,
		func(token string) (apiError, error) {
			var out struct {
				apiError
				UnionID string `json:"unionid"`
			}
			q := url.Values{"access_token": {token}, "openid": {openID}, "lang": {"zh_CN"}}
			err := c.call(ctx, "wechat", http.MethodGet, c.WeChatURL, "/cgi-bin/user/info?"+q.Encode(), nil, &out)
			unionID = out.UnionID
			return out.apiError, err
		})
	switch {
	case err != nil:
		return "", err
	case answer.ErrCode == 0:
		return unionID, nil
	case answer.ErrCode == codeBusy || wechatStale[answer.ErrCode]:
		return "", fmt.Errorf("%w: wechat user/info of app %s: %s", platform.ErrUpstream, appID, answer)
	}
	return "", refused("wechat", "user/info", answer.ErrCode)
}

// stableToken fetches an app's token from stable_token in normal mode (获取稳定版接口调用凭据):
// unlike cgi-bin/token it does not invalidate the token the brand's other services hold. WeChat
// renews a stable token in its last 5 minutes and keeps the old one valid 5 more, so expires_in
// can be as low as 300: a token is kept for half its life at most a minute short.
func (c *Client) stableToken(appID, secret string) fetchToken {
	return func(ctx context.Context) (string, time.Duration, error) {
		body, err := json.Marshal(map[string]any{"grant_type": "client_credential", "appid": appID, "secret": secret, "force_refresh": false})
		if err != nil {
			return "", 0, fmt.Errorf("wechat stable_token request: %w", err)
		}
		var out tokenAnswer
		if err := c.call(ctx, "wechat", http.MethodPost, c.WeChatURL, "/cgi-bin/stable_token", body, &out); err != nil {
			return "", 0, err
		}
		if err := out.check("wechat", "stable_token", "app "+appID); err != nil {
			return "", 0, err
		}
		life := time.Duration(out.ExpiresIn) * time.Second
		return out.AccessToken, life - min(time.Minute, life/2), nil
	}
}
