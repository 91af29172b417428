package ingest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/omnimember/omnimember/events"
	"github.com/omnimember/omnimember/shared/stream"
)

// Window selects archived pushes by the time the raw stream stored them: [Since, Until).
// An empty Platform means every platform.
type Window struct {
	Platform     string
	Since, Until time.Time
}

// Renormalisation re-runs the current adapters over a window of the raw archive.
type Renormalisation struct {
	Webhooks *Webhooks
	// Publish stores the events (ingest's runtime Publisher, so message ids match the original
	// publish); nil or DryRun only counts.
	Publish func(ctx context.Context, evs []cloudevents.Event) error
	DryRun  bool
	// Revision 0 reproduces the original event ids (fills gaps, changes nothing already stored);
	// a revision N > 0 mixes N into every id so the chain processes the corrected events again.
	Revision int
}

// Report counts what a run read and did, by outcome (accepted, unhandled, bad_signature, ...).
type Report struct {
	Read      int            `json:"read"`
	Events    int            `json:"events"`
	Published int            `json:"published"`
	Outcomes  map[string]int `json:"outcomes"`
}

// Run re-normalises every archived push in the window, oldest first.
func (r Renormalisation) Run(ctx context.Context, js jetstream.JetStream, w Window) (Report, error) {
	rep := Report{Outcomes: map[string]int{}}
	filter := stream.RawPrefix + ">"
	if w.Platform != "" {
		filter = stream.RawSubject(w.Platform)
	}
	since := w.Since
	cons, err := js.OrderedConsumer(ctx, stream.Raw, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter},
		DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &since})
	if err != nil {
		return rep, fmt.Errorf("read raw archive: %w", err)
	}
	for {
		info, err := cons.Info(ctx)
		if err != nil {
			return rep, err
		}
		if info.NumPending == 0 {
			return rep, nil
		}
		done, err := r.batch(ctx, cons, int(min(info.NumPending, 256)), w.Until, &rep)
		if err != nil || done {
			return rep, err
		}
	}
}

// batch handles up to n messages; done reports that the window's end was reached.
func (r Renormalisation) batch(ctx context.Context, cons jetstream.Consumer, n int, until time.Time, rep *Report) (bool, error) {
	msgs, err := cons.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		return false, err
	}
	for m := range msgs.Messages() {
		meta, err := m.Metadata()
		if err != nil {
			return false, err
		}
		if !until.IsZero() && !meta.Timestamp.Before(until) {
			return true, nil
		}
		if err := r.one(ctx, m, rep); err != nil {
			return false, fmt.Errorf("raw message %d: %w", meta.Sequence.Stream, err)
		}
	}
	if err := msgs.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
		return false, err
	}
	return false, nil
}

// one re-normalises one archived push. A push the adapter refuses (a bad signature, say) is
// counted, not an error: it was refused on arrival too.
func (r Renormalisation) one(ctx context.Context, m jetstream.Msg, rep *Report) error {
	rep.Read++
	push, err := RawPush(m.Subject(), m.Headers(), m.Data())
	if err != nil {
		rep.Outcomes["unreadable"]++
		return nil
	}
	res, err := r.Webhooks.Normalise(ctx, push)
	if _, outcome := Outcome(err); err != nil {
		rep.Outcomes[outcome]++
		return nil
	}
	outcome := OutcomeAccepted
	if len(res.Unhandled) > 0 && len(res.Events) == 0 {
		outcome = OutcomeUnhandled
	}
	rep.Outcomes[outcome]++
	rep.Events += len(res.Events)
	Revise(res.Events, r.Revision)
	if r.DryRun || r.Publish == nil || len(res.Events) == 0 {
		return nil
	}
	if err := r.Publish(ctx, res.Events); err != nil {
		return err
	}
	rep.Published += len(res.Events)
	return nil
}

// Revise gives events of a non-zero revision new deterministic ids: the same revision run twice
// produces the same ids again (so it is itself idempotent), another revision other ids.
func Revise(evs []cloudevents.Event, revision int) {
	if revision == 0 {
		return
	}
	for i := range evs {
		evs[i].SetID(events.DerivedID("renormalise/r"+strconv.Itoa(revision), evs[i].ID(), 0))
	}
}
