// Package wecomapi reads external-contact details from the WeCom server API, to learn the
// unionid behind an ExternalUserID.
package wecomapi

import (
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

// BaseURL is WeCom's server API.
const BaseURL = "https://qyapi.weixin.qq.com"

// Error codes the client acts on (全局错误码, developer.work.weixin.qq.com/document/path/90313).
const (
	codeInvalidToken = 40014 // access_token invalid: fetch a new one
	codeTokenExpired = 42001 // access_token expired: fetch a new one
	codeNoRelation   = 84061 // 不存在外部联系人的关系: the contact is gone, nothing to read
)

// ErrNoContact: the corp has no relation with the contact (any more).
var ErrNoContact = errors.New("no such external contact")

// RefusedError is an error code that retrying will not change (a secret without 客户联系 rights,
// a server IP not on the corp's list, a wrong secret): the callback goes on without the unionid
// instead of failing until WeCom gives up. System busy (-1) is not one: it is ErrUpstream.
type RefusedError struct {
	Call string
	Code int
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("wecom %s refused: errcode %d", e.Call, e.Code)
}

const codeBusy = -1 // 系统繁忙

// Client calls the API with one access token per corp and secret, cached until shortly before it
// expires (获取access_token, document/path/91039: cache it, expires_in is usually 7200 s).
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

// DefaultTimeout keeps a lookup inside the 5 s WeCom waits for the callback's answer before it
// retries.
const DefaultTimeout = 3 * time.Second

// New returns a client of the real API using hc (nil: http.DefaultClient).
func New(hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{HTTP: hc, BaseURL: BaseURL, Now: time.Now}
}

// Contact is what externalcontact/get says of a contact (客户联系 › 获取客户详情,
// document/path/92114): Type 1 is a WeChat user, 2 a WeCom user; UnionID is set for WeChat users
// when the corp has bound a WeChat Open Platform account.
type Contact struct {
	ExternalUserID string `json:"external_userid"`
	Type           int    `json:"type"`
	UnionID        string `json:"unionid"`
}

// Contact reads one external contact. A token WeCom reports invalid or expired is fetched anew
// once. Transport failures, HTTP errors and system busy are platform.ErrUpstream (WeCom retries
// the callback); other error codes are a *RefusedError.
func (c *Client) Contact(ctx context.Context, corpID, secret, externalUserID string) (Contact, error) {
	for attempt := 0; ; attempt++ {
		tok, err := c.token(ctx, corpID, secret)
		if err != nil {
			return Contact{}, err
		}
		var out struct {
			apiError
			ExternalContact Contact `json:"external_contact"`
		}
		q := url.Values{"access_token": {tok}, "external_userid": {externalUserID}}
		if err := c.get(ctx, "/cgi-bin/externalcontact/get", q, &out); err != nil {
			return Contact{}, err
		}
		switch out.ErrCode {
		case 0:
			return out.ExternalContact, nil
		case codeNoRelation:
			return Contact{}, fmt.Errorf("wecom contact of corp %s: %w", corpID, ErrNoContact)
		case codeInvalidToken, codeTokenExpired:
			c.forget(corpID, secret)
			if attempt == 0 {
				continue
			}
		case codeBusy:
		default:
			return Contact{}, &RefusedError{Call: "externalcontact/get", Code: out.ErrCode}
		}
		return Contact{}, fmt.Errorf("%w: wecom externalcontact/get: %s", platform.ErrUpstream, out.apiError)
	}
}

type apiError struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

func (e apiError) String() string { return fmt.Sprintf("errcode %d %s", e.ErrCode, e.ErrMsg) }

func (c *Client) token(ctx context.Context, corpID, secret string) (string, error) {
	key := sha256.Sum256([]byte(corpID + "\x00" + secret))
	c.mu.Lock()
	t, ok := c.tokens[key]
	c.mu.Unlock()
	if ok && c.now().Before(t.expires) {
		return t.value, nil
	}
	var out struct {
		apiError
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := c.get(ctx, "/cgi-bin/gettoken", url.Values{"corpid": {corpID}, "corpsecret": {secret}}, &out); err != nil {
		return "", err
	}
	if out.ErrCode != 0 && out.ErrCode != codeBusy {
		return "", &RefusedError{Call: "gettoken", Code: out.ErrCode}
	}
	if out.AccessToken == "" {
		return "", fmt.Errorf("%w: wecom gettoken for corp %s: %s", platform.ErrUpstream, corpID, out.apiError)
	}
	// Refresh five minutes early so that a token never expires between the check and the call.
	life := max(time.Duration(out.ExpiresIn)*time.Second-5*time.Minute, 0)
	c.mu.Lock()
	if c.tokens == nil {
		c.tokens = map[[32]byte]token{}
	}
	c.tokens[key] = token{value: out.AccessToken, expires: c.now().Add(life)}
	c.mu.Unlock()
	return out.AccessToken, nil
}

func (c *Client) forget(corpID, secret string) {
	key := sha256.Sum256([]byte(corpID + "\x00" + secret))
	c.mu.Lock()
	delete(c.tokens, key)
	c.mu.Unlock()
}

// get calls path with the query and decodes the JSON answer; the URL (it carries the secret or
// the token) is kept out of errors.
func (c *Client) get(ctx context.Context, path string, q url.Values, out any) error {
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(c.Timeout, DefaultTimeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL+path+"?"+q.Encode(), nil)
	if err != nil {
		return fmt.Errorf("wecom %s: %w", path, err)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%w: wecom %s: %w", platform.ErrUpstream, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: wecom %s: status %d %v", platform.ErrUpstream, path, resp.StatusCode, err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%w: wecom %s: answer is not JSON: %w", platform.ErrUpstream, path, err)
	}
	return nil
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}
