package weixinapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/omnimember/omnimember/shared/platform"
)

// WeCom error codes the client acts on (全局错误码, developer.work.weixin.qq.com/document/path/90313).
var wecomStale = map[int]bool{40014: true, 42001: true} // access_token invalid, expired

const codeNoRelation = 84061 // 不存在外部联系人的关系: the contact is gone, nothing to read

// ContactUnionID reads an external contact of the corp (客户联系 › 获取客户详情, document/path/92114)
// and returns its unionid: set for a WeChat user (type 1) when the corp has bound a WeChat Open
// Platform account; "" for a WeCom user (type 2) or a contact the corp has no relation with any
// more. Transport failures, HTTP errors and system busy are platform.ErrUpstream (WeCom retries
// the callback); error codes retrying will not change are platform.ErrRefused.
func (c *Client) ContactUnionID(ctx context.Context, corpID, secret, externalUserID string) (string, error) {
	var unionID string
	answer, err := c.withToken(ctx, accountKey("wecom", corpID, secret), c.wecomToken(corpID, secret), wecomStale,
		func(token string) (apiError, error) {
			var out struct {
				apiError
				ExternalContact struct {
					UnionID string `json:"unionid"`
				} `json:"external_contact"`
			}
			q := url.Values{"access_token": {token}, "external_userid": {externalUserID}}
			err := c.call(ctx, "wecom", http.MethodGet, c.WeComURL, "/cgi-bin/externalcontact/get?"+q.Encode(), nil, &out)
			unionID = out.ExternalContact.UnionID
			return out.apiError, err
		})
	switch {
	case err != nil:
		return "", err
	case answer.ErrCode == 0:
		return unionID, nil
	case answer.ErrCode == codeNoRelation:
		return "", nil
	case answer.ErrCode == codeBusy || wecomStale[answer.ErrCode]:
		return "", fmt.Errorf("%w: wecom externalcontact/get of corp %s: %s", platform.ErrUpstream, corpID, answer)
	}
	return "", refused("wecom", "externalcontact/get", answer.ErrCode)
}

// wecomToken fetches a corp's token (获取access_token, document/path/91039: cache it; expires_in
// is usually 7200 s), kept until five minutes before it expires so that it never expires between
// the check and the call.
func (c *Client) wecomToken(corpID, secret string) fetchToken {
	return func(ctx context.Context) (string, time.Duration, error) {
		var out tokenAnswer
		q := url.Values{"corpid": {corpID}, "corpsecret": {secret}}
		if err := c.call(ctx, "wecom", http.MethodGet, c.WeComURL, "/cgi-bin/gettoken?"+q.Encode(), nil, &out); err != nil {
			return "", 0, err
		}
		if err := out.check("wecom", "gettoken", "corp "+corpID); err != nil {
			return "", 0, err
		}
		return out.AccessToken, max(time.Duration(out.ExpiresIn)*time.Second-5*time.Minute, 0), nil
	}
}
