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

func (a *Adapter) normalise(ctx context.Context, shop platform.Shop, push platform.Push, m Message, res *platform.Result) error {
	if m.Paid == nil && m.Refund == nil {
		res.Unhandled = append(res.Unhandled, "tag "+m.Tag)
		return nil
	}
	if a.Orders == nil {
		return errNoOrders
	}
	orderID, shopID := orderOf(m)
	if want := shop[KeyShopID]; want != "" && want != shopID {
		return fmt.Errorf("%w: shop %s is not the shop %s of app %s", platform.ErrUnknownShop, shopID, want, shop[KeyAppKey])
	}
	shop = with(shop, KeyShopID, shopID) // the OrderSource needs the shop for its access token
	ids, err := a.buyer(ctx, shop, orderID, shopID)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		// Nothing names the buyer: archived and counted by ingest rather than published.
		res.Unhandled = append(res.Unhandled, "tag "+m.Tag+" without buyer")
		return nil
	}
	ev, err := event(push, m, ids)
	if err != nil {
		return err
	}
	res.Events = append(res.Events, ev)
	return nil
}

func orderOf(m Message) (orderID, shopID string) {
	if m.Paid != nil {
		return m.Paid.OrderID, m.Paid.ShopID
	}
	return m.Refund.OrderID, m.Refund.ShopID
}

// buyer returns every identity the order detail gives: the shop-scoped open id, the ciphertext
// phone (scoped to douyin:<shop>), its mask, and the plaintext phone when it decrypts to a real
// (not virtual) number.
func (a *Adapter) buyer(ctx context.Context, shop platform.Shop, orderID, shopID string) ([]events.Identity, error) {
	o, err := a.Orders.OrderDetail(ctx, shop, orderID)
	if err != nil {
		return nil, fmt.Errorf("order detail %s: %w", orderID, err)
	}
	var ids []events.Identity
	if o.OpenID != "" {
		ids = append(ids, events.Identity{Type: identity.DouyinOpenID, Value: o.OpenID, Scope: shopID})
	}
	if o.EncryptPostTel == "" || len(o.EncryptPostTel) > maxCipherLen {
		return ids, nil
	}
	ids = append(ids, events.Identity{Type: identity.PhoneCiphertext, Value: o.EncryptPostTel, Scope: Name + ":" + shopID})
	if maskedPhone.MatchString(o.MaskPostTel) {
		ids = append(ids, events.Identity{Type: identity.PhoneMasked, Value: o.MaskPostTel})
	}
	plain, err := a.Orders.Decrypt(ctx, shop, []Cipher{{AuthID: orderID, Text: o.EncryptPostTel}})
	if err != nil {
		return nil, fmt.Errorf("decrypt phone of order %s: %w", orderID, err)
	}
	if p, ok := plain[o.EncryptPostTel]; ok && !p.Virtual {
		if phone, err := identity.NormalizePhone(p.Phone); err == nil {
			ids = append(ids, events.Identity{Type: identity.Phone, Value: phone})
		}
	}
	return ids, nil
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
