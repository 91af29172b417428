package notify

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/contact"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIsOptOut(t *testing.T) {
	tests := []struct {
		content string
		want    bool
	}{
		{"R", true}, {"r", true}, {" T ", true}, {"td", true}, {"TD\n", true}, {"Ｒ", true}, {"ｔｄ", true}, {"\u3000Ｔ\u3000", true},
		{"", false}, {"RT", false}, {"退订", false}, {"R。", false}, {"Thanks", false}, {"TDD", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, IsOptOut(tt.content), "%q", tt.content)
	}
}

type inboundEnv struct {
	h   *Handler
	s   store.Store
	p   *smsServer
	url string
}

func newInboundEnv(t *testing.T, provider string) *inboundEnv {
	c := newClock(at(25, 10, 0))
	p := &smsServer{t: t, now: c.now, nonces: map[string]bool{}}
	h, s := newSMSHandler(t, provider, p, "secret")
	h.Inbound = Inbound{Token: "callback-token-123"}
	mux := http.NewServeMux()
	h.routes(mux, nil)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &inboundEnv{h: h, s: s, p: p, url: srv.URL}
}

func (e *inboundEnv) post(t *testing.T, path, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(e.url+path, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestOptOutReplyStopsMarketingAtOnce(t *testing.T) {
	replies := map[string]string{
		"aliyun":  `[{"phone_number":"13812345678","send_time":"2026-11-25 10:00:00","content":"Ｒ ","sign_name":"山野咖啡","dest_code":"1","sequence_id":1}]`,
		"tencent": `{"extend":"","mobile":"13812345678","nationcode":"86","sign":"山野咖啡","text":"td","time":1795000000}`,
	}
	acks := map[string]map[string]any{"aliyun": {"code": 0.0, "msg": "成功"}, "tencent": {"result": 0.0, "errmsg": "OK"}}
	for provider, body := range replies {
		t.Run(provider, func(t *testing.T) {
			e := newInboundEnv(t, provider)
			// The member had opted in to marketing texts.
			grant(t, e.h, alice, "sms")
			for range 2 { // a provider's retry of the same push changes nothing more
				status, ack := e.post(t, "/webhooks/sms/"+provider+"/replies?token=callback-token-123", body)
				require.Equal(t, http.StatusOK, status)
				assert.Equal(t, acks[provider], ack)
			}
			var st contact.State
			require.NoError(t, e.s.Get(context.Background(), contact.Collection, alice, &st))
			assert.True(t, st.Channels["sms"].OptedOut)
			require.Len(t, st.History, 2, "the consent, then the opt-out audited once")
			assert.Equal(t, provider, st.History[1].By)

			typ, d := handleOne(t, e.h, requested(t, "m1", alice, events.CategoryMarketing, "sms"))
			assert.Equal(t, events.NotificationSuppressed, typ)
			assert.Equal(t, contact.ReasonOptedOut, d.Reason)
			typ, _ = handleOne(t, e.h, requested(t, "t1", alice, events.CategoryTransactional, "sms"))
			assert.Equal(t, events.NotificationSent, typ, "transactional texts still go")
			assert.Equal(t, 1, e.p.calls())
		})
	}
}

func TestInboundRejectsBadInput(t *testing.T) {
	tests := []struct {
		name, path, body string
		wantStatus       int
		wantField        string
	}{
		{"no token", "/webhooks/sms/aliyun/replies", `[]`, 401, "token"},
		{"wrong token", "/webhooks/sms/aliyun/replies?token=nope", `[]`, 401, "token"},
		{"unknown provider", "/webhooks/sms/huawei/replies?token=callback-token-123", `[]`, 404, "provider"},
		{"not json", "/webhooks/sms/aliyun/replies?token=callback-token-123", `[{`, 400, "body"},
		{"empty", "/webhooks/sms/tencent/replies?token=callback-token-123", ``, 400, "body"},
		{"bad phone", "/webhooks/sms/aliyun/replies?token=callback-token-123", `[{"phone_number":"12345","content":"R"}]`, 400, "[0].phone_number"},
		{"bad tencent phone", "/webhooks/sms/tencent/replies?token=callback-token-123", `{"mobile":"x","text":"R"}`, 400, "[0].mobile"},
		{"receipt without success", "/webhooks/sms/aliyun/receipts?token=callback-token-123", `[{"out_id":"x"}]`, 400, "[0].success"},
		{"receipt with odd status", "/webhooks/sms/tencent/receipts?token=callback-token-123", `[{"report_status":"MAYBE"}]`, 400, "[0].report_status"},
		{"too large", "/webhooks/sms/aliyun/replies?token=callback-token-123", `[` + strings.Repeat(`{"phone_number":"13812345678","content":"R"},`, 30000) + `{}]`, 413, "body"},
	}
	e := newInboundEnv(t, "aliyun")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := e.post(t, tt.path, tt.body)
			assert.Equal(t, tt.wantStatus, status)
			assert.Equal(t, tt.wantField, body["field"])
		})
	}
	var st contact.State
	assert.ErrorIs(t, e.s.Get(context.Background(), contact.Collection, alice, &st), store.ErrNotFound, "nothing applied")
}

