package export_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/admit"
	"github.com/omnimember/omnimember/shared/export"
	"github.com/omnimember/omnimember/shared/identity"
)

func format(t testing.TB, name string) export.Format {
	t.Helper()
	formats, err := export.Builtin()
	require.NoError(t, err)
	f, ok := formats[name]
	require.True(t, ok, name)
	return f
}

// readAll converts every row, returning the events and the refused rows; every event must pass
// every check of the edge (shared/admit) under the history window, its source convention included.
func readAll(t testing.TB, r io.Reader, c export.Converter) ([]cloudevents.Event, []*export.RowError) {
	t.Helper()
	rd, err := export.NewReader(r, c.Format)
	require.NoError(t, err)
	var out []cloudevents.Event
	var refused []*export.RowError
	for {
		row, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return out, refused
		}
		require.NoError(t, err)
		evs, err := c.Events(row)
		var re *export.RowError
		if errors.As(err, &re) {
			refused = append(refused, re)
			continue
		}
		require.NoError(t, err)
		for _, ev := range evs {
			// The converter skips the schema for speed; what it builds must pass the whole edge.
			_, err := admit.Policy{Window: admit.History(admit.DefaultMaxSkew)}.Check(ev)
			require.NoError(t, err, "line %d", row.Line)
		}
		out = append(out, evs...)
	}
}

