package campaign

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/segment"
	"github.com/omnimember/omnimember/shared/store"
)

// MarketerTokenEnv names the variable with the bearer token of the campaign API and console (a secret).
const MarketerTokenEnv = "OMNIMEMBER_MARKETER_TOKEN"

// SampleSize is how many members a segment count shows.
const SampleSize = 5

// Routes serves the console and the campaign API (bearer Token) and the scheduler's endpoint
// (bearer AdminToken).
func (h *Handler) Routes(mux runtime.Mux, pub *runtime.Publisher) {
	auth := func(fn http.HandlerFunc) http.Handler { return runtime.RequireBearer(h.Token, fn) }
	mux.Handle("GET /console/", consoleHandler())
	mux.Handle("GET /{$}", http.RedirectHandler("/console/", http.StatusFound))
	mux.Handle("GET /v1/segments", auth(h.listSegments))
	mux.Handle("GET /v1/segments/{ref}", auth(h.countSegment))
	mux.Handle("POST /v1/segments:count", auth(h.countRule))
	mux.Handle("GET /v1/templates", auth(func(w http.ResponseWriter, _ *http.Request) {
		runtime.WriteJSON(w, http.StatusOK, map[string]any{"templates": h.Templates.List(), "channels": Channels})
	}))
	mux.Handle("POST /v1/campaigns:preview", auth(h.preview))
	mux.Handle("POST /v1/campaigns", auth(func(w http.ResponseWriter, r *http.Request) { h.create(w, r, pub) }))
	mux.Handle("GET /v1/campaigns", auth(h.list))
	mux.Handle("GET /v1/campaigns/{id}", auth(h.get))
	mux.Handle("POST /v1/campaigns/{ref}", auth(func(w http.ResponseWriter, r *http.Request) { h.trigger(w, r, pub) }))
	h.tagRoutes(mux, auth)
	mux.Handle("POST /v1/admin/campaigns:run-due", runtime.RequireBearer(h.AdminToken, runtime.LongRunning(http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			ids, err := h.RunDue(r.Context(), pub, "scheduler")
			if err != nil {
				writeErr(w, err)
				return
			}
			runtime.WriteJSON(w, http.StatusOK, map[string]any{"triggered": ids})
		}))))
}

// SegmentCount is a dry run: how many members a segment selects now, and a few of them (masked).
type SegmentCount struct {
	Segment string          `json:"segment,omitempty"`
	Title   string          `json:"title,omitempty"`
	Count   int             `json:"count"`
	Sample  []member.Sample `json:"sample"`
	TookMS  int64           `json:"tookMs"`
}

func (h *Handler) listSegments(w http.ResponseWriter, _ *http.Request) {
	runtime.WriteJSON(w, http.StatusOK, map[string]any{"version": h.Segments.Version, "segments": h.Segments.All()})
}

// Count evaluates a rule and samples the members it selects.
func (h *Handler) Count(ctx context.Context, r segment.Rule) (SegmentCount, error) {
	start := time.Now()
	ix := member.SegmentIndex{Store: h.Store}
	res, err := segment.Evaluate(ctx, ix, r, h.Now())
	if err != nil {
		return SegmentCount{}, err
	}
	sample, err := ix.Samples(ctx, res.First(SampleSize))
	if err != nil {
		return SegmentCount{}, err
	}
	return SegmentCount{Count: res.Count(), Sample: sample, TookMS: time.Since(start).Milliseconds()}, nil
}

func (h *Handler) countSegment(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutSuffix(r.PathValue("ref"), ":count")
	if !ok {
		runtime.WriteError(w, http.StatusNotFound, "", "want /v1/segments/{name}:count")
		return
	}
	s, err := h.Segments.Get(name)
	if err != nil {
		runtime.WriteError(w, http.StatusNotFound, "segment", "%v", err)
		return
	}
	out, err := h.Count(r.Context(), s.Rule)
	if err != nil {
		writeErr(w, err)
		return
	}
	out.Segment, out.Title = s.Name, s.Title
	runtime.WriteJSON(w, http.StatusOK, out)
}

func (h *Handler) countRule(w http.ResponseWriter, r *http.Request) {
	var rule segment.Rule
	if err := decodeBody(w, r, &rule); err != nil {
		writeErr(w, err)
		return
	}
	if err := h.validSegment(Campaign{Rule: &rule}); err != nil {
		writeErr(w, err)
		return
	}
	out, err := h.Count(r.Context(), rule)
	if err != nil {
		writeErr(w, err)
		return
	}
	runtime.WriteJSON(w, http.StatusOK, out)
}

// preview answers the message as members will read it, or the field to fix.
func (h *Handler) preview(w http.ResponseWriter, r *http.Request) {
	var req CreateRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeErr(w, err)
		return
	}
	c := Campaign{Template: req.Template, Vars: req.Vars, Coupon: req.Coupon, BonusPoints: req.BonusPoints, Multiplier: req.Multiplier}
	vars, err := h.vars(c)
	if err != nil {
		writeErr(w, err)
		return
	}
	en, _ := h.Templates[req.Template].Render("en", vars)
	runtime.WriteJSON(w, http.StatusOK, map[string]string{"text": vars["text"], "en": en})
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request, pub *runtime.Publisher) {
	var req CreateRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeErr(w, err)
		return
	}
	c, err := h.Create(r.Context(), req, runtime.Operator(r))
	if err != nil {
		writeErr(w, err)
		return
	}
	if err := h.schedule(r.Context(), pub, c); err != nil {
		// Stored, but nothing would wake the worker at its time; the worker sets every
		// schedule again when it starts (scheduleAll).
		writeErr(w, fmt.Errorf("campaign %s stored; setting its schedule failed: %w", c.ID, err))
		return
	}
	runtime.WriteJSON(w, http.StatusCreated, c)
}

