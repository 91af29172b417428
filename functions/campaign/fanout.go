package campaign

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/segment"
	"github.com/omnimember/omnimember/shared/store"
)

// chunk is one document of a campaign's targets.
type chunk struct {
	CampaignID string   `json:"campaignId"`
	Index      int      `json:"index"`
	OneIDs     []string `json:"oneIds"`
}

func chunkKey(campaignID string, i int) string { return campaignID + "." + strconv.Itoa(i) }

// rule is the campaign's segment rule: a built-in by name, or its own.
func (h *Handler) rule(c Campaign) (segment.Rule, error) {
	if c.Rule != nil {
		return *c.Rule, nil
	}
	s, err := h.Segments.Get(c.Segment)
	return s.Rule, err
}

// selectTargets evaluates a triggered campaign's segment once and keeps the members in chunks, so
// the fan-out walks a fixed list whatever changes later. A redelivered trigger after the selection
// finds the campaign sending and does nothing; one interrupted before rewrites the same chunks.
func (h *Handler) selectTargets(ctx context.Context, id string) error {
	var c Campaign
	if err := h.Store.Get(ctx, Campaigns, id, &c); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return runtime.Permanent(fmt.Errorf("campaign %s: %w", id, err))
		}
		return err
	}
	if c.Status != StatusTriggered {
		return nil
	}
	r, err := h.rule(c)
	if err != nil {
		return runtime.Permanent(err)
	}
	res, err := segment.Evaluate(ctx, member.SegmentIndex{Store: h.Store}, r, h.Now())
	if err != nil {
		return err
	}
	ids := res.Sorted()
	chunks, err := h.storeTargets(ctx, id, ids)
	if errors.Is(err, errSelected) {
		return nil
	}
	if err != nil {
		return err
	}
	return h.update(ctx, id, func(c *Campaign) bool {
		if c.Status != StatusTriggered {
			return false
		}
		c.Status, c.Targeted, c.Chunks, c.Cursor = StatusSending, int64(len(ids)), chunks, 0
		return true
	})
}

// errSelected: another selection of the same trigger finished first.
var errSelected = errors.New("campaign members already selected")

// chunksPerTx bounds the targets written per transaction (Firestore: 500 writes, 10 MiB).
const chunksPerTx = 16

