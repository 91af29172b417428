package campaign

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/receipt"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
)

// Shards spreads a campaign's outcome counters over documents, so concurrent outcomes do not all
// contend on one (Firestore sustains about one write per second per document).
const Shards = 16

// shard is one counter document.
type shard struct {
	CampaignID string           `json:"campaignId"`
	Sent       int64            `json:"sent"`
	Suppressed map[string]int64 `json:"suppressed,omitempty"`
	Failed     int64            `json:"failed"`
}

// Progress is where a campaign stands.
type Progress struct {
	Targeted        int64            `json:"targeted"`
	Published       int64            `json:"published"`
	Sent            int64            `json:"sent"`
	Suppressed      int64            `json:"suppressed"`
	SuppressedBy    map[string]int64 `json:"suppressedBy"`
	Failed          int64            `json:"failed"`
	Pending         int64            `json:"pending"`
	Done            bool             `json:"done"`
	PercentFinished int              `json:"percentFinished"`
}

// campaignOf finds the campaign of an outcome: the request's event id (the outcome's source) or
// notification id starts with the campaign id and a dot (see RequestID).
func campaignOf(d events.NotificationOutcomeData) string {
	for _, id := range []string{d.SourceID, d.NotificationID} {
		if c, _, ok := strings.Cut(id, "."); ok && strings.HasPrefix(c, "cmp_") {
			return c
		}
	}
	return ""
}

func shardKey(campaignID, notificationID string) string {
	f := fnv.New32a()
	_, _ = f.Write([]byte(notificationID))
	return fmt.Sprintf("%s.%02d", campaignID, f.Sum32()%Shards)
}

// count adds one outcome of a campaign's request to its counters, once per outcome event.
func (h *Handler) count(ctx context.Context, ev cloudevents.Event) error {
	d, err := events.Decode[events.NotificationOutcomeData](ev)
	if err != nil {
		return runtime.Permanent(err)
	}
	id := campaignOf(d)
	if id == "" {
		return nil // not a campaign's notification
	}
	runtime.Annotate(ctx, "campaignId", id)
	key := shardKey(id, d.NotificationID)
	_, err = receipt.Once(ctx, h.Store, Name, ev, h.Now, func(tx store.Tx) ([]cloudevents.Event, error) {
		s := shard{CampaignID: id}
		if err := tx.Get(Counters, key, &s); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		switch ev.Type() {
		case events.NotificationSent:
			s.Sent++
		case events.NotificationFailed:
			s.Failed++
		default:
			if s.Suppressed == nil {
				s.Suppressed = map[string]int64{}
			}
			reason := d.Reason
			if reason == "" {
				reason = "unspecified"
			}
			s.Suppressed[reason]++
		}
		return nil, tx.Set(Counters, key, s)
	})
	return err
}

func (h *Handler) progress(ctx context.Context, c Campaign) (Progress, error) {
	p := Progress{Targeted: c.Targeted, Published: c.Published, SuppressedBy: map[string]int64{}}
	ids := make([]string, Shards)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s.%02d", c.ID, i)
	}
	var docs []store.Document
	err := h.Store.RunTransaction(ctx, func(_ context.Context, tx store.Tx) error {
		var err error
		docs, err = tx.GetAll(Counters, ids)
		return err
	})
	if err != nil {
		return p, fmt.Errorf("progress of %s: %w", c.ID, err)
	}
	for _, d := range docs {
		if !d.Exists {
			continue
		}
		var s shard
		if err := d.DataTo(&s); err != nil {
			return p, err
		}
		p.Sent += s.Sent
		p.Failed += s.Failed
		for r, n := range s.Suppressed {
			p.SuppressedBy[r] += n
			p.Suppressed += n
		}
	}
	finished := p.Sent + p.Suppressed + p.Failed
	p.Pending = max(p.Targeted-finished, 0)
	p.Done = c.Status == StatusSent && p.Pending == 0
	if p.Targeted > 0 {
		p.PercentFinished = int(min(finished*100/p.Targeted, 100))
	} else if c.Status == StatusSent {
		p.PercentFinished = 100
	}
	return p, nil
}
