package profile

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omnimember/omnimember/shared/amount"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
)

// OrderView is one order as the profile shows it.
type OrderView struct {
	OrderID     string    `json:"orderId"`
	Channel     string    `json:"channel"`
	ShopID      string    `json:"shopId,omitempty"`
	PaidAt      time.Time `json:"paidAt"`
	PaidFen     int64     `json:"paidFen"`
	RefundedFen int64     `json:"refundedFen"`
	NetFen      int64     `json:"netFen"`
	Points      int64     `json:"points"`
}

// ChannelOrders summarises one channel's orders.
type ChannelOrders struct {
	Count           int64      `json:"count"`
	NetAmountFen    int64      `json:"netAmountFen"`
	AverageOrderFen int64      `json:"averageOrderFen"`
	FirstOrderAt    *time.Time `json:"firstOrderAt,omitempty"`
	LastOrderAt     *time.Time `json:"lastOrderAt,omitempty"`
}

// OrdersView summarises all channels and each one, with the repurchase cycle: the median number
// of days between consecutive orders (absent below two orders).
type OrdersView struct {
	ChannelOrders
	RepurchaseCycleDays *float64                 `json:"repurchaseCycleDays,omitempty"`
	ByChannel           map[string]ChannelOrders `json:"byChannel"`
}

// memberOrders reads every paid order of a member's OneIDs, newest first.
func (a *API) memberOrders(ctx context.Context, oneIDs []string) ([]OrderView, error) {
	var out []OrderView
	for _, id := range oneIDs {
		docs, err := a.Store.Query(ctx, store.Query{Collection: member.Orders, Filters: []store.Filter{{Field: "oneId", Op: store.OpEq, Value: id}}})
		if err != nil {
			return nil, fmt.Errorf("orders of %s: %w", id, err)
		}
		for _, d := range docs {
			var o member.Order
			if err := d.DataTo(&o); err != nil {
				return nil, err
			}
			if !o.Paid {
				continue // a refund still waiting for its order
			}
			out = append(out, OrderView{OrderID: o.OrderID, Channel: o.Channel, ShopID: o.ShopID, PaidAt: o.PaidAt,
				PaidFen: o.PaidFen, RefundedFen: o.RefundedFen(), NetFen: o.NetFen(), Points: o.AwardedPoints})
		}
	}
	slices.SortFunc(out, newestFirst)
	return out, nil
}

func newestFirst(a, b OrderView) int {
	if c := b.PaidAt.Compare(a.PaidAt); c != 0 {
		return c
	}
	return strings.Compare(a.Channel+":"+a.OrderID, b.Channel+":"+b.OrderID)
}

// summarise totals a member's orders with checked sums: a total past events.MaxTotal is an error
// (an answer of 500), never a wrapped amount.
func summarise(orders []OrderView) (OrdersView, error) {
	v := OrdersView{ByChannel: map[string]ChannelOrders{}}
	add := func(c *ChannelOrders, o OrderView) error {
		net, err := amount.Add(c.NetAmountFen, o.NetFen)
		if err != nil {
			return fmt.Errorf("net amount of the orders: %w", err)
		}
		c.Count++
		c.NetAmountFen = net
		c.AverageOrderFen = c.NetAmountFen / c.Count
		if c.FirstOrderAt == nil || o.PaidAt.Before(*c.FirstOrderAt) {
			c.FirstOrderAt = &o.PaidAt
		}
		if c.LastOrderAt == nil || o.PaidAt.After(*c.LastOrderAt) {
			c.LastOrderAt = &o.PaidAt
		}
		return nil
	}
	for _, o := range orders {
		if err := add(&v.ChannelOrders, o); err != nil {
			return v, err
		}
		c := v.ByChannel[o.Channel]
		if err := add(&c, o); err != nil {
			return v, err
		}
		v.ByChannel[o.Channel] = c
	}
	if len(orders) >= 2 {
		gaps := make([]float64, 0, len(orders)-1)
		for i := 1; i < len(orders); i++ {
			gaps = append(gaps, orders[i-1].PaidAt.Sub(orders[i].PaidAt).Hours()/24)
		}
		slices.Sort(gaps)
		median := gaps[len(gaps)/2]
		if len(gaps)%2 == 0 {
			median = (gaps[len(gaps)/2-1] + gaps[len(gaps)/2]) / 2
		}
		v.RepurchaseCycleDays = &median
	}
	return v, nil
}

// OrdersPage is one page of a member's orders, newest first; Next continues after it.
type OrdersPage struct {
	Items []OrderView `json:"items"`
	Next  string      `json:"next,omitempty"`
}

// listOrders serves GET /v1/members/{oneId}/orders?limit=20&after=<next>.
func (a *API) listOrders(w http.ResponseWriter, r *http.Request) {
	limit := 20
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			runtime.WriteError(w, http.StatusBadRequest, "limit", "limit %q: want 1..200", v)
			return
		}
		limit = n
	}
	after, err := decodeCursor(r.URL.Query().Get("after"))
	if err != nil {
		runtime.WriteError(w, http.StatusBadRequest, "after", "%v", err)
		return
	}
	m, err := a.live(r.Context(), r.PathValue("oneId"))
	if err != nil {
		a.fail(w, err, "member "+r.PathValue("oneId")+" not found")
		return
	}
	orders, err := a.memberOrders(r.Context(), append([]string{m.OneID}, m.MergedFrom...))
	if err != nil {
		a.fail(w, err, "")
		return
	}
	page := OrdersPage{Items: []OrderView{}}
	for _, o := range orders {
		if after != nil && newestFirst(*after, o) >= 0 {
			continue
		}
		if len(page.Items) == limit {
			page.Next = encodeCursor(page.Items[limit-1])
			break
		}
		page.Items = append(page.Items, o)
	}
	runtime.WriteJSON(w, http.StatusOK, page)
}

func encodeCursor(o OrderView) string {
	return base64.RawURLEncoding.EncodeToString([]byte(o.PaidAt.Format(time.RFC3339Nano) + "|" + o.Channel + "|" + o.OrderID))
}

func decodeCursor(s string) (*OrderView, error) {
	if s == "" {
		return nil, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	parts := strings.SplitN(string(raw), "|", 3)
	if err != nil || len(parts) != 3 {
		return nil, fmt.Errorf("not a cursor this API gave out")
	}
	at, err := time.Parse(time.RFC3339Nano, parts[0])
	if err != nil {
		return nil, fmt.Errorf("not a cursor this API gave out")
	}
	return &OrderView{PaidAt: at, Channel: parts[1], OrderID: parts[2]}, nil
}