func TestTmallOrderExport(t *testing.T) {
	raw, err := os.ReadFile("testdata/tmall-orders.csv")
	require.NoError(t, err)
	gbk, err := simplifiedchinese.GB18030.NewEncoder().Bytes(bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf")))
	require.NoError(t, err)
	for name, file := range map[string][]byte{"utf-8 with BOM": raw, "GB18030 as Excel saves it": gbk} {
		t.Run(name, func(t *testing.T) {
			evs, refused := readAll(t, bytes.NewReader(file), export.Converter{Format: format(t, "tmall-orders")})
			require.Len(t, refused, 2, "the masked-phone order and the unpaid one")
			assert.Equal(t, 3, refused[0].Line, "a masked phone alone resolves nobody: match would drop the order")
			assert.Equal(t, "identities", refused[0].Field)
			assert.Equal(t, &export.RowError{Line: 4, Field: "paidAt", Reason: "empty (an order without a payment time was never paid)"}, refused[1])

			var types, ids []string
			for _, ev := range evs {
				types, ids = append(types, ev.Type()), append(ids, ev.ID())
			}
			assert.Equal(t, []string{events.OrderPaid, events.OrderPaid, events.OrderRefunded}, types)
			assert.Equal(t, []string{"backfill-3412987766554433221", "backfill-3412987766554433224", "backfill-3412987766554433224-refund"}, ids)

			first, err := events.Decode[events.OrderPaidData](evs[0])
			require.NoError(t, err)
			assert.Equal(t, int64(129900), first.AmountFen)
			assert.Equal(t, "tm-shop-1", first.ShopID)
			assert.Equal(t, time.Date(2026, 3, 1, 2, 0, 12, 0, time.UTC), first.PaidAt, "Beijing time")
			assert.Equal(t, []events.Identity{{Type: "phone", Value: "13812345678"},
				{Type: "phone_sha256", Value: identity.PhoneSHA256("13812345678")}, {Type: "phone_md5", Value: identity.PhoneMD5("13812345678")},
				{Type: "tmall_ouid", Value: "AAH9wfOUID1", Scope: "tm-shop-1"}}, first.Identities)

			refund, err := events.Decode[events.OrderRefundedData](evs[2])
			require.NoError(t, err)
			assert.Equal(t, int64(3000), refund.AmountFen)
			assert.Equal(t, "13700002222", refund.Identities[0].Value, "+86 and dashes normalised")
		})
	}
}

func TestJDOrderExportAsJSONLines(t *testing.T) {
	f, err := os.Open("testdata/jd-orders.jsonl")
	require.NoError(t, err)
	defer f.Close()
	evs, refused := readAll(t, f, export.Converter{Format: format(t, "jd-orders")})
	require.Len(t, refused, 1, "a masked phone alone (the pin masked too) resolves nobody")
	assert.Equal(t, 4, refused[0].Line)
	assert.Equal(t, "identities", refused[0].Field)
	require.Len(t, evs, 3)
	big, err := events.Decode[events.OrderPaidData](evs[0])
	require.NoError(t, err)
	assert.Equal(t, "290012345678901234567", big.OrderID, "ids beyond 2^53 stay exact")
	assert.Contains(t, big.Identities, events.Identity{Type: "jd_pin", Value: "jd_7788aabb"})
	second, err := events.Decode[events.OrderPaidData](evs[1])
	require.NoError(t, err)
	assert.Equal(t, int64(5990), second.AmountFen)
	assert.Equal(t, time.Unix(1775045700, 0).UTC(), second.PaidAt)
	assert.NotContains(t, second.Identities, events.Identity{Type: "jd_pin", Value: "jd_****bb"}, "a masked pin is no key")
	refund, err := events.Decode[events.OrderRefundedData](evs[2])
	require.NoError(t, err)
	assert.Equal(t, time.Date(2026, 4, 3, 0, 0, 0, 0, time.UTC), refund.RefundedAt)
}

func TestPOSMemberList(t *testing.T) {
	f, err := os.Open("testdata/pos-members.csv")
	require.NoError(t, err)
	defer f.Close()
	keys, err := identity.ParseKeys(identity.NewKey("t1"))
	require.NoError(t, err)
	evs, refused := readAll(t, f, export.Converter{Format: format(t, "pos-members"), Keys: keys})
	require.Len(t, evs, 2)
	assert.Equal(t, []*export.RowError{{Line: 4, Field: "identities", Reason: "no usable phone or platform id"}}, refused)
	m, err := events.Decode[events.MemberRegisteredData](evs[1])
	require.NoError(t, err)
	assert.Equal(t, events.MemberRegisteredData{Channel: "pos", ShopID: "SH02", RegisteredAt: time.Date(2025, 12, 2, 2, 0, 0, 0, time.UTC),
		Identities: []events.Identity{{Type: "pos_card", Value: "card-0002"}}}, m)
	// The member's event id is keyed: no hash of the phone anyone could check a guess against.
	phone := events.Identity{Type: "phone", Value: "13512345678"}
	assert.Equal(t, "backfill-"+keys.Key(phone), evs[0].ID(), "got the id of a member row, want its keyed phone key")
	for _, leak := range []string{"13512345678", identity.PhoneSHA256("13512345678"), identity.PhoneMD5("13512345678")} {
		assert.NotContains(t, evs[0].ID(), leak[:11])
	}

	_, err = export.Converter{Format: format(t, "pos-members")}.Events(export.Row{Line: 2, Values: map[string]string{"pos_card": "c", "shopId": "SH01", "registeredAt": "2025-12-01 10:00:00"}})
	require.ErrorIs(t, err, export.ErrNoKeys, "a member list without the keys is a configuration error, not a refused row")
}

func TestRowsRefusedWithTheFieldAndReason(t *testing.T) {
	c := export.Converter{Format: format(t, "douyin-orders")}
	tests := []struct {
		name   string
		values map[string]string
		want   export.RowError
	}{
		{"no shop", map[string]string{"orderId": "1", "amount": "1", "paidAt": "2026-01-01 00:00:00", "phone": "13812345678"}, export.RowError{Line: 2, Field: "shopId", Reason: "empty, and no default shop was given"}},
		{"three decimals", map[string]string{"shopId": "s", "orderId": "1", "amount": "1.005", "paidAt": "2026-01-01 00:00:00", "phone": "13812345678"}, export.RowError{Line: 2, Field: "amount", Reason: `"1.005" is not an amount in yuan`}},
		{"negative", map[string]string{"shopId": "s", "orderId": "1", "amount": "-3", "paidAt": "2026-01-01 00:00:00", "phone": "13812345678"}, export.RowError{Line: 2, Field: "amount", Reason: `"-3" is not an amount in yuan`}},
		{"bad time", map[string]string{"shopId": "s", "orderId": "1", "amount": "3", "paidAt": "yesterday", "phone": "13812345678"}, export.RowError{Line: 2, Field: "paidAt", Reason: `"yesterday" is not a time this importer reads`}},
		{"refund over paid", map[string]string{"shopId": "s", "orderId": "1", "amount": "3", "refundAmount": "4", "paidAt": "2026-01-01 00:00:00", "phone": "13812345678"}, export.RowError{Line: 2, Field: "refundAmount", Reason: "400 fen refunded of 300 paid"}},
		{"landline only", map[string]string{"shopId": "s", "orderId": "1", "amount": "3", "paidAt": "2026-01-01 00:00:00", "phone": "021-12345678"}, export.RowError{Line: 2, Field: "identities", Reason: "no usable phone or platform id"}},
		{"over the largest order", map[string]string{"shopId": "s", "orderId": "1", "amount": "100000001", "paidAt": "2026-01-01 00:00:00", "phone": "13812345678"}, export.RowError{Line: 2, Field: "amount", Reason: `"100000001" is out of range (at most 100000000 yuan)`}},
		{"paid in the future", map[string]string{"shopId": "s", "orderId": "1", "amount": "3", "paidAt": "2099-01-01 00:00:00", "phone": "13812345678"}, export.RowError{Line: 2, Field: "paidAt", Reason: ""}},
		{"only a blocklisted phone", map[string]string{"shopId": "s", "orderId": "1", "amount": "3", "paidAt": "2026-01-01 00:00:00", "phone": "13800000000"}, export.RowError{Line: 2, Field: "identities", Reason: ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Events(export.Row{Line: 2, Values: tt.values})
			var got *export.RowError
			require.ErrorAs(t, err, &got)
			if tt.want.Reason == "" { // the edge's own words: the field is what matters
				got.Reason = ""
			}
			assert.Equal(t, tt.want, *got)
		})
	}
}

func TestFormatsAreValidated(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"unknown kind", "x:\n  kind: refunds\n  channel: jd\n", `kind "refunds"`},
		{"unknown channel", "x:\n  kind: orders\n  channel: ebay\n  columns: {orderId: [a], amount: [b], paidAt: [c], phone: [d]}\n", `channel "ebay"`},
		{"missing required", "x:\n  kind: orders\n  channel: jd\n  columns: {orderId: [a], phone: [d]}\n", "columns.amount: required"},
		{"unknown field", "x:\n  kind: orders\n  channel: jd\n  columns: {orderId: [a], amount: [b], paidAt: [c], colour: [d]}\n", "columns.colour"},
		{"typo in a key", "x:\n  kind: orders\n  chanel: jd\n", "chanel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := export.ParseFormats([]byte(tt.yaml))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestHeaderWithoutARequiredColumnIsRefused(t *testing.T) {
	_, err := export.NewReader(bytes.NewReader([]byte("订单编号,联系手机\n1,13812345678\n")), format(t, "tmall-orders"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no column for")
}

// TestSourcesFollowTheEdgesConvention: history's source is `backfill/<channel>/<shopId>`, the shop
// id path-escaped, and /v1/events admits it for the data it carries (admit.SourceAgrees).
func TestSourcesFollowTheEdgesConvention(t *testing.T) {
	for _, shop := range []string{"tm-shop-1", "旗舰店/上海 1", "a%2Fb"} {
		t.Run(shop, func(t *testing.T) {
			c := export.Converter{Format: format(t, "tmall-orders"), Shop: shop}
			evs, err := c.Events(export.Row{Line: 2, Values: map[string]string{"orderId": "o-1", "amount": "12.00",
				"paidAt": "2026-03-01 10:00:12", "phone": "13812345678", "refundAmount": "1.00"}})
			require.NoError(t, err)
			require.Len(t, evs, 2)
			for _, ev := range evs {
				assert.Equal(t, admit.HistorySource("tmall", shop), ev.Source())
				_, err := admit.Policy{Window: admit.History(admit.DefaultMaxSkew)}.Check(ev)
				require.NoError(t, err, ev.Type())
			}
		})
	}
}

// FuzzExport feeds arbitrary files through reader and converter: no panic, and every event that
// comes out passes the contract's schema.
func FuzzExport(f *testing.F) {
	for _, p := range []string{"testdata/tmall-orders.csv", "testdata/jd-orders.jsonl", "testdata/pos-members.csv"} {
		raw, err := os.ReadFile(p)
		require.NoError(f, err)
		f.Add(raw)
	}
	formats, err := export.Builtin()
	require.NoError(f, err)
	keys, err := identity.ParseKeys(identity.NewKey("fuzz"))
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, name := range export.Names(formats) {
			rd, err := export.NewReader(bytes.NewReader(raw), formats[name])
			if err != nil {
				continue
			}
			c := export.Converter{Format: formats[name], Shop: "fuzz-shop", Keys: keys}
			for range 1000 {
				row, err := rd.Next()
				if err != nil {
					break
				}
				evs, err := c.Events(row)
				if err != nil {
					continue
				}
				for _, ev := range evs {
					if err := events.Validate(ev); err != nil {
						t.Fatalf("%s: line %d gave an invalid %s: %v", name, row.Line, ev.Type(), err)
					}
					data, err := events.DecodeData(ev.Type(), ev.Data())
					if err != nil {
						t.Fatalf("%s: line %d gave an undecodable %s: %v", name, row.Line, ev.Type(), err)
					}
					if err := admit.SourceAgrees(ev.Source(), data); err != nil {
						t.Fatalf("%s: line %d gave a source the edge refuses: %v", name, row.Line, err)
					}
				}
			}
		}
	})
}
