// Package douyin verifies and normalises Douyin e-commerce (抖店) message pushes into contract events.
package douyin

import (
	"context"
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/omnimember/omnimember/shared/platform"
)

// Name is the platform name in /webhooks/{platform}, event sources and event ids.
const Name = "douyin"

// Credential keys of a Douyin app (platform.Shop), keyed by the app key.
const (
	KeySecret      = "secret"      // app_secret: signs pushes and API calls
	KeyShopID      = "shopId"      // optional: the one shop a self-use app serves (else the message's)
	KeyAccessToken = "accessToken" // optional: the shop's API access token, else created by token.create
	KeyAppKey      = "appKey"      // set by the adapter from the push's app-id for the client
)

// ackBody is the exact answer 抖店 expects (消息推送 › 接入说明: 返回 {"code":0,"msg":"success"});
// anything else makes the platform push the same messages again.
var ackBody = []byte(`{"code":0,"msg":"success"}`)

// Ack is the reply to every verified push.
func Ack() platform.Reply {
	return platform.Reply{Status: 200, ContentType: "application/json", Body: append([]byte(nil), ackBody...)}
}

// Adapter is the douyin platform.Adapter. Orders looks up the buyer, who is not in the message.
type Adapter struct {
	Orders OrderSource
}

// New returns the adapter enriching orders through src.
func New(src OrderSource) *Adapter { return &Adapter{Orders: src} }

// Name implements platform.Adapter.
func (a *Adapter) Name() string { return Name }

// Handle verifies the push, parses it and normalises paid (101) and refund-success (206) messages.
// Douyin signs no timestamp, so a replay is caught by the event ids derived from msg_id.
func (a *Adapter) Handle(ctx context.Context, push platform.Push, creds platform.Credentials) (platform.Result, error) {
	appKey, shop, err := verified(push, creds)
	if err != nil {
		return platform.Result{}, err
	}
	msgs, err := Parse(push.Body)
	if err != nil {
		return platform.Result{}, fmt.Errorf("parse douyin push for app %s: %w", appKey, err)
	}
	res := platform.Result{Reply: Ack()}
	orders, err := a.orders(ctx, with(shop, KeyAppKey, appKey), msgs, &res)
	if err != nil {
		return platform.Result{}, err
	}
	if err := a.decrypt(ctx, orders); err != nil {
		return platform.Result{}, err
	}
	for _, o := range orders {
		if err := o.normalise(push, &res); err != nil {
			return platform.Result{}, fmt.Errorf("douyin message %s (tag %s): %w", o.msg.MsgID, o.msg.Tag, err)
		}
	}
	return res, nil
}

// Verify checks the push's event-sign with its app's secret.
func (a *Adapter) Verify(push platform.Push, creds platform.Credentials) error {
	_, _, err := verified(push, creds)
	return err
}

// verified finds the app the push names and checks its event-sign.
func verified(push platform.Push, creds platform.Credentials) (string, platform.Shop, error) {
	appKey := push.Header.Get("app-id")
	shop, err := creds.Lookup(appKey)
	if err != nil {
		return "", nil, fmt.Errorf("douyin push for app %q: %w", appKey, err)
	}
	if err := Verify(appKey, shop[KeySecret], push.Body, push.Header.Get("event-sign")); err != nil {
		return "", nil, fmt.Errorf("verify douyin push for app %s: %w", appKey, err)
	}
	return appKey, shop, nil
}

// Verify checks event-sign: lowercase hex MD5(app_key + raw body + app_secret) over the bytes as
// received (消息推送 › 签名验证). Hex case is not significant; the compare is constant time.
func Verify(appKey, secret string, body []byte, sign string) error {
	if secret == "" {
		return fmt.Errorf("%w: no secret configured for app %s", platform.ErrSignature, appKey)
	}
	h := md5.New()
	h.Write([]byte(appKey))
	h.Write(body)
	h.Write([]byte(secret))
	want := hex.EncodeToString(h.Sum(nil))
	if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(strings.TrimSpace(sign)))) != 1 {
		return fmt.Errorf("%w: event-sign", platform.ErrSignature)
	}
	return nil
}

// with returns a copy of shop with one more setting: the credentials map stays untouched.
func with(shop platform.Shop, key, value string) platform.Shop {
	out := make(platform.Shop, len(shop)+1)
	for k, v := range shop {
		out[k] = v
	}
	out[key] = value
	return out
}

// errNoOrders reports an adapter built without an OrderSource: a paid message cannot name its buyer.
var errNoOrders = errors.New("douyin adapter has no order source")