func TestReceiptsUpdateTheNotificationOnce(t *testing.T) {
	for _, provider := range []string{"aliyun", "tencent"} {
		t.Run(provider, func(t *testing.T) {
			e := newInboundEnv(t, provider)
			grant(t, e.h, alice, "sms")
			typ, d := handleOne(t, e.h, requested(t, "m1", alice, events.CategoryMarketing, "sms"))
			require.Equal(t, events.NotificationSent, typ)
			body := map[string]string{
				"aliyun": `[{"phone_number":"13812345678","send_time":"2026-11-25 10:00:00","report_time":"2026-11-25 10:00:05","success":true,` +
					`"err_code":"DELIVERED","err_msg":"用户接收成功","sms_size":"1","biz_id":"b","out_id":"` + d.NotificationID + `"},` +
					`{"out_id":"not-ours","success":false,"err_code":"MK:0001"}]`,
				"tencent": `[{"user_receive_time":"2026-11-25 10:00:05","nationcode":"86","mobile":"13812345678","report_status":"SUCCESS",` +
					`"errmsg":"DELIVRD","description":"用户短信送达成功","sid":"sn-` + d.NotificationID + `"},{"report_status":"FAIL","errmsg":"MK:0001","sid":"unknown"}]`,
			}[provider]
			for range 2 {
				status, _ := e.post(t, "/webhooks/sms/"+provider+"/receipts?token=callback-token-123", body)
				require.Equal(t, http.StatusOK, status)
			}
			var rec record
			require.NoError(t, e.s.Get(context.Background(), member.Notifications, d.NotificationID, &rec))
			assert.Equal(t, "sent", rec.Status, "a receipt does not change the outcome already reported")
			assert.Equal(t, "delivered", rec.Carrier)
			require.NotNil(t, rec.CarrierAt)
			assert.Equal(t, at(25, 10, 0).Add(5e9).UTC(), rec.CarrierAt.UTC())
		})
	}
}

func FuzzParseReplies(f *testing.F) {
	f.Add("aliyun", []byte(`[{"phone_number":"13812345678","content":"R","send_time":"2026-11-25 10:00:00"}]`))
	f.Add("tencent", []byte(`{"mobile":"+86 138-1234-5678","nationcode":"86","text":"ｔｄ","time":1}`))
	f.Add("tencent", []byte(`[{"mobile":"13812345678","text":"T"}]`))
	f.Add("aliyun", []byte(`{}`))
	f.Fuzz(func(t *testing.T, provider string, body []byte) {
		rs, err := ParseReplies(provider, body)
		if err != nil {
			var b *BadInput
			if !asBadInput(err, &b) || b.Field == "" {
				t.Fatalf("error without a field: %v", err)
			}
			return
		}
		for _, r := range rs {
			if len(r.Phone) != 11 {
				t.Fatalf("accepted phone %q is not normalised", r.Phone)
			}
		}
	})
}

func FuzzParseReceipts(f *testing.F) {
	f.Add("aliyun", []byte(`[{"out_id":"n1","success":true,"err_code":"DELIVERED","report_time":"2026-11-25 10:00:05"}]`))
	f.Add("tencent", []byte(`[{"report_status":"FAIL","errmsg":"MK:0001","ext":"n1","user_receive_time":1795000000}]`))
	f.Add("tencent", []byte(`{"report_status":"SUCCESS"}`))
	f.Fuzz(func(t *testing.T, provider string, body []byte) {
		rs, err := ParseReceipts(provider, body)
		if err != nil {
			var b *BadInput
			if !asBadInput(err, &b) || b.Field == "" {
				t.Fatalf("error without a field: %v", err)
			}
			return
		}
		_ = rs
	})
}

func asBadInput(err error, target **BadInput) bool { return errors.As(err, target) }
