// Package wecom verifies WeCom (企业微信) callbacks and turns external-contact events into
// interactions that carry the contact's wecom_external_userid.
package wecom

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

// Name is the platform name: pushes arrive at /webhooks/wecom/{corpId}.
const Name = "wecom"

// Credential keys of one corp (or app) under platform.Credentials.
const (
	KeyToken     = "token"     // the callback Token set in the WeCom console
	KeyAESKey    = "aesKey"    // the callback EncodingAESKey (43 characters)
	KeyCorpID    = "corpId"    // the corp id; defaults to the credentials key
	KeyReceiveID = "receiveId" // what the plaintext ends with; defaults to corpId (a suite id for third-party apps)
	KeySecret    = "secret"    // optional: a secret with 客户联系 rights, to read a contact's unionid
)

// reply acknowledges a callback. WeCom retries a callback it gets no HTTP 200 for within 5 s
// (接收消息与事件 › 被动回复: with nothing to say, reply an empty body). Whether the body matters
// is unconfirmed; we answer "success", the body WeChat documents, on both platforms.
var reply = platform.Reply{ContentType: "text/plain; charset=utf-8", Body: []byte("success")}

// Adapter handles WeCom callbacks.
type Adapter struct {
	// Contacts, if set, reads the unionid of a contact added or edited in a corp whose credentials
	// have a secret, so that the contact links to the same person's WeChat identities.
	Contacts Contacts
}

// Contacts reads the unionid behind an external contact from WeCom's API: "" for a WeCom user
// or a contact the corp has no relation with any more; platform.ErrRefused for an error code
// retrying will not change, platform.ErrUpstream for a failure WeCom should retry the callback for.
type Contacts interface {
	ContactUnionID(ctx context.Context, corpID, secret, externalUserID string) (string, error)
}

// Name is "wecom".
func (Adapter) Name() string { return Name }

// Verify checks the callback's msg_signature (and a POST's timestamp window) with its corp's token.
func (a Adapter) Verify(push platform.Push, creds platform.Credentials) error {
	_, err := open(push, creds)
	return err
}

// callback is a verified callback: its corp and, for a POST, the decrypted message; for a GET, the
// URL check's answer.
type callback struct {
	key, corpID string
	shop        platform.Shop
	check       platform.Result
	plain       []byte
}

// open finds the corp a callback names and verifies it with the corp's credentials: a POST's
// msg_signature over the Encrypt element and our timestamp window (WeCom signs the timestamp but
// documents no window), then decrypts it.
func open(push platform.Push, creds platform.Credentials) (callback, error) {
	var env wxcrypt.Envelope
	if push.Method != "GET" {
		var err error
		if env, err = wxcrypt.ParseEnvelope(push.Body); err != nil {
			return callback{}, err
		}
	}
	key := corpKey(push.Rest, env.ToUserName, creds)
	shop, err := creds.Lookup(key)
	if err != nil {
		return callback{}, fmt.Errorf("wecom callback: %w", err)
	}
	cb := callback{key: key, corpID: firstSet(shop[KeyCorpID], key), shop: shop}
	c, err := wxcrypt.New(shop[KeyToken], shop[KeyAESKey], firstSet(shop[KeyReceiveID], cb.corpID))
	if err != nil {
		return cb, fmt.Errorf("wecom corp %s credentials: %w", key, err)
	}
	if push.Method == "GET" {
		cb.check, err = verifyURL(c, push.Query)
		cb.check.Shop = key
		return cb, err
	}
	if cb.plain, err = c.Open(push.Query, env.Encrypt, receivedAt(push)); err != nil {
		return cb, fmt.Errorf("wecom push: %w", err)
	}
	return cb, nil
}

// Handle answers the URL check (GET) and verifies, decrypts and normalises an event (POST).
func (a Adapter) Handle(ctx context.Context, push platform.Push, creds platform.Credentials) (platform.Result, error) {
	cb, err := open(push, creds)
	if err != nil || push.Method == "GET" {
		return cb.check, err
	}
	var m Message
	if err := wxcrypt.Unmarshal(cb.plain, &m); err != nil {
		return platform.Result{}, err
	}
	unionID, lookup, err := a.unionID(ctx, cb.corpID, cb.shop[KeySecret], m)
	if err != nil {
		return platform.Result{}, err
	}
	m.Lookup = lookup
	res, err := Normalize(cb.corpID, m, unionID)
	res.Reply, res.Shop = reply, cb.key
	return res, err
}

