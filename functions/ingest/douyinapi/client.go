// Package douyinapi is an outgoing, signed client of the 抖店 open API for what a push leaves out:
// the buyer of an order (order.orderDetail) and the plaintext of its phone (order.batchDecrypt).
package douyinapi

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/omnimember/omnimember/functions/ingest/outbound"
	"github.com/omnimember/omnimember/shared/platform"
	"github.com/omnimember/omnimember/shared/platform/douyin"
)

// DefaultBaseURL is the 抖店 open API gateway.
const DefaultBaseURL = "https://openapi-fxg.jinritemai.com"

// Common parameters of every call (开放平台 › 公共参数 / 签名算法).
const (
	apiVersion = "2"
	signMethod = "hmac-sha256"
	codeOK     = 10000 // response code of a successful call
)

// Client calls the open API with the shop's app key, secret and access token (platform.Shop keys
// appKey, secret, accessToken). It retries network errors and 5xx with exponential backoff and
// caches order details and decrypted phones.
type Client struct {
	BaseURL  string
	HTTP     *http.Client
	Attempts int           // calls per request before giving up (≥1)
	Backoff  time.Duration // wait before the second attempt; doubles after each failure
	Now      func() time.Time
	orders   *outbound.Cache[douyin.Order]
	plain    *outbound.Cache[douyin.Plain]
	mu       sync.Mutex
	tokens   map[string]token
}

// New returns a client of the gateway at baseURL ("" means DefaultBaseURL).
func New(baseURL string, o outbound.Options) *Client {
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	o = o.WithDefaults()
	c := &Client{BaseURL: strings.TrimRight(baseURL, "/"), HTTP: o.HTTP,
		Attempts: o.Attempts, Backoff: o.Backoff, Now: time.Now, tokens: map[string]token{}}
	now := func() time.Time { return c.Now() }
	c.orders = outbound.NewCache[douyin.Order](o.CacheSize, o.CacheTTL, now)
	c.plain = outbound.NewCache[douyin.Plain](o.CacheSize, o.CacheTTL, now)
	return c
}

// Sign is the request signature (开放平台 › 签名算法, sign_method=hmac-sha256): lowercase hex
// HMAC-SHA256 keyed by app_secret over app_secret + "app_key"+k + "method"+m + "param_json"+pj +
// "timestamp"+ts + "v"+v + app_secret.
func Sign(appKey, secret, method, paramJSON, timestamp string) string {
	s := secret + "app_key" + appKey + "method" + method + "param_json" + paramJSON + "timestamp" + timestamp + "v" + apiVersion + secret
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(s))
	return hex.EncodeToString(mac.Sum(nil))
}

// ParamJSON encodes business parameters as the gateway signs them: keys sorted at every level
// (encoding/json sorts map keys), no spaces, and no HTML escaping of <, > and &.
func ParamJSON(params map[string]any) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(params); err != nil {
		return "", fmt.Errorf("encode param_json: %w", err)
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// timestamp formats the signed timestamp as unix seconds, as the official SDKs send it. Unconfirmed
// whether the gateway also requires the "yyyy-MM-dd HH:mm:ss" GMT+8 form some clients use; this
// is the one place to change it.
func timestamp(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// envelope is every response: code 10000 is success, otherwise msg/sub_code/sub_msg say why.
type envelope struct {
	Code    int             `json:"code"`
	Msg     string          `json:"msg"`
	SubCode string          `json:"sub_code"`
	SubMsg  string          `json:"sub_msg"`
	Data    json.RawMessage `json:"data"`
}

// call signs and posts one method for the shop with its access token; data receives the
// response's data object.
func (c *Client) call(ctx context.Context, shop platform.Shop, method string, params map[string]any, data any) error {
	token, err := c.accessToken(ctx, shop)
	if err != nil {
		return fmt.Errorf("douyin %s: %w: %w", method, platform.ErrUpstream, err)
	}
	return c.callWith(ctx, shop, token, method, params, data)
}

// callWith posts with retries; token "" leaves access_token out (token.create, token.refresh).
func (c *Client) callWith(ctx context.Context, shop platform.Shop, token, method string, params map[string]any, data any) error {
	pj, err := ParamJSON(params)
	if err != nil {
		return err
	}
	err = outbound.Retry(ctx, c.Attempts, c.Backoff, func() error { return c.once(ctx, shop, token, method, pj, data) })
	if err != nil {
		return fmt.Errorf("douyin %s: %w: %w", method, platform.ErrUpstream, err)
	}
	return nil
}

func (c *Client) once(ctx context.Context, shop platform.Shop, token, method, pj string, data any) error {
	req, err := c.request(ctx, shop, token, method, pj)
	if err != nil {
		return err
	}
	status, raw, err := outbound.Receive(c.HTTP, req)
	if err != nil {
		return err
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("status %d, response not JSON: %w", status, err)
	}
	if env.Code != codeOK {
		return fmt.Errorf("code %d %s (%s %s)", env.Code, env.Msg, env.SubCode, env.SubMsg)
	}
	if err := json.Unmarshal(env.Data, data); err != nil {
		return fmt.Errorf("decode data: %w", err)
	}
	return nil
}

// request builds POST {base}/{method with / for .}: common parameters in the query, param_json
// as the JSON body (as the official SDKs send it).
func (c *Client) request(ctx context.Context, shop platform.Shop, token, method, pj string) (*http.Request, error) {
	appKey, secret := shop[douyin.KeyAppKey], shop[douyin.KeySecret]
	if appKey == "" || secret == "" {
		return nil, fmt.Errorf("shop credentials need %s and %s", douyin.KeyAppKey, douyin.KeySecret)
	}
	ts := timestamp(c.Now())
	q := url.Values{
		"app_key": {appKey}, "method": {method}, "v": {apiVersion}, "timestamp": {ts},
		"sign_method": {signMethod}, "sign": {Sign(appKey, secret, method, pj, ts)},
	}
	if token != "" {
		q.Set("access_token", token)
	}
	u := c.BaseURL + "/" + strings.ReplaceAll(method, ".", "/") + "?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(pj))
	if err != nil {
		return nil, fmt.Errorf("build %s request: %w", method, err)
	}
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}
