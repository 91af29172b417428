package youzan

import (
	"bytes"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/platform"
	"github.com/omnimember/omnimember/shared/platform/jsonfield"
)

// Message types handled (消息推送 › 交易消息 / 交易退款).
const TypeTradePaid = "trade_TradePaid"

// RefundTypes are the refund-success message types. Unconfirmed: the old (trade_refund_*) and new
// (youzan_trade_*) names are taken from open-source consumers, not from a primary source; this
// list is the one place to change.
var RefundTypes = []string{"trade_refund_RefundSuccess", "youzan_trade_RefundSuccess"}

// shanghai is the zone of Youzan's "yyyy-MM-dd HH:mm:ss" times (China has no daylight saving, so a
// fixed offset is exact and needs no tzdata).
var shanghai = time.FixedZone("Asia/Shanghai", 8*3600)

// Envelope is the outer push (消息推送 › 消息结构): the message itself is Msg, URL-encoded JSON.
type Envelope struct {
	ClientID string
	ID       string // the business id (the trade's tid for trade messages)
	KdtID    string // the shop
	Type     string
	Status   string
	Msg      string // exactly as received, still URL-encoded: the signature covers it
	Sign     string
	Test     bool
}

// ParseEnvelope reads the push body: JSON (what Youzan posts) or, for older integrations, a form.
func ParseEnvelope(body []byte) (Envelope, error) {
	if t := bytes.TrimSpace(body); len(t) > 0 && t[0] != '{' {
		return parseForm(body)
	}
	o, err := jsonfield.Decode("", body)
	if err != nil {
		return Envelope{}, platform.Malformed("body", "want a JSON object")
	}
	msg, _ := o.Scalar("msg") // untrimmed: the signature covers msg byte for byte
	e := Envelope{
		ClientID: o.Str("client_id"), ID: o.Optional("id"), KdtID: o.Optional("kdt_id"),
		Type: o.Str("type"), Status: o.Optional("status"), Msg: msg, Sign: o.Str("sign"), Test: o.Bool("test"),
	}
	return e, o.Err()
}

func parseForm(body []byte) (Envelope, error) {
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return Envelope{}, platform.Malformed("body", "want JSON or a form")
	}
	e := Envelope{ClientID: v.Get("client_id"), ID: v.Get("id"), KdtID: v.Get("kdt_id"), Type: v.Get("type"),
		Status: v.Get("status"), Msg: v.Get("msg"), Sign: v.Get("sign"), Test: v.Get("test") == "true"}
	for name, val := range map[string]string{"client_id": e.ClientID, "type": e.Type, "sign": e.Sign} {
		if val == "" {
			return Envelope{}, platform.Malformed(name, "missing")
		}
	}
	return e, nil
}

// decodeMsg turns msg into JSON: URL-decoded (Java URLEncoder, '+' for space) unless it already
// is a JSON object, as newer message types send it.
func decodeMsg(msg string) (*jsonfield.Object, error) {
	raw := strings.TrimSpace(msg)
	if !strings.HasPrefix(raw, "{") {
		var err error
		if raw, err = url.QueryUnescape(raw); err != nil {
			return nil, platform.Malformed("msg", "not URL-encoded")
		}
	}
	return jsonfield.Decode("msg", []byte(raw))
}

// Buyer is who bought: yz_open_id and the phone as the message carries it.
type Buyer struct {
	OpenID string // buyer_info.yz_open_id
	Phone  string // buyer_info.buyer_phone: "$...$1$" ciphertext, a mask, or 11 digits
}

// Paid is a trade_TradePaid message.
type Paid struct {
	TID       string
	AmountFen int64
	PaidAt    time.Time
	Buyer     Buyer
	Items     []events.OrderItem
}

