package admit

import (
	"errors"
	"testing"

	"github.com/omnimember/omnimember/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSourceAgreesWithTheData(t *testing.T) {
	pin := []events.Identity{{Type: "jd_pin", Value: "p"}}
	paid := func(channel, shop string) *events.OrderPaidData {
		return &events.OrderPaidData{OrderID: "o", Channel: channel, ShopID: shop, AmountFen: 100, PaidAt: now, Identities: pin}
	}
	refund := func(channel, shop string) *events.OrderRefundedData {
		return &events.OrderRefundedData{OrderID: "o", RefundID: "r", Channel: channel, ShopID: shop, AmountFen: 100, RefundedAt: now, Identities: pin}
	}
	registered := func(channel, shop string) *events.MemberRegisteredData {
		return &events.MemberRegisteredData{Channel: channel, ShopID: shop, RegisteredAt: now, Identities: pin}
	}
	browse := func(channel string) *events.InteractionRecordedData {
		return &events.InteractionRecordedData{Channel: channel, Kind: "page", OccurredAt: now, Identities: pin}
	}
	tests := []struct {
		name      string
		source    string
		data      any
		wantField string // "" admitted
	}{
		{"an order of the source's shop", "jd/jd-shop-9", paid("jd", "jd-shop-9"), ""},
		{"another channel's order of another shop (the finding)", "jd/jd-shop-9", paid("tmall", "shop-1001"), "data.channel"},
		{"another shop of the same channel", "jd/jd-shop-9", paid("jd", "shop-1001"), "data.shopId"},
		{"a shop whose id the source's shop starts with", "jd/jd-shop-9x", paid("jd", "jd-shop-9"), "data.shopId"},
		{"a channel the source's first segment starts with", "jdx/jd-shop-9", paid("jd", "jd-shop-9"), "data.channel"},
		{"a source naming the channel only, for an order of a shop", "jd", paid("jd", "jd-shop-9"), "data.shopId"},
		{"a source with an empty shop segment", "jd/", paid("jd", "jd-shop-9"), "data.shopId"},
		{"more segments after the shop", "pos/store-12/till-3", paid("pos", "store-12"), ""},
		{"the shop in a later segment only", "pos/till-3/store-12", paid("pos", "store-12"), "data.shopId"},
		{"a shop id path-escaped", "pos/store%2F12%20east", paid("pos", "store/12 east"), ""},
		{"a shop id that is not a valid escape", "pos/%zz", paid("pos", "%zz"), "data.shopId"},
		{"the adapter's source from a sender", "omnimember/webhooks/tmall", paid("tmall", "shop-1001"), "data.channel"},
		{"a refund naming its shop", "douyin/shop-2002", refund("douyin", "shop-2002"), ""},
		{"a refund of another shop", "douyin/shop-2002", refund("douyin", "shop-2003"), "data.shopId"},
		{"a refund without a shop needs the channel only", "douyin/shop-2002", refund("douyin", ""), ""},
		{"a refund without a shop of another channel", "douyin/shop-2002", refund("jd", ""), "data.channel"},
		{"a registration of another shop", "tmall/shop-1001", registered("tmall", "shop-1002"), "data.shopId"},
		{"an interaction needs the channel only", "app/ios", browse("app"), ""},
		{"an interaction from a source that is just the channel", "wechat", browse("wechat"), ""},
		{"an interaction of another channel", "app/ios", browse("wechat"), "data.channel"},
		{"history of the shop", "backfill/jd/jd-shop-9", paid("jd", "jd-shop-9"), ""},
		{"history of another shop", "backfill/jd/jd-shop-9", paid("jd", "shop-1001"), "data.shopId"},
		{"history of another channel", "backfill/jd/jd-shop-9", paid("tmall", "jd-shop-9"), "data.channel"},
		{"the backfill's own source, escaped", HistorySource("tmall", "旗舰店/1"), paid("tmall", "旗舰店/1"), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := SourceAgrees(tc.source, tc.data)
			if tc.wantField == "" {
				require.NoError(t, err)
				return
			}
			var fe *events.FieldError
			require.True(t, errors.As(err, &fe), "got %v", err)
			assert.Equal(t, tc.wantField, fe.Field)
			assert.Contains(t, fe.Reason, tc.source, "the reason names the source")
			var ae *Error
			require.True(t, errors.As(err, &ae))
			assert.Equal(t, CheckSource, ae.Check)
			assert.False(t, Form(err), "a source that disagrees is content, not form")
		})
	}
}

func TestSourceAndHistorySource(t *testing.T) {
	assert.Equal(t, "jd/jd-shop-9", Source("jd", "jd-shop-9"))
	assert.Equal(t, "pos/store%2F12%20east", Source("pos", "store/12 east"))
	assert.Equal(t, "app", Source("app", ""))
	assert.Equal(t, "backfill/tmall/shop-1001", HistorySource("tmall", "shop-1001"))
	require.NoError(t, SourceAgrees(Source("pos", "store/12 east")+"/till-3", &events.OrderPaidData{Channel: "pos", ShopID: "store/12 east"}))
	require.Error(t, SourceAgrees("x", &events.IdentityResolvedData{}), "not channel data")
}

// TestCheckAppliesTheSourceConvention: Check refuses a sender's event whose data disagrees with its
// source before any content check, and skips the rule for a platform adapter's own source.
func TestCheckAppliesTheSourceConvention(t *testing.T) {
	ev, err := events.Example(events.OrderPaid) // tmall/shop-1001
	require.NoError(t, err)
	p := Policy{Window: History(DefaultMaxSkew)}
	_, err = p.Check(ev)
	require.NoError(t, err, "the example follows the convention")

	ev.SetSource("jd/jd-shop-9")
	_, err = p.Check(ev)
	var fe *events.FieldError
	require.True(t, errors.As(err, &fe), "got %v", err)
	assert.Equal(t, "data.channel", fe.Field)

	ev.SetSource(events.Source("webhooks/tmall"))
	_, err = p.Check(ev)
	require.Error(t, err, "a sender may not use the adapter's source to skip the rule")
	p.PlatformSource = true
	_, err = p.Check(ev)
	require.NoError(t, err, "an adapter's event keeps its own source")
}

// TestExamplesFollowTheSourceConvention: every channel event example in events/examples is one a
// sender could post.
func TestExamplesFollowTheSourceConvention(t *testing.T) {
	for _, typ := range events.FromChannels {
		ev, err := events.Example(typ)
		require.NoError(t, err)
		data, err := events.DecodeData(typ, ev.Data())
		require.NoError(t, err)
		assert.NoError(t, SourceAgrees(ev.Source(), data), typ)
	}
}
