// Package wechat verifies WeChat official account and mini-program message pushes (plain and safe
// mode, XML or JSON) and turns follow events into interactions carrying the app's openid.
package wechat

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/platform"
	"github.com/omnimember/omnimember/shared/platform/wxcrypt"
)

// Name is the platform name: pushes arrive at /webhooks/wechat/{appId}.
const Name = "wechat"

// Credential keys of one app under platform.Credentials.
const (
	KeyToken  = "token"  // the server Token set in the console (服务器配置 / 消息推送)
	KeyAESKey = "aesKey" // the EncodingAESKey; when set, only safe-mode pushes are accepted
	KeyAppID  = "appId"  // the AppID (receive id of safe mode); defaults to the credentials key
	KeySecret = "secret" // optional, official accounts: the AppSecret, to read a follower's unionid
)

// reply acknowledges a push; without "success" (or an empty body) within 5 s WeChat retries three
// times (公众号 › 被动回复用户消息: "直接回复success").
var reply = platform.Reply{ContentType: "text/plain; charset=utf-8", Body: []byte("success")}

// Adapter handles WeChat pushes.
type Adapter struct {
	// Users, if set, reads the unionid of a new follower of an official account whose
	// credentials have a secret (follow events carry only the openid).
	Users Users
}

// Users reads an official-account follower's unionid from WeChat's API ("" when the account is
// not bound to an Open Platform account): platform.ErrRefused for an error code retrying will not
// change, platform.ErrUpstream for a failure WeChat should retry the push for.
type Users interface {
	UnionID(ctx context.Context, appID, secret, openID string) (string, error)
}

// Name is "wechat".
func (Adapter) Name() string { return Name }

// Verify checks the push's signature (and a POST's timestamp window) with its app's token.
func (a Adapter) Verify(push platform.Push, creds platform.Credentials) error {
	_, err := verified(push, creds)
	return err
}

// pushed is a verified push: its app and, for a POST, the message; for a GET, the URL check's answer.
type pushed struct {
	key, appID string
	app        platform.Shop
	check      platform.Result
	plain      []byte
}

// verified finds the app a push names and verifies (and, in safe mode, decrypts) it.
func verified(push platform.Push, creds platform.Credentials) (pushed, error) {
	key := appKey(push.Rest, creds)
	app, err := creds.Lookup(key)
	if err != nil {
		return pushed{}, fmt.Errorf("wechat push: %w", err)
	}
	token := app[KeyToken]
	if token == "" {
		return pushed{}, fmt.Errorf("wechat app %s credentials: no %s", key, KeyToken)
	}
	p := pushed{key: key, appID: key, app: app}
	if app[KeyAppID] != "" {
		p.appID = app[KeyAppID]
	}
	if push.Method == "GET" {
		p.check, err = verifyURL(token, push.Query)
		p.check.Shop = key
		return p, err
	}
	p.plain, err = open(push, token, app[KeyAESKey], p.appID)
	return p, err
}

// Handle answers the URL check (GET) and verifies and normalises a push (POST).
func (a Adapter) Handle(ctx context.Context, push platform.Push, creds platform.Credentials) (platform.Result, error) {
	p, err := verified(push, creds)
	if err != nil || push.Method == "GET" {
		return p.check, err
	}
	var m Message
	if err := wxcrypt.Unmarshal(p.plain, &m); err != nil {
		return platform.Result{}, err
	}
	if err := a.enrich(ctx, p.appID, p.app[KeySecret], &m); err != nil {
		return platform.Result{}, err
	}
	res, err := Normalize(p.appID, m)
	res.Reply, res.Shop = reply, p.key
	return res, err
}

// appKey names the app's credentials: the path segment after /webhooks/wechat/, or for a bare
// /webhooks/wechat the only app configured (WeChat's ToUserName is the account's original id,
// gh_..., not the AppID, so it cannot pick among several).
func appKey(rest string, creds platform.Credentials) string {
	if key := strings.Trim(rest, "/"); key != "" || len(creds) != 1 {
		return key
	}
	for only := range creds {
		return only
	}
	return ""
}

