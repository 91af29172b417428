// Package youzan verifies and normalises Youzan (有赞) message pushes into contract events.
package youzan

import (
	"context"
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/platform"
)

// Name is the platform name in /webhooks/{platform}, event sources and event ids.
const Name = "youzan"

// Credential keys of a Youzan app (platform.Shop), keyed by the client id.
const (
	KeySecret = "secret" // client_secret: signs pushes
	KeyKdtID  = "kdtId"  // optional: the one shop (kdt_id) this client id may push for
	// KeyClientID is set by the adapter from the push's client_id, for the BuyerSource.
	KeyClientID = "clientId"
)

// ackBody is what Youzan expects back (消息推送 › 接收消息: 返回 {"code":0,"msg":"success"});
// anything else and the push is sent again.
var ackBody = []byte(`{"code":0,"msg":"success"}`)

// Ack is the reply to every verified push.
func Ack() platform.Reply {
	return platform.Reply{Status: 200, ContentType: "application/json", Body: append([]byte(nil), ackBody...)}
}

// BuyerSource looks up the buyer of a trade for messages that do not carry one (refunds); with
// none configured such refunds are acknowledged as unhandled.
type BuyerSource interface {
	TradeBuyer(ctx context.Context, shop platform.Shop, kdtID, tid string) (Buyer, error)
}

// Adapter is the youzan platform.Adapter.
type Adapter struct {
	Buyers BuyerSource // optional
}

// New returns the adapter; buyers may be nil.
func New(buyers BuyerSource) *Adapter { return &Adapter{Buyers: buyers} }

// Name implements platform.Adapter.
func (a *Adapter) Name() string { return Name }

// Handle verifies the push and normalises paid and refund-success messages. Youzan signs no
// timestamp and sends no message id, so replays are caught by event ids derived from MessageKey.
func (a *Adapter) Handle(ctx context.Context, push platform.Push, creds platform.Credentials) (platform.Result, error) {
	env, shop, err := verified(push, creds)
	if err != nil {
		return platform.Result{}, err
	}
	res := platform.Result{Reply: Ack()}
	if env.Test {
		// 消息推送 › 测试消息: test pushes are only to be acknowledged.
		res.Unhandled = []string{"test " + env.Type}
		return res, nil
	}
	if want := shop[KeyKdtID]; want != "" && want != env.KdtID {
		return platform.Result{}, fmt.Errorf("%w: kdt_id %s is not the shop %s of client %s", platform.ErrUnknownShop, env.KdtID, want, env.ClientID)
	}
	ev, ok, err := a.normalise(ctx, withClientID(shop, env.ClientID), push, env)
	if err != nil {
		return platform.Result{}, fmt.Errorf("youzan %s %s: %w", env.Type, env.ID, err)
	}
	if ok {
		res.Events = []cloudevents.Event{ev}
	} else {
		res.Unhandled = []string{env.Type}
	}
	return res, nil
}

// Verify checks the envelope's sign with its client's secret.
func (a *Adapter) Verify(push platform.Push, creds platform.Credentials) error {
	_, _, err := verified(push, creds)
	return err
}

// verified reads the envelope (the sign covers its msg field), finds its client and checks the sign.
func verified(push platform.Push, creds platform.Credentials) (Envelope, platform.Shop, error) {
	env, err := ParseEnvelope(push.Body)
	if err != nil {
		return env, nil, fmt.Errorf("parse youzan push: %w", err)
	}
	shop, err := creds.Lookup(env.ClientID)
	if err != nil {
		return env, nil, fmt.Errorf("youzan push for client %q: %w", env.ClientID, err)
	}
	if err := Verify(env.ClientID, shop[KeySecret], env.Msg, env.Sign); err != nil {
		return env, nil, fmt.Errorf("verify youzan push %s %s: %w", env.Type, env.ID, err)
	}
	return env, shop, nil
}

func withClientID(shop platform.Shop, clientID string) platform.Shop {
	out := make(platform.Shop, len(shop)+1)
	for k, v := range shop {
		out[k] = v
	}
	out[KeyClientID] = clientID
	return out
}

// Verify checks sign = lowercase hex MD5(client_id + msg + client_secret), msg exactly as received
// (消息推送 › 消息签名). Hex case is not significant; the compare is constant time.
func Verify(clientID, secret, msg, sign string) error {
	if secret == "" {
		return fmt.Errorf("%w: no secret configured for client %s", platform.ErrSignature, clientID)
	}
	sum := md5.Sum([]byte(clientID + msg + secret))
	want := hex.EncodeToString(sum[:])
	if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(strings.TrimSpace(sign)))) != 1 {
		return fmt.Errorf("%w: sign", platform.ErrSignature)
	}
	return nil
}