// corpKey names the corp's credentials: the path segment after /webhooks/wecom/ when there is one;
// for a bare /webhooks/wecom the envelope's ToUserName (the corp id, 90930 §"接收数据格式"; not
// signed, but the signature is then checked with that corp's token) or the only corp configured.
func corpKey(rest, toUserName string, creds platform.Credentials) string {
	if key := strings.Trim(rest, "/"); key != "" {
		return key
	}
	if _, ok := creds[toUserName]; ok {
		return toUserName
	}
	if len(creds) == 1 {
		for key := range creds {
			return key
		}
	}
	return ""
}

// verifyURL answers the console's URL check: the echostr is signed and encrypted like a message,
// and the reply is its plaintext, without quotes or newline (90930 §"验证URL有效性"). No timestamp
// window here: a replayed check publishes nothing and only echoes what it carries.
func verifyURL(c *wxcrypt.Crypter, q url.Values) (platform.Result, error) {
	echo := q.Get("echostr")
	if echo == "" {
		return platform.Result{}, platform.Malformed("echostr", "missing on the URL check")
	}
	if err := c.Verify(q.Get("msg_signature"), q.Get("timestamp"), q.Get("nonce"), echo); err != nil {
		return platform.Result{}, fmt.Errorf("verify wecom url check: %w", err)
	}
	plain, err := c.Decrypt(echo)
	if err != nil {
		return platform.Result{}, fmt.Errorf("decrypt wecom echostr: %w", err)
	}
	return platform.Result{Reply: platform.Reply{ContentType: "text/plain; charset=utf-8", Body: plain}}, nil
}

// enriched are the changes after which the contact exists and its details can be read.
var enriched = map[string]bool{"add_external_contact": true, "add_half_external_contact": true, "edit_external_contact": true}

// unionID reads the contact's unionid when the adapter has an API client and the corp a secret.
// A contact already gone has none; an error code retrying will not change leaves it out too and
// says so in lookup (the push is archived: re-normalise once the corp's settings are fixed); a
// transient failure is ErrUpstream, so WeCom retries.
func (a Adapter) unionID(ctx context.Context, corpID, secret string, m Message) (unionID, lookup string, err error) {
	if a.Contacts == nil || secret == "" || m.ExternalUserID == "" || m.Event != "change_external_contact" || !enriched[m.ChangeType] {
		return "", "", nil
	}
	unionID, err = a.Contacts.ContactUnionID(ctx, corpID, secret, m.ExternalUserID)
	switch {
	case errors.Is(err, platform.ErrRefused):
		return "", err.Error(), nil
	case err != nil:
		return "", "", fmt.Errorf("read wecom contact: %w", err)
	}
	return unionID, "", nil
}

func receivedAt(push platform.Push) time.Time {
	if push.ReceivedAt.IsZero() {
		return time.Now()
	}
	return push.ReceivedAt
}

// Message is a decrypted callback. The external-contact events are 92130 (客户联系 › 回调通知 ›
// 事件格式): add_external_contact and add_half_external_contact carry UserID, ExternalUserID,
// State and WelcomeCode; edit_external_contact, del_external_contact (with Source) and
// del_follow_user carry UserID and ExternalUserID.
type Message struct {
	ToUserName     string         `xml:"ToUserName" json:"ToUserName"`
	FromUserName   string         `xml:"FromUserName" json:"FromUserName"`
	CreateTime     wxcrypt.Scalar `xml:"CreateTime" json:"CreateTime"`
	MsgType        string         `xml:"MsgType" json:"MsgType"`
	Event          string         `xml:"Event" json:"Event"`
	ChangeType     string         `xml:"ChangeType" json:"ChangeType"`
	UserID         string         `xml:"UserID" json:"UserID"`
	ExternalUserID string         `xml:"ExternalUserID" json:"ExternalUserID"`
	State          string         `xml:"State" json:"State"`
	Source         string         `xml:"Source" json:"Source"`
	MsgID          wxcrypt.Scalar `xml:"MsgId" json:"MsgId"`
	// InfoType marks a third-party app's (suite) instruction callback (92277), left unhandled.
	InfoType string `xml:"InfoType" json:"InfoType"`
	// Lookup is not WeCom's: why the unionid could not be read, kept as an attribute.
	Lookup string `xml:"-" json:"-"`
}

