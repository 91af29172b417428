// Package campaign runs marketing campaigns: a segment, a channel and a template, triggered now or
// at a time, fanned out as one notification.requested per member at the channel's rate, resumable
// and idempotent, with progress counted from notify's outcomes and a console for marketers.
package campaign

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/segment"
	"github.com/omnimember/omnimember/shared/store"
)

// Name is the function's name.
const Name = "campaign"

// Collections the campaign function writes.
const (
	Campaigns = "campaigns"         // one per campaign: definition, status, fan-out cursor
	Targets   = "campaign_targets"  // the members a trigger selected, in chunks: what the fan-out walks
	Counters  = "campaign_progress" // outcome counters, sharded so outcomes do not contend on one document
	AuditLog  = "campaign_audit"    // every create and trigger: who, when, what
)

// Indexes are the fields the campaign function queries by.
var Indexes = map[string][]string{
	Campaigns: {"status", "scheduledAt"},
}

// Consumes: its own trigger and notify's outcomes.
var Consumes = []string{events.CampaignTriggered, events.NotificationSent, events.NotificationSuppressed, events.NotificationFailed}

// Emits lists what campaign publishes: its trigger, the requests of its fan-out and its rewards.
var Emits = []string{events.CampaignTriggered, events.NotificationRequested, events.CampaignRewarded}

// Campaign statuses.
const (
	StatusDraft     = "draft"     // created, waiting for a trigger
	StatusScheduled = "scheduled" // triggered by the scheduler at ScheduledAt
	StatusTriggered = "triggered" // campaign.triggered published, members not selected yet
	StatusSending   = "sending"   // targets selected, fan-out under way (Cursor)
	StatusSent      = "sent"      // every request published; outcomes keep arriving
	StatusFailed    = "failed"    // the fan-out hit an error retrying cannot fix (Error says which)
)

// Campaign is one campaign as stored.
type Campaign struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Segment     string            `json:"segment,omitempty"`
	Rule        *segment.Rule     `json:"rule,omitempty"`
	Channel     string            `json:"channel"`
	Template    string            `json:"template"`
	Vars        map[string]string `json:"vars,omitempty"`
	Coupon      *Coupon           `json:"coupon,omitempty"`
	BonusPoints int64             `json:"bonusPoints,omitempty"`
	Multiplier  *Multiplier       `json:"multiplier,omitempty"`
	ScheduledAt *time.Time        `json:"scheduledAt,omitempty"`
	Status      string            `json:"status"`
	CreatedBy   string            `json:"createdBy"`
	CreatedAt   time.Time         `json:"createdAt"`
	TriggeredBy string            `json:"triggeredBy,omitempty"`
	TriggeredAt *time.Time        `json:"triggeredAt,omitempty"`
	Targeted    int64             `json:"targeted"`
	Chunks      int               `json:"chunks"`
	Cursor      int               `json:"cursor"`
	Published   int64             `json:"published"`
	SentAt      *time.Time        `json:"sentAt,omitempty"`
	Error       string            `json:"error,omitempty"`
}

// Rewards says whether the campaign gives its members something points-award credits: bonus points
// or a points-multiplier window (a coupon is only named in the message).
func (c Campaign) Rewards() bool { return c.BonusPoints > 0 || c.Multiplier != nil }

// Coupon rides along in the message (the coupon system issues it; the campaign names it).
type Coupon struct {
	Code  string `json:"code"`
	Title string `json:"title"`
}

// Multiplier is a points-multiplier window announced by the campaign.
type Multiplier struct {
	Factor string    `json:"factor"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
}

// Store is what the campaign function needs of the document store.
type Store = store.Store

// Handler serves campaigns. Rates caps requests per second per channel (0: unlimited).
type Handler struct {
	Store       Store
	Segments    *segment.Catalog
	Templates   Templates
	Rates       Rates
	ChunkSize   int
	Now         func() time.Time
	Brand       string // the brand name messages carry
	Token       string // marketers' bearer token (console and API)
	AdminToken  string // the scheduler's bearer token
	PollEvery   time.Duration
	Role        string // RoleAll, RoleAPI or RoleWorker (CAMPAIGN_ROLE)
	Log         *slog.Logger
	holds       *holds
	wake        chan struct{}
	initialized bool
}

// Init fills defaults; call it before serving.
func (h *Handler) Init() {
	if h.ChunkSize <= 0 {
		h.ChunkSize = 2000
	}
	if h.Now == nil {
		h.Now = time.Now
	}
	if h.PollEvery <= 0 {
		h.PollEvery = 5 * time.Second
	}
	if h.Log == nil {
		h.Log = slog.Default()
	}
	h.wake = make(chan struct{}, 1)
	h.initialized = true
}

// Roles split the function in a cluster (CAMPAIGN_ROLE): the API (console and routes, woken by
// marketers' requests: a Knative Service) and the worker (its consumer, the fan-out and the
// scheduler, woken by JetStream lag: a Deployment KEDA scales), so each scales to zero on what wakes
// it. Unset, one process does both (make run, the tests).
const (
	RoleAll    = ""
	RoleAPI    = "api"
	RoleWorker = "worker"
)

// Function is the campaign function as the runtime runs it, in h.Role.
func (h *Handler) Function() runtime.Function {
	if !h.initialized {
		h.Init()
	}
	fn := runtime.Function{Name: Name, Consumes: Consumes, Emits: Emits, Handle: h.Handle, Routes: h.Routes, Background: h.Dispatch}
	if h.Role == RoleAPI {
		fn.Consumes, fn.Handle, fn.Background = nil, nil, nil
	}
	return fn
}

// Handle selects a triggered campaign's members, or counts a notification's outcome.
func (h *Handler) Handle(ctx context.Context, ev cloudevents.Event) ([]cloudevents.Event, error) {
	switch ev.Type() {
	case events.CampaignTriggered:
		d, err := events.Decode[events.CampaignTriggeredData](ev)
		if err != nil {
			return nil, runtime.Permanent(err)
		}
		runtime.Annotate(ctx, "campaignId", d.CampaignID)
		if err := h.triggerDue(ctx, d.CampaignID); err != nil {
			return nil, err
		}
		if err := h.selectTargets(ctx, d.CampaignID); err != nil {
			return nil, fmt.Errorf("select members of campaign %s: %w", d.CampaignID, err)
		}
		h.poke()
		return nil, nil
	case events.NotificationSent, events.NotificationSuppressed, events.NotificationFailed:
		return nil, h.count(ctx, ev)
	}
	return nil, runtime.Permanent(fmt.Errorf("campaign does not handle %s", ev.Type()))
}

// poke wakes the dispatcher without blocking.
func (h *Handler) poke() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}