// verifyURL answers the console's URL check (接入指南 §"验证消息的确来自微信服务器"): the
// signature covers token, timestamp and nonce, and the reply is echostr as received.
func verifyURL(token string, q url.Values) (platform.Result, error) {
	if err := verifyPlain(token, q.Get("signature"), q.Get("timestamp"), q.Get("nonce")); err != nil {
		return platform.Result{}, fmt.Errorf("verify wechat url check: %w", err)
	}
	echo := q.Get("echostr")
	if echo == "" {
		return platform.Result{}, platform.Malformed("echostr", "missing on the URL check")
	}
	return platform.Result{Reply: platform.Reply{ContentType: "text/plain; charset=utf-8", Body: []byte(echo)}}, nil
}

// open verifies a POST and returns its message. Safe mode (encrypt_type=aes) signs the ciphertext
// with msg_signature and encrypts with the AppID as receive id (消息加解密说明); plain mode signs
// only token, timestamp and nonce, not the body, so an app with an EncodingAESKey accepts safe
// mode only. Both carry a timestamp, checked against our window (WeChat documents none).
func open(push platform.Push, token, aesKey, appID string) ([]byte, error) {
	if push.Query.Get("encrypt_type") == "aes" {
		return openSafe(push, token, aesKey, appID)
	}
	if aesKey != "" {
		return nil, fmt.Errorf("verify wechat push: %w: plain-mode push for an app configured with an EncodingAESKey", platform.ErrSignature)
	}
	q := push.Query
	if err := verifyPlain(token, q.Get("signature"), q.Get("timestamp"), q.Get("nonce")); err != nil {
		return nil, fmt.Errorf("verify wechat push: %w", err)
	}
	if _, err := wxcrypt.CheckTimestamp(q.Get("timestamp"), receivedAt(push)); err != nil {
		return nil, fmt.Errorf("verify wechat push: %w", err)
	}
	return push.Body, nil
}

// openSafe opens a safe-mode push with the app's key.
func openSafe(push platform.Push, token, aesKey, appID string) ([]byte, error) {
	if aesKey == "" {
		return nil, fmt.Errorf("wechat app %s credentials: safe-mode push but no %s", appID, KeyAESKey)
	}
	c, err := wxcrypt.New(token, aesKey, appID)
	if err != nil {
		return nil, fmt.Errorf("wechat app %s credentials: %w", appID, err)
	}
	env, err := wxcrypt.ParseEnvelope(push.Body)
	if err != nil {
		return nil, err
	}
	plain, err := c.Open(push.Query, env.Encrypt, receivedAt(push))
	if err != nil {
		return nil, fmt.Errorf("wechat push: %w", err)
	}
	return plain, nil
}

// enrich reads a new follower's unionid when the adapter has an API client and the app a secret.
// An error code retrying will not change leaves it out and says so in the unionidLookup attribute
// (the push is archived: re-normalise once the settings are fixed); a transient failure is
// ErrUpstream, so WeChat retries.
func (a Adapter) enrich(ctx context.Context, appID, secret string, m *Message) error {
	if a.Users == nil || secret == "" || m.MsgType != "event" || m.Event != "subscribe" || m.UnionID != "" || m.FromUserName == "" {
		return nil
	}
	unionID, err := a.Users.UnionID(ctx, appID, secret, m.FromUserName)
	switch {
	case errors.Is(err, platform.ErrRefused):
		m.Lookup = err.Error()
	case err != nil:
		return fmt.Errorf("read wechat follower: %w", err)
	default:
		m.UnionID = unionID
	}
	return nil
}

func verifyPlain(token, signature, timestamp, nonce string) error {
	if signature == "" {
		return fmt.Errorf("%w: missing signature", platform.ErrSignature)
	}
	if !wxcrypt.Equal(signature, wxcrypt.Signature(token, timestamp, nonce)) {
		return fmt.Errorf("%w: signature", platform.ErrSignature)
	}
	return nil
}

func receivedAt(push platform.Push) time.Time {
	if push.ReceivedAt.IsZero() {
		return time.Now()
	}
	return push.ReceivedAt
}

