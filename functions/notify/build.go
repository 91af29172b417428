package notify

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/store"
)

// message is what one event says to the member (a template and its variables) and to the
// platforms (the level and/or balance to sync).
type message struct {
	oneID, template string
	vars            map[string]string
	sync            map[string]string
}

// build makes the event's notifications: at most one to the member, and one sync per platform
// identity the member has on a channel with a sync sink.
func (h *Handler) build(ctx context.Context, ev cloudevents.Event) ([]Notification, error) {
	if ev.Type() == events.NotificationRequested {
		return h.requested(ev)
	}
	m, err := h.messageOf(ev)
	if err != nil {
		return nil, err
	}
	var out []Notification
	if m.template != "" {
		n, err := h.notification(ev, m.oneID, events.CategoryTransactional, h.Channel, "", m.template, h.Locale, m.vars)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	if len(m.sync) == 0 || len(h.SyncChannels) == 0 {
		return out, nil
	}
	syncs, err := h.syncs(ctx, ev, m)
	return append(out, syncs...), err
}

func (h *Handler) messageOf(ev cloudevents.Event) (message, error) {
	switch ev.Type() {
	case events.TierChanged:
		d, err := events.Decode[events.TierChangedData](ev)
		template := "tier_upgraded"
		if d.Direction == "downgrade" {
			template = "tier_changed"
		}
		return message{d.OneID, template, map[string]string{"tier": tierName(d.To, h.Locale), "from": tierName(d.From, h.Locale)},
			map[string]string{"level": d.To}}, err
	case events.PointsAwarded:
		d, err := events.Decode[events.PointsAwardedData](ev)
		m := message{oneID: d.OneID, sync: balance(d.Balance)}
		if d.Points > 0 {
			m.template, m.vars = "points_awarded", map[string]string{"points": itoa(d.Points), "balance": itoa(d.Balance), "orderId": d.OrderID}
		}
		return m, err
	case events.PointsReversed:
		d, err := events.Decode[events.PointsReversedData](ev)
		return message{oneID: d.OneID, sync: balance(d.Balance)}, err
	case events.PointsRedeemed:
		d, err := events.Decode[events.PointsRedeemedData](ev)
		return message{d.OneID, "points_redeemed", map[string]string{"points": itoa(d.Points), "balance": itoa(d.Balance), "channel": d.Channel},
			balance(d.Balance)}, err
	case events.PointsExpired:
		d, err := events.Decode[events.PointsExpiredData](ev)
		return message{d.OneID, "points_expired", map[string]string{"points": itoa(d.Points), "balance": itoa(d.Balance)}, balance(d.Balance)}, err
	case events.PointsExpiring:
		d, err := events.Decode[events.PointsExpiringData](ev)
		return message{d.OneID, "points_expiring", map[string]string{"points": itoa(d.Points), "date": d.ExpiresAt.Format("2006-01-02")}, nil}, err
	case events.RedemptionReversed:
		d, err := events.Decode[events.RedemptionReversedData](ev)
		return message{oneID: d.OneID, sync: balance(d.Balance)}, err
	}
	return message{}, fmt.Errorf("notify does not handle %s", ev.Type())
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func balance(b int64) map[string]string { return map[string]string{"balance": itoa(b)} }

func (h *Handler) requested(ev cloudevents.Event) ([]Notification, error) {
	d, err := events.Decode[events.NotificationRequestedData](ev)
	if err != nil {
		return nil, err
	}
	locale := h.Locale
	if d.Locale != "" {
		locale = d.Locale
	}
	n, err := h.notification(ev, d.OneID, d.Category, d.Channel, "", d.Template, locale, d.Vars)
	n.CampaignID = d.CampaignID
	return []Notification{n}, err
}

// notification renders one notification; its id is at most once per (source event, channel, recipient).
func (h *Handler) notification(ev cloudevents.Event, oneID, category, channel, recipient, template, locale string, vars map[string]string) (Notification, error) {
	n := Notification{OneID: oneID, Category: category, Channel: channel, Template: template, Locale: locale, Vars: vars,
		SourceID: ev.ID(), CreatedAt: h.Now()}
	n.ID = events.DerivedID(Name, ev.ID()+"\x00"+channel+"\x00"+recipient, 0)
	var err error
	n.Text, err = h.Templates.Render(template, locale, vars)
	return n, err
}

// syncs makes one sync per platform identity of the member whose type has a sync channel.
func (h *Handler) syncs(ctx context.Context, ev cloudevents.Event, m message) ([]Notification, error) {
	mem, err := h.liveMember(ctx, m.oneID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil // not a member the match function knows (yet): nothing to sync to
	}
	if err != nil {
		return nil, err
	}
	var out []Notification
	for _, id := range mem.Identities {
		channel, ok := h.SyncChannels[id.Type]
		if !ok || id.Value == "" {
			continue
		}
		vars := map[string]string{"identityType": id.Type, "identity": id.Value, "scope": id.Scope}
		for k, v := range m.sync {
			vars[k] = v
		}
		n, err := h.notification(ev, m.oneID, CategorySync, channel, recipientKey(id), "member_sync", h.Locale, vars)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// recipientKey names a sync's recipient in its notification id: the identity's keyed key (its first
// one, so a rekey between two deliveries of an event does not sync twice).
func recipientKey(id member.StoredIdentity) string {
	if len(id.FormerKeys) > 0 {
		return id.FormerKeys[0]
	}
	return id.Key
}

// liveMember reads a member, following merges to its survivor.
func (h *Handler) liveMember(ctx context.Context, oneID string) (member.Member, error) {
	return liveMember(ctx, h.Store, oneID)
}
