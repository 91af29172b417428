package top

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/platform"
	"github.com/omnimember/omnimember/shared/platform/yuan"
)

// Platform is the name events from TOP carry in their ids and source.
const Platform = "tmall"

// TMC API methods and the topics normalised into events (TMC message documentation, 交易消息 /
// 退款消息 topic pages).
const (
	MethodConsume      = "taobao.tmc.messages.consume"
	MethodConfirm      = "taobao.tmc.messages.confirm"
	TopicTradePaid     = "taobao_trade_TradeBuyerPay"
	TopicRefundSuccess = "taobao_refund_RefundSuccess"
)

// Message is one TMC message as taobao.tmc.messages.consume returns it. Ids exceed 2^53 and stay
// strings.
type Message struct {
	ID       json.Number `json:"id"`
	Topic    string      `json:"topic"`
	Content  string      `json:"content"`
	PubTime  string      `json:"pub_time"`
	UserID   json.Number `json:"user_id"`
	UserNick string      `json:"user_nick"`
}

// APIError is TOP's error_response (bad sign, rate limit, missing permission...).
type APIError struct {
	Code    json.Number `json:"code"`
	Msg     string      `json:"msg"`
	SubCode string      `json:"sub_code"`
	SubMsg  string      `json:"sub_msg"`
}

func (e *APIError) Error() string {
	return fmt.Sprintf("TOP error %s %s (%s %s)", e.Code, e.Msg, e.SubCode, e.SubMsg)
}

type consumeResponse struct {
	Error   *APIError `json:"error_response"`
	Consume *struct {
		Messages *struct {
			Message []Message `json:"tmc_message"`
		} `json:"messages"`
	} `json:"tmc_messages_consume_response"`
}

// ParseConsume reads a taobao.tmc.messages.consume JSON response: the messages (none when the
// queue is empty), or the APIError TOP answered with.
func ParseConsume(body []byte) ([]Message, error) {
	var r consumeResponse
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return nil, platform.Malformed("tmc_messages_consume_response", "%v", err)
	}
	if r.Error != nil {
		return nil, r.Error
	}
	if r.Consume == nil {
		return nil, platform.Malformed("tmc_messages_consume_response", "missing")
	}
	if r.Consume.Messages == nil {
		return nil, nil
	}
	for i, m := range r.Consume.Messages.Message {
		if m.ID == "" || m.Topic == "" {
			return nil, platform.Malformed(fmt.Sprintf("tmc_message.%d.id", i), "message without id or topic")
		}
	}
	return r.Consume.Messages.Message, nil
}

