package top

import (
	"errors"
	"testing"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/platform"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// consumeSample follows the response example of taobao.tmc.messages.consume (API document 消费多条
// 消息): ids and user ids as numbers, content a JSON string.
const consumeSample = `{"tmc_messages_consume_response":{"messages":{"tmc_message":[
 {"user_id":2200112233,"user_nick":"omni旗舰店","content":"{\"tid\":3012345678901234567,\"payment\":\"1299.00\",\"buyer_open_uid\":\"AAHk5d-buyer\",\"seller_nick\":\"omni旗舰店\",\"type\":\"tmall_i18n\"}","id":9223372036854775001,"pub_time":"2026-11-11 00:00:05","pub_app_key":"12345678","topic":"taobao_trade_TradeBuyerPay"},
 {"user_id":2200112233,"user_nick":"omni旗舰店","content":"{\"tid\":3012345678901234567,\"refund_id\":90001,\"refund_fee\":\"200.5\",\"buyer_open_uid\":\"AAHk5d-buyer\",\"modified\":\"2026-11-12 10:00:00\"}","id":9223372036854775002,"pub_time":"2026-11-12 10:00:01","topic":"taobao_refund_RefundSuccess"},
 {"user_id":2200112233,"content":"{\"tid\":1}","id":3,"pub_time":"2026-11-12 10:00:01","topic":"taobao_trade_TradeCreate"}
]}}}`

func TestParseConsumeAndNormalize(t *testing.T) {
	msgs, err := ParseConsume([]byte(consumeSample))
	require.NoError(t, err)
	require.Len(t, msgs, 3)
	assert.Equal(t, "9223372036854775001", msgs[0].ID.String(), "ids beyond 2^53 stay exact")
	n := Normalizer{AppKey: "12345678", Channel: events.ChannelTmall}

	evs, handled, err := n.Normalize(msgs[0])
	require.NoError(t, err)
	require.True(t, handled)
	require.Len(t, evs, 1)
	assert.Equal(t, events.OrderPaid, evs[0].Type())
	assert.Equal(t, platform.EventID("tmall", "9223372036854775001", 0), evs[0].ID())
	paid, err := events.Decode[events.OrderPaidData](evs[0])
	require.NoError(t, err)
	want := events.OrderPaidData{OrderID: "3012345678901234567", Channel: "tmall", ShopID: "2200112233", AmountFen: 129900,
		PaidAt:     time.Date(2026, 11, 10, 16, 0, 5, 0, time.UTC),
		Identities: []events.Identity{{Type: "taobao_open_uid", Value: "AAHk5d-buyer", Scope: "12345678"}}}
	assert.Equal(t, want.Identities, paid.Identities)
	assert.True(t, want.PaidAt.Equal(paid.PaidAt), "got %s, want %s", paid.PaidAt, want.PaidAt)
	paid.PaidAt = want.PaidAt
	assert.Equal(t, want, paid)

	evs, handled, err = n.Normalize(msgs[1])
	require.NoError(t, err)
	require.True(t, handled)
	refund, err := events.Decode[events.OrderRefundedData](evs[0])
	require.NoError(t, err)
	assert.Equal(t, events.OrderRefunded, evs[0].Type())
	assert.Equal(t, "90001", refund.RefundID)
	assert.Equal(t, int64(20050), refund.AmountFen)

	evs, handled, err = n.Normalize(msgs[2])
	require.NoError(t, err)
	assert.False(t, handled, "other topics are acknowledged, not turned into events")
	assert.Empty(t, evs)
}

func TestParseConsumeEmptyAndErrors(t *testing.T) {
	msgs, err := ParseConsume([]byte(`{"tmc_messages_consume_response":{}}`))
	require.NoError(t, err)
	assert.Empty(t, msgs)

	_, err = ParseConsume([]byte(`{"error_response":{"code":25,"msg":"Invalid signature","sub_code":"isv.invalid-signature"}}`))
	var apiErr *APIError
	require.True(t, errors.As(err, &apiErr))
	assert.Equal(t, "25", apiErr.Code.String())

	for _, bad := range []string{`{`, `{}`, `{"tmc_messages_consume_response":{"messages":{"tmc_message":[{"topic":"x"}]}}}`} {
		_, err := ParseConsume([]byte(bad))
		var fe *events.FieldError
		assert.True(t, errors.As(err, &fe), "%s: got %v", bad, err)
	}
	require.NoError(t, ParseConfirm([]byte(`{"tmc_messages_confirm_response":{"is_success":true}}`)))
	assert.Error(t, ParseConfirm([]byte(`{"tmc_messages_confirm_response":{"is_success":false}}`)))
}

func TestNormalizeNamesTheBadField(t *testing.T) {
	n := Normalizer{AppKey: "k", Channel: events.ChannelTmall}
	for _, c := range []struct {
		content, field string
	}{
		{`{"tid":1,"payment":"1.00"}`, "content.buyer_open_uid"},
		{`{"payment":"1.00","buyer_open_uid":"u"}`, "content.tid"},
		{`{"tid":1,"payment":"1.001","buyer_open_uid":"u"}`, "content.payment"},
		{`not json`, "content"},
	} {
		_, _, err := n.Normalize(Message{ID: "1", Topic: TopicTradePaid, Content: c.content, PubTime: "2026-11-11 00:00:00", UserID: "9"})
		var fe *events.FieldError
		require.True(t, errors.As(err, &fe), "%s: got %v", c.content, err)
		assert.Equal(t, c.field, fe.Field, "%s: got field, want", c.content)
	}
}

func FuzzTMC(f *testing.F) {
	f.Add([]byte(consumeSample))
	f.Add([]byte(`{"tmc_messages_consume_response":{}}`))
	f.Add([]byte(`{"error_response":{"code":7}}`))
	f.Add([]byte(`{"tmc_messages_consume_response":{"messages":{"tmc_message":[{"id":1,"topic":"taobao_refund_RefundSuccess","content":"{\"tid\":1,\"refund_id\":2,\"refund_fee\":\"0.01\",\"buyer_open_uid\":\"u\"}","pub_time":"2026-01-01 00:00:00","user_id":1}]}}}`))
	n := Normalizer{AppKey: "k", Channel: events.ChannelTaobao}
	f.Add([]byte(`{"tmc_messages_confirm_response":{"is_success":true}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		_ = ParseConfirm(body) // must not panic
		msgs, err := ParseConsume(body)
		if err != nil {
			return
		}
		for _, m := range msgs {
			evs, _, err := n.Normalize(m)
			if err != nil {
				continue
			}
			for _, ev := range evs {
				if err := events.Validate(ev); err != nil {
					t.Fatalf("normalised an invalid event: %v", err)
				}
			}
		}
	})
}

func TestNormalizeIdentities(t *testing.T) {
	n := Normalizer{AppKey: "app", Channel: events.ChannelTmall}
	for _, c := range []struct {
		name, content string
		want          []events.Identity
	}{
		{"open uid only", `{"tid":1,"payment":"1.00","buyer_open_uid":"u"}`, []events.Identity{{Type: "taobao_open_uid", Value: "u", Scope: "app"}}},
		{"ouid too (unconfirmed field), scoped to the shop", `{"tid":1,"payment":"1.00","buyer_open_uid":"u","ouid":"o"}`,
			[]events.Identity{{Type: "taobao_open_uid", Value: "u", Scope: "app"}, {Type: "tmall_ouid", Value: "o", Scope: "77"}}},
		{"ouid alone", `{"tid":1,"payment":"1.00","ouid":"o"}`, []events.Identity{{Type: "tmall_ouid", Value: "o", Scope: "77"}}},
	} {
		evs, _, err := n.Normalize(Message{ID: "1", Topic: TopicTradePaid, Content: c.content, PubTime: "2026-11-11 00:00:00", UserID: "77"})
		require.NoError(t, err, c.name)
		got, err := events.Decode[events.OrderPaidData](evs[0])
		require.NoError(t, err)
		assert.Equal(t, c.want, got.Identities, "%s: got, want", c.name)
	}
}
