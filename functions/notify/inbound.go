package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/credential"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
)

// Inbound configures the SMS providers' callbacks: member replies (上行短信) and delivery receipts
// (状态报告). Neither Aliyun's HTTP push nor Tencent's callbacks sign their requests the way their
// APIs sign ours, so each callback URL carries a shared secret: `?token=...` in the URL configured
// in the provider's console (or an X-Omnimember-Token header from a relay).
type Inbound struct {
	Token string
}

// InboundMaxBytes bounds a callback body (a provider batches up to a few hundred entries).
const InboundMaxBytes = 1 << 20

// SMSProviders are the providers whose callbacks notify understands.
var SMSProviders = []string{"aliyun", "tencent"}

// routes adds the consent API and the SMS callbacks.
func (h *Handler) routes(mux runtime.Mux, _ *runtime.Publisher) {
	mux.Handle("PUT /v1/members/{oneId}/consent", runtime.RequireBearer(h.APIToken, http.HandlerFunc(h.putConsent)))
	mux.HandleFunc("POST /webhooks/sms/{provider}/replies", h.inbound(h.replies))
	mux.HandleFunc("POST /webhooks/sms/{provider}/receipts", h.inbound(h.receipts))
}

// inbound checks the provider, the token and the size, then hands the body on.
func (h *Handler) inbound(handle func(ctx context.Context, provider string, body []byte) (int, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		provider := r.PathValue("provider")
		if !slices.Contains(SMSProviders, provider) {
			runtime.WriteError(w, http.StatusNotFound, "provider", "unknown SMS provider %q", provider)
			return
		}
		token := r.URL.Query().Get("token")
		if token == "" {
			token = r.Header.Get("X-Omnimember-Token")
		}
		if h.Inbound.Token == "" || !credential.Same(token, h.Inbound.Token) {
			runtime.WriteError(w, http.StatusUnauthorized, "token", "a valid callback token is required")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, InboundMaxBytes))
		if err != nil {
			runtime.WriteError(w, http.StatusRequestEntityTooLarge, "body", "larger than %d bytes", InboundMaxBytes)
			return
		}
		n, err := handle(r.Context(), provider, body)
		var bad *BadInput
		switch {
		case errors.As(err, &bad):
			runtime.WriteError(w, http.StatusBadRequest, bad.Field, "%s", bad.Msg)
		case err != nil:
			runtime.WriteError(w, http.StatusServiceUnavailable, "", "not stored, retry: %v", err)
		default:
			h.logger().Info("sms callback", "provider", provider, "path", r.URL.Path, "applied", n)
			writeAck(w, provider)
		}
	}
}

// writeAck answers as each provider expects, or it retries the push.
func writeAck(w http.ResponseWriter, provider string) {
	if provider == "tencent" {
		runtime.WriteJSON(w, http.StatusOK, map[string]any{"result": 0, "errmsg": "OK"})
		return
	}
	runtime.WriteJSON(w, http.StatusOK, map[string]any{"code": 0, "msg": "成功"})
}

// replies opts out, at once, every member who answered R, T or TD; other replies are ignored.
func (h *Handler) replies(ctx context.Context, provider string, body []byte) (int, error) {
	rs, err := ParseReplies(provider, body)
	if err != nil {
		return 0, err
	}
	applied := 0
	for _, r := range rs {
		if !IsOptOut(r.Content) {
			continue
		}
		oneID, err := h.memberByPhone(ctx, r.Phone)
		if errors.Is(err, store.ErrNotFound) {
			h.logger().Info("opt-out reply from a number no member has", "provider", provider, "phone", identity.MaskPhone(r.Phone))
			continue
		}
		if err != nil {
			return applied, err
		}
		yes := true
		if _, err := h.setContact(ctx, oneID, ConsentRequest{Channel: "sms", OptedOut: &yes}, provider, "sms-reply"); err != nil {
			return applied, err
		}
		applied++
	}
	return applied, nil
}

