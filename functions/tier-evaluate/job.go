package tierevaluate

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/member"
	"github.com/omnimember/omnimember/shared/receipt"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/store"
)

// EvaluationReport says what one run of the evaluation job did.
type EvaluationReport struct {
	AsOf       time.Time `json:"asOf"`
	Below      int       `json:"membersBelowTheirLevel"`
	Rolled     int       `json:"membersWhoseWindowRolled"` // a purchase left the window since their last decision
	Downgraded int       `json:"downgraded"`
	Upgraded   int       `json:"upgraded,omitempty"` // a purchase dated ahead entered the window
	Resent     int       `json:"resent"`             // events an interrupted earlier run left pending
}

// Routes registers the evaluation job, what a scheduler calls daily.
func (h *Handler) Routes(mux runtime.Mux, pub *runtime.Publisher) {
	mux.Handle("POST /v1/admin/tiers:evaluate", runtime.RequireBearer(h.AdminToken, runtime.LongRunning(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asOf := h.Now()
		if v := r.URL.Query().Get("asOf"); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				runtime.WriteError(w, http.StatusBadRequest, "asOf", "want RFC 3339: %v", err)
				return
			}
			asOf = t
		}
		rep, err := h.Evaluate(r.Context(), asOf, func(ctx context.Context, evs []cloudevents.Event) error { return pub.Publish(ctx, nil, evs) })
		if err != nil {
			runtime.WriteError(w, http.StatusServiceUnavailable, "", "evaluate: %v (safe to run again)", err)
			return
		}
		runtime.WriteJSON(w, http.StatusOK, rep)
	}))))
}

// jobName keys the evaluation job's receipts and pending events.
const jobName = Name + "/evaluation"

// Evaluate runs the calendar to asOf for the members time has changed, found through two indexed
// queries: those below their level's threshold (belowSince), and those whose window has dropped a
// purchase since their last decision (rollsAt). Each is carried to asOf (the grace period starts
// when a purchase left, not when the job looked) and decided as of asOf: on the evaluation day after
// the grace period and the minimum stay, a member still below moves down to the level its score
// reaches. A member's decisions never go back in time: one decided after asOf is decided as of its
// last decision. One member per transaction; each outcome is kept in a receipt and, until
// published, as pending events, so a crash between the two is repaired by the next run.
func (h *Handler) Evaluate(ctx context.Context, asOf time.Time, publish func(context.Context, []cloudevents.Event) error) (EvaluationReport, error) {
	rep := EvaluationReport{AsOf: asOf}
	resent, err := receipt.Flush(ctx, h.Store, jobName, publish)
	rep.Resent = resent
	if err != nil {
		return rep, err
	}
	if err := h.migrateRollsAt(ctx); err != nil {
		return rep, err
	}
	ids, err := h.due(ctx, asOf, &rep)
	if err != nil {
		return rep, err
	}
	day := h.Rules.Day(asOf)
	for _, id := range ids {
		if err := h.evaluateOne(ctx, id, day, asOf, publish, &rep); err != nil {
			return rep, fmt.Errorf("evaluate %s: %w", id, err)
		}
	}
	return rep, nil
}

// due lists, in order, the members below their level or whose window has rolled by asOf.
func (h *Handler) due(ctx context.Context, asOf time.Time, rep *EvaluationReport) ([]string, error) {
	at := asOf.UTC().Truncate(time.Second)
	seen := map[string]bool{}
	var ids []string
	for _, field := range []string{"belowSince", "rollsAt"} {
		found, err := store.QueryIDs(ctx, h.Store, store.Query{Collection: member.Tiers,
			Filters: []store.Filter{{Field: field, Op: store.OpLte, Value: at}}})
		if err != nil {
			return nil, fmt.Errorf("find members by %s: %w", field, err)
		}
		for _, id := range found {
			if field == "belowSince" {
				rep.Below++
			} else if !seen[id] {
				rep.Rolled++
			}
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// evaluateOne decides one member as of asOf under the (member, day) receipt and publishes what changed.
func (h *Handler) evaluateOne(ctx context.Context, oneID, day string, asOf time.Time, publish func(context.Context, []cloudevents.Event) error, rep *EvaluationReport) error {
	job := cloudevents.NewEvent()
	job.SetSource(events.Source(Name) + "/evaluation")
	job.SetID(oneID + ":" + day)
	outs, fresh, err := receipt.Do(ctx, h.Store, jobName, job, h.Now, func(tx store.Tx) ([]cloudevents.Event, error) {
		s, err := h.liveState(tx, oneID)
		if err != nil || s.OneID != oneID {
			return nil, err // merged away since: the survivor is evaluated on its own
		}
		at := decisionTime(s, asOf)
		if err := h.roll(&s, at); err != nil {
			return nil, err
		}
		outs, err := h.decide(tx, job, s, at, 0, h.Rules.OnEvaluation)
		if err != nil {
			return nil, err
		}
		return outs, receipt.SavePending(tx, jobName, receipt.Key(jobName, job), outs, h.Now())
	})
	if err != nil || !fresh || len(outs) == 0 {
		return err // not fresh: a run earlier today decided; its events were published or are pending
	}
	if err := publish(ctx, outs); err != nil {
		return err
	}
	if err := receipt.Published(ctx, h.Store, receipt.Key(jobName, job)); err != nil {
		return err
	}
	for _, out := range outs {
		d, err := events.Decode[events.TierChangedData](out)
		if err != nil {
			return err
		}
		if d.Direction == "downgrade" {
			rep.Downgraded++
		} else {
			rep.Upgraded++
		}
	}
	return nil
}