// storeTargets writes the selected OneIDs in chunks of ChunkSize, several chunks per transaction.
func (h *Handler) storeTargets(ctx context.Context, id string, ids []string) (int, error) {
	size := h.ChunkSize
	chunks := (len(ids) + size - 1) / size
	for first := 0; first < chunks; first += chunksPerTx {
		err := h.Store.RunTransaction(ctx, func(_ context.Context, tx store.Tx) error {
			// A selection racing another (a re-sent trigger) stops once one has moved the campaign
			// on: the chunks the fan-out walks are never rewritten under it.
			var c Campaign
			if err := tx.Get(Campaigns, id, &c); err != nil {
				return err
			}
			if c.Status != StatusTriggered {
				return errSelected
			}
			for i := first; i < min(first+chunksPerTx, chunks); i++ {
				part := ids[i*size : min((i+1)*size, len(ids))]
				if err := tx.Set(Targets, chunkKey(id, i), chunk{CampaignID: id, Index: i, OneIDs: part}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("store targets chunks %d..: %w", first, err)
		}
	}
	return chunks, nil
}

// update changes a campaign in a transaction; change returns false to leave it as it is.
func (h *Handler) update(ctx context.Context, id string, change func(c *Campaign) bool) error {
	return h.Store.RunTransaction(ctx, func(_ context.Context, tx store.Tx) error {
		var c Campaign
		if err := tx.Get(Campaigns, id, &c); err != nil {
			return err
		}
		if !change(&c) {
			return nil
		}
		return tx.Set(Campaigns, id, c)
	})
}

// Dispatch is the function's background loop: it fans out sending campaigns (resuming any a
// crash or a scale-down interrupted) and fires scheduled campaigns that are due.
func (h *Handler) Dispatch(ctx context.Context, pub *runtime.Publisher) {
	tick := time.NewTicker(h.PollEvery)
	defer tick.Stop()
	if err := h.scheduleAll(ctx, pub); err != nil && ctx.Err() == nil {
		h.Log.Warn("set the schedules of scheduled campaigns", "error", err)
	}
	for {
		if err := h.hold(ctx, pub); err != nil && ctx.Err() == nil {
			h.Log.Warn("hold the campaigns still sending", "error", err)
		}
		if _, err := h.RunDue(ctx, pub, "scheduler"); err != nil && ctx.Err() == nil {
			h.Log.Warn("scheduled campaigns", "error", err)
		}
		if err := h.retrigger(ctx, pub); err != nil && ctx.Err() == nil {
			h.Log.Warn("re-send stalled triggers", "error", err)
		}
		if err := h.Send(ctx, pub); err != nil && ctx.Err() == nil {
			h.Log.Warn("campaign fan-out; resumes from its cursor", "error", err)
		}
		if err := h.hold(ctx, pub); err != nil && ctx.Err() == nil { // let go of what is done
			h.Log.Warn("hold the campaigns still sending", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-h.wake:
		case <-tick.C:
		}
	}
}

// stallAfter is how long a campaign may stay triggered before the loop sends its trigger again
// (the first publish failed after the status changed); the same event id makes it harmless.
const stallAfter = time.Minute

func (h *Handler) retrigger(ctx context.Context, pub *runtime.Publisher) error {
	docs, err := h.Store.Query(ctx, store.Query{Collection: Campaigns,
		Filters: []store.Filter{{Field: "status", Op: store.OpEq, Value: StatusTriggered}}})
	if err != nil {
		return err
	}
	for _, d := range docs {
		var c Campaign
		if err := d.DataTo(&c); err != nil {
			return err
		}
		if c.TriggeredAt != nil && h.Now().Sub(*c.TriggeredAt) > stallAfter {
			if err := h.publishTrigger(ctx, pub, c); err != nil {
				return err
			}
		}
	}
	return nil
}

// Send fans out every campaign that is sending, each from its cursor, until all are sent.
func (h *Handler) Send(ctx context.Context, pub *runtime.Publisher) error {
	docs, err := h.Store.Query(ctx, store.Query{Collection: Campaigns,
		Filters: []store.Filter{{Field: "status", Op: store.OpEq, Value: StatusSending}}})
	if err != nil {
		return err
	}
	for _, d := range docs {
		var c Campaign
		if err := d.DataTo(&c); err != nil {
			return err
		}
		err := h.fanOut(ctx, pub, c)
		if runtime.IsPermanent(err) {
			h.Log.Error("campaign fan-out failed for good", "campaignId", c.ID, "error", err)
			err = h.update(ctx, c.ID, func(c *Campaign) bool {
				c.Status, c.Error = StatusFailed, err.Error()
				return true
			})
		}
		if err != nil {
			return fmt.Errorf("campaign %s at chunk %d: %w", c.ID, c.Cursor, err)
		}
	}
	return nil
}

// fanOut publishes one notification.requested per target (and one campaign.rewarded before it when
// the campaign gives bonus points or a multiplier window), chunk by chunk from the cursor, at the
// channel's rate. The cursor moves after JetStream stored a chunk's requests, so a crash repeats at
// most one chunk — under the same event ids and message ids, which JetStream and notify drop.
func (h *Handler) fanOut(ctx context.Context, pub *runtime.Publisher, c Campaign) error {
	p := pacer{rate: h.Rates.For(c.Channel)}
	vars, err := h.vars(c)
	if err != nil {
		return runtime.Permanent(err)
	}
	for i := c.Cursor; i < c.Chunks; i++ {
		var ch chunk
		if err := h.Store.Get(ctx, Targets, chunkKey(c.ID, i), &ch); err != nil {
			return err
		}
		if err := h.publishChunk(ctx, pub, &p, c, vars, ch.OneIDs); err != nil {
			return err
		}
		n := int64(len(ch.OneIDs))
		if err := h.update(ctx, c.ID, func(c *Campaign) bool {
			if c.Cursor != i {
				return false
			}
			c.Cursor, c.Published = i+1, c.Published+n
			return true
		}); err != nil {
			return err
		}
	}
	now := h.Now()
	return h.update(ctx, c.ID, func(c *Campaign) bool {
		if c.Status != StatusSending || c.Cursor < c.Chunks {
			return false
		}
		c.Status, c.SentAt = StatusSent, &now
		return true
	})
}

// publishBatch bounds how many requests wait for JetStream's acks at once, per worker; several
// batches are in flight so building events and JetStream's storing overlap.
const (
	publishBatch   = 250
	publishWorkers = 4
)

func (h *Handler) publishChunk(ctx context.Context, pub *runtime.Publisher, p *pacer, c Campaign, vars map[string]string, ids []string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, publishWorkers)
	slots := make(chan struct{}, publishWorkers)
	var wg sync.WaitGroup
	var first error
	for start := 0; start < len(ids) && first == nil; start += publishBatch {
		part := ids[start:min(start+publishBatch, len(ids))]
		if err := p.wait(ctx, len(part)); err != nil {
			first = err
			break
		}
		select {
		case slots <- struct{}{}:
		case first = <-errs:
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			if err := h.publishBatch(ctx, pub, c, vars, part); err != nil {
				cancel()
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	if first == nil {
		first = <-errs
	}
	return first
}

// publishBatch publishes the members' requests, each after the member's reward when the campaign
// has one, so the points are credited (or the window open) by the time the message tells of them.
func (h *Handler) publishBatch(ctx context.Context, pub *runtime.Publisher, c Campaign, vars map[string]string, ids []string) error {
	evs := make([]cloudevents.Event, 0, 2*len(ids))
	for _, oneID := range ids {
		if c.Rewards() {
			ev, err := h.reward(c, oneID)
			if err != nil {
				return err
			}
			evs = append(evs, ev)
		}
		ev, err := h.request(c, vars, oneID)
		if err != nil {
			return err
		}
		evs = append(evs, ev)
	}
	return pub.Publish(ctx, nil, evs)
}

// RequestID is the id of a campaign's request to one member (event id and notification id alike):
// the campaign id, a dot, and a hash of both, so triggering twice or resuming asks once, and an
// outcome names its campaign.
func RequestID(campaignID, oneID string) string {
	sum := sha256.Sum256([]byte(campaignID + "\x00" + oneID))
	return campaignID + "." + hex.EncodeToString(sum[:12])
}

// RewardID is the event id of a campaign's reward to one member: like RequestID, deterministic in the
// campaign and the member, and distinct from it (JetStream dedupes message ids across subjects).
func RewardID(campaignID, oneID string) string {
	sum := sha256.Sum256([]byte(campaignID + "\x00" + oneID + "\x00reward"))
	return campaignID + ".reward." + hex.EncodeToString(sum[:12])
}

// reward is the campaign.rewarded event that has points-award credit the campaign's bonus points
// and open its multiplier window for one member: the same amount and window the message announces.
func (h *Handler) reward(c Campaign, oneID string) (cloudevents.Event, error) {
	d := events.CampaignRewardedData{CampaignID: c.ID, OneID: oneID, BonusPoints: c.BonusPoints, SourceID: c.ID}
	if m := c.Multiplier; m != nil {
		d.Multiplier = &events.PointsMultiplier{Factor: m.Factor, From: m.From, To: m.To}
	}
	return events.New(events.CampaignRewarded, RewardID(c.ID, oneID), events.Source(Name), h.Now(), d)
}

func (h *Handler) request(c Campaign, vars map[string]string, oneID string) (cloudevents.Event, error) {
	id := RequestID(c.ID, oneID)
	return events.New(events.NotificationRequested, id, events.Source(Name), h.Now(), events.NotificationRequestedData{
		NotificationID: id, OneID: oneID, Category: events.CategoryMarketing, Channel: c.Channel,
		Template: c.Template, Locale: "zh-CN", Vars: vars, CampaignID: c.ID, SourceID: c.ID})
}
