package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/omnimember/omnimember/shared/identity"
)

// WeComContact sends a member a text message from the brand's staff on WeCom (企业微信客户联系),
// through externalcontact/add_msg_template: a group-send task for one external contact, which
// the sending staff member confirms in WeCom (send_welcome_msg only works with the welcome code
// of a contact that has just been added, so it cannot carry later messages). The member's
// wecom_external_userid scoped by the corp id is the address.
type WeComContact struct {
	// API is the WeCom client and its token cache (corp id and the customer-contact secret),
	// shared with the level sync when both use the same corp and secret.
	API WeCom
	// Sender is the staff userid the task goes to; empty lets WeCom give it to every staff
	// member the contact has added.
	Sender  string
	Members Members
}

// Deliver implements Sink. WeCom has no idempotency key for group-send tasks: a crash between
// the call and its record creates the task a second time (at-least-once on this channel).
func (c WeComContact) Deliver(ctx context.Context, n Notification) error {
	to, err := address(ctx, c.Members, n.OneID, identity.WeComExternalUserID, c.API.CorpID)
	if err != nil {
		return err
	}
	// add_msg_template request fields: developer.work.weixin.qq.com/document/path/92135 (创建企业群发).
	body := map[string]any{"chat_type": "single", "external_userid": []string{to}, "text": map[string]string{"content": cutBytes(n.Text, wecomTextLimit)}}
	if c.Sender != "" {
		body["sender"] = c.Sender
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("wecom message %s: %w", n.ID, err)
	}
	r, err := c.API.call(ctx, "/cgi-bin/externalcontact/add_msg_template", raw)
	switch {
	case err != nil:
		return fmt.Errorf("wecom message %s: %w", n.ID, err)
	case r.ErrCode == 0 && slices.Contains(r.FailList, to):
		// fail_list: the contact is not (or no longer) a customer of the sender.
		return fmt.Errorf("%w: wecom add_msg_template %s: the external contact cannot be reached (fail_list)", ErrRejected, n.ID)
	case r.ErrCode == 0:
		return nil
	case wecomBusy(r.ErrCode):
		return fmt.Errorf("wecom add_msg_template %s: %d %s", n.ID, r.ErrCode, r.ErrMsg)
	}
	return fmt.Errorf("%w: wecom add_msg_template %s: %d %s", ErrRejected, n.ID, r.ErrCode, r.ErrMsg)
}

// wecomTextLimit is the most text.content may hold, in bytes (add_msg_template: "最长4000个字节").
const wecomTextLimit = 4000

// cutBytes shortens s to at most limit bytes, between characters, marking the cut with an ellipsis.
func cutBytes(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	end := limit - len("…")
	for end > 0 && !utf8.RuneStart(s[end]) {
		end--
	}
	return s[:end] + "…"
}
