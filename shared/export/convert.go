package export

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/admit"
	"github.com/omnimember/omnimember/shared/amount"
	"github.com/omnimember/omnimember/shared/identity"
)

// RowError says why a row was not imported: its line, the field and the reason.
type RowError struct {
	Line   int    `json:"line"`
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

func (e *RowError) Error() string { return fmt.Sprintf("line %d: %s: %s", e.Line, e.Field, e.Reason) }

// Converter turns rows of one format into events. Shop is the shop id for rows without one; Keys
// (the chain's identity keys) name member rows, which have no id of their own.
type Converter struct {
	Format   Format
	Shop     string
	Location *time.Location // of times written without a zone; the platforms write Beijing time
	// Admit is what every row's data must pass (shared/admit's content checks under the history
	// window: identities as match normalises them, one that can resolve a member for an order,
	// no time in the future or before 2000). nil: the default rules and clock.
	Admit *admit.Policy
	Keys  *identity.Keyer
}

// admitted runs the edge's content checks on data the converter built; a refusal is the row's.
func (c Converter) admitted(line int, eventType string, data any) error {
	p := admit.Policy{Window: admit.History(admit.DefaultMaxSkew)}
	if c.Admit != nil {
		p = *c.Admit
	}
	err := p.CheckData(eventType, data)
	if fe, ok := errors.AsType[*events.FieldError](err); ok {
		return &RowError{line, strings.TrimPrefix(fe.Field, "data."), fe.Reason}
	}
	return err
}

// ErrNoKeys says a member list was given without the identity keys that name its events.
var ErrNoKeys = errors.New("a member list needs the identity keys (" + identity.KeysEnv + ") to name its events")

// Events converts a row: an order gives order.paid, and order.refunded when it was refunded; a
// member row gives member.registered. Ids derive from the platform's own ids, so importing the same
// file again produces the same events (and the chain's receipts make them no-ops).
func (c Converter) Events(row Row) ([]cloudevents.Event, error) {
	shop := row.Values["shopId"]
	if shop == "" {
		shop = c.Shop
	}
	if shop == "" {
		return nil, &RowError{row.Line, "shopId", "empty, and no default shop was given"}
	}
	if len(shop) > maxID {
		return nil, &RowError{row.Line, "shopId", fmt.Sprintf("longer than %d bytes", maxID)}
	}
	ids, err := c.identities(row, shop)
	if err != nil {
		return nil, err
	}
	if c.Format.Kind == KindMembers {
		return c.member(row, shop, ids)
	}
	return c.order(row, shop, ids)
}

func (c Converter) order(row Row, shop string, ids []events.Identity) ([]cloudevents.Event, error) {
	orderID := row.Values["orderId"]
	if orderID == "" || len(orderID) > maxID {
		return nil, &RowError{row.Line, "orderId", fmt.Sprintf("want 1 to %d bytes", maxID)}
	}
	paidFen, err := c.fen(row, "amount")
	if err != nil {
		return nil, err
	}
	paidAt, err := c.time(row, "paidAt")
	if err != nil {
		return nil, err
	}
	source := c.source(shop)
	paidData := events.OrderPaidData{OrderID: orderID, Channel: c.Format.Channel, ShopID: shop, AmountFen: paidFen, PaidAt: paidAt, Identities: ids}
	if err := c.admitted(row.Line, events.OrderPaid, &paidData); err != nil {
		return nil, err
	}
	paid, err := events.New(events.OrderPaid, "backfill-"+orderID, source, paidAt, paidData)
	if err != nil {
		return nil, err
	}
	out := []cloudevents.Event{paid}
	if row.Values["refundAmount"] == "" {
		return out, nil
	}
	refundFen, err := c.fen(row, "refundAmount")
	if err != nil || refundFen == 0 {
		return out, err
	}
	if refundFen > paidFen {
		return nil, &RowError{row.Line, "refundAmount", fmt.Sprintf("%d fen refunded of %d paid", refundFen, paidFen)}
	}
	refundedAt := paidAt
	if row.Values["refundedAt"] != "" {
		if refundedAt, err = c.time(row, "refundedAt"); err != nil {
			return nil, err
		}
	}
	// The export gives the total refunded, not each refund: one refund under a fixed id.
	refundData := events.OrderRefundedData{OrderID: orderID, RefundID: "backfill-total", Channel: c.Format.Channel, ShopID: shop,
		AmountFen: refundFen, RefundedAt: refundedAt, Identities: ids}
	if err := c.admitted(row.Line, events.OrderRefunded, &refundData); err != nil {
		return nil, err
	}
	refund, err := events.New(events.OrderRefunded, "backfill-"+orderID+"-refund", source, refundedAt, refundData)
	return append(out, refund), err
}

// member names a member row's event by its first identity's keyed document key: the same on every
// import of the list, and nothing a guess at the phone can be checked against without the key.
func (c Converter) member(row Row, shop string, ids []events.Identity) ([]cloudevents.Event, error) {
	if c.Keys == nil {
		return nil, ErrNoKeys
	}
	at, err := c.time(row, "registeredAt")
	if err != nil {
		return nil, err
	}
	data := events.MemberRegisteredData{Channel: c.Format.Channel, ShopID: shop, RegisteredAt: at, Identities: ids}
	if err := c.admitted(row.Line, events.MemberRegistered, &data); err != nil {
		return nil, err
	}
	ev, err := events.New(events.MemberRegistered, "backfill-"+c.Keys.Key(ids[0]), c.source(shop), at, data)
	if err != nil {
		return nil, err
	}
	return []cloudevents.Event{ev}, nil
}

// maxID bounds shop and order ids (the contract allows 256; ids derived from them add a little).
const maxID = 128

// source is the events' source: history of the format's channel and the row's shop under the
// source convention the edge checks (admit.HistorySource: `backfill/<channel>/<shopId>`, the shop
// id, free text, path-escaped into the URI reference CloudEvents requires).
func (c Converter) source(shop string) string {
	return admit.HistorySource(c.Format.Channel, shop)
}

// identities reads the phone (plaintext, or masked as exports now often show it) and the platform
// ids. A masked platform id is not a key and is left out; a row left with none is refused.
func (c Converter) identities(row Row, shop string) ([]events.Identity, error) {
	var raw []events.Identity
	if p := row.Values["phone"]; p != "" {
		t := identity.Phone
		if strings.Contains(p, "*") {
			t = identity.PhoneMasked
		}
		raw = append(raw, events.Identity{Type: t, Value: p})
	}
	types := make([]string, 0, len(c.Format.Identities))
	for t := range c.Format.Identities {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		if v := row.Values[t]; v != "" && !strings.Contains(v, "*") {
			id := events.Identity{Type: t, Value: v}
			if identity.IsScoped(t) {
				id.Scope = shop
			}
			raw = append(raw, id)
		}
	}
	var out []events.Identity
	for _, id := range raw {
		// One unreadable identity (a landline in the phone column) does not sink the row.
		if norm, err := identity.NormalizeAll([]events.Identity{id}); err == nil {
			out = append(out, norm...)
		}
	}
	if len(out) == 0 {
		return nil, &RowError{row.Line, "identities", "no usable phone or platform id"}
	}
	return out, nil
}

var yuan = regexp.MustCompile(`^([0-9]+)(?:\.([0-9]{1,2}))?$`)

// fen reads an amount in yuan exactly ("1,234.5" is 123450 fen); floats would lose fen.
func (c Converter) fen(row Row, field string) (int64, error) {
	s := strings.NewReplacer("¥", "", "￥", "", ",", "", "元", "", " ", "").Replace(row.Values[field])
	m := yuan.FindStringSubmatch(s)
	if m == nil {
		return 0, &RowError{row.Line, field, fmt.Sprintf("%q is not an amount in yuan", row.Values[field])}
	}
	whole, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || whole > events.MaxFen/100 {
		return 0, &RowError{row.Line, field, fmt.Sprintf("%q is out of range (at most %d yuan)", row.Values[field], events.MaxFen/100)}
	}
	frac, _ := strconv.ParseInt((m[2] + "00")[:2], 10, 64)
	fen := whole*100 + frac
	if err := amount.Fen(field, fen); err != nil {
		return 0, &RowError{row.Line, field, err.Error()}
	}
	return fen, nil
}

var timeLayouts = []string{"2006-01-02 15:04:05", "2006/01/02 15:04:05", "2006-01-02 15:04", "2006/1/2 15:04:05", "2006/1/2 15:04", "2006-01-02T15:04:05"}

// time reads the platforms' time formats: local Beijing time in several layouts, RFC 3339, unix s or ms.
func (c Converter) time(row Row, field string) (time.Time, error) {
	s := row.Values[field]
	if s == "" {
		return time.Time{}, &RowError{row.Line, field, "empty (an order without a payment time was never paid)"}
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && (len(s) == 10 || len(s) == 13) {
		if len(s) == 13 {
			return time.UnixMilli(n).UTC(), nil
		}
		return time.Unix(n, 0).UTC(), nil
	}
	loc := c.Location
	if loc == nil {
		loc = shanghai
	}
	for _, layout := range timeLayouts {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, &RowError{row.Line, field, fmt.Sprintf("%q is not a time this importer reads", s)}
}

// shanghai is Beijing time; China has kept UTC+8 without daylight saving since 1991, so a fixed
// zone needs no zoneinfo on the machine.
var shanghai = time.FixedZone("CST", 8*3600)
