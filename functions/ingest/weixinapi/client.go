// Package weixinapi reads what WeCom and WeChat pushes leave out from their server APIs: the
// unionid behind a WeCom external contact or an official-account follower's openid.
package weixinapi

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/omnimember/omnimember/functions/ingest/outbound"
	"github.com/omnimember/omnimember/shared/platform"
)

// The servers of the two APIs.
const (
	WeComURL  = "https://qyapi.weixin.qq.com"
	WeChatURL = "https://api.weixin.qq.com"
)

// DefaultTimeout keeps a lookup inside the 5 s WeCom and WeChat wait for the callback's answer
// before they retry.
const DefaultTimeout = 3 * time.Second

const codeBusy = -1 // 系统繁忙 on both APIs: worth a retry

// Client calls both APIs with one access token per corp or app and secret, cached until shortly
// before it expires.
type Client struct {
	HTTP      *http.Client
	WeComURL  string
	WeChatURL string
	Now       func() time.Time
	// Timeout bounds each call (default DefaultTimeout).
	Timeout time.Duration

	mu     sync.Mutex
	tokens map[[32]byte]token
}

type token struct {
	value   string
	expires time.Time
}

// New returns a client of the real APIs using hc (nil: http.DefaultClient).
func New(hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{HTTP: hc, WeComURL: WeComURL, WeChatURL: WeChatURL, Now: time.Now}
}

type apiError struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

func (e apiError) String() string { return fmt.Sprintf("errcode %d %s", e.ErrCode, e.ErrMsg) }

// refused is an error code retrying will not change.
func refused(api, call string, code int) error {
	return fmt.Errorf("%w: %s %s: errcode %d", platform.ErrRefused, api, call, code)
}

// fetchToken asks the API for a token and says how long to keep it.
type fetchToken func(ctx context.Context) (value string, keep time.Duration, err error)

// accessToken is the cached token of the account, or a fresh one from fetch.
func (c *Client) accessToken(ctx context.Context, account [32]byte, fetch fetchToken) (string, error) {
	c.mu.Lock()
	t, ok := c.tokens[account]
	c.mu.Unlock()
	if ok && c.now().Before(t.expires) {
		return t.value, nil
	}
	value, keep, err := fetch(ctx)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	if c.tokens == nil {
		c.tokens = map[[32]byte]token{}
	}
	c.tokens[account] = token{value: value, expires: c.now().Add(keep)}
	c.mu.Unlock()
	return value, nil
}

// forget drops a token the API called invalid or expired.
func (c *Client) forget(account [32]byte) {
	c.mu.Lock()
	delete(c.tokens, account)
	c.mu.Unlock()
}

// accountKey names a token in the cache without keeping the secret in memory as text.
func accountKey(api, id, secret string) [32]byte {
	return sha256.Sum256([]byte(api + "\x00" + id + "\x00" + secret))
}

// call sends the request (a JSON body when body is not nil) and decodes the JSON answer. URLs
// and bodies carry a token or a secret: they stay out of errors (outbound.Receive drops the URL).
func (c *Client) call(ctx context.Context, api, method, base, pathQuery string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(c.Timeout, DefaultTimeout))
	defer cancel()
	path, _, _ := strings.Cut(pathQuery, "?")
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+pathQuery, reader)
	if err != nil {
		return fmt.Errorf("%s %s: %w", api, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	status, raw, err := outbound.Receive(c.HTTP, req)
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("status %d", status)
	}
	if err != nil {
		return fmt.Errorf("%w: %s %s: %w", platform.ErrUpstream, api, path, err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%w: %s %s: answer is not JSON: %w", platform.ErrUpstream, api, path, err)
	}
	return nil
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// withToken runs call with the account's token. A token the API calls invalid or expired (a
// stale code) is dropped and fetched anew once; the answer's error code is the caller's to judge.
func (c *Client) withToken(ctx context.Context, account [32]byte, fetch fetchToken, stale map[int]bool, call func(token string) (apiError, error)) (apiError, error) {
	for attempt := 0; ; attempt++ {
		tok, err := c.accessToken(ctx, account, fetch)
		if err != nil {
			return apiError{}, err
		}
		answer, err := call(tok)
		if err != nil || !stale[answer.ErrCode] {
			return answer, err
		}
		c.forget(account)
		if attempt > 0 {
			return answer, nil
		}
	}
}

// tokenAnswer is what gettoken and stable_token answer.
type tokenAnswer struct {
	apiError
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

// check refuses an error code other than system busy, and calls an answer without a token
// upstream trouble.
func (a tokenAnswer) check(api, call, account string) error {
	if a.ErrCode != 0 && a.ErrCode != codeBusy {
		return refused(api, call, a.ErrCode)
	}
	if a.AccessToken == "" {
		return fmt.Errorf("%w: %s %s of %s: %s", platform.ErrUpstream, api, call, account, a.apiError)
	}
	return nil
}