// View is a campaign with its progress.
type View struct {
	Campaign
	Progress Progress `json:"progress"`
}

// Get reads a campaign and its progress.
func (h *Handler) Get(ctx context.Context, id string) (View, error) {
	var v View
	if err := store.CheckNames(Campaigns, id); err != nil {
		return v, fmt.Errorf("campaign %q: %w", id, store.ErrNotFound)
	}
	if err := h.Store.Get(ctx, Campaigns, id, &v.Campaign); err != nil {
		return v, err
	}
	p, err := h.progress(ctx, v.Campaign)
	v.Progress = p
	return v, err
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	v, err := h.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		writeErr(w, err)
		return
	}
	runtime.WriteJSON(w, http.StatusOK, v)
}

// list answers the latest campaigns, newest first.
func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	docs, err := h.Store.Query(r.Context(), store.Query{Collection: Campaigns,
		Filters: []store.Filter{{Field: "createdAt", Op: store.OpGte, Value: ""}}, OrderBy: "createdAt", Descending: true, Limit: 20})
	if err != nil {
		writeErr(w, err)
		return
	}
	out := make([]Campaign, 0, len(docs))
	for _, d := range docs {
		var c Campaign
		if err := d.DataTo(&c); err != nil {
			writeErr(w, err)
			return
		}
		out = append(out, c)
	}
	runtime.WriteJSON(w, http.StatusOK, map[string]any{"campaigns": out})
}

func (h *Handler) trigger(w http.ResponseWriter, r *http.Request, pub *runtime.Publisher) {
	id, ok := strings.CutSuffix(r.PathValue("ref"), ":trigger")
	if !ok {
		runtime.WriteError(w, http.StatusNotFound, "", "want /v1/campaigns/{id}:trigger")
		return
	}
	if err := store.CheckNames(Campaigns, id); err != nil {
		writeErr(w, fmt.Errorf("campaign %q: %w", id, store.ErrNotFound))
		return
	}
	if err := h.Trigger(r.Context(), pub, id, runtime.Operator(r)); err != nil {
		writeErr(w, err)
		return
	}
	v, err := h.Get(r.Context(), id)
	if err != nil {
		writeErr(w, err)
		return
	}
	runtime.WriteJSON(w, http.StatusAccepted, v)
}

// Trigger marks a campaign triggered (audited) and publishes campaign.triggered under the
// campaign's id: a second trigger is audited, changes nothing and publishes the same event, which
// JetStream and the handler drop, so a campaign sends once.
func (h *Handler) Trigger(ctx context.Context, pub *runtime.Publisher, id, by string) error {
	now := h.Now().UTC()
	var c Campaign
	err := h.Store.RunTransaction(ctx, func(_ context.Context, tx store.Tx) error {
		if err := tx.Get(Campaigns, id, &c); err != nil {
			return err
		}
		action := "trigger"
		if c.Status == StatusDraft || c.Status == StatusScheduled {
			c.Status, c.TriggeredBy, c.TriggeredAt = StatusTriggered, by, &now
			if err := tx.Set(Campaigns, id, c); err != nil {
				return err
			}
		} else {
			action = "trigger again (no effect: " + c.Status + ")"
		}
		return writeAudit(tx, audit{At: now, By: by, Action: action, CampaignID: id})
	})
	if err != nil {
		return err
	}
	if c.Status != StatusTriggered {
		return nil
	}
	return h.publishTrigger(ctx, pub, c)
}

// publishTrigger publishes campaign.triggered under the campaign's id.
func (h *Handler) publishTrigger(ctx context.Context, pub *runtime.Publisher, c Campaign) error {
	ev, err := events.New(events.CampaignTriggered, c.ID, events.Source(Name), *c.TriggeredAt, events.CampaignTriggeredData{
		CampaignID: c.ID, Segment: c.segmentName(), Channel: c.Channel, Template: c.Template,
		TriggeredBy: c.TriggeredBy, TriggeredAt: *c.TriggeredAt})
	if err != nil {
		return err
	}
	return pub.Publish(ctx, nil, []cloudevents.Event{ev})
}

func (c Campaign) segmentName() string {
	if c.Segment != "" {
		return c.Segment
	}
	return "custom"
}

// RunDue triggers the scheduled campaigns whose time has come (the dispatcher calls it, and so can
// a CronJob through POST /v1/admin/campaigns:run-due).
func (h *Handler) RunDue(ctx context.Context, pub *runtime.Publisher, by string) ([]string, error) {
	docs, err := h.Store.Query(ctx, store.Query{Collection: Campaigns,
		Filters: []store.Filter{{Field: "status", Op: store.OpEq, Value: StatusScheduled}}})
	if err != nil {
		return nil, err
	}
	ids := []string{}
	for _, d := range docs {
		var c Campaign
		if err := d.DataTo(&c); err != nil {
			return ids, err
		}
		if c.ScheduledAt == nil || c.ScheduledAt.After(h.Now()) {
			continue
		}
		if err := h.Trigger(ctx, pub, c.ID, by); err != nil {
			return ids, fmt.Errorf("trigger scheduled campaign %s: %w", c.ID, err)
		}
		ids = append(ids, c.ID)
	}
	return ids, nil
}