// kinds maps the external-contact changes we keep to interaction kinds (the contract's kind
// pattern allows no colon, hence the underscore).
var kinds = map[string]string{
	"add_external_contact":      "wecom_add_external_contact",
	"add_half_external_contact": "wecom_add_half_external_contact",
	"edit_external_contact":     "wecom_edit_external_contact",
	"del_external_contact":      "wecom_del_external_contact",
	"del_follow_user":           "wecom_del_follow_user",
}

// Normalize turns a decrypted callback of corpID into events: an external-contact change becomes
// omnimember.interaction.recorded with the contact's wecom_external_userid scoped to the corp (and
// its wechat_unionid when known), so match creates or links the member; everything else is
// acknowledged as unhandled.
//
// Why interaction.recorded and not member.registered for add_external_contact: match resolves
// both the same way (a new scoped id makes a new member, a known one links), but only an
// interaction keeps the staff UserID and the State (the channel code of the 「联系我」 QR) and
// shows in the profile's activity.
func Normalize(corpID string, m Message, unionID string) (platform.Result, error) {
	kind, ok := kinds[m.ChangeType]
	if m.MsgType != "event" || m.Event != "change_external_contact" || !ok {
		return platform.Result{Unhandled: []string{unhandledName(m)}}, nil
	}
	if m.ExternalUserID == "" {
		return platform.Result{}, platform.Malformed("ExternalUserID", "missing on %s", m.ChangeType)
	}
	sec, err := strconv.ParseInt(string(m.CreateTime), 10, 64)
	if err != nil || sec <= 0 {
		return platform.Result{}, platform.Malformed("CreateTime", "not unix seconds: %q", m.CreateTime)
	}
	at := time.Unix(sec, 0).UTC()
	data := events.InteractionRecordedData{
		Channel:    events.ChannelWeChat,
		Kind:       kind,
		OccurredAt: at,
		Identities: []events.Identity{{Type: identity.WeComExternalUserID, Value: m.ExternalUserID, Scope: corpID}},
		Attributes: attributes(corpID, m),
	}
	if unionID != "" {
		data.Identities = append(data.Identities, events.Identity{Type: identity.WeChatUnionID, Value: unionID})
	}
	ev, err := events.New(events.InteractionRecorded, platform.EventID(Name, DedupeKey(m), 0), platform.Source(Name), at, data)
	if err != nil {
		return platform.Result{}, fmt.Errorf("wecom %s event: %w", m.ChangeType, err)
	}
	// A value the contract refuses (an id over 256 bytes, say) is the push's fault: 400 naming it.
	if err := events.Validate(ev); err != nil {
		return platform.Result{}, err
	}
	return platform.Result{Events: []cloudevents.Event{ev}}, nil
}

// DedupeKey identifies one event across WeCom's retries. Events carry no MsgId, and WeCom
// documents no dedupe rule (unconfirmed; WeChat's is FromUserName + CreateTime for events). For
// external-contact events FromUserName is always "sys", so the corp (ToUserName), both parties,
// the second and the change make the key: the same contact added by two staff members in one
// second is two events, a retry of either (new nonce, timestamp and ciphertext) is the same one.
func DedupeKey(m Message) string {
	if m.MsgID != "" {
		return m.ToUserName + "|msg|" + string(m.MsgID)
	}
	return strings.Join([]string{m.ToUserName, m.FromUserName, m.ExternalUserID, m.UserID, string(m.CreateTime), m.Event, m.ChangeType}, "|")
}

// attributes keep the corp, the staff member and the channel code; not WelcomeCode, a credential
// for sending the welcome message that expires within seconds.
func attributes(corpID string, m Message) map[string]string {
	attrs := map[string]string{"corpId": corpID}
	for k, v := range map[string]string{"userId": m.UserID, "state": m.State, "source": m.Source, "unionidLookup": m.Lookup} {
		if v != "" {
			attrs[k] = v
		}
	}
	return attrs
}

func unhandledName(m Message) string {
	switch {
	case m.Event != "" && m.ChangeType != "":
		return m.Event + "." + m.ChangeType
	case m.Event != "":
		return m.Event
	case m.MsgType != "":
		return m.MsgType
	case m.InfoType != "":
		return "suite." + m.InfoType
	}
	return "unknown"
}

func firstSet(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}
