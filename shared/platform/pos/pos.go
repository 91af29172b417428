// Package pos verifies and normalises the brand's own store systems' pushes (orders, refunds,
// member registrations) signed with omnimember's v1 HMAC signature.
package pos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/platform"
	"github.com/omnimember/omnimember/shared/platform/signature"
)

// Name is the platform's path segment: POST /webhooks/pos.
const Name = "pos"

// HeaderStore names the store (the shop key of its credentials).
const HeaderStore = "X-Omnimember-Store"

// Message types a POS sends.
const (
	TypeOrderPaid        = "order.paid"
	TypeOrderRefunded    = "order.refunded"
	TypeMemberRegistered = "member.registered"
)

// Message is one POS push (functions/ingest/README.md documents it with examples).
type Message struct {
	Type   string  `json:"type"`
	ID     string  `json:"id"` // unique per store; a resend with the same id is the same message
	Order  *Order  `json:"order,omitempty"`
	Refund *Refund `json:"refund,omitempty"`
	Member Member  `json:"member"`
}

// Order is a paid till receipt.
type Order struct {
	ID        string             `json:"id"`
	AmountFen int64              `json:"amountFen"`
	PaidAt    time.Time          `json:"paidAt"`
	Items     []events.OrderItem `json:"items,omitempty"`
}

// Refund is a full (AmountFen = the order's amount) or partial refund of an order.
type Refund struct {
	ID         string    `json:"id"`
	OrderID    string    `json:"orderId"`
	AmountFen  int64     `json:"amountFen"`
	RefundedAt time.Time `json:"refundedAt"`
}

// Member is who bought or registered: any of a plaintext phone, the store's member card and the
// brand's CRM id.
type Member struct {
	Phone        string    `json:"phone,omitempty"`
	Card         string    `json:"card,omitempty"`
	CRMID        string    `json:"crmId,omitempty"`
	RegisteredAt time.Time `json:"registeredAt,omitzero"`
}

// Adapter is the POS platform.
type Adapter struct{}

// Name is "pos".
func (Adapter) Name() string { return Name }

// Verify checks the sender's signature over timestamp and body.
func (Adapter) Verify(push platform.Push, creds platform.Credentials) error {
	_, err := signature.VerifyPush(push, creds, HeaderStore)
	return err
}

// Handle verifies the store's signature over timestamp and body, then normalises the message.
func (Adapter) Handle(_ context.Context, push platform.Push, creds platform.Credentials) (platform.Result, error) {
	store, err := signature.VerifyPush(push, creds, HeaderStore)
	if err != nil {
		return platform.Result{}, err
	}
	msg, err := Parse(push.Body)
	if err != nil {
		return platform.Result{}, err
	}
	return Normalise(store, msg)
}

// Parse decodes and checks a POS message; a bad field is reported by its JSON path.
func Parse(body []byte) (Message, error) {
	var msg Message
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&msg); err != nil {
		return msg, decodeError(err)
	}
	if strings.TrimSpace(msg.Type) == "" {
		return msg, platform.Malformed("type", "missing")
	}
	if strings.TrimSpace(msg.ID) == "" {
		return msg, platform.Malformed("id", "missing: every message carries its own id")
	}
	if msg.Member.Phone != "" {
		if _, err := identity.NormalizePhone(msg.Member.Phone); err != nil {
			return msg, platform.Malformed("member.phone", "not a mainland mobile number") // the value is never echoed
		}
	}
	return msg, checkBody(msg)
}

func checkBody(msg Message) error {
	switch msg.Type {
	case TypeOrderPaid:
		o := msg.Order
		switch {
		case o == nil:
			return platform.Malformed("order", "missing for %s", msg.Type)
		case o.ID == "":
			return platform.Malformed("order.id", "missing")
		case o.AmountFen < 0:
			return platform.Malformed("order.amountFen", "negative")
		case o.PaidAt.IsZero():
			return platform.Malformed("order.paidAt", "missing (RFC 3339)")
		}
	case TypeOrderRefunded:
		r := msg.Refund
		switch {
		case r == nil:
			return platform.Malformed("refund", "missing for %s", msg.Type)
		case r.ID == "" || r.OrderID == "":
			return platform.Malformed("refund.id", "refund.id and refund.orderId are required")
		case r.AmountFen <= 0:
			return platform.Malformed("refund.amountFen", "must be positive")
		case r.RefundedAt.IsZero():
			return platform.Malformed("refund.refundedAt", "missing (RFC 3339)")
		}
	case TypeMemberRegistered:
		if msg.Member.RegisteredAt.IsZero() {
			return platform.Malformed("member.registeredAt", "missing (RFC 3339)")
		}
	}
	return nil
}