// memberByPhone finds the member a phone belongs to through match's identity document (keyed
// with the identity keys, the current one first), following merges to the survivor.
func (h *Handler) memberByPhone(ctx context.Context, phone string) (string, error) {
	if h.Keyer == nil {
		return "", errors.New("SMS replies are matched to members with the identity keys: set " + identity.KeysEnv)
	}
	var link member.IdentityLink
	err := store.ErrNotFound
	for _, key := range h.Keyer.Keys(events.Identity{Type: identity.Phone, Value: phone}) {
		if err = h.Store.Get(ctx, member.Identities, key, &link); !errors.Is(err, store.ErrNotFound) {
			break
		}
	}
	if err != nil {
		return "", err
	}
	m, err := h.liveMember(ctx, link.OneID)
	if err != nil {
		return "", err
	}
	return m.OneID, nil
}

// receipts records what the carrier said about each notification; repeating a receipt changes nothing.
func (h *Handler) receipts(ctx context.Context, provider string, body []byte) (int, error) {
	rs, err := ParseReceipts(provider, body)
	if err != nil {
		return 0, err
	}
	applied := 0
	for _, r := range rs {
		if r.NotificationID == "" && r.ProviderID != "" {
			var m smsMessage
			if err := h.Store.Get(ctx, SMSMessages, smsMessageKey(provider, r.ProviderID), &m); err != nil && !errors.Is(err, store.ErrNotFound) {
				return applied, err
			}
			r.NotificationID = m.NotificationID
		}
		changed, err := h.applyReceipt(ctx, r)
		if err != nil {
			return applied, err
		}
		if changed {
			applied++
		}
	}
	return applied, nil
}

func (h *Handler) applyReceipt(ctx context.Context, r Receipt) (bool, error) {
	if r.NotificationID == "" || store.CheckNames(member.Notifications, r.NotificationID) != nil {
		return false, nil // not one of ours
	}
	changed := false
	err := h.Store.RunTransaction(ctx, func(_ context.Context, tx store.Tx) error {
		changed = false
		var rec record
		if err := tx.Get(member.Notifications, r.NotificationID, &rec); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			return err
		}
		status := "failed"
		if r.Delivered {
			status = "delivered"
		}
		if rec.Carrier == status && rec.CarrierCode == r.Code {
			return nil
		}
		at := r.At
		rec.Carrier, rec.CarrierCode, rec.CarrierAt, changed = status, r.Code, &at, true
		return tx.Set(member.Notifications, r.NotificationID, rec)
	})
	if err != nil {
		return false, fmt.Errorf("record receipt of %s: %w", r.NotificationID, err)
	}
	return changed, nil
}

// Reply is one inbound SMS from a member. Phone is plaintext and normalised: never log it.
type Reply struct {
	Phone   string
	Content string
}

// Receipt is the carrier's word on one message, naming it by our notification id (Aliyun's
// out_id) or by the provider's message id (Tencent's sid, the SerialNo SendSms returned).
type Receipt struct {
	NotificationID string
	ProviderID     string
	Delivered      bool
	Code           string
	At             time.Time
}

// BadInput is a callback body that cannot be read, naming the field.
type BadInput struct{ Field, Msg string }

func (b *BadInput) Error() string { return b.Field + ": " + b.Msg }

