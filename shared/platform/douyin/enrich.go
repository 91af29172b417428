package douyin

import (
	"context"
	"fmt"
	"regexp"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/platform"
)

// OrderSource reads what the push leaves out: the buyer of an order and the plaintext of its
// ciphertext phone (抖店 open API order.orderDetail and order.batchDecrypt). Errors wrapping
// platform.ErrUpstream make ingest answer 503, so Douyin pushes the message again later.
type OrderSource interface {
	OrderDetail(ctx context.Context, shop platform.Shop, orderID string) (Order, error)
	Decrypt(ctx context.Context, shop platform.Shop, ciphers []Cipher) (map[string]Plain, error)
}

// Order is the part of order.orderDetail's shop_order_detail the adapter needs.
type Order struct {
	OrderID        string // order_id
	ShopID         string // shop_id
	OpenID         string // doudian_open_id: the buyer, stable per shop
	EncryptPostTel string // encrypt_post_tel: the receiver's phone, ciphertext
	MaskPostTel    string // mask_post_tel: e.g. 138****5678
	PayAmountFen   int64  // pay_amount
}

// Cipher is one ciphertext to decrypt; AuthID is the order it belongs to (batchDecrypt auth_id).
type Cipher struct {
	AuthID string
	Text   string
}

// Plain is one decrypted phone. A virtual number (is_virtual_tel, a privacy relay number valid
// for a few days) reaches the receiver but is nobody's key, so it never becomes an identity.
type Plain struct {
	Phone   string
	Virtual bool
}

// maxCipherLen is the longest identity value the contract carries (common.json nonEmpty).
const maxCipherLen = 256

// maskedPhone is the mask identity.Normalize accepts; other masks (virtual numbers) are dropped.
var maskedPhone = regexp.MustCompile(`^1[3-9][0-9]\*{4}[0-9]{4}$`)

// order is one paid or refund message with what the open API says about its order.
type order struct {
	msg     Message
	shop    platform.Shop // the app's credentials with the message's shop id
	orderID string
	shopID  string
	detail  Order
	plain   Plain
}

// orders reads the order detail of every paid and refund message; the others are acknowledged
// as unhandled.
func (a *Adapter) orders(ctx context.Context, shop platform.Shop, msgs []Message, res *platform.Result) ([]*order, error) {
	var out []*order
	for _, m := range msgs {
		if m.Paid == nil && m.Refund == nil {
			res.Unhandled = append(res.Unhandled, "tag "+m.Tag)
			continue
		}
		if a.Orders == nil {
			return nil, errNoOrders
		}
		orderID, shopID := orderOf(m)
		if want := shop[KeyShopID]; want != "" && want != shopID {
			return nil, fmt.Errorf("douyin message %s: %w: shop %s is not the shop %s of app %s", m.MsgID, platform.ErrUnknownShop, shopID, want, shop[KeyAppKey])
		}
		o := &order{msg: m, shop: with(shop, KeyShopID, shopID), orderID: orderID, shopID: shopID}
		d, err := a.Orders.OrderDetail(ctx, o.shop, orderID)
		if err != nil {
			return nil, fmt.Errorf("douyin message %s: order detail %s: %w", m.MsgID, orderID, err)
		}
		o.detail = d
		out = append(out, o)
	}
	return out, nil
}

// decrypt opens the ciphertext phones of a push with one batch call per shop (the access token
// is per shop), rather than one call per message.
func (a *Adapter) decrypt(ctx context.Context, orders []*order) error {
	byShop := map[string][]*order{}
	var shops []string
	for _, o := range orders {
		if o.detail.EncryptPostTel == "" || len(o.detail.EncryptPostTel) > maxCipherLen {
			continue
		}
		if byShop[o.shopID] == nil {
			shops = append(shops, o.shopID)
		}
		byShop[o.shopID] = append(byShop[o.shopID], o)
	}
	for _, id := range shops {
		group := byShop[id]
		ciphers := make([]Cipher, len(group))
		for i, o := range group {
			ciphers[i] = Cipher{AuthID: o.orderID, Text: o.detail.EncryptPostTel}
		}
		plain, err := a.Orders.Decrypt(ctx, group[0].shop, ciphers)
		if err != nil {
			return fmt.Errorf("douyin decrypt %d phones of shop %s: %w", len(ciphers), id, err)
		}
		for _, o := range group {
			o.plain = plain[o.detail.EncryptPostTel]
		}
	}
	return nil
}

func orderOf(m Message) (orderID, shopID string) {
	if m.Paid != nil {
		return m.Paid.OrderID, m.Paid.ShopID
	}
	return m.Refund.OrderID, m.Refund.ShopID
}

func (o *order) normalise(push platform.Push, res *platform.Result) error {
	ids := o.identities()
	if len(ids) == 0 {
		// Nothing names the buyer: archived and counted by ingest rather than published.
		res.Unhandled = append(res.Unhandled, "tag "+o.msg.Tag+" without buyer")
		return nil
	}
	ev, err := event(push, o.msg, ids)
	if err != nil {
		return err
	}
	res.Events = append(res.Events, ev)
	return nil
}

// identities are every identity the order detail gives: the shop-scoped open id, the ciphertext
// phone (scoped to douyin:<shop>), its mask, and the plaintext phone when it decrypted. A virtual
// number belongs to the order, not the person: none of its forms (ciphertext, mask, plaintext)
// becomes an identity.
func (o *order) identities() []events.Identity {
	var ids []events.Identity
	if d := o.detail; d.OpenID != "" && len(d.OpenID) <= maxCipherLen {
		ids = append(ids, events.Identity{Type: identity.DouyinOpenID, Value: d.OpenID, Scope: o.shopID})
	}
	if d := o.detail; d.EncryptPostTel == "" || len(d.EncryptPostTel) > maxCipherLen || o.plain.Virtual {
		return ids
	}
	ids = append(ids, events.Identity{Type: identity.PhoneCiphertext, Value: o.detail.EncryptPostTel, Scope: Name + ":" + o.shopID})
	if maskedPhone.MatchString(o.detail.MaskPostTel) {
		ids = append(ids, events.Identity{Type: identity.PhoneMasked, Value: o.detail.MaskPostTel})
	}
	if o.plain.Phone != "" {
		if phone, err := identity.NormalizePhone(o.plain.Phone); err == nil {
			ids = append(ids, events.Identity{Type: identity.Phone, Value: phone})
		}
	}
	return ids
}

func event(push platform.Push, m Message, ids []events.Identity) (cloudevents.Event, error) {
	id := platform.EventID(Name, m.MsgID, 0)
	if m.Paid != nil {
		at := orNow(m.Paid.PaidAt, push.ReceivedAt)
		return events.New(events.OrderPaid, id, platform.Source(Name), at, events.OrderPaidData{
			OrderID: m.Paid.OrderID, Channel: events.ChannelDouyin, ShopID: m.Paid.ShopID,
			AmountFen: m.Paid.AmountFen, PaidAt: at, Identities: ids,
		})
	}
	at := orNow(m.Refund.RefundedAt, push.ReceivedAt)
	return events.New(events.OrderRefunded, id, platform.Source(Name), at, events.OrderRefundedData{
		OrderID: m.Refund.OrderID, RefundID: m.Refund.RefundID, Channel: events.ChannelDouyin, ShopID: m.Refund.ShopID,
		AmountFen: m.Refund.AmountFen, RefundedAt: at, Identities: ids,
	})
}

func orNow(t, received time.Time) time.Time {
	if t.IsZero() {
		if received.IsZero() {
			return time.Now().UTC()
		}
		return received.UTC()
	}
	return t
}
