package jd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/platform"
	"github.com/omnimember/omnimember/shared/platform/yuan"
)

// MethodOrderSearch is the incremental order API the poller uses (JD's order push format is
// unconfirmed, see platforms.md).
const MethodOrderSearch = "jingdong.pop.order.search"

// StateCanceled is the order state of a cancelled order; a cancelled paid order was refunded in
// full. Partial after-sales refunds need JD's refund API, which this adapter does not call.
const StateCanceled = "TRADE_CANCELED"

// Order is one order of a search result. orderId, venderId, orderTotalPrice, orderPayment (yuan
// strings), orderState, paymentConfirmTime, modified and pin (encrypted) are documented fields of
// OrderSearchInfo; open_id_buyer and xid_buyer are the newer buyer ids, unconfirmed by name.
type Order struct {
	OrderID            json.Number `json:"orderId"`
	VenderID           json.Number `json:"venderId"`
	OrderTotalPrice    string      `json:"orderTotalPrice"`
	OrderPayment       string      `json:"orderPayment"`
	OrderState         string      `json:"orderState"`
	PaymentConfirmTime string      `json:"paymentConfirmTime"`
	Modified           string      `json:"modified"`
	Pin                string      `json:"pin"`
	OpenID             string      `json:"open_id_buyer"`
	XID                string      `json:"xid_buyer"`
}

// SearchResult is one page of orders and the total the window holds.
type SearchResult struct {
	Total  int
	Orders []Order
}

// APIError is JD's error_response or an unsuccessful apiResult.
type APIError struct {
	Code json.Number `json:"code"`
	Desc string      `json:"en_desc"`
	ZH   string      `json:"zh_desc"`
}

func (e *APIError) Error() string { return fmt.Sprintf("JD error %s %s %s", e.Code, e.Desc, e.ZH) }

type searchResponse struct {
	Error    *APIError `json:"error_response"`
	Response *struct {
		Result *struct {
			Total     json.Number `json:"orderTotal"`
			Orders    []Order     `json:"orderInfoList"`
			APIResult struct {
				Success bool        `json:"success"`
				Code    json.Number `json:"numberCode"`
				Message string      `json:"englishErrCode"`
			} `json:"apiResult"`
		} `json:"searchorderinfo_result"`
	} `json:"jingdong_pop_order_search_responce"` // sic: JD spells it "responce"
}

// ParseOrderSearch reads a jingdong.pop.order.search response.
func ParseOrderSearch(body []byte) (SearchResult, error) {
	var r searchResponse
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return SearchResult{}, platform.Malformed("jingdong_pop_order_search_responce", "%v", err)
	}
	if r.Error != nil {
		return SearchResult{}, r.Error
	}
	if r.Response == nil || r.Response.Result == nil {
		return SearchResult{}, platform.Malformed("jingdong_pop_order_search_responce.searchorderinfo_result", "missing")
	}
	res := r.Response.Result
	if !res.APIResult.Success {
		return SearchResult{}, &APIError{Code: res.APIResult.Code, Desc: res.APIResult.Message}
	}
	total, err := res.Total.Int64()
	if err != nil || total < 0 || total > 1<<31 {
		return SearchResult{}, platform.Malformed("searchorderinfo_result.orderTotal", "want a count")
	}
	return SearchResult{Total: int(total), Orders: res.Orders}, nil
}

// Normalizer turns the orders of one app into contract events.
type Normalizer struct {
	AppKey string // scope of jd_open_id and jd_xid
}

// Normalize turns a paid order into order.paid and a cancelled paid order also into a full
// order.refunded; unpaid orders yield nothing. Ids derive from the order id, so seeing the same
// order in an overlapping window again publishes the same ids.
func (n Normalizer) Normalize(o Order) ([]cloudevents.Event, error) {
	if o.PaymentConfirmTime == "" {
		return nil, nil
	}
	if o.OrderID == "" {
		return nil, platform.Malformed("orderId", "missing")
	}
	ids, err := n.identities(o)
	if err != nil {
		return nil, err
	}
	paidAt, err := parseTime("paymentConfirmTime", o.PaymentConfirmTime)
	if err != nil {
		return nil, err
	}
	fen, err := amount(o)
	if err != nil {
		return nil, err
	}
	id := o.OrderID.String()
	paid, err := events.New(events.OrderPaid, platform.EventID(Platform, id+"/paid", 0), platform.Source(Platform), paidAt,
		events.OrderPaidData{OrderID: id, Channel: events.ChannelJD, ShopID: shop(o), AmountFen: fen, PaidAt: paidAt, Identities: ids})
	if err != nil {
		return nil, err
	}
	out := []cloudevents.Event{paid}
	if o.OrderState == StateCanceled {
		refund, err := canceled(o, fen, ids)
		if err != nil {
			return nil, err
		}
		out = append(out, refund)
	}
	for _, ev := range out {
		if err := events.Validate(ev); err != nil {
			return nil, fmt.Errorf("JD order %s: %w", id, err)
		}
	}
	return out, nil
}

// canceled is the full refund of a paid order JD cancelled, dated by its last modification.
func canceled(o Order, fen int64, ids []events.Identity) (cloudevents.Event, error) {
	at, err := parseTime("modified", o.Modified)
	if err != nil {
		return cloudevents.Event{}, err
	}
	id := o.OrderID.String()
	return events.New(events.OrderRefunded, platform.EventID(Platform, id+"/canceled", 0), platform.Source(Platform), at,
		events.OrderRefundedData{OrderID: id, RefundID: "canceled", Channel: events.ChannelJD, ShopID: shop(o), AmountFen: fen, RefundedAt: at, Identities: ids})
}

func (n Normalizer) identities(o Order) ([]events.Identity, error) {
	var ids []events.Identity
	if o.Pin != "" {
		ids = append(ids, events.Identity{Type: identity.JDPin, Value: o.Pin})
	}
	if o.OpenID != "" {
		ids = append(ids, events.Identity{Type: identity.JDOpenID, Value: o.OpenID, Scope: n.AppKey})
	}
	if o.XID != "" {
		ids = append(ids, events.Identity{Type: identity.JDXID, Value: o.XID, Scope: n.AppKey})
	}
	if len(ids) == 0 {
		return nil, platform.Malformed("pin", "order %s names no buyer", o.OrderID)
	}
	return ids, nil
}

// amount is what the buyer paid: orderPayment, else orderTotalPrice.
func amount(o Order) (int64, error) {
	field, v := "orderPayment", o.OrderPayment
	if v == "" {
		field, v = "orderTotalPrice", o.OrderTotalPrice
	}
	fen, err := yuan.ToFen(v)
	if err != nil {
		return 0, platform.Malformed(field, "%v", err)
	}
	return fen, nil
}

func shop(o Order) string {
	if o.VenderID == "" {
		return "jd"
	}
	return o.VenderID.String()
}

func parseTime(field, s string) (time.Time, error) {
	t, err := time.ParseInLocation(DateLayout, s, Beijing)
	if err != nil {
		return time.Time{}, platform.Malformed(field, "want %s (GMT+8)", DateLayout)
	}
	return t, nil
}