func bad(field, format string, args ...any) error {
	return &BadInput{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// IsOptOut reports whether a reply is an unsubscribe: R, T or TD, trimmed, in any case, in
// full-width letters too (Ｒ, ｔｄ), as phones with Chinese input methods send them.
func IsOptOut(content string) bool {
	var b strings.Builder
	for _, r := range strings.TrimFunc(content, isSpaceOrFullWidthSpace) {
		if r >= 0xFF01 && r <= 0xFF5E { // full-width ASCII block
			r -= 0xFEE0
		}
		b.WriteRune(r)
	}
	switch strings.ToUpper(b.String()) {
	case "R", "T", "TD":
		return true
	}
	return false
}

func isSpaceOrFullWidthSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\u3000'
}

// ParseReplies reads a provider's reply callback. Aliyun pushes a JSON array of SmsUp messages
// ({phone_number, content, send_time, sign_name, dest_code, sequence_id}); Tencent posts one reply
// object ({mobile, nationcode, text, sign, time, extend}); an array of them is accepted too.
func ParseReplies(provider string, body []byte) ([]Reply, error) {
	type raw struct {
		PhoneNumber string `json:"phone_number"` // aliyun
		Content     string `json:"content"`
		Mobile      string `json:"mobile"` // tencent
		Text        string `json:"text"`
	}
	items, err := decodeList[raw](body)
	if err != nil {
		return nil, err
	}
	out := make([]Reply, 0, len(items))
	for i, it := range items {
		phone, content, field := it.PhoneNumber, it.Content, "phone_number"
		if provider == "tencent" {
			phone, content, field = it.Mobile, it.Text, "mobile"
		}
		p, err := identity.NormalizePhone(phone)
		if err != nil {
			return nil, bad(fmt.Sprintf("[%d].%s", i, field), "want a mainland mobile number")
		}
		out = append(out, Reply{Phone: p, Content: content})
	}
	return out, nil
}

// ParseReceipts reads a provider's delivery receipt callback: Aliyun's SmsReport array
// ({out_id, success, err_code, report_time, ...}) or Tencent's status array ({report_status
// SUCCESS|FAIL, errmsg, user_receive_time, sid, ...}, per Tencent Cloud SMS "SMS Sending Status
// Notification", document 382/43547).
func ParseReceipts(provider string, body []byte) ([]Receipt, error) {
	items, err := decodeList[map[string]any](body)
	if err != nil {
		return nil, err
	}
	out := make([]Receipt, 0, len(items))
	for i, it := range items {
		var r Receipt
		var err error
		if provider == "tencent" {
			r, err = tencentReceipt(i, it)
		} else {
			r, err = aliyunReceipt(i, it)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func aliyunReceipt(i int, it map[string]any) (Receipt, error) {
	id, _ := it["out_id"].(string)
	bizID, _ := it["biz_id"].(string)
	ok, isBool := it["success"].(bool)
	if !isBool {
		return Receipt{}, bad(fmt.Sprintf("[%d].success", i), "want true or false")
	}
	code, _ := it["err_code"].(string)
	return Receipt{NotificationID: id, ProviderID: bizID, Delivered: ok, Code: code, At: providerTime(it["report_time"])}, nil
}

func tencentReceipt(i int, it map[string]any) (Receipt, error) {
	sid, _ := it["sid"].(string)
	status, _ := it["report_status"].(string)
	if status != "SUCCESS" && status != "FAIL" {
		return Receipt{}, bad(fmt.Sprintf("[%d].report_status", i), "want SUCCESS or FAIL")
	}
	code, _ := it["errmsg"].(string)
	return Receipt{ProviderID: sid, Delivered: status == "SUCCESS", Code: code, At: providerTime(it["user_receive_time"])}, nil
}

// shanghaiTZ is the zone both providers write their "2006-01-02 15:04:05" times in.
var shanghaiTZ = time.FixedZone("CST", 8*3600)

func providerTime(v any) time.Time {
	switch t := v.(type) {
	case string:
		if at, err := time.ParseInLocation(time.DateTime, t, shanghaiTZ); err == nil {
			return at.UTC()
		}
	case float64:
		return time.Unix(int64(t), 0).UTC()
	}
	return time.Time{}
}

// decodeList reads a JSON array of T, or a single T object.
func decodeList[T any](body []byte) ([]T, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, bad("body", "empty")
	}
	if trimmed[0] == '{' {
		var one T
		if err := json.Unmarshal(trimmed, &one); err != nil {
			return nil, bad("body", "want a JSON object or array: %v", err)
		}
		return []T{one}, nil
	}
	var list []T
	if err := json.Unmarshal(trimmed, &list); err != nil {
		return nil, bad("body", "want a JSON array: %v", err)
	}
	if len(list) > 10000 {
		return nil, bad("body", "%s entries: at most 10000", strconv.Itoa(len(list)))
	}
	return list, nil
}