// decodeError names the field of a JSON type error, or the body for a syntax error.
func decodeError(err error) error {
	if ute, ok := errors.AsType[*json.UnmarshalTypeError](err); ok && ute.Field != "" {
		return platform.Malformed(ute.Field, "want a JSON %s", ute.Type)
	}
	if pe, ok := errors.AsType[*time.ParseError](err); ok {
		return platform.Malformed("body", "a time is not RFC 3339: %q", pe.Value)
	}
	return platform.Malformed("body", "not a JSON object: %v", err)
}

// Normalise turns a checked message into contract events. Event ids derive from the store and the
// message id, so a resent message publishes the same ids. A message type omnimember does not
// handle, or an order with no member on it, is acknowledged and reported as unhandled.
func Normalise(store string, msg Message) (platform.Result, error) {
	res := platform.Result{Shop: store, Reply: platform.Reply{ContentType: "application/json", Body: fmt.Appendf(nil, `{"ok":true,"id":%q}`, msg.ID)}}
	ids := msg.Member.identities()
	if len(ids) == 0 || !handled(msg.Type) {
		res.Unhandled = []string{unhandledName(msg.Type, len(ids) == 0)}
		return res, nil
	}
	ev, err := event(store, msg, ids)
	if err != nil {
		return res, err
	}
	// The schema's limits (an item without a sku, say) are the sender's bad input: 400, not a 500 at publish.
	if err := events.Validate(ev); err != nil {
		if fe, ok := errors.AsType[*events.FieldError](err); ok {
			return res, platform.Malformed(messageField(msg.Type, fe.Field), "%s", fe.Reason)
		}
		return res, err
	}
	res.Events = []cloudevents.Event{ev}
	return res, nil
}

// messageField maps an event field (data.items.0.sku) back to the message's (order.items.0.sku).
func messageField(typ, field string) string {
	rest, ok := strings.CutPrefix(field, "data.")
	switch {
	case !ok:
		return field
	case strings.HasPrefix(rest, "identities"):
		return "member"
	case typ == TypeOrderRefunded:
		return "refund." + rest
	case typ == TypeOrderPaid:
		return "order." + rest
	}
	return "member." + rest
}

func handled(t string) bool {
	return t == TypeOrderPaid || t == TypeOrderRefunded || t == TypeMemberRegistered
}

func unhandledName(t string, anonymous bool) string {
	if anonymous && handled(t) {
		return t + " (no member)"
	}
	return t
}

func event(store string, msg Message, ids []events.Identity) (cloudevents.Event, error) {
	id, source := platform.EventID(Name, store+"/"+msg.ID, 0), platform.Source(Name)
	switch msg.Type {
	case TypeOrderPaid:
		o := msg.Order
		return events.New(events.OrderPaid, id, source, o.PaidAt, events.OrderPaidData{OrderID: o.ID, Channel: events.ChannelPOS,
			ShopID: store, AmountFen: o.AmountFen, PaidAt: o.PaidAt, Identities: ids, Items: o.Items})
	case TypeOrderRefunded:
		r := msg.Refund
		return events.New(events.OrderRefunded, id, source, r.RefundedAt, events.OrderRefundedData{OrderID: r.OrderID, RefundID: r.ID,
			Channel: events.ChannelPOS, ShopID: store, AmountFen: r.AmountFen, RefundedAt: r.RefundedAt, Identities: ids})
	default:
		at := msg.Member.RegisteredAt
		return events.New(events.MemberRegistered, id, source, at, events.MemberRegisteredData{Channel: events.ChannelPOS,
			ShopID: store, RegisteredAt: at, Identities: ids})
	}
}

func (m Member) identities() []events.Identity {
	var out []events.Identity
	add := func(typ, v string) {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, events.Identity{Type: typ, Value: v})
		}
	}
	add(identity.Phone, m.Phone)
	add(identity.POSCard, m.Card)
	add(identity.CRMID, m.CRMID)
	return out
}
