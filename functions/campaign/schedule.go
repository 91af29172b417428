package campaign

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
)

// A scheduled campaign wakes the function at its time without a poll: its campaign.triggered
// event is stored as a JetStream message schedule when the campaign is created, and the server
// publishes it at scheduledAt, where the campaign consumer's lag wakes the worker (KEDA). The
// handler then triggers the campaign (status scheduled → triggered, audited as the scheduler's)
// and selects its members as for any trigger.

// scheduledBy names the trigger of a scheduled campaign in its status and audit.
const scheduledBy = "scheduler"

// skewAllowed is how early a scheduled trigger may arrive by this function's clock (the server's
// clock fired it) and be retried until due; an earlier one is left to the dispatcher's RunDue.
const skewAllowed = time.Minute

// schedule stores c's trigger to be published at its scheduledAt (again: it replaces the last).
func (h *Handler) schedule(ctx context.Context, pub *runtime.Publisher, c Campaign) error {
	if c.Status != StatusScheduled || c.ScheduledAt == nil {
		return nil
	}
	ev, err := events.New(events.CampaignTriggered, c.ID, events.Source(Name), *c.ScheduledAt, events.CampaignTriggeredData{
		CampaignID: c.ID, Segment: c.segmentName(), Channel: c.Channel, Template: c.Template,
		TriggeredBy: scheduledBy, TriggeredAt: *c.ScheduledAt})
	if err != nil {
		return err
	}
	return pub.Schedule(ctx, ev, *c.ScheduledAt)
}

// scheduleAll sets the schedule of every scheduled campaign again, so that one whose schedule was
// lost (its create answered an error after the campaign was stored) still wakes the function.
func (h *Handler) scheduleAll(ctx context.Context, pub *runtime.Publisher) error {
	docs, err := h.Store.Query(ctx, store.Query{Collection: Campaigns,
		Filters: []store.Filter{{Field: "status", Op: store.OpEq, Value: StatusScheduled}}})
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range docs {
		var c Campaign
		if err := d.DataTo(&c); err != nil {
			return err
		}
		errs = append(errs, h.schedule(ctx, pub, c))
	}
	return errors.Join(errs...)
}

// triggerDue marks a scheduled campaign triggered when its trigger arrives at its time; a trigger
// of any other campaign changes nothing here (selection only starts from triggered).
func (h *Handler) triggerDue(ctx context.Context, id string) error {
	now := h.Now().UTC()
	return h.Store.RunTransaction(ctx, func(_ context.Context, tx store.Tx) error {
		var c Campaign
		if err := tx.Get(Campaigns, id, &c); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return runtime.Permanent(fmt.Errorf("campaign %s: %w", id, err))
			}
			return err
		}
		if c.Status != StatusScheduled || c.ScheduledAt == nil {
			return nil
		}
		if early := c.ScheduledAt.Sub(now); early > 0 {
			if early <= skewAllowed {
				return fmt.Errorf("campaign %s is due in %s by this clock; retrying", id, early) // transient
			}
			h.Log.Warn("scheduled trigger arrived early; the dispatcher triggers it when due", "campaignId", id, "early", early.String())
			return nil
		}
		c.Status, c.TriggeredBy, c.TriggeredAt = StatusTriggered, scheduledBy, &now
		if err := tx.Set(Campaigns, id, c); err != nil {
			return err
		}
		return writeAudit(tx, audit{At: now, By: scheduledBy, Action: "trigger (scheduled)", CampaignID: id})
	})
}