// ParseConfirm reads a taobao.tmc.messages.confirm response.
func ParseConfirm(body []byte) error {
	var r struct {
		Error   *APIError `json:"error_response"`
		Confirm *struct {
			IsSuccess bool `json:"is_success"`
		} `json:"tmc_messages_confirm_response"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return platform.Malformed("tmc_messages_confirm_response", "%v", err)
	}
	switch {
	case r.Error != nil:
		return r.Error
	case r.Confirm == nil || !r.Confirm.IsSuccess:
		return platform.Malformed("tmc_messages_confirm_response.is_success", "confirm not successful")
	}
	return nil
}

// tradeContent is the content of the trade and refund topics. tid, payment, refund_id,
// refund_fee, seller_nick are documented; buyer_open_uid is named in TOP's open-uid notice for
// trade/refund messages; ouid and pay_time are unconfirmed and used only when present.
type tradeContent struct {
	TID          json.Number `json:"tid"`
	Payment      string      `json:"payment"`
	BuyerOpenUID string      `json:"buyer_open_uid"`
	OUID         string      `json:"ouid"`
	PayTime      string      `json:"pay_time"`
	RefundID     json.Number `json:"refund_id"`
	RefundFee    string      `json:"refund_fee"`
	Modified     string      `json:"modified"`
	SellerNick   string      `json:"seller_nick"`
}

// Normalizer turns TMC messages of one app into contract events.
type Normalizer struct {
	AppKey  string // scope of taobao_open_uid (per app key)
	Channel string // events.ChannelTmall or events.ChannelTaobao
}

// Normalize turns one message into its events; handled is false for topics omnimember ignores.
func (n Normalizer) Normalize(m Message) (evs []cloudevents.Event, handled bool, err error) {
	if m.Topic != TopicTradePaid && m.Topic != TopicRefundSuccess {
		return nil, false, nil
	}
	var c tradeContent
	dec := json.NewDecoder(strings.NewReader(m.Content))
	dec.UseNumber()
	if err := dec.Decode(&c); err != nil {
		return nil, true, platform.Malformed("content", "TMC message %s: %v", m.ID, err)
	}
	ids, err := n.identities(c, shop(m, c))
	if err != nil {
		return nil, true, err
	}
	var ev cloudevents.Event
	if m.Topic == TopicTradePaid {
		ev, err = n.paid(m, c, ids)
	} else {
		ev, err = n.refunded(m, c, ids)
	}
	if err != nil {
		return nil, true, err
	}
	// A message the contract rejects (an empty shop, an id too long) fails here, not at publish.
	if err := events.Validate(ev); err != nil {
		return nil, true, fmt.Errorf("TMC message %s: %w", m.ID, err)
	}
	return []cloudevents.Event{ev}, true, nil
}

func (n Normalizer) identities(c tradeContent, shopID string) ([]events.Identity, error) {
	var ids []events.Identity
	if c.BuyerOpenUID != "" {
		ids = append(ids, events.Identity{Type: identity.TaobaoOpenUID, Value: c.BuyerOpenUID, Scope: n.AppKey})
	}
	if c.OUID != "" && shopID != "" {
		ids = append(ids, events.Identity{Type: identity.TmallOUID, Value: c.OUID, Scope: shopID})
	}
	if len(ids) == 0 {
		return nil, platform.Malformed("content.buyer_open_uid", "the message names no buyer")
	}
	return ids, nil
}

func (n Normalizer) paid(m Message, c tradeContent, ids []events.Identity) (cloudevents.Event, error) {
	if c.TID == "" {
		return cloudevents.Event{}, platform.Malformed("content.tid", "missing")
	}
	fen, err := yuan.ToFen(c.Payment)
	if err != nil {
		return cloudevents.Event{}, platform.Malformed("content.payment", "%v", err)
	}
	at, err := eventTime(c.PayTime, m.PubTime)
	if err != nil {
		return cloudevents.Event{}, err
	}
	data := events.OrderPaidData{OrderID: c.TID.String(), Channel: n.Channel, ShopID: shop(m, c), AmountFen: fen, PaidAt: at, Identities: ids}
	return events.New(events.OrderPaid, platform.EventID(Platform, m.ID.String(), 0), platform.Source(Platform), at, data)
}

func (n Normalizer) refunded(m Message, c tradeContent, ids []events.Identity) (cloudevents.Event, error) {
	if c.TID == "" || c.RefundID == "" {
		return cloudevents.Event{}, platform.Malformed("content.refund_id", "tid and refund_id are required")
	}
	fen, err := yuan.ToFen(c.RefundFee)
	if err != nil {
		return cloudevents.Event{}, platform.Malformed("content.refund_fee", "%v", err)
	}
	at, err := eventTime(c.Modified, m.PubTime)
	if err != nil {
		return cloudevents.Event{}, err
	}
	data := events.OrderRefundedData{OrderID: c.TID.String(), RefundID: c.RefundID.String(), Channel: n.Channel, ShopID: shop(m, c),
		AmountFen: fen, RefundedAt: at, Identities: ids}
	return events.New(events.OrderRefunded, platform.EventID(Platform, m.ID.String(), 0), platform.Source(Platform), at, data)
}

// shop names the seller: TMC's user_id (the seller the message belongs to), else its nick.
func shop(m Message, c tradeContent) string {
	switch {
	case m.UserID != "":
		return m.UserID.String()
	case m.UserNick != "":
		return m.UserNick
	}
	return c.SellerNick
}

// eventTime prefers the content's own time and falls back to the message's publication time.
func eventTime(own, pub string) (time.Time, error) {
	for _, s := range []string{own, pub} {
		if s != "" {
			t, err := ParseTime(s)
			if err != nil {
				return time.Time{}, platform.Malformed("pub_time", "%v", err)
			}
			return t, nil
		}
	}
	return time.Time{}, platform.Malformed("pub_time", "missing")
}
