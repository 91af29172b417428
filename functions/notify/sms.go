package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/omnimember/omnimember/shared/contact"
	"github.com/omnimember/omnimember/shared/identity"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/pii"
	"github.com/omnimember/omnimember/shared/store"
)

// SMSProvider sends one templated text through a provider's API.
type SMSProvider interface {
	Name() string
	Send(ctx context.Context, m SMSMessage) error
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
	if err := s.Provider.Send(ctx, m); err != nil {
		return fmt.Errorf("send sms %s to %s through %s: %w", n.ID, identity.MaskPhone(phone), s.Provider.Name(), err)
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