// Message is a push's (decrypted) message: 公众号 › 接收事件推送 (关注/取消关注事件: ToUserName,
// FromUserName = openid, CreateTime, MsgType event, Event subscribe|unsubscribe, EventKey
// qrscene_... when followed through a QR code), and the same names in a mini-program's JSON.
type Message struct {
	ToUserName   string         `xml:"ToUserName" json:"ToUserName"`
	FromUserName string         `xml:"FromUserName" json:"FromUserName"`
	CreateTime   wxcrypt.Scalar `xml:"CreateTime" json:"CreateTime"`
	MsgType      string         `xml:"MsgType" json:"MsgType"`
	Event        string         `xml:"Event" json:"Event"`
	EventKey     string         `xml:"EventKey" json:"EventKey"`
	MsgID        wxcrypt.Scalar `xml:"MsgId" json:"MsgId"`
	// UnionID appears only in some pushes (unconfirmed which; the element name UnionId follows
	// the mini-program's JSON field) and is taken when present.
	UnionID string `xml:"UnionId" json:"UnionId"`
	// Lookup is not WeChat's: why the unionid could not be read, kept as an attribute.
	Lookup string `xml:"-" json:"-"`
}

var kinds = map[string]string{
	"subscribe":   "wechat_subscribe",
	"unsubscribe": "wechat_unsubscribe",
}

// Normalize turns a push to appID into events: a follow or unfollow becomes
// omnimember.interaction.recorded with the wechat_openid scoped to the app (and the
// wechat_unionid when the push has one), so match creates or links the member; everything else
// is acknowledged as unhandled.
func Normalize(appID string, m Message) (platform.Result, error) {
	kind, ok := kinds[m.Event]
	if m.MsgType != "event" || !ok {
		return platform.Result{Unhandled: []string{unhandledName(m)}}, nil
	}
	if m.FromUserName == "" {
		return platform.Result{}, platform.Malformed("FromUserName", "missing on %s", m.Event)
	}
	sec, err := strconv.ParseInt(string(m.CreateTime), 10, 64)
	if err != nil || sec <= 0 {
		return platform.Result{}, platform.Malformed("CreateTime", "not unix seconds: %q", m.CreateTime)
	}
	at := time.Unix(sec, 0).UTC()
	ids := []events.Identity{{Type: identity.WeChatOpenID, Value: m.FromUserName, Scope: appID}}
	if m.UnionID != "" {
		ids = append(ids, events.Identity{Type: identity.WeChatUnionID, Value: m.UnionID})
	}
	attrs := map[string]string{"appId": appID}
	if m.EventKey != "" {
		attrs["eventKey"] = m.EventKey
	}
	if m.Lookup != "" {
		attrs["unionidLookup"] = m.Lookup
	}
	data := events.InteractionRecordedData{Channel: events.ChannelWeChat, Kind: kind, OccurredAt: at, Identities: ids, Attributes: attrs}
	ev, err := events.New(events.InteractionRecorded, platform.EventID(Name, DedupeKey(appID, m), 0), platform.Source(Name), at, data)
	if err != nil {
		return platform.Result{}, fmt.Errorf("wechat %s event: %w", m.Event, err)
	}
	// A value the contract refuses (an id over 256 bytes, say) is the push's fault: 400 naming it.
	if err := events.Validate(ev); err != nil {
		return platform.Result{}, err
	}
	return platform.Result{Events: []cloudevents.Event{ev}}, nil
}

// DedupeKey follows WeChat's rule for retried pushes: messages by MsgId (接收普通消息 "推荐使用
// msgid排重"), events by FromUserName + CreateTime (接收事件推送 "推荐使用FromUserName +
// CreateTime 排重"), with the event name and the app added so that a follow and an unfollow in
// the same second stay two events.
func DedupeKey(appID string, m Message) string {
	if m.MsgID != "" {
		return appID + "|msg|" + string(m.MsgID)
	}
	return strings.Join([]string{appID, m.FromUserName, string(m.CreateTime), m.Event}, "|")
}

func unhandledName(m Message) string {
	switch {
	case m.MsgType == "event" && m.Event != "":
		return m.Event
	case m.MsgType != "":
		return m.MsgType
	}
	return "unknown"
}
