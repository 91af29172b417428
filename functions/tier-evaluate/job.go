package tierevaluate

import (
	"context"
	"fmt"
	"net/http"
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
	Downgraded int       `json:"downgraded"`
	Resent     int       `json:"resent"` // events an interrupted earlier run left pending
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

// Evaluate decides, for every member below its level's threshold (an indexed query), whether this
// is the evaluation day after its grace period and minimum stay; if so the member moves down to the
// level its score reaches. One member per transaction; each outcome is kept in a receipt and, until
// published, as pending events, so a crash between the two is repaired by the next run.
func (h *Handler) Evaluate(ctx context.Context, asOf time.Time, publish func(context.Context, []cloudevents.Event) error) (EvaluationReport, error) {
	rep := EvaluationReport{AsOf: asOf}
	resent, err := receipt.Flush(ctx, h.Store, jobName, publish)
	rep.Resent = resent
	if err != nil {
		return rep, err
	}
	docs, err := h.Store.Query(ctx, store.Query{Collection: member.Tiers,
		Filters: []store.Filter{{Field: "belowSince", Op: store.OpLte, Value: asOf.UTC().Truncate(time.Second)}}})
	if err != nil {
		return rep, fmt.Errorf("find members below their level: %w", err)
	}
	day := h.Rules.Day(asOf)
	for _, d := range docs {
		rep.Below++
		job := cloudevents.NewEvent()
		job.SetSource(events.Source(Name) + "/evaluation")
		job.SetID(d.ID + ":" + day)
		outs, fresh, err := receipt.Do(ctx, h.Store, jobName, job, h.Now, func(tx store.Tx) ([]cloudevents.Event, error) {
			s, err := h.liveState(tx, d.ID)
			if err != nil || s.OneID != d.ID {
				return nil, err // merged away since: the survivor is evaluated on its own
			}
			outs, err := h.decide(tx, job, s, 0, h.Rules.OnEvaluation)
			if err != nil {
				return nil, err
			}
			return outs, receipt.SavePending(tx, jobName, receipt.Key(jobName, job), outs, h.Now())
		})
		if err != nil {
			return rep, fmt.Errorf("evaluate %s: %w", d.ID, err)
		}
		if !fresh || len(outs) == 0 {
			continue // a run earlier today decided; its events were published or are pending
		}
		if err := publish(ctx, outs); err != nil {
			return rep, err
		}
		if err := receipt.Published(ctx, h.Store, receipt.Key(jobName, job)); err != nil {
			return rep, err
		}
		rep.Downgraded += len(outs)
	}
	return rep, nil
}
