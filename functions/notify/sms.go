package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/omnimember/omnimember/shared/contact"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/pii"
	"github.com/omnimember/omnimember/shared/store"
)

// SMSProvider sends one templated text through a provider's API and returns the provider's id of
// the message (Aliyun BizId, Tencent SerialNo), which its delivery receipts name.
type SMSProvider interface {
	Name() string
	Send(ctx context.Context, m SMSMessage) (string, error)
}

// SMSMessages maps a provider's message id to our notification id, for receipts that only name the
// provider's id (Tencent's carry the SerialNo as sid, not our SessionContext).
const SMSMessages = "sms_messages"

// smsMessage is an SMSMessages document.
type smsMessage struct {
	NotificationID string    `json:"notificationId"`
	Provider       string    `json:"provider"`
	At             time.Time `json:"at"`
}

// smsMessageKey is the document id of a provider's message id (hashed: provider ids may hold
// characters document ids cannot).
func smsMessageKey(provider, id string) string {
	sum := sha256.Sum256([]byte(provider + "\x00" + id))
	return hex.EncodeToString(sum[:20])
}

// SMSMessage is one templated text to one number. Phone is plaintext: never log it.
type SMSMessage struct {
	Phone        string     // 11 digits
	SignName     string     // the approved signature (签名), shown as 【SignName】
	TemplateCode string     // the approved template's code (Aliyun SMS_xxx, Tencent numeric id)
	Params       []SMSParam // in the template's order: Aliyun sends them by name, Tencent by position
	OutID        string     // the notification id, echoed in delivery receipts
}

// SMSParam is one template variable.
type SMSParam struct{ Name, Value string }

// SMSTemplate maps one of our templates to the provider's approved one and its variables in order.
type SMSTemplate struct {
	Code   string   `json:"code"`
	Params []string `json:"params"`
}

// OptOutParam is the template variable that carries the opt-out suffix of marketing texts; a
// template without it must carry the wording in its approved text.
const OptOutParam = "optOut"

// DefaultOptOutSuffix is the wording providers now require on marketing texts (older approved
// templates used "回T退订" or "回TD退订"; replies of T and TD are honoured as well).
const DefaultOptOutSuffix = "拒收请回复R"

// ParseSMSTemplates reads the template mapping (our name → {code, params}) and checks it.
func ParseSMSTemplates(raw []byte) (map[string]SMSTemplate, error) {
	var out map[string]SMSTemplate
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("sms templates: %w", err)
	}
	for name, t := range out {
		if strings.TrimSpace(t.Code) == "" {
			return nil, fmt.Errorf("sms template %q: empty code", name)
		}
		if slices.Contains(t.Params, "") {
			return nil, fmt.Errorf("sms template %q: empty parameter name", name)
		}
	}
	return out, nil
}

// SMS is the sms channel's sink: it finds the member's phone (sealed by match), maps the template
// and sends through the configured provider, with the notification id as the provider's out id.
type SMS struct {
	Provider     SMSProvider
	Store        Store
	Keys         *pii.Keyring
	SignName     string
	Templates    map[string]SMSTemplate
	OptOutSuffix string
}

// Deliver implements Sink.
func (s SMS) Deliver(ctx context.Context, n Notification) error {
	tpl, ok := s.Templates[n.Template]
	if !ok {
		return fmt.Errorf("%w: no %s template mapped for %q", ErrRejected, s.Provider.Name(), n.Template)
	}
	phone, err := s.phone(ctx, n.OneID)
	if err != nil {
		return err
	}
	m := SMSMessage{Phone: phone, SignName: s.SignName, TemplateCode: tpl.Code, OutID: n.ID}
	for _, name := range tpl.Params {
		v := n.Vars[name]
		if name == OptOutParam {
			v = ""
			if n.Category == contact.Marketing {
				v = s.OptOutSuffix
			}
		}
		m.Params = append(m.Params, SMSParam{Name: name, Value: v})
	}
	providerID, err := s.Provider.Send(ctx, m)
	if err != nil {
		return scrubPhone(fmt.Errorf("send sms %s to %s through %s: %w", n.ID, identity.MaskPhone(phone), s.Provider.Name(), err), phone)
	}
	if providerID != "" {
		// Sent is sent: a failure to remember the id costs only the receipt, never a second text.
		doc := smsMessage{NotificationID: n.ID, Provider: s.Provider.Name(), At: n.CreatedAt}
		if err := s.Store.Set(ctx, SMSMessages, smsMessageKey(s.Provider.Name(), providerID), doc); err != nil {
			slog.Warn("remember sms id for receipts", "notification", n.ID, "provider", s.Provider.Name(), "error", err)
		}
	}
	return nil
}

// phone opens the member's most recent plaintext phone, following merges to the survivor.
func (s SMS) phone(ctx context.Context, oneID string) (string, error) {
	h := Handler{Store: s.Store}
	m, err := h.liveMember(ctx, oneID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return "", fmt.Errorf("member %s: %w", oneID, ErrNoAddress)
		}
		return "", fmt.Errorf("read member %s: %w", oneID, err)
	}
	var latest *member.StoredIdentity
	for i, id := range m.Identities {
		if id.Type == identity.Phone && id.Sealed != "" && (latest == nil || id.FirstSeen.After(latest.FirstSeen)) {
			latest = &m.Identities[i]
		}
	}
	if latest == nil {
		return "", fmt.Errorf("member %s has no plaintext phone: %w", oneID, ErrNoAddress)
	}
	phone, err := s.Keys.Open(latest.Sealed, identity.Phone)
	if err != nil {
		return "", fmt.Errorf("%w: open phone %s of %s: %v", ErrRejected, latest.Masked, oneID, err)
	}
	return phone, nil
}

// scrubPhone masks the phone wherever a provider's message echoed it, keeping whether the error
// is a rejection: errors end up in logs and in notification.failed reasons.
func scrubPhone(err error, phone string) error {
	text := strings.ReplaceAll(err.Error(), phone, identity.MaskPhone(phone))
	if errors.Is(err, ErrRejected) {
		return fmt.Errorf("%w: %s", ErrRejected, text)
	}
	if errors.Is(err, ErrNoAddress) {
		return fmt.Errorf("%w: %s", ErrNoAddress, text)
	}
	return errors.New(text)
}