// MessageKey identifies one message for deduplication. Youzan sends no message id: id is the
// business id (the tid), the same for every message about a trade, and a redelivery repeats the
// message with a higher sendCount. So the key is shop + type + id + status, plus the refund id
// for refunds (one trade can have several partial refunds, each a message of the same type).
func MessageKey(env Envelope, refundID string) string {
	return strings.Join([]string{env.KdtID, env.Type, env.ID, env.Status, refundID}, "/")
}

func (a *Adapter) normalise(ctx context.Context, shop platform.Shop, push platform.Push, env Envelope) (cloudevents.Event, bool, error) {
	if strings.TrimLeft(env.KdtID, "0") == "" || strings.Trim(env.KdtID, "0123456789") != "" || len(env.KdtID) > 20 {
		return cloudevents.Event{}, false, platform.Malformed("kdt_id", "want the shop's numeric id")
	}
	switch {
	case env.Type == TypeTradePaid:
		p, err := ParsePaid(env.Msg)
		if err != nil {
			return cloudevents.Event{}, false, err
		}
		env.ID = p.TID // the id of a trade message is its tid; the parsed one is never empty
		return paidEvent(push, env, p)
	case IsRefund(env.Type):
		r, err := ParseRefund(env.Msg)
		if err != nil {
			return cloudevents.Event{}, false, err
		}
		env.ID = r.TID
		return a.refundEvent(ctx, shop, push, env, r)
	}
	return cloudevents.Event{}, false, nil
}

func paidEvent(push platform.Push, env Envelope, p Paid) (cloudevents.Event, bool, error) {
	ids := identities(p.Buyer, env.KdtID)
	if len(ids) == 0 {
		return cloudevents.Event{}, false, nil
	}
	at := orReceived(p.PaidAt, push.ReceivedAt)
	ev, err := events.New(events.OrderPaid, platform.EventID(Name, MessageKey(env, ""), 0), platform.Source(Name), at, events.OrderPaidData{
		OrderID: p.TID, Channel: events.ChannelYouzan, ShopID: env.KdtID, AmountFen: p.AmountFen, PaidAt: at, Identities: ids, Items: p.Items,
	})
	return ev, err == nil, err
}

func (a *Adapter) refundEvent(ctx context.Context, shop platform.Shop, push platform.Push, env Envelope, r Refund) (cloudevents.Event, bool, error) {
	if a.Buyers == nil {
		return cloudevents.Event{}, false, nil
	}
	b, err := a.Buyers.TradeBuyer(ctx, shop, env.KdtID, r.TID)
	if err != nil {
		return cloudevents.Event{}, false, fmt.Errorf("buyer of trade %s: %w", r.TID, err)
	}
	ids := identities(b, env.KdtID)
	if len(ids) == 0 {
		return cloudevents.Event{}, false, nil
	}
	at := orReceived(r.RefundedAt, push.ReceivedAt)
	ev, err := events.New(events.OrderRefunded, platform.EventID(Name, MessageKey(env, r.RefundID), 0), platform.Source(Name), at, events.OrderRefundedData{
		OrderID: r.TID, RefundID: r.RefundID, Channel: events.ChannelYouzan, ShopID: env.KdtID, AmountFen: r.AmountFen, RefundedAt: at, Identities: ids,
	})
	return ev, err == nil, err
}

var (
	// ciphertextPhone is Youzan's encrypted field format ($<base64>$1$: the trailing 1 is the key
	// version). Unconfirmed beyond that shape.
	ciphertextPhone = regexp.MustCompile(`^\$[A-Za-z0-9+/=_\-]+\$[0-9]+\$$`)
	maskedPhone     = regexp.MustCompile(`^1[3-9][0-9]\*{4}[0-9]{4}$`)
)

// maxValueLen is the longest identity value the contract carries (common.json nonEmpty).
const maxValueLen = 256

// identities types what the buyer fields carry: yz_open_id, and the phone as ciphertext (scoped
// to youzan:<kdt_id>, only that shop's key opens it), as a mask, or as a plaintext number.
func identities(b Buyer, kdtID string) []events.Identity {
	var ids []events.Identity
	if b.OpenID != "" && len(b.OpenID) <= maxValueLen {
		ids = append(ids, events.Identity{Type: identity.YouzanOpenID, Value: b.OpenID})
	}
	switch phone := strings.TrimSpace(b.Phone); {
	case phone == "" || len(phone) > maxValueLen:
	case ciphertextPhone.MatchString(phone):
		ids = append(ids, events.Identity{Type: identity.PhoneCiphertext, Value: phone, Scope: Name + ":" + kdtID})
	case maskedPhone.MatchString(phone):
		ids = append(ids, events.Identity{Type: identity.PhoneMasked, Value: phone})
	default:
		if p, err := identity.NormalizePhone(phone); err == nil {
			ids = append(ids, events.Identity{Type: identity.Phone, Value: p})
		}
	}
	return ids
}

func orReceived(t, received time.Time) time.Time {
	if !t.IsZero() {
		return t
	}
	if received.IsZero() {
		return time.Now().UTC()
	}
	return received.UTC()
}