// ParsePaid reads msg of trade_TradePaid: full_order_info.{order_info.{tid,pay_time},
// pay_info.payment (yuan), buyer_info, orders[]}.
func ParsePaid(msg string) (Paid, error) {
	o, err := decodeMsg(msg)
	if err != nil {
		return Paid{}, err
	}
	full := o.Object("full_order_info")
	info := full.Object("order_info")
	p := Paid{TID: info.ID("tid"), PaidAt: localTime(info, "pay_time"), AmountFen: yuan(full.Object("pay_info"), "payment")}
	if full.Has("buyer_info") {
		b := full.Object("buyer_info")
		p.Buyer = Buyer{OpenID: b.Optional("yz_open_id"), Phone: b.Optional("buyer_phone")}
	}
	for _, it := range full.Array("orders") {
		if item, ok := orderItem(it); ok {
			p.Items = append(p.Items, item)
		}
	}
	return p, o.Err()
}

// orderItem reads one line; lines without a SKU or a quantity are left out, not rejected.
func orderItem(o *jsonfield.Object) (events.OrderItem, bool) {
	sku := o.Optional("outer_sku_id")
	for _, alt := range []string{"sku_id", "item_id"} {
		if sku == "" || sku == "0" {
			sku = o.Optional(alt)
		}
	}
	qty := o.Int("num", false)
	if !o.Has("payment") {
		return events.OrderItem{}, false
	}
	amount := yuan(o, "payment")
	if sku == "" || sku == "0" || qty < 1 || qty > 1_000_000 || len(sku) > jsonfield.MaxIDLen {
		return events.OrderItem{}, false
	}
	return events.OrderItem{SKU: sku, Name: o.Optional("title"), Quantity: int(qty), AmountFen: amount}, true
}

// Refund is a refund-success message.
type Refund struct {
	TID        string
	RefundID   string
	AmountFen  int64
	RefundedAt time.Time
}

// ParseRefund reads msg of a refund-success message: tid, refund_id, refunded_fee (yuan),
// update_time. Field names are unconfirmed beyond open-source consumers (see RefundTypes).
func ParseRefund(msg string) (Refund, error) {
	o, err := decodeMsg(msg)
	if err != nil {
		return Refund{}, err
	}
	r := Refund{TID: o.ID("tid"), RefundID: o.ID("refund_id"), AmountFen: yuan(o, "refunded_fee"), RefundedAt: localTime(o, "update_time")}
	return r, o.Err()
}

// IsRefund reports whether a message type is a refund success.
func IsRefund(msgType string) bool { return slices.Contains(RefundTypes, msgType) }

var yuanPattern = regexp.MustCompile(`^([0-9]{1,12})(?:\.([0-9]{1,2})0*)?$`)

// yuan reads a required amount in yuan ("12.30", sent as a string or a number) as fen, by its
// decimal digits: no float ever holds money.
func yuan(o *jsonfield.Object, name string) int64 {
	s := o.Str(name)
	if s == "" {
		return 0
	}
	fen, err := YuanToFen(s)
	if err != nil {
		o.Fail(name, "%v", err)
	}
	return fen
}

// YuanToFen converts "12.3" to 1230; more than two significant decimals, signs and exponents are errors.
func YuanToFen(s string) (int64, error) {
	m := yuanPattern.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("want an amount in yuan like 12.30, got %q", s)
	}
	whole, _ := strconv.ParseInt(m[1], 10, 64)
	cents := m[2] + "00"[len(m[2]):]
	frac, _ := strconv.ParseInt(cents, 10, 64)
	return whole*100 + frac, nil
}

// localTime reads an optional "yyyy-MM-dd HH:mm:ss" Asia/Shanghai time; absent gives the zero time.
func localTime(o *jsonfield.Object, name string) time.Time {
	s := o.Optional(name)
	if s == "" {
		return time.Time{}
	}
	t, err := time.ParseInLocation(time.DateTime, s, shanghai)
	if err != nil {
		o.Fail(name, "want yyyy-MM-dd HH:mm:ss")
		return time.Time{}
	}
	return t.UTC()
}
