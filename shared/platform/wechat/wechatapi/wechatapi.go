// Package wechatapi reads an official-account follower's unionid from the WeChat server API:
// follow events carry only the openid.
package wechatapi

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/omnimember/omnimember/shared/platform"
)

// BaseURL is WeChat's server API.
const BaseURL = "https://api.weixin.qq.com"

// Error codes after which the token is fetched anew (全局返回码说明).
var tokenCodes = map[int]bool{40001: true, 40014: true, 42001: true}

const codeBusy = -1 // 系统繁忙

// RefusedError is an error code that retrying will not change (an AppSecret that is wrong, an
// account without user/info rights such as an unverified subscription account, an openid of
// another app): the push goes on without the unionid. System busy (-1) is ErrUpstream.
type RefusedError struct {
	Call string
	Code int
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("wechat %s refused: errcode %d", e.Call, e.Code)
}

// Client calls the API with one access token per app, cached until shortly before it expires.
// Tokens come from stable_token in normal mode (获取稳定版接口调用凭据, getStableAccessToken): unlike
// cgi-bin/token it does not invalidate the token the brand's other services hold.
type Client struct {
	HTTP    *http.Client
	BaseURL string
	Now     func() time.Time
	// Timeout bounds each call (default DefaultTimeout).
	Timeout time.Duration

	mu     sync.Mutex
	tokens map[[32]byte]token
}

type token struct {
	value   string
	expires time.Time
}

// DefaultTimeout keeps a lookup inside the 5 s WeChat waits for the callback's answer before it
// retries.
const DefaultTimeout = 3 * time.Second

// New returns a client of the real API using hc (nil: http.DefaultClient).
func New(hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{HTTP: hc, BaseURL: BaseURL, Now: time.Now}
}

type apiError struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

func (e apiError) String() string { return fmt.Sprintf("errcode %d %s", e.ErrCode, e.ErrMsg) }

// UnionID reads user/info of openID in appID (用户管理 › 获取用户基本信息): the unionid is there
// when the account is bound to a WeChat Open Platform account, "" otherwise. A token WeChat calls
// invalid or expired is fetched anew once. Transport failures, HTTP errors and system busy are
// platform.ErrUpstream; other error codes a *RefusedError.
func (c *Client) UnionID(ctx context.Context, appID, secret, openID string) (string, error) {
	for attempt := 0; ; attempt++ {
		tok, err := c.token(ctx, appID, secret)
		if err != nil {
			return "", err
		}
		var out struct {
			apiError
			UnionID string `json:"unionid"`
		}
		q := url.Values{"access_token": {tok}, "openid": {openID}, "lang": {"zh_CN"}}
		if err := c.do(ctx, http.MethodGet, "/cgi-bin/user/info?"+q.Encode(), nil, &out); err != nil {
			return "", err
		}
		if out.ErrCode == 0 {
			return out.UnionID, nil
		}
		if tokenCodes[out.ErrCode] {
			c.forget(appID, secret)
			if attempt == 0 {
				continue
			}
		} else if out.ErrCode != codeBusy {
			return "", &RefusedError{Call: "user/info", Code: out.ErrCode}
		}
		return "", fmt.Errorf("%w: wechat user/info of app %s: %s", platform.ErrUpstream, appID, out.apiError)
	}
}

func (c *Client) token(ctx context.Context, appID, secret string) (string, error) {
	key := sha256.Sum256([]byte(appID + "\x00" + secret))
	c.mu.Lock()
	t, ok := c.tokens[key]
	c.mu.Unlock()
	if ok && c.now().Before(t.expires) {
		return t.value, nil
	}
	body, err := json.Marshal(map[string]any{"grant_type": "client_credential", "appid": appID, "secret": secret, "force_refresh": false})
	if err != nil {
		return "", fmt.Errorf("wechat stable_token request: %w", err)
	}
	var out struct {
		apiError
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := c.do(ctx, http.MethodPost, "/cgi-bin/stable_token", body, &out); err != nil {
		return "", err
	}
	if out.ErrCode != 0 && out.ErrCode != codeBusy {
		return "", &RefusedError{Call: "stable_token", Code: out.ErrCode}
	}
	if out.AccessToken == "" {
		return "", fmt.Errorf("%w: wechat stable_token of app %s: %s", platform.ErrUpstream, appID, out.apiError)
	}
	// WeChat renews a stable token in its last 5 minutes and keeps the old one valid 5 more, so
	// expires_in can be as low as 300: keep a token for half its life at most a minute short.
	life := time.Duration(out.ExpiresIn) * time.Second
	life -= min(time.Minute, life/2)
	c.mu.Lock()
	if c.tokens == nil {
		c.tokens = map[[32]byte]token{}
	}
	c.tokens[key] = token{value: out.AccessToken, expires: c.now().Add(life)}
	c.mu.Unlock()
	return out.AccessToken, nil
}

func (c *Client) forget(appID, secret string) {
	key := sha256.Sum256([]byte(appID + "\x00" + secret))
	c.mu.Lock()
	delete(c.tokens, key)
	c.mu.Unlock()
}

// do calls the API and decodes its JSON answer; URLs and bodies (a token, a secret) stay out of
// errors.
func (c *Client) do(ctx context.Context, method, pathQuery string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(c.Timeout, DefaultTimeout))
	defer cancel()
	path, _, _ := bytes.Cut([]byte(pathQuery), []byte("?"))
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+pathQuery, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("wechat %s: %w", path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%w: wechat %s: %w", platform.ErrUpstream, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: wechat %s: status %d %v", platform.ErrUpstream, path, resp.StatusCode, err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%w: wechat %s: answer is not JSON: %w", platform.ErrUpstream, path, err)
	}
	return nil
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}
