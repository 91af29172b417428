package douyin

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/omnimember/omnimember/shared/platform"
	"github.com/omnimember/omnimember/shared/platform/jsonfield"
)

// Tags of the 抖店 message push this adapter turns into events (消息推送 › 订单消息 / 售后消息).
const (
	TagPaid          = "101" // trade_TradePaid: 订单支付/确认
	TagRefundSuccess = "206" // refund_RefundSuccess: 退款成功
)

// maxMessages bounds one push; Douyin batches a handful of messages per request.
const maxMessages = 1000

// Message is one element of the pushed array. Paid or Refund is set for the tags handled.
type Message struct {
	Tag    string
	MsgID  string
	Paid   *Paid
	Refund *Refund
}

// Paid is the data of tag 101. Ids stay text: p_id exceeds 2^53.
type Paid struct {
	OrderID   string // p_id
	ShopID    string // shop_id
	AmountFen int64  // pay_amount, fen
	PaidAt    time.Time
}

// Refund is the data of tag 206. The refund's own id is aftersale_id.
type Refund struct {
	OrderID    string // p_id
	ShopID     string // shop_id
	RefundID   string // aftersale_id
	AmountFen  int64  // refund_amount, fen
	RefundedAt time.Time
}

// Parse decodes a push body: a JSON array of {tag, msg_id, data} where data is JSON encoded in a
// string (消息推送 › 推送格式: "data 为 JSON 字符串", so it is decoded twice). Tags other than 101
// and 206 keep their data unread: they are acknowledged, not normalised.
func Parse(body []byte) ([]Message, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(body, &items); err != nil {
		return nil, platform.Malformed("body", "want a JSON array of messages")
	}
	if len(items) > maxMessages {
		return nil, platform.Malformed("body", "more than %d messages", maxMessages)
	}
	msgs := make([]Message, 0, len(items))
	for i, raw := range items {
		m, err := parseMessage(fmt.Sprintf("[%d]", i), raw)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

func parseMessage(path string, raw []byte) (Message, error) {
	o, err := jsonfield.Decode(path, raw)
	if err != nil {
		return Message{}, err
	}
	m := Message{Tag: o.Str("tag"), MsgID: o.Str("msg_id")}
	if err := o.Err(); err != nil {
		return Message{}, err
	}
	if m.Tag != TagPaid && m.Tag != TagRefundSuccess {
		return m, nil
	}
	var data string
	if err := json.Unmarshal(o.Raw("data"), &data); err != nil {
		return Message{}, platform.Malformed(path+".data", "want a JSON object encoded in a string")
	}
	d, err := jsonfield.Decode(path+".data", []byte(data))
	if err != nil {
		return Message{}, err
	}
	if m.Tag == TagPaid {
		m.Paid = &Paid{OrderID: d.Digits("p_id"), ShopID: d.Digits("shop_id"), AmountFen: d.Int("pay_amount", true), PaidAt: d.Unix("pay_time")}
	} else {
		m.Refund = &Refund{OrderID: d.Digits("p_id"), ShopID: d.Digits("shop_id"), RefundID: d.Digits("aftersale_id"), AmountFen: d.Int("refund_amount", true), RefundedAt: d.Unix("success_time")}
	}
	return m, d.Err()
}
