package douyinapi

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/omnimember/omnimember/shared/platform"
	"github.com/omnimember/omnimember/shared/platform/douyin"
)

// tokenMargin renews a token this long before it expires.
const tokenMargin = 10 * time.Minute

type token struct {
	access, refresh string
	expires         time.Time
}

// tokenData is the data of token.create and token.refresh (开放平台 › 授权 › 自用型应用).
type tokenData struct {
	AccessToken  string `json:"access_token"`
	ExpiresIn    int64  `json:"expires_in"` // seconds
	RefreshToken string `json:"refresh_token"`
}

// accessToken is the shop's configured accessToken, or one this client created for the shop with
// token.create (grant_type authorization_self, the self-use app's grant), kept until shortly before
// it expires and then renewed with token.refresh (or created again when the refresh fails).
func (c *Client) accessToken(ctx context.Context, shop platform.Shop) (string, error) {
	if t := shop[douyin.KeyAccessToken]; t != "" {
		return t, nil
	}
	shopID := shop[douyin.KeyShopID]
	if shopID == "" {
		return "", errors.New("no accessToken configured and no shop id to create one")
	}
	key := shop[douyin.KeyAppKey] + "/" + shopID
	c.mu.Lock()
	t, ok := c.tokens[key]
	c.mu.Unlock()
	if ok && c.Now().Before(t.expires.Add(-tokenMargin)) {
		return t.access, nil
	}
	var d tokenData
	err := errors.New("no refresh token")
	if ok && t.refresh != "" {
		err = c.callWith(ctx, shop, "", "token.refresh", map[string]any{"grant_type": "refresh_token", "refresh_token": t.refresh}, &d)
	}
	if err != nil {
		params := map[string]any{"code": "", "grant_type": "authorization_self", "shop_id": shopID}
		if err := c.callWith(ctx, shop, "", "token.create", params, &d); err != nil {
			return "", fmt.Errorf("token for shop %s: %w", shopID, err)
		}
	}
	if d.AccessToken == "" {
		return "", fmt.Errorf("token for shop %s: empty access_token", shopID)
	}
	c.mu.Lock()
	c.tokens[key] = token{access: d.AccessToken, refresh: d.RefreshToken, expires: c.Now().Add(time.Duration(d.ExpiresIn) * time.Second)}
	c.mu.Unlock()
	return d.AccessToken, nil
}
